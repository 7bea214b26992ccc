"""The second factor's secrets at rest: authenticator-app keys encrypted, one-time codes hashed.

Keys come from the environment (``DJANGO_SECOND_FACTOR_KEYS``: comma-separated,
the first one current, the others still read, for rotation). A copy of the
database without them gives neither an app's key (AES-GCM) nor a way to test
guesses of a backup or enrolment code offline (HMAC-SHA256).

An encrypted key reads ``$<key id>$<base64url(nonce | ciphertext | tag)>``:
70 characters for an app's 20-byte key, within django-otp's 80.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MARK = "$"
# What the derived keys are for: the encryption of app keys, and each kind of hashed code.
APP_KEYS = b"register second factor: authenticator app keys v1"
BACKUP_CODES = b"register second factor: backup codes v1"
ENROLMENT_CODES = b"register second factor: enrolment codes v1"
# A hashed code fills django-otp's 16-character token column: 80 bits of HMAC, base32.
CODE_DIGEST_LENGTH = 16


class SealError(Exception):
    """An encrypted key that no configured key opens (a key removed too early, or an edited row)."""


@dataclass(frozen=True)
class _Key:
    identifier: str
    material: bytes

    def derive(self, purpose: bytes) -> bytes:
        return _derived(self.material, purpose)


@cache
def _derived(material: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material)


@cache
def _keys(configured: tuple[str, ...]) -> tuple[_Key, ...]:
    keys = []
    for value in configured:
        material = value.encode()
        keys.append(_Key(identifier=hashlib.sha256(material).hexdigest()[:4], material=material))
    return tuple(keys)


def keys() -> tuple[_Key, ...]:
    return _keys(tuple(settings.SECOND_FACTOR_KEYS))


def is_sealed(value: str) -> bool:
    return value.startswith(MARK)


def seal(secret: bytes) -> str:
    """Encrypt with the current key."""
    key = keys()[0]
    nonce = os.urandom(12)
    box = AESGCM(key.derive(APP_KEYS)).encrypt(nonce, secret, key.identifier.encode())
    text = base64.urlsafe_b64encode(nonce + box).decode().rstrip("=")
    return f"{MARK}{key.identifier}{MARK}{text}"


def unseal(value: str) -> bytes:
    """Decrypt with whichever configured key sealed it."""
    try:
        _empty, identifier, text = value.split(MARK, 2)
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise SealError("not an encrypted key") from None
    for key in keys():
        if key.identifier != identifier:
            continue
        try:
            return AESGCM(key.derive(APP_KEYS)).decrypt(raw[:12], raw[12:], identifier.encode())
        except InvalidTag:
            continue
    raise SealError(f"no configured key (DJANGO_SECOND_FACTOR_KEYS) opens key id {identifier}")


def sealed_with_current_key(value: str) -> bool:
    return is_sealed(value) and value.split(MARK, 2)[1] == keys()[0].identifier


def _code_digest(key: _Key, purpose: bytes, code: str) -> str:
    mac = hmac.new(key.derive(purpose), normal_code(code).encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:CODE_DIGEST_LENGTH]


def normal_code(code: str) -> str:
    """A code as typed: spaces and dashes (the grouping) and the case do not matter."""
    return "".join(code.split()).replace("-", "").lower()


def code_digest(code: str, purpose: bytes) -> str:
    """The stored form of a one-time code, under the current key."""
    return _code_digest(keys()[0], purpose, code)


def code_digests(code: str, purpose: bytes) -> Sequence[str]:
    """The forms a stored code may have, under every configured key (codes made before a rotation)."""
    return [_code_digest(key, purpose, code) for key in keys()]
