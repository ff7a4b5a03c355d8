"""Local devices and files: an `AudioSource` in, an `AudioSink` out, one frame out per frame in."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.resample import Resampler
from langchain_openrouter_audio.voice.sinks import AudioSink
from langchain_openrouter_audio.voice.sources import AudioSource
from langchain_openrouter_audio.voice.transport import EngineHandle, VoiceEvent

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice.echo import EchoCanceller

__all__ = ["LocalTransport"]


class LocalTransport:
    """A `VoiceTransport` over a source (microphone, WAV file, PCM stream) and a sink.

    Playback is paced by the source: one `frame_ms` frame goes to the sink for each frame
    that comes in, the way a sound card or a phone line runs, so what was heard is exact:
    the frames the sink was given. With a real-time source speech plays as it streams.
    With a source that is not real time (a file read as fast as it goes) the transport
    holds the source while the agent works (`engine.wait_idle()`), so the agent's work
    takes no conversation time and every run is the same. When the source ends the
    transport plays out the last reply (silence in, speech out) and returns.

    It can pause (`can_pause`): a paused reply keeps its place and plays on at `resume`.
    It can also be cleared and sent the rest of a reply again (`can_resend`), which plays
    as a fresh start of that turn.
    With an `echo_canceller` (an `EchoCanceller` at the source's rate) every frame the
    sink plays is its far-end reference and every source frame goes through it before
    the engine hears it; `warming_up` tells the engine the canceller is still learning.

    ```python
    from langchain_openrouter_audio.voice import TurnEngine, WavFileSink, WavFileSource
    from langchain_openrouter_audio.voice.transports import LocalTransport

    transport = LocalTransport(WavFileSource("question.wav"), WavFileSink("reply_{turn}.wav"))
    summary = await TurnEngine(agent, transport).run()
    ```
    """

    can_pause = True
    can_resend = True

    def __init__(
        self,
        source: AudioSource,
        sink: AudioSink,
        *,
        frame_ms: int = 20,
        echo_canceller: EchoCanceller | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.frame_ms = frame_ms
        self.input_rate = source.sample_rate
        self.output_rate = sink.sample_rate
        self.echo_canceller = echo_canceller
        if echo_canceller is not None and echo_canceller.sample_rate != self.input_rate:
            raise ValueError("the echo canceller's sample_rate must be the source's")
        self._far_end: Resampler | None = None
        if echo_canceller is not None and self.output_rate != self.input_rate:
            self._far_end = Resampler(self.output_rate, self.input_rate, low_latency=True)
        self._paused = False
        self._engine: EngineHandle | None = None
        self._out = FrameBuffer(self.output_rate, frame_ms)
        self._frames: deque[bytes] = deque()
        self._turn: int | None = None  # the reply being played
        self._played = 0  # its frames written
        self._ended = False  # all of it has been given to play()
        self._over = True  # its playback is over and reported

    async def run(self, engine: EngineHandle) -> None:
        """Feed the source to `engine` frame by frame, playing a frame per frame, to the end."""
        self._engine = engine
        framer = FrameBuffer(self.input_rate, self.frame_ms)
        silence = bytes(framer.frame_bytes)
        pcm_in = aiter(self.source)
        try:
            async for pcm in pcm_in:
                for frame in framer.push(pcm):
                    await self._tick(engine, frame)
            if tail := framer.flush():
                await self._tick(engine, tail)
            await engine.end_of_input()
            while engine.busy:  # let the last reply play out: silence in, speech out
                await self._tick(engine, silence)
                if self.source.realtime:
                    await asyncio.sleep(self.frame_ms / 1000)
        finally:
            # A failed run must not leave the microphone capturing into a queue.
            close = getattr(pcm_in, "aclose", None)
            if close is not None:
                await close()
            await self.sink.end_reply()

    @property
    def warming_up(self) -> bool:
        """The echo canceller is still learning the room (False without one)."""
        return self.echo_canceller is not None and self.echo_canceller.warming_up

    async def _tick(self, engine: EngineHandle, frame: bytes) -> None:
        if not self.source.realtime:
            await engine.wait_idle()  # hold the clock: the agent's work takes no source time
        turn = self._turn
        wrote = False
        played = b""
        if self._paused:
            pass  # the reply keeps its place
        elif self._frames:
            played = self._frames.popleft()
            await self.sink.write(played)
            self._played += 1
            wrote = True
        elif self._ended and not self._over and turn is not None:
            self._over = True
            await self.sink.end_reply()
            engine.played(turn, self._position(), done=True)
        if self.echo_canceller is not None:
            frame = self._cancel_echo(played, frame)
            if not frame:
                return
        await engine.audio(frame)
        # After the input frame: the frame played in the same slot of the timeline.
        if wrote and turn is not None and turn == self._turn and not self._over:
            engine.played(turn, self._position())

    def _cancel_echo(self, played: bytes, heard: bytes) -> bytes:
        """What the sink played is the reference; the microphone frame comes back cleaned."""
        assert self.echo_canceller is not None
        far = played
        if self._far_end is not None:
            far = self._far_end.push(played) if played else b""
        # The canceller pairs 10 ms of far end with 10 ms heard: keep the two in step.
        far = far[: len(heard)].ljust(len(heard), b"\x00")
        self.echo_canceller.far_end(far)
        return self.echo_canceller.process(heard)

    def _position(self) -> float:
        return self._played * self.frame_ms / 1000

    def _begin(self, turn: int) -> None:
        if turn != self._turn or self._over:  # a new reply, or the rest of a cleared one
            self._turn = turn
            self._frames.clear()
            self._out = FrameBuffer(self.output_rate, self.frame_ms)
            self._played = 0
            self._ended = False
            self._over = False
            self._paused = False

    async def play(self, turn: int, pcm: bytes) -> None:
        self._begin(turn)
        self._frames.extend(self._out.push(pcm))

    async def end_reply(self, turn: int) -> None:
        if turn == self._turn and self._over:
            return  # cleared, or played out already
        self._begin(turn)
        if tail := self._out.flush():
            self._frames.append(tail)
        self._ended = True

    async def pause(self, turn: int) -> None:
        """Hold turn `turn`'s reply where it is (the sink gets no frame meanwhile)."""
        if turn == self._turn and not self._over:
            self._paused = True

    async def resume(self, turn: int) -> None:
        """Play on from where turn `turn`'s reply paused."""
        if turn == self._turn:
            self._paused = False

    async def clear(self, turn: int) -> None:
        if turn != self._turn:
            self._begin(turn)
        self._frames.clear()
        self._out = FrameBuffer(self.output_rate, self.frame_ms)
        self._paused = False
        already_over, self._over = self._over, True
        if not already_over:
            await self.sink.clear()
            await self.sink.end_reply()
        if self._engine is not None:
            self._engine.played(turn, self._position(), done=True)

    async def send_event(self, event: VoiceEvent) -> None:
        return None
