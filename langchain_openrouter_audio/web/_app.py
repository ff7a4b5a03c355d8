"""`voice_app`: the Starlette app serving the voice page and its WebSocket."""

from __future__ import annotations

import functools
import html
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.voice._remote import is_remote_graph
from langchain_openrouter_audio.voice.engine import (
    BACKCHANNEL_WINDOW_S,
    FALSE_INTERRUPTION_TIMEOUT_S,
    MIN_INTERRUPTION_MS,
    EndpointerLike,
    TurnEngine,
)
from langchain_openrouter_audio.voice.limits import SessionEnded, SessionLimits
from langchain_openrouter_audio.voice.spoken_text import AgentHears, agent_hearing
from langchain_openrouter_audio.voice.transport import VoiceTransport
from langchain_openrouter_audio.voice.transports.browser import BrowserTransport
from langchain_openrouter_audio.voice.transports.twilio import TwilioTransport
from langchain_openrouter_audio.web._conversations import (
    Conversations,
    PageConversation,
    ThreadPer,
)
from langchain_openrouter_audio.web._conversations import (
    conversation_secret as conversation_secret_of,
)
from langchain_openrouter_audio.web._ending import close_socket, failed
from langchain_openrouter_audio.web._guard import (
    Authenticate,
    Gate,
    SecurityHeaders,
    config_for_user,
)
from langchain_openrouter_audio.web._twilio import keypad_text, run_phone_call, twilio_routes
from langchain_openrouter_audio.web._twilio import twilio_auth_token as _twilio_auth_token

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
    max_sessions: int | None = 100,
    max_turns: int | None = 20,
    max_utterance_s: float = 30.0,
    make_endpointer: Callable[[int], EndpointerLike] | None = None,
    record: str | Path | None = None,
    continuation: bool = True,
    min_interruption_ms: int = MIN_INTERRUPTION_MS,
    false_interruption_timeout_s: float = FALSE_INTERRUPTION_TIMEOUT_S,
    backchannel_window_s: float = BACKCHANNEL_WINDOW_S,
    transcription: str | Runnable[Any, str] | None = None,
    speech: str | OpenRouterSpeech | None = None,
    twilio_auth_token: str | SecretStr | None = None,
    public_url: str | None = None,
    on_dtmf: Callable[[str], Any] | None = keypad_text,
    allowed_origins: Sequence[str] | None = None,
    authenticate: Authenticate | None = None,
    allow_missing_origin: bool = False,
    allowed_hosts: Sequence[str] | None = None,
    limits: SessionLimits | None = None,
    agent_hears: AgentHears = "auto",
    thread_per: ThreadPer = "conversation",
    conversation_secret: str | SecretStr | None = None,
    tool_details: bool = False,
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
    gets in ``ready``, or a new id per phone call). Each connection is a `TurnEngine` over
    a `BrowserTransport`: the same engine as `VoiceSession` and the phone, with the same
    turn-taking settings (`continuation`, `min_interruption_ms`,
    `false_interruption_timeout_s`, `backchannel_window_s`; see `TurnEngine`). Echo
    cancellation is the browser's own (the page asks for it with the microphone). With
    `transcription=` and `speech=` (model slugs or instances) any chat model can be the
    agent: it reads what was said and its text replies are spoken sentence by sentence.
    With `transcription=` alone, a speech-native agent still hears the recording, and the
    page shows the user's words (``user_text``) once they are transcribed beside its call
    (`agent_hears` overrides the choice: see `TurnEngine`).

    Phone calls through Twilio: with `twilio_auth_token` (or ``TWILIO_AUTH_TOKEN`` set),
    ``POST /twilio/voice`` is the number's voice webhook and ``/twilio/media`` its Media
    Stream; both refuse requests Twilio did not sign (HTTP 403). Behind a proxy,
    `public_url` is the app's address as Twilio calls it (``https://voice.example.com``).
    Keys the caller presses go to `on_dtmf(digits)`; a string it returns is a user turn
    (by default ``"[The caller pressed 12# on the keypad]"``; None ignores keys). Calls
    count toward `max_sessions`; `limits` bounds them too (`max_session_s` is a call's
    length). See docs/phone.md.

    Who may connect: a WebSocket whose ``Origin`` is not this page's host (or one of
    `allowed_origins`, e.g. ``["https://app.example.com"]``) is closed with 1008 before
    anything is read; so is one without ``Origin`` (not a browser) unless `authenticate` is
    set or `allow_missing_origin=True`. `authenticate(connection)` sees the handshake
    (headers, cookies, query) and returns a user id, or None to refuse (1008); the id
    reaches the agent as ``config["configurable"]["user_id"]`` and in the run's metadata.
    `allowed_hosts` (e.g. ``["voice.example.com"]``) refuses requests for any other
    ``Host`` (HTTP 400), which stops DNS rebinding: a page of another site whose name
    resolves to this server is "same host" to the origin check.
    Every page response carries a strict Content-Security-Policy and no-framing headers.
    The page learns which tool the agent calls (``tool_call``, ``tool_result`` with its
    ``name``) but not what it was given or returned: that may be database rows or internal
    ids, and every visitor could read it. `tool_details=True` sends ``args`` and ``output``
    too, each cut to 2 KiB (`BrowserTransport`'s `TOOL_DETAIL_BYTES`), for a demo or an
    internal tool.
    ``GET /healthz`` answers ``{"status": "ok"}`` and nothing about the load; the open
    conversations (pages and calls) are ``app.state.sessions``, a set of `TurnEngine`, for
    metrics of your own.

    `limits` (`langchain_openrouter_audio.voice.limits.SessionLimits`) bounds each
    connection: hello and idle timeouts, session length, a client that stops reading, frame
    and message sizes, messages per second, audio per connection, queued utterances, turns
    per minute, each turn's time (`turn_timeout_s`, 120 s) and its spending
    (`max_cost_usd`, 1 USD by default). A connection ended by a limit is closed with a
    code and a short reason; a failure inside a turn shows the page only a reference to
    the log line.

    A `RemoteGraph` agent (a LangGraph deployment) keeps the conversation in a deployment
    thread, so it survives reconnects and voice-worker restarts: ``ready`` carries a
    ``conversation`` id that a later ``hello`` sends back (``{"type": "hello", ...,
    "conversation": id}``) to continue from the thread's messages, on any worker.
    ``thread_per="user"`` gives each authenticated user one thread instead (it needs
    `authenticate`). Thread ids are an HMAC of the conversation id and the user keyed by
    `conversation_secret` (or ``VOICE_CONVERSATION_SECRET``; every worker needs the same
    one), so one user cannot open another's thread. A second connection on a conversation
    this worker serves (another tab) takes it over: the older one is closed with 4409
    "This conversation continued in another tab." before the newer gets ``ready``; across
    workers that needs sticky sessions. Each turn's run interrupts a run still going on the
    thread (``multitask_strategy="interrupt"``). Other agents keep the conversation in the
    connection: a reconnect starts a new one. See docs/deploy.md.

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
    # Bad settings fail here, not on every connection.
    agent_hearing(agent_hears, agent, cast(Any, transcription), None)
    endpointer_factory = make_endpointer or _default_endpointer(silence_ms, min_speech_ms)
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{title}}", html.escape(title)).replace("{{rate}}", str(sample_rate))
    session_limits = limits or SessionLimits()
    sessions: set[TurnEngine] = set()
    conversations: Conversations | None = None
    if is_remote_graph(agent):
        if thread_per == "user" and authenticate is None:
            raise ValueError('thread_per="user" needs authenticate')
        secret = conversation_secret_of(conversation_secret)
        conversations = Conversations(agent, secret=secret, per=thread_per)
    gate = Gate(
        allowed_origins=allowed_origins,
        authenticate=authenticate,
        allow_missing_origin=allow_missing_origin,
    )

    def engine_for(
        transport: VoiceTransport, *, session_id: str, config: RunnableConfig | None
    ) -> TurnEngine:
        """One conversation's engine: the same settings for a page and a call."""
        return TurnEngine(
            agent,
            transport,
            endpointer=endpointer_factory(transport.input_rate),
            config=config,
            max_turns=max_turns,
            max_utterance_s=max_utterance_s,
            on_dtmf=on_dtmf,
            record=record,
            session_id=session_id,
            continuation=continuation,
            min_interruption_ms=min_interruption_ms,
            false_interruption_timeout_s=false_interruption_timeout_s,
            backchannel_window_s=backchannel_window_s,
            transcription=transcription,
            speech=speech,
            agent_hears=agent_hears,
            turn_timeout_s=session_limits.turn_timeout_s,
            max_cost_usd=session_limits.max_cost_usd,
            max_pending_utterances=session_limits.max_pending_utterances,
            max_turns_per_minute=session_limits.max_turns_per_minute,
        )

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> JSONResponse:
        # Only that the app is up: anyone can reach it, so it says nothing about the load.
        return JSONResponse({"status": "ok"})

    async def favicon(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    async def socket(websocket: WebSocket) -> None:
        admission = await gate.admit(websocket)
        if admission is None:
            return
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
        held = None  # a deployment's conversation: opened at the page's hello
        if conversations is not None:
            held = PageConversation(conversations, user=admission.user, session_id=session_id)
        transport = BrowserTransport(
            send,
            receive,
            sample_rate=sample_rate,
            session_id=session_id,
            limits=session_limits,
            on_hello=held.open if held is not None else None,
            tool_details=tool_details,
        )
        engine = engine_for(
            transport, session_id=session_id, config=config_for_user(config, admission.user)
        )
        if held is not None:
            held.engine = engine
        sessions.add(engine)
        ended: SessionEnded | None = None
        try:
            await engine.run()
            ended = engine.ended or transport.ended
        except WebSocketDisconnect:
            pass
        except Exception:
            ended = failed(logger, f"session {session_id}")
        finally:
            sessions.discard(engine)
            try:
                await close_socket(websocket, ended)
            finally:  # a server shutting down may cancel the close: the thread is freed anyway
                if held is not None:
                    held.close()
            logger.info(
                "session %s closed: %d turns, cost %.6f",
                session_id,
                engine.turn_count,
                engine.usage.total_cost,
            )

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/healthz", health),
        Route("/favicon.ico", favicon),
        WebSocketRoute("/ws", socket),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    phone_token = _twilio_auth_token(twilio_auth_token)
    if phone_token is not None:

        def phone_engine(transport: TwilioTransport) -> TurnEngine:
            return engine_for(transport, session_id=uuid.uuid4().hex[:12], config=config)

        # Calls and pages share `max_sessions`: both hold an agent conversation.
        run_call = functools.partial(
            run_phone_call,
            engine_for=phone_engine,
            sessions=sessions,
            max_sessions=max_sessions,
            limits=session_limits,
        )
        routes += twilio_routes(auth_token=phone_token, public_url=public_url, run_call=run_call)
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        hosts = list(allowed_hosts)
        middleware.append(
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
        )
    app = Starlette(routes=routes, middleware=middleware)
    app.state.sessions = sessions
    return app


def _default_endpointer(silence_ms: int, min_speech_ms: int) -> Callable[[int], EndpointerLike]:
    from langchain_openrouter_audio.voice import Endpointer

    def make(rate: int) -> EndpointerLike:
        return Endpointer(sample_rate=rate, silence_ms=silence_ms, min_speech_ms=min_speech_ms)

    return make
