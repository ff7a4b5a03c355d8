"""One turn of a voice session in flight: the agent's call, its audio, what was played."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult

from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler
from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.resample import Resampler
from langchain_openrouter_audio.voice.truncate import cut_words, truncate_to_heard

__all__ = ["InFlight", "SpeechCollector"]

_MAX_WPS = 3.5  # fast conversational speech, ~210 words per minute


@dataclass
class _Run:
    """One model call's speech: received, queued for playback, played."""

    text: str = ""
    # A bytearray grows in place: `bytes +=` would copy the whole reply on every piece.
    pcm: bytearray = field(default_factory=bytearray)
    rate: int = 24000
    queued: int = 0
    played: int = 0
    ended: bool = False
    message: AIMessage | None = None
    resampler: Resampler | None = None
    framer: FrameBuffer | None = None

    def as_message(self) -> AIMessage:
        """The reply so far, shaped like summed stream chunks (text + raw PCM).

        Cut off mid-stream, the transcript usually runs ahead of the audio, so words past
        a fast speaking rate over the audio received are left out: they were not spoken.
        """
        text = self.text
        if not self.ended:
            text = cut_words(text, math.floor(len(self.pcm) / (2 * self.rate) * _MAX_WPS))
        content: list[str | dict[str, Any]] = [{"type": "text", "text": text}]
        content.append(
            {
                "type": "audio",
                "base64": base64.b64encode(self.pcm).decode("ascii"),
                "mime_type": f"audio/pcm;rate={self.rate}",
            }
        )
        return AIMessage(content=content)


@dataclass
class InFlight:
    """A turn from the moment the agent is called until its reply has played or is cut."""

    index: int
    sink_rate: int
    frame_ms: int
    started_at: float = field(default_factory=time.perf_counter)
    task: asyncio.Task[Any] | None = None
    frames: deque[tuple[UUID, bytes]] = field(default_factory=deque)
    audio_ready: asyncio.Event = field(default_factory=asyncio.Event)
    runs: dict[UUID, _Run] = field(default_factory=dict)
    # Finished messages (AI replies, tool results) and runs still speaking, in order.
    items: list[BaseMessage | UUID] = field(default_factory=list)
    first_audio_at: float | None = None
    frames_played: int = 0

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    async def wait_done(self) -> None:
        """Until the agent's call is over (its reply is complete)."""
        assert self.task is not None
        await asyncio.wait({self.task})

    def next_frame(self) -> bytes | None:
        if not self.frames:
            return None
        run_id, frame = self.frames.popleft()
        self.runs[run_id].played += 1
        self.frames_played += 1
        return frame

    # -- filled by SpeechCollector ------------------------------------------------

    def run(self, run_id: UUID) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run()
            self.items.append(run_id)
        return run

    def add_audio(self, run_id: UUID, pcm: bytes, rate: int) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        run = self.run(run_id)
        run.pcm += pcm
        run.rate = rate
        if run.resampler is None:
            run.resampler = Resampler(rate, self.sink_rate)
            run.framer = FrameBuffer(self.sink_rate, self.frame_ms)
        assert run.framer is not None
        self._queue(run_id, run.framer.push(run.resampler.push(pcm)))

    def end_run(self, run_id: UUID, message: BaseMessage | None) -> None:
        run = self.runs.get(run_id)
        if run is not None and not run.ended:
            run.ended = True
            if run.resampler is not None and run.framer is not None:
                frames = run.framer.push(run.resampler.flush())
                tail = run.framer.flush()
                self._queue(run_id, frames + ([tail] if tail else []))
        if isinstance(message, AIMessage):
            if run is not None:
                run.message = message
            else:
                self.items.append(message)
        self.audio_ready.set()

    def _queue(self, run_id: UUID, frames: list[bytes]) -> None:
        if frames:
            self.runs[run_id].queued += len(frames)
            self.frames.extend((run_id, f) for f in frames)
            self.audio_ready.set()

    # -- barge-in -----------------------------------------------------------------

    def heard(self) -> list[BaseMessage]:
        """What this turn added to the conversation, as far as the user heard it.

        Messages before the reply being played stay whole; that reply is cut with
        `truncate_to_heard`; anything after it was never heard and is dropped. AI tool
        calls whose results did not arrive are dropped too (the model would reject them).
        """
        frame_s = self.frame_ms / 1000
        out: list[BaseMessage] = []
        for item in self.items:
            if not isinstance(item, UUID):
                out.append(item)
                continue
            run = self.runs[item]
            message = run.message or run.as_message()
            if run.queued and run.ended and run.played == run.queued:
                out.append(message)  # played to the end
                continue
            if run.queued or not run.ended:  # cut while playing, or before it could
                cut = truncate_to_heard(message, run.played * frame_s)
                if cut.text:
                    out.append(cut)
                break
            out.append(message)  # spoke no audio (text, tool calls)
        return _drop_unanswered_tool_calls(out)


def _drop_unanswered_tool_calls(messages: list[BaseMessage]) -> list[BaseMessage]:
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            if all(call["id"] in answered for call in message.tool_calls):
                out.append(message)
            elif message.text:
                out.append(AIMessage(content=message.text, id=message.id))
        else:
            out.append(message)
    return out


class SpeechCollector(AsyncAudioCallbackHandler):
    """Feeds a turn's speech into its playback queue as the agent streams it."""

    def __init__(self, turn: InFlight) -> None:
        super().__init__()
        self.turn = turn

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        self.turn.add_audio(kwargs["run_id"], chunk, sample_rate)

    async def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        self.turn.run(kwargs["run_id"]).text += text

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        generations = response.generations[0] if response.generations else []
        message = getattr(generations[0], "message", None) if generations else None
        self.turn.end_run(run_id, message)
        await super().on_llm_end(response, run_id=run_id, **kwargs)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.turn.end_run(run_id, None)
        await super().on_llm_error(error, run_id=run_id, **kwargs)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(output, ToolMessage):
            self.turn.items.append(output)
