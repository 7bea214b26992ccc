"""Reading settings from the environment.

Every setting comes from an environment variable. A bad value stops the
process at start with a message that names the variable, rather than
surfacing later as an obscure failure.
"""

from __future__ import annotations

import ipaddress
import os
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of 1, 0, true, false, yes, no, on, off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number.")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum:g}.")
    if above is not None and value <= above:
        raise ImproperlyConfigured(f"{name}={raw!r} must be more than {above:g}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at most {maximum:g}.")
    return value


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_list(name: str, default: list[str], *, what: str = "host") -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} is set but names no {what}; give a comma-separated list.")
    return items


_DATABASE_SCHEMES = ("postgres", "postgresql", "sqlite")


def env_database(name: str, default_sqlite: Path) -> dict[str, Any]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite)}
    # Name the URL's scheme, never the whole URL: it may carry a password.
    scheme = urlsplit(raw).scheme if "://" in raw else ""
    if scheme not in _DATABASE_SCHEMES:
        shown = f"the scheme {scheme + '://'!r}" if scheme else "no scheme"
        raise ImproperlyConfigured(
            f"{name} has {shown}: use a postgres:// (or postgresql://) URL, or sqlite:///path/to/file."
        )
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(raw, conn_max_age=60))
    except Exception as exc:  # dj_database_url raises several kinds of error
        raise ImproperlyConfigured(f"{name} is not a database URL this project understands: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgres:// (or postgresql://) or sqlite:/// URL, not {engine or raw!r}."
        )
    if engine == "django.db.backends.postgresql" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database: add it after the host, e.g. /repatriation.")
    return config


def env_redis_url(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name}={raw!r} must start with redis://, rediss:// or unix://.")
    return raw


def env_networks(name: str) -> tuple[str, ...]:
    """A comma-separated list of addresses and CIDR networks (``10.0.0.5, 10.1.0.0/16, fd00::/8``), normalised."""
    raw = os.environ.get(name, "")
    networks: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ImproperlyConfigured(
                    f"{name}: {item!r} is not an IP address or a network such as 10.0.0.0/8."
                ) from None
            raise ImproperlyConfigured(
                f"{name}: {item!r} has bits set after its prefix length; "
                f"did you mean {ipaddress.ip_network(item, strict=False)}?"
            ) from None
        if network.prefixlen == 0:
            raise ImproperlyConfigured(f"{name}: {item!r} would trust every address; name your proxies' addresses.")
        networks.append(str(network))
    return tuple(networks)


# scheme: (default port, STARTTLS, TLS from the start)
_EMAIL_SCHEMES = {"smtp": (25, False, False), "smtp+tls": (587, True, False), "smtps": (465, False, True)}
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def env_email_url(name: str) -> dict[str, Any] | None:
    """The SMTP server mail goes through, as Django's EMAIL_* settings; None when the variable is unset.

    ``smtp+tls://user:password@host:587`` (STARTTLS), ``smtps://user:password@host:465`` (TLS from the
    start), or ``smtp://localhost:25``: clear text, so only to a relay on this machine.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    # Name the URL's scheme and host, never the whole URL: it may carry a password.
    scheme = urlsplit(raw).scheme if "://" in raw else ""
    if scheme not in _EMAIL_SCHEMES:
        shown = f"the scheme {scheme + '://'!r}" if scheme else "no scheme"
        raise ImproperlyConfigured(
            f"{name} has {shown}: use smtp+tls:// (STARTTLS), smtps:// (TLS from the start), "
            "or smtp:// to a relay on this machine."
        )
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if not host:
        raise ImproperlyConfigured(f"{name} names no host: e.g. smtp+tls://user:password@mail.example.org:587.")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number from 1 to 65535.") from None
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name} has a path or query this project does not read: give scheme, host, port.")
    default_port, starttls, implicit_tls = _EMAIL_SCHEMES[scheme]
    if scheme == "smtp" and host not in _LOOPBACK_HOSTS:
        raise ImproperlyConfigured(
            f"{name} would send mail in clear text to {host}: use smtp+tls:// or smtps://, "
            "or smtp:// only to a relay on this machine (localhost)."
        )
    return {
        "EMAIL_HOST": host,
        "EMAIL_PORT": port or default_port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": starttls,
        "EMAIL_USE_SSL": implicit_tls,
    }


def env_email_address(name: str, default: str | None) -> str:
    """A sender such as ``register@ngo.example`` or ``Children's return register <register@ngo.example>``.

    Without a default, the variable is required.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        if default is None:
            raise ImproperlyConfigured(f"{name} is not set: give the address the register's mail comes from.")
        return default
    _display_name, address = parseaddr(raw)
    try:
        if "\n" in raw or "\r" in raw or not address:
            raise ValidationError("not an address")
        validate_email(address)
    except ValidationError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an e-mail address.") from None
    return raw
