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
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.settings import Settings

PUBLIC_PATHS = frozenset({"/api/health"})
LOGIN_PATH = "/login"
SESSION_COOKIE = "da_session"
_LOGIN_BODY_LIMIT = 8 * 1024
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


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

    def allows(self, headers: Headers) -> bool:
        """A right bearer token, basic-auth user and password, or session cookie."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(value.strip()):
            return True
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if self.password_ok(user, password):
                return True
        cookie = _cookie(headers, SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode())

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


class AccessMiddleware:
    """Applies ``AccessRule`` to every HTTP and websocket request before any route sees it."""

    def __init__(self, app: ASGIApp, rule: AccessRule, check_host: bool = True) -> None:
        self.app = app
        self.rule = rule
        self.check_host = check_host  # without credentials: only loopback Host names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.rule.configured:
            if self.check_host and not is_loopback(_host_name(headers.get("host", ""))):
                await self._refuse(scope, receive, send, 403, "this server has no credentials configured and answers "
                                   "only to 127.0.0.1/localhost; set DA_API_TOKEN to expose it")  # fmt: skip
                return
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in PUBLIC_PATHS and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if path == LOGIN_PATH and scope["type"] == "http":
            await self._login(scope, receive, send)
            return
        if self.rule.allows(headers):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send, 401, "authentication required: send " + self.rule.describe())

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        headers = {}
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
        """GET: the form; POST (form-encoded token, or username and password): the session cookie."""
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
        if self.rule.token_ok(fields.get("token", "")) or self.rule.password_ok(
            fields.get("username", ""), fields.get("password", "")
        ):
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(SESSION_COOKIE, self.rule.session, httponly=True, samesite="lax",
                                secure=scope.get("scheme") == "https")  # fmt: skip
        else:
            response = HTMLResponse(self._login_page(target, failed=True), status_code=401)
        await response(scope, receive, send)

    def _login_page(self, target: str, failed: bool = False) -> str:
        fields = []
        if self.rule.token is not None:
            fields.append('<label>Access token <input type="password" name="token" autofocus></label>')
        if self.rule.password is not None:
            fields.append('<label>User <input name="username"></label><label>Password <input type="password" '
                          'name="password"></label>')  # fmt: skip
        error = '<p role="alert">Wrong credentials.</p>' if failed else ""
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Debate Assistant: log in</title>"
            "<style>body{font-family:sans-serif;max-width:24rem;margin:4rem auto}label{display:block;margin:.6rem 0}"
            "input{display:block;width:100%}</style></head><body><h1>Debate Assistant</h1>"
            f"{error}<form method='post' action='{LOGIN_PATH}'>{''.join(fields)}"
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
