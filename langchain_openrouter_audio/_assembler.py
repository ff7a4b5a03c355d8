"""One assembler for a reply: OpenRouter chunks in, the finished `AIMessage` out.

`ReplyAssembler.feed` takes each decoded chunk (streamed `delta`s, or the
`message` of a whole reply) and returns a `Delta`: the transcript text, the
PCM bytes (each base64 piece decoded on its own, since pieces may be padded
or hold an odd number of bytes), the tool-call fragments. The assembler keeps
the parts; `finish()` builds the final message from them once, in linear time.

It takes what real servers send, not a tidier version of it (see the shapes
in the package's test server): chunks without `choices`, `content: null`,
`refusal`, `obfuscation`, the audio id before any data, `expires_at` after the
usage chunk, a trailing whole `message` that repeats the deltas, tool names
repeated in every fragment, surrogate pairs split across deltas. A field of
the wrong type in the reply raises `MalformedStreamError`; one in usage or
metadata is dropped with a warning, and the reply is kept.
"""

from __future__ import annotations

import binascii
import json
import logging
import math
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

from langchain_openrouter_audio._encoding import (
    PCM_SAMPLE_WIDTH,
    SpeechStore,
    b64decode_strict,
    wav_header,
    wav_pad,
)
from langchain_openrouter_audio._formats import FORMAT_TO_MIME, sniff_encoded_audio
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, wav_data
from langchain_openrouter_audio.errors import MalformedStreamError, StreamError

__all__ = ["AudioOutput", "Delta", "ReplyAssembler", "usage_metadata"]

logger = logging.getLogger("langchain_openrouter_audio")

AudioOutput = Literal["wav", "pcm"]

_TOKEN_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})
_HIGH_SURROGATE = re.compile("[\ud800-\udbff]$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_METADATA_FIELDS = (
    ("id", "id"),
    ("model", "model_name"),
    ("provider", "provider"),
    ("system_fingerprint", "system_fingerprint"),
    ("service_tier", "service_tier"),
)


@dataclass(slots=True)
class Delta:
    """What one or more OpenRouter chunks added to the reply.

    `b64` is the base64 text `pcm` arrived as, when it arrived as one piece:
    views reuse it instead of encoding the bytes again.
    """

    text: str = ""
    pcm: bytes = b""
    b64: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add_pcm(self, pcm: bytes, b64: str | None) -> None:
        if self.pcm:
            self.pcm += pcm
            self.b64 = None
        else:
            self.pcm, self.b64 = pcm, b64


@dataclass(slots=True)
class _ToolCallParts:
    id: str | None = None
    name: str | None = None
    args: list[str] = field(default_factory=list)


class _Malformed(Exception):
    """A field of the reply has the wrong type; the message names it."""


# The messages name the field and its type, never its value: a server may echo the key.
def _want(value: Any, kinds: type | tuple[type, ...], where: str) -> Any:
    if value is not None and not isinstance(value, kinds):
        raise _Malformed(f"{where} is a {type(value).__name__}")
    return value


def _need(value: Any, kinds: type, where: str) -> Any:
    if not isinstance(value, kinds):
        raise _Malformed(f"{where} is a {type(value).__name__}")
    return value


def usage_metadata(usage: dict[str, Any]) -> UsageMetadata:
    """Map OpenRouter's `usage` object onto LangChain's `UsageMetadata`.

    Raises:
        TypeError, ValueError: a count is not a number.
    """
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    # A cast, not a call: at Python 3.10 mypy reads core's NotRequired keys as required.
    result = cast(
        "UsageMetadata",
        {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": _count(usage.get("total_tokens")) or input_tokens + output_tokens,
        },
    )
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    in_details = InputTokenDetails()
    if prompt.get("audio_tokens") is not None:
        in_details["audio"] = _count(prompt["audio_tokens"])
    if prompt.get("cached_tokens") is not None:
        in_details["cache_read"] = _count(prompt["cached_tokens"])
    if prompt.get("cache_write_tokens") is not None:
        in_details["cache_creation"] = _count(prompt["cache_write_tokens"])
    out_details = OutputTokenDetails()
    if completion.get("audio_tokens") is not None:
        out_details["audio"] = _count(completion["audio_tokens"])
    if completion.get("reasoning_tokens") is not None:
        out_details["reasoning"] = _count(completion["reasoning_tokens"])
    if in_details:
        result["input_token_details"] = in_details
    if out_details:
        result["output_token_details"] = out_details
    return result


