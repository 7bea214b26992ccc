"""Resetting a forgotten password by e-mail: Django's flow (a link with a one-time token), with the register's rules.

- The answer to a request never tells whether an account has the address: the same redirect and page,
  and the same work in the request (one event, one queued task whose list of accounts may be empty).
  The mail itself is sent by the task (accounts.tasks) on a Celery worker, so a slow mail server does
  not show either (without Redis, as in the demo, tasks run in the request and it does).
- Only active accounts with a usable password get mail (Django's rule), checked again when it is sent.
- Limits, per hour: PASSWORD_RESET_REQUESTS_PER_ADDRESS requests from one address (then a 429), and
  PASSWORD_RESET_MAILS_PER_EMAIL mails to one address (then the same answer as ever, and no mail), so
  nobody can mail-bomb an inbox. The cache keeps the counts, under a keyed hash of the e-mail address.
- A link works once (the token covers the password hash) and for PASSWORD_RESET_TIMEOUT.
- A completed reset ends every other session of the account, and releases the account's lock: the
  failures counted against the account no longer count against it, but still count against the addresses
  they came from (accounts.lockout.release_account). The second factor is untouched: signing in with the
  new password still asks for it, and django-otp's own throttle still slows guesses at codes.
"""

from __future__ import annotations

import logging
import smtplib
import time
import unicodedata

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import rate_counters
from accounts.events import record_event
from accounts.lockout import release_account
from accounts.models import AuthEvent, User
from accounts.requests import client_address
from accounts.sessions import end_sessions

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 3600
SUBJECT_TEMPLATE = "registration/password_reset_subject.txt"
BODY_TEMPLATE = "registration/password_reset_email.txt"


class TooManyRequests(Exception):
    """Too many reset requests from one address in this hour."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many password reset requests; retry after {retry_after} s")
        self.retry_after = retry_after


def enabled() -> bool:
    """Reset by e-mail is offered only where mail can be sent (EMAIL_URL, or the demo's console)."""
    return bool(settings.PASSWORD_RESET_BY_EMAIL)


def link_minutes() -> int:
    return max(1, int(settings.PASSWORD_RESET_TIMEOUT) // 60)


def request_reset(*, email: str, request: HttpRequest) -> None:
    """Ask for a reset link for whichever accounts have ``email``. Raises TooManyRequests (this address asked too
    often); otherwise returns the same, and does the same work, whether or not any account has the address."""
    address = client_address(request)
    requests, retry_after = _count(f"address:{address}")
    limit = settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS
    if requests > limit:
        if requests == limit + 1:  # once an hour, not once a request
            record_event(AuthEvent.Kind.RESET_THROTTLED, request=request)
        raise TooManyRequests(retry_after)
    users: list[User] = eligible_users(email)
    mails, _retry_after = _count(f"email:{_email_key(email)}")
    if mails > settings.PASSWORD_RESET_MAILS_PER_EMAIL:
        if mails == settings.PASSWORD_RESET_MAILS_PER_EMAIL + 1:
            record_event(AuthEvent.Kind.RESET_THROTTLED, request=request, user=users[0] if users else None)
        users = []
    else:
        # Who asked for whom; never the address typed (it may be anyone's, mistyped).
        requested_for: list[User | None] = [*users] or [None]
        for who in requested_for:
            record_event(AuthEvent.Kind.RESET_REQUESTED, request=request, user=who)
    _queue_mail([user.pk for user in users], request)


def eligible_users(email: str) -> list[User]:
    """Active accounts with a usable password whose address is ``email`` (compared as Django does)."""
    field = User.get_email_field_name()
    candidates = User.objects.filter(**{f"{field}__iexact": email, "is_active": True})
    return [user for user in candidates if user.has_usable_password() and _same(email, getattr(user, field))]


def send_reset_mails(*, user_ids: list[int], domain: str, use_https: bool, language: str) -> list[int]:
    """Mail each account its link (the task's work). Returns the ids whose mail could not be sent."""
    field = User.get_email_field_name()
    users = [
        user
        for user in User.objects.filter(pk__in=user_ids, is_active=True).order_by("pk")
        if user.has_usable_password() and getattr(user, field)
    ]
    if language not in {code for code, _name in settings.LANGUAGES}:
        language = settings.LANGUAGE_CODE
    failed: list[int] = []
    with translation.override(language):
        for user in users:
            context = {
                "username": user.get_username(),
                "protocol": "https" if use_https else "http",
                "domain": domain,
                "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
                "minutes": link_minutes(),
            }
            subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
            message = EmailMessage(subject, render_to_string(BODY_TEMPLATE, context), to=[getattr(user, field)])
            try:
                message.send()
            except (smtplib.SMTPException, OSError):
                logger.warning("Password reset mail for user %s not sent", user.pk, exc_info=True)
                failed.append(user.pk)
    return failed


def completed(*, user: User, request: HttpRequest) -> None:
    """After the new password is saved: record it, end the account's other sessions and release its lock."""
    record_event(AuthEvent.Kind.PASSWORD_RESET, request=request, user=user)
    # The password hash changed, so Django already refuses those sessions; they go from the store too.
    # This browser's session (it holds the reset's state) is spared: it is not signed in as the user.
    session = getattr(request, "session", None)
    end_sessions(user, keep=getattr(session, "session_key", None))
    release_account(user.get_username())


def _queue_mail(user_ids: list[int], request: HttpRequest) -> None:
    from accounts.tasks import send_password_reset_mail

    try:
        send_password_reset_mail.delay(
            user_ids=user_ids,
            domain=request.get_host(),
            use_https=request.is_secure(),
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
    except Exception:
        # The answer stays the same (it must not differ by account); the log says what failed.
        logger.exception("Could not queue the password reset mail")


def _count(key: str) -> tuple[int, int]:
    """Count one more in this hour's window: (the count so far, seconds until the window ends)."""
    now = int(time.time())
    window = now // WINDOW_SECONDS
    full_key = f"password-reset:{key}:{window}"
    # In the shared cache, or in this process's memory while Redis does not answer (never an error page).
    count = rate_counters.increment(full_key, timeout=WINDOW_SECONDS + 60)
    if count is None:  # the cache kept nothing: count this one alone
        count = 1
    return count, (window + 1) * WINDOW_SECONDS - now


def _email_key(email: str) -> str:
    # A keyed hash: the cache never holds an address someone typed.
    return salted_hmac("accounts.password_reset.email", _normal(email)).hexdigest()


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text.strip()).casefold()


def _same(first: str, second: str) -> bool:
    return _normal(first) == _normal(second)
