"""One reply in flight: the agent's call, its speech as sent out, and what the user heard."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH
from langchain_openrouter_audio.voice.resample import Resampler, resample_pcm16
from langchain_openrouter_audio.voice.truncate import cut_words, truncate_to_heard
from langchain_openrouter_audio.voice.turn import VoiceTurn

__all__ = ["Reply"]

_MAX_WPS = 3.5  # fast conversational speech, ~210 words per minute


@dataclass
class _Run:
    """One model call's speech: as received, and where it sits in the reply sent out."""

    text: str = ""
    # A bytearray grows in place: `bytes +=` would copy the whole reply on every piece.
    pcm: bytearray = field(default_factory=bytearray)
    rate: int = 24000  # until its speech says otherwise: gpt-audio speaks PCM16 at 24 kHz
    out_start: int = 0  # byte offset of its first audio in the reply's audio
    out_bytes: int = 0  # bytes of it in the reply's audio (at the output rate)
    ended: bool = False
    message: AIMessage | None = None
    resampler: Resampler | None = None

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
class Reply:
    """A turn from the moment the agent is called until its reply has played or is cut."""

    index: int
    base: list[BaseMessage]  # the conversation the agent was given (ends with the question)
    output_rate: int
    started_at: float  # perf_counter when the utterance was handed over
    utterance_sample: int  # where the utterance ended on the input timeline
    cost_at_start: float
    user_audio_s: float = 0.0
    endpoint_delay_s: float = 0.0
    task: asyncio.Task[Any] | None = None
    runs: dict[UUID, _Run] = field(default_factory=dict)
    # Finished messages (AI replies, tool results) and runs still speaking, in order.
    items: list[BaseMessage | UUID] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)  # all its speech, output rate
    sent_bytes: int = 0  # of which handed to the transport
    first_audio_at: float | None = None
    first_played_at: float | None = None
    play_start_sample: int | None = None
    played_s: float = 0.0
    play_offset_s: float = 0.0  # where a re-send after a pause started in the reply
    tools_called: bool = False
    generated: bool = False  # the agent's call is over
    playback_over: bool = False  # the channel played it out, or stopped it
    interrupted: bool = False
    cancelled: bool = False
    finishing: bool = False
    recorded: bool = False
    error: str | None = None
    user_text: str | None = None  # what the user said, in words, once known
    transcribing: asyncio.Task[None] | None = None  # a transcript beside the agent's call
    stopped: asyncio.Future[float] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    finished: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def under_way(self) -> bool:
        """Being generated or played, and no barge-in has cut it yet."""
        return not self.interrupted and not (self.generated and self.playback_over)

    @property
    def first_audio_s(self) -> float | None:
        if self.first_audio_at is None:
            return None
        return self.first_audio_at - self.started_at

    @property
    def first_played_s(self) -> float | None:
        if self.first_played_at is None:
            return None
        return self.first_played_at - self.started_at

    # -- filled by the agent's callbacks ---------------------------------------------

    def run(self, run_id: UUID) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run()
            self.items.append(run_id)
        return run

    def add_audio(self, run_id: UUID, pcm: bytes, rate: int | None) -> bytes:
        """Keep a piece of speech; returns it at the output rate, to be sent out.

        `rate` is None for a piece that does not say (a stream names it on its first
        audio only): it is at the rate the call's speech is at so far.
        """
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        run = self.run(run_id)
        out = b""
        if rate is None:
            rate = run.rate
        elif run.resampler is not None and rate != run.rate:
            # The speech changes rate: what the old filter holds still goes out, and what
            # was kept is brought to the new rate, so the call's audio stays one clip.
            out = run.resampler.flush()
            run.pcm = bytearray(resample_pcm16(bytes(run.pcm), run.rate, rate))
            run.resampler = None
        run.pcm += pcm
        run.rate = rate
        if run.resampler is None:
            run.resampler = Resampler(rate, self.output_rate)
        return self._sent(run, out + run.resampler.push(pcm))

    def end_run(self, run_id: UUID, message: BaseMessage | None) -> bytes:
        """A model call ended; returns the last of its speech, if any, to be sent out."""
        run = self.runs.get(run_id)
        tail = b""
        if run is not None and not run.ended:
            run.ended = True
            if run.resampler is not None:
                tail = self._sent(run, run.resampler.flush())
        if isinstance(message, AIMessage):
            if run is not None:
                run.message = message
            else:
                self.items.append(message)
        return tail

    def _sent(self, run: _Run, pcm: bytes) -> bytes:
        """Keep `pcm` (output rate) as the reply's next audio; returns it if it goes out.

        After a barge-in nothing more goes out, but it is still kept: the reply can be
        sent again from where the user stopped hearing it.
        """
        if not pcm:
            return b""
        if not run.out_bytes:
            run.out_start = len(self.audio)
        self.audio += pcm
        run.out_bytes += len(pcm)
        if self.interrupted:
            return b""
        self.sent_bytes += len(pcm)
        return pcm

    # -- barge-in -----------------------------------------------------------------

    def voice_turn(self, spoken: AIMessage | None, cost: float) -> VoiceTurn:
        """The finished turn as users see it; `spoken` is the reply the user heard."""
        return VoiceTurn(
            index=self.index,
            user_audio_s=self.user_audio_s,
            reply=spoken,
            transcript=spoken.text if spoken is not None else "",
            interrupted=self.interrupted,
            heard_s=self.played_s,
            endpoint_delay_s=self.endpoint_delay_s,
            response_s=self.first_audio_s,
            cost=cost,
            cancelled=self.cancelled,
            error=self.error,
            first_played_s=self.first_played_s,
            user_text=self.user_text,
        )

    def heard(self, heard_s: float) -> list[BaseMessage]:
        """What this turn added to the conversation, as far as the user heard it.

        `heard_s` is the position reached in the reply as sent out. Messages before the
        reply being played stay whole; that reply (the last that spoke, if the user heard
        all of it) is cut with `truncate_to_heard`, which marks it interrupted; anything
        after it was never heard and is dropped. AI tool calls whose results did not arrive
        are dropped too (the model would reject them).
        """
        heard_bytes = round(heard_s * self.output_rate) * SAMPLE_WIDTH
        spoken = [i for i in self.items if isinstance(i, UUID) and self.runs[i].out_bytes]
        out: list[BaseMessage] = []
        for item in self.items:
            if not isinstance(item, UUID):
                out.append(item)
                continue
            run = self.runs[item]
            message = run.message or run.as_message()
            played_out = run.out_bytes and heard_bytes >= run.out_start + run.out_bytes
            if played_out and run.ended and item != spoken[-1]:
                out.append(message)  # played to the end, and more speech came after it
                continue
            if run.out_bytes or not run.ended:  # cut while playing, or before it could
                into = max(0, heard_bytes - run.out_start) if run.out_bytes else 0
                cut = truncate_to_heard(message, into / (SAMPLE_WIDTH * self.output_rate))
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
