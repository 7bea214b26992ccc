"""Mail outside debug when no mail server is configured (EMAIL_URL unset): nothing is sent, and the log says so.

Never the console: outside debug that is the server's log, and a password reset link must not land there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

logger = logging.getLogger(__name__)


class UnconfiguredBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.warning(
                "Mail not sent (EMAIL_URL is not set): %r to %d recipient(s)",
                message.subject,
                len(message.recipients()),
            )
        return 0
