"""Fixed-size frames out of PCM that arrives in pieces of any size."""

from __future__ import annotations

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH

__all__ = ["FrameBuffer"]


class FrameBuffer:
    """Cuts a PCM16 mono stream into frames of exactly `frame_ms` milliseconds.

    Audio devices, VADs and telephony links want fixed frames; model speech arrives in pieces
    of any size (even odd byte counts). Each frame is `sample_rate * frame_ms / 1000 * 2` bytes.

    ```python
    from langchain_openrouter_audio.voice import FrameBuffer

    frames = FrameBuffer(sample_rate=24000, frame_ms=20)  # 960-byte frames
    assert frames.push(b"\\x00" * 1000) == [b"\\x00" * 960]  # 40 bytes kept
    assert len(frames.flush()) == 960  # the rest, padded with silence
    ```
    """

    def __init__(self, sample_rate: int = 24000, frame_ms: int = 20) -> None:
        samples_per_frame = sample_rate * frame_ms / 1000
        if sample_rate <= 0 or frame_ms <= 0 or not samples_per_frame.is_integer():
            msg = f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples"
            raise ValueError(msg)
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_bytes = int(samples_per_frame) * SAMPLE_WIDTH
        self._pending = bytearray()

    def push(self, pcm: bytes) -> list[bytes]:
        """Add PCM; return every whole frame now available, keeping the rest."""
        self._pending += pcm
        size = self.frame_bytes
        count = len(self._pending) // size
        if not count:
            return []
        frames = [bytes(self._pending[i * size : (i + 1) * size]) for i in range(count)]
        del self._pending[: count * size]
        return frames

    def flush(self) -> bytes:
        """The last partial frame padded with silence to a whole frame, or `b""`."""
        if not self._pending:
            return b""
        frame = bytes(self._pending) + bytes(self.frame_bytes - len(self._pending))
        self._pending.clear()
        return frame

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for a whole frame."""
        return len(self._pending)
