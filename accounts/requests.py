"""What a request says about who sent it and where they go next: helpers every door uses."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User

# Proxy chains are short; a longer header is read only this far from the right.
MAX_FORWARDED_HOPS = 20
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: HttpRequest | Any | None) -> str | None:
    """The address the request came from: the one the lockout (AXES_CLIENT_IP_CALLABLE), the access log,
    sign-in events and every rate limit key on.

    REMOTE_ADDR, unless it is one of the trusted proxies (TRUSTED_PROXIES, from DJANGO_TRUSTED_PROXIES).
    Then X-Forwarded-For is read from the right, where each proxy appended the address that connected to
    it: past the trusted proxies, the first address is the client's. What the client itself wrote further
    left is never read, and an entry that is not an address ends the walk at the last proxy known, so
    neither a forged address nor garbage can choose the answer.
    """
    if request is None:
        return None
    meta = getattr(request, "META", None) or {}
    remote = _address(meta.get("REMOTE_ADDR"))
    if remote is None:
        return None
    proxies = _networks(tuple(settings.TRUSTED_PROXIES))
    if not _is_proxy(remote, proxies):
        return str(remote)
    client = remote
    hops = str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = _address(hop)
        if address is None:
            break
        client = address
        if not _is_proxy(address, proxies):
            break
    return str(client)


def _address(value: object) -> IPAddress | None:
    """An IP address, without a port (``203.0.113.7:5123``, ``[2001:db8::7]:443``) or a zone; else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in trusted)


def _is_proxy(address: IPAddress, proxies: tuple[IPNetwork, ...]) -> bool:
    return any(address in network for network in proxies)


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user of a page behind ``login_required``."""
    user = request.user
    assert isinstance(user, User), "only for views behind login_required"
    return user


def safe_next_url(request: HttpRequest, fallback: str | None = None) -> str:
    """The ``next`` of a form or link when it stays on this site; else ``fallback`` (the home page)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback if fallback is not None else str(settings.LOGIN_REDIRECT_URL)
