"""`OpenRouterTranscription`: speech to text through OpenRouter's `/audio/transcriptions`.

Turns a recording into text, so that any chat model (one that only reads
text) can answer what was said.

```python
from langchain_openrouter_audio import OpenRouterTranscription

stt = OpenRouterTranscription()  # openai/whisper-1; reads OPENROUTER_API_KEY
text = stt.invoke(open("question.wav", "rb").read())
```
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
)
from pydantic import ConfigDict, Field, field_validator

from langchain_openrouter_audio._client import encode_body
from langchain_openrouter_audio._connection import OpenRouterConnection, provider_body
from langchain_openrouter_audio._encoding import decode_base64, wav_header, wav_pad
from langchain_openrouter_audio._formats import audio_format_for_mime, sniff_audio_format
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, audio_block_data, pcm_rate

__all__ = ["OpenRouterTranscription", "TranscriptionInput"]

TRANSCRIPTIONS_PATH = "/audio/transcriptions"

TranscriptionInput = Union[  # noqa: UP007 - a runtime alias, spelt for Python 3.10
    bytes, bytearray, dict[str, Any], BaseMessage, Sequence[BaseMessage]
]
"""Audio bytes, an `audio` content block, or a message (or messages) holding one."""

# Formats the endpoint takes (`input_audio.format`); support varies by provider.
_STT_FORMATS = frozenset({"wav", "mp3", "flac", "m4a", "ogg", "webm", "aac"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_NOT_A_PATH = (
    "OpenRouterTranscription takes audio, not a file name: pass the bytes "
    "(Path({0!r}).read_bytes()) or audio_block_from_file({0!r})"
)


class OpenRouterTranscription(OpenRouterConnection, RunnableSerializable[TranscriptionInput, str]):
    """Speech to text with OpenRouter's transcription models, as a LangChain runnable.

    Input: audio bytes (WAV, MP3, FLAC, OGG, M4A, AAC, WebM: sniffed), an
    `audio` content block (`audio_block_from_file(...)`; raw PCM blocks are
    wrapped in a WAV), or a message holding one (the last audio block of the
    last message that has one). Output: the transcript, a `str`.

    ```python
    from langchain_openrouter_audio import OpenRouterTranscription, audio_block_from_file

    stt = OpenRouterTranscription(language="en")
    stt.invoke(audio_block_from_file("question.wav"))  # 'What is the weather like ...?'
    ```

    The call shows up as a model run in callbacks and traces; its billed
    `usage.cost` reaches `get_openrouter_callback()`. Failures raise the same
    typed errors as the chat model (`RateLimitError`, `BadRequestError`, ...)
    after the same retries; bad input raises `ValueError` before any request.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="openai/whisper-1", alias="model_name")
    """Transcription model slug (`openai/whisper-1`, `openai/gpt-4o-transcribe`, ...)."""
    language: str | None = None
    """ISO-639-1 code of the speech (`"en"`); None: detected."""
    temperature: float | None = None
    """Sampling temperature, 0-1."""
    provider_options: dict[str, dict[str, Any]] | None = None
    """Passthrough options per provider slug, e.g. `{"groq": {"prompt": "OpenRouter"}}`."""
    max_audio_bytes: int = 20 * 1024 * 1024
    """Largest clip accepted, in bytes."""

    @field_validator("temperature")
    @classmethod
    def _check_temperature(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"temperature must be between 0 and 1, got {value}")
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is not None and not (value.isalpha() and 2 <= len(value) <= 3):
            raise ValueError(f"language must be an ISO-639-1 code such as 'en', got {value!r}")
        return value

    # -- request --------------------------------------------------------------

    def _body(self, audio: Any) -> dict[str, Any]:
        """The request body; bad input fails here, before any network call."""
        data, fmt = _audio_of(audio, self.max_audio_bytes)
        body: dict[str, Any] = {
            "model": self.model,
            "input_audio": {"data": base64.b64encode(data).decode("ascii"), "format": fmt},
        }
        if self.language is not None:
            body["language"] = self.language
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if (provider := provider_body(self.provider_options)) is not None:
            body["provider"] = provider
        return body

    def _serialized(self) -> dict[str, Any]:
        return {
            "lc": 1,
            "type": "not_implemented",
            "id": ["langchain_openrouter_audio", "OpenRouterTranscription"],
            "name": "OpenRouterTranscription",
        }

    def _result(self, reply: dict[str, Any], gen_id: str | None) -> tuple[str, LLMResult]:
        text = reply.get("text")
        if not isinstance(text, str):
            raise ValueError("OpenRouter sent a transcription reply without text")
        usage: dict[str, Any] = reply["usage"] if isinstance(reply.get("usage"), dict) else {}
        meta: dict[str, Any] = {"model_name": self.model, "model_provider": "openrouter"}
        if gen_id:
            meta["id"] = gen_id
        cost = usage.get("cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            meta["cost"] = cost
        meta["usage"] = usage
        message = AIMessage(content=text, response_metadata=meta)
        return text, LLMResult(generations=[[ChatGeneration(message=message)]])

    # -- runnable -------------------------------------------------------------

    def invoke(
        self, input: TranscriptionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """Transcribe `input`; the transcript."""
        body = self._body(input)
        config = ensure_config(config)
        manager = get_callback_manager_for_config(config)
        (run,) = manager.on_llm_start(
            self._serialized(),
            [_describe(body)],
            name=config.get("run_name") or "OpenRouterTranscription",
            run_id=config.pop("run_id", None) or uuid.uuid4(),
            invocation_params={k: v for k, v in body.items() if k != "input_audio"},
        )
        return self._run(body, run)

    def _run(self, body: dict[str, Any], run: CallbackManagerForLLMRun) -> str:
        try:
            reply, headers = self.client.post_json(TRANSCRIPTIONS_PATH, body)
            text, result = self._result(reply, headers.get("x-generation-id"))
        except BaseException as err:
            run.on_llm_error(err)
            raise
        run.on_llm_end(result)
        return text

    async def ainvoke(
        self, input: TranscriptionInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """Async `invoke`; the audio is checked and coded in a worker thread.

        Decoding, checking and base64-coding a clip of megabytes takes tens of
        milliseconds: on the event loop that would stall every other conversation it serves.
        """

        def build() -> tuple[dict[str, Any], bytes]:
            body = self._body(input)
            return body, encode_body(body)

        body, content = await asyncio.to_thread(build)
        config = ensure_config(config)
        manager = get_async_callback_manager_for_config(config)
        (run,) = await manager.on_llm_start(
            self._serialized(),
            [_describe(body)],
            name=config.get("run_name") or "OpenRouterTranscription",
            run_id=config.pop("run_id", None) or uuid.uuid4(),
            invocation_params={k: v for k, v in body.items() if k != "input_audio"},
        )
        return await self._arun(content, run)

    async def _arun(self, content: bytes, run: AsyncCallbackManagerForLLMRun) -> str:
        try:
            reply, headers = await self.client.apost_json(TRANSCRIPTIONS_PATH, content)
            text, result = self._result(reply, headers.get("x-generation-id"))
        except BaseException as err:
            await run.on_llm_error(err)
            raise
        await run.on_llm_end(result)
        return text


def _describe(body: dict[str, Any]) -> str:
    audio = body["input_audio"]
    size = len(audio["data"]) * 3 // 4
    return f"<{audio['format']} audio, about {size} bytes>"


def _audio_of(audio: Any, max_bytes: int) -> tuple[bytes, str]:
    """The bytes and `input_audio.format` of whatever audio was given."""
    if isinstance(audio, (str, Path)):
        raise ValueError(_NOT_A_PATH.format(str(audio)))
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return _checked(bytes(audio), None, max_bytes, "the audio")
    if isinstance(audio, dict):
        return _from_block(audio, max_bytes)
    if isinstance(audio, BaseMessage):
        return _from_block(_last_audio_block([audio]), max_bytes)
    if isinstance(audio, Sequence) and all(isinstance(m, BaseMessage) for m in audio):
        return _from_block(_last_audio_block(list(audio)), max_bytes)
    kind = type(audio).__name__
    raise ValueError(
        f"OpenRouterTranscription takes audio bytes, an audio block or a message, not a {kind}"
    )


def _last_audio_block(messages: list[BaseMessage]) -> dict[str, Any]:
    for message in reversed(messages):
        if isinstance(message.content, list):
            blocks = [
                b
                for b in message.content
                if isinstance(b, dict) and b.get("type") in ("audio", "input_audio")
            ]
            if blocks:
                return blocks[-1]
    raise ValueError("the message holds no audio block to transcribe (see audio_block_from_file)")


def _from_block(block: dict[str, Any], max_bytes: int) -> tuple[bytes, str]:
    if block.get("type") == "input_audio" and isinstance(block.get("input_audio"), dict):
        spec = block["input_audio"]
        data = decode_base64(str(spec.get("data") or ""), what="the input_audio block")
        return _checked(data, f"audio/{spec.get('format')}", max_bytes, "the input_audio block")
    if block.get("type") != "audio":
        raise ValueError(f"expected an audio content block, got type {block.get('type')!r}")
    data, mime = audio_block_data(block, max_bytes=max_bytes)
    return _checked(data, mime, max_bytes, "the audio block")


def _checked(data: bytes, mime: str | None, max_bytes: int, what: str) -> tuple[bytes, str]:
    if not data:
        raise ValueError(f"{what} is empty")
    if len(data) > max_bytes:
        raise ValueError(f"{what} is {len(data)} bytes, over max_audio_bytes={max_bytes}")
    base = (mime or "").split(";", 1)[0].strip().lower()
    if base in ("audio/pcm", "audio/l16", "audio/pcm16"):
        # Raw PCM has no header a transcriber could read: wrap it in one.
        if len(data) % 2:
            raise ValueError(f"{what}: PCM16 must be whole 2-byte samples, got {len(data)} bytes")
        rate = pcm_rate(mime, PCM_SAMPLE_RATE)
        return wav_header(len(data), sample_rate=rate) + data + wav_pad(len(data)), "wav"
    if data[:4] == _EBML_MAGIC or base in ("audio/webm", "video/webm"):
        return data, "webm"
    fmt = sniff_audio_format(data)
    if fmt is None:
        hint = f" (declared {mime})" if mime else ""
        msg = f"{what} is not audio of a known format{hint}: send WAV, MP3, FLAC, OGG, M4A or AAC"
        raise ValueError(msg)
    if mime and base not in ("audio/webm",) and audio_format_for_mime(mime) != fmt:
        raise ValueError(f"{what} is declared as {mime} but its bytes are {fmt}")
    if fmt not in _STT_FORMATS:
        raise ValueError(f"{what} is {fmt}, which transcription does not take; send WAV or MP3")
    return data, fmt
