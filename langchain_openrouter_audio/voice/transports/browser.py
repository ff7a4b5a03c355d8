"""The voice page's WebSocket protocol as a `VoiceTransport`, over plain send/receive callables.

Text frames are JSON objects with a ``type``:

- page -> server: ``{"type": "hello", "sample_rate": 16000}`` first (with
  ``"conversation": id`` to resume one, when `voice_app` fronts a deployment); then binary
  frames of microphone audio, raw PCM16 little-endian mono at that rate; ``ptt_start`` /
  ``ptt_end`` around push-to-talk speech (no endpointing); ``{"type": "played", "turn": n,
  "seconds": s, "done": bool}`` playback progress; ``{"type": "stopped", "turn": n,
  "seconds": s}`` after a ``stop``; ``{"type": "text", "text": "..."}`` typed text.
- server -> page: ``ready`` (``session``, and what `on_hello` adds); ``speech_start``;
  ``utterance`` (turn ``n`` starts); ``user_text`` (what the user said in turn ``n``, in
  words: typed text at once, speech once transcribed, which may be after the reply started;
  speech is not sent as words without a transcription model); ``transcript`` pieces;
  ``tool_call`` and ``tool_result`` (the tool's ``name``; with ``tool_details=True`` also
  its ``args`` and ``output``, each cut to `TOOL_DETAIL_BYTES`); ``audio_start`` with the
  reply's ``sample_rate``, followed by binary frames of reply speech (PCM16 little-endian
  mono, whole samples);
  ``reply_end`` (``audio_bytes``, ``session_cost``, and latency: ``endpoint_delay_s``,
  ``first_audio_s``, ``first_played_s``); ``stop`` (barge-in, or a pause while the user
  makes a sound: stop playing turn ``n`` now and answer ``stopped``); ``error``. After a
  ``stop``, a new ``audio_start`` for the same turn brings the rest of its reply (the
  user's sound was no interruption): the page plays it as a fresh start of that turn and
  reports ``played`` seconds counted from it.

No web framework is imported here: `voice_app` wires a Starlette WebSocket to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_openrouter_audio.voice._rate import TokenBucket
from langchain_openrouter_audio.voice.limits import SessionEnded, SessionLimits
from langchain_openrouter_audio.voice.transport import (
    EngineHandle,
    ReplyEnded,
    SpeechStarted,
    ToolCalled,
    ToolReturned,
    TranscriptDelta,
    TurnFailed,
    UserTranscript,
    UserTurnStarted,
    VoiceEvent,
)

__all__ = ["TOOL_DETAIL_BYTES", "BrowserTransport", "OnHello", "Receive", "Send"]

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any] | bytes], Awaitable[None]]
"""Sends one frame to the page: a dict as a JSON text frame, bytes as a binary frame."""

Receive = Callable[[], Awaitable[str | bytes | None]]
"""The page's next frame: text, bytes, or None once the connection is closed."""

