"""Receivers and name resolution for the webhook tests: everything stays on this machine. All data is synthetic."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, HTTPServer

from partners import outbound

# A public address the tests resolve names to and never connect to: IANA's example.com (documentation use).
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class Receiver:
    """A local HTTP(S) server that records what it receives and answers with scripted statuses."""

    def __init__(
        self,
        statuses: list[int],
        *,
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                receiver.paths.append(self.path)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer((host, 0), Handler)
        self.port = self.server.server_port
        scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _context: receiver.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{host}:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def fake_dns(monkeypatch, answers: dict[str, Iterable[str]] | Callable[[str], Iterable[str]]) -> list[str]:
    """Make partners.outbound resolve names from ``answers`` (a mapping, or a function of the name).

    A name it does not know does not exist; an address literal resolves to itself, as it does.
    Returns the list of the names looked up, in order, which grows as the code resolves.
    """
    looked_up: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            found = answers(host) if callable(answers) else answers.get(host)
            if found is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            addresses = list(found)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
            for address in addresses
        ]

    monkeypatch.setattr(outbound, "getaddrinfo", getaddrinfo)
    return looked_up
