"""Phone calls through Twilio: the voice webhook (TwiML) and the Media Streams socket route.

Both check `X-Twilio-Signature` before anything else: a request that does not carry
Twilio's signature for its URL and the account's auth token gets a 403 and never reaches
the agent (the socket is refused before it is accepted, so its handshake fails with 403).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import quoteattr

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from langchain_openrouter_audio.voice.engine import TurnEngine
from langchain_openrouter_audio.voice.limits import SessionEnded, SessionLimits
from langchain_openrouter_audio.voice.transports.twilio import TwilioTransport
from langchain_openrouter_audio.web._ending import close_socket, failed
from langchain_openrouter_audio.web._twilio_signature import (
    SETTINGS_HEADER,
    SIGNATURE_HEADER,
    signature_algorithm,
    valid_twilio_signature,
)

__all__ = [
    "MEDIA_PATH",
    "VOICE_PATH",
    "keypad_text",
    "receive_text",
    "run_phone_call",
    "twilio_auth_token",
    "twilio_routes",
]

logger = logging.getLogger("langchain_openrouter_audio.web")

VOICE_PATH = "/twilio/voice"
MEDIA_PATH = "/twilio/media"
# Twilio's call webhooks are a few hundred bytes of form; anything far bigger is not Twilio.
_MAX_WEBHOOK_BYTES = 64 * 1024
# Caller details forwarded to the stream as <Parameter>s: Twilio's `start` message lacks them.
_FORWARDED = ("From", "To", "CallSid")

CallHandler = Callable[[WebSocket], Awaitable[None]]


def twilio_routes(
    *, auth_token: SecretStr, public_url: str | None, run_call: CallHandler
) -> list[BaseRoute]:
    """``POST /twilio/voice`` (TwiML connecting the call to the stream) and the stream socket
    ``/twilio/media``, which `run_call` serves once the handshake is Twilio's.

    `public_url` (``https://voice.example.com``, with a path prefix if the app is mounted
    under one) is the address Twilio uses when a proxy sits in front of the app; without it
    the address comes from the request's ``Host`` header.
    """
    base = _public_base(public_url) if public_url else None

    async def voice(request: Request) -> Response:
        body = await _read_capped(request)
        if body is None:
            return PlainTextResponse("webhook body too large", status_code=413)
        pairs = _form_pairs(request, body)
        form = dict(reversed(pairs))  # the first value of each name
        candidates = (
            [base.webhook(request.url.path, request.url.query)] if base else _request_urls(request)
        )
        if not _signed(request, auth_token, candidates, pairs):
            logger.warning("refused a Twilio voice webhook: the signature does not match")
            return PlainTextResponse("invalid Twilio signature", status_code=403)
        stream_path = request.url.path[: -len(VOICE_PATH)] + MEDIA_PATH
        stream_url = (
            base.stream(stream_path) if base else f"wss://{request.url.netloc}{stream_path}"
        )
        parameters = "".join(
            f"<Parameter name={quoteattr(name)} value={quoteattr(form[name])}/>"
            for name in _FORWARDED
            if form.get(name)
        )
        twiml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Connect><Stream url={quoteattr(stream_url)}>{parameters}"
            "</Stream></Connect></Response>"
        )
        return Response(twiml, media_type="text/xml")

    async def media(websocket: WebSocket) -> None:
        path, query = websocket.url.path, websocket.url.query
        base_url = base.stream(path) if base else f"wss://{websocket.url.netloc}{path}"
        # Twilio signs the wss:// address it connects to. A Stream url takes no query string;
        # should one come, it is checked both as part of the URL and as parameters.
        candidates: list[tuple[str, list[tuple[str, str]]]] = [(base_url, [])]
        if query:
            candidates = [(f"{base_url}?{query}", []), (base_url, parse_qsl(query))]
        if not any(_signed(websocket, auth_token, [url], params) for url, params in candidates):
            logger.warning("refused a Twilio media stream: the signature does not match")
            await websocket.close(code=1008)  # before accept: the handshake gets a 403
            return
        await run_call(websocket)

    return [Route(VOICE_PATH, voice, methods=["POST"]), WebSocketRoute(MEDIA_PATH, media)]


class _PublicBase:
    def __init__(self, scheme: str, netloc: str, prefix: str) -> None:
        self.scheme, self.netloc, self.prefix = scheme, netloc, prefix

    def webhook(self, path: str, query: str) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}{_tail(path)}" + (
            f"?{query}" if query else ""
        )

    def stream(self, path: str) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://{self.netloc}{self.prefix}{_tail(path)}"


def _tail(path: str) -> str:
    """The route's own part of a path (``/twilio/...``), whatever it is mounted under."""
    index = path.rfind("/twilio/")
    return path[index:] if index >= 0 else path