OnHello = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Sees the page's first ``hello``; returns fields added to ``ready`` (or raises
`SessionEnded` to end the connection)."""

TOOL_DETAIL_BYTES = 2048
"""With ``tool_details=True``, a tool's ``args`` (as JSON) and ``output`` longer than this
many UTF-8 bytes reach the page cut to it, ending in "…", with ``"truncated": true``."""

# Largest turn number and played position (a day) a page may report.
_MAX_TURN = 1_000_000_000
_MAX_PLAYED_S = 86_400.0
# How often the watchdog looks at the clocks.
_WATCH_S = 0.25


class BrowserTransport:
    """The voice page's end of a WebSocket (see the module for the protocol).

    The page plays reply speech from its own buffer, so audio goes out as it arrives and
    the page reports what it played (``played``; ``stopped`` after a ``stop``).

    `limits` (a `SessionLimits`) bounds what the page may do: a connection that does not
    say hello, stays idle, lasts too long, stops reading, sends oversized frames, too
    much audio or control messages faster than `max_messages_per_s` is ended, and `ended`
    says why (a `SessionEnded` with a close code).
    `on_hello(hello)` runs once, before ``ready``: what it returns is added to ``ready``
    (`voice_app` opens the conversation the page asks to resume there).

    Tool calls reach the page as their tool's name only (``tool_call`` when one starts,
    ``tool_result`` when it returns): whatever a tool is given or returns (database rows,
    internal ids) stays on the server. `tool_details=True` also sends ``args`` and
    ``output``, each cut to `TOOL_DETAIL_BYTES`.

    ```python
    transport = BrowserTransport(send, receive, sample_rate=16000)
    summary = await TurnEngine(agent, transport).run()  # until the page disconnects
    ```
    """

    output_rate = 24_000
    can_resend = True  # after a `stop`, a new `audio_start` for the turn plays the rest

    def __init__(
        self,
        send: Send,
        receive: Receive,
        *,
        sample_rate: int = 16_000,
        session_id: str | None = None,
        limits: SessionLimits | None = None,
        on_hello: OnHello | None = None,
        tool_details: bool = False,
    ) -> None:
        self.input_rate = sample_rate
        self.tool_details = tool_details
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.limits = limits or SessionLimits()
        self.ended: SessionEnded | None = None
        """Why the transport ended the connection (a limit), or None."""
        self._send = send
        self._receive = receive
        self._send_lock = asyncio.Lock()
        self._ready = False
        self._announced: int | None = None  # turn whose audio_start was sent
        self._ending = asyncio.Event()
        self._input_bytes = 0
        self._max_frame = round(self.limits.max_frame_s * sample_rate) * 2
        self._max_input = round(self.limits.max_input_s * sample_rate) * 2
        self._last_activity = time.monotonic()
        # Every control message, and every audio frame answered with an error, takes one:
        # a page that floods them is closed instead of parsed and answered without end.
        self._messages = TokenBucket(
            per_s=self.limits.max_messages_per_s, burst=self.limits.message_burst
        )
        self._on_hello = on_hello
        self._ready_extra: dict[str, Any] | None = None  # what on_hello added, once

    # -- page -> engine -------------------------------------------------------------

    async def run(self, engine: EngineHandle) -> None:
        """Read the page's frames into `engine` until it disconnects or a limit ends it."""
        reading = asyncio.create_task(self._read(engine))
        watching = asyncio.create_task(self._watch(engine))
        try:
            await asyncio.wait({reading, watching}, return_when=asyncio.FIRST_COMPLETED)
            if reading.done() and not reading.cancelled() and reading.exception() is not None:
                raise reading.exception()  # type: ignore[misc]
        finally:
            for task in (reading, watching):
                task.cancel()
            await asyncio.gather(reading, watching, return_exceptions=True)

    def end(self, ended: SessionEnded) -> None:
        """End the connection (the first reason is kept in `ended`)."""
        if self.ended is None:
            self.ended = ended
            logger.info("session %s: ending: %s", self.session_id, ended.reason)
        self._ending.set()

    async def _read(self, engine: EngineHandle) -> None:
        while (frame := await self._receive()) is not None:
            if isinstance(frame, bytes | bytearray):
                await self._on_audio(engine, bytes(frame))
            else:
                await self._on_text(engine, frame)
            if self._ending.is_set():
                return

    async def _watch(self, engine: EngineHandle) -> None:
        """Ends a connection that never says hello, stays idle or lasts too long."""
        limits = self.limits
        started = time.monotonic()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ending.wait(), _WATCH_S)
            if self._ending.is_set():
                return
            now = time.monotonic()
            if engine.busy:
                self._last_activity = now
            if not self._ready and now - started > limits.hello_timeout_s:
                self.end(SessionEnded("no hello"))
            elif now - self._last_activity > limits.idle_timeout_s:
                self.end(SessionEnded("idle", code=1001))
            elif now - started > limits.max_session_s:
                self.end(SessionEnded("session too long", code=1001))

    def _flooding(self) -> bool:
        """Counts one message; True (and the connection ends) once they come too fast."""
        if self._messages.take(now=time.monotonic()):
            return False
        self.end(SessionEnded("too many messages"))
        return True

    async def _on_audio(self, engine: EngineHandle, pcm: bytes) -> None:
        self._input_bytes += len(pcm)
        if len(pcm) > self._max_frame:
            self.end(SessionEnded("audio frame too long", code=1009))
        elif self._input_bytes > self._max_input:
            self.end(SessionEnded("too much audio", code=1009))
        elif not self._ready:
            if not self._flooding():
                await self.send({"type": "error", "message": "send hello before audio"})
        elif len(pcm) % 2:
            if not self._flooding():
                await self.send({"type": "error", "message": "audio must be whole PCM16 samples"})
        else:
            await engine.audio(pcm)

    async def _on_text(self, engine: EngineHandle, raw: str) -> None:
        if self._flooding():
            return
        limit = self.limits.max_message_bytes
        # Characters first (a longer text is too long in any encoding), then UTF-8 bytes.
        if len(raw) > limit or len(raw.encode("utf-8", "surrogatepass")) > limit:
            self.end(SessionEnded("control message too long", code=1009))
            return
        try:
            if _nesting(raw) > _MAX_NESTING:
                raise ValueError("nested too deep")
            message = json.loads(raw)
        except (ValueError, RecursionError):
            await self.send({"type": "error", "message": "control messages must be JSON"})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "hello":
            if message.get("sample_rate") != self.input_rate:
                error = f"sample_rate must be one of {[self.input_rate]}"
                await self.send({"type": "error", "message": error})
                return
            if self._ready_extra is None:
                try:
                    hello = await self._on_hello(message) if self._on_hello else {}
                except SessionEnded as ended:
                    self.end(ended)
                    return
                self._ready_extra = hello
            self._ready = True
            self._last_activity = time.monotonic()
            ready = {"type": "ready", "session": self.session_id, "sample_rate": self.input_rate}
            await self.send({**ready, **self._ready_extra})
        elif not self._ready:
            await self.send({"type": "error", "message": "send hello first"})
        elif kind in ("ptt_start", "ptt_end"):
            await engine.push_to_talk(kind == "ptt_start")
        elif kind in ("played", "stopped"):
            turn, seconds = message.get("turn"), message.get("seconds")
            done = kind == "stopped" or message.get("done") is True
            if not (_is_int(turn) and 0 <= turn <= _MAX_TURN):
                await self.send({"type": "error", "message": f"{kind}.turn must be a turn number"})
            elif not (_is_seconds(seconds) and 0 <= seconds <= _MAX_PLAYED_S):
                error = f"{kind}.seconds must be a number from 0 to {_MAX_PLAYED_S:.0f}"
                await self.send({"type": "error", "message": error})
            else:
                engine.played(turn, float(seconds), done=done)
        elif kind == "text" and isinstance(message.get("text"), str):
            self._last_activity = time.monotonic()
            await engine.user_text(message["text"])
        else:
            shown = kind if isinstance(kind, str) and len(kind) <= 40 else "?"
            await self.send({"type": "error", "message": f"unknown message type {shown!r}"})

    # -- engine -> page ---------------------------------------------------------------

    async def send(self, message: dict[str, Any] | bytes) -> None:
        """One frame to the page (the reader, the engine and its callbacks all send).

        A page that does not take a frame within `send_timeout_s` has stopped reading: the
        connection ends (freeing its slot and the agent's upstream stream) and nothing more
        is sent.
        """
        if self._ending.is_set():
            return
        try:
            await asyncio.wait_for(self._send_in_turn(message), self.limits.send_timeout_s)
        except TimeoutError:
            self.end(SessionEnded("client stopped reading"))

    async def _send_in_turn(self, message: dict[str, Any] | bytes) -> None:
        async with self._send_lock:
            await self._send(message)

    async def play(self, turn: int, pcm: bytes) -> None:
        if self._announced != turn:
            self._announced = turn
            await self.send({"type": "audio_start", "turn": turn, "sample_rate": self.output_rate})
        await self.send(pcm)

    async def end_reply(self, turn: int) -> None:
        return None  # `reply_end` goes out with the engine's ReplyEnded event

    async def clear(self, turn: int) -> None:
        self._announced = None  # audio sent after this (the rest of a paused reply) restarts
        await self.send({"type": "stop", "turn": turn})

    async def send_event(self, event: VoiceEvent) -> None:
        self._last_activity = time.monotonic()
        message = _as_message(event, tool_details=self.tool_details)
        if message is not None:
            await self.send(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _as_message(event: VoiceEvent, *, tool_details: bool) -> dict[str, Any] | None:
    if isinstance(event, SpeechStarted):
        return {"type": "speech_start"}
    if isinstance(event, UserTurnStarted):
        return {"type": "utterance", "turn": event.turn, "seconds": event.seconds}
    if isinstance(event, UserTranscript):
        return {"type": "user_text", "turn": event.turn, "text": event.text}
    if isinstance(event, TranscriptDelta):
        return {"type": "transcript", "turn": event.turn, "text": event.text}
    if isinstance(event, ToolCalled):
        message = {"type": "tool_call", "turn": event.turn, "name": event.name}
        return (
            {**message, **_bounded("args", event.args, as_json=True)} if tool_details else message
        )
    if isinstance(event, ToolReturned):
        message = {"type": "tool_result", "turn": event.turn, "name": event.name}
        return {**message, **_bounded("output", event.output)} if tool_details else message
    if isinstance(event, TurnFailed):
        return {"type": "error", "turn": event.turn, "message": event.message}
    if isinstance(event, ReplyEnded):
        return {
            "type": "reply_end",
            "turn": event.turn,
            "audio_bytes": event.audio_bytes,
            "session_cost": event.session_cost,
            "endpoint_delay_s": event.endpoint_delay_s,
            "first_audio_s": event.first_audio_s,
            "first_played_s": event.first_played_s,
        }
    return None


def _bounded(key: str, value: Any, *, as_json: bool = False) -> dict[str, Any]:
    """``{key: value}``, or its text cut to `TOOL_DETAIL_BYTES` with ``truncated``. Values
    that are not JSON (a tool's inputs may hold any object, or a NaN that the browser's
    JSON parser would refuse with the whole frame) are sent as their text."""
    text = str(value)
    if as_json:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)
        except ValueError:
            as_json = False
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= TOOL_DETAIL_BYTES:
        return {key: json.loads(text) if as_json else text}
    cut = data[:TOOL_DETAIL_BYTES].decode("utf-8", "ignore")
    return {key: cut + "…", "truncated": True}


# The protocol's messages are flat objects. Depth is checked before parsing because the
# parser's own limit differs between Python versions (3.13 parses 5,000 levels).
_MAX_NESTING = 8


def _nesting(raw: str) -> int:
    """How deep `raw`'s arrays and objects nest, strings skipped (any text: no parsing)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
