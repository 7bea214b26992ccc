from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import sealing
from accounts.models import AuthenticatorApp


class Command(BaseCommand):
    help = (
        "Re-encrypt every authenticator app's key with the first key of DJANGO_SECOND_FACTOR_KEYS (after a new "
        "key was put first). Backup and enrolment codes are hashed, not encrypted: those made under an older key "
        "keep working while that key stays listed, so drop an old key only once they have been replaced."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        resealed = 0
        with transaction.atomic():
            for device in AuthenticatorApp.objects.select_for_update().order_by("pk"):
                if sealing.sealed_with_current_key(device.key):
                    continue
                try:
                    secret = device.bin_key
                except sealing.SealError as error:
                    # Nothing is changed: the keys needed are still to be listed.
                    raise CommandError(f"authenticator app {device.pk} (user {device.user_id}): {error}.") from None
                AuthenticatorApp.objects.filter(pk=device.pk).update(key=sealing.seal(secret))
                resealed += 1
        self.stdout.write(f"{resealed} authenticator app key(s) re-encrypted with the current key.")
