"""`TwilioSimulator`: places phone calls to your app the way Twilio Programmable Voice does.

Written from Twilio's public Media Streams documentation: the signed voice webhook, the
``<Connect><Stream>`` TwiML answer, the signed WebSocket handshake, and the bidirectional
stream protocol (``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop`` from
Twilio; ``media``, ``mark``, ``clear`` to Twilio), played out in real time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["PlayedSpan", "SimulatedCall", "TwilioCallRefused", "TwilioSimulator"]

PHONE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, what Twilio sends in each `media` message
FRAME_S = FRAME_BYTES / PHONE_RATE
MULAW_SILENCE = b"\xff"  # mu-law's code for 0


class TwilioCallRefused(Exception):
    """The app refused the webhook or the stream (bad signature, wrong TwiML, busy)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PlayedSpan:
    """A stretch of time during which the caller heard the app without a gap."""

    start: float
    end: float
    mulaw: bytearray = field(default_factory=bytearray)

    @property
    def seconds(self) -> float:
        return len(self.mulaw) / PHONE_RATE


class TwilioSimulator:
    """Plays Twilio's part in phone calls to an app, over real HTTP and WebSocket sockets.

    `base_url` is where the app listens (``http://127.0.0.1:8000``); `auth_token` signs the
    webhook and the socket handshake like the account's auth token. Twilio only connects to
    ``wss://`` streams: with `tls=False` (the default, for apps on 127.0.0.1) the simulator
    connects to the TwiML's address over plain ``ws://`` but signs the ``wss://`` address, as
    it arrives behind a TLS-terminating proxy. Needs the ``websockets`` client (``[web]``).

    ```python
    import asyncio
    from langchain_openrouter_audio.testing import TwilioSimulator, speech_pcm16

    async def place_call() -> None:
        twilio = TwilioSimulator("http://127.0.0.1:8000", auth_token="secret")
        async with twilio.call() as call:
            await call.say(speech_pcm16("What is the weather?"), sample_rate=24000)
            await call.until_reply_played(timeout_s=30)
        print(f"heard {call.played_seconds:.1f} s of reply")
    ```
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth_token: str,
        webhook_path: str = "/twilio/voice",
        tls: bool = False,
        account_sid: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.webhook_url = self.base_url + webhook_path
        self.auth_token = auth_token
        self.tls = tls
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)

    def webhook_form(self, call_sid: str, from_: str, to: str) -> dict[str, str]:
        """The form Twilio posts to the voice webhook when a call comes in."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": to,
            "Caller": from_,
            "Direction": "inbound",
            "From": from_,
            "To": to,
        }

    async def answer(self, call_sid: str, from_: str, to: str) -> tuple[str, dict[str, str]]:
        """POST the signed webhook; returns the stream URL and parameters of the TwiML."""
        from langchain_openrouter_audio.web._twilio_signature import twilio_signature

        form = self.webhook_form(call_sid, from_, to)
        headers = {
            "X-Twilio-Signature": twilio_signature(self.auth_token, self.webhook_url, form),
            "User-Agent": "TwilioProxy/1.1",
        }
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.post(self.webhook_url, data=form, headers=headers)
        if response.status_code != 200:
            raise TwilioCallRefused(
                f"voice webhook answered {response.status_code}", status=response.status_code
            )
        return parse_stream_twiml(response.text)

    @contextlib.asynccontextmanager
    async def call(
        self, *, from_: str = "+14155550100", to: str = "+15005550006"
    ) -> AsyncIterator[SimulatedCall]:
        """Place a call: webhook, TwiML, signed socket, ``connected`` and ``start``.

        On exit the caller hangs up: a ``stop`` message, then the socket closes.
        """
        from langchain_openrouter_audio.web._twilio_signature import twilio_signature

        call_sid = "CA" + secrets.token_hex(16)
        stream_url, parameters = await self.answer(call_sid, from_, to)
        connect_url = stream_url if self.tls else "ws://" + stream_url[len("wss://") :]
        headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, stream_url, {})}
        ws = await _connect(connect_url, headers)
        call = SimulatedCall(ws, self.account_sid, call_sid, parameters)
        try:
            await call._start()
            yield call
        finally:
            await call.hang_up()


