"""Fetch a web page the user asked for, and nothing else.

URL ingest is the only network access the assistant makes, so it is fenced: only http(s),
no loopback/private/link-local/reserved targets unless settings allow them (server-side
request forgery), every redirect hop re-checked, a cap on bytes and on time.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 5
USER_AGENT = "DebateAssistant/0.1 (+article ingest)"


class FetchError(RuntimeError):
    """The URL could not be fetched; the message says why in user terms."""


@dataclass(frozen=True)
class FetchedPage:
    url: str
    content: bytes
    content_type: str


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc.strerror}") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_url_allowed(url: str, allow_private: bool) -> None:
    """Raise FetchError unless ``url`` is http(s) and (by default) resolves only to public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be ingested, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise FetchError(f"URL has no host: {url!r}")
    if allow_private:
        return
    blocked = [str(a) for a in _addresses(parts.hostname) if not _is_public(a)]
    if blocked:
        raise FetchError(
            f"refusing to fetch {parts.hostname!r}: it resolves to a loopback, private or link-local "
            f"address ({', '.join(sorted(set(blocked)))}); set DA_ALLOW_PRIVATE_URLS=true to allow it"
        )


def fetch_url(url: str, *, allow_private: bool, timeout_s: float, max_bytes: int) -> FetchedPage:
    """GET ``url`` following at most MAX_REDIRECTS checked redirects, within ``max_bytes`` and ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    current = url
    with httpx.Client(follow_redirects=False, timeout=timeout_s, headers={"User-Agent": USER_AGENT}) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url_allowed(current, allow_private)
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(f"{current} redirected without a Location header")
                        current = urljoin(current, location)
                        continue
                    if response.status_code >= 400:
                        raise FetchError(f"{current} answered HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise FetchError(f"{current} is {declared} bytes, over the {max_bytes}-byte limit")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > max_bytes:
                            raise FetchError(f"{current} is over the {max_bytes}-byte limit")
                        if time.monotonic() > deadline:
                            raise FetchError(f"{current} took longer than {timeout_s:g} s")
                    return FetchedPage(
                        url=str(response.url), content=bytes(body), content_type=response.headers.get("content-type", "")
                    )
            except httpx.TimeoutException as exc:
                raise FetchError(f"{current} timed out after {timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {current}: {exc}") from exc
    raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")
