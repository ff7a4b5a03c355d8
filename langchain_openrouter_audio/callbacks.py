"""Callback handlers that hear speech while it is generated.

Subclass `AudioCallbackHandler` (or `AsyncAudioCallbackHandler` for `async
def` hooks) and pass it in `config={"callbacks": [...]}`. It hears every PCM
byte in order and exactly once, for `invoke`, `stream`, `ainvoke`, `astream`
and inside LangGraph agents:

```python
from langchain_openrouter_audio import AudioCallbackHandler, ChatOpenRouterAudio

class Printer(AudioCallbackHandler):
    def on_transcript_chunk(self, text, **kwargs):
        print(text, end="", flush=True)

    def on_audio_chunk(self, chunk, *, sample_rate, **kwargs):
        speaker.write(chunk)  # raw PCM16 mono

ChatOpenRouterAudio().invoke("Tell me a joke", config={"callbacks": [Printer()]})
```

Ready-made: `WavFileWriter` (writes speech to a WAV as it arrives) and
`SpeakerPlayer` (plays it; needs the `[playback]` extra).
"""

from __future__ import annotations

import base64
import wave
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

from langchain_openrouter_audio._driver import SpeechChunk
from langchain_openrouter_audio.audio import (
    PCM_CHANNELS,
    PCM_SAMPLE_RATE,
    PCM_SAMPLE_WIDTH,
    import_sounddevice,
    pcm_rate,
)

__all__ = [
    "AsyncAudioCallbackHandler",
    "AudioCallbackHandler",
    "SpeakerPlayer",
    "WavFileWriter",
]


class _SpeechTracker:
    """Pulls transcript and PCM out of streamed chunks, per run."""

    def __init__(self) -> None:
        self._rates: dict[UUID, int] = {}
        self._encoded: set[UUID] = set()

    def parts(self, chunk: Any, run_id: UUID) -> tuple[str, bytes, int] | None:
        if not isinstance(chunk, ChatGenerationChunk):
            return None
        content = chunk.message.content
        if isinstance(content, str):
            return (content, b"", self._rates.get(run_id, PCM_SAMPLE_RATE)) if content else None
        # Our own chunks carry their PCM: no need to decode the base64 again.
        own_pcm = chunk.pcm if isinstance(chunk, SpeechChunk) else None
        text, pieces = "", []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                text += str(block.get("text", ""))
            elif kind == "audio" and block.get("base64"):
                if mime := str(block.get("mime_type") or ""):
                    self._rates[run_id] = pcm_rate(mime)
                    if not _is_pcm(mime):
                        self._encoded.add(run_id)  # MP3 and the like: not samples to play
                if own_pcm is None and run_id not in self._encoded:
                    pieces.append(base64.b64decode(block["base64"]))
        pcm = own_pcm if own_pcm is not None else b"".join(pieces)
        if not text and not pcm:
            return None
        self._rates.setdefault(run_id, PCM_SAMPLE_RATE)
        return text, pcm, self._rates[run_id]

    def end(self, run_id: UUID) -> bool:
        """Forget the run; True if it carried speech (transcript or audio)."""
        self._encoded.discard(run_id)
        return self._rates.pop(run_id, None) is not None


def _is_pcm(mime_type: str) -> bool:
    base = mime_type.split(";", 1)[0].strip().lower()
    return base in ("audio/pcm", "audio/l16", "audio/pcm16")


class _TracksSpeech:
    @property
    def _speech(self) -> _SpeechTracker:
        # Made on first use, so a subclass that skips super().__init__() still hears audio.
        tracker: _SpeechTracker | None = self.__dict__.get("_speech_tracker")
        if tracker is None:
            tracker = self.__dict__["_speech_tracker"] = _SpeechTracker()
        return tracker


