"""`TwilioTransport`: a phone call over a Twilio Media Streams WebSocket (bidirectional).

From Twilio (JSON text frames): ``connected``; ``start`` with the ``streamSid``, the
``callSid`` and the ``<Parameter>``s of the TwiML; ``media`` (20 ms of 8 kHz mu-law, base64);
``dtmf`` (a key pressed); ``mark`` (one of ours, echoed back); ``stop`` (the call ended).
To Twilio: ``media`` (reply audio, 20 ms pieces of 8 kHz mu-law on the call's
``streamSid``), ``mark`` (after the first piece of a reply, every `mark_every` pieces, and at
its end) and ``clear`` (barge-in: Twilio drops what it has not played yet).

Twilio echoes a mark once the audio before it has played, and at once, unplayed, for marks
that a ``clear`` dropped. So what the caller heard of a reply is the audio before the last
mark echoed *before* we sent ``clear``; marks that come back after it do not count. That
position goes to the engine as the reply plays (`engine.played`), and is final at ``clear``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_openrouter_audio.voice.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from langchain_openrouter_audio.voice.resample import Resampler
from langchain_openrouter_audio.voice.transport import EngineHandle, VoiceEvent

__all__ = ["TwilioCall", "TwilioTransport"]

logger = logging.getLogger("langchain_openrouter_audio.voice")

PHONE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law: the piece size Twilio sends and expects
# A Twilio message is a few hundred bytes (a 20 ms `media` is ~300): far bigger is not Twilio.
MAX_MESSAGE_CHARS = 16 * 1024

Send = Callable[[str], Awaitable[None]]
Receive = Callable[[], Awaitable[str | None]]


class _NotTwilio(Exception):
    """The peer breaks the Media Streams protocol: the call ends."""


@dataclass
class TwilioCall:
    """What Twilio's ``start`` message said about the call."""

    stream_sid: str = ""
    call_sid: str = ""
    account_sid: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    """The TwiML's ``<Parameter>`` values (`voice_app` forwards ``From``, ``To``, ``CallSid``)."""
    dtmf: str = ""
    """Every key pressed during the call, in order."""


@dataclass
class _Reply:
    """One turn's reply on the line: what was sent, and how much of it Twilio played."""

    turn: int
    sent_samples: int = 0
    played_samples: int = 0
    pieces: int = 0
    pending: bytearray = field(default_factory=bytearray)  # mu-law under one 20 ms piece
    cleared: bool = False
    ended: bool = False
    done: bool = False


