"""LangChain messages, tools and options -> an OpenRouter chat-completions body.

`build_request` is the one entry point. Everything here is pure and runs
before any I/O, so bad input (an unknown audio format, corrupt audio, an
audio URL, an oversize clip, a bad tool schema, a request the model is known
to refuse) fails with a `ValueError` before a request is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.block_translators.openai import convert_to_openai_data_block

from langchain_openrouter_audio import _transcode
from langchain_openrouter_audio._encoding import decode_base64, encode_base64
from langchain_openrouter_audio._formats import audio_format_for_mime, check_audio_bytes
from langchain_openrouter_audio.audio import resolve_audio_block

__all__ = [
    "AUDIO_MODEL_PREFIXES",
    "RequestSettings",
    "WireRequest",
    "build_request",
    "can_speak",
    "cannot_speak_message",
    "convert_messages",
    "format_tool_choice",
    "is_audio_model",
    "validate_tool",
]

_DATA_URI = re.compile(r"^data:(?P<mime>[^;,]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INPUT_AUDIO_FORMATS = {"wav", "mp3", "aiff", "aac", "ogg", "flac", "m4a", "pcm16", "pcm24"}


# Options of the client itself; given per call they would go to OpenRouter as body fields.
_CLIENT_OPTIONS = frozenset(
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


AUDIO_MODEL_PREFIXES = ("openai/gpt-audio", "openai/gpt-4o-audio", "openai/gpt-4o-mini-audio")
MUSIC_MODEL_PREFIXES = ("google/lyria-",)
"""Google's Lyria music models: audio out (one MP3) on chat completions."""


def is_audio_model(model: str) -> bool:
    """OpenRouter's gpt-audio family: speech in and out, and never text in, text out."""
    return model.startswith(AUDIO_MODEL_PREFIXES)


def can_speak(model: str) -> bool:
    """Whether a chat model is known to produce audio (`output_modalities` has "audio")."""
    return model.startswith(AUDIO_MODEL_PREFIXES + MUSIC_MODEL_PREFIXES)


def cannot_speak_message(model: str) -> str:
    """Why `model` is not asked for audio, and what to use instead."""
    return (
        f"{model} cannot answer in audio (its output is text): audio replies come from "
        "openai/gpt-audio, openai/gpt-audio-mini and openai/gpt-4o-audio-preview (and Google "
        "Lyria for music). To speak another model's replies, pipe them into a TTS model: "
        f"ChatOpenRouterAudio(model={model!r}) | OpenRouterSpeech(); or pass "
        "modalities=['text'] (or speaks=True for a new audio model this package does not know)"
    )


@dataclass(frozen=True)
class RequestSettings:
    """The model's defaults for every request it sends."""

    model: str
    modalities: Sequence[str]
    voice: str
    body_params: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    stop: list[str] | str | None = None
    streaming: bool = False
    max_audio_bytes: int = 20 * 1024 * 1024
    prefer_text_reply: bool = False
    """Answer in text when the question holds audio (structured output)."""
    speaks: bool | None = None
    """Whether the model produces audio: None to go by the known audio models."""
    modalities_set: bool = True
    """The modalities were chosen by the user (else they follow the per-call model)."""


@dataclass(frozen=True)
class WireRequest:
    """A request body ready to send, and how its reply comes back."""

    body: dict[str, Any]
    spoken: bool
    """The reply is speech (audio blocks), not plain text."""

    @property
    def stream(self) -> bool:
        return bool(self.body["stream"])


def build_request(
    messages: Sequence[BaseMessage],
    settings: RequestSettings,
    *,
    stop: list[str] | None,
    options: Mapping[str, Any],
    stream: bool,
) -> WireRequest:
    """The request for `messages` with per-call `options` over the model's `settings`.

    Raises:
        ValueError: bad input, a client option given per call, or a request
            the model is known to refuse.
    """
    kwargs = dict(options)
    kwargs.pop("stream", None)
    if misplaced := sorted(_CLIENT_OPTIONS.intersection(kwargs)):
        msg = (
            f"{misplaced} configure the client, not the request: set them on the model, "
            f"e.g. ChatOpenRouterAudio({misplaced[0]}=...)"
        )
        raise ValueError(msg)
    _refuse_file_name_prompt(messages)
    wire_messages = convert_messages(messages, max_audio_bytes=settings.max_audio_bytes)
    heard = _has_input_audio(wire_messages)
    model = kwargs.pop("model", settings.model)
    speaks = settings.speaks if settings.speaks is not None else can_speak(model)
    if "modalities" in kwargs:
        modalities = list(kwargs.pop("modalities"))
    elif settings.modalities_set:
        modalities = list(settings.modalities)
    else:
        # Unset: they follow the model of this call (a per-call model brings its own).
        modalities = ["text", "audio"] if speaks else ["text"]
    if settings.prefer_text_reply and heard:
        # Speaking a JSON object helps nobody; without audio in, the model's
        # modalities stay, since gpt-audio models refuse text in and text out.
        modalities = ["text"]
    spoken = "audio" in modalities
    if spoken and not speaks:
        raise ValueError(cannot_speak_message(model))
    if not spoken and not heard and is_audio_model(model):
        msg = (
            f"{model} answers only when the request holds audio: with modalities=['text'] "
            "the question must include an audio block (e.g. audio_block_from_file(...)); "
            "for a text question keep the default modalities=['text', 'audio']"
        )
        raise ValueError(msg)
    voice = kwargs.pop("voice", settings.voice)
    body: dict[str, Any] = {
        "model": model,
        "messages": wire_messages,
        **settings.body_params,
        **settings.model_kwargs,
        **kwargs,
        "modalities": modalities,
        # OpenRouter gives speech only on a stream, and only as pcm16.
        "stream": stream or spoken or settings.streaming,
    }
    if spoken:
        body["audio"] = {"voice": voice, "format": "pcm16"}
    if wire_stop := stop if stop is not None else settings.stop:
        body["stop"] = wire_stop
    return WireRequest(body, spoken)


