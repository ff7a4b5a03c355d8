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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from langchain_openrouter_audio._driver import SpeechChunk
from langchain_openrouter_audio._sentences import CLAUSE_END, SENTENCE_END
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, pcm16_to_wav, pcm_rate
from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler
from langchain_openrouter_audio.chat_models import ChatOpenRouterAudio
from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.transcription import OpenRouterTranscription

__all__ = [
    "AgentHears",
    "SentenceSplitter",
    "TextSpeaker",
    "agent_hearing",
    "as_speech",
    "as_transcription",
    "transcribe",
    "with_transcript",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)

# How long past the speech model's `cost_wait_s` a sentence's cost lookup may run (its
# requests have timeouts of their own) before the turn stops waiting for it.
COST_GRACE_S = 2.0

# Past this many characters without a sentence end, a clause boundary will do.
_LONG = 220


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


AgentHears = Literal["auto", "audio", "text"]
"""What the agent gets of an utterance: its recording, or its transcript (see `agent_hearing`)."""


def agent_hearing(
    agent_hears: AgentHears,
    agent: Runnable[Any, Any],
    transcription: Runnable[Any, str] | None,
    speech: OpenRouterSpeech | None,
) -> Literal["audio", "text"]:
    """Whether `agent` hears the recording (`"audio"`) or reads its transcript (`"text"`).

    `"auto"`: without `transcription` it hears the recording. With it, the agent reads the
    transcript when it needs `speech` to be heard (a text agent), or when it is a
    `ChatOpenRouterAudio` on a model that does not speak; any other agent speaks for
    itself, so it is taken to be speech-native: it hears the recording, and the
    transcript is made beside its call, for the page and the turn record.

    >>> agent_hearing("auto", None, None, None)  # type: ignore[arg-type]
    'audio'
    """
    if agent_hears not in ("auto", "audio", "text"):
        raise ValueError(f"agent_hears must be 'auto', 'audio' or 'text', got {agent_hears!r}")
    if agent_hears == "text" and transcription is None:
        raise ValueError("agent_hears='text' needs transcription= (a transcription model)")
    if agent_hears != "auto":
        return agent_hears
    if transcription is None:
        return "audio"
    if speech is not None:
        return "text"
    model = getattr(agent, "bound", agent)
    if isinstance(model, ChatOpenRouterAudio) and "audio" not in model.modalities:
        return "text"
    return "audio"


def with_transcript(
    messages: list[BaseMessage], question: BaseMessage, text: str
) -> list[BaseMessage]:
    """`messages` with `question` (the user's recorded turn) carrying its transcript.

    The recording stays what the model is sent; the words ride along in
    `additional_kwargs["transcript"]`, which chat models do not send (as OpenAI's
    Realtime API keeps an audio item's transcript beside its audio).
    """
    question.additional_kwargs["transcript"] = text
    out = []
    for message in messages:
        if message is not question and question.id is not None and message.id == question.id:
            kwargs = {**message.additional_kwargs, "transcript": text}
            message = message.model_copy(update={"additional_kwargs": kwargs})
        out.append(message)
    return out


async def transcribe(transcription: Runnable[Any, str], pcm: bytes, sample_rate: int) -> str:
    """What the user said in `pcm` (PCM16 mono at `sample_rate`)."""
    wav = pcm16_to_wav(pcm, sample_rate=sample_rate)
    # Its own run (explicit callbacks): the agent's handlers must not hear it as a reply.
    return await transcription.ainvoke(wav, {"callbacks": [], "run_name": "transcription"})


class SentenceSplitter:
    """Text in as it streams; whole sentences out as soon as each one ends.

    Sentences end where `OpenRouterSpeech` splits a long text: at `.` `!` `?` before a
    space, at the full-width stops of Chinese and Japanese (`。` ...) with or without one
    (a boundary is taken once the next character shows it is complete). Past 220
    characters with no sentence end, at the last clause mark (`,` `;` `:` dashes, `、` ...).

    >>> s = SentenceSplitter()
    >>> s.push("It is sunny. Take a"), s.push(" hat!"), s.flush()
    (['It is sunny.'], [], 'Take a hat!')
    """

    def __init__(self) -> None:
        self._text = ""

    def push(self, text: str) -> list[str]:
        self._text += text
        out = []
        while match := SENTENCE_END.search(self._text):
            out.append(self._text[: match.end()].strip())
            self._text = self._text[match.end() :]
        if len(self._text) > _LONG and (clauses := list(CLAUSE_END.finditer(self._text))):
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
        self._costs: set[asyncio.Task[None]] = set()

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
        """Wait until every sentence handed over has been spoken and its cost is known."""
        if self._worker is not None:
            self._queue.put_nowait(None)
            await self._worker
        await self.settle_costs()

    async def cancel(self) -> None:
        """Stop speaking now (barge-in, a failed turn); cost lookups go on (`settle_costs`)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    @property
    def pending_costs(self) -> set[asyncio.Task[None]]:
        """Spoken sentences whose cost is still being looked up."""
        return {task for task in self._costs if not task.done()}

    async def settle_costs(self) -> None:
        """Wait for the cost lookups of spoken sentences (bounded: `cost_wait_s` plus a
        grace period; a lookup still running then is dropped, with a warning)."""
        await settle(self.pending_costs, self.speech.cost_wait_s + COST_GRACE_S)

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
            stream = self.speech.astream(sentence, config)
            async for chunk in stream:
                piece, rate = _pcm_of(chunk, rate)
                if piece:
                    pcm += piece
                    await self._on_audio(run_id, piece, rate)
                if getattr(chunk, "chunk_position", None) == "last":
                    # The sentence is spoken; its run goes on in the background only to
                    # look up its cost, and the next sentence's request goes out now.
                    task = asyncio.ensure_future(_drain(stream))
                    self._costs.add(task)
                    task.add_done_callback(self._costs.discard)
                    break
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


async def _drain(stream: AsyncIterator[Any]) -> None:
    """The rest of a speech run after its last chunk: its cost lookup, then its end."""
    try:
        async for _ in stream:
            pass
    except Exception as err:  # the audio was played: a failed lookup only loses the cost
        logger.warning("speech: the rest of a spoken sentence's run failed: %s", err)


async def settle(tasks: set[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for `tasks` up to `timeout_s`; cancel those still running then."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=timeout_s)
    for task in late:
        task.cancel()
    if late:
        logger.warning("speech: %d cost lookups took over %.1f s; dropped", len(late), timeout_s)
        await asyncio.gather(*late, return_exceptions=True)


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