class AudioCallbackHandler(_TracksSpeech, BaseCallbackHandler):
    """Base class for handlers that consume speech as it streams.

    Override any of `on_audio_chunk`, `on_transcript_chunk`, `on_audio_end`.
    PCM is signed 16-bit little-endian mono at `sample_rate` (24 kHz).
    """

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        """A piece of speech arrived (raw PCM16, whole samples)."""

    def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        """A piece of the transcript (or of the text reply) arrived."""

    def on_audio_end(self, **kwargs: Any) -> None:
        """The reply finished (after all its audio chunks), or failed."""

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        parts = self._speech.parts(chunk, run_id)
        if parts is None:
            return
        text, pcm, rate = parts
        if text:
            self.on_transcript_chunk(text, run_id=run_id, parent_run_id=parent_run_id, **kwargs)
        if pcm:
            self.on_audio_chunk(
                pcm, sample_rate=rate, run_id=run_id, parent_run_id=parent_run_id, **kwargs
            )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if self._speech.end(run_id):
            self.on_audio_end(run_id=run_id, **kwargs)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self._speech.end(run_id):
            self.on_audio_end(run_id=run_id, error=error, **kwargs)


class AsyncAudioCallbackHandler(_TracksSpeech, AsyncCallbackHandler):
    """`AudioCallbackHandler` with `async def` hooks, for async apps.

    ```python
    class Relay(AsyncAudioCallbackHandler):
        async def on_audio_chunk(self, chunk, *, sample_rate, **kwargs):
            await websocket.send_bytes(chunk)
    ```
    """

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        """A piece of speech arrived (raw PCM16, whole samples)."""

    async def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        """A piece of the transcript (or of the text reply) arrived."""

    async def on_audio_end(self, **kwargs: Any) -> None:
        """The reply finished (after all its audio chunks), or failed."""

    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        parts = self._speech.parts(chunk, run_id)
        if parts is None:
            return
        text, pcm, rate = parts
        if text:
            await self.on_transcript_chunk(
                text, run_id=run_id, parent_run_id=parent_run_id, **kwargs
            )
        if pcm:
            await self.on_audio_chunk(
                pcm, sample_rate=rate, run_id=run_id, parent_run_id=parent_run_id, **kwargs
            )

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if self._speech.end(run_id):
            await self.on_audio_end(run_id=run_id, **kwargs)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self._speech.end(run_id):
            await self.on_audio_end(run_id=run_id, error=error, **kwargs)


class WavFileWriter(AudioCallbackHandler):
    """Writes each reply's speech to a WAV file as it arrives.

    ```python
    writer = WavFileWriter("reply.wav")
    llm.invoke("Read me a poem", config={"callbacks": [writer]})
    ```
    A second reply through the same handler overwrites the file.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._files: dict[UUID, wave.Wave_write] = {}

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        run_id: UUID = kwargs["run_id"]
        out = self._files.get(run_id)
        if out is None:
            out = self._files[run_id] = wave.open(str(self.path), "wb")  # noqa: SIM115
            out.setnchannels(PCM_CHANNELS)
            out.setsampwidth(PCM_SAMPLE_WIDTH)
            out.setframerate(sample_rate)
        out.writeframes(chunk)

    def on_audio_end(self, **kwargs: Any) -> None:
        if (out := self._files.pop(kwargs["run_id"], None)) is not None:
            out.close()


class SpeakerPlayer(AudioCallbackHandler):
    """Plays speech on the default output device while it is generated.

    Needs `pip install 'langchain-openrouter-audio[playback]'` (sounddevice).

    ```python
    llm.invoke("Tell me a story", config={"callbacks": [SpeakerPlayer()]})
    ```
    """

    def __init__(self, device: int | str | None = None) -> None:
        super().__init__()
        self._sd: Any = import_sounddevice()
        self._device = device
        self._streams: dict[UUID, Any] = {}

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        run_id: UUID = kwargs["run_id"]
        stream = self._streams.get(run_id)
        if stream is None:
            stream = self._sd.RawOutputStream(
                samplerate=sample_rate, channels=PCM_CHANNELS, dtype="int16", device=self._device
            )
            stream.start()
            self._streams[run_id] = stream
        stream.write(chunk)

    def on_audio_end(self, **kwargs: Any) -> None:
        if (stream := self._streams.pop(kwargs["run_id"], None)) is not None:
            stream.stop()
            stream.close()
