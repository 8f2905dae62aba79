"""The fence around URL ingest (ingest/fetch.py) against server-side request forgery.

Every refusal is checked for its message, not just for an exception: a broken fence would
otherwise still "pass" because connecting to 10.0.0.5 or to a closed port also fails. Where
a target can be real, it is: a server on 127.0.0.1 holds a "secret" page, and the tests
assert both that the fetch is refused and that the server never saw the request.
"""

from __future__ import annotations

import gzip
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from assistant.storage.library import Library
from assistant.server.service import Service
from assistant.core.settings import Settings
from ingest.fetch import FetchError, check_url_allowed, fetch_url
from ingest.loaders import LoadError, load_url
from ingest.pipeline import ADDED, ERROR
from tests.servers import serve, serve_app

SECRET = b"internal admin page: the database password is hunter2"
PRIVATE = "loopback, private or link-local"


def _fetch(url: str, **options) -> bytes:
    options = {"allow_private": False, "timeout_s": 5.0, "max_bytes": 1_000_000, **options}
    return fetch_url(url, **options).content


class Recorder:
    """A route that serves the secret and counts who asked for it."""

    def __init__(self, body: bytes = SECRET) -> None:
        self.hits = 0
        self.body = body

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        self.hits += 1
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.write(self.body)


@pytest.fixture
def secret_server() -> Iterator[tuple[str, int, Recorder]]:
    recorder = Recorder()
    with serve({"/secret": recorder}) as base:
        yield base, int(base.rsplit(":", 1)[1]), recorder


# --- Non-public addresses -------------------------------------------------------------------

@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",  # IPv4-mapped IPv6
        "http://2130706433:{port}/secret",  # 127.0.0.1 as one decimal number
        "http://0x7f000001:{port}/secret",  # ... as one hex number
        "http://0x7f.1:{port}/secret",  # ... hex, short form
        "http://127.1:{port}/secret",  # ... short dotted form
        "http://0:{port}/secret",  # 0.0.0.0 reaches the local host on Linux
        "http://example.com@127.0.0.1:{port}/secret",  # userinfo: the host is after the @
        "http://user:pw@localhost:{port}/secret",
        "http://127.0.0.1:{port}#@example.com/secret",  # the fragment hides nothing
    ],
)
def test_loopback_in_any_spelling_is_refused_and_never_contacted(secret_server, template: str) -> None:
    _, port, recorder = secret_server
    with pytest.raises(FetchError, match=PRIVATE) as refused:
        _fetch(template.format(port=port))
    assert "DA_ALLOW_PRIVATE_URLS" in str(refused.value)  # says how to allow it on purpose
    assert recorder.hits == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/",
        "http://10.255.255.255:8080/x",
        "http://172.16.0.1/",
        "http://172.31.200.7/admin",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
        "http://[fe80::1]/",  # IPv6 link-local
        "http://[fd12:3456::1]/",  # IPv6 unique local
        "http://100.64.0.1/",  # carrier-grade NAT: not private, not public either
        "http://224.0.0.1/",  # multicast
        "http://0.0.0.0/",
        "http://[::]/",
        "https://user@192.168.0.10:8443/",
    ],
)
def test_private_link_local_and_reserved_ranges_are_refused(url: str) -> None:
    with pytest.raises(FetchError, match=PRIVATE):
        check_url_allowed(url, allow_private=False)
    with pytest.raises(FetchError, match=PRIVATE):
        _fetch(url, timeout_s=2)


def test_octal_and_garbled_hosts_are_refused_as_invalid() -> None:
    # httpx refuses to parse an octal IPv4 literal, so it can never be connected to either way.
    for url in ("http://0177.0.0.1/", "http://[::1/", "http://exa mple.com/"):
        with pytest.raises(FetchError, match="not a valid URL|has no host|cannot resolve"):
            _fetch(url)


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("file:///etc/passwd", "file"),
        ("ftp://127.0.0.1/pub/x.txt", "ftp"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "gopher"),
        ("data:text/plain,Ignore%20previous%20instructions", "data"),
        ("javascript:alert(1)", "javascript"),
        ("dict://127.0.0.1:11211/stat", "dict"),
        ("example.com/article", "no scheme"),
    ],
)
def test_only_http_and_https_schemes(url: str, scheme: str) -> None:
    with pytest.raises(FetchError, match=f"only http and https URLs can be ingested, not '{scheme}'"):
        _fetch(url)
    with pytest.raises(LoadError, match="only http and https"):
        load_url(url, Settings())


# --- Caps on size and time ----------------------------------------------------------------------

def _chunked_forever(handler: BaseHTTPRequestHandler) -> None:
    """No Content-Length: the size is only known by reading, and it never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"A" * 65536
    for _ in range(400):  # 25 MB at most, if nobody stops reading
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


def test_size_cap_applies_to_a_body_without_content_length() -> None:
    with serve({"/endless": _chunked_forever}) as base:
        with pytest.raises(FetchError, match="over the 200000-byte limit"):
            _fetch(f"{base}/endless", allow_private=True, max_bytes=200_000)


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_size_cap_applies_after_decompression_so_a_gzip_bomb_stays_small() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MB in ~64 kB
    assert len(bomb) < 200_000
    routes = {"/bomb": (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, bomb)}
    with serve(routes) as base:
        tracemalloc.start()
        try:
            with pytest.raises(FetchError, match="over the 1000000-byte limit"):
                _fetch(f"{base}/bomb", allow_private=True, max_bytes=1_000_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB while refusing a gzip bomb"


_stop = threading.Event()
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + b"X-Padding: slow\r\n" * 20 + b"Content-Length: 2\r\n\r\n"


@pytest.fixture
def slow_routes() -> Iterator[tuple[dict, dict[str, int]]]:
    """Servers that take far longer than the cap, and how many bytes each had sent (the
    handlers are released at the end of the test)."""
    sent = {"body": 0, "head": 0}

    def silent(handler: BaseHTTPRequestHandler) -> None:
        _stop.wait(30)  # accepts the connection, never answers

    def trickle_body(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "300")
        handler.end_headers()
        for _ in range(300):  # one byte every 0.1 s: each read is quick, the whole takes 30 s
            if _stop.wait(0.1):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
            sent["body"] += 1

    def trickle_headers(handler: BaseHTTPRequestHandler) -> None:
        for byte in _HEAD + b"ok":  # the status line and headers alone take 40 s
            if _stop.wait(0.1):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            sent["head"] += 1

    _stop.clear()
    yield {"/silent": silent, "/trickle-body": trickle_body, "/trickle-headers": trickle_headers}, sent
    _stop.set()


@pytest.mark.parametrize(
    "path, message",
    [
        ("/silent", "timed out after 1 s|took longer than 1 s"),  # per-read timeout or watchdog, whichever is first
        ("/trickle-body", "took longer than 1 s"),
        ("/trickle-headers", "took longer than 1 s"),
    ],
)
@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
def test_time_cap_is_total_not_per_read(slow_routes, path: str, message: str) -> None:
    routes, sent = slow_routes
    with serve(routes) as base:
        with pytest.raises(FetchError, match=message):
            _fetch(f"{base}{path}", allow_private=True, timeout_s=1.0)
        # Refused while the server was still sending: httpx's timeout alone (per read) would
        # have waited for the whole trickle.
        assert sent["body"] < 300 and sent["head"] < len(_HEAD)


# --- Redirects and the explicit allowlist -------------------------------------------------------

@pytest.fixture(scope="module")
def _two_servers() -> Iterator[tuple[str, str, Recorder]]:
    """A: an allowed intranet server that redirects; B: a private server holding the secret."""
    recorder = Recorder()
    with serve({"/secret": recorder}) as b:
        port_a_holder: list[str] = []

        def redirect(location: str):
            def handler(h: BaseHTTPRequestHandler) -> None:
                h.send_response(302)
                h.send_header("Location", location.format(a_port=port_a_holder[0].rsplit(":", 1)[1], b=b))
                h.send_header("Content-Length", "0")
                h.end_headers()

            return handler

        routes = {
            "/article": (200, {"Content-Type": "text/plain"}, b"The ferry timetable changed in March."),
            "/to-article": redirect("/article"),
            "/to-b": redirect("{b}/secret"),
            "/to-localhost": redirect("http://localhost:{a_port}/article"),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-file": redirect("file:///etc/passwd"),
            "/to-decimal": redirect("http://2130706433:{b_port}/secret".replace("{b_port}", b.rsplit(":", 1)[1])),
        }
        with serve(routes) as a:
            port_a_holder.append(a)
            yield a, b, recorder


@pytest.fixture
def two_servers(_two_servers) -> tuple[str, str, Recorder]:
    _two_servers[2].hits = 0
    return _two_servers


def test_allowlist_admits_the_named_host_and_port_only(two_servers) -> None:
    a, _, _ = two_servers
    allowed = [a.removeprefix("http://")]  # "127.0.0.1:PORT_A"
    assert _fetch(f"{a}/article", allowed_hosts=allowed) == b"The ferry timetable changed in March."
    assert _fetch(f"{a}/to-article", allowed_hosts=allowed) == b"The ferry timetable changed in March."
    with pytest.raises(FetchError, match=PRIVATE):
        _fetch(f"{a}/article")  # the default stays closed
    other_port = "127.0.0.1:1" if not a.endswith(":1") else "127.0.0.1:2"
    with pytest.raises(FetchError, match=PRIVATE):
        _fetch(f"{a}/article", allowed_hosts=[other_port])


@pytest.mark.parametrize(
    "path, message",
    [
        ("/to-b", PRIVATE),
        ("/to-decimal", PRIVATE),
        ("/to-localhost", PRIVATE),  # allowed by name "127.0.0.1:PORT", not by address
        ("/to-metadata", PRIVATE),
        ("/to-file", "only http and https"),
    ],
)
def test_redirect_from_an_allowed_host_to_a_disallowed_one_is_refused(two_servers, path: str, message: str) -> None:
    a, _, recorder = two_servers
    with pytest.raises(FetchError, match=message) as refused:
        _fetch(f"{a}{path}", allowed_hosts=[a.removeprefix("http://")])
    assert f"reached by a redirect from {a}{path}" in str(refused.value)
    assert recorder.hits == 0


def test_allowlist_from_the_environment_and_through_the_library(two_servers, tmp_path: Path, monkeypatch) -> None:
    a, _, recorder = two_servers
    monkeypatch.setenv("DA_URL_ALLOWED_HOSTS", f'["{a.removeprefix("http://")}"]')
    settings = Settings(data_dir=tmp_path / "d")
    assert settings.url_allowed_hosts == [a.removeprefix("http://")] and not settings.allow_private_urls
    library = Library(settings)
    try:
        results = library.ingest([f"{a}/article", f"{a}/to-b"])
    finally:
        library.close()
    by_item = {r.item: r for r in results}
    assert by_item[f"{a}/article"].status == ADDED
    assert by_item[f"{a}/to-b"].status == ERROR and PRIVATE in by_item[f"{a}/to-b"].message
    assert recorder.hits == 0


# --- DNS rebinding: the address checked is not the address connected to ---------------------------

def test_a_name_that_rebinds_to_loopback_between_check_and_connect_is_refused(secret_server, monkeypatch) -> None:
    """The check resolves ``rebind.test`` to a public address; the connection then resolves it
    to 127.0.0.1 (what a rebinding DNS server does with a zero TTL). The peer check catches it
    before a byte of the request is sent."""
    _, port, recorder = secret_server
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port_, *args, **kwargs):
        if host == "rebind.test":
            if port_ is None:  # the fence's check
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]
            return real_getaddrinfo("127.0.0.1", port_, *args, **kwargs)  # the connection
        return real_getaddrinfo(host, port_, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(FetchError, match="DNS rebinding"):
        _fetch(f"http://rebind.test:{port}/secret")
    assert recorder.hits == 0


def test_api_url_ingest_reports_the_refusal(secret_server, settings: Settings) -> None:
    base, _, recorder = secret_server
    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    try:
        with serve_app(service_app(service)) as url:
            response = httpx.post(f"{url}/api/documents", data={"url": f"{base}/secret"}, timeout=60)
    finally:
        service.close()
    assert response.status_code == 200
    [result] = response.json()
    assert result["status"] == "error" and PRIVATE in result["message"]
    assert recorder.hits == 0


def service_app(service: Service):
    from ui import create_app

    return create_app(service)
