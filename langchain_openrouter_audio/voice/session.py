"""VoiceSession: listen -> think -> speak around any runnable that takes messages."""

from __future__ import annotations

import asyncio
import inspect
import logging
import statistics
import time
from collections import deque
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.audio import audio_block_from_bytes, pcm16_to_wav
from langchain_openrouter_audio.cost import OpenRouterCallbackHandler, get_openrouter_callback
from langchain_openrouter_audio.voice._pcm import seconds
from langchain_openrouter_audio.voice._turn import InFlight, SpeechCollector
from langchain_openrouter_audio.voice.endpointer import Endpointer
from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.sinks import AudioSink, CallbackSink, WavFileSink
from langchain_openrouter_audio.voice.sources import AudioSource, PcmSource, WavFileSource

__all__ = ["VoiceSession", "VoiceSummary", "VoiceTurn"]

logger = logging.getLogger(__name__)


@dataclass
class VoiceTurn:
    """One exchange: what the user said, what the agent said and the user heard, how fast.

    `latency_s` is end of user speech -> first reply audio out: `endpoint_delay_s` (the
    silence the endpointer waits for) plus `response_s` (utterance handed to the agent ->
    its first audio ready to play; the next frame plays it). `heard_s` is how much reply
    audio was played; `cancelled` says a barge-in cut the agent's call mid-stream (such a
    call reports no cost: OpenRouter sends `usage.cost` at the end of a stream).
    """

    index: int
    user_audio_s: float
    reply: AIMessage | None
    transcript: str
    interrupted: bool
    heard_s: float
    endpoint_delay_s: float
    response_s: float | None
    cost: float
    cancelled: bool = False
    error: str | None = None

    @property
    def latency_s(self) -> float | None:
        if self.response_s is None:
            return None
        return self.endpoint_delay_s + self.response_s


@dataclass
class VoiceSummary:
    """All turns of a session and what they cost (OpenRouter's `usage.cost`)."""

    turns: list[VoiceTurn]
    usage: OpenRouterCallbackHandler
    messages: list[BaseMessage] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return self.usage.total_cost

    @property
    def latencies_s(self) -> list[float]:
        return [t.latency_s for t in self.turns if t.latency_s is not None]

    def __str__(self) -> str:
        lines = []
        for t in self.turns:
            latency = f"{t.latency_s:.3f} s" if t.latency_s is not None else "-"
            cut = f" (interrupted after {t.heard_s:.2f} s)" if t.interrupted else ""
            lines.append(f"turn {t.index}: latency {latency}{cut}: {t.transcript!r}")
        if self.latencies_s:
            lines.append(
                f"latency: median {statistics.median(self.latencies_s):.3f} s, "
                f"max {max(self.latencies_s):.3f} s"
            )
        lines.append(
            f"cost: ${self.total_cost:.6f} over {self.usage.successful_requests} requests "
            f"({self.usage.prompt_audio_tokens} audio tokens in, "
            f"{self.usage.completion_audio_tokens} out)"
        )
        return "\n".join(lines)


@dataclass
class _Utterance:
    pcm: bytes
    endpoint_delay_s: float
    ended_at: float


