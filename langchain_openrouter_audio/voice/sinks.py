"""Where the agent's voice goes: the speaker, WAV files, or your own callback."""

from __future__ import annotations

import inspect
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_openrouter_audio.audio import import_sounddevice
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH

__all__ = ["AudioSink", "CallbackSink", "SpeakerSink", "WavFileSink"]


@runtime_checkable
class AudioSink(Protocol):
    """Plays PCM16 mono frames at `sample_rate`.

    A session calls `write(frame)` once per frame of playback time, `clear()` when the user
    barges in (stop at once, drop anything buffered), and `end_reply()` after each reply.
    """

    sample_rate: int

    async def write(self, frame: bytes) -> None: ...

    async def clear(self) -> None: ...

    async def end_reply(self) -> None: ...

    async def aclose(self) -> None: ...


class CallbackSink:
    """Calls `on_frame(frame)` (sync or async) for each frame, e.g. to send it on a socket.

    ```python
    frames = []
    sink = CallbackSink(frames.append, sample_rate=24000)
    ```
    """

    def __init__(
        self,
        on_frame: Callable[[bytes], Any],
        *,
        sample_rate: int = 24000,
        on_clear: Callable[[], Any] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self._on_frame = on_frame
        self._on_clear = on_clear

    async def write(self, frame: bytes) -> None:
        await _maybe_await(self._on_frame(frame))

    async def clear(self) -> None:
        if self._on_clear is not None:
            await _maybe_await(self._on_clear())

    async def end_reply(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class WavFileSink:
    """Writes each reply, as played (so only the heard part of an interrupted one), to a WAV.

    `path` may hold `{turn}` (1, 2, ...); without it each reply overwrites the file.

    ```python
    sink = WavFileSink("reply_{turn}.wav")
    ```
    """

    def __init__(self, path: str | Path = "reply_{turn}.wav", *, sample_rate: int = 24000):
        self.path = str(path)
        self.sample_rate = sample_rate
        self.paths: list[Path] = []
        self._file: wave.Wave_write | None = None

    async def write(self, frame: bytes) -> None:
        if self._file is None:
            out = Path(self.path.format(turn=len(self.paths) + 1))
            self.paths.append(out)
            self._file = wave.open(str(out), "wb")  # noqa: SIM115 - closed in end_reply
            self._file.setnchannels(1)
            self._file.setsampwidth(SAMPLE_WIDTH)
            self._file.setframerate(self.sample_rate)
        self._file.writeframes(frame)

    async def clear(self) -> None:
        return None

    async def end_reply(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def aclose(self) -> None:
        await self.end_reply()


class SpeakerSink:
    """The default output device (needs the `[playback]` extra: sounddevice).

    ```python
    sink = SpeakerSink(sample_rate=24000)
    ```
    """

    def __init__(self, *, sample_rate: int = 24000, device: int | str | None = None) -> None:
        self._sd: Any = import_sounddevice()
        self.sample_rate = sample_rate
        self._stream: Any = self._sd.RawOutputStream(
            samplerate=sample_rate, channels=1, dtype="int16", device=device, latency="low"
        )
        self._stream.start()

    async def write(self, frame: bytes) -> None:
        # Frames come at playback pace (one per source frame), so this write does not block.
        self._stream.write(frame)

    async def clear(self) -> None:
        # abort() drops what the device still holds: the voice stops now, not in 100 ms.
        self._stream.abort()
        self._stream.start()

    async def end_reply(self) -> None:
        return None

    async def aclose(self) -> None:
        self._stream.stop()
        self._stream.close()


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