_AUDIO_FILE_NAME = re.compile(
    r"^\S+\.(wav|mp3|m4a|mp4|ogg|oga|opus|flac|aac|aiff|webm)$", re.IGNORECASE
)


def _refuse_file_name_prompt(messages: Sequence[BaseMessage]) -> None:
    """A question that is only an audio file's name meant the file: say how to send it."""
    last = messages[-1] if messages else None
    if not isinstance(last, HumanMessage):
        return
    content = last.content
    text = content if isinstance(content, str) else None
    if isinstance(content, list) and len(content) == 1:
        only = content[0]
        text = only if isinstance(only, str) else None
        if isinstance(only, dict) and only.get("type") == "text":
            text = str(only.get("text", ""))
    if text is not None and _AUDIO_FILE_NAME.match(text.strip()):
        name = text.strip()
        msg = (
            f"the question is only the file name {name!r}, which would be sent as text; "
            f"to send the recording, use HumanMessage(content=[audio_block_from_file({name!r})])"
        )
        raise ValueError(msg)


def _has_input_audio(wire_messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "input_audio"
        for message in wire_messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
    )


def convert_messages(
    messages: Sequence[BaseMessage], *, max_audio_bytes: int
) -> list[dict[str, Any]]:
    """Map LangChain messages onto OpenRouter's `messages` list."""
    return [_convert_message(m, max_audio_bytes=max_audio_bytes) for m in messages]


def _convert_message(message: BaseMessage, *, max_audio_bytes: int) -> dict[str, Any]:
    if isinstance(message, AIMessage):
        return _assistant_turn(message)
    if isinstance(message, ToolMessage):
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _plain_text(message.content),
        }
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ChatMessage):
        role = message.role
    elif isinstance(message, FunctionMessage):
        return {"role": "function", "name": message.name, "content": _plain_text(message.content)}
    else:
        raise ValueError(f"unsupported message type: {type(message).__name__}")
    out: dict[str, Any] = {"role": role, "content": _user_content(message.content, max_audio_bytes)}
    if message.name:
        out["name"] = message.name
    return out


def _assistant_turn(message: AIMessage) -> dict[str, Any]:
    # Earlier spoken replies go back as their transcript: OpenRouter takes no
    # assistant audio, and resending megabytes of speech would be waste.
    out: dict[str, Any] = {"role": "assistant", "content": _plain_text(message.content) or None}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
            }
            for call in message.tool_calls
        ]
    elif out["content"] is None:
        out["content"] = ""
    if message.name:
        out["name"] = message.name
    return out


def _plain_text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def _user_content(content: str | list[Any], max_audio_bytes: int) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        if isinstance(block, str):
            parts.append({"type": "text", "text": block})
            continue
        if not isinstance(block, dict):
            raise ValueError(f"content block {i} is a {type(block).__name__}, not a dict")
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "audio":
            parts.append(_input_audio_from_block(block, max_audio_bytes, i))
        elif kind == "input_audio":
            parts.append(_checked_input_audio(block, max_audio_bytes, i))
        elif kind in ("image", "file"):
            parts.append(convert_to_openai_data_block(block))
        elif kind == "image_url":
            parts.append(block)
        else:
            raise ValueError(f"content block {i} has unsupported type {kind!r}")
    return parts


