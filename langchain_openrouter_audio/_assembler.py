"""One assembler for OpenRouter's stream: deltas in; chunks, events, message out.

`ReplyAssembler.feed` takes each decoded chunk of the SSE stream and returns
a `Delta`: the transcript text, the PCM bytes (each base64 piece decoded on
its own, since pieces may be padded or hold an odd number of bytes), the
tool-call fragments. Three views are built from those deltas:

* `ChunkView`: `AIMessageChunk`s for `stream()`/`astream()` and callbacks,
  with speech as raw-PCM `audio` blocks cut on 6-byte boundaries so that
  summing chunks with `+` yields one block of whole samples.
* `EventView`: langchain-core's content-block protocol events for
  `stream_events(version="v3")` and LangGraph's v2 message streaming.
* `ReplyAssembler.message()`: the final `AIMessage`, built once from the
  accumulated parts in linear time (no chunk-by-chunk `+`).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.outputs import ChatGenerationChunk

from langchain_openrouter_audio.audio import (
    PCM_SAMPLE_RATE,
    PCM_SAMPLE_WIDTH,
    b64encode_consuming,
    wav_header,
    wav_pad,
)
from langchain_openrouter_audio.errors import IncompleteStreamError, StreamError

__all__ = ["ChunkView", "Delta", "EventView", "ReplyAssembler", "usage_metadata"]

AudioOutput = Literal["wav", "pcm"]

# 6 = lcm(3, 2): a multiple of 3 bytes makes unpadded base64 that concatenates
# cleanly, and a multiple of 2 keeps every chunk whole 16-bit samples.
_SLICE = 6
_TEXT_INDEX = 0
_AUDIO_INDEX = 1


@dataclass(slots=True)
class Delta:
    """What one OpenRouter chunk added to the reply."""

    text: str = ""
    pcm: bytes = b""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _ToolCallParts:
    id: str | None = None
    name: str | None = None
    args: list[str] = field(default_factory=list)


def usage_metadata(usage: dict[str, Any]) -> UsageMetadata:
    """Map OpenRouter's `usage` object onto LangChain's `UsageMetadata`."""
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(usage.get("total_tokens") or input_tokens + output_tokens),
    )
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    in_details = InputTokenDetails()
    if prompt.get("audio_tokens") is not None:
        in_details["audio"] = int(prompt["audio_tokens"])
    if prompt.get("cached_tokens") is not None:
        in_details["cache_read"] = int(prompt["cached_tokens"])
    if prompt.get("cache_write_tokens") is not None:
        in_details["cache_creation"] = int(prompt["cache_write_tokens"])
    out_details = OutputTokenDetails()
    if completion.get("audio_tokens") is not None:
        out_details["audio"] = int(completion["audio_tokens"])
    if completion.get("reasoning_tokens") is not None:
        out_details["reasoning"] = int(completion["reasoning_tokens"])
    if in_details:
        result["input_token_details"] = in_details
    if out_details:
        result["output_token_details"] = out_details
    return result


class _Speech:
    """The speech received so far.

    Kept as the base64 text it arrived in while that text can simply be
    joined: every piece but the last holds a multiple of 3 bytes, so none
    carries `=` padding. The reply's block is then made by joining strings
    instead of decoding and re-encoding megabytes. Odd-sized pieces switch
    it to keeping bytes, encoded once at the end.
    """

    __slots__ = ("_last", "_pcm", "_text", "size")

    def __init__(self) -> None:
        self._text: list[str] | None = []
        self._pcm: list[bytes] = []
        self._last = 0
        self.size = 0

    def add(self, text: str, pcm: bytes) -> None:
        if self._text is not None and self._last % 3:
            # The previous piece ended mid base64 group: its text cannot be joined.
            self._pcm = [base64.b64decode(t) for t in self._text]
            self._text = None
        if self._text is not None:
            self._text.append(text)
        else:
            self._pcm.append(pcm)
        self._last = len(pcm)
        self.size += len(pcm)

    def encode(self, *, head: bytes = b"", tail: bytes = b"") -> str:
        """Base64 of `head + speech + tail`; `head` must be a multiple of 3 bytes.

        Empties the store: only the returned text is kept.
        """
        if self._text is None:
            return b64encode_consuming(self._pcm, head=head, tail=tail)
        texts, self._text = self._text, None
        end = ""
        if tail:
            # The last piece may end mid-group: re-encode just it, with the tail.
            last = base64.b64decode(texts.pop()) if texts else b""
            end = base64.b64encode(last + tail).decode("ascii")
        out = "".join([base64.b64encode(head).decode("ascii"), *texts, end])
        texts.clear()
        return out


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
        self.speech = _Speech()
        self.audio_id: str | None = None
        self.expires_at: int | None = None
        self.tool_calls: dict[int, _ToolCallParts] = {}
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.metadata: dict[str, Any] = {}
        self.first_text_at: float | None = None
        self.first_audio_at: float | None = None
        self._audio_block: dict[str, Any] | None = None
        self._encoded_len = 0

    # -- input ---------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> Delta:
        """Take one decoded chunk; return what it added.

        Raises:
            StreamError: the chunk is OpenRouter's mid-stream error event.
        """
        if chunk.get("error"):
            raise self._stream_error(chunk["error"])
        if not self.metadata:
            self._take_metadata(chunk)
        delta = Delta()
        if (usage := chunk.get("usage")) is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            self._take_choice(choice, delta)
        return delta

    def _take_metadata(self, chunk: dict[str, Any]) -> None:
        for src, dst in (
            ("id", "id"),
            ("model", "model_name"),
            ("provider", "provider"),
            ("system_fingerprint", "system_fingerprint"),
            ("service_tier", "service_tier"),
        ):
            if chunk.get(src) is not None:
                self.metadata[dst] = chunk[src]

    def _take_choice(self, choice: dict[str, Any], delta: Delta) -> None:
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            if choice.get("native_finish_reason") is not None:
                self.metadata["native_finish_reason"] = choice["native_finish_reason"]
        part = choice.get("delta")
        if part is None:
            # Non-streamed replies (and a trailing aggregate some gateways send).
            part = choice.get("message")
            if part is None:
                return
            if self.speech.size or self.text_parts or self.tool_calls:
                return  # the aggregate repeats what the deltas already gave
        if (content := part.get("content")) and isinstance(content, str):
            self._add_text(content, delta)
        audio = part.get("audio")
        if audio:
            self._take_audio(audio, delta)
        # Streamed fragments carry their call's `index`; a whole message's calls
        # carry none and are told apart by position.
        for position, fragment in enumerate(part.get("tool_calls") or ()):
            self._take_tool_call(fragment, fragment.get("index", position), delta)

    def _take_audio(self, audio: dict[str, Any], delta: Delta) -> None:
        if audio.get("id") and not self.audio_id:
            self.audio_id = audio["id"]
        if audio.get("expires_at") is not None:
            self.expires_at = int(audio["expires_at"])
        if transcript := audio.get("transcript"):
            self._add_text(transcript, delta)
        if data := audio.get("data"):
            try:
                pcm = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as err:
                raise IncompleteStreamError(
                    f"OpenRouter sent audio that is not base64: {err}", partial=self.message()
                ) from None
            if pcm:
                if self.first_audio_at is None:
                    self.first_audio_at = time.perf_counter()
                self.speech.add(data, pcm)
                delta.pcm = delta.pcm + pcm if delta.pcm else pcm

    def _add_text(self, text: str, delta: Delta) -> None:
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        self.text_parts.append(text)
        delta.text += text

    def _take_tool_call(self, fragment: dict[str, Any], index: int, delta: Delta) -> None:
        parts = self.tool_calls.setdefault(index, _ToolCallParts())
        function = fragment.get("function") or {}
        if fragment.get("id"):
            parts.id = fragment["id"]
        if function.get("name"):
            parts.name = function["name"]
        args = function.get("arguments") or ""
        if args:
            parts.args.append(args)
        delta.tool_calls.append(
            {"index": index, "id": fragment.get("id"), "name": function.get("name"), "args": args}
        )

    def _stream_error(self, error: Any) -> StreamError:
        error = error if isinstance(error, dict) else {"message": str(error)}
        code = error.get("code")
        return StreamError(
            f"OpenRouter reported an error mid-stream: {error.get('message') or 'unknown error'}",
            partial=self.message(),
            status_code=code if isinstance(code, int) else None,
            code=code if isinstance(code, (int, str)) else None,
            metadata=error.get("metadata") if isinstance(error.get("metadata"), dict) else None,
        )

    def check_complete(self) -> None:
        """Raise if the stream ended without a finish reason (a short reply)."""
        if self.finish_reason is None:
            raise IncompleteStreamError(
                "the stream ended without a finish reason; the reply is incomplete",
                partial=self.message(),
            )

    # -- output --------------------------------------------------------------

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def pcm_mime_type(self) -> str:
        return f"audio/pcm;rate={self.sample_rate}"

    def audio_block(self) -> dict[str, Any] | None:
        """The whole speech as one v1 `audio` block, or None without audio.

        Called once the reply has ended; the block is built once and kept.
        """
        size = self.speech.size
        if not size:
            return None
        if self._audio_block is not None:
            # Encoding consumed the stored pieces: the block cannot grow afterwards.
            if self._encoded_len != size:
                raise RuntimeError("audio arrived after the reply's audio block was built")
            return self._audio_block
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
        self._audio_block, self._encoded_len = block, size
        return block

    def content(self) -> str | list[dict[str, Any]]:
        if not self.list_content:
            return self.text
        blocks: list[dict[str, Any]] = []
        if self.text_parts:
            blocks.append({"type": "text", "text": self.text})
        if (audio := self.audio_block()) is not None:
            blocks.append(audio)
        return blocks

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
        meta.update(self.timings())
        return meta

    def timings(self) -> dict[str, float]:
        """Latency of this call, in seconds (and seconds of speech received)."""
        out = {"duration_s": time.perf_counter() - self.started}
        if self.first_text_at is not None:
            out["time_to_first_transcript_s"] = self.first_text_at - self.started
        if self.first_audio_at is not None:
            out["time_to_first_audio_s"] = self.first_audio_at - self.started
        if self.speech.size:
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

    def message(self) -> AIMessage:
        """The reply so far as one `AIMessage`."""
        calls = self.finalized_tool_calls().values()
        return AIMessage(
            content=self.content(),  # type: ignore[arg-type]
            tool_calls=[c for c in calls if c["type"] == "tool_call"],
            invalid_tool_calls=[c for c in calls if c["type"] == "invalid_tool_call"],
            usage_metadata=usage_metadata(self.usage) if self.usage else None,
            response_metadata=self.response_metadata(),
        )


class _PcmSlicer:
    """Cuts a PCM byte stream on 6-byte boundaries, carrying the remainder."""

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def take(self, pcm: bytes) -> bytes:
        data = self._carry + pcm if self._carry else pcm
        cut = len(data) - len(data) % _SLICE
        self._carry = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return rest


class ChunkView:
    """`ChatGenerationChunk`s for `stream()` from the assembler's deltas."""

    def __init__(self, assembler: ReplyAssembler) -> None:
        self._asm = assembler
        self._slicer = _PcmSlicer()
        self._audio_started = False

    def chunk(self, delta: Delta) -> ChatGenerationChunk | None:
        """The chunk for one delta, or None when it carries nothing to show."""
        return self._chunk(delta, self._slicer.take(delta.pcm) if delta.pcm else b"")

    def _chunk(self, delta: Delta, pcm: bytes) -> ChatGenerationChunk | None:
        content = self._content(delta.text, pcm)
        if not content and not delta.tool_calls:
            return None
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,  # type: ignore[arg-type]
                tool_call_chunks=[
                    tool_call_chunk(name=t["name"], args=t["args"], id=t["id"], index=t["index"])
                    for t in delta.tool_calls
                ],
            )
        )

    def rest(self) -> ChatGenerationChunk | None:
        """A chunk with the PCM bytes held back for alignment, if any.

        For failures: those bytes arrived, so they are delivered too.
        """
        pcm = self._slicer.flush()
        return self._chunk(Delta(), pcm) if pcm else None

    def last(self) -> ChatGenerationChunk:
        """The closing chunk: leftover PCM bytes, usage and response metadata."""
        asm = self._asm
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=self._content("", self._slicer.flush()),  # type: ignore[arg-type]
                usage_metadata=usage_metadata(asm.usage) if asm.usage else None,
                response_metadata=asm.response_metadata(),
                chunk_position="last",
            )
        )

    def _content(self, text: str, pcm: bytes) -> str | list[dict[str, Any]]:
        if not self._asm.list_content:
            return text
        blocks: list[dict[str, Any]] = []
        if text:
            blocks.append({"type": "text", "text": text, "index": _TEXT_INDEX})
        if pcm:
            block: dict[str, Any] = {
                "type": "audio",
                "base64": base64.b64encode(pcm).decode("ascii"),
                "index": _AUDIO_INDEX,
            }
            if not self._audio_started:
                # Only once: chunk `+` concatenates strings, so a repeated
                # mime_type or id would come out doubled.
                self._audio_started = True
                block["mime_type"] = self._asm.pcm_mime_type
                if self._asm.audio_id:
                    block["id"] = self._asm.audio_id
            blocks.append(block)
        return blocks


