"""Pure ASGI middleware: request ids and access logs, the API-key gate, a body-size limit, security headers.

Pure ASGI rather than `BaseHTTPMiddleware`, which buffers responses and runs the app in another task; these
only look at the start of a response and at the request body.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable

import anyio
from pydantic import SecretStr
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.log import ACCESS_LOGGER

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# The page loads only its own script, style and API: no inline code, no CDN. Every response gets this policy unless
# it brings its own: Swagger UI (/docs) and ReDoc (/redoc) send it with the hash of their one inline block added.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

access_log = logging.getLogger(ACCESS_LOGGER)


def request_id_of(scope: Scope) -> str | None:
    return scope.get("state", {}).get("request_id")


class RequestContextMiddleware:
    """Gives each request an id (the client's X-Request-ID when it is sane), echoes it, logs one JSON line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = incoming if incoming and _CLIENT_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # The same dict reaches every layer, including the outermost 500 handler.
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
                    "client": scope["client"][0] if scope.get("client") else None,
                },
            )


DRAIN_MAX_BYTES = 16 * 1024 * 1024
"""Most bytes of an oversized body read and discarded before its 413, so the client can read the answer."""
DRAIN_MAX_SECONDS = 10.0
"""Longest time spent discarding one oversized body (a slow sender gets its 413 and the close after this)."""


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: by Content-Length before the app runs, else while the (chunked) body
    streams in.

    The body is read here in full (it is small by then) and replayed to the app, so the limit holds whatever
    the app later does with it. Before a 413, the rest of the body is read and discarded (up to DRAIN_MAX_BYTES
    in all, DRAIN_MAX_SECONDS), as a server's lingering close does: the server closes the connection after the
    413 when the client asked it to (urllib sends `Connection: close`), and a close with unread data in it
    resets the connection, so the client, still sending, saw "connection reset by peer" instead of the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {"detail": f"request body is larger than the limit of {self.max_bytes} bytes"}, status_code=413
        )

    async def _reject(self, scope: Scope, receive: Receive, send: Send, received: int, more: bool) -> None:
        """Discard what is left of the body within the bounds (`received` bytes read so far; `more`: whether
        the client is still sending), then answer 413. A client that asked `Expect: 100-continue` has sent
        nothing yet and is answered at once: reading would invite the body."""
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        waiting = headers.get("expect", "").lower() == "100-continue" and received == 0
        within = declared is None or int(declared) <= DRAIN_MAX_BYTES
        if more and within and not waiting:
            with anyio.move_on_after(DRAIN_MAX_SECONDS):
                while received <= DRAIN_MAX_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    received += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        await self._too_large()(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                response = JSONResponse({"detail": "Content-Length header is not a number"}, status_code=400)
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._reject(scope, receive, send, received=0, more=True)
                return

        chunks: list[bytes] = []
        size = 0
        disconnect: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                disconnect = message
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, receive, send, received=size, more=message.get("more_body", False))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if disconnect is not None:
                    return disconnect
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeadersMiddleware:
    """nosniff, no-referrer and the strict CSP everywhere (a route's own CSP, stricter by a hash, is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Open whatever the key: liveness, and the page's static files and icon (the same bytes everywhere, no data).
PUBLIC_PATHS = frozenset({"/health", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
ADMIN_PREFIX = "/admin"


class ApiKeyMiddleware:
    """The key check in front of every route, before the body is read or parsed.

    Route dependencies check the key too (and document it in OpenAPI), but FastAPI parses a JSON body before it
    runs them, so without this gate a keyless client could still learn "your JSON is malformed" (422) instead of
    401. Here every path but /health and the static page needs QA_API_KEY when one is set, unknown paths included;
    /admin paths always need the admin key and answer 403 when none is configured.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: Callable[[], SecretStr | None],
        admin_key: Callable[[], SecretStr | None],
        header: str,
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.admin_key = admin_key
        self.header_name = header
        self.header = header.lower().encode("latin-1")

    def _denied(self, path: str, given: str | None) -> tuple[int, str] | None:
        """(status, message) when the request may not pass; None when it may."""
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            expected = self.admin_key()
            if expected is None:
                return 403, "admin endpoints are disabled: set QA_ADMIN_API_KEY (or QA_API_KEY) to enable them"
            what = "admin key"
        elif path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        else:
            expected = self.api_key()
            if expected is None:
                return None
            what = "API key"
        if key_matches(given, expected):
            return None
        return 401, f"missing or wrong {what}: send it in the {self.header_name} header"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope.get("method") == "OPTIONS" and b"origin" in headers and b"access-control-request-method" in headers:
            await self.app(scope, receive, send)  # a CORS preflight never carries the key; it returns no data
            return
        given = headers[self.header].decode("latin-1") if self.header in headers else None
        denied = self._denied(scope["path"], given)
        if denied is None:
            await self.app(scope, receive, send)
            return
        status, detail = denied
        body: dict[str, str] = {"detail": detail}
        rid = request_id_of(scope)
        if rid:
            body["request_id"] = rid
        await JSONResponse(body, status_code=status)(scope, receive, send)


def key_matches(given: str | None, expected: SecretStr) -> bool:
    """Constant time in the key's content and length: both sides are hashed to 32 bytes before comparing."""
    if given is None:
        return False
    # Header values arrive as latin-1 text; back to the raw bytes the client sent (UTF-8 for a non-ASCII key).
    given_digest = hashlib.sha256(given.encode("latin-1", errors="replace")).digest()
    expected_digest = hashlib.sha256(expected.get_secret_value().encode()).digest()
    return secrets.compare_digest(given_digest, expected_digest)
