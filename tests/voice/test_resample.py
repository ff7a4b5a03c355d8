from __future__ import annotations

import itertools
import math
import random

import pytest

from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice import Resampler, resample_pcm16
from langchain_openrouter_audio.voice._pcm import rms, samples

from .conftest import needs_espeak

RATES = [8000, 16000, 44100, 48000]


def zero_crossing_hz(pcm: bytes, rate: int) -> float:
    """Pitch of a pure tone from its sign changes (no FFT needed)."""
    values = samples(pcm)
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    return crossings / 2 / (len(values) / rate)


def pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 3001)  # odd sizes split samples in half
        out.append(data[pos : pos + step])
        pos += step
    return out


@pytest.mark.parametrize("dst", RATES)
def test_tone_keeps_pitch_and_level_there_and_back(dst: int) -> None:
    tone = tone_pcm16(1.0, 440.0, amplitude=0.5)
    there = resample_pcm16(tone, 24000, dst)
    back = resample_pcm16(there, dst, 24000)
    assert abs(len(there) / 2 - dst) <= 2  # one second at the new rate
    for pcm, rate in ((there, dst), (back, 24000)):
        assert zero_crossing_hz(pcm, rate) == pytest.approx(440.0, abs=3.0)
        assert rms(pcm) == pytest.approx(rms(tone), rel=0.03)
    assert abs(len(back) - len(tone)) <= 8


@pytest.mark.parametrize(("src", "dst"), [(24000, d) for d in RATES] + [(d, 24000) for d in RATES])
def test_pieces_give_the_same_audio_as_whole(src: int, dst: int) -> None:
    clip = tone_pcm16(0.7, 300.0, sample_rate=src) + tone_pcm16(0.5, 1234.0, sample_rate=src)
    whole = resample_pcm16(clip, src, dst)
    resampler = Resampler(src, dst)
    streamed = b"".join(resampler.push(p) for p in pieces(clip, seed=src + dst))
    streamed += resampler.flush()
    assert streamed == whole


@needs_espeak
def test_speech_in_pieces_has_no_clicks_at_edges() -> None:
    from langchain_openrouter_audio.testing import speech_pcm16

    speech = speech_pcm16("Streaming speech must not click at chunk edges.")
    resampler = Resampler(24000, 8000)
    streamed = b"".join(resampler.push(p) for p in pieces(speech, seed=7)) + resampler.flush()
    assert streamed == resample_pcm16(speech, 24000, 8000)
    # And the speech is still there: same loudness within a few percent.
    assert rms(streamed) == pytest.approx(rms(speech), rel=0.1)


def test_reusable_after_flush_and_same_rate_passthrough() -> None:
    resampler = Resampler(24000, 16000)
    clip = tone_pcm16(0.2, 500.0)
    first = resampler.push(clip) + resampler.flush()
    assert resampler.push(clip) + resampler.flush() == first
    assert resample_pcm16(clip, 24000, 24000) == clip
    assert resample_pcm16(b"", 24000, 8000) == b""


def test_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_silence_stays_silent() -> None:
    out = resample_pcm16(bytes(4800), 24000, 44100)
    assert set(out) == {0}
    assert math.isclose(len(out) / 2, 4410, abs_tol=2)
