"""`OpenRouterSpeech`: text to speech through OpenRouter's `/audio/speech` endpoint.

Any text, from any model or agent, spoken by a dedicated TTS model. The reply
has the shape of a spoken reply of `ChatOpenRouterAudio` (the text plus one
`audio` block), so `save_audio`, `audio_pcm`, the audio callbacks and the
voice loop take it as they are.

```python
from langchain_openrouter_audio import OpenRouterSpeech, save_audio

tts = OpenRouterSpeech(voice="alloy")  # reads OPENROUTER_API_KEY
save_audio(tts.invoke("Your table for two is booked for eight."), "booked.wav")
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from pydantic import ConfigDict, Field, field_validator

from langchain_openrouter_audio._assembler import AudioOutput, ReplyAssembler
from langchain_openrouter_audio._connection import OpenRouterConnection, provider_body
from langchain_openrouter_audio._driver import ReplyDriver, SpeechChunk
from langchain_openrouter_audio._generation_cost import CostLookup
from langchain_openrouter_audio._speech_stream import (
    SPEECH_PATH,
    AsyncSpeechBatches,
    SpeechBatches,
    SpeechFormat,
    SpeechPlan,
)
from langchain_openrouter_audio._text_split import split_for_speech
from langchain_openrouter_audio.chat_models import _has_handlers, _run_message_id
from langchain_openrouter_audio.cost import listening_cost_handlers
from langchain_openrouter_audio.errors import StreamError

__all__ = ["OpenRouterSpeech"]

_CALL_OPTIONS = frozenset({"voice", "speed", "instructions", "response_format", "model"})


class OpenRouterSpeech(OpenRouterConnection, BaseChatModel):
    """Text to speech with OpenRouter's TTS models, as a LangChain runnable.

    Input: a string, or a message (an agent's `AIMessage`: its text is spoken),
    or a list of messages (the last one is spoken). `invoke` returns an
    `AIMessage` holding the text and one `audio` block: a 24 kHz mono WAV for
    `response_format="pcm"` (the default), or the MP3 exactly as received for
    `"mp3"`. `stream`/`astream` yield the speech as it arrives (raw PCM blocks
    on sample boundaries, after one chunk with the text), and audio callbacks
    (`on_audio_chunk`) hear it as it comes.

    ```python
    from langchain_openrouter_audio import OpenRouterSpeech

    tts = OpenRouterSpeech(voice="nova", instructions="Calm and warm.")
    for chunk in tts.stream("Hello! How can I help?"):
        ...  # [{"type": "audio", "base64": ..., "mime_type": "audio/pcm;rate=24000"}]
    ```

    A text longer than `max_input_chars` is split at sentence ends and spoken
    request by request, in order, into that same one reply (see the field).

    Cost: the endpoint streams bytes, so its cost is looked up afterwards
    (`GET /generation?id=...`, with a short wait while the record appears).
    That happens when `fetch_cost=True`, or, with the default `None`, when a
    cost handler listens (`get_openrouter_callback()`); it lands in
    `response_metadata["cost"]` (summed over the requests of a split text, whose
    generation ids are in `response_metadata["generation_ids"]`). A reply that fails
    midway (`IncompleteStreamError`) carries the cost of the requests that answered in
    its `partial`, looked up the same way.
    """

    # A misspelt option must fail, not be ignored (BaseChatModel ignores unknown ones).
    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="openai/gpt-4o-mini-tts-2025-12-15", alias="model_name")
    """TTS model slug (the dated one: `openai/gpt-4o-mini-tts-2025-12-15`)."""
    voice: str | None = "alloy"
    """Voice id of the model (`supported_voices` in `/models`); None: the provider's default."""
    response_format: Literal["pcm", "mp3"] = "pcm"
    """Always sent: OpenRouter's default (pcm) has surprised OpenAI-style clients."""
    speed: float | None = None
    """Speaking rate, for the models that honour it (OpenAI: 0.25-4.0)."""
    instructions: str | None = None
    """How to speak (tone, accent, pace): OpenAI's instructions, sent where OpenRouter wants
    them (`provider.options.openai.instructions`)."""
    provider_options: dict[str, dict[str, Any]] | None = None
    """Passthrough options per provider slug, e.g. `{"azure": {"style": "cheerful"}}`."""
    audio_output: AudioOutput = "wav"
    """For pcm: `"wav"` wraps the speech in a WAV; `"pcm"` keeps the raw PCM16."""
    fetch_cost: bool | None = None
    """Look up the call's cost: True always, False never, None when a cost handler listens."""
    cost_wait_s: float = 4.0
    """Longest wait for the generation record that holds the cost."""
    max_input_chars: int | None = 2000
    """Longest text sent in one request; a longer one is split (None: never split).

    A text over this many characters is cut at paragraph and sentence ends (a longer
    sentence at clause ends, then between words) and each piece is spoken by its own
    request, in order, with the same model, voice, instructions and format; the reply
    is one text and one audio. TTS models cap their input: gpt-4o-mini-tts at 4,096
    characters and 2,000 tokens, Voxtral at "4K", AssemblyAI at 5,000, Gemini Flash
    TTS at 8,192; OpenRouter's schema states none. The default, 2,000, stays under all
    of those for text in alphabetic scripts (a token is several characters there), with
    room for `instructions`, and keeps one request to about two minutes of speech.
    Lower it for scripts where a character is about a token (Chinese, Japanese: 1,000),
    raise it for a model known to take more."""

    @field_validator("speed")
    @classmethod
    def _check_speed(cls, speed: float | None) -> float | None:
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be between 0.25 and 4.0, got {speed}")
        return speed

    @field_validator("max_input_chars")
    @classmethod
    def _check_max_input_chars(cls, limit: int | None) -> int | None:
        if limit is not None and limit < 1:
            raise ValueError(f"max_input_chars must be a positive number or None, got {limit}")
        return limit

    @field_validator("voice")
    @classmethod
    def _check_voice(cls, voice: str | None) -> str | None:
        if voice is not None and not voice.strip():
            raise ValueError("voice must be a voice id such as 'alloy', or None")
        return voice

    # -- LangChain identity ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "openrouter-speech"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "voice": self.voice, "response_format": self.response_format}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider="openrouter", ls_model_name=self.model, ls_model_type="chat"
        )

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue:
        if isinstance(model_input, BaseMessage):
            return ChatPromptValue(messages=[model_input])
        return super()._convert_input(model_input)

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        # Only stream()/astream() go through _stream: invoke builds its reply in one pass.
        if not kwargs.get("stream"):
            return False
        return super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)

    # -- request --------------------------------------------------------------

    def _body(self, messages: list[BaseMessage], options: dict[str, Any]) -> dict[str, Any]:
        """The request body; bad input fails here, before any network call."""
        options = {k: v for k, v in options.items() if k != "stream"}
        if unknown := sorted(set(options) - _CALL_OPTIONS):
            allowed = ", ".join(sorted(_CALL_OPTIONS))
            raise ValueError(f"OpenRouterSpeech does not take {unknown}; per call: {allowed}")
        if not messages:
            raise ValueError("nothing to speak: the input holds no message")
        text = messages[-1].text.strip()
        if not text:
            kind = type(messages[-1]).__name__
            raise ValueError(f"nothing to speak: the {kind} holds no text")
        fmt = options.get("response_format", self.response_format)
        if fmt not in ("pcm", "mp3"):
            raise ValueError(f"response_format must be 'pcm' or 'mp3', got {fmt!r}")
        body: dict[str, Any] = {
            "model": options.get("model", self.model),
            "input": text,
            "response_format": fmt,
        }
        if (voice := options.get("voice", self.voice)) is not None:
            body["voice"] = voice
        if (speed := options.get("speed", self.speed)) is not None:
            body["speed"] = speed
        provider_options = {k: dict(v) for k, v in (self.provider_options or {}).items()}
        if instructions := options.get("instructions", self.instructions):
            provider_options.setdefault("openai", {})["instructions"] = instructions
        if (provider := provider_body(provider_options)) is not None:
            body["provider"] = provider
        return body

    def _plan(self, messages: list[BaseMessage], options: dict[str, Any]) -> SpeechPlan:
        """The requests that speak the text: one, or one per piece of a long text."""
        body = self._body(messages, options)
        text = body["input"]
        pieces = (
            [text] if self.max_input_chars is None else split_for_speech(text, self.max_input_chars)
        )
        return SpeechPlan(text, [{**body, "input": piece} for piece in pieces])

    def _wants_cost(self, run_manager: Any) -> bool:
        if self.fetch_cost is not None:
            return self.fetch_cost
        return bool(listening_cost_handlers(run_manager))

    def _driver(
        self, fmt: SpeechFormat, run_manager: Any, *, chunks: bool, summed: bool
    ) -> ReplyDriver:
        assembler = ReplyAssembler(
            audio_output=self.audio_output, sample_rate=fmt.rate, list_content=True
        )
        # MP3 (or another container): its bytes stay as they are.
        assembler.encoded = fmt.encoded
        return ReplyDriver(
            assembler,
            message_id=_run_message_id(run_manager) if run_manager is not None else None,
            chunks=chunks,
            summed=summed,
            redact=self.client.redact,
        )

    # -- sync -----------------------------------------------------------------

    def _steps(
        self,
        messages: list[BaseMessage],
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
        *,
        chunks: bool,
        summed: bool,
        cost: CostLookup | None,
    ) -> tuple[ReplyDriver, Iterator[Any], SpeechPlan]:
        plan = self._plan(messages, kwargs)
        client = self.client
        response = client.open_bytes(SPEECH_PATH, plan.bodies[0], accept="audio/*")
        fmt = SpeechFormat.of(response)
        driver = self._driver(fmt, run_manager, chunks=chunks, summed=summed)
        plan.metadata = driver.asm.metadata
        batches = SpeechBatches(plan, response, fmt, client, cost)
        return driver, driver.steps(batches, run_manager), plan  # type: ignore[arg-type]

    def _cost_lookup(self, run_manager: Any) -> CostLookup | None:
        if not self._wants_cost(run_manager):
            return None
        return CostLookup(self.client, self.cost_wait_s)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = _has_handlers(run_manager)
        cost = self._cost_lookup(run_manager)
        driver, steps, plan = self._steps(
            messages, run_manager, kwargs, chunks=chunks, summed=False, cost=cost
        )
        try:
            for _ in steps:
                pass
        except StreamError as err:
            if cost is not None and (billed := _billed(err, plan)):
                _carry_cost(err, cost.total(billed))
            raise
        return ChatResult(generations=[ChatGeneration(message=driver.message())])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        cost = self._cost_lookup(run_manager)
        _, steps, plan = self._steps(
            messages, run_manager, kwargs, chunks=True, summed=True, cost=None
        )
        last: SpeechChunk | None = None
        try:
            for step in steps:
                if step.chunk is not None:
                    last = step.chunk
                    yield step.chunk
        except StreamError as err:
            # Every chunk that arrived is out; the requests that answered were billed.
            if cost is not None and (billed := _billed(err, plan)):
                _carry_cost(err, cost.total(billed))
            raise
        # The speech is complete (the last chunk is out); only then is the cost looked up.
        if cost is not None and last is not None:
            _add_cost(last, cost.total(plan.generation_ids))

    # -- async ----------------------------------------------------------------

    async def _asteps(
        self,
        messages: list[BaseMessage],
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
        *,
        chunks: bool,
        summed: bool,
        cost: CostLookup | None,
    ) -> tuple[ReplyDriver, AsyncIterator[Any], SpeechPlan]:
        plan = self._plan(messages, kwargs)
        client = self.client
        response = await client.aopen_bytes(SPEECH_PATH, plan.bodies[0], accept="audio/*")
        fmt = SpeechFormat.of(response)
        driver = self._driver(fmt, run_manager, chunks=chunks, summed=summed)
        plan.metadata = driver.asm.metadata
        batches = AsyncSpeechBatches(plan, response, fmt, client, cost)
        return driver, driver.asteps(batches, run_manager), plan  # type: ignore[arg-type]

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = _has_handlers(run_manager)
        cost = self._cost_lookup(run_manager)
        driver, steps, plan = await self._asteps(
            messages, run_manager, kwargs, chunks=chunks, summed=False, cost=cost
        )
        try:
            async for _ in steps:
                pass
        except StreamError as err:
            if cost is not None and (billed := _billed(err, plan)):
                _carry_cost(err, await cost.atotal(billed))
            raise
        return ChatResult(generations=[ChatGeneration(message=await driver.amessage())])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        cost = self._cost_lookup(run_manager)
        _, steps, plan = await self._asteps(
            messages, run_manager, kwargs, chunks=True, summed=True, cost=None
        )
        last: SpeechChunk | None = None
        try:
            async for step in steps:
                if step.chunk is not None:
                    last = step.chunk
                    yield step.chunk
        except StreamError as err:
            # Every chunk that arrived is out; the requests that answered were billed.
            if cost is not None and (billed := _billed(err, plan)):
                _carry_cost(err, await cost.atotal(billed))
            raise
        # The speech is complete (the last chunk is out, so a caller can move on to the
        # next sentence); only then is the cost looked up, before the run ends.
        if cost is not None and last is not None:
            _add_cost(last, await cost.atotal(plan.generation_ids))


def _add_cost(last: SpeechChunk, cost: float | None) -> None:
    """The cost, looked up after the last chunk went out, joins that chunk's metadata.

    langchain-core sums the chunks into the run's message (what `on_llm_end` and the cost
    handlers read) only once the stream has ended, so the cost is counted with the run.
    """
    if cost is not None:
        last.message.response_metadata["cost"] = cost


def _billed(err: StreamError, plan: SpeechPlan) -> list[str]:
    """The generation ids a failed reply was billed for: every request that answered with
    audio (or began to), none that was refused; none without a partial reply to tell."""
    if err.partial is None:
        return []
    return [gen_id for gen_id in plan.generation_ids if gen_id]


def _carry_cost(err: StreamError, cost: float | None) -> None:
    """Their summed cost joins the partial reply's metadata, where a complete reply has it
    (and where the cost handlers read it: `OpenRouterCallbackHandler.on_llm_error`)."""
    if cost is not None and err.partial is not None:
        err.partial.response_metadata["cost"] = cost
