"""Test audio: raw PCM16 mono (little-endian), 24 kHz by default, stdlib only."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
import wave
from array import array

__all__ = ["SAMPLE_RATE", "speech_pcm16", "tone_pcm16"]

SAMPLE_RATE = 24000
"""The rate of OpenAI's streamed ``pcm16`` audio."""

_ESPEAK = "espeak-ng"


def _to_le_bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _from_le_bytes(data: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(data[: len(data) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def tone_pcm16(
    seconds: float,
    freq: float = 440.0,
    *,
    sample_rate: int = SAMPLE_RATE,
    amplitude: float = 0.3,
) -> bytes:
    """A sine wave as raw PCM16 mono: ``round(seconds * sample_rate)`` samples.

    Examples:
        >>> len(tone_pcm16(0.1))
        4800
    """
    if seconds < 0 or sample_rate <= 0 or not 0.0 <= amplitude <= 1.0:
        raise ValueError("need seconds >= 0, sample_rate > 0 and 0 <= amplitude <= 1")
    peak = amplitude * 32767
    step = 2 * math.pi * freq / sample_rate
    count = round(seconds * sample_rate)
    return _to_le_bytes(array("h", (round(peak * math.sin(step * i)) for i in range(count))))


def _resample(samples: array[int], src_rate: int, dst_rate: int) -> array[int]:
    """Linear interpolation; plenty for speech that is only checked, not listened to."""
    if src_rate == dst_rate or not samples:
        return samples
    last = len(samples) - 1
    count = round(len(samples) * dst_rate / src_rate)
    ratio = src_rate / dst_rate
    out = array("h", bytes(2 * count))
    for i in range(count):
        pos = i * ratio
        j = min(int(pos), last)
        frac = pos - j
        nxt = samples[min(j + 1, last)]
        out[i] = round(samples[j] + (nxt - samples[j]) * frac)
    return out


def speech_pcm16(text: str, *, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Synthesize ``text`` with espeak-ng and return raw PCM16 mono at ``sample_rate``.

    Raises RuntimeError when espeak-ng is missing (Debian: ``apt-get install espeak-ng``).

    Examples:
        >>> pcm = speech_pcm16("hello world")
        >>> len(pcm) > SAMPLE_RATE  # more than half a second of 16-bit samples
        True
    """
    exe = shutil.which(_ESPEAK)
    if exe is None:
        raise RuntimeError(
            f"{_ESPEAK} is not installed; on Debian/Ubuntu run `apt-get install espeak-ng`"
        )
    # Text goes through stdin so a leading "-" is never taken for an option.
    result = subprocess.run(
        [exe, "--stdout", "--stdin"],
        input=text.encode("utf-8"),
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"{_ESPEAK} failed with exit code {result.returncode}: {detail}")
    with wave.open(io.BytesIO(result.stdout), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise RuntimeError(f"{_ESPEAK} produced audio that is not 16-bit mono")
        rate = wav.getframerate()
        # espeak-ng writes a placeholder length to a pipe, so read until the data ends.
        frames = []
        while chunk := wav.readframes(65536):
            frames.append(chunk)
    samples = _from_le_bytes(b"".join(frames))
    return _to_le_bytes(_resample(samples, rate, sample_rate))
