"""How a conversation's socket ends, for a page and a phone call alike: the close code and
short reason of a limit, or a failure logged once with a reference and closed with 1011."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from starlette.websockets import WebSocket, WebSocketState

from langchain_openrouter_audio.voice.limits import SessionEnded

__all__ = ["CLOSE_INTERNAL", "close_socket", "failed"]

# 1011 "internal error": the client is shown only the reference; the log has the rest.
CLOSE_INTERNAL = 1011


def failed(logger: logging.Logger, what: str) -> SessionEnded:
    """Log the exception being handled, once, with a short reference (``what`` names the
    conversation: ``"session 3f9c2a1b0c7d"``); returns the ending that shows only the
    reference."""
    ref = uuid.uuid4().hex[:8]
    logger.exception("%s failed (ref %s)", what, ref)
    return SessionEnded(f"internal error (ref {ref})", code=CLOSE_INTERNAL)


async def close_socket(websocket: WebSocket, ended: SessionEnded | None) -> None:
    """Close with the ending's code and reason (1000 without one); a client that stopped
    reading, or is gone already, gets no wait."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    code, reason = (ended.code, ended.reason) if ended is not None else (1000, "")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), 1.0)
