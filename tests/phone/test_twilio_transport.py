"""`TwilioTransport` against the simulated Twilio, over real sockets, with a scripted engine.

The engine here is a stand-in that plays a tone when told to (the real `TurnEngine` is in
test_phone_calls.py): these tests pin down the transport's own job, which is marks,
``clear`` and the played position it reports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.websockets import WebSocket

from langchain_openrouter_audio.testing import TwilioSimulator, speech_pcm16, tone_pcm16
from langchain_openrouter_audio.voice import mulaw_to_pcm16
from langchain_openrouter_audio.voice.transports.twilio import TwilioTransport
from langchain_openrouter_audio.web._twilio import receive_text, twilio_routes
from tests._helpers import HAS_ESPEAK
from tests.phone.conftest import AUTH_TOKEN

REPLY_S = 2.0
REPLY = tone_pcm16(REPLY_S, 440.0, sample_rate=8000)


class ScriptedEngine:
    """Plays `REPLY` as turn 1 on the first key pressed, clears it on the second."""

    def __init__(self, transport: TwilioTransport) -> None:
        self.transport = transport
        self.caller_audio = bytearray()
        self.digits = ""
        self.entries: list[str] = []
        self.reports: list[tuple[float, int, float, bool]] = []
        self.ended = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def audio(self, pcm: bytes) -> None:
        self.caller_audio += pcm

    def played(self, turn: int, seconds: float, *, done: bool = False) -> None:
        self.reports.append((time.monotonic(), turn, seconds, done))

    async def dtmf(self, digits: str) -> None:
        self.digits += digits
        self.entries.append(digits)
        if self.digits == "1":
            task = asyncio.create_task(self._reply())
            self._tasks.add(task)
        elif self.digits == "12":
            await self.transport.clear(1)

    async def _reply(self) -> None:
        for start in range(0, len(REPLY), 960):  # 60 ms pieces, as a model streams
            await self.transport.play(1, REPLY[start : start + 960])
        await self.transport.end_reply(1)

    async def end_of_input(self) -> None:
        self.ended = True

    async def push_to_talk(self, pressed: bool) -> None:
        raise AssertionError("a phone line has no talk button")

    async def user_text(self, text: str) -> None:
        raise AssertionError("a phone line has no keyboard")

    async def wait_idle(self) -> None:
        return


async def eventually(check: Callable[[], bool], within_s: float = 5.0) -> bool:
    """`check()` turns true within `within_s` (the app runs in another thread)."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def scripted_app(**options: Any) -> tuple[Starlette, list[ScriptedEngine]]:
    """Each key reaches the engine at once unless the test sets `dtmf_pause_s`."""
    options.setdefault("dtmf_pause_s", 0)
    engines: list[ScriptedEngine] = []

    async def run_call(websocket: WebSocket) -> None:
        await websocket.accept()
        transport = TwilioTransport(websocket.send_text, lambda: receive_text(websocket), **options)
        engine = ScriptedEngine(transport)
        engines.append(engine)
        await transport.run(engine)

    routes = twilio_routes(auth_token=SecretStr(AUTH_TOKEN), public_url=None, run_call=run_call)
    return Starlette(routes=routes), engines


