"""Helpers for the reliability suite: models pointed at the local server, recording handlers."""

from __future__ import annotations

import base64
import io
import socket
import struct
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio import _client as client_module
from langchain_openrouter_audio.audio import audio_block_from_bytes, pcm16_to_wav
from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler, AudioCallbackHandler
from langchain_openrouter_audio.testing import OpenRouterTestServer, Reply, tone_pcm16

KEY = "test-key"


def make_llm(server: OpenRouterTestServer, **kw: Any) -> ChatOpenRouterAudio:
    """A model talking to `server`; quick timeouts unless overridden."""
    params: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": server.api_key,
        "max_retries": 2,
        "timeout": 10,
    }
    params.update(kw)
    return ChatOpenRouterAudio(**params)


def wav_pcm(wav_bytes: bytes) -> bytes:
    """The bytes of a WAV file's data chunk (all of them, even an odd trailing byte)."""
    with wave.open(io.BytesIO(wav_bytes), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
    pos = 12  # walk the RIFF chunks: a reply's WAV has a JUNK chunk before `data`
    while pos + 8 <= len(wav_bytes):
        chunk_id, size = struct.unpack_from("<4sI", wav_bytes, pos)
        if chunk_id == b"data":
            return wav_bytes[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def audio_block(message: BaseMessage) -> dict[str, Any]:
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "audio"]
    assert len(blocks) == 1, message.content
    return blocks[0]


def reply_pcm(message: BaseMessage) -> bytes:
    """The PCM of an `invoke` reply (its audio block is a WAV)."""
    block = audio_block(message)
    assert block["mime_type"] == "audio/wav"
    return wav_pcm(base64.b64decode(block["base64"]))


def summed_pcm(message: BaseMessage) -> bytes:
    """The PCM of summed stream chunks (raw PCM, not WAV)."""
    block = audio_block(message)
    assert block["mime_type"].startswith("audio/pcm")
    return base64.b64decode(block["base64"])


def question_with_audio(text: str) -> HumanMessage:
    """A user turn with audio input, which `modalities=["text"]` requests need."""
    wav = pcm16_to_wav(tone_pcm16(0.1, 330.0))
    return HumanMessage(content=[{"type": "text", "text": text}, audio_block_from_bytes(wav)])


class Recorder(AudioCallbackHandler):
    """Records every audio and transcript piece, and how the run ended."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[bytes] = []
        self.text: list[str] = []
        self.ends: list[dict[str, Any]] = []

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kw: Any) -> None:
        assert sample_rate == 24_000
        self.audio.append(chunk)

    def on_transcript_chunk(self, text: str, **kw: Any) -> None:
        self.text.append(text)

    def on_audio_end(self, **kw: Any) -> None:
        self.ends.append(kw)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.audio)


class AsyncRecorder(AsyncAudioCallbackHandler):
    def __init__(self) -> None:
        super().__init__()
        self.audio: list[bytes] = []
        self.text: list[str] = []
        self.ends: list[dict[str, Any]] = []

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kw: Any) -> None:
        self.audio.append(chunk)

    async def on_transcript_chunk(self, text: str, **kw: Any) -> None:
        self.text.append(text)

    async def on_audio_end(self, **kw: Any) -> None:
        self.ends.append(kw)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.audio)


def closed_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the exponential backoff (used when no Retry-After is sent) near-instant."""
    monkeypatch.setattr(client_module, "_backoff", lambda state: 0.01)


@pytest.fixture
def second_server() -> Iterator[OpenRouterTestServer]:
    """Another local server (another origin: a different port)."""
    with OpenRouterTestServer(api_key="other-key") as server:
        yield server


def capture_sse(reply: Reply, *, body: dict[str, Any] | None = None) -> bytes:
    """The exact SSE bytes a fresh server sends for `reply` (a real stream, de-chunked)."""
    request = body or {
        "model": "openai/gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with OpenRouterTestServer(api_key=KEY) as server:
        server.enqueue(reply)
        headers = {"Authorization": f"Bearer {KEY}"}
        url = f"{server.base_url}/chat/completions"
        with httpx.stream("POST", url, json=request, headers=headers, timeout=10) as response:
            assert response.status_code == 200
            return b"".join(response.iter_bytes())
