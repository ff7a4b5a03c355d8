"""`ChatOpenRouterAudio`: a LangChain chat model for OpenRouter's audio models.

The class holds the fields and the LangChain hooks. The work lives next door:
`_request` builds the body, `_transport` talks HTTP, `_assembler` turns the
stream into chunks, events and the final message.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, closing, contextmanager
from operator import itemgetter
from typing import Any, Literal, overload

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from langchain_openrouter_audio._assembler import (
    AudioOutput,
    ChunkView,
    EventView,
    ReplyAssembler,
)
from langchain_openrouter_audio._request import (
    convert_messages,
    format_tool_choice,
    validate_tool,
)
from langchain_openrouter_audio._client import AsyncChunkStream, ChunkStream, CompletionsClient
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE
from langchain_openrouter_audio.errors import StreamError

__all__ = ["ChatOpenRouterAudio"]

logger = logging.getLogger("langchain_openrouter_audio")

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

# Constructor fields that go into the request body as they are, when set.
_BODY_FIELDS = (
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "provider",
    "models",
    "reasoning",
    "user",
)


_AUDIO_MODEL_PREFIXES = ("openai/gpt-audio", "openai/gpt-4o-audio", "openai/gpt-4o-mini-audio")


# Guards lazy creation of a model's transport when threads race to the first call.
_TRANSPORT_LOCK = threading.Lock()

_SECRET_SUFFIXES = ("key", "token", "secret", "password")

# Options of the client itself; given per call they would go to OpenRouter as body fields.
_MODEL_ONLY_OPTIONS = frozenset(
    {
        "api_key",
        "openrouter_api_key",
        "base_url",
        "timeout",
        "max_retries",
        "audio_output",
        "sample_rate",
        "app_url",
        "app_title",
        "default_headers",
        "http_client",
        "http_async_client",
        "max_audio_bytes",
        "streaming",
    }
)


# A private bind() argument of with_structured_output: reply in text if the gateway allows.
_PREFER_TEXT_REPLY = "_prefer_text_reply"


def _has_input_audio(wire_messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "input_audio"
        for message in wire_messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
    )


def _default_modalities() -> list[Literal["text", "audio"]]:
    return ["text", "audio"]


class ChatOpenRouterAudio(BaseChatModel):
    """Chat model for OpenRouter's audio models: speech in, speech out, tools.

    Replies are spoken by default: `invoke` returns an `AIMessage` whose
    `.text` is the transcript and whose content holds one `audio` block (a
    24 kHz mono 16-bit WAV); `stream` yields transcript pieces and raw-PCM
    audio chunks as they are generated.

    ```python
    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.audio import save_audio

    llm = ChatOpenRouterAudio()  # reads OPENROUTER_API_KEY
    reply = llm.invoke("Say hello in a friendly tone.")
    print(reply.text)
    save_audio(reply, "hello.wav")
    ```

    Use `modalities=["text"]` for text-only replies (audio input still works).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    model: str = Field(default="openai/gpt-audio-mini", alias="model_name")
    """OpenRouter model slug."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("OPENROUTER_API_KEY", default=None),
        validation_alias=AliasChoices("api_key", "openrouter_api_key"),
    )
    """OpenRouter API key; defaults to the `OPENROUTER_API_KEY` environment variable."""
    base_url: str = Field(default_factory=from_env("OPENROUTER_BASE_URL", default=DEFAULT_BASE_URL))
    """API root; defaults to `OPENROUTER_BASE_URL`, else OpenRouter's."""
    modalities: list[Literal["text", "audio"]] = Field(default_factory=_default_modalities)
    """Output modalities. With `"audio"` every request streams on the wire."""
    voice: str = "alloy"
    """Voice for spoken replies (alloy, ash, ballad, coral, echo, sage, shimmer, verse, ...)."""
    audio_output: AudioOutput = "wav"
    """`"wav"`: `invoke` returns a WAV; `"pcm"`: the raw PCM16 exactly as received."""
    sample_rate: int = PCM_SAMPLE_RATE
    """Sample rate of the PCM16 the model streams (24 kHz for gpt-audio models)."""
    timeout: float | None = 60.0
    """Seconds; for streams, the longest wait for the next bytes."""
    max_retries: int = 2
    """Retries after the first attempt (connection errors, 408, 429, 500, 502, 503, 504)."""
    app_url: str | None = None
    """Sent as `HTTP-Referer` for OpenRouter's app attribution."""
    app_title: str | None = None
    """Sent as `X-Title` / `X-OpenRouter-Title`."""
    streaming: bool = False
    """Stream text-only replies on the wire too (spoken replies always stream)."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | str | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    provider: dict[str, Any] | None = None
    """OpenRouter provider routing, e.g. `{"order": ["openai"], "allow_fallbacks": False}`."""
    models: list[str] | None = None
    """OpenRouter fallback models, tried in order if `model` fails."""
    reasoning: dict[str, Any] | None = None
    user: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Anything else to put in the request body."""
    default_headers: dict[str, str] | None = None
    max_audio_bytes: int = 20 * 1024 * 1024
    """Largest audio clip accepted as input, in decoded bytes."""

    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own `httpx.Client` (proxies, certificates); we do not close it."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)

    _transport: CompletionsClient | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Move unknown constructor arguments into `model_kwargs`, with a warning."""
        if not isinstance(values, dict):
            return values
        known = _field_names(cls)
        extra = {k: values[k] for k in values if k not in known}
        if not extra:
            return values
        if secrets := [k for k in extra if k.lower().endswith(_SECRET_SUFFIXES)]:
            # Never forward something that looks like a credential in the body.
            msg = f"unknown argument(s) {secrets} look like secrets; the key goes in api_key="
            raise ValueError(msg)
        logger.warning("%s not a known field; sent in the request body", sorted(extra))
        values = {k: v for k, v in values.items() if k in known}
        values["model_kwargs"] = {**extra, **values.get("model_kwargs", {})}
        return values

    # -- LangChain identity ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "openrouter-audio-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        # langchain-core's `load` revives only classes in its own allowlist
        # (core and its partner packages), so a round trip cannot work for a
        # third-party model; `dumps` still gives a secret-free repr.
        return False

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_openrouter_audio", "chat_models"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "OPENROUTER_API_KEY"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "modalities": self.modalities,
            "voice": self.voice,
            **self._body_params(),
        }

    def _resolve_model_profile(self) -> ModelProfile | None:
        # What OpenRouter's gpt-audio models do; other slugs get no profile.
        if not self.model.startswith(_AUDIO_MODEL_PREFIXES):
            return None
        return ModelProfile(
            text_inputs=True,
            audio_inputs=True,
            text_outputs=True,
            audio_outputs=True,
            tool_calling=True,
            tool_choice=True,
            tool_call_streaming=True,
            structured_output=True,
        )

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="openrouter",
            ls_model_name=kwargs.get("model", self.model),
            ls_model_type="chat",
        )
        if (temperature := kwargs.get("temperature", self.temperature)) is not None:
            params["ls_temperature"] = temperature
        if (max_tokens := kwargs.get("max_tokens", self.max_tokens)) is not None:
            params["ls_max_tokens"] = max_tokens
        if ls_stop := stop or kwargs.get("stop") or self.stop:
            params["ls_stop"] = [ls_stop] if isinstance(ls_stop, str) else list(ls_stop)
        return params

    # -- request --------------------------------------------------------------

    @property
    def transport(self) -> CompletionsClient:
        """The HTTP transport, created on first use and reused (pooled connections)."""
        if self._transport is None:
            with _TRANSPORT_LOCK:
                if self._transport is None:
                    self._transport = CompletionsClient(
                        base_url=self.base_url,
                        headers=self._headers(),
                        timeout=self.timeout,
                        max_retries=self.max_retries,
                        http_client=self.http_client,
                        http_async_client=self.http_async_client,
                    )
        return self._transport

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the model; the copy makes its own connections from its own settings.

        Unlike pydantic's default, `update` values are validated, so
        `update={"api_key": "..."}` stays a `SecretStr`.
        """
        copied = super().model_copy(deep=deep)
        for name, value in (update or {}).items():
            type(self).__pydantic_validator__.validate_assignment(copied, name, value)
        copied._transport = None
        return copied

    def close(self) -> None:
        """Close the pooled sync HTTP client (injected clients are left open)."""
        if self._transport is not None:
            self._transport.close()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients (injected clients are left open)."""
        if self._transport is not None:
            await self._transport.aclose()

    def _headers(self) -> dict[str, str]:
        if self.api_key is None or not self.api_key.get_secret_value():
            msg = "no OpenRouter API key: pass api_key=... or set OPENROUTER_API_KEY"
            raise ValueError(msg)
        headers = {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}
        if self.app_url:
            headers["HTTP-Referer"] = self.app_url
        if self.app_title:
            headers["X-Title"] = headers["X-OpenRouter-Title"] = self.app_title
        headers.update(self.default_headers or {})
        return headers

    def _body_params(self) -> dict[str, Any]:
        return {name: value for name in _BODY_FIELDS if (value := getattr(self, name)) is not None}

    def _build_body(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> tuple[dict[str, Any], bool]:
        """The request body, and whether the reply is spoken."""
        kwargs = dict(kwargs)
        kwargs.pop("stream", None)
        if misplaced := sorted(_MODEL_ONLY_OPTIONS.intersection(kwargs)):
            msg = (
                f"{misplaced} configure the client, not the request: set them on the model, "
                f"e.g. ChatOpenRouterAudio({misplaced[0]}=...)"
            )
            raise ValueError(msg)
        wire_messages = convert_messages(messages, max_audio_bytes=self.max_audio_bytes)
        if kwargs.pop(_PREFER_TEXT_REPLY, False):
            # gpt-audio models refuse a request with neither audio in nor audio out:
            # answer in text when the question was heard, else keep the model's modalities.
            modalities = ["text"] if _has_input_audio(wire_messages) else list(self.modalities)
        else:
            modalities = list(kwargs.pop("modalities", self.modalities))
        voice = kwargs.pop("voice", self.voice)
        spoken = "audio" in modalities
        body: dict[str, Any] = {
            "model": kwargs.pop("model", self.model),
            "messages": wire_messages,
            **self._body_params(),
            **self.model_kwargs,
            **kwargs,
            "modalities": modalities,
            # OpenRouter gives speech only on a stream, and only as pcm16.
            "stream": stream or spoken or self.streaming,
        }
        if spoken:
            body["audio"] = {"voice": voice, "format": "pcm16"}
        if wire_stop := stop if stop is not None else self.stop:
            body["stop"] = wire_stop
        return body, spoken

    def _assembler(self, spoken: bool) -> ReplyAssembler:
        return ReplyAssembler(
            audio_output=self.audio_output,
            sample_rate=self.sample_rate,
            list_content=spoken,
        )

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        # Only `stream()`/`astream()` go through `_stream`. When streaming is
        # merely implied (a streaming handler, `streaming=True`), `_generate`
        # streams itself and fires every chunk at the handlers, then builds
        # the reply in one pass instead of core summing thousands of chunks.
        if not kwargs.get("stream"):
            return False
        return super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)

    # -- sync -----------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, spoken = self._build_body(messages, stop, kwargs, stream=False)
        asm = self._assembler(spoken)
        if not body["stream"]:
            asm.feed(self.transport.post(body))
        elif run_manager is not None and run_manager.handlers:
            for _ in self._chunks(_flat(self.transport.stream(body)), asm, run_manager):
                pass
        else:
            # Nobody to hand chunks to: the deltas go straight into the assembler.
            with closing(_flat(self.transport.stream(body))) as raw_chunks, _partial_on_error(asm):
                for raw in raw_chunks:
                    asm.feed(raw)
                asm.check_complete()
        return _result(asm, run_manager)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        body, spoken = self._build_body(messages, stop, kwargs, stream=True)
        yield from self._chunks(_flat(self.transport.stream(body)), self._assembler(spoken), run_manager)

    def _chunks(
        self,
        raw_chunks: Generator[dict[str, Any], None, None],
        asm: ReplyAssembler,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> Iterator[ChatGenerationChunk]:
        view = ChunkView(asm)
        # closing(): leaving early must end the HTTP stream now, not at garbage collection.
        try:
            with closing(raw_chunks), _partial_on_error(asm):
                for raw in raw_chunks:
                    if (chunk := view.chunk(asm.feed(raw))) is not None:
                        yield _notify(run_manager, chunk)
                asm.check_complete()
        except StreamError:
            # Bytes held back for a 6-byte boundary did arrive: deliver them, then fail.
            if (rest := view.rest()) is not None:
                yield _notify(run_manager, rest)
            raise
        yield _notify(run_manager, view.last())

    def _stream_chat_model_events(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        """Native content-block events for `stream_events(version="v3")` and LangGraph v2."""
        body, spoken = self._build_body(messages, stop, kwargs, stream=True)
        asm = self._assembler(spoken)
        events = EventView(asm, _run_message_id(run_manager) if run_manager else None)
        # Audio handlers listen to chunks: fire them here too, or v2 runs go unheard.
        chunks = ChunkView(asm)
        try:
            with closing(_flat(self.transport.stream(body))) as raw_chunks, _partial_on_error(asm):
                for raw in raw_chunks:
                    delta = asm.feed(raw)
                    _notify(run_manager, chunks.chunk(delta))
                    yield from events.events(delta)
                asm.check_complete()
        except StreamError:
            _notify(run_manager, chunks.rest())
            yield from events.rest()
            raise
        _notify(run_manager, chunks.last())
        yield from events.finish()

    # -- async ----------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, spoken = self._build_body(messages, stop, kwargs, stream=False)
        asm = self._assembler(spoken)
        if not body["stream"]:
            asm.feed(await self.transport.apost(body))
        elif run_manager is not None and run_manager.handlers:
            async for _ in self._achunks(_aflat(self.transport.astream(body)), asm, run_manager):
                pass
        else:
            async with aclosing(_aflat(self.transport.astream(body))) as raw_chunks:
                with _partial_on_error(asm):
                    async for raw in raw_chunks:
                        asm.feed(raw)
                    asm.check_complete()
        return _result(asm, run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        body, spoken = self._build_body(messages, stop, kwargs, stream=True)
        raw_chunks = _aflat(self.transport.astream(body))
        async for chunk in self._achunks(raw_chunks, self._assembler(spoken), run_manager):
            yield chunk

    async def _achunks(
        self,
        raw_chunks: AsyncGenerator[dict[str, Any], None],
        asm: ReplyAssembler,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> AsyncIterator[ChatGenerationChunk]:
        view = ChunkView(asm)
        # aclosing(): leaving early (break, cancellation) must end the HTTP stream now.
        try:
            async with aclosing(raw_chunks):
                with _partial_on_error(asm):
                    async for raw in raw_chunks:
                        if (chunk := view.chunk(asm.feed(raw))) is not None:
                            yield await _anotify(run_manager, chunk)
                    asm.check_complete()
        except StreamError:
            if (rest := view.rest()) is not None:
                yield await _anotify(run_manager, rest)
            raise
        yield await _anotify(run_manager, view.last())

    async def _astream_chat_model_events(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Async native content-block events."""
        body, spoken = self._build_body(messages, stop, kwargs, stream=True)
        asm = self._assembler(spoken)
        events = EventView(asm, _run_message_id(run_manager) if run_manager else None)
        chunks = ChunkView(asm)
        try:
            async with aclosing(_aflat(self.transport.astream(body))) as raw_chunks:
                with _partial_on_error(asm):
                    async for raw in raw_chunks:
                        delta = asm.feed(raw)
                        await _anotify(run_manager, chunks.chunk(delta))
                        for event in events.events(delta):
                            yield event
                    asm.check_complete()
        except StreamError:
            await _anotify(run_manager, chunks.rest())
            for event in events.rest():
                yield event
            raise
        await _anotify(run_manager, chunks.last())
        for event in events.finish():
            yield event

    # -- tools and structured output -----------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (functions, pydantic models, `BaseTool`s, OpenAI dicts).

        `tool_choice`: `"auto"`, `"none"`, `"required"` (`"any"` and `True`
        mean required), or a tool's name to force that tool.

        ```python
        def get_weather(city: str) -> str:
            \"\"\"Weather in a city.\"\"\"
            return "sunny"

        reply = ChatOpenRouterAudio().bind_tools([get_weather]).invoke("Weather in Paris?")
        reply.tool_calls  # [{'name': 'get_weather', 'args': {'city': 'Paris'}, ...}]
        ```

        Raises:
            ValueError: a tool schema OpenAI-style APIs would refuse.
        """
        formatted = [validate_tool(convert_to_openai_tool(t, strict=strict)) for t in tools]
        if tool_choice is not None:
            names = [t["function"]["name"] for t in formatted]
            kwargs["tool_choice"] = format_tool_choice(tool_choice, names)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Return a runnable whose output matches `schema`.

        The reply is requested as text when the messages hold audio (speaking
        a JSON object helps nobody); without audio input it keeps the model's
        modalities, since gpt-audio models refuse text in and text out.

        ```python
        class Answer(BaseModel):
            city: str

        ChatOpenRouterAudio().with_structured_output(Answer).invoke([question_with_audio])
        ```
        """
        if kwargs:
            raise ValueError(f"unexpected arguments: {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        llm: Runnable[LanguageModelInput, Any]
        parser: Runnable[Any, Any]
        structured = {"schema": schema, "method": method, "strict": strict}
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools(
                [schema],
                tool_choice=name,
                strict=strict,
                **{_PREFER_TEXT_REPLY: True},
                ls_structured_output_format=structured,
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method == "json_schema":
            json_schema = convert_to_json_schema(schema)
            response_format: dict[str, Any] = {
                "name": json_schema.get("title", "output"),
                "schema": json_schema,
            }
            if strict is not None:
                response_format["strict"] = strict
            llm = self.bind(
                response_format={"type": "json_schema", "json_schema": response_format},
                **{_PREFER_TEXT_REPLY: True},
                ls_structured_output_format=structured,
            )
            parser = _json_parser(schema, is_pydantic)
        elif method == "json_mode":
            llm = self.bind(
                response_format={"type": "json_object"},
                **{_PREFER_TEXT_REPLY: True},
                ls_structured_output_format=structured,
            )
            parser = _json_parser(schema, is_pydantic)
        else:
            raise ValueError(f"unknown method {method!r}")
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        none = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks([none], exception_key="parsing_error")


def _flat(stream: ChunkStream) -> Generator[dict[str, Any], None, None]:
    try:
        for batch in stream:
            yield from batch
        if stream.done:
            yield {"choices": [{"finish_reason": "stop", "delta": {}}]}
    finally:
        stream.close()


async def _aflat(stream: AsyncChunkStream) -> AsyncGenerator[dict[str, Any], None]:
    try:
        async for batch in stream:
            for chunk in batch:
                yield chunk
        if stream.done:
            yield {"choices": [{"finish_reason": "stop", "delta": {}}]}
    finally:
        await stream.aclose()


def _run_message_id(run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun) -> str:
    # Chunks and the final reply of a run share one id, or LangGraph's message
    # stream shows the reply twice (once as chunks, once whole).
    return "-".join((LC_ID_PREFIX, str(run_manager.run_id)))


@overload
def _notify(
    run_manager: CallbackManagerForLLMRun | None, chunk: ChatGenerationChunk
) -> ChatGenerationChunk: ...
@overload
def _notify(run_manager: CallbackManagerForLLMRun | None, chunk: None) -> None: ...
def _notify(
    run_manager: CallbackManagerForLLMRun | None, chunk: ChatGenerationChunk | None
) -> ChatGenerationChunk | None:
    """Hand a chunk to the run's callbacks (audio handlers, LangGraph) and return it."""
    if run_manager is not None and chunk is not None:
        chunk.message.id = _run_message_id(run_manager)
        run_manager.on_llm_new_token(chunk.message.text, chunk=chunk)
    return chunk


@overload
async def _anotify(
    run_manager: AsyncCallbackManagerForLLMRun | None, chunk: ChatGenerationChunk
) -> ChatGenerationChunk: ...
@overload
async def _anotify(run_manager: AsyncCallbackManagerForLLMRun | None, chunk: None) -> None: ...
async def _anotify(
    run_manager: AsyncCallbackManagerForLLMRun | None, chunk: ChatGenerationChunk | None
) -> ChatGenerationChunk | None:
    """Async `_notify`."""
    if run_manager is not None and chunk is not None:
        chunk.message.id = _run_message_id(run_manager)
        await run_manager.on_llm_new_token(chunk.message.text, chunk=chunk)
    return chunk


def _json_parser(schema: Any, is_pydantic: bool) -> Runnable[Any, Any]:
    if is_pydantic:
        return PydanticOutputParser(pydantic_object=schema)
    return JsonOutputParser()


def _result(
    asm: ReplyAssembler,
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> ChatResult:
    message = asm.message()
    if run_manager is not None:
        message.id = _run_message_id(run_manager)
    return ChatResult(generations=[ChatGeneration(message=message)])


@contextmanager
def _partial_on_error(asm: ReplyAssembler) -> Iterator[None]:
    """Attach what arrived so far to a `StreamError` raised inside the block."""
    try:
        yield
    except StreamError as err:
        if err.partial is None:
            err.partial = asm.message()
        raise


@functools.cache
def _field_names(cls: type[ChatOpenRouterAudio]) -> frozenset[str]:
    """Every name the constructor accepts: fields, aliases, alias choices."""
    names = set(cls.model_fields)
    for field in cls.model_fields.values():
        if field.alias:
            names.add(field.alias)
        if isinstance(field.validation_alias, AliasChoices):
            names.update(c for c in field.validation_alias.choices if isinstance(c, str))
    return frozenset(names)
