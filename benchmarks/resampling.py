"""Resampling quality and speed: the old linear path against soxr, per rate pair.

Why: model speech arrives at 24 kHz and leaves for phone lines (8 kHz), VADs and browsers
(16 kHz) and sound cards (44.1/48 kHz). Going down, everything above the new Nyquist
frequency must be filtered out first or it folds back as an audible false tone; going up,
the images of the signal above the old Nyquist must be filtered out too. This measures,
for each rate pair and each path (`linear`: `audioop.ratecv`, the path used before soxr and
still used by `low_latency=True` or without the `[voice]` extra; `soxr`: the default):

- alias (dB): the level of the false tone relative to the input tone. Going down, a tone
  at 1.1 and at 1.5 x the new Nyquist (1.25 x for 24 -> 16 kHz, where 1.5 x is the old
  Nyquist itself); the reported figure is the worse of the two, measured at the
  frequency it folds to. Going up, the image of a tone at 0.8 x the old Nyquist, at
  `src_rate - f`. "< -120" is below what int16 output can show (often every sample of
  the measured part is 0).
- passband (dB): the level of a tone at 1 kHz, 0.8 x and 0.9 x the lower Nyquist,
  output RMS over input RMS (0 is perfect).
- x real time: seconds of audio converted per CPU second (`time.process_time`, one
  thread, best of 3), 30 s (`--quick`: 10 s) of espeak-ng speech with pauses (a tone
  without espeak-ng) fed in 20 ms pieces as a stream is, each a fresh `Resampler`, flushed.
- start: CPU time to create a `Resampler`, push one 20 ms piece and flush: the cost
  the voice engine pays per reply on top of the audio itself (mean of 1000, quick 200).
- lag: the longest time the output runs behind the input while streaming 20 ms
  pieces (soxr's filter works in blocks; the linear path keeps up piece by piece).

Tones are -6 dBFS, 1 s; levels are measured on the middle half (no start/end transients)
with a Hann-windowed DFT at the exact frequency.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from benchmarks.voice_dsp import pieces, speech, streamed, x_real_time
from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice import Resampler

DOWN = [(24000, 8000), (24000, 16000), (48000, 16000), (48000, 24000)]
UP = [(8000, 24000), (16000, 24000), (16000, 48000), (24000, 44100)]
PATHS = {"linear": True, "soxr": False}  # path name -> low_latency
AMPLITUDE = 0.5


def convert(pcm: bytes, src: int, dst: int, low_latency: bool, piece: int = 0) -> bytes:
    """The whole clip through one `Resampler`, at once or in `piece`-byte pieces."""
    resampler = Resampler(src, dst, low_latency=low_latency)
    step = piece or len(pcm) or 1
    out = b"".join(resampler.push(pcm[i : i + step]) for i in range(0, len(pcm), step))
    return out + resampler.flush()


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
            out = convert(
                tone_pcm16(1.0, tone_hz, sample_rate=src, amplitude=AMPLITUDE),
                src,
                dst,
                low_latency,
            )
            worst = max(worst, db(amplitude_at(middle(out), dst, folded(tone_hz, dst)) / full))
        return worst
    tone_hz = 0.8 * src / 2
    out = convert(
        tone_pcm16(1.0, tone_hz, sample_rate=src, amplitude=AMPLITUDE), src, dst, low_latency
    )
    return db(amplitude_at(middle(out), dst, src - tone_hz) / full)


def passband_db(src: int, dst: int, low_latency: bool, tone_hz: float) -> float:
    tone = tone_pcm16(1.0, tone_hz, sample_rate=src, amplitude=AMPLITUDE)
    out = convert(tone, src, dst, low_latency)
    rms_in = float(np.sqrt(np.mean(middle(tone) ** 2)))
    rms_out = float(np.sqrt(np.mean(middle(out) ** 2)))
    return db(rms_out / rms_in)


def stream_lag_ms(pcm: bytes, src: int, dst: int, low_latency: bool, piece_ms: int = 20) -> float:
    """Longest lag of the output behind the input while pushing `piece_ms` pieces."""
    resampler = Resampler(src, dst, low_latency=low_latency)
    step = 2 * src * piece_ms // 1000
    pushed = emitted = 0
    worst = 0.0
    for i in range(0, len(pcm), step):
        piece = pcm[i : i + step]
        pushed += len(piece) // 2
        emitted += len(resampler.push(piece)) // 2
        worst = max(worst, pushed / src - emitted / dst)
    return 1000 * worst


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
            make = lambda s=src, d=dst, low=low_latency: Resampler(s, d, low_latency=low)  # noqa: E731
            run = streamed(make, pieces(clip, src))
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
                    "lag": stream_lag_ms(clip, src, dst, low_latency) / 1000,
                }
            )
    return {"Resampling: linear (before) and soxr (now), per rate pair": out}
