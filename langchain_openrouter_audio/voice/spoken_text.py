"""Any chat model as a voice agent: hear through transcription, speak through TTS.

`TurnEngine(transcription=..., speech=...)` uses these pieces. The utterance is
transcribed and the agent gets a text `HumanMessage`; the agent's text reply is cut
into sentences while it still streams, and each sentence is spoken by the TTS model
as soon as it is complete, so the first audio plays before the reply is written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.messages import AIMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from langchain_openrouter_audio._driver import SpeechChunk
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, pcm16_to_wav, pcm_rate
from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler
from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.transcription import OpenRouterTranscription

__all__ = ["SentenceSplitter", "TextSpeaker", "as_speech", "as_transcription", "transcribe"]

T = TypeVar("T")

# A sentence ends at . ! ? (or their run, with closing quotes/brackets) before a space.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"')\]\u201d\u2019]*\s+")
# Past this many characters without a sentence end, a clause boundary will do.
_LONG = 220
_CLAUSE_END = re.compile(r"[,;:\u2014]\s+")


def as_transcription(value: str | Runnable[Any, str] | None) -> Runnable[Any, str] | None:
    """A transcription runnable from a model slug (`"openai/whisper-1"`) or an instance."""
    if isinstance(value, str):
        return OpenRouterTranscription(model_name=value)
    return value


def as_speech(value: str | OpenRouterSpeech | None) -> OpenRouterSpeech | None:
    """A speech model from a TTS slug or an instance (PCM: it is played as it streams)."""
    if isinstance(value, str):
        return OpenRouterSpeech(model_name=value)
    if value is not None and value.response_format != "pcm":
        raise ValueError("speech= must stream PCM to be played: use response_format='pcm'")
    return value


async def transcribe(transcription: Runnable[Any, str], pcm: bytes, sample_rate: int) -> str:
    """What the user said in `pcm` (PCM16 mono at `sample_rate`)."""
    wav = pcm16_to_wav(pcm, sample_rate=sample_rate)
    # Its own run (explicit callbacks): the agent's handlers must not hear it as a reply.
    return await transcription.ainvoke(wav, {"callbacks": [], "run_name": "transcription"})


class SentenceSplitter:
    """Text in as it streams; whole sentences out as soon as each one ends.

    >>> s = SentenceSplitter()
    >>> s.push("It is sunny. Take a"), s.push(" hat!"), s.flush()
    (['It is sunny.'], [], 'Take a hat!')
    """

    def __init__(self) -> None:
        self._text = ""

    def push(self, text: str) -> list[str]:
        self._text += text
        out = []
        while match := _SENTENCE_END.search(self._text):
            out.append(self._text[: match.end()].strip())
            self._text = self._text[match.end() :]
        if len(self._text) > _LONG and (clauses := list(_CLAUSE_END.finditer(self._text))):
            cut = clauses[-1].end()
            out.append(self._text[:cut].strip())
            self._text = self._text[cut:]
        return [s for s in out if s]

    def flush(self) -> str:
        rest, self._text = self._text.strip(), ""
        return rest


class TextSpeaker(AsyncAudioCallbackHandler):
    """Speaks each model run's text, sentence by sentence, while the run still streams.

    Runs that bring their own audio (a speech-native model) are left alone. The audio
    goes to `on_audio(run_id, pcm, sample_rate)` in order; `on_spoken(run_id, message,
    done)` gets what has been spoken of a run so far (text and audio, so it can be cut
    to what was heard), after each sentence and when the run ends; `done` once all of
    the run's text has been spoken. `finish()` waits for the last
    sentence; `cancel()` stops speaking at once.

    It also tells chat models to stream (it is a streaming handler), so sentences are
    found in the tokens as they come rather than in the finished reply.
    """

    def __init__(
        self,
        speech: OpenRouterSpeech,
        on_audio: Callable[[UUID, bytes, int], Awaitable[None]],
        on_spoken: Callable[[UUID, AIMessage, bool], Awaitable[None]],
    ) -> None:
        super().__init__()
        self.speech = speech
        self._on_audio = on_audio
        self._on_spoken = on_spoken
        self._splitters: dict[UUID, SentenceSplitter] = {}
        self._voiced: set[UUID] = set()  # runs that speak for themselves
        self._streamed: set[UUID] = set()
        self._spoken: dict[UUID, tuple[list[str], bytearray, int]] = {}
        self._finals: dict[UUID, AIMessage] = {}
        self._queue: asyncio.Queue[tuple[UUID, str | None] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    # -- marks chat models to stream (langchain-core's streaming-handler protocol) --------

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[T]) -> AsyncIterator[T]:
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[T]) -> Iterator[T]:
        return output

    # -- the agent's runs -----------------------------------------------------------

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        self._voiced.add(kwargs["run_id"])

    async def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        run_id: UUID = kwargs["run_id"]
        if run_id in self._voiced:
            return
        self._streamed.add(run_id)
        for sentence in self._splitters.setdefault(run_id, SentenceSplitter()).push(text):
            self._say(run_id, sentence)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        await super().on_llm_end(response, run_id=run_id, **kwargs)
        generations = response.generations[0] if response.generations else []
        message = getattr(generations[0], "message", None) if generations else None
        if run_id in self._voiced or not isinstance(message, AIMessage) or not message.text:
            return  # nothing to say (a tool call): the run stays the agent's message
        self._finals[run_id] = message
        # Until its speech is done, the run is what has been spoken of it (maybe nothing).
        texts, pcm, rate = self._spoken.get(run_id, ([], bytearray(), PCM_SAMPLE_RATE))
        await self._on_spoken(run_id, _spoken_message(" ".join(texts), pcm, rate), False)
        splitter = self._splitters.pop(run_id, SentenceSplitter())
        if run_id not in self._streamed:  # the model did not stream: speak its whole text
            for sentence in splitter.push(message.text):
                self._say(run_id, sentence)
        if rest := splitter.flush():
            self._say(run_id, rest)
        self._queue.put_nowait((run_id, None))  # the run's speech is complete

    def _say(self, run_id: UUID, sentence: str) -> None:
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())
        self._queue.put_nowait((run_id, sentence))

    async def finish(self) -> None:
        """Wait until every sentence handed over has been spoken."""
        if self._worker is None:
            return
        self._queue.put_nowait(None)
        await self._worker

    async def cancel(self) -> None:
        """Stop speaking now (barge-in, a failed turn)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    # -- speaking -------------------------------------------------------------------

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            run_id, sentence = item
            if sentence is None:
                await self._complete(run_id)
                continue
            texts, pcm, rate = self._spoken.setdefault(run_id, ([], bytearray(), PCM_SAMPLE_RATE))
            # Explicit callbacks: the agent's handlers must not take the speech run for a
            # reply of the agent (the cost handler still counts it).
            config: Any = {"callbacks": [], "run_name": "speech"}
            async for chunk in self.speech.astream(sentence, config):
                piece, rate = _pcm_of(chunk, rate)
                if piece:
                    pcm += piece
                    await self._on_audio(run_id, piece, rate)
            texts.append(sentence)
            self._spoken[run_id] = (texts, pcm, rate)
            await self._on_spoken(run_id, _spoken_message(" ".join(texts), pcm, rate), False)

    async def _complete(self, run_id: UUID) -> None:
        """All of a run's text was spoken: its message is the agent's, with the speech."""
        final = self._finals.get(run_id)
        _, pcm, rate = self._spoken.get(run_id, ([], bytearray(), PCM_SAMPLE_RATE))
        if final is None:
            return
        spoken = _spoken_message(final.text, pcm, rate) if pcm else final
        message = AIMessage(
            content=spoken.content,
            tool_calls=final.tool_calls,
            id=final.id,
            response_metadata=final.response_metadata,
            usage_metadata=final.usage_metadata,
        )
        await self._on_spoken(run_id, message, True)


def _pcm_of(chunk: Any, rate: int) -> tuple[bytes, int]:
    """The PCM of a speech chunk, and its rate (from the first block's MIME type)."""
    message = getattr(chunk, "message", chunk)
    content = getattr(message, "content", None)
    pieces = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "audio":
            if mime := block.get("mime_type"):
                rate = pcm_rate(str(mime), rate)
            if not isinstance(chunk, SpeechChunk) and block.get("base64"):
                pieces.append(base64.b64decode(block["base64"]))
    pcm = chunk.pcm if isinstance(chunk, SpeechChunk) else b"".join(pieces)
    return pcm, rate


def _spoken_message(text: str, pcm: bytes | bytearray, rate: int) -> AIMessage:
    audio = {
        "type": "audio",
        "base64": base64.b64encode(bytes(pcm)).decode("ascii"),
        "mime_type": f"audio/pcm;rate={rate}",
    }
    return AIMessage(content=[{"type": "text", "text": text}, audio])