def _count(value: Any) -> int:
    if value is None:
        return 0
    if not _is_number(value):
        raise TypeError(f"a token count is a {type(value).__name__}, not a finite number")
    return int(value)


def _is_number(value: Any) -> bool:
    # JSON's 1e400 parses as inf, which int() refuses with OverflowError.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ReplyAssembler:
    """Accumulates one reply from OpenRouter chunks (streamed or not).

    Args:
        audio_output: `"wav"` to return speech as a WAV file, `"pcm"` for the
            raw PCM16 exactly as received.
        sample_rate: the PCM sample rate (24 kHz for gpt-audio models).
        list_content: build `content` as a list of blocks (audio replies)
            rather than a plain string (text-only replies).
    """

    def __init__(
        self,
        *,
        audio_output: AudioOutput = "wav",
        sample_rate: int = PCM_SAMPLE_RATE,
        list_content: bool = True,
    ) -> None:
        self.audio_output = audio_output
        self.sample_rate = sample_rate
        self.list_content = list_content
        self.started = time.perf_counter()
        self.text_parts: list[str] = []
        self.speech = SpeechStore()
        self.audio_id: str | None = None
        self.encoded: str | None = None
        """The container the audio came in (`"mp3"`, `"wav"`, ...) when it is not raw PCM."""
        self.expires_at: int | None = None
        self.tool_calls: dict[int, _ToolCallParts] = {}
        self.usage: dict[str, Any] | None = None
        self.logprobs: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.metadata: dict[str, Any] = {}
        self.first_text_at: float | None = None
        self.first_audio_at: float | None = None
        self.done = False
        """Set when the wire said the reply is complete (`[DONE]`, a whole reply)."""
        self._high_surrogate = ""
        self._warned = False
        self._message: AIMessage | None = None

    # -- input ---------------------------------------------------------------

    def feed(self, chunk: dict[str, Any], delta: Delta | None = None) -> Delta:
        """Take one decoded chunk; add what it brought to `delta` (a new one if None).

        Several chunks of one network read can share a `delta`. When a chunk
        fails, `delta` still holds everything fed before the bad field.

        Raises:
            StreamError: the chunk is OpenRouter's mid-stream error event.
            MalformedStreamError: a field of the reply has the wrong type.
        """
        if error := chunk.get("error"):
            raise _stream_error(error)
        if delta is None:
            delta = Delta()
        try:
            self._take_metadata(chunk)
            if (usage := chunk.get("usage")) is not None:
                self._take_usage(usage)
            choices = _want(chunk.get("choices"), list, "choices")
            for choice in choices or ():
                self._take_choice(_need(choice, dict, "a choice"), delta)
        except _Malformed as err:
            raise MalformedStreamError(f"OpenRouter sent a malformed chunk: {err}") from None
        return delta

    def _warn(self, what: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("OpenRouter sent %s; it was dropped, the reply is kept", what)

    def _take_metadata(self, chunk: dict[str, Any]) -> None:
        for src, dst in _METADATA_FIELDS:
            if dst in self.metadata or (value := chunk.get(src)) is None:
                continue
            if isinstance(value, str):
                self.metadata[dst] = value
            else:
                self._warn(f"a {src!r} of type {type(value).__name__}")

    def _take_usage(self, usage: Any) -> None:
        try:
            if not isinstance(usage, dict):
                raise TypeError(f"usage is {type(usage).__name__}")
            usage_metadata(usage)
        except (TypeError, ValueError, AttributeError, ArithmeticError) as err:
            self._warn(f"malformed usage ({err})")
            return
        self.usage = usage

    def _take_choice(self, choice: dict[str, Any], delta: Delta) -> None:
        if choice.get("index", 0) != 0:
            return  # n > 1 is not asked for; other choices would interleave
        if reason := _want(choice.get("finish_reason"), str, "finish_reason"):
            self.finish_reason = reason
            native = choice.get("native_finish_reason")
            if isinstance(native, str):
                self.metadata["native_finish_reason"] = native
        part = _want(choice.get("delta"), dict, "delta")
        if part is None:
            # A whole reply (non-streamed, or a trailing aggregate some gateways send).
            part = _want(choice.get("message"), dict, "message")
            if part is None:
                return
            if self.speech.size or self.text_parts or self.tool_calls:
                return  # the aggregate repeats what the deltas already gave
        if (logprobs := choice.get("logprobs")) is not None:
            self._take_logprobs(logprobs)
        content = _want(part.get("content"), (str, list), "content")
        if isinstance(content, list):
            content = "".join(_text_of(p) for p in content)
        if content:
            self._add_text(content, delta)
        if (audio := _want(part.get("audio"), dict, "audio")) is not None:
            self._take_audio(audio, delta, whole="delta" not in choice)
        tool_calls = _want(part.get("tool_calls"), list, "tool_calls")
        # Streamed fragments carry their call's `index`; a whole message's calls
        # carry none and are told apart by position.
        for position, fragment in enumerate(tool_calls or ()):
            fragment = _need(fragment, dict, "a tool call")
            index = _want(fragment.get("index", position), int, "tool_calls[].index")
            self._take_tool_call(fragment, position if index is None else index, delta)

    def _take_logprobs(self, logprobs: Any) -> None:
        # ChatOpenAI's shape: {"content": [per-token entries], "refusal": [...] or None}.
        if not isinstance(logprobs, dict):
            self._warn(f"logprobs of type {type(logprobs).__name__}")
            return
        if self.logprobs is None:
            self.logprobs = {"content": [], "refusal": None}
        for key in ("content", "refusal"):
            entries = logprobs.get(key)
            if isinstance(entries, list):
                if self.logprobs[key] is None:
                    self.logprobs[key] = []
                self.logprobs[key].extend(entries)
            elif entries is not None:
                self._warn(f"logprobs.{key} of type {type(entries).__name__}")

    def _take_audio(self, audio: dict[str, Any], delta: Delta, *, whole: bool) -> None:
        if isinstance(audio_id := audio.get("id"), str) and audio_id and not self.audio_id:
            self.audio_id = audio_id
        if (expires := audio.get("expires_at")) is not None:
            if _is_number(expires):
                self.expires_at = int(expires)
            else:
                self._warn(f"an audio expires_at of type {type(expires).__name__}")
        if transcript := _want(audio.get("transcript"), str, "audio.transcript"):
            self._add_text(transcript, delta)
        if data := _want(audio.get("data"), str, "audio.data"):
            try:
                pcm = b64decode_strict(data)
            except (binascii.Error, ValueError) as err:
                raise _Malformed(f"audio.data is not base64 ({err})") from None
            if not self.speech.size and self.encoded is None:
                fmt = sniff_encoded_audio(pcm)
                if fmt == "wav" and whole and _is_plain_wav(pcm, self.sample_rate):
                    pcm, data = _wav_pcm(pcm), None  # a relay's whole reply may come as a WAV
                elif fmt is not None:
                    # Music models send one MP3 (or WAV, ...), whatever format was
                    # asked for: keep its bytes as they are, never wrap them as PCM.
                    self.encoded = fmt
            if pcm:
                if self.first_audio_at is None:
                    self.first_audio_at = time.perf_counter()
                self.speech.add(pcm, data)
                delta.add_pcm(pcm, data)

    def _add_text(self, text: str, delta: Delta) -> None:
        if self._high_surrogate:
            text, self._high_surrogate = self._high_surrogate + text, ""
        if _SURROGATE.search(text):
            # A character outside the BMP may arrive as two JSON escapes in two deltas.
            if _HIGH_SURROGATE.search(text):
                text, self._high_surrogate = text[:-1], text[-1]
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if not text:
            return
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        self.text_parts.append(text)
        delta.text += text

    def _take_tool_call(self, fragment: dict[str, Any], index: int, delta: Delta) -> None:
        parts = self.tool_calls.setdefault(index, _ToolCallParts())
        function = _want(fragment.get("function"), dict, "tool_calls[].function") or {}
        call_id = _want(fragment.get("id"), str, "tool_calls[].id")
        name = _want(function.get("name"), str, "tool_calls[].function.name")
        args = function.get("arguments")
        if isinstance(args, dict):
            args = json.dumps(args)  # some relays send a whole call's arguments as an object
        args = _want(args, str, "tool_calls[].function.arguments") or ""
        # Some relays repeat the id and name in every fragment: keep each once.
        new_id = call_id if call_id and call_id != parts.id else None
        new_name = name if name and name != parts.name else None
        parts.id = call_id or parts.id
        parts.name = name or parts.name
        if args:
            parts.args.append(args)
        # Fragments of one call within one network read make one fragment.
        for pending in delta.tool_calls:
            if pending["index"] == index:
                pending["id"] = pending["id"] or new_id
                pending["name"] = pending["name"] or new_name
                pending["args"] += args
                return
        delta.tool_calls.append({"index": index, "id": new_id, "name": new_name, "args": args})

    def end_text(self) -> str:
        """Flush a high surrogate still waiting for its pair (as U+FFFD)."""
        if not self._high_surrogate:
            return ""
        self._high_surrogate = ""
        self.text_parts.append("\ufffd")
        return "\ufffd"

    @property
    def complete(self) -> bool:
        """Whether the reply ended as complete: a finish reason, `[DONE]`, a whole reply."""
        return self.done or self.finish_reason is not None

    # -- output --------------------------------------------------------------

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def pcm_mime_type(self) -> str:
        return f"audio/pcm;rate={self.sample_rate}"

    @property
    def stream_mime_type(self) -> str:
        """The MIME type of the audio as it streams: raw PCM, or the container it came in."""
        return FORMAT_TO_MIME[self.encoded] if self.encoded else self.pcm_mime_type

    def audio_block(self) -> dict[str, Any] | None:
        """The whole speech as one v1 `audio` block, or None without audio."""
        size = self.speech.size
        if not size:
            return None
        if self.encoded is not None:
            whole: dict[str, Any] = {"type": "audio", "base64": self.speech.encode()}
            whole["mime_type"] = FORMAT_TO_MIME[self.encoded]
            if self.audio_id:
                whole["id"] = self.audio_id
            return whole
        if self.audio_output == "wav":
            # The JUNK chunk pads the header to 54 bytes, a multiple of 3, so the
            # received base64 text can follow it without being re-encoded.
            head = wav_header(size, sample_rate=self.sample_rate, junk=2)
            mime, data = "audio/wav", self.speech.encode(head=head, tail=wav_pad(size))
        else:
            mime, data = self.pcm_mime_type, self.speech.encode()
        block: dict[str, Any] = {"type": "audio", "base64": data, "mime_type": mime}
        if self.audio_id:
            block["id"] = self.audio_id
        extras: dict[str, Any] = {"sample_rate": self.sample_rate}
        if self.expires_at is not None:
            extras["expires_at"] = self.expires_at
        block["extras"] = extras
        return block

    def response_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {**self.metadata, "model_provider": "openrouter"}
        if self.finish_reason is not None:
            meta["finish_reason"] = self.finish_reason
        if self.usage:
            for key in ("cost", "cost_details", "is_byok"):
                if key in self.usage:
                    meta[key] = self.usage[key]
        if self.audio_id:
            meta["audio_id"] = self.audio_id
        if self.expires_at is not None:
            meta["audio_expires_at"] = self.expires_at
        if self.logprobs is not None:
            # Whole, on the final message and the last chunk only: summed chunks must
            # not count a token twice.
            meta["logprobs"] = self.logprobs
        meta.update(self.timings())
        return meta

    def usage_metadata(self) -> UsageMetadata | None:
        # A usage with only a cost (speech is billed per character) counts no tokens.
        if not self.usage or not _TOKEN_KEYS.intersection(self.usage):
            return None
        return usage_metadata(self.usage)

    def timings(self) -> dict[str, float]:
        """Latency of this call, in seconds (and seconds of speech received)."""
        out = {"duration_s": time.perf_counter() - self.started}
        if self.first_text_at is not None:
            out["time_to_first_transcript_s"] = self.first_text_at - self.started
        if self.first_audio_at is not None:
            out["time_to_first_audio_s"] = self.first_audio_at - self.started
        if self.speech.size and self.encoded is None:
            out["audio_seconds"] = self.speech.size / (PCM_SAMPLE_WIDTH * self.sample_rate)
        return out

    def finalized_tool_calls(self) -> dict[int, dict[str, Any]]:
        """Each tool call by its stream index: a `tool_call`, or an
        `invalid_tool_call` when its arguments are not valid JSON."""
        out: dict[int, dict[str, Any]] = {}
        for index, parts in self.tool_calls.items():
            raw = {
                "id": parts.id,
                "function": {"name": parts.name or "", "arguments": "".join(parts.args) or "{}"},
            }
            try:
                parsed = parse_tool_call(raw, return_id=True)
            except Exception as err:
                out[index] = dict(make_invalid_tool_call(raw, str(err)))
            else:
                if parsed is not None:
                    out[index] = dict(parsed)
        return out

    def finish(self) -> AIMessage:
        """The reply as one `AIMessage`, built once from the parts (later calls reuse it)."""
        if self._message is None:
            self.end_text()
            calls = self.finalized_tool_calls().values()
            content: str | list[dict[str, Any]] = self.text
            if self.list_content or self.speech.size:
                content = [{"type": "text", "text": self.text}] if self.text_parts else []
                if (audio := self.audio_block()) is not None:
                    content.append(audio)
            self._message = AIMessage(
                content=content,  # type: ignore[arg-type]
                tool_calls=[c for c in calls if c["type"] == "tool_call"],
                invalid_tool_calls=[c for c in calls if c["type"] == "invalid_tool_call"],
                usage_metadata=self.usage_metadata(),
                response_metadata=self.response_metadata(),
            )
        return self._message


def _stream_error(error: Any) -> StreamError:
    error = error if isinstance(error, dict) else {"message": str(error)}
    code = error.get("code")
    metadata = error.get("metadata")
    return StreamError(
        f"OpenRouter reported an error mid-stream: {error.get('message') or 'unknown error'}",
        status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def _text_of(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and isinstance(text := part.get("text"), str):
        return text
    raise _Malformed(f"a content part is {type(part).__name__}")


def _is_plain_wav(wav: bytes, sample_rate: int) -> bool:
    """Whether a WAV holds PCM16 mono at `sample_rate`: what the PCM stream would have been."""
    pos = 12
    while pos + 8 <= len(wav):
        chunk_id, size = struct.unpack_from("<4sI", wav, pos)
        if chunk_id == b"fmt " and size >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", wav, pos + 8)
            return bool(tag == 1 and channels == 1 and rate == sample_rate and bits == 16)
        pos += 8 + size + (size & 1)
    return False


def _wav_pcm(wav: bytes) -> bytes:
    try:
        return wav_data(wav)
    except ValueError as err:
        raise _Malformed(f"audio.data is a corrupt WAV ({err})") from None
