"""A conversation on one timeline: a stereo WAV, the user on the left, the agent on the right."""

from __future__ import annotations

import wave
from array import array
from pathlib import Path

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH, from_samples, samples

__all__ = ["ConversationRecorder"]


class ConversationRecorder:
    """Writes a stereo 16-bit WAV at `sample_rate`: user audio left, agent audio right.

    The user side is every sample the channel delivered, in order: it is the timeline.
    Agent audio is placed on it where it played (`agent_audio(start, pcm)`, at the same
    rate), and only what was played, so a reply cut by a barge-in falls silent there.
    Samples before `flush(upto)` are final and go to disk: memory holds only the part of
    the conversation that a reply may still be placed on.

    ```python
    import wave

    from langchain_openrouter_audio.voice.recording import ConversationRecorder

    recorder = ConversationRecorder("call.wav", sample_rate=16000)
    recorder.user_audio(b"\\x10\\x00" * 16000)  # one second of the user
    recorder.agent_audio(8000, b"\\x20\\x00" * 4000)  # the agent, from 0.5 s to 0.75 s
    recorder.close()
    with wave.open("call.wav") as w:
        assert (w.getnchannels(), w.getnframes()) == (2, 16000)
    ```
    """

    def __init__(self, path: str | Path, *, sample_rate: int) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        self._wav.setnchannels(2)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(sample_rate)
        self._written = 0  # frames on disk
        self._left = bytearray()  # user audio after the frames on disk
        self._right = bytearray()  # agent audio after the frames on disk
        self.closed = False

    @property
    def position(self) -> int:
        """Samples of user audio so far: where "now" is on the timeline."""
        return self._written + len(self._left) // SAMPLE_WIDTH

    def user_audio(self, pcm: bytes) -> None:
        """Append the user's audio (PCM16 mono at `sample_rate`)."""
        if not self.closed:
            self._left += pcm[: len(pcm) // SAMPLE_WIDTH * SAMPLE_WIDTH]

    def agent_audio(self, start: int, pcm: bytes) -> None:
        """Mix the agent's audio into the right channel from sample `start` on.

        Audio before what is already on disk is dropped (it cannot be placed any more).
        """
        if self.closed or not pcm:
            return
        skip = max(0, self._written - start)
        data = samples(pcm)[skip:]
        offset = max(0, start - self._written)
        end = offset + len(data)
        if len(self._right) < end * SAMPLE_WIDTH:
            self._right += bytes(end * SAMPLE_WIDTH - len(self._right))
        region = bytes(self._right[offset * SAMPLE_WIDTH : end * SAMPLE_WIDTH])
        if region == bytes(len(region)):  # the usual case: nothing there yet, no mixing
            self._right[offset * SAMPLE_WIDTH : end * SAMPLE_WIDTH] = from_samples(data)
            return
        pairs = zip(samples(region), data, strict=True)
        mixed = array("h", (max(-32768, min(32767, a + b)) for a, b in pairs))
        self._right[offset * SAMPLE_WIDTH : end * SAMPLE_WIDTH] = from_samples(mixed)

    def flush(self, upto: int | None = None) -> None:
        """Write the frames before sample `upto` (default: all user audio so far) to disk."""
        if self.closed:
            return
        limit = self.position if upto is None else min(upto, self.position)
        count = limit - self._written
        if count <= 0:
            return
        size = count * SAMPLE_WIDTH
        left = samples(bytes(self._left[:size]))
        right_bytes = bytes(self._right[:size])
        right = samples(right_bytes + bytes(size - len(right_bytes)))
        frames = array("h", bytes(2 * size))
        frames[0::2] = left
        frames[1::2] = right
        self._wav.writeframes(from_samples(frames))
        del self._left[:size]
        del self._right[:size]
        self._written = limit

    def close(self) -> Path:
        """Write everything (agent audio past the user's end extends the file) and close."""
        if not self.closed:
            extra = len(self._right) - len(self._left)
            if extra > 0:
                self._left += bytes(extra)
            self.flush()
            self._wav.close()
            self.closed = True
        return self.path
