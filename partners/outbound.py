"""Webhook requests leave for the partner's server and nowhere else (server-side request forgery).

An organisation admin chooses a webhook's URL, so the URL must not reach the
register's own network: the database, Redis, the cloud's metadata service, an
admin interface on localhost. Every address the host name resolves to must be
public; the request goes to an address that was checked, never through a
second lookup that could answer differently (DNS rebinding), with the Host
header and TLS (SNI and the certificate check) for the host name. Redirects
are not followed. A failure is named by its class ("connection refused",
"timeout" ...), never by the system's message or the addresses: the delivery
log must not become a scanner of the network behind the register.

``settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` (local development and tests)
lets loopback and private-use addresses through; link-local (the metadata
service), multicast, unspecified, reserved and IPv4-in-IPv6 addresses never.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from socket import getaddrinfo
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_noop

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The classes of failure, stored in the delivery log as they are and translated when shown.
DNS_ERROR = gettext_noop("DNS error")
ADDRESS_NOT_ALLOWED = gettext_noop("address not allowed")
CONNECTION_REFUSED = gettext_noop("connection refused")
CONNECTION_FAILED = gettext_noop("connection failed")
TIMEOUT = gettext_noop("timeout")
TLS_ERROR = gettext_noop("TLS error")
INVALID_RESPONSE = gettext_noop("invalid response")
FAILURES = frozenset(
    {DNS_ERROR, ADDRESS_NOT_ALLOWED, CONNECTION_REFUSED, CONNECTION_FAILED, TIMEOUT, TLS_ERROR, INVALID_RESPONSE}
)

MAX_ADDRESSES_TRIED = 3
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundError(Exception):
    """A request that was not made or got no HTTP answer; ``failure`` is one of FAILURES."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


def address_allowed(address: IPAddress, *, allow_private: bool = False) -> bool:
    """Whether a request may go to this address."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address dressed as IPv6 is judged as the IPv4 address it reaches, or refused.
        compatible = address in _IPV4_COMPATIBLE and not (address.is_loopback or address.is_unspecified)
        if address.ipv4_mapped is not None or compatible:
            return False
        if address in _NAT64:
            return address_allowed(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), allow_private=allow_private)
        if address.sixtofour is not None and not address_allowed(address.sixtofour, allow_private=allow_private):
            return False
        if address.teredo is not None or address.is_site_local:
            return False
    if address.is_multicast or address.is_unspecified or address.is_link_local:
        return False
    if address.is_loopback:  # before "reserved", which ::1 also is
        return allow_private
    if address.is_reserved:
        return False
    if address.is_private:
        return allow_private
    return address.is_global


def _target(url: str) -> tuple[str, str, int, str]:
    """The scheme, host name, port and path of a webhook URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundError(ADDRESS_NOT_ALLOWED) from None
    schemes = {"https", "http"} if settings.WEBHOOK_ALLOW_HTTP else {"https"}
    if parts.scheme not in schemes or not parts.hostname:
        raise OutboundError(ADDRESS_NOT_ALLOWED)
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host``, all of them allowed (one refused refuses the host), in the resolver's order."""
    try:
        answers = getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        raise OutboundError(DNS_ERROR) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        try:
            address = ipaddress.ip_address(str(sockaddr[0]))
        except ValueError:
            raise OutboundError(DNS_ERROR) from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundError(DNS_ERROR)
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES
    if not all(address_allowed(address, allow_private=allow_private) for address in addresses):
        raise OutboundError(ADDRESS_NOT_ALLOWED)
    return addresses


def check_url(url: str) -> None:
    """Raise OutboundError unless the URL's scheme is allowed and its host resolves to allowed addresses only."""
    _scheme, host, port, _path = _target(url)
    resolve(host, port)


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP to a given address, whatever the host name would resolve to now; Host still names the host."""

    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLSConnection(_PinnedConnection):
    """HTTPS to a given address; the certificate must be valid for the host name, sent as SNI."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, address=address, timeout=timeout)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def tls_context() -> ssl.SSLContext:
    """The system's trusted certificates; the host name checked (tests trust their own authority here)."""
    return ssl.create_default_context()


def _failure(exc: BaseException) -> str:
    # Order matters: an SSLError is an OSError, a RemoteDisconnected both an HTTPException and an OSError.
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TLS_ERROR
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, http.client.HTTPException):
        return INVALID_RESPONSE
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    return CONNECTION_FAILED


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` once; return the response's status (a redirect is returned, not followed).

    Raises OutboundError when no HTTP answer came back.
    """
    scheme, host, port, path = _target(url)
    addresses = resolve(host, port)
    failure = CONNECTION_FAILED
    # A few of the host's addresses, each within the timeout, so that an attempt ends well within the task's limit.
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        try:
            connection: _PinnedConnection = (
                _PinnedTLSConnection(host, port, address=address, timeout=timeout, context=tls_context())
                if scheme == "https"
                else _PinnedConnection(host, port, address=address, timeout=timeout)
            )
        except (ValueError, http.client.HTTPException):  # a host name http.client refuses
            raise OutboundError(ADDRESS_NOT_ALLOWED) from None
        try:
            try:
                connection.connect()
            except (OSError, ValueError) as exc:
                failure = _failure(exc)
                if failure == TLS_ERROR:
                    raise OutboundError(failure) from None
                continue  # unreachable at this address: try the host's next one
            connection.request("POST", path, body=body, headers={**headers, "Connection": "close"})
            # The status is all that matters; the body is not read (the connection closes).
            return connection.getresponse().status
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise OutboundError(_failure(exc)) from None
        finally:
            connection.close()
    raise OutboundError(failure)