def _public_base(public_url: str) -> _PublicBase:
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"public_url must be an http(s) URL such as https://host, got {public_url!r}"
        )
    return _PublicBase(parts.scheme, parts.netloc, parts.path.rstrip("/"))


def _request_urls(request: Request) -> list[str]:
    """The webhook URL as Twilio may have signed it: as the request reached the app, or as
    https when a TLS-terminating proxy (ngrok, a load balancer) forwarded it as http."""
    url = str(request.url)
    return [url, "https" + url[len("http") :]] if url.startswith("http:") else [url]


def _signed(
    connection: Request | WebSocket,
    auth_token: SecretStr,
    urls: list[str],
    form: dict[str, str] | list[tuple[str, str]],
) -> bool:
    signature = connection.headers.get(SIGNATURE_HEADER)
    algorithm = signature_algorithm(connection.headers.get(SETTINGS_HEADER))
    token = auth_token.get_secret_value()
    return any(
        valid_twilio_signature(token, url, form, signature, algorithm=algorithm) for url in urls
    )


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_WEBHOOK_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_WEBHOOK_BYTES:
            return None
    return bytes(body)


def _form_pairs(request: Request, body: bytes) -> list[tuple[str, str]]:
    """The webhook's form fields in order, every value of a repeated name kept (all are
    signed); a body that is not a form has none."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return []
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def receive_text(websocket: WebSocket) -> str | None:
    """The next text frame of an accepted socket; None once it is closed. Twilio sends text
    only: a binary frame reads as an empty message (the transport ignores it)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    return text if isinstance(text, str) else ""


def twilio_auth_token(token: str | SecretStr | None) -> SecretStr | None:
    """The auth token given, else ``TWILIO_AUTH_TOKEN`` from the environment, else None."""
    if token is None:
        token = os.environ.get("TWILIO_AUTH_TOKEN") or None
    if token is None:
        return None
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    if not secret.get_secret_value().strip():
        raise ValueError("twilio_auth_token is empty")
    return secret


def keypad_text(digits: str) -> str:
    """What the agent is told when the caller types on the keypad (the default `on_dtmf`)."""
    return f"[The caller pressed {digits} on the keypad]"


async def run_phone_call(
    websocket: WebSocket,
    *,
    engine_for: Callable[[TwilioTransport], TurnEngine],
    sessions: set[Any],
    max_sessions: int | None,
    limits: SessionLimits | None = None,
) -> None:
    """One call on a socket whose signature was checked: a `TurnEngine` over the line.

    However the call ends, its slot is freed and the socket closed: by the caller (Twilio's
    ``stop``), by a limit (its close code and reason), or by a failure, which is logged
    once with a short reference and closes the stream with 1011 ``internal error (ref
    ...)``. Twilio then ends the call; it has no error message to show a caller, and
    nothing else of the failure reaches it. `limits` bounds the call as it does a page
    (`max_session_s` its length, `send_timeout_s` each frame to Twilio).
    """
    limits = limits or SessionLimits()

    def full() -> bool:
        if max_sessions is not None and len(sessions) >= max_sessions:
            logger.warning("refused a phone call: %d sessions open", len(sessions))
            return True
        return False

    if full():
        await websocket.close(code=1013)  # before accept: Twilio's handshake fails
        return
    await websocket.accept()
    # Calls that arrived together all passed the check above while this one was accepted:
    # the slot is taken below with no await between this check and `sessions.add`.
    if full():
        await websocket.close(code=1013)
        return

    async def send(text: str) -> None:
        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.send_text(text)

    transport = TwilioTransport(
        send,
        lambda: receive_text(websocket),
        max_call_s=limits.max_session_s,
        send_timeout_s=limits.send_timeout_s,
    )
    engine = engine_for(transport)
    sessions.add(engine)
    ended: SessionEnded | None = None
    try:
        await engine.run()
        ended = engine.ended
    except WebSocketDisconnect:
        pass  # Twilio hung up
    except Exception:
        ended = failed(logger, f"phone call {transport.call.call_sid or '(never started)'}")
    finally:
        sessions.discard(engine)
        await close_socket(websocket, ended)
        logger.info(
            "phone call %s ended: %d turns, cost %.6f",
            transport.call.call_sid or "(never started)",
            engine.turn_count,
            engine.usage.total_cost,
        )
