"""Where the user's voice comes from: a WAV file, the microphone, or any async PCM stream."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_openrouter_audio.audio import import_sounddevice
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH

__all__ = ["AudioSource", "MicrophoneSource", "PcmSource", "WavFileSource"]


@runtime_checkable
class AudioSource(Protocol):
    """PCM16 mono at `sample_rate`, in pieces of any size.

    `realtime` says whether pieces arrive at the pace they were spoken (a microphone, a
    phone line) or as fast as they can be read (a file). A session paces its playback by
    the source; with a source that is not real time it holds the source while the agent
    has no audio ready, so a recorded conversation plays out the same on every run.
    """

    sample_rate: int
    realtime: bool

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class PcmSource:
    """Any async iterable of PCM16 mono bytes (a websocket, a queue, a generator).

    ```python
    async def chunks():
        yield bytes(3200)

    source = PcmSource(chunks(), sample_rate=16000, realtime=False)
    ```
    """

    def __init__(
        self, chunks: AsyncIterable[bytes], *, sample_rate: int = 16000, realtime: bool = True
    ) -> None:
        self._chunks = chunks
        self.sample_rate = sample_rate
        self.realtime = realtime

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks.__aiter__()


class WavFileSource:
    """A mono 16-bit WAV file as the user's voice (e.g. a recorded conversation).

    `realtime=True` delivers it at the pace of speech, like a microphone.

    ```python
    source = WavFileSource("questions.wav")
    ```
    """

    def __init__(self, path: str | Path, *, realtime: bool = False, chunk_ms: int = 20) -> None:
        self.path = Path(path)
        with wave.open(str(self.path), "rb") as wav:
            if wav.getsampwidth() != SAMPLE_WIDTH or wav.getnchannels() != 1:
                raise ValueError(f"{self.path} is not a mono 16-bit WAV")
            self.sample_rate = wav.getframerate()
        self.realtime = realtime
        self.chunk_ms = chunk_ms

    async def _read(self) -> AsyncIterator[bytes]:
        frames = self.sample_rate * self.chunk_ms // 1000
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0.0
        with wave.open(str(self.path), "rb") as wav:
            while chunk := wav.readframes(frames):
                if self.realtime:
                    sent += len(chunk) / (SAMPLE_WIDTH * self.sample_rate)
                    await asyncio.sleep(max(0.0, start + sent - loop.time()))
                yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read()


class MicrophoneSource:
    """The default input device (needs the `[playback]` extra: sounddevice).

    ```python
    source = MicrophoneSource(sample_rate=16000)
    ```
    Use headphones: a session hears its own voice from loudspeakers and barges in on itself.
    """

    realtime = True

    def __init__(
        self, *, sample_rate: int = 16000, device: int | str | None = None, chunk_ms: int = 20
    ) -> None:
        self._sd: Any = import_sounddevice()
        self.sample_rate = sample_rate
        self.device = device
        self.chunk_ms = chunk_ms

    async def _read(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def on_audio(data: Any, frames: int, time: Any, status: Any) -> None:
            # PortAudio's thread: hand the bytes to the event loop, never block here.
            loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

        with self._sd.RawInputStream(
            samplerate=self.sample_rate,
            channels=1,
            dtype="int16",
            device=self.device,
            blocksize=self.sample_rate * self.chunk_ms // 1000,
            callback=on_audio,
        ):
            while True:
                yield await queue.get()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read()