def parse_stream_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """The ``<Connect><Stream url>`` address and its ``<Parameter>`` values, as Twilio reads
    them; anything else is refused with the reason."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as err:
        raise TwilioCallRefused(f"the webhook's answer is not TwiML: {err}") from err
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    if stream is None:
        raise TwilioCallRefused("TwiML has no <Response><Connect><Stream>")
    url = stream.get("url", "")
    if not url.startswith("wss://"):
        raise TwilioCallRefused(f"a Stream url must be wss://, got {url!r}")
    if "?" in url:
        raise TwilioCallRefused("a Stream url takes no query string: use <Parameter>")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return url, parameters


async def _connect(url: str, headers: dict[str, str]) -> Any:
    try:
        from websockets.asyncio.client import connect
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "TwilioSimulator needs the websockets client: pip install websockets"
        ) from err
    from websockets.exceptions import InvalidStatus

    try:
        return await connect(url, additional_headers=headers, max_size=2**20)
    except InvalidStatus as err:
        status = err.response.status_code
        raise TwilioCallRefused(f"the media stream handshake got {status}", status=status) from err


class SimulatedCall:
    """One call in progress: what the caller says, and what they hear.

    Inbound audio leaves as a 20 ms ``media`` message every 20 ms (silence when the caller
    says nothing, as a phone line does). Outbound ``media`` goes to a playout buffer drained
    at 8000 samples per second; a ``mark`` comes back when the audio before it has played;
    ``clear`` empties the buffer and sends back the marks still in it at once.
    """

    def __init__(
        self, ws: Any, account_sid: str, call_sid: str, parameters: dict[str, str]
    ) -> None:
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.parameters = parameters
        self.received: list[tuple[float, dict[str, Any]]] = []
        """Every message from the app with its arrival time (``loop.time()``)."""
        self.played: list[PlayedSpan] = []
        """What the caller heard, as stretches of continuous playback."""
        self.echoed_marks: list[tuple[float, str, bool]] = []
        """(time, name, played): ``played`` is False for marks a ``clear`` sent back."""
        self.clears: list[float] = []
        self.said: list[tuple[float, float]] = []
        """(start, end) of each `say`: when its first and last frames left."""
        self.problems: list[str] = []
        """Messages Twilio would reject (wrong streamSid, bad payload, unknown event)."""
        self.sent_frames = 0
        """20 ms ``media`` messages sent so far (speech and the line's silence)."""
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self._sequence = 0
        self._chunk = 0
        self._started_at = 0.0
        self._outbox: deque[bytes | tuple[str, str] | asyncio.Future[float]] = deque()
        self._playout: deque[bytearray | str] = deque()
        self._budget = 0.0
        self._idle = True  # nothing is playing: the next audio starts a new `PlayedSpan`
        self._last_tick = 0.0
        self._last_media_at = 0.0
        # Stretches of playback before the caller last finished saying or pressing something.
        self._spans_at_input = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._hanging_up = False

    # -- what the caller does ---------------------------------------------------------

    async def say(self, pcm: bytes, *, sample_rate: int) -> tuple[float, float]:
        """Speak PCM16 mono audio into the call in real time; returns when it has all left,
        with the times its first and last frames were sent."""
        from langchain_openrouter_audio.voice import pcm16_to_mulaw, resample_pcm16

        mulaw = pcm16_to_mulaw(resample_pcm16(pcm, sample_rate, PHONE_RATE))
        mulaw += MULAW_SILENCE * (-len(mulaw) % FRAME_BYTES)
        first: asyncio.Future[float] = self._loop.create_future()
        last: asyncio.Future[float] = self._loop.create_future()
        self._outbox.append(first)
        self._outbox.extend(mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES))
        self._outbox.append(last)
        span = (await self._sent(first), await self._sent(last))
        self.said.append(span)
        self._spans_at_input = len(self.played)
        return span

    async def press(self, digit: str) -> None:
        """Press a key: a ``dtmf`` message in line with the audio."""
        if digit not in "0123456789*#" or len(digit) != 1:
            raise ValueError("a DTMF digit is one of 0-9, * and #")
        done: asyncio.Future[float] = self._loop.create_future()
        self._spans_at_input = len(self.played)  # a reply to the key cannot come before it
        self._outbox.extend([("dtmf", digit), done])
        await self._sent(done)

    async def _sent(self, marker: asyncio.Future[float]) -> float:
        """When `marker` in the outbox was reached; ConnectionError if the app closed the
        stream first (nothing more is sent then)."""
        closed: asyncio.Future[Any] = asyncio.ensure_future(self._closed.wait())
        waiting: set[asyncio.Future[Any]] = {marker, closed}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if not marker.done() or marker.cancelled():
            raise ConnectionError("the app closed the media stream")
        return marker.result()

    async def wait(self, seconds: float) -> None:
        """Let the call run (silence from the caller) for `seconds`."""
        await asyncio.sleep(seconds)

    async def until_reply_played(self, *, timeout_s: float = 30.0, idle_s: float = 1.0) -> None:
        """Wait until a reply to the caller's last words (or key) has played: a new stretch
        of playback since then, and nothing more came or played for `idle_s`.
        TimeoutError after `timeout_s` seconds."""
        spans_before = self._spans_at_input
        deadline = self._loop.time() + timeout_s
        while True:
            now = self._loop.time()
            replied = len(self.played) > spans_before
            quiet = self._idle and now - self._last_media_at >= idle_s
            if replied and quiet and now - self.played[-1].end >= idle_s:
                return
            if self._closed.is_set():
                raise ConnectionError("the app closed the media stream")
            if now > deadline:
                raise TimeoutError(f"no reply played within {timeout_s} s")
            await asyncio.sleep(0.05)

    async def until_playing(self, *, timeout_s: float = 30.0) -> float:
        """Wait until reply audio is playing now; returns when that stretch started."""
        deadline = self._loop.time() + timeout_s
        while not (self.played and not self._idle):
            if self._loop.time() > deadline:
                raise TimeoutError(f"nothing played within {timeout_s} s")
            await asyncio.sleep(0.01)
        return self.played[-1].start

    async def until_closed(self, *, timeout_s: float = 10.0) -> None:
        """Wait until the app closes the media stream (`close_code` then says how).
        TimeoutError after `timeout_s` seconds.

        ```python
        async with twilio.call() as call:  # an app whose on_dtmf raises
            await call.press("#")
            await call.until_closed()
        assert call.close_code == 1011  # close_reason: "internal error (ref 3f9c2a1b)"
        ```
        """
        try:
            await asyncio.wait_for(self._closed.wait(), timeout_s)
        except TimeoutError:
            raise TimeoutError(f"the app did not close the stream within {timeout_s} s") from None

    # -- what the caller heard ---------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        """The close code of the stream once it is closed (None while it is open)."""
        return self._ws.close_code if self._closed.is_set() else None

    @property
    def close_reason(self) -> str | None:
        """The close reason of the stream once it is closed (None while it is open)."""
        return self._ws.close_reason if self._closed.is_set() else None

    @property
    def played_seconds(self) -> float:
        return sum(span.seconds for span in self.played)

    def events(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        """The app's messages of one ``event`` type, with their arrival times."""
        return [(t, m) for t, m in self.received if m.get("event") == kind]

    # -- the stream ---------------------------------------------------------------------

    async def _start(self) -> None:
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._started_at = self._last_tick = self._loop.time()
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next_sequence(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": PHONE_RATE,
                        "channels": 1,
                    },
                    "customParameters": self.parameters,
                },
                "streamSid": self.stream_sid,
            }
        )
        self._tasks = [
            asyncio.create_task(self._speak()),
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._play()),
        ]

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        self._hanging_up = True
        speaker, listener, player = self._tasks or (None, None, None)
        for task in (speaker, player):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not self._closed.is_set():
            with contextlib.suppress(Exception):
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": self._next_sequence(),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                    }
                )
        with contextlib.suppress(Exception):
            await self._ws.close()
        if listener is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(listener, 5)
        for item in self._outbox:  # a `say` still waiting must not hang
            if isinstance(item, asyncio.Future) and not item.done():
                item.cancel()

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message))

    async def _speak(self) -> None:
        """One inbound frame every 20 ms, on a fixed schedule (a late tick catches up)."""
        frame_no = 0
        while True:
            due = self._started_at + frame_no * FRAME_S
            await asyncio.sleep(max(0.0, due - self._loop.time()))
            frame = MULAW_SILENCE * FRAME_BYTES
            while self._outbox:
                item = self._outbox.popleft()
                if isinstance(item, asyncio.Future):
                    if not item.done():
                        item.set_result(self._loop.time())
                elif isinstance(item, tuple):
                    await self._send(
                        {
                            "event": "dtmf",
                            "streamSid": self.stream_sid,
                            "sequenceNumber": self._next_sequence(),
                            "dtmf": {"track": "inbound_track", "digit": item[1]},
                        }
                    )
                else:
                    frame = item
                    break
            self._chunk += 1
            await self._send(
                {
                    "event": "media",
                    "sequenceNumber": self._next_sequence(),
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(round(frame_no * FRAME_S * 1000)),
                        "payload": base64.b64encode(frame).decode("ascii"),
                    },
                    "streamSid": self.stream_sid,
                }
            )
            frame_no += 1
            self.sent_frames += 1
            # Futures right after the last frame (end of a `say`) resolve without a tick.
            while self._outbox and isinstance(self._outbox[0], asyncio.Future):
                done = self._outbox.popleft()
                if isinstance(done, asyncio.Future) and not done.done():
                    done.set_result(self._loop.time())

    async def _listen(self) -> None:
        try:
            async for raw in self._ws:
                now = self._loop.time()
                try:
                    message = json.loads(raw)
                except (TypeError, ValueError):
                    self.problems.append(f"not JSON: {raw!r:.80}")
                    continue
                self.received.append((now, message))
                await self._on_message(now, message)
        except Exception as err:  # the app closed the socket or broke the protocol
            if not self._hanging_up:  # how the app closes after our hang-up is its business
                self.problems.append(f"socket: {type(err).__name__}: {err}")
        finally:
            self._closed.set()

    async def _on_message(self, now: float, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if message.get("streamSid") != self.stream_sid:
            self.problems.append(f"{kind} for streamSid {message.get('streamSid')!r}")
            return
        if kind == "media":
            try:
                payload = message["media"]["payload"]
                audio = base64.b64decode(payload, validate=True)
            except (KeyError, TypeError, binascii.Error):
                self.problems.append("media without a base64 payload")
                return
            self._last_media_at = now
            self._playout.append(bytearray(audio))
        elif kind == "mark":
            name = (message.get("mark") or {}).get("name")
            if not isinstance(name, str):
                self.problems.append("mark without a name")
                return
            self._playout.append(name)
        elif kind == "clear":
            self.clears.append(now)
            pending = [item for item in self._playout if isinstance(item, str)]
            self._playout.clear()
            self._idle = True
            for name in pending:
                await self._echo(name, played=False)
        else:
            self.problems.append(f"unknown event {kind!r}")

    async def _play(self) -> None:
        """Drains the playout buffer at 8000 samples a second, in 20 ms ticks."""
        while True:
            await asyncio.sleep(FRAME_S)
            now = self._loop.time()
            elapsed, self._last_tick = now - self._last_tick, now
            if not self._playout:
                self._budget = 0.0  # an idle line does not bank time
                self._idle = True
                continue
            self._budget += elapsed * PHONE_RATE
            while self._playout:
                head = self._playout[0]
                if isinstance(head, str):
                    self._playout.popleft()
                    await self._echo(head, played=True)
                    continue
                take = min(len(head), int(self._budget))
                if take == 0:
                    break
                self._hear(now, bytes(head[:take]))
                del head[:take]
                self._budget -= take
                if not head:
                    self._playout.popleft()

    def _hear(self, now: float, audio: bytes) -> None:
        # A late tick (a loaded machine) is not a gap: only a buffer that ran dry is.
        if self._idle or not self.played:
            self._idle = False
            self.played.append(PlayedSpan(start=now - len(audio) / PHONE_RATE, end=now))
        span = self.played[-1]
        span.mulaw += audio
        span.end = now

    async def _echo(self, name: str, *, played: bool) -> None:
        self.echoed_marks.append((self._loop.time(), name, played))
        await self._send(
            {
                "event": "mark",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )
