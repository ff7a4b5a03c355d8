"""Who may open the voice socket, and the headers every page response carries.

Every turn spends the owner's OpenRouter money, so the socket refuses by default what a
browser would bring from another site: a handshake whose ``Origin`` is not the page's own
host (or one of `allowed_origins`). ``Origin`` stops other web pages, not scripts (a script
sends whatever it likes): `authenticate` is the gate against those.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from langchain_core.runnables import RunnableConfig
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

__all__ = ["Admission", "Authenticate", "Gate", "SecurityHeaders", "config_for_user"]

logger = logging.getLogger("langchain_openrouter_audio.web")

Authenticate = Callable[[HTTPConnection], Awaitable[str | None]]
"""Sees the WebSocket handshake (headers, cookies, query); returns a user id, or None to refuse."""

# 1008 "policy violation": refused before anything else is read from the socket.
CLOSE_REFUSED = 1008

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# The page loads only its own script, worklet and stylesheet and talks to its own socket.
_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",  # voice.js and the capture worklet (worklets follow script-src)
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # the /ws WebSocket (CSP3: 'self' covers ws/wss of the host)
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Admission:
    """A connection let in; `user` is what `authenticate` returned (None without it)."""

    user: str | None


class Gate:
    """Checks a WebSocket handshake's origin and identity before the socket is used."""

    def __init__(
        self,
        *,
        allowed_origins: Iterable[str] | None = None,
        authenticate: Authenticate | None = None,
        allow_missing_origin: bool = False,
    ) -> None:
        self._origins = {_origin_key(o, what="allowed_origins") for o in allowed_origins or ()}
        self._authenticate = authenticate
        # A browser always sends Origin: without it the client is a program. Let one in
        # only when something else vouches for it.
        self._allow_missing = allow_missing_origin or authenticate is not None

    def origin_allowed(self, connection: HTTPConnection) -> bool:
        origin = connection.headers.get("origin")
        if origin is None:
            return self._allow_missing
        try:
            key = _origin_key(origin, what="Origin")
        except ValueError:
            return False  # "null" (a sandboxed or file: page) and anything malformed
        if key in self._origins:
            return True
        host = connection.headers.get("host")
        if host is None:
            return False
        try:
            return key == _origin_key(f"{key[0]}://{host}", what="Host")
        except ValueError:
            return False

    async def admit(self, websocket: WebSocket) -> Admission | None:
        """The admission, or None after closing the socket with 1008 (nothing was read)."""
        if not self.origin_allowed(websocket):
            logger.warning("websocket refused: origin %r", websocket.headers.get("origin"))
            await _refuse(websocket, "origin not allowed")
            return None
        user: str | None = None
        if self._authenticate is not None:
            try:
                user = await self._authenticate(websocket)
            except Exception:
                logger.exception("websocket refused: authenticate raised")
                user = None
            if user is None:
                await _refuse(websocket, "not authorized")
                return None
        return Admission(user=user)


async def _refuse(websocket: WebSocket, reason: str) -> None:
    # Accept, then close: the page sees the code and reason (a refused handshake is a bare
    # 403 that the browser hides from scripts).
    await websocket.accept()
    await websocket.close(code=CLOSE_REFUSED, reason=reason)


def _origin_key(origin: str, *, what: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an origin, with the scheme's default port filled in."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} {origin!r} has an invalid port") from None
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{what} must look like https://host[:port], got {origin!r}")
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def config_for_user(config: RunnableConfig | None, user: str | None) -> RunnableConfig:
    """`config` with the authenticated user in ``configurable`` and ``metadata``.

    ``configurable["user_id"]`` reaches the agent's nodes and tools; ``metadata["user_id"]``
    is recorded on LangSmith traces.
    """
    merged: RunnableConfig = {**(config or {})}
    if user is None:
        return merged
    configurable: dict[str, Any] = {**merged.get("configurable", {}), "user_id": user}
    metadata: dict[str, Any] = {**merged.get("metadata", {}), "user_id": user}
    merged["configurable"] = configurable
    merged["metadata"] = metadata
    return merged


class SecurityHeaders:
    """ASGI middleware: `PAGE_HEADERS` on every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
