"""PCM16 helpers shared by the voice modules: samples in and out, loudness."""

from __future__ import annotations

import math
import sys
from array import array

__all__ = ["SAMPLE_WIDTH", "from_samples", "rms", "samples", "seconds"]

SAMPLE_WIDTH = 2


def samples(pcm: bytes) -> array[int]:
    """Signed 16-bit little-endian bytes as an array of ints (a trailing odd byte is dropped)."""
    out = array("h")
    out.frombytes(pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        out.byteswap()
    return out


def from_samples(values: array[int]) -> bytes:
    """An array of int16 back to little-endian bytes."""
    if sys.byteorder == "big":
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def rms(pcm: bytes) -> float:
    """Root mean square of the samples (0.0 for no samples)."""
    values = samples(pcm)
    if not values:
        return 0.0
    return math.sqrt(math.fsum(v * v for v in values) / len(values))


def seconds(pcm: bytes, sample_rate: int) -> float:
    """Duration of mono PCM16 at `sample_rate`."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)
