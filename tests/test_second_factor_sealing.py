"""The second factor's secrets at rest: app keys encrypted, backup and enrolment codes hashed, keys rotated."""

from __future__ import annotations

import importlib
import io

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import enrolment, sealing
from accounts.models import AuthenticatorApp, BackupCodes, EnrolmentCode
from accounts.two_factor import new_authenticator_app, new_backup_codes

KEY_A = "first-second-factor-key-for-these-tests-0000000001"
KEY_B = "second-second-factor-key-for-these-tests-000000002"
KEY_C = "third-second-factor-key-for-these-tests-0000000003"


def current_code(device: AuthenticatorApp, ahead: int = 0) -> str:
    """The app's code now (``ahead``: the next one, still in the window; a code is accepted once)."""
    device.refresh_from_db()
    drift = device.drift + ahead
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def stored_key(device) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM otp_totp_totpdevice WHERE id = %s", [device.pk])
        return str(cursor.fetchone()[0])


@pytest.fixture
def keys(settings):
    settings.SECOND_FACTOR_KEYS = [KEY_A]
    return settings


def test_an_apps_key_is_stored_encrypted_and_still_gives_codes(keys, supervisor):
    device = new_authenticator_app(supervisor)
    secret = device.bin_key
    stored = stored_key(device)
    assert stored.startswith("$") and len(stored) <= 80
    assert secret.hex() not in stored and secret.hex().upper() not in stored
    assert AuthenticatorApp.objects.get(pk=device.pk).verify_token(current_code(device))
    # Two apps with the same secret are stored differently (a fresh nonce each time).
    assert sealing.seal(secret) != sealing.seal(secret)


def test_a_key_written_around_the_application_opens_nothing(keys, supervisor):
    device = new_authenticator_app(supervisor)
    code = current_code(device)
    # Someone with write access to the table swaps in a key of their own, in clear, or tampers with the box.
    TOTPDevice.objects.filter(pk=device.pk).update(key="00" * 20)
    assert not AuthenticatorApp.objects.get(pk=device.pk).verify_token("328482")
    TOTPDevice.objects.filter(pk=device.pk).update(key=stored_key(device)[:-2] + "AA")
    assert not AuthenticatorApp.objects.get(pk=device.pk).verify_token(code)


def test_keys_rotate_without_locking_anyone_out(keys, supervisor):
    device = new_authenticator_app(supervisor)
    codes = new_backup_codes(supervisor)
    keys.SECOND_FACTOR_KEYS = [KEY_B, KEY_A]  # a new key first, the old one still read
    assert AuthenticatorApp.objects.get(pk=device.pk).verify_token(current_code(device))
    assert BackupCodes.objects.get(user=supervisor).verify_token(codes[0])

    out = io.StringIO()
    call_command("reseal_second_factors", stdout=out)
    assert "1 authenticator app" in out.getvalue()
    assert sealing.sealed_with_current_key(stored_key(device))
    keys.SECOND_FACTOR_KEYS = [KEY_B]  # the old key dropped
    assert AuthenticatorApp.objects.get(pk=device.pk).verify_token(current_code(device, ahead=1))
    # Backup codes are hashed, not encrypted: those made under the dropped key no longer match.
    assert not BackupCodes.objects.get(user=supervisor).verify_token(codes[1])


def test_resealing_without_the_key_that_sealed_changes_nothing(keys, supervisor):
    device = new_authenticator_app(supervisor)
    before = stored_key(device)
    keys.SECOND_FACTOR_KEYS = [KEY_C]
    with pytest.raises(CommandError, match="DJANGO_SECOND_FACTOR_KEYS"):
        call_command("reseal_second_factors", stdout=io.StringIO())
    assert stored_key(device) == before
    assert not AuthenticatorApp.objects.get(pk=device.pk).verify_token("123456")


def test_backup_and_enrolment_codes_are_kept_as_keyed_hashes(keys, supervisor):
    issued = enrolment.issue_enrolment_code(user=supervisor, by=None)
    codes = new_backup_codes(supervisor)
    stored = set(StaticToken.objects.filter(device__user=supervisor).values_list("token", flat=True))
    assert not stored & set(codes)
    assert stored == {sealing.code_digest(code, sealing.BACKUP_CODES) for code in codes}
    [digest] = EnrolmentCode.objects.filter(user=supervisor).values_list("digest", flat=True)
    assert issued.code.replace("-", "").lower() not in digest.lower()
    # The same code under another key hashes differently: a copy of the table alone tests no guess.
    keys.SECOND_FACTOR_KEYS = [KEY_B]
    assert sealing.code_digest(codes[0], sealing.BACKUP_CODES) not in stored


def test_the_migration_seals_what_an_earlier_release_stored_in_clear(keys, supervisor):
    secret_hex = "3132333435363738393031323334353637383930"
    device = TOTPDevice.objects.create(user=supervisor, name="old phone", confirmed=True, key=secret_hex)
    backup = StaticDevice.objects.create(user=supervisor, name="old codes", confirmed=True)
    StaticToken.objects.create(device=backup, token="abcd2345")
    migration = importlib.import_module("accounts.migrations.0003_second_factor_sealed")
    migration.seal_secrets(django_apps, connection.schema_editor())

    sealed = stored_key(device)
    assert sealed.startswith("$") and secret_hex not in sealed
    app = AuthenticatorApp.objects.get(pk=device.pk)
    assert app.bin_key == bytes.fromhex(secret_hex)
    assert app.verify_token(current_code(app))
    assert StaticToken.objects.get(device=backup).token == sealing.code_digest("abcd2345", sealing.BACKUP_CODES)
    assert BackupCodes.objects.get(pk=backup.pk).verify_token("ABCD 2345")
    # Run again (a second migrate on a copy): nothing sealed twice.
    migration.seal_secrets(django_apps, connection.schema_editor())
    assert AuthenticatorApp.objects.get(pk=device.pk).bin_key == bytes.fromhex(secret_hex)
