"""Celery tasks of accounts: the password reset's mail. They take ids, never objects."""

from __future__ import annotations

from celery import shared_task

from accounts import password_reset

MAX_MAIL_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=MAX_MAIL_RETRIES, time_limit=120, soft_time_limit=100)
def send_password_reset_mail(  # type: ignore[no-untyped-def]
    self, *, user_ids: list[int], domain: str, use_https: bool, language: str
) -> int:
    """Mail the accounts of one reset request their links (none, often). Returns how many were sent."""
    failed = password_reset.send_reset_mails(user_ids=user_ids, domain=domain, use_https=use_https, language=language)
    # Eagerly (no Redis: the demo) a retry would hold up the request; the failure is in the log.
    if failed and not self.request.is_eager and self.request.retries < MAX_MAIL_RETRIES:
        # Only the mails that failed, after 30 s, 60 s, 120 s ... (a link made later works as long).
        raise self.retry(
            kwargs={"user_ids": failed, "domain": domain, "use_https": use_https, "language": language},
            countdown=min(1800, 30 * 2**self.request.retries),
        )
    return len(user_ids) - len(failed)


@shared_task(bind=True, acks_late=True, max_retries=MAX_MAIL_RETRIES, time_limit=120, soft_time_limit=100)
def send_invitation_mail(  # type: ignore[no-untyped-def]
    self, *, invitation_id: int, domain: str, use_https: bool, language: str
) -> bool:
    """Mail an invitation's one-time link (its secret is made here, never passed through the broker)."""
    from accounts import invitations

    sent = invitations.send_invitation(
        invitation_id=invitation_id, domain=domain, use_https=use_https, language=language
    )
    if not sent and not self.request.is_eager and self.request.retries < MAX_MAIL_RETRIES:
        raise self.retry(countdown=min(1800, 30 * 2**self.request.retries))
    return sent
