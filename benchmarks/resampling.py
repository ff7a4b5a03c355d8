"""Resampling quality and speed: the old linear path against soxr, per rate pair.

Model speech at 24 kHz leaves for phone lines, VADs, browsers and sound cards. Going down,
what lies above the new Nyquist frequency must be filtered out or it folds back as a false
tone; going up, the images above the old Nyquist must be. Per rate pair and path (`linear`:
`audioop.ratecv`, still `low_latency=True` and the fallback without the `[voice]` extra;
`soxr`: the default): the alias (dB re the input tone; going down the worse of tones at
1.1 and 1.5 x the new Nyquist, 1.25 x for 24 -> 16 kHz; going up the image of a tone at
0.8 x the old Nyquist), the passband at 1 kHz, 0.8 and 0.9 x the lower Nyquist (output RMS
over input RMS), x real time (CPU, one thread, best of 3, speech pushed in 20 ms pieces),
the start cost of a stream (create, push 20 ms, flush) and the lag of the output behind
the input while streaming (soxr filters in blocks). Tones are -6 dBFS, 1 s, measured on the
middle half with a Hann-windowed DFT at the exact frequency; "< -120" is below int16.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import numpy as np

from benchmarks.voice_dsp import pieces, speech, streamed, x_real_time
from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice import Resampler

DOWN = [(24000, 8000), (24000, 16000), (48000, 16000), (48000, 24000)]
UP = [(8000, 24000), (16000, 24000), (16000, 48000), (24000, 44100)]
PATHS = {"linear": True, "soxr": False}  # path name -> low_latency
AMPLITUDE = 0.5


def convert(pcm: bytes, src: int, dst: int, low_latency: bool) -> bytes:
    """The whole clip through one `Resampler`."""
    resampler = Resampler(src, dst, low_latency=low_latency)
    return resampler.push(pcm) + resampler.flush()


def tone(hz: float, rate: int) -> bytes:
    return tone_pcm16(1.0, hz, sample_rate=rate, amplitude=AMPLITUDE)


def middle(pcm: bytes) -> Any:
    values = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    return values[len(values) // 4 : len(values) * 3 // 4]


def amplitude_at(values: Any, rate: int, hz: float) -> float:
    """Amplitude of the `hz` component (Hann-windowed DFT at that exact frequency)."""
    window = np.hanning(len(values))
    phase = np.exp(-2j * np.pi * hz * np.arange(len(values)) / rate)
    return float(abs(np.sum(values * window * phase)) * 2 / np.sum(window))


def db(ratio: float) -> float:
    return 20 * math.log10(ratio) if ratio > 0 else -999.0  # no signal at all: "< -120"


def folded(hz: float, rate: int) -> float:
    """Where `hz` lands once sampled at `rate`."""
    hz = hz % rate
    return rate - hz if hz > rate / 2 else hz


def alias_db(src: int, dst: int, low_latency: bool) -> float:
    full = AMPLITUDE * 32767
    if dst < src:
        nyquist = dst / 2
        far = 1.25 if 1.5 * nyquist >= src / 2 else 1.5
        worst = -999.0
        for tone_hz in (1.1 * nyquist, far * nyquist):
            out = convert(tone(tone_hz, src), src, dst, low_latency)
            worst = max(worst, db(amplitude_at(middle(out), dst, folded(tone_hz, dst)) / full))
        return worst
    tone_hz = 0.8 * src / 2
    out = convert(tone(tone_hz, src), src, dst, low_latency)
    return db(amplitude_at(middle(out), dst, src - tone_hz) / full)


def passband_db(src: int, dst: int, low_latency: bool, tone_hz: float) -> float:
    pcm = tone(tone_hz, src)
    out = convert(pcm, src, dst, low_latency)
    rms_in = float(np.sqrt(np.mean(middle(pcm) ** 2)))
    rms_out = float(np.sqrt(np.mean(middle(out) ** 2)))
    return db(rms_out / rms_in)


def stream_lag_s(pcm: bytes, src: int, dst: int, low_latency: bool) -> float:
    """Longest lag of the output behind the input (audio time) while pushing 20 ms pieces."""
    resampler = Resampler(src, dst, low_latency=low_latency)
    pushed = emitted = 0
    worst = 0.0
    for piece in pieces(pcm, src):
        pushed += len(piece) // 2
        emitted += len(resampler.push(piece)) // 2
        worst = max(worst, pushed / src - emitted / dst)
    return worst


def start_s(src: int, dst: int, low_latency: bool, repeat: int = 1000) -> float:
    """Mean CPU time of a new stream: create, push one 20 ms piece, flush."""
    piece = tone_pcm16(0.02, 440.0, sample_rate=src)
    Resampler(src, dst, low_latency=low_latency).push(piece)  # imports done before timing
    start = time.process_time()
    for _ in range(repeat):
        resampler = Resampler(src, dst, low_latency=low_latency)
        resampler.push(piece)
        resampler.flush()
    return (time.process_time() - start) / repeat


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One row per rate pair and path: alias, passband levels, speed, start cost, lag."""
    seconds = 10.0 if ctx["quick"] else 30.0
    out: list[dict[str, Any]] = []
    for src, dst in DOWN + UP:
        clip = speech(seconds, src)
        nyquist = min(src, dst) / 2
        for path, low_latency in PATHS.items():
            run = streamed(partial(Resampler, src, dst, low_latency=low_latency), pieces(clip, src))
            out.append(
                {
                    "kHz": f"{src / 1000:g} -> {dst / 1000:g}",
                    "path": path,
                    "alias dB": alias_db(src, dst, low_latency),
                    "1 kHz dB": passband_db(src, dst, low_latency, 1000.0),
                    "0.8 Nyq dB": passband_db(src, dst, low_latency, 0.8 * nyquist),
                    "0.9 Nyq dB": passband_db(src, dst, low_latency, 0.9 * nyquist),
                    "x real time": x_real_time(seconds, run),
                    "start": start_s(src, dst, low_latency, 200 if ctx["quick"] else 1000),
                    "lag": stream_lag_s(clip, src, dst, low_latency),
                }
            )
    return {"Resampling: linear (before) and soxr (now), per rate pair": out}
