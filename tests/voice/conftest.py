"""Real test audio for the voice loop: espeak-ng speech with silences, noise, clicks."""

from __future__ import annotations

import random
import struct

import pytest

from langchain_openrouter_audio.testing import speech_pcm16
from tests._helpers import HAS_ESPEAK

needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")


def silence(ms: int, rate: int = 16000) -> bytes:
    return bytes(2 * (rate * ms // 1000))


def noise(ms: int, sigma: float, rate: int = 16000, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    count = rate * ms // 1000
    return struct.pack(f"<{count}h", *(round(rng.gauss(0.0, sigma)) for _ in range(count)))


def click(ms: int, rate: int = 16000, seed: int = 2) -> bytes:
    """A loud burst of white noise, like a tap on the microphone."""
    rng = random.Random(seed)
    count = rate * ms // 1000
    return struct.pack(f"<{count}h", *(rng.randint(-20000, 20000) for _ in range(count)))


def mix(a: bytes, b: bytes) -> bytes:
    """Sample-wise sum of two PCM16 clips, clipped; as long as the shorter."""
    count = min(len(a), len(b)) // 2
    xs = struct.unpack(f"<{count}h", a[: 2 * count])
    ys = struct.unpack(f"<{count}h", b[: 2 * count])
    return struct.pack(
        f"<{count}h", *(max(-32768, min(32767, x + y)) for x, y in zip(xs, ys, strict=True))
    )


@pytest.fixture(scope="session")
def question_16k() -> bytes:
    if not HAS_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    return speech_pcm16("What is the weather in Paris today?", sample_rate=16000)


@pytest.fixture(scope="session")
def followup_16k() -> bytes:
    if not HAS_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    return speech_pcm16("And tomorrow?", sample_rate=16000)
