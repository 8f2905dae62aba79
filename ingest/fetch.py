"""Fetch a web page the user asked for, and nothing else.

URL ingest is the only network access the assistant makes, so it is fenced: only http(s),
no loopback/private/link-local/reserved targets unless settings allow them (server-side
request forgery), every redirect hop re-checked, a cap on bytes and on time. A body cut short
(by either cap, or by the server) is an error, never a shorter page.

The URL is parsed with httpx's own parser, so the host that is checked is the host that is
connected to. The address each connection really reached is checked again when it opens
(a name that resolves to a public address for the check and to 127.0.0.1 for the connection,
DNS rebinding, is caught there), and a watchdog ends the fetch at the deadline even when a
server trickles its headers a byte at a time (httpx's timeouts are per read, not in total).
``allowed_hosts`` lets an operator open the fence for named hosts only (``wiki.intranet`` or
``127.0.0.1:8080``), never for whatever a redirect points at.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin

import httpx

MAX_REDIRECTS = 5
USER_AGENT = "DebateAssistant/0.1 (+article ingest)"
# Compressed bodies are inflated here, at most this much per step, so the size cap is checked
# every 64 kB of output (httpx would inflate each 64 kB network read whole: up to ~64 MB).
_INFLATE_STEP = 64 * 1024
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class FetchError(RuntimeError):
    """The URL could not be fetched; the message says why in user terms."""


@dataclass(frozen=True)
class FetchedPage:
    url: str
    content: bytes
    content_type: str


# getaddrinfo has no timeout of its own (a dead resolver blocks it for resolv.conf's retries, or
# longer), so lookups run here and are waited for with one. A lookup that hangs keeps its thread
# until the resolver answers; four threads bound what hung lookups can hold.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns")
DNS_TIMEOUT_S = 5.0


def _addresses(host: str, timeout_s: float = DNS_TIMEOUT_S) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, None)
    try:
        infos = lookup.result(timeout=timeout_s)
    except FutureTimeout:
        lookup.cancel()
        raise FetchError(f"cannot resolve host {host!r}: no answer from DNS within {timeout_s:g} s") from None
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    # An IPv4 or IPv6 sockaddr starts with the host as a string (typeshed also allows the int of other families).
    return [ipaddress.ip_address(cast(str, info[4][0]).split("%")[0]) for info in infos]


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast only: no loopback, private, link-local, shared (100.64/10), reserved."""
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour  # ::ffff:127.0.0.1, 2002:7f00:1::
        if embedded is not None:
            return _is_public(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _host_port(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (lower-case host, port or None)."""
    try:
        url = httpx.URL(f"http://{entry.strip()}")
    except httpx.InvalidURL as exc:
        raise FetchError(f"DA_URL_ALLOWED_HOSTS entry {entry!r} is not a host or host:port ({exc})") from exc
    return url.host.lower().rstrip("."), url.port


def host_is_listed(host: str, port: int, allowed_hosts: Iterable[str]) -> bool:
    """True if ``host`` (with ``port``) is named in ``allowed_hosts``: a bare host allows every port."""
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        listed_host, listed_port = _host_port(entry)
        if listed_host == host and listed_port in (None, port):
            return True
    return False


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"not a valid URL: {url!r} ({exc})") from exc


def check_url_allowed(
    url: str, allow_private: bool, allowed_hosts: Iterable[str] = (), dns_timeout_s: float = DNS_TIMEOUT_S
) -> None:
    """Raise FetchError unless ``url`` is http(s) and (by default) resolves only to public addresses
    (within ``dns_timeout_s``).

    Hosts named in ``allowed_hosts`` skip the address check; nothing else does.
    """
    parsed = _parse(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be ingested, not {parsed.scheme or 'no scheme'!r}")
    if not parsed.host:
        raise FetchError(f"URL has no host: {url!r}")
    if allow_private or host_is_listed(parsed.host, parsed.port or _DEFAULT_PORTS[parsed.scheme], allowed_hosts):
        return
    blocked = [str(a) for a in _addresses(parsed.raw_host.decode("ascii"), dns_timeout_s) if not _is_public(a)]
    if blocked:
        raise FetchError(
            f"refusing to fetch {parsed.host!r}: it resolves to a loopback, private or link-local "
            f"address ({', '.join(sorted(set(blocked)))}); set DA_ALLOW_PRIVATE_URLS=true to allow it"
        )


_DEFAULT_PORTS = {"http": 80, "https": 443}

# The one answer to anything that is not a web address, whatever it names: the same words whether a
# path exists, is a folder or is unreadable, so the refusal tells nothing about the server's files.
WEB_URL_ONLY = "only http:// and https:// URLs can be added by URL; to add a file, upload it"


def require_web_url(text: str) -> str:
    """``text`` as an http(s) URL with a host, else FetchError(WEB_URL_ONLY).

    The API and the web UI take URLs from remote users, who must never name a file or folder of
    the server (``/etc/x.md``, ``../notes``, ``~/secret.txt``, ``file:///...``): only the CLI, run by
    a local user on their own files, takes paths. Where the URL may point is checked later, when it
    is fetched (``check_url_allowed``).
    """
    url = text.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise FetchError(WEB_URL_ONLY) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(WEB_URL_ONLY)
    return url


class _Fence:
    """One fetch's guard on every connection it opens: where it really went, and for how long.

    Installed as httpx's ``trace`` extension, it sees each new TCP connection before a byte of
    the request is sent, checks the peer address (unless the URL's host is allowed by name),
    and remembers the socket so that a timer can shut it down at the deadline.
    """

    def __init__(self, timeout_s: float, allow_private: bool, allowed_hosts: Iterable[str]) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.allow_private = allow_private
        self.allowed_hosts = tuple(allowed_hosts)
        self.expired = False
        self.url: httpx.URL | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Fence":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def out_of_time(self) -> bool:
        """True once the deadline has passed, whether or not the watchdog has fired yet."""
        return self.expired or time.monotonic() > self.deadline

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on a trickling server
                except OSError:
                    pass

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info["return_value"]
        sock = stream.get_extra_info("socket")
        with self._lock:
            if sock is not None:
                self._sockets.append(sock)
        peer = stream.get_extra_info("server_addr")
        if self.allow_private or peer is None or self.url is None:
            return
        if host_is_listed(self.url.host, self.url.port or _DEFAULT_PORTS.get(self.url.scheme, 80), self.allowed_hosts):
            return
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
        if not _is_public(address) and not host_is_listed(str(address), int(peer[1]), self.allowed_hosts):
            stream.close()
            raise FetchError(
                f"refusing to fetch {self.url.host!r}: the connection reached {address}, a loopback, private "
                "or link-local address, although the name resolved to a public one a moment before (DNS rebinding?); "
                "an HTTP proxy on a private address must be listed in DA_URL_ALLOWED_HOSTS"
            )


def _decoded_body(response: httpx.Response) -> Iterator[bytes]:
    """The body with its Content-Encoding undone in bounded steps (identity, gzip or deflate only)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        yield from response.iter_raw()
        return
    if encoding not in _WBITS:
        raise FetchError(f"{response.url} uses the content encoding {encoding!r}, which is not supported")
    inflater = zlib.decompressobj(_WBITS[encoding])
    try:
        for raw in response.iter_raw():
            while raw:
                yield inflater.decompress(raw, _INFLATE_STEP)
                raw = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:
        raise FetchError(f"{response.url} sent a body that is not valid {encoding}: {exc}") from exc
    if not inflater.eof:  # zlib's flush hands over a cut stream's start without complaint
        raise FetchError(
            f"{response.url} sent a {encoding} body that stops before its end: the page did not arrive whole"
        )


def _read_body(response: httpx.Response, url: str, max_bytes: int, fence: _Fence) -> bytes:
    """The whole body, or FetchError: a body cut short is never taken for the page.

    A body without a length ends when the connection closes, so when the watchdog shuts the
    socket at the deadline httpx just ends the iteration, as if the page were complete: the
    time is checked again after the last chunk. A body the server broke off (fewer bytes than
    its Content-Length, a chunked body without its last chunk) is an error too.
    """
    body = bytearray()
    try:
        for chunk in _decoded_body(response):  # a gzip bomb meets the same cap, 64 kB at a time
            body.extend(chunk)
            if len(body) > max_bytes:
                raise FetchError(f"{url} is over the {max_bytes}-byte limit")
            if fence.out_of_time():
                break
    except httpx.RemoteProtocolError as exc:  # the headers were read: it is the body that broke off
        if not fence.out_of_time():
            raise FetchError(f"{url} broke off before the whole body arrived ({exc})") from exc
    except FetchError:
        if not fence.out_of_time():
            raise
    if fence.out_of_time():
        raise FetchError(f"{url} took longer than {fence.timeout_s:g} s; nothing of it was kept")
    return bytes(body)


def fetch_url(
    url: str, *, allow_private: bool, timeout_s: float, max_bytes: int, allowed_hosts: Iterable[str] = (),
    dns_timeout_s: float = DNS_TIMEOUT_S,
) -> FetchedPage:
    """GET ``url`` following at most MAX_REDIRECTS checked redirects, within ``max_bytes`` and ``timeout_s`` in total."""
    current, previous = url, None
    with (
        _Fence(timeout_s, allow_private, allowed_hosts) as fence,
        httpx.Client(
            follow_redirects=False, timeout=timeout_s, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
        ) as client,
    ):
        for _ in range(MAX_REDIRECTS + 1):
            try:
                check_url_allowed(current, allow_private, fence.allowed_hosts, min(dns_timeout_s, timeout_s))
            except FetchError as exc:
                raise FetchError(f"{exc} (reached by a redirect from {previous})" if previous else str(exc)) from None
            fence.url = httpx.URL(current)
            try:
                with client.stream("GET", current, extensions={"trace": fence.trace}) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(f"{current} redirected without a Location header")
                        current, previous = urljoin(current, location), current
                        continue
                    if response.status_code >= 400:
                        raise FetchError(f"{current} answered HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise FetchError(f"{current} is {declared} bytes, over the {max_bytes}-byte limit")
                    return FetchedPage(
                        url=str(response.url), content=_read_body(response, current, max_bytes, fence),
                        content_type=response.headers.get("content-type", ""),
                    )
            except httpx.TimeoutException as exc:
                raise FetchError(f"{current} timed out after {timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                if fence.expired:
                    raise FetchError(f"{current} took longer than {timeout_s:g} s") from exc
                raise FetchError(f"could not fetch {current}: {exc}") from exc
    raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")