class VoiceSession:
    """Runs listen -> think -> speak for an agent until the source ends.

    `agent` is any runnable that takes messages: a chat model (input: the message list), a
    `create_agent` graph or any LangGraph graph with a `messages` key (input:
    `{"messages": [...]}`; set `input_key=None` or a name to override). Each utterance the
    `Endpointer` finds becomes a `HumanMessage` holding its audio; the agent's speech goes to
    the sink frame by frame as it streams.

    Playback is paced by the source: one `frame_ms` frame out per frame in, the way a
    phone line or a sound card runs. With a real-time source (microphone, phone line)
    speech plays as it streams, and a barge-in cancels the call mid-stream. With a source
    that is not real time (a file read as fast as it goes) the session holds the source
    until the agent's call is done: its work takes no conversation time, and a run is the
    same every time (tests, evaluations).

    Barge-in (`barge_in=True`): once the user speaks while a reply is under way, the sink
    gets no further frame, is cleared, the agent's call is cancelled, and the conversation
    keeps only what was heard (`truncate_to_heard`).

    ```python
    session = VoiceSession(agent, source=WavFileSource("questions.wav"),
                           sink=WavFileSink("reply_{turn}.wav"))
    summary = await session.run()
    print(summary)  # per-turn latency, heard transcripts, cost
    ```
    Each finished turn goes to `on_turn(turn)` and to every handler in `callbacks` that has
    an `on_voice_turn(turn)` method (sync or async).
    """

    def __init__(
        self,
        agent: Runnable[Any, Any],
        *,
        source: AudioSource | AsyncIterable[bytes] | str | Path,
        sink: AudioSink | Callable[[bytes], Any] | str | Path,
        messages: Sequence[BaseMessage] = (),
        endpointer: Endpointer | None = None,
        barge_in: bool = True,
        frame_ms: int = 20,
        input_key: str | None = "auto",
        config: RunnableConfig | None = None,
        callbacks: Sequence[BaseCallbackHandler] = (),
        on_turn: Callable[[VoiceTurn], Any] | None = None,
        source_rate: int = 16000,
    ) -> None:
        self.agent = agent
        self.source = _as_source(source, source_rate)
        self.sink = _as_sink(sink)
        self.messages: list[BaseMessage] = list(messages)
        self.endpointer = endpointer or Endpointer(sample_rate=self.source.sample_rate)
        if self.endpointer.sample_rate != self.source.sample_rate:
            raise ValueError("the endpointer's sample_rate must be the source's")
        self.barge_in = barge_in
        self.frame_ms = frame_ms
        if input_key == "auto":
            # A chat model, also one with tools bound (a RunnableBinding), takes the list.
            model = getattr(agent, "bound", agent)
            input_key = None if isinstance(model, BaseLanguageModel) else "messages"
        self.input_key = input_key
        self.config: RunnableConfig = dict(config or {})  # type: ignore[assignment]
        self.callbacks = list(callbacks)
        self.on_turn = on_turn
        self.turns: list[VoiceTurn] = []
        self._pending: deque[_Utterance] = deque()
        self._reply: InFlight | None = None
        self._utterance: _Utterance | None = None
        self._usage: OpenRouterCallbackHandler | None = None
        self._cost_at_start = 0.0

    async def run(self) -> VoiceSummary:
        """Listen to the source until it ends, answering each utterance; returns a summary."""
        framer = FrameBuffer(self.source.sample_rate, self.frame_ms)
        silence = bytes(framer.frame_bytes)
        with get_openrouter_callback() as usage:
            self._usage = usage
            pcm_in = aiter(self.source)
            try:
                async for pcm in pcm_in:
                    for frame in framer.push(pcm):
                        await self._tick(frame)
                if tail := framer.flush():
                    await self._tick(tail)
                self._heard_utterances(self.endpointer.flush())
                # Let the last reply play out: silence in, speech out.
                while self._reply is not None or self._pending:
                    await self._tick(silence, listen=False)
                    if self.source.realtime:
                        await asyncio.sleep(self.frame_ms / 1000)
            finally:
                # A failed run must not leave the microphone capturing into a queue.
                if (close := getattr(pcm_in, "aclose", None)) is not None:
                    await close()
                if self._reply is not None and self._reply.task is not None:
                    self._reply.task.cancel()
                    await asyncio.gather(self._reply.task, return_exceptions=True)
                await self.sink.end_reply()
        return VoiceSummary(self.turns, usage, list(self.messages))

    # -- the clock: one frame in, one frame out ------------------------------------

    async def _tick(self, frame: bytes, *, listen: bool = True) -> None:
        if (reply := self._reply) is not None:
            await self._play_one(reply)
        if listen:
            self._heard_utterances(self.endpointer.push(frame))
            if self.barge_in and self._reply is not None and self.endpointer.speaking:
                await self._interrupt(self._reply)
        if self._reply is None and self._pending:
            self._start(self._pending.popleft())

    def _heard_utterances(self, utterances: list[bytes]) -> None:
        for pcm in utterances:
            delay = self.endpointer.position_s - self.endpointer.last_speech_end_s
            self._pending.append(_Utterance(pcm, max(0.0, delay), time.perf_counter()))

    async def _play_one(self, reply: InFlight) -> None:
        if not reply.done and not self.source.realtime:
            await reply.wait_done()  # hold the clock: the agent's work takes no source time
        frame = reply.next_frame()
        if frame is not None:
            await self.sink.write(frame)
        elif reply.done:
            await self._finish(reply)

    # -- turns ---------------------------------------------------------------------

    def _start(self, utterance: _Utterance) -> None:
        wav = pcm16_to_wav(utterance.pcm, sample_rate=self.source.sample_rate)
        block: dict[str, Any] = dict(audio_block_from_bytes(wav))
        self.messages.append(HumanMessage(content=[block]))
        reply = InFlight(len(self.turns) + 1, self.sink.sample_rate, self.frame_ms)
        callbacks: list[Any] = [SpeechCollector(reply), *self.callbacks]
        given = self.config.get("callbacks")
        if isinstance(given, list):
            callbacks += given
        elif given is not None:
            callbacks.append(given)
        config: RunnableConfig = {**self.config, "callbacks": callbacks}
        agent_input: Any = (
            list(self.messages) if self.input_key is None else {self.input_key: self.messages}
        )
        reply.task = asyncio.create_task(self.agent.ainvoke(agent_input, config))
        self._reply, self._utterance = reply, utterance
        self._cost_at_start = self._usage.total_cost if self._usage is not None else 0.0

    async def _finish(self, reply: InFlight) -> None:
        assert reply.task is not None
        error: str | None = None
        if reply.task.cancelled():
            error = "cancelled"
        elif (exc := reply.task.exception()) is not None:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("voice turn %d failed: %s", reply.index, error)
        else:
            result = reply.task.result()
            if self.input_key is not None and isinstance(result, dict):
                self.messages = list(result.get(self.input_key, self.messages))
            elif isinstance(result, BaseMessage):
                self.messages.append(result)
        last = self.messages[-1] if self.messages else None
        spoken = last if isinstance(last, AIMessage) and error is None else None
        await self._end_turn(reply, spoken, interrupted=False, cancelled=False, error=error)

    async def _interrupt(self, reply: InFlight) -> None:
        assert reply.task is not None
        # Nothing more reaches the sink: this frame was the last one.
        reply.frames.clear()
        await self.sink.clear()
        cancelled = reply.task.cancel()
        await asyncio.gather(reply.task, return_exceptions=True)
        kept = reply.heard()
        self.messages.extend(kept)
        last = kept[-1] if kept and isinstance(kept[-1], AIMessage) else None
        await self._end_turn(reply, last, interrupted=True, cancelled=cancelled, error=None)

    async def _end_turn(
        self,
        reply: InFlight,
        spoken: AIMessage | None,
        *,
        interrupted: bool,
        cancelled: bool,
        error: str | None,
    ) -> None:
        await self.sink.end_reply()
        utterance = self._utterance
        assert utterance is not None
        response_s = None
        if reply.first_audio_at is not None:
            response_s = reply.first_audio_at - utterance.ended_at
        cost = (self._usage.total_cost if self._usage is not None else 0.0) - self._cost_at_start
        turn = VoiceTurn(
            index=reply.index,
            user_audio_s=seconds(utterance.pcm, self.source.sample_rate),
            reply=spoken,
            transcript=spoken.text if spoken is not None else "",
            interrupted=interrupted,
            heard_s=reply.frames_played * self.frame_ms / 1000,
            endpoint_delay_s=utterance.endpoint_delay_s,
            response_s=response_s,
            cost=cost,
            cancelled=cancelled,
            error=error,
        )
        self.turns.append(turn)
        self._reply = self._utterance = None
        for hook in [self.on_turn, *(getattr(h, "on_voice_turn", None) for h in self.callbacks)]:
            if hook is not None:
                result = hook(turn)
                if inspect.isawaitable(result):
                    await result


def _as_source(source: AudioSource | AsyncIterable[bytes] | str | Path, rate: int) -> AudioSource:
    if isinstance(source, (str, Path)):
        return WavFileSource(source)
    if isinstance(source, AudioSource):
        return source
    return PcmSource(source, sample_rate=rate)


def _as_sink(sink: AudioSink | Callable[[bytes], Any] | str | Path) -> AudioSink:
    if isinstance(sink, (str, Path)):
        return WavFileSink(sink)
    if isinstance(sink, AudioSink):
        return sink
    return CallbackSink(sink)
