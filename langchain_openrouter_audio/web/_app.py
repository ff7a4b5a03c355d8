"""`voice_app`: the Starlette app serving the voice page and its WebSocket."""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.voice.engine import (
    BACKCHANNEL_WINDOW_S,
    FALSE_INTERRUPTION_TIMEOUT_S,
    MIN_INTERRUPTION_MS,
    EndpointerLike,
    TurnEngine,
)
from langchain_openrouter_audio.voice.transports.browser import BrowserTransport

__all__ = ["voice_app"]

logger = logging.getLogger("langchain_openrouter_audio.web")

STATIC_DIR = Path(__file__).parent / "static"

# 1013 "try again later": the page shows it and a load balancer can send the user elsewhere.
_CLOSE_FULL = 1013


def voice_app(
    agent: Runnable[Any, Any],
    *,
    title: str = "Voice agent",
    sample_rate: int = 16_000,
    silence_ms: int = 600,
    min_speech_ms: int = 200,
    config: RunnableConfig | None = None,
    max_sessions: int | None = None,
    max_turns: int | None = None,
    max_utterance_s: float = 30.0,
    make_endpointer: Callable[[int], EndpointerLike] | None = None,
    record: str | Path | None = None,
    continuation: bool = True,
    min_interruption_ms: int = MIN_INTERRUPTION_MS,
    false_interruption_timeout_s: float = FALSE_INTERRUPTION_TIMEOUT_S,
    backchannel_window_s: float = BACKCHANNEL_WINDOW_S,
    transcription: str | Runnable[Any, str] | None = None,
    speech: str | OpenRouterSpeech | None = None,
) -> Starlette:
    """An ASGI app: a voice page at ``/`` and its WebSocket at ``/ws``.

    `agent` is a chat model (it gets the message list) or a graph that takes and returns
    ``{"messages": [...]}`` such as `langchain.agents.create_agent`; it should have no
    checkpointer: each connection holds its own conversation. `sample_rate` is the rate the
    page sends the microphone at (16000 or 24000); utterances are found with
    `langchain_openrouter_audio.voice.Endpointer(sample_rate, silence_ms, min_speech_ms)`
    unless `make_endpointer(rate)` builds another. Over `max_sessions` open connections,
    new ones are closed with code 1013. `max_turns` keeps only the last turns in the
    conversation sent to the model (every earlier question is re-sent as audio otherwise).
    Each turn's ``reply_end`` carries ``session_cost``, OpenRouter's billed cost so far.
    An utterance (or a held push-to-talk) is cut after `max_utterance_s` seconds.
    `record="calls/{session}.wav"` writes each connection's conversation as a stereo WAV
    (the user left, the agent as the page played it right; `{session}` is the id the page
    gets in ``ready``). Each connection is a `TurnEngine` over a `BrowserTransport`: the
    same engine as `VoiceSession` and the phone, with the same turn-taking settings
    (`continuation`, `min_interruption_ms`, `false_interruption_timeout_s`,
    `backchannel_window_s`; see `TurnEngine`). Echo cancellation is the browser's own
    (the page asks for it with the microphone). With `transcription=` and `speech=`
    (model slugs or instances) any chat model can be the agent: it reads what was said
    and its text replies are spoken sentence by sentence.

    ```python
    import uvicorn
    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.web import voice_app

    app = voice_app(ChatOpenRouterAudio())
    uvicorn.run(app, port=8000)  # open http://localhost:8000 and press Talk
    ```
    """
    if sample_rate not in (16_000, 24_000):
        raise ValueError("sample_rate must be 16000 or 24000")
    if max_turns is not None and max_turns < 1:
        raise ValueError("max_turns must be >= 1")
    endpointer_factory = make_endpointer or _default_endpointer(silence_ms, min_speech_ms)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{title}}", html.escape(title)).replace("{{rate}}", str(sample_rate))
    sessions: set[TurnEngine] = set()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "sessions": len(sessions)})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        if max_sessions is not None and len(sessions) >= max_sessions:
            await websocket.close(code=_CLOSE_FULL, reason="server busy")
            return

        async def send(message: dict[str, Any] | bytes) -> None:
            if websocket.application_state != WebSocketState.CONNECTED:
                return
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_json(message)

        async def receive() -> str | bytes | None:
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return None
                if frame.get("bytes") is not None:
                    return bytes(frame["bytes"])
                if frame.get("text") is not None:
                    return str(frame["text"])

        session_id = uuid.uuid4().hex[:12]
        transport = BrowserTransport(send, receive, sample_rate=sample_rate, session_id=session_id)
        engine = TurnEngine(
            agent,
            transport,
            endpointer=endpointer_factory(sample_rate),
            config=config,
            max_turns=max_turns,
            max_utterance_s=max_utterance_s,
            record=record,
            session_id=session_id,
            continuation=continuation,
            min_interruption_ms=min_interruption_ms,
            false_interruption_timeout_s=false_interruption_timeout_s,
            backchannel_window_s=backchannel_window_s,
            transcription=transcription,
            speech=speech,
        )
        sessions.add(engine)
        try:
            await engine.run()
        except WebSocketDisconnect:
            pass
        finally:
            sessions.discard(engine)
            logger.info(
                "session %s closed: %d turns, cost %.6f",
                session_id,
                engine.turn_count,
                engine.usage.total_cost,
            )

    routes = [
        Route("/", index),
        Route("/healthz", health),
        WebSocketRoute("/ws", socket),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions
    return app


def _default_endpointer(silence_ms: int, min_speech_ms: int) -> Callable[[int], EndpointerLike]:
    from langchain_openrouter_audio.voice import Endpointer

    def make(rate: int) -> EndpointerLike:
        return Endpointer(sample_rate=rate, silence_ms=silence_ms, min_speech_ms=min_speech_ms)

    return make