def _input_audio_from_block(block: dict[str, Any], max_bytes: int, i: int) -> dict[str, Any]:
    what = f"audio block {i}"
    # Raw bytes in `data`, or a `path` on disk: read them (within max_bytes).
    block = resolve_audio_block(block, max_bytes=max_bytes, what=what)
    data = block.get("base64") or block.get("data")
    mime = block.get("mime_type")
    url = block.get("url")
    if not data and isinstance(url, str) and (match := _DATA_URI.match(url)):
        data, mime = match["data"], mime or match["mime"]
    elif not data and url:
        msg = (
            f"{what} has a url; OpenRouter does not fetch audio URLs. Send the bytes "
            "instead, e.g. audio_block_from_file(path)"
        )
        raise ValueError(msg)
    if block.get("file_id") and not data:
        raise ValueError(f"{what} has a file_id; OpenRouter takes only base64 audio")
    if not isinstance(data, str) or not data:
        raise ValueError(f"{what} has no base64 data")
    if not mime:
        raise ValueError(f"{what} has no mime_type (e.g. 'audio/wav')")
    if _transcode.needs_transcode(str(mime)):
        # Browsers record webm/ogg with opus, which OpenAI's audio models refuse.
        data = _clean_base64(data)
        _check_size(data, max_bytes, what)
        raw = decode_base64(data, what=what)
        try:
            wav = _transcode.transcode_to_wav(raw, str(mime), max_bytes=max_bytes)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
        # Our own WAV, already bounded by max_bytes: no need to decode and check it again.
        wav_b64 = encode_base64(wav)
        return {"type": "input_audio", "input_audio": {"data": wav_b64, "format": "wav"}}
    fmt = audio_format_for_mime(str(mime))
    return _input_audio(data, fmt, max_bytes, what)


def _checked_input_audio(block: dict[str, Any], max_bytes: int, i: int) -> dict[str, Any]:
    what = f"input_audio block {i}"
    payload = block.get("input_audio")
    if not isinstance(payload, dict):
        raise ValueError(f"{what} has no 'input_audio' object")
    data, fmt = payload.get("data"), payload.get("format")
    if fmt not in _INPUT_AUDIO_FORMATS:
        allowed = ", ".join(sorted(_INPUT_AUDIO_FORMATS))
        raise ValueError(f"{what} has unsupported format {fmt!r}; OpenRouter accepts {allowed}")
    if not isinstance(data, str) or not data:
        raise ValueError(f"{what} has no base64 data")
    return _input_audio(data, str(fmt), max_bytes, what)


def _input_audio(data: str, fmt: str, max_bytes: int, what: str) -> dict[str, Any]:
    data = _clean_base64(data)
    _check_size(data, max_bytes, what)
    raw = decode_base64(data, what=what)
    check_audio_bytes(raw, fmt, what=what)
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


def _clean_base64(data: str) -> str:
    """The base64 text itself: no `data:` prefix, no MIME-style line breaks."""
    if match := _DATA_URI.match(data):
        data = match["data"]
    if any(c.isspace() for c in data[:80]) or any(c.isspace() for c in data[-80:]):
        data = "".join(data.split())  # MIME-style base64 wrapped at 76 columns
    return data


def _check_size(data: str, max_bytes: int, what: str) -> None:
    # From the base64 length: no point decoding 200 MB to refuse it.
    approx = len(data) * 3 // 4
    if approx > max_bytes + 2:
        raise ValueError(f"{what} is {approx} bytes, over max_audio_bytes={max_bytes}")


def validate_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Check an OpenAI-format tool before it is sent.

    Raises:
        ValueError: the name is not 1-64 of `[a-zA-Z0-9_-]`, or `parameters`
            is not a JSON-schema object.
    """
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise ValueError(f"tool {tool!r} is not a function tool")
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ValueError(f"tool name {name!r} must be 1-64 characters of a-z, A-Z, 0-9, _ or -")
    params = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(params, dict) or params.get("type", "object") != "object":
        raise ValueError(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
    try:
        json.dumps(params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"tool {name!r}: parameters are not JSON-serializable: {err}") from None
    return tool


def format_tool_choice(
    tool_choice: str | bool | dict[str, Any], tool_names: Sequence[str]
) -> str | dict[str, Any]:
    """Map LangChain's `tool_choice` spellings onto OpenRouter's."""
    if tool_choice is True or tool_choice == "any":
        return "required"
    if tool_choice is False:
        return "none"
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
        if tool_choice.get("type") in ("function", "tool") and name not in tool_names:
            raise ValueError(f"tool_choice names {name!r}, which is not bound; have {tool_names}")
        return tool_choice
    if tool_choice in ("auto", "none", "required"):
        return tool_choice
    if isinstance(tool_choice, str):
        if tool_choice not in tool_names:
            raise ValueError(f"tool_choice {tool_choice!r} names no bound tool; have {tool_names}")
        return {"type": "function", "function": {"name": tool_choice}}
    raise ValueError(f"unsupported tool_choice {tool_choice!r}")
