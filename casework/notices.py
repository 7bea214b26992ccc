"""Notices: in the register (the header's bell), and a daily e-mail digest.

A notice is written in the transaction of what it tells (a status change, a
follow-up or cases given to someone), only when its user chose that kind
(the account page), never to the person who did it. The user's unread count
(``User.unread_notices``) moves in the same transaction, so the bell needs
no query of its own.

The digest (a daily beat task) tells each user who chose it, and has
something to tell, their overdue follow-ups, those due this week and their
unread notices: counts and case references only, never a case's facts.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import User
from casework.models import Case, StatusChange
from casework.task_models import Notice, Task

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
# At most this many references in a digest; the counts say how many there are.
DIGEST_REFERENCES = 20


def _bump(user_ids: list[int]) -> None:
    if user_ids:
        User.objects.filter(pk__in=user_ids).update(unread_notices=F("unread_notices") + 1)


def status_changed(*, case: Case, change: StatusChange, by_user: User | None, by_label: str) -> None:
    """Tell the case's assignee that someone else (a colleague, a partner) moved their case."""
    assignee_id = case.assigned_to_id
    if assignee_id is None or (by_user is not None and by_user.pk == assignee_id):
        return
    if not User.objects.filter(pk=assignee_id, is_active=True, notify_status_changes=True).exists():
        return
    Notice.objects.create(
        user_id=assignee_id,
        kind=Notice.Kind.STATUS_CHANGED,
        case=case,
        status=change.to_status,
        by=by_user.get_username() if by_user is not None else by_label,
    )
    _bump([assignee_id])


def task_given(*, task: Task, by: User) -> None:
    if task.assigned_to_id is None or task.assigned_to_id == by.pk:
        return
    if not User.objects.filter(pk=task.assigned_to_id, is_active=True, notify_assignments=True).exists():
        return
    Notice.objects.create(user_id=task.assigned_to_id, kind=Notice.Kind.TASK_GIVEN, case=task.case, by=by.username)
    _bump([task.assigned_to_id])


def cases_given(*, to_user: User, count: int, by: User) -> None:
    if count <= 0 or to_user.pk == by.pk or not to_user.notify_assignments:
        return
    Notice.objects.create(user=to_user, kind=Notice.Kind.CASES_GIVEN, count=count, by=by.username)
    _bump([to_user.pk])


def notices_of(user: User) -> list[Notice]:
    """The user's latest notices (with their cases, in one query); only cases the user may still see."""
    notices = Notice.objects.filter(user=user).select_related("case").order_by("-created_at", "-id")[:PAGE_SIZE]
    return [notice for notice in notices if notice.case is None or notice.case.organisation_id == user.organisation_id]


def mark_all_read(*, user: User) -> int:
    """Every notice of the user read now; the bell goes back to zero."""
    with transaction.atomic():
        read = Notice.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
        User.objects.filter(pk=user.pk).update(unread_notices=0)
    user.unread_notices = 0
    return int(read)


# --- the daily digest ------------------------------------------------------------------------


@dataclass
class Digest:
    overdue: int = 0
    due_soon: int = 0
    unread: int = 0
    overdue_references: list[str] = field(default_factory=list)

    @property
    def worth_sending(self) -> bool:
        return bool(self.overdue or self.due_soon or self.unread)


def digests(*, today: dt.date) -> dict[int, Digest]:
    """What each user who chose the digest would be told, in two queries whatever the number of users."""
    week_end = today + dt.timedelta(days=7)
    tasks = (
        Task.objects.filter(
            state=Task.State.OPEN,
            assigned_to__is_active=True,
            assigned_to__daily_digest=True,
            case__organisation_id=F("assigned_to__organisation_id"),
        )
        .values("assigned_to")
        .annotate(
            overdue=Count("pk", filter=Q(due_on__lt=today)),
            due_soon=Count("pk", filter=Q(due_on__gte=today, due_on__lt=week_end)),
        )
        .order_by()
    )
    found: dict[int, Digest] = {
        row["assigned_to"]: Digest(overdue=row["overdue"], due_soon=row["due_soon"]) for row in tasks
    }
    for user_id, unread in User.objects.filter(is_active=True, daily_digest=True, unread_notices__gt=0).values_list(
        "pk", "unread_notices"
    ):
        found.setdefault(user_id, Digest()).unread = unread
    return {user_id: digest for user_id, digest in found.items() if digest.worth_sending}


def send_digests(*, today: dt.date | None = None) -> tuple[int, int]:
    """Mail today's digests. Returns (sent, failed); a failure is logged and the others still go."""
    today = today or timezone.localdate()
    found = digests(today=today)
    users = User.objects.filter(pk__in=list(found)).exclude(email="").order_by("pk")
    overdue_refs: dict[int, list[str]] = {}
    for assignee, reference in (
        Task.objects.filter(
            state=Task.State.OPEN,
            due_on__lt=today,
            assigned_to__in=users,
            case__organisation_id=F("assigned_to__organisation_id"),
        )
        .order_by("assigned_to", "due_on", "id")
        .values_list("assigned_to", "case__reference")
    ):
        refs = overdue_refs.setdefault(assignee, [])
        if len(refs) < DIGEST_REFERENCES and reference not in refs:
            refs.append(reference)
    sent = failed = 0
    base_url = settings.REGISTER_URL
    for user in users:
        digest = found[user.pk]
        digest.overdue_references = overdue_refs.get(user.pk, [])
        context = {"user": user, "digest": digest, "base_url": base_url, "today": today}
        # No language is kept per user: the digest says it in Ukrainian, then in English.
        with translation.override("uk"):
            subject = "".join(render_to_string("casework/digest_subject.txt", context).splitlines())
        parts = []
        for language, _name in settings.LANGUAGES[::-1]:
            with translation.override(language):
                parts.append(render_to_string("casework/digest_email.txt", context).strip())
        body = "\n\n----\n\n".join(parts) + "\n"
        try:
            EmailMessage(subject, body, to=[user.email]).send()
        except (smtplib.SMTPException, OSError):
            logger.warning("Digest for user %s not sent", user.pk, exc_info=True)
            failed += 1
        else:
            sent += 1
    return sent, failed
