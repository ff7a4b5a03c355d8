"""Helpers shared across the test suite: plain functions and classes (fixtures: conftest.py).

Models pointed at the local server (and closed afterwards), test speech and the shipped
clips, audio pulled out of WAV files and replies, questions and a tool, recording
callback handlers, the offline runner for examples, and wire-level helpers.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_openrouter_audio import (
    ChatOpenRouterAudio,
    OpenRouterSpeech,
    OpenRouterTranscription,
)
from langchain_openrouter_audio.audio import audio_block_from_bytes, pcm16_to_wav
from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler, AudioCallbackHandler
from langchain_openrouter_audio.testing import OpenRouterTestServer, Reply, speech_pcm16, tone_pcm16
from langchain_openrouter_audio.voice import CallbackSink, PcmSource

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# The spoken clips the offline server and the examples use.
ASSETS = ROOT / "langchain_openrouter_audio" / "testing" / "assets"

# What each shipped clip says, by clip name.
CLIP_WORDS: dict[str, str] = json.loads((ASSETS / "transcripts.json").read_text("utf-8"))

HAS_ESPEAK = shutil.which("espeak-ng") is not None


# -- models --------------------------------------------------------------------------------


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


@contextlib.contextmanager
def models_made() -> Iterator[list[Any]]:
    """Collect every model built (or copied) inside the block; the caller closes them.

    Code under test builds models freely and drops them; their pooled sockets would
    then be closed by the garbage collector, with a ResourceWarning, much later.
    Chat, speech and transcription models are all tracked.
    """
    made: list[Any] = []
    saved: list[tuple[type, str, Any]] = []
    for cls in (ChatOpenRouterAudio, OpenRouterSpeech, OpenRouterTranscription):
        saved += [(cls, name, cls.__dict__.get(name)) for name in ("__init__", "model_copy")]
        init, copy = cls.__init__, cls.model_copy

        def tracked_init(self: Any, *args: Any, _init: Any = init, **kwargs: Any) -> None:
            _init(self, *args, **kwargs)
            made.append(self)

        def tracked_copy(self: Any, _copy: Any = copy, **kwargs: Any) -> Any:
            copied = _copy(self, **kwargs)
            made.append(copied)
            return copied

        cls.__init__ = tracked_init  # type: ignore[method-assign]
        cls.model_copy = tracked_copy  # type: ignore[method-assign,assignment]
    try:
        yield made
    finally:
        for cls, name, original in saved:
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


# -- audio: speech, WAV files, replies -----------------------------------------------------


def spoken_pcm(text: str, sample_rate: int = 24_000) -> bytes:
    """PCM16 mono of `text` spoken by espeak-ng, or a 2 s tone without it."""
    if HAS_ESPEAK:
        return speech_pcm16(text, sample_rate=sample_rate)
    return tone_pcm16(2.0, 330.0, sample_rate=sample_rate)


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


def wav_frames(wav_bytes: bytes) -> bytes:
    """The whole frames of a 24 kHz mono PCM16 WAV, as `wave` reads them."""
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        return w.readframes(w.getnframes())


def clip_pcm(name: str) -> bytes:
    """The PCM of the shipped spoken clip `assets/<name>.wav`."""
    return wav_frames((ASSETS / f"{name}.wav").read_bytes())


def audio_block(message: BaseMessage) -> dict[str, Any]:
    """The one audio block of `message`."""
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


def summed(chunks: Sequence[Any]) -> Any:
    """Stream chunks added up with `+`, left to right, as a user sums them."""
    assert chunks
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# -- messages and tools --------------------------------------------------------------------


def question_with_audio(
    text: str = "Answer the question in the clip.", wav: bytes | None = None
) -> HumanMessage:
    """A user turn with text and audio (`wav`, or a short tone), as text-only replies need."""
    if wav is None:
        wav = pcm16_to_wav(tone_pcm16(0.1, 330.0))
    return HumanMessage(content=[{"type": "text", "text": text}, audio_block_from_bytes(wav)])


def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return f"It is sunny in {city}."


# -- recording callback handlers -----------------------------------------------------------


class Recorder(AudioCallbackHandler):
    """Records every audio and transcript piece, the sample rates, and how the run ended."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[bytes] = []
        self.text: list[str] = []
        self.rates: set[int] = set()
        self.ends: list[dict[str, Any]] = []

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kw: Any) -> None:
        # A wrong rate loses the chunk, so the PCM a test compares cannot match.
        assert sample_rate == 24_000
        self.audio.append(chunk)
        self.rates.add(sample_rate)

    def on_transcript_chunk(self, text: str, **kw: Any) -> None:
        self.text.append(text)

    def on_audio_end(self, **kw: Any) -> None:
        self.ends.append(kw)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.audio)

    @property
    def transcript(self) -> str:
        return "".join(self.text)


class AsyncRecorder(AsyncAudioCallbackHandler):
    """The async twin of `Recorder` (no sample-rate check)."""

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

    @property
    def transcript(self) -> str:
        return "".join(self.text)


# -- sub-processes -------------------------------------------------------------------------


def offline_env() -> dict[str, str]:
    """The environment of a user without a key (the examples then run offline)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_offline(
    args: Sequence[str], cwd: Path, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python <args>` in `cwd` as a user without a key would; the caller checks the result."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the wire ------------------------------------------------------------------------------


def free_port() -> int:
    """A local port nothing listens on (bound, then released), for a server in another
    process. Between the release and that server's bind another process may take it (the
    suites of several Pythons run at once): in this process, prefer `bound_socket` to serve
    on and `refusing_port` to be refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A socket bound to a free local port, for an in-process server to listen on (uvicorn's
    `serve(sockets=[...])`): held from the start, the port cannot be taken in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # no SO_REUSEADDR: no other socket may share the port
    return sock


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A local port that refuses connections for as long as the block runs: bound but never
    listening, so no other process's server can start on it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def capture_sse(reply: Reply, *, body: dict[str, Any] | None = None) -> bytes:
    """The exact SSE bytes a fresh server sends for `reply` (a real stream, de-chunked)."""
    key = "test-key"
    request = body or {
        "model": "openai/gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with OpenRouterTestServer(api_key=key) as server:
        server.enqueue(reply)
        headers = {"Authorization": f"Bearer {key}"}
        url = f"{server.base_url}/chat/completions"
        with httpx.stream("POST", url, json=request, headers=headers, timeout=10) as response:
            assert response.status_code == 200
            return b"".join(response.iter_bytes())


# -- a frame-counting line for voice sessions -------------------------------------------------


class Line:
    """A non-real-time 16 kHz source that counts 20 ms frames, and a sink that notes when
    (at which input frame) each reply frame is written or the sink is cleared."""

    RATE = 16000
    FRAME = 640  # 20 ms at 16 kHz

    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.frame = 0
        self.writes: list[tuple[int, bytes]] = []
        self.clears: list[int] = []

    async def _chunks(self) -> AsyncIterator[bytes]:
        for pos in range(0, len(self.stream), self.FRAME):
            self.frame = pos // self.FRAME
            yield self.stream[pos : pos + self.FRAME]
        self.frame = len(self.stream) // self.FRAME + 1

    def source(self) -> PcmSource:
        return PcmSource(self._chunks(), sample_rate=self.RATE, realtime=False)

    def sink(self, sample_rate: int = 24000) -> CallbackSink:
        return CallbackSink(
            lambda f: self.writes.append((self.frame, f)),
            on_clear=lambda: self.clears.append(self.frame),
            sample_rate=sample_rate,
        )
