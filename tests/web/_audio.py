"""Test speech: espeak-ng where installed, else a tone (tests that need words skip)."""

from __future__ import annotations

from langchain_openrouter_audio.testing import speech_pcm16, tone_pcm16
from tests._helpers import HAS_ESPEAK


def spoken_pcm(text: str, sample_rate: int = 24_000) -> bytes:
    """PCM16 mono of `text` spoken by espeak-ng, or a 2 s tone without it."""
    if HAS_ESPEAK:
        return speech_pcm16(text, sample_rate=sample_rate)
    return tone_pcm16(2.0, 330.0, sample_rate=sample_rate)
