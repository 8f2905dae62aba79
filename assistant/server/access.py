"""Who may use the server: one rule for every entry point, applied in one ASGI middleware.

The process serves the REST API (``/api``), the Gradio web UI and Gradio's own API
(``/gradio_api/...``: info, call, queue, upload, files). All of them reach the same library and
model, so they share one rule:

- **Credentials configured** (``DA_API_TOKEN``, or ``DA_UI_USERNAME`` + ``DA_UI_PASSWORD``): every
  request but ``GET /api/health`` must carry one of them: ``Authorization: Bearer <token>``, HTTP
  basic auth with the UI user and password, or the session cookie that the login form (``/login``,
  shown instead of any page to a browser without credentials) sets after a right token or password.
  Anything else is a 401 (a browser gets the login form with it).
- **Nothing configured**: the server is for this machine only. ``main`` binds it to 127.0.0.1 and
  refuses another address unless told ``--allow-no-auth`` explicitly (``bind_problem``), and requests
  whose ``Host`` is not a loopback name are refused, so a web page cannot reach the open local
  server through DNS rebinding.

- **No cross-origin writes** (CSRF), with or without credentials: every request but GET, HEAD and
  OPTIONS, and every websocket handshake, must come from the app's own page (``Origin``, else
  ``Referer``, equal to the scheme, host and port the request was sent to, and no
  ``Sec-Fetch-Site`` naming another site), or carry a right ``Authorization`` header and no sign
  of another site (a script's token: no Origin needed). A browser attaches the session cookie,
  and on a server without credentials nothing at all is needed, so without this any web page
  the user opens could add and delete documents. Preflights from other origins get a 403 with no
  ``Access-Control-Allow-*`` header: no other origin may call or read the app from a browser.
- **Guessing is throttled**: after ``LOGIN_MAX_FAILURES`` wrong tokens or passwords from one
  address (at ``/login`` or in an ``Authorization`` header) within ``LOGIN_WINDOW_S``, that
  address gets 429 for every credential it tries until the window has passed.

Being a plain ASGI middleware around the whole app, it runs before routing: a route added later, by
us or by a new Gradio version, is covered without being listed anywhere (``tests/test_security.py``
walks every route the app serves to check that).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import ipaddress
import math
import time
from collections import OrderedDict, deque
from typing import Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.core.settings import Settings

PUBLIC_PATHS = frozenset({"/api/health"})
LOGIN_PATH = "/login"
SESSION_COOKIE = "da_session"
_LOGIN_BODY_LIMIT = 8 * 1024
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_S = 60.0
_THROTTLE_MAX_ADDRESSES = 10_000


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine can reach."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccessRule:
    """The configured credentials and the one question asked of every request: may it pass?"""

    def __init__(self, settings: Settings) -> None:
        self.token = settings.api_token.get_secret_value() if settings.api_token else None
        self.username = settings.ui_username or ""
        self.password = settings.ui_password.get_secret_value() if settings.ui_password else None
        secret = "\0".join([self.token or "", self.username, self.password or ""]).encode()
        # The session cookie is derived from the credentials (never the token itself): it works across
        # restarts and replicas, and changing a credential logs every browser out.
        self.session = hmac.new(secret, b"debate-assistant session v1", hashlib.sha256).hexdigest()

    @property
    def configured(self) -> bool:
        return self.token is not None or self.password is not None

    def token_ok(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def password_ok(self, user: str, password: str) -> bool:
        return (
            self.password is not None
            and hmac.compare_digest(user.encode(), self.username.encode())
            and hmac.compare_digest(password.encode(), self.password.encode())
        )

    def authorization_ok(self, headers: Headers) -> bool:
        """A right bearer token, or basic-auth user and password, in the ``Authorization`` header."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(value.strip()):
            return True
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            return self.password_ok(user, password)
        return False

    def session_ok(self, headers: Headers) -> bool:
        cookie = _cookie(headers, SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode())

    def allows(self, headers: Headers) -> bool:
        """A right bearer token, basic-auth user and password, or session cookie."""
        return self.authorization_ok(headers) or self.session_ok(headers)

    def describe(self) -> str:
        """What a caller must send, for the 401 message and the start-up line."""
        ways = []
        if self.token is not None:
            ways.append("'Authorization: Bearer <DA_API_TOKEN>'")
        if self.password is not None:
            ways.append("HTTP basic auth (DA_UI_USERNAME, DA_UI_PASSWORD)")
        return " or ".join(ways + [f"the session cookie from {LOGIN_PATH}"])


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _host_name(host_header: str) -> str:
    """``127.0.0.1:7860`` -> ``127.0.0.1``, ``[::1]:7860`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rsplit(":", 1)[0]


def _safe_next(target: str) -> str:
    """Only a path on this server (``/...``), never ``//host`` or a full URL: no open redirect."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _origin(url: str) -> str | None:
    """``scheme://host:port`` of an http(s) URL, the default port written out; None for anything
    else (``null``, ``file:``, garbage), which is then never anyone's own origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"


def own_origin(scope: Scope) -> str | None:
    """The origin the request was sent to: its scheme (a websocket's as http) and ``Host`` header."""
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    return _origin(f"{scheme}://{Headers(scope=scope).get('host', '')}")


def _is_write(scope: Scope) -> bool:
    """Anything that can change state: every method but GET, HEAD and OPTIONS, and every websocket."""
    return scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS


def _is_foreign_preflight(scope: Scope) -> bool:
    """A browser asking whether another origin may call us (CORS): never, so Gradio's own CORS
    middleware, which says yes to any localhost origin, is not reached."""
    headers = Headers(scope=scope)
    if scope["type"] != "http" or scope["method"] != "OPTIONS" or "access-control-request-method" not in headers:
        return False
    own = own_origin(scope)
    return own is None or _origin(headers.get("origin", "")) != own


def cross_origin_problem(scope: Scope, authorized: bool) -> str | None:
    """Why a write must be refused as not coming from the app's own page, or None.

    ``authorized``: it carries a right ``Authorization`` header, so a script needs no Origin. A
    browser never adds a bearer token to another site's request; it may add remembered basic-auth
    credentials, but then it also names the foreign origin, and that is refused whatever the
    credentials."""
    headers = Headers(scope=scope)
    own = own_origin(scope)
    sent = headers.get("origin") or headers.get("referer") or ""
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        reason = f"the browser says it comes from another site ({sent or 'no Origin'})"
    elif not sent:
        if authorized:
            return None
        reason = "it has no Origin (or Referer) header"
    elif own is not None and _origin(sent) == own:
        return None
    else:
        reason = f"it comes from another origin ({sent[:100]})"
    return (f"write refused: {reason}. Changes are accepted only from this app's own pages; a script sends "
            f"'Origin: {own or 'http://<this host>:<port>'}' as a browser does, or sets DA_API_TOKEN on the server "
            "and sends 'Authorization: Bearer <token>'")  # fmt: skip


class Throttle:
    """Wrong credentials per client address: after ``max_failures`` within ``window_s`` the address
    must wait until the oldest of them leaves the window, so guessing runs at most that fast. Its
    memory is bounded: only the ``max_addresses`` addresses that failed last are remembered."""

    def __init__(self, max_failures: int = LOGIN_MAX_FAILURES, window_s: float = LOGIN_WINDOW_S,
                 max_addresses: int = _THROTTLE_MAX_ADDRESSES) -> None:  # fmt: skip
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, address: str) -> float:
        """Seconds until ``address`` may try a credential again (0: now)."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.max_failures:
            return 0.0
        return max(0.0, failures[0] + self.window_s - time.monotonic())

    def failed(self, address: str) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
        failures.append(time.monotonic())
        self._failures[address] = failures  # now the most recent
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


class Refusal(NamedTuple):
    """The answer to a request that may not pass."""

    status: int
    message: str
    headers: dict[str, str] = {}


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


class AccessMiddleware:
    """Applies ``AccessRule``, the same-origin rule for writes and the throttle to every HTTP and
    websocket request before any route sees it."""

    def __init__(self, app: ASGIApp, rule: AccessRule, check_host: bool = True) -> None:
        self.app = app
        self.rule = rule
        self.check_host = check_host  # without credentials: only loopback Host names
        self.throttle = Throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        verdict = self._check(scope)
        if verdict is None:
            await self.app(scope, receive, send)
        elif verdict == "login":
            await self._login(scope, receive, send)
        else:
            await self._refuse(scope, receive, send, verdict.status, verdict.message, verdict.headers)

    def _check(self, scope: Scope) -> Refusal | Literal["login"] | None:
        """None to pass the request on, "login" for the login form and its POST, else the refusal."""
        headers = Headers(scope=scope)
        if _is_foreign_preflight(scope):
            return Refusal(403, "cross-origin requests are not allowed: use the app from its own address")
        if not self.rule.configured:
            if self.check_host and not is_loopback(_host_name(headers.get("host", ""))):
                return Refusal(403, "this server has no credentials configured and answers only to "
                                    "127.0.0.1/localhost; set DA_API_TOKEN to expose it")  # fmt: skip
            return self._same_origin(scope, authorized=False)
        path = scope["path"]
        if path in PUBLIC_PATHS and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            return None
        if path == LOGIN_PATH and scope["type"] == "http":
            return self._same_origin(scope, authorized=False) or "login"
        if "authorization" in headers:
            if wait := self.throttle.wait_s(_address(scope)):
                return self._throttled(wait)
            if self.rule.authorization_ok(headers):
                return self._same_origin(scope, authorized=True)
            self.throttle.failed(_address(scope))
        if self.rule.session_ok(headers):
            return self._same_origin(scope, authorized=False)
        return Refusal(401, "authentication required: send " + self.rule.describe())

    @staticmethod
    def _same_origin(scope: Scope, authorized: bool) -> Refusal | None:
        problem = cross_origin_problem(scope, authorized) if _is_write(scope) else None
        return Refusal(403, problem) if problem else None

    @staticmethod
    def _throttled(wait_s: float) -> Refusal:
        seconds = max(1, math.ceil(wait_s))
        return Refusal(429, f"too many wrong credentials from this address; try again in {seconds} s",
                       {"Retry-After": str(seconds)})  # fmt: skip

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str,
                      headers: dict[str, str] | None = None) -> None:  # fmt: skip
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        headers = dict(headers or {})
        if status == 401:
            challenges = ['Bearer realm="Debate Assistant"'] if self.rule.token is not None else []
            if self.rule.password is not None:
                challenges.append('Basic realm="Debate Assistant"')
            headers["WWW-Authenticate"] = ", ".join(challenges)
        response: Response
        wants_page = scope["method"] == "GET" and "text/html" in Headers(scope=scope).get("accept", "")
        if status == 401 and wants_page:
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
            response = HTMLResponse(self._login_page(target), status_code=401, headers=headers)
        else:
            response = JSONResponse({"detail": message}, status_code=status, headers=headers)
        await response(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET: the form; POST (form-encoded token, or username and password): the session cookie,
        unless this address has guessed wrong too often (429, the form says when to try again)."""
        if scope["method"] != "POST":
            await HTMLResponse(self._login_page("/"), status_code=401)(scope, receive, send)
            return
        body = b""
        more = True
        while more and len(body) <= _LOGIN_BODY_LIMIT:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fields = {k: v[0] for k, v in parse_qs(body[:_LOGIN_BODY_LIMIT].decode("utf-8", "replace")).items()}
        target = _safe_next(fields.get("next", "/"))
        address = _address(scope)
        response: Response
        if wait := self.throttle.wait_s(address):
            refusal = self._throttled(wait)
            response = HTMLResponse(self._login_page(target, error=refusal.message), status_code=refusal.status,
                                    headers=refusal.headers)  # fmt: skip
        elif self.rule.token_ok(fields.get("token", "")) or self.rule.password_ok(
            fields.get("username", ""), fields.get("password", "")
        ):
            self.throttle.succeeded(address)
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(SESSION_COOKIE, self.rule.session, httponly=True, samesite="lax",
                                secure=scope.get("scheme") == "https")  # fmt: skip
        else:
            self.throttle.failed(address)
            response = HTMLResponse(self._login_page(target, error="Wrong credentials."), status_code=401)
        await response(scope, receive, send)

    def _login_page(self, target: str, error: str = "") -> str:
        fields = []
        if self.rule.token is not None:
            fields.append('<label>Access token <input type="password" name="token" autofocus></label>')
        if self.rule.password is not None:
            fields.append('<label>User <input name="username"></label><label>Password <input type="password" '
                          'name="password"></label>')  # fmt: skip
        alert = f'<p role="alert">{html.escape(error)}</p>' if error else ""
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Debate Assistant: log in</title>"
            "<style>body{font-family:sans-serif;max-width:24rem;margin:4rem auto}label{display:block;margin:.6rem 0}"
            "input{display:block;width:100%}</style></head><body><h1>Debate Assistant</h1>"
            f"{alert}<form method='post' action='{LOGIN_PATH}'>{''.join(fields)}"
            f"<input type='hidden' name='next' value='{html.escape(_safe_next(target), quote=True)}'>"
            "<button type='submit'>Log in</button></form></body></html>"
        )


