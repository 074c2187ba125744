"""Requests MAIS makes to other servers (an owner's calendar feed): only to public addresses.

The host is resolved once, every address it resolves to is checked, and the connection goes to
exactly the address that was checked, so a second DNS answer (rebinding) cannot send the request
into the platform's own network. Each redirect hop is resolved and checked again. The body is
capped and the whole exchange has a deadline, enforced by closing the socket when it passes (a
server dripping one byte at a time never trips a per-read timeout).

Loopback is refused like every other non-global address unless ``MAIS_OUTBOUND_ALLOW_LOOPBACK`` is
set (the demo and the tests serve feeds on 127.0.0.1); private ranges are never allowed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from flask import current_app, has_app_context
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError

MAX_BODY_BYTES = 2 * 1024 * 1024
TOTAL_SECONDS = 20.0
CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "MAIS-calendar-sync/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 spellings that carry an IPv4 address (or reach one through a translator): the address they
# lead to is not the one ``is_global`` judges, so they are refused outright.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEREDO = ipaddress.ip_network("2001::/32")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class OutboundError(Exception):
    """The request was refused or failed; the message is shown to the owner as it is."""


def allow_loopback_setting() -> bool:
    return bool(has_app_context() and current_app.config.get("MAIS_OUTBOUND_ALLOW_LOOPBACK"))


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why MAIS must not connect to ``address``; None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a link-local address"
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped address"
        if address in _IPV4_COMPATIBLE and address not in (
            ipaddress.IPv6Address("::"),
            ipaddress.IPv6Address("::1"),
        ):
            return "an IPv4-compatible address"
        if any(address in network for network in _NAT64):
            return "a NAT64 address"
        if address in _TEREDO:
            return "a Teredo address"
        if address in _SIX_TO_FOUR:
            embedded = address.sixtofour
            if embedded is None or refusal(embedded) is not None:
                return "a 6to4 address of a non-public IPv4 address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    for flag, what in (
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-public address"),
    ):
        if flag:
            return what
    return None


def _resolve(host: str, port: int, deadline: _Deadline) -> list[IPAddress]:
    """Every address ``host`` resolves to, within the deadline (getaddrinfo has no timeout of its
    own, so it runs in a daemon thread that is abandoned when the deadline passes)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    answers: queue.Queue[Any] = queue.Queue(maxsize=1)

    def lookup() -> None:
        try:
            answers.put(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            answers.put(error)

    threading.Thread(target=lookup, daemon=True, name="mais-outbound-dns").start()
    try:
        result = answers.get(timeout=max(deadline.remaining(), 0.001))
    except queue.Empty:
        raise OutboundError("The calendar did not answer in time.") from None
    if isinstance(result, OSError):
        raise OutboundError(f"The calendar host {host} could not be found.")
    addresses: list[IPAddress] = []
    for info in result:
        address = ipaddress.ip_address(info[4][0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundError(f"The calendar host {host} could not be found.")
    return addresses


@dataclass
class _Deadline:
    """Closes every socket it was given once ``seconds`` have passed."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    expired: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shut(sock)
            self._sockets.append(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    @contextmanager
    def running(self) -> Iterator[None]:
        timer = threading.Timer(max(self.remaining(), 0), self.expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, even for TLS: ssl.SSLSocket.shutdown would tear down the TLS
    # object under the reading thread; shutting the descriptor just makes its read return.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _connection_classes(deadline: _Deadline) -> tuple[type, type]:
    class WatchedHTTPConnection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class WatchedHTTPSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return WatchedHTTPConnection, WatchedHTTPSConnection


@dataclass(frozen=True)
class FetchResult:
    status: int  # 200, or 304 when a conditional request found nothing new
    body: bytes
    etag: str | None
    last_modified: str | None
    url: str


def _checked_target(url: str, deadline: _Deadline, allow_loopback: bool) -> tuple[Any, int, list]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("The calendar address must start with https:// or http://.")
    if parts.username or parts.password:
        raise OutboundError("The calendar address must not contain a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundError("The calendar address has an invalid port.") from None
    addresses = _resolve(parts.hostname, port, deadline)
    for address in addresses:
        if refusal(address, allow_loopback=allow_loopback) is not None:
            raise OutboundError("The calendar address must be on the public internet.")
    return parts, port, addresses


def _request(
    url: str,
    headers: dict[str, str],
    deadline: _Deadline,
    allow_loopback: bool,
    max_bytes: int,
) -> tuple[int, dict[str, str], bytes]:
    """One hop: the status, the headers and (for a 200) the body."""
    parts, port, addresses = _checked_target(url, deadline, allow_loopback)
    http_class, https_class = _connection_classes(deadline)
    host_header = parts.netloc.rpartition("@")[2]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    last_error: Exception | None = None
    for address in addresses:
        remaining = deadline.remaining()
        if remaining <= 0:
            break
        timeout = urllib3.Timeout(
            connect=min(CONNECT_SECONDS, remaining), read=min(READ_SECONDS, remaining)
        )
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(address),
                port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
                server_hostname=parts.hostname,
                assert_hostname=parts.hostname,
            )
            pool.ConnectionCls = https_class
        else:
            pool = urllib3.HTTPConnectionPool(
                str(address), port, timeout=timeout, retries=False, maxsize=1
            )
            pool.ConnectionCls = http_class
        try:
            with pool:
                response = pool.urlopen(
                    "GET",
                    path,
                    headers={**headers, "Host": host_header},
                    redirect=False,
                    preload_content=False,
                    assert_same_host=False,
                )
                try:
                    body = b""
                    if response.status == 200:
                        body = _read_capped(response, max_bytes)
                    if deadline.expired:
                        # The socket was shut under the read: what came is a truncated body
                        # (a close-delimited one would otherwise look complete).
                        raise OutboundError("The calendar did not answer in time.")
                    return response.status, dict(response.headers.items()), body
                finally:
                    response.release_conn()
        except urllib3.exceptions.NewConnectionError as error:
            last_error = error
            continue
        except urllib3.exceptions.SSLError:
            raise OutboundError("The calendar's secure connection could not be verified.") from None
        except (HTTPError, OSError) as error:
            last_error = error
            break
    if deadline.expired or deadline.remaining() <= 0:
        raise OutboundError("The calendar did not answer in time.")
    raise OutboundError("The calendar could not be reached.") from last_error


def _read_capped(response: Any, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise OutboundError(f"The calendar is larger than {max_bytes // (1024 * 1024)} MB.")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(f"The calendar is larger than {max_bytes // (1024 * 1024)} MB.")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = MAX_BODY_BYTES,
    seconds: float = TOTAL_SECONDS,
    allow_loopback: bool | None = None,
) -> FetchResult:
    """GET ``url`` from a public address, following at most MAX_REDIRECTS redirects, each
    checked; conditional when ``etag`` or ``last_modified`` is given. Raises OutboundError."""
    if allow_loopback is None:
        allow_loopback = allow_loopback_setting()
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = _Deadline(seconds)
    with deadline.running():
        for _hop in range(MAX_REDIRECTS + 1):
            status, response_headers, body = _request(
                url, headers, deadline, allow_loopback, max_bytes
            )
            lower = {name.lower(): value for name, value in response_headers.items()}
            if status in REDIRECT_STATUSES:
                location = lower.get("location")
                if not location:
                    raise OutboundError(f"The calendar answered with HTTP status {status}.")
                url = urljoin(url, location)
                continue
            if status in (200, 304):
                return FetchResult(status, body, lower.get("etag"), lower.get("last-modified"), url)
            raise OutboundError(f"The calendar answered with HTTP status {status}.")
    raise OutboundError("The calendar address redirects too many times.")
