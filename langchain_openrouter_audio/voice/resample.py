"""Sample-rate conversion of PCM16 mono, whole or streamed in pieces.

Backed by `audioop.ratecv` (C; stdlib up to Python 3.12, the `audioop-lts` package from
3.13, installed by the `[voice]` extra). It carries its filter state across calls, so a
stream converted piece by piece is sample-for-sample the conversion of the whole: no clicks
at piece edges. It interpolates linearly, which keeps a tone's pitch and level; it has no
steep anti-alias filter, which speech for telephony, VADs and speakers does not need.
"""

from __future__ import annotations

from typing import Any

from langchain_openrouter_audio.voice._audioop import load_audioop
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH

__all__ = ["Resampler", "resample_pcm16"]


class Resampler:
    """Stateful PCM16 mono rate converter: `.push(pcm)` pieces, then `.flush()`.

    Fed at once or in pieces of any size (odd byte counts too), it gives the same bytes.

    ```python
    from langchain_openrouter_audio.voice import Resampler

    to_phone = Resampler(24000, 8000)
    out = to_phone.push(b"\\x00\\x00" * 2400) + to_phone.flush()  # 100 ms
    assert len(out) == 2 * 800
    ```
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._audioop = load_audioop()
        self._state: Any = None
        self._odd = b""

    def push(self, pcm: bytes) -> bytes:
        """Convert the next piece; returns what is ready (a whole number of samples)."""
        data = self._odd + pcm
        usable = len(data) // SAMPLE_WIDTH * SAMPLE_WIDTH
        self._odd = data[usable:]
        if not usable:
            return b""
        if self.src_rate == self.dst_rate:
            return data[:usable]
        out: bytes
        out, self._state = self._audioop.ratecv(
            data[:usable], SAMPLE_WIDTH, 1, self.src_rate, self.dst_rate, self._state
        )
        return out

    def flush(self) -> bytes:
        """End the stream and reset for reuse. Returns `b""`: output is emitted up to the
        last input sample as it goes (a clip comes out a sample or two short of
        `n * dst / src`); only a dangling half sample is dropped."""
        self._state = None
        self._odd = b""
        return b""


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Convert a whole PCM16 mono clip from `src_rate` to `dst_rate`.

    ```python
    from langchain_openrouter_audio.voice import resample_pcm16

    assert len(resample_pcm16(b"\\x00\\x00" * 24000, 24000, 16000)) == 2 * 16000
    ```
    """
    resampler = Resampler(src_rate, dst_rate)
    return resampler.push(pcm) + resampler.flush()