class TwilioTransport:
    """Runs a `TurnEngine` conversation on one Twilio Media Streams call.

    Written against two callables, so it works with any WebSocket library: `send(text)`
    sends a text frame, `receive()` returns the next text frame or None once the socket
    is closed. The engine hears the caller at `input_rate` (8000, the line's own rate;
    16000 upsamples it for detectors or models that want it, a few tens of milliseconds
    later: the resampler's filter) and hands replies at 8000.
    `voice_app(agent, twilio_auth_token=...)` serves it at ``/twilio/media``.

    `mark_every` sets how often a mark follows reply audio (in 20 ms pieces): what was
    heard is known to that precision. Keys pressed go to `engine.dtmf(digits)` as one
    string per entry, the way Twilio's ``<Gather>`` collects them: when ``#`` is pressed, or
    `dtmf_pause_s` after the last key (0: every key at once). `start_timeout_s` bounds the
    wait for Twilio's ``start`` message, `idle_timeout_s` any silence of the socket after it
    (Twilio sends audio every 20 ms), `max_call_s` the whole call (None: no limit); past
    them the stream ends, and with it the call. A frame Twilio does not take within
    `send_timeout_s` ends the stream too (the line stopped reading). `on_event` gets the
    engine's events (a phone line has no screen).

    ```python
    from starlette.websockets import WebSocket
    from langchain_openrouter_audio.voice import TurnEngine
    from langchain_openrouter_audio.voice.transports import TwilioTransport

    async def media_stream(websocket: WebSocket) -> None:  # after checking the signature
        await websocket.accept()

        async def receive() -> str | None:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            return message.get("text") or ""

        summary = await TurnEngine(agent, TwilioTransport(websocket.send_text, receive)).run()
    ```
    """

    output_rate = PHONE_RATE
    can_resend = True  # a reply paused by `clear` can be sent again from where it stopped

    def __init__(
        self,
        send: Send,
        receive: Receive,
        *,
        input_rate: int = PHONE_RATE,
        mark_every: int = 5,
        dtmf_pause_s: float = 1.5,
        start_timeout_s: float = 10.0,
        idle_timeout_s: float = 10.0,
        max_call_s: float | None = 3600.0,
        send_timeout_s: float = 10.0,
        on_event: Callable[[VoiceEvent], Awaitable[None] | None] | None = None,
    ) -> None:
        if mark_every < 1:
            raise ValueError("mark_every must be >= 1")
        if dtmf_pause_s < 0:
            raise ValueError("dtmf_pause_s must be >= 0")
        if start_timeout_s <= 0 or idle_timeout_s <= 0:
            raise ValueError("start_timeout_s and idle_timeout_s must be > 0")
        if not send_timeout_s > 0:
            raise ValueError("send_timeout_s must be > 0")
        if max_call_s is not None and max_call_s <= 0:
            raise ValueError("max_call_s must be > 0 (or None)")
        self.input_rate = input_rate
        self.call = TwilioCall()
        self._send_text = send
        self._receive = receive
        self._send_lock = asyncio.Lock()
        self._mark_every = mark_every
        self._start_timeout_s = start_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._max_call_s = max_call_s
        self._send_timeout_s = send_timeout_s
        self._dtmf_pause_s = dtmf_pause_s
        self._keys = ""  # keys pressed since the last digits went to the engine
        self._keys_timer: asyncio.Task[None] | None = None
        self._keys_failure: Exception | None = None
        self._on_event = on_event
        self._upsampler = Resampler(PHONE_RATE, input_rate) if input_rate != PHONE_RATE else None
        self._engine: EngineHandle | None = None
        self._replies: dict[int, _Reply] = {}
        self._marks: dict[str, tuple[int, int, bool]] = {}  # name -> (turn, samples, end)
        self._mark_count = 0
        self._started = False
        self._stopped = False

    # -- Twilio -> engine ---------------------------------------------------------------

    async def run(self, engine: EngineHandle) -> None:
        """Read Twilio's messages until ``stop`` or the socket closes."""
        self._engine = engine
        opened = time.monotonic()
        try:
            while not self._stopped:
                raw = await asyncio.wait_for(self._receive(), self._receive_timeout(opened))
                if self._keys_failure is not None:  # keys sent after a pause raised
                    raise self._keys_failure
                if raw is None:
                    break
                await self._on_message(engine, raw)
        except TimeoutError:
            logger.warning("Twilio stream %s: the call ends", self._why_timed_out(opened))
        except _NotTwilio as err:
            logger.warning("Twilio stream ended: %s", err)
        finally:
            self._stopped = True
            if self._keys_timer is not None:
                self._keys_timer.cancel()
            if self._upsampler is not None and (tail := self._upsampler.flush()):
                await engine.audio(tail)  # what the resampler's filter still held
            await engine.end_of_input()

    def _receive_timeout(self, opened: float) -> float:
        now = time.monotonic()
        if not self._started:
            return max(opened + self._start_timeout_s - now, 0.001)
        # Twilio sends media every 20 ms for the whole call: a silent socket is dead.
        if self._max_call_s is None:
            return self._idle_timeout_s
        return max(min(self._idle_timeout_s, opened + self._max_call_s - now), 0.001)

    def _why_timed_out(self, opened: float) -> str:
        if not self._started:
            return "never started"
        if self._max_call_s is not None and time.monotonic() - opened >= self._max_call_s:
            return f"reached max_call_s ({self._max_call_s:g} s)"
        return "went silent"

    async def _on_message(self, engine: EngineHandle, raw: str) -> None:
        if len(raw) > MAX_MESSAGE_CHARS:
            raise _NotTwilio("a message over 16 KiB")
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("Twilio stream: a message that is not JSON")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("event")
        if kind == "start":
            self._on_start(_object(message, "start"))
        elif not self._started:
            return  # `connected` and anything before `start`
        elif kind == "media":
            pcm = _decode_media(message)
            if pcm is not None:
                if self._upsampler is not None:
                    pcm = self._upsampler.push(pcm)
                await engine.audio(pcm)
        elif kind == "mark":
            self._on_mark(_object(message, "mark").get("name"))
        elif kind == "dtmf":
            digit = _object(message, "dtmf").get("digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                self.call.dtmf += digit
                await self._on_key(engine, digit)
        elif kind == "stop":
            self._stopped = True

    async def _on_key(self, engine: EngineHandle, digit: str) -> None:
        self._keys += digit
        if self._keys_timer is not None:
            self._keys_timer.cancel()
            self._keys_timer = None
        if digit == "#" or self._dtmf_pause_s == 0:
            await self._send_keys(engine)
        else:
            self._keys_timer = asyncio.create_task(self._keys_after_pause(engine))

    async def _keys_after_pause(self, engine: EngineHandle) -> None:
        await asyncio.sleep(self._dtmf_pause_s)
        self._keys_timer = None
        try:
            await self._send_keys(engine)
        except Exception as err:  # `on_dtmf` or a limit: `run` raises it, as for "#"
            self._keys_failure = err

    async def _send_keys(self, engine: EngineHandle) -> None:
        keys, self._keys = self._keys, ""
        if keys:
            await engine.dtmf(keys)

    def _on_start(self, start: dict[str, Any]) -> None:
        media_format = _object(start, "mediaFormat")
        if (media_format.get("encoding"), media_format.get("sampleRate")) != (
            "audio/x-mulaw",
            PHONE_RATE,
        ):
            raise _NotTwilio(f"unsupported media format {media_format!r}")
        parameters = _object(start, "customParameters")
        self.call = TwilioCall(
            stream_sid=str(start.get("streamSid", "")),
            call_sid=str(start.get("callSid", "")),
            account_sid=str(start.get("accountSid", "")),
            custom_parameters={str(k): str(v) for k, v in parameters.items()},
        )
        self._started = True
        logger.info("Twilio call %s: stream %s", self.call.call_sid, self.call.stream_sid)

    def _on_mark(self, name: Any) -> None:
        entry = self._marks.pop(name, None) if isinstance(name, str) else None
        if entry is None or self._engine is None:
            return
        turn, samples, end = entry
        reply = self._replies.get(turn)
        # A mark echoed after our `clear` was dropped unplayed, or is one Twilio sent back
        # in the meantime: either way it does not count as heard.
        if reply is None or reply.cleared or reply.done:
            return
        reply.played_samples = max(reply.played_samples, samples)
        reply.done = end
        self._engine.played(turn, reply.played_samples / PHONE_RATE, done=end)
        if end:
            self._forget(turn)

    # -- engine -> Twilio ---------------------------------------------------------------

    async def play(self, turn: int, pcm: bytes) -> None:
        """Send reply audio as 20 ms ``media`` pieces, with marks between them.

        After a ``clear`` the engine only sends more of a turn to play the rest of a reply it
        paused (`can_resend`): that starts afresh, its position counted from 0 again.
        """
        reply = self._reply(turn)
        if reply.cleared:
            self._forget(turn)
            reply = self._replies[turn] = _Reply(turn)
        if not self._started:
            return
        reply.pending += pcm16_to_mulaw(pcm)
        while len(reply.pending) >= FRAME_BYTES:
            piece = bytes(reply.pending[:FRAME_BYTES])
            del reply.pending[:FRAME_BYTES]
            await self._send_piece(reply, piece)

    async def end_reply(self, turn: int) -> None:
        """Send what is left of the reply and a final mark: its echo means it all played."""
        reply = self._reply(turn)
        if reply.cleared or reply.ended or not self._started:
            return
        reply.ended = True
        if reply.pending:
            piece, reply.pending = bytes(reply.pending), bytearray()
            await self._send_piece(reply, piece, mark=False)
        await self._mark(reply, end=True)

    async def clear(self, turn: int) -> None:
        """Barge-in: ``clear`` Twilio's buffer; the reply was heard up to the last echoed mark."""
        reply = self._reply(turn)
        if reply.cleared or reply.done:
            return
        reply.cleared = True
        if self._started and not self._stopped:
            await self._send({"event": "clear", "streamSid": self.call.stream_sid})
        if self._engine is not None:
            self._engine.played(turn, reply.played_samples / PHONE_RATE, done=True)
        self._forget(turn)

    async def send_event(self, event: VoiceEvent) -> None:
        if self._on_event is not None:
            result = self._on_event(event)
            if result is not None:
                await result

    # -- helpers ----------------------------------------------------------------------------

    def _reply(self, turn: int) -> _Reply:
        reply = self._replies.get(turn)
        if reply is None:
            reply = self._replies[turn] = _Reply(turn)
            # Earlier replies are over for the engine: keep no state for them.
            for old in [t for t in self._replies if t < turn - 1]:
                self._forget(old)
                self._replies.pop(old, None)
        return reply

    def _forget(self, turn: int) -> None:
        for name in [n for n, entry in self._marks.items() if entry[0] == turn]:
            del self._marks[name]

    async def _send_piece(self, reply: _Reply, piece: bytes, *, mark: bool = True) -> None:
        await self._send(
            {
                "event": "media",
                "streamSid": self.call.stream_sid,
                "media": {"payload": base64.b64encode(piece).decode("ascii")},
            }
        )
        reply.sent_samples += len(piece)
        reply.pieces += 1
        # The first piece gets a mark of its own: its echo tells when the reply started playing.
        if mark and (reply.pieces == 1 or reply.pieces % self._mark_every == 0):
            await self._mark(reply, end=False)

    async def _mark(self, reply: _Reply, *, end: bool) -> None:
        self._mark_count += 1
        name = f"{reply.turn}.{self._mark_count}" + (".end" if end else "")
        self._marks[name] = (reply.turn, reply.sent_samples, end)
        await self._send(
            {"event": "mark", "streamSid": self.call.stream_sid, "mark": {"name": name}}
        )

    async def _send(self, message: dict[str, Any]) -> None:
        if self._stopped:
            return
        async with self._send_lock:  # the engine's tasks and the reader all send
            if self._stopped:  # a send that waited for the lock behind a failed one
                return
            text = json.dumps(message, separators=(",", ":"))
            try:
                # A peer that stops reading would hold every sender (and the turn) forever.
                await asyncio.wait_for(self._send_text(text), self._send_timeout_s)
            except Exception as err:  # the line is gone: nothing more can be played on it
                logger.debug("Twilio stream: send failed (%s); the call is over", err)
                self._stopped = True


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    """``message[key]`` when it is a JSON object, else an empty one: the peer is not trusted
    with shapes (a ``start`` without one is refused for its missing media format)."""
    value = message.get(key)
    return value if isinstance(value, dict) else {}


def _decode_media(message: dict[str, Any]) -> bytes | None:
    media = _object(message, "media")
    if media.get("track", "inbound") != "inbound":
        return None
    try:
        mulaw = base64.b64decode(media.get("payload", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        logger.warning("Twilio stream: a media payload that is not base64")
        return None
    return mulaw_to_pcm16(mulaw) if mulaw else None
