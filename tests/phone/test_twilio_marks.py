"""What `TwilioTransport` reports as heard, against an in-process model of Twilio's buffer,
for any mix of reply pieces, playback progress, barge-in and end (hypothesis)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_openrouter_audio.voice.transports.twilio import TwilioTransport

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
RATE = 8000
START = json.dumps(
    {
        "event": "start",
        "start": {
            "streamSid": "MZ1",
            "callSid": "CA1",
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
        },
    }
)


class TwilioBuffer:
    """Twilio's side, in samples: audio queued in order, marks echoed once played past."""

    def __init__(self) -> None:
        self.queue: list[Any] = []  # int (samples of audio) or str (a mark name)
        self.played = 0
        self.echoes: list[str] = []
        self.cleared_at: int | None = None

    def take(self, text: str) -> None:
        message = json.loads(text)
        assert message["streamSid"] == "MZ1"
        if message["event"] == "media":
            samples = len(base64.b64decode(message["media"]["payload"]))
            assert 0 < samples <= 160  # 20 ms pieces at most
            self.queue.append(samples)
        elif message["event"] == "mark":
            self.queue.append(message["mark"]["name"])
        elif message["event"] == "clear":
            self.cleared_at = self.played
            self.echoes += [item for item in self.queue if isinstance(item, str)]
            self.queue.clear()

    def play(self, samples: int) -> None:
        while self.queue:
            head = self.queue[0]
            if isinstance(head, str):
                self.echoes.append(self.queue.pop(0))
                continue
            if samples == 0:
                return
            step = min(head, samples)
            self.played += step
            samples -= step
            if step == head:
                self.queue.pop(0)
            else:
                self.queue[0] = head - step


class Engine:
    """Records the played reports; the rest of the engine's side is not used here."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, float, bool]] = []

    def played(self, turn: int, seconds: float, *, done: bool = False) -> None:
        self.reports.append((turn, seconds, done))

    async def audio(self, pcm: bytes) -> None: ...

    async def dtmf(self, digits: str) -> None: ...

    async def end_of_input(self) -> None: ...


class Line:
    """The socket from Twilio to the app: `deliver` returns once the app has read it all."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._reading = False

    async def receive(self) -> str | None:
        if self._reading:
            self.queue.task_done()  # the transport is back for more: the last one is handled
        self._reading = True
        return await self.queue.get()

    async def deliver(self, *messages: str) -> None:
        for message in messages:
            self.queue.put_nowait(message)
        await self.queue.join()


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": name}})


steps = st.lists(
    st.one_of(
        st.tuples(st.just("play"), st.integers(1, 3000)),  # reply audio, in samples
        st.tuples(st.just("advance"), st.integers(0, 4000)),  # Twilio plays this much
        st.tuples(st.just("echo"), st.just(0)),  # pending echoes reach the app
    ),
    max_size=25,
)


@PROPERTY
@given(steps=steps, finish=st.sampled_from(["clear", "end", "none"]), mark_every=st.integers(1, 8))
def test_heard_is_never_more_than_played_and_one_done_per_reply(
    steps: list[tuple[str, int]], finish: str, mark_every: int
) -> None:
    async def scenario() -> None:
        twilio = TwilioBuffer()
        engine = Engine()
        line = Line()

        async def send(text: str) -> None:
            twilio.take(text)

        transport = TwilioTransport(send, line.receive, mark_every=mark_every)
        running = asyncio.create_task(transport.run(engine))
        await line.deliver(START)
        delivered = 0

        async def echoes() -> None:  # the echoes so far reach the app, in order
            nonlocal delivered
            await line.deliver(*(mark(name) for name in twilio.echoes[delivered:]))
            delivered = len(twilio.echoes)

        sent = 0
        for kind, amount in steps:
            if kind == "play":
                await transport.play(1, b"\x01\x02" * amount)
                sent += amount
            elif kind == "advance":
                twilio.play(amount)
            else:
                await echoes()
        played_before_finish = twilio.played
        if finish == "clear":
            await transport.clear(1)
            await echoes()  # the marks a clear dropped come back, unplayed
        elif finish == "end":
            await transport.end_reply(1)
            twilio.play(10**9)
            await echoes()
        else:
            await echoes()
        line.queue.put_nowait(None)  # hang up
        await asyncio.wait_for(running, 5)

        seconds = [s for _, s, _ in engine.reports]
        assert seconds == sorted(seconds)
        done = [s for _, s, d in engine.reports if d]
        if finish == "none":
            assert done == []
        else:
            assert len(done) == 1  # the engine hears once that playback is over
        heard = seconds[-1] if seconds else 0.0
        assert heard * RATE <= twilio.played + 1e-6  # never more than Twilio played
        if finish == "clear":
            assert heard * RATE <= played_before_finish + 1e-6
        elif finish == "end":
            assert round(heard * RATE) == sent  # played to the end: all of it

    asyncio.run(scenario())