async def test_a_reply_plays_in_real_time_and_its_end_is_reported_once_played(
    serve: Callable[..., str],
) -> None:
    app, engines = scripted_app()
    twilio = TwilioSimulator(serve(app), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        await call.press("1")
        await call.until_reply_played(timeout_s=20, idle_s=0.5)
        await call.wait(0.2)
    engine = engines[0]
    assert call.problems == []
    # Every piece on the call's stream, base64 mu-law of 20 ms (the last one may be shorter).
    media = [m for _, m in call.events("media")]
    assert all(m["streamSid"] == call.stream_sid for m in media)
    assert len(media) == REPLY_S / 0.02
    # What the caller heard is the reply, in real time (a loaded machine may starve the
    # playout for a moment, which splits it in two).
    spans = [(s.start, s.end, s.seconds) for s in call.played]
    assert 1 <= len(spans) <= 2, spans
    assert call.played_seconds == pytest.approx(REPLY_S), spans
    assert call.played[-1].end - call.played[0].start == pytest.approx(REPLY_S, abs=0.4), spans
    heard = b"".join(mulaw_to_pcm16(bytes(s.mulaw)) for s in call.played)
    assert len(heard) == len(REPLY)
    # Progress reports rise to the whole reply; the last says done, after it played.
    turns = {turn for _, turn, _, _ in engine.reports}
    assert turns == {1}
    seconds = [s for _, _, s, _ in engine.reports]
    assert seconds == sorted(seconds), engine.reports
    # The first piece has its own mark: its echo says when playback started.
    assert seconds[0] == pytest.approx(0.02), engine.reports
    assert engine.reports[-1][2:] == (pytest.approx(REPLY_S), True), engine.reports
    assert [done for *_, done in engine.reports].count(True) == 1, engine.reports
    assert await eventually(lambda: engine.ended)  # the hang-up reached the engine


async def test_clear_stops_playback_and_heard_is_what_played_before_it(
    serve: Callable[..., str],
) -> None:
    app, engines = scripted_app()
    twilio = TwilioSimulator(serve(app), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        await call.press("1")
        await call.until_playing(timeout_s=20)
        await call.wait(0.8)
        await call.press("2")
        await call.wait(0.8)
    engine = engines[0]
    assert call.problems == []
    assert len(call.clears) == 1
    played = call.played_seconds
    assert 0.5 < played < 1.9  # cut before the 2 s reply ended
    final = [r for r in engine.reports if r[3]]
    assert len(final) == 1
    heard = final[0][2]
    # Heard = the last mark echoed before `clear`: never more than played, at most a mark
    # interval (100 ms) and a round trip less (test_twilio_marks checks it exactly).
    assert heard <= played + 1e-9
    assert heard >= played - 0.5
    # Twilio sent the dropped marks back at once; they did not count.
    dropped = [name for _, name, was_played in call.echoed_marks if not was_played]
    assert dropped
    assert all(r[2] <= heard for r in engine.reports)
    assert call.clears[0] < call.played[-1].end + 0.05  # nothing played after the clear


async def test_the_callers_audio_reaches_the_engine_at_its_rate(
    serve: Callable[..., str],
) -> None:
    question = speech_pcm16("Is it raining?") if HAS_ESPEAK else tone_pcm16(1.0, 330.0)
    for rate in (8000, 16000):
        app, engines = scripted_app(input_rate=rate)
        twilio = TwilioSimulator(serve(app), auth_token=AUTH_TOKEN)
        async with twilio.call() as call:
            start, end = await call.say(question, sample_rate=24_000)
        engine = engines[0]
        # The hang-up (after the last frame) reached the engine.
        assert await eventually(lambda e=engine: e.ended)
        # Spoken in real time, and every 20 ms frame sent arrived, at the engine's rate.
        assert end - start == pytest.approx(len(question) / 2 / 24_000, abs=0.3)
        assert len(engine.caller_audio) / 2 / rate == pytest.approx(
            call.sent_frames * 0.02, abs=0.002
        )
        assert max(abs(s) for s in memoryview(bytes(engine.caller_audio)).cast("h")) > 3000


async def test_keys_reach_the_engine_as_one_entry_per_hash_or_pause(
    serve: Callable[..., str],
) -> None:
    app, engines = scripted_app(dtmf_pause_s=0.6)
    twilio = TwilioSimulator(serve(app), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        for key in "3456#":
            await call.press(key)
        await call.wait(0.1)
        for key in "*9":
            await call.press(key)
        # `#` ended the first entry at once: it is in alone, long before the pause (0.6 s
        # after "9") could end "*9" too. (Waited for, not slept on: the app runs in another
        # thread, late on a loaded machine; without `#` ending it, it would be "3456#*9".)
        assert await eventually(lambda: bool(engines[0].entries), within_s=10)
        assert engines[0].entries == ["3456#"]
        # The pause ends the next one while the call goes on (not the hang-up).
        assert await eventually(lambda: len(engines[0].entries) == 2, within_s=10)
        assert engines[0].entries == ["3456#", "*9"]
    assert engines[0].transport.call.dtmf == "3456#*9"


class Silent:
    """An engine stand-in for the narrow tests below: records what the transport calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def audio(self, pcm: bytes) -> None:
        self.calls.append("audio")

    def played(self, turn: int, seconds: float, *, done: bool = False) -> None:
        self.calls.append("played")

    async def dtmf(self, digits: str) -> None:
        self.calls.append("dtmf")

    async def end_of_input(self) -> None:
        self.calls.append("end")

    async def push_to_talk(self, pressed: bool) -> None: ...

    async def user_text(self, text: str) -> None: ...

    async def wait_idle(self) -> None: ...


def lines_of(*messages: str) -> Callable[[], Any]:
    """A `receive` that gives `messages`, then waits forever (a peer that went quiet)."""
    pending = list(messages)

    async def receive() -> str | None:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        return None

    return receive


async def send_nowhere(text: str) -> None: ...


async def test_a_stream_that_never_starts_is_ended() -> None:
    engine = Silent()
    transport = TwilioTransport(
        send_nowhere,
        lines_of('{"event": "connected", "protocol": "Call", "version": "1.0.0"}'),
        start_timeout_s=0.2,
    )
    await asyncio.wait_for(transport.run(engine), 5)
    assert engine.calls == ["end"]


async def test_a_stream_that_goes_silent_is_ended() -> None:
    engine = Silent()
    start = (
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": '
        '{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}'
    )
    media = '{"event": "media", "media": {"payload": "' + "/" * 216 + '"}}'
    transport = TwilioTransport(send_nowhere, lines_of(start, media), idle_timeout_s=0.2)
    await asyncio.wait_for(transport.run(engine), 5)
    assert engine.calls == ["audio", "end"]
    assert transport.call.call_sid == "CA1"


async def test_a_call_ends_at_max_call_s() -> None:
    engine = Silent()
    start = (
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": '
        '{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}'
    )
    media = '{"event": "media", "media": {"payload": "' + "/" * 216 + '"}}'

    started: list[bool] = []

    async def receive() -> str | None:  # a live line: a frame every 20 ms, forever
        if not started:
            started.append(True)
            return start
        await asyncio.sleep(0.02)
        return media

    transport = TwilioTransport(send_nowhere, receive, max_call_s=0.3)
    began = time.monotonic()
    await asyncio.wait_for(transport.run(engine), 10)  # a live line never ends by itself
    assert time.monotonic() - began >= 0.3  # not before max_call_s
    assert engine.calls[-1] == "end"
    assert engine.calls.count("audio") >= 3


async def test_a_line_that_stops_reading_ends_the_call() -> None:
    """A send Twilio never takes gives up after `send_timeout_s`: the reply stops, every
    later send returns at once, and the stream ends instead of holding the turn."""
    engine = Silent()
    start = (
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "mediaFormat": '
        '{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}'
    )
    media = '{"event": "media", "media": {"payload": "' + "/" * 216 + '"}}'
    sends: list[str] = []

    async def send_stuck(text: str) -> None:
        sends.append(text)
        await asyncio.Event().wait()  # the peer's buffer is full and stays full

    asked: list[bool] = []
    started = asyncio.Event()  # the start message was handled: the next one is asked for

    async def receive() -> str | None:  # a live line: a frame every 20 ms, forever
        if not asked:
            asked.append(True)
            return start
        started.set()
        await asyncio.sleep(0.02)
        return media

    transport = TwilioTransport(send_stuck, receive, send_timeout_s=0.2)
    running = asyncio.create_task(transport.run(engine))
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(transport.play(1, REPLY), 5)
    await asyncio.wait_for(transport.end_reply(1), 5)
    await asyncio.wait_for(running, 5)
    assert len(sends) == 1  # nothing more was tried once the first send timed out
    assert engine.calls[-1] == "end"


@pytest.mark.parametrize(
    "message",
    [
        '{"event": "start", "start": {"streamSid": "MZ1", "mediaFormat": '
        '{"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}}}',
        '{"event": "media", "pad": "' + "x" * 20_000 + '"}',
        '{"event": "start", "start": "MZ1"}',
    ],
    ids=["other-format", "oversized", "start-not-an-object"],
)
async def test_a_peer_breaking_the_protocol_ends_the_call(message: str) -> None:
    engine = Silent()
    transport = TwilioTransport(send_nowhere, lines_of(message))
    await asyncio.wait_for(transport.run(engine), 5)
    assert engine.calls == ["end"]


async def test_misshaped_messages_after_start_are_ignored() -> None:
    engine = Silent()
    start = (
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "customParameters": '
        '["From"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}'
    )
    misshaped = [
        '{"event": "media", "media": "' + "/" * 216 + '"}',
        '{"event": "media", "media": {"payload": 7}}',
        '{"event": "mark", "mark": ["1.1"]}',
        '{"event": "dtmf", "dtmf": "1"}',
    ]
    media = '{"event": "media", "media": {"payload": "' + "/" * 216 + '"}}'
    transport = TwilioTransport(
        send_nowhere, lines_of(start, *misshaped, media), idle_timeout_s=0.2
    )
    await asyncio.wait_for(transport.run(engine), 5)
    assert engine.calls == ["audio", "end"]
    assert transport.call.call_sid == "CA1"
    assert transport.call.custom_parameters == {}
    assert transport.call.dtmf == ""


def test_bad_options_are_refused() -> None:
    async def send(text: str) -> None: ...

    async def receive() -> str | None:
        return None

    with pytest.raises(ValueError, match="mark_every"):
        TwilioTransport(send, receive, mark_every=0)
    with pytest.raises(ValueError, match="dtmf_pause_s"):
        TwilioTransport(send, receive, dtmf_pause_s=-1)
    with pytest.raises(ValueError, match="max_call_s"):
        TwilioTransport(send, receive, max_call_s=0)
    with pytest.raises(ValueError, match="start_timeout_s"):
        TwilioTransport(send, receive, start_timeout_s=0)
    with pytest.raises(ValueError, match="idle_timeout_s"):
        TwilioTransport(send, receive, idle_timeout_s=-1)
    with pytest.raises(ValueError, match="send_timeout_s"):
        TwilioTransport(send, receive, send_timeout_s=0)