def bind_problem(host: str, settings: Settings, allow_no_auth: bool) -> str | None:
    """Why the server must not start on ``host``, or None: an address other machines can reach
    needs credentials, unless the operator says ``--allow-no-auth`` (a firewall or a proxy with
    its own login in front)."""
    if is_loopback(host) or AccessRule(settings).configured or allow_no_auth:
        return None
    return (
        f"refusing to serve on {host} without credentials: anyone who can reach it could read, add and delete "
        "your library. Set DA_API_TOKEN (and/or DA_UI_USERNAME and DA_UI_PASSWORD), bind to 127.0.0.1, or "
        "pass --allow-no-auth if something else guards this address."
    )


def startup_note(host: str, port: int, settings: Settings) -> str:
    """The line printed at start: what is exposed to whom."""
    rule = AccessRule(settings)
    if rule.configured:
        return (f"Access: every page and API call but /api/health needs {rule.describe()}; "
                f"browsers log in at http://{host}:{port}{LOGIN_PATH}.")  # fmt: skip
    if is_loopback(host):
        return (f"Access: no credentials set, so serving on {host} only: open to every user and program on this "
                "machine, to nobody else. Set DA_API_TOKEN to serve other machines.")  # fmt: skip
    return f"WARNING: no credentials set and serving on {host} (--allow-no-auth): anyone who can reach it has full access."