class EventView:
    """Content-block protocol events (`MessagesData`) from the same deltas.

    Audio streams as `data-delta` events of raw PCM (6-byte aligned); its
    `content-block-finish` carries the whole clip, as `invoke` returns it.
    """

    def __init__(self, assembler: ReplyAssembler, message_id: str | None = None) -> None:
        self._asm = assembler
        self._message_id = message_id or ""
        self._slicer = _PcmSlicer()
        self._started = False
        self._next_index = 0
        self._text_index: int | None = None
        self._audio_index: int | None = None
        self._tool_index: dict[int, int] = {}

    def _claim(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def events(self, delta: Delta) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            start: dict[str, Any] = {"event": "message-start", "role": "ai", "id": self._message_id}
            meta = {"provider": "openrouter"}
            if model := self._asm.metadata.get("model_name"):
                meta["model"] = model
            start["metadata"] = meta
            out.append(start)
        if delta.text:
            if self._text_index is None:
                self._text_index = self._claim()
                out.append(_block_start(self._text_index, {"type": "text", "text": ""}))
            out.append(_block_delta(self._text_index, {"type": "text-delta", "text": delta.text}))
        if delta.pcm and (pcm := self._slicer.take(delta.pcm)):
            out.extend(self._audio_delta(pcm))
        for fragment in delta.tool_calls:
            index = self._tool_index.get(fragment["index"])
            if index is None:
                index = self._tool_index[fragment["index"]] = self._claim()
                skeleton = {
                    "type": "tool_call_chunk",
                    "id": fragment["id"],
                    "name": fragment["name"],
                    "args": "",
                    "index": fragment["index"],
                }
                out.append(_block_start(index, skeleton))
            if args := fragment["args"]:
                out.append(_block_delta(index, {"type": "tool-call-delta", "args": args}))
        return out

    def _audio_delta(self, pcm: bytes) -> list[dict[str, Any]]:
        out = []
        if self._audio_index is None:
            self._audio_index = self._claim()
            skeleton: dict[str, Any] = {"type": "audio", "mime_type": self._asm.pcm_mime_type}
            if self._asm.audio_id:
                skeleton["id"] = self._asm.audio_id
            out.append(_block_start(self._audio_index, skeleton))
        data = base64.b64encode(pcm).decode("ascii")
        delta = {"type": "data-delta", "data": data, "encoding": "base64"}
        out.append(_block_delta(self._audio_index, delta))
        return out

    def rest(self) -> list[dict[str, Any]]:
        """A `data-delta` with the PCM bytes held back for alignment, for failures."""
        rest = self._slicer.flush()
        return self._audio_delta(rest) if rest else []

    def finish(self) -> list[dict[str, Any]]:
        """Flush leftover audio, finalize every block, and close the message."""
        out = self.events(Delta())  # emits message-start for an empty reply
        out.extend(self.rest())
        asm = self._asm
        if self._text_index is not None:
            out.append(_block_finish(self._text_index, {"type": "text", "text": asm.text}))
        if self._audio_index is not None and (block := asm.audio_block()) is not None:
            out.append(_block_finish(self._audio_index, block))
        calls = asm.finalized_tool_calls()
        for stream_index, wire_index in self._tool_index.items():
            if (call := calls.get(stream_index)) is not None:
                out.append(_block_finish(wire_index, call))
        finish: dict[str, Any] = {"event": "message-finish", "metadata": asm.response_metadata()}
        if asm.usage:
            finish["usage"] = dict(usage_metadata(asm.usage))
        out.append(finish)
        return out


def _block_start(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-start", "index": index, "content": content}


def _block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-delta", "index": index, "delta": delta}


def _block_finish(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-finish", "index": index, "content": content}
