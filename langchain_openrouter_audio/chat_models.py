"""`ChatOpenRouterAudio`: a LangChain chat model for OpenRouter's audio models.

The class holds the fields and the LangChain hooks; the work is next door and
flows one way: `_request` builds the body, `_client` sends it and reads the
SSE, `_driver` turns the chunks into LangChain chunks, events, callbacks and
the final message. `_client_owner` checks the connection settings and owns the
pooled client (copies, pickles, closing), as for the speech and transcription
runnables.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal, Self

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
from langchain_core.tracers._streaming import _StreamingCallbackHandler
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_openrouter_audio._assembler import AudioOutput, ReplyAssembler
from langchain_openrouter_audio._catalog import aspeaking_models, speaking_models
from langchain_openrouter_audio._client import encode_body
from langchain_openrouter_audio._client_owner import DEFAULT_BASE_URL, ClientOwner
from langchain_openrouter_audio._driver import ReplyDriver
from langchain_openrouter_audio._request import (
    RequestSettings,
    WireRequest,
    build_request,
    can_speak,
    cannot_speak_message,
    format_tool_choice,
    is_audio_model,
    validate_tool,
)
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE
from langchain_openrouter_audio.cost import report_cut_short

__all__ = ["ChatOpenRouterAudio"]

logger = logging.getLogger("langchain_openrouter_audio")

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

_SECRET_SUFFIXES = ("key", "token", "secret", "password")


def _default_modalities() -> list[Literal["text", "audio"]]:
    return ["text", "audio"]


class ChatOpenRouterAudio(ClientOwner, BaseChatModel):
    """Chat model for OpenRouter's audio models: speech in, speech out, tools.

    Replies are spoken by default: `invoke` returns an `AIMessage` whose
    `.text` is the transcript and whose content holds one `audio` block (a
    24 kHz mono 16-bit WAV); `stream` yields transcript pieces and raw-PCM
    audio chunks as they are generated.

    ```python
    from langchain_openrouter_audio import ChatOpenRouterAudio, save_audio

    llm = ChatOpenRouterAudio()  # reads OPENROUTER_API_KEY
    reply = llm.invoke("Say hello in a friendly tone.")
    print(reply.text)
    save_audio(reply, "hello.wav")
    ```

    Use `modalities=["text"]` to answer a spoken question in text (gpt-audio
    models refuse text in and text out: that is refused before sending).
    """

    # hide_input_in_errors comes from ClientOwner: a refused api_key never shows.
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
    """Output modalities. With `"audio"` every request streams on the wire. Unset, they
    follow the model: `["text", "audio"]` for models that speak (the gpt-audio family,
    Lyria), `["text"]` for every other model."""
    speaks: bool | Literal["lookup"] | None = None
    """Whether `model` produces audio. None: known from its name (gpt-audio family,
    Lyria); True for an audio model this package does not know yet; `"lookup"`: ask
    OpenRouter's catalog (`/models`, `architecture.output_modalities`; cached for an
    hour) on first use. Asking a model that cannot speak for audio is refused before
    sending."""
    voice: str = "alloy"
    """Voice for spoken replies (alloy, ash, ballad, coral, echo, sage, shimmer, verse, ...)."""
    audio_output: AudioOutput = "wav"
    """`"wav"`: `invoke` returns a WAV; `"pcm"`: the raw PCM16 exactly as received."""
    sample_rate: int = PCM_SAMPLE_RATE
    """Sample rate of the PCM16 the model streams (24 kHz for gpt-audio models)."""
    timeout: float | httpx.Timeout | None = 60.0
    """Seconds (or an `httpx.Timeout`); for streams, the longest wait for the next bytes."""
    max_retries: int = 2
    """Retries after the first attempt (connection errors, 408, 429, 500, 502, 503, 504)."""
    app_url: str | None = None
    """Sent as `HTTP-Referer` for OpenRouter's app attribution."""
    app_title: str | None = None
    """Sent as `X-Title` / `X-OpenRouter-Title`."""
    streaming: bool = False
    """Stream text-only replies on the wire too (spoken replies always stream)."""
    cost_wait_s: float = Field(default=4.0, ge=0, allow_inf_nan=False)
    """Longest wait for the generation record of a call cut short (cancelled or failed
    mid-stream: no `usage.cost` came), looked up in the background when a cost handler
    (`get_openrouter_callback()`) listens."""

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
    default_headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True)
    """Extra headers on every request; never shown or serialized (they may hold credentials)."""
    max_audio_bytes: int = 20 * 1024 * 1024
    """Largest audio clip accepted as input, in decoded bytes."""

    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own `httpx.Client` (proxies, certificates); we do not close it."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)

    # Set on the copy `with_structured_output` binds: answer heard questions in text
    # (over the connections of the model it was made from: `_connections_of`).
    _prefer_text_reply: bool = PrivateAttr(default=False)

    @model_validator(mode="before")
    @classmethod
    def _collect_model_kwargs(cls, values: Any) -> Any:
        """Move unknown constructor arguments into `model_kwargs`, with a warning."""
        if not isinstance(values, dict):
            return values
        known = _field_names(cls)
        # Underscored names are never arguments: langchain-core caches `_serialized` in the
        # instance dict, and `model_copy(update=...)` hands the whole dict back here.
        extra = {k: values[k] for k in values if k not in known and not k.startswith("_")}
        if not extra:
            return values
        if secrets := [k for k in extra if k.lower().endswith(_SECRET_SUFFIXES)]:
            # Never forward something that looks like a credential in the body.
            msg = f"unknown argument(s) {secrets} look like secrets; the key goes in api_key="
            raise ValueError(msg)
        names = ", ".join(sorted(extra))
        # A warning, as langchain-openai gives: a misspelt option must not pass unnoticed.
        warnings.warn(
            f"ChatOpenRouterAudio got unknown argument(s) {names}: they are not fields of "
            f"the model and will be sent as is in the request body (model_kwargs). "
            f"Check the spelling if you meant a field.",
            UserWarning,
            stacklevel=2,
        )
        values = {k: v for k, v in values.items() if k in known}
        values["model_kwargs"] = {**extra, **values.get("model_kwargs", {})}
        return values

    @model_validator(mode="after")
    def _modalities_follow_the_model(self) -> Self:
        """Unset modalities follow the model; audio from a model that cannot speak is refused."""
        speaks = self.speaks if isinstance(self.speaks, bool) else can_speak(self.model)
        if "modalities" not in self.model_fields_set:
            self.modalities = ["text", "audio"] if speaks else ["text"]
            # Still unset: a per-call model= (or the catalog) brings its own default.
            self.__pydantic_fields_set__.discard("modalities")
        elif "audio" in self.modalities and not speaks and self.speaks != "lookup":
            raise ValueError(cannot_speak_message(self.model))
        return self

    @field_validator("sample_rate", "max_audio_bytes")
    @classmethod
    def _check_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be positive, got {value}")
        return value

    # -- LangChain identity ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "openrouter-audio-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        # `dumps(llm)` holds a secret reference, never the key. langchain-core
        # revives a third-party class only when it is allowed by name:
        # `load(data, valid_namespaces=["langchain_openrouter_audio"],
        # allowed_objects=[ChatOpenRouterAudio], secrets_from_env=True)`.
        return True

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
        if not is_audio_model(self.model):
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

    def _body_params(self) -> dict[str, Any]:
        return {name: value for name in _BODY_FIELDS if (value := getattr(self, name)) is not None}

    def _speaks(self, options: dict[str, Any]) -> bool | None:
        """Whether the model of this call speaks: as set, or from the catalog (may fetch it)."""
        if self.speaks != "lookup":
            return self.speaks
        slugs = speaking_models(self.client)
        model = options.get("model", self.model)
        return can_speak(model) if slugs is None else model in slugs

    async def _aspeaks(self, options: dict[str, Any]) -> bool | None:
        if self.speaks != "lookup":
            return self.speaks
        slugs = await aspeaking_models(self.client)
        model = options.get("model", self.model)
        return can_speak(model) if slugs is None else model in slugs

    def _request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        options: dict[str, Any],
        *,
        stream: bool,
        speaks: bool | None = None,
    ) -> WireRequest:
        settings = RequestSettings(
            model=self.model,
            modalities=self.modalities,
            voice=self.voice,
            body_params=self._body_params(),
            model_kwargs=self.model_kwargs,
            stop=self.stop,
            streaming=self.streaming,
            max_audio_bytes=self.max_audio_bytes,
            prefer_text_reply=self._prefer_text_reply,
            speaks=speaks,
            modalities_set="modalities" in self.model_fields_set,
        )
        return build_request(messages, settings, stop=stop, options=options, stream=stream)

    async def _arequest(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        options: dict[str, Any],
        *,
        stream: bool,
        speaks: bool | None = None,
    ) -> tuple[WireRequest, bytes]:
        """`_request` and its JSON, in a worker thread when the messages hold more than text.

        Checking, transcoding and base64-coding a long recording takes up to a second:
        on the event loop that would stall every other conversation it serves.
        """

        def build() -> tuple[WireRequest, bytes]:
            request = self._request(messages, stop, options, stream=stream, speaks=speaks)
            return request, encode_body(request.body)

        if all(isinstance(message.content, str) for message in messages):
            return build()
        return await asyncio.to_thread(build)

    def _driver(
        self,
        request: WireRequest,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        *,
        chunks: bool,
        summed: bool = False,
        events: bool = False,
    ) -> ReplyDriver:
        assembler = ReplyAssembler(
            audio_output=self.audio_output,
            sample_rate=self.sample_rate,
            list_content=request.spoken,
        )
        client = self.client  # read once: a private attribute's lookup is not free
        return ReplyDriver(
            assembler,
            message_id=_run_message_id(run_manager) if run_manager is not None else None,
            chunks=chunks,
            summed=summed,
            events=events,
            redact=client.redact,
            # A call cut short never gets its usage chunk: its cost is looked up instead.
            on_cut=report_cut_short(run_manager, client, self.cost_wait_s),
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
        request = self._request(
            messages, stop, kwargs, stream=_wants_tokens(run_manager), speaks=self._speaks(kwargs)
        )
        driver = self._driver(request, run_manager, chunks=_has_handlers(run_manager))
        if not request.stream:
            return _result(driver.whole(self.client.post(request.body)))
        for _ in driver.steps(self.client.stream(request.body), run_manager):
            pass
        return _result(driver.message())

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        speaks = self._speaks(kwargs)
        request = self._request(messages, stop, kwargs, stream=True, speaks=speaks)
        driver = self._driver(request, run_manager, chunks=True, summed=True)
        for step in driver.steps(self.client.stream(request.body), run_manager):
            if step.chunk is not None:
                yield step.chunk

    def _stream_chat_model_events(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[dict[str, Any]]:
        """Native content-block events for `stream_events(version="v3")` and LangGraph v2."""
        speaks = self._speaks(kwargs)
        request = self._request(messages, stop, kwargs, stream=True, speaks=speaks)
        # Audio handlers listen to chunks: build them too, or v2 runs go unheard.
        driver = self._driver(request, run_manager, chunks=_has_handlers(run_manager), events=True)
        for step in driver.steps(self.client.stream(request.body), run_manager):
            yield from step.events

    # -- async ----------------------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        speaks = await self._aspeaks(kwargs)
        request, content = await self._arequest(
            messages, stop, kwargs, stream=_wants_tokens(run_manager), speaks=speaks
        )
        driver = self._driver(request, run_manager, chunks=_has_handlers(run_manager))
        if not request.stream:
            return _result(driver.whole(await self.client.apost(content)))
        async for _ in driver.asteps(self.client.astream(content), run_manager):
            pass
        return _result(await driver.amessage())

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        speaks = await self._aspeaks(kwargs)
        request, content = await self._arequest(messages, stop, kwargs, stream=True, speaks=speaks)
        driver = self._driver(request, run_manager, chunks=True, summed=True)
        async for step in driver.asteps(self.client.astream(content), run_manager):
            if step.chunk is not None:
                yield step.chunk

    async def _astream_chat_model_events(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Async native content-block events."""
        speaks = await self._aspeaks(kwargs)
        request, content = await self._arequest(messages, stop, kwargs, stream=True, speaks=speaks)
        driver = self._driver(request, run_manager, chunks=_has_handlers(run_manager), events=True)
        async for step in driver.asteps(self.client.astream(content), run_manager):
            for event in step.events:
                yield event

    # -- tools and structured output -----------------------------------------

    def _text_reply_copy(self) -> Self:
        copied = self.model_copy()
        copied._prefer_text_reply = True
        copied._connections_of = self  # nobody closes the copy: it uses ours
        return copied

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
            llm = self._text_reply_copy().bind_tools(
                [schema],
                tool_choice=name,
                strict=strict,
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
            llm = self._text_reply_copy().bind(
                response_format={"type": "json_schema", "json_schema": response_format},
                ls_structured_output_format=structured,
            )
            parser = _json_parser(schema, is_pydantic)
        elif method == "json_mode":
            llm = self._text_reply_copy().bind(
                response_format={"type": "json_object"},
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


def _run_message_id(run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun) -> str:
    # Chunks and the final reply of a run share one id, or LangGraph's message
    # stream shows the reply twice (once as chunks, once whole).
    return "-".join((LC_ID_PREFIX, str(run_manager.run_id)))


def _has_handlers(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> bool:
    return run_manager is not None and bool(run_manager.handlers)


def _wants_tokens(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> bool:
    """A streaming handler listens (astream_events, a voice pipeline): stream on the wire
    too, as langchain-core does for other chat models, so it gets tokens as they come."""
    handlers = run_manager.handlers if run_manager is not None else []
    return any(isinstance(h, _StreamingCallbackHandler) for h in handlers)


def _json_parser(schema: Any, is_pydantic: bool) -> Runnable[Any, Any]:
    if is_pydantic:
        return PydanticOutputParser(pydantic_object=schema)
    return JsonOutputParser()


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


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
