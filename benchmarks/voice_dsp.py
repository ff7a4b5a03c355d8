"""Speed of the voice loop's audio work, in multiples of real time on one core.

CPU time of one thread (`time.process_time`, best of 3) for the streaming resampler (24 kHz
to and from 8 / 16 / 44.1 / 48 kHz, fed in 20 ms pieces as a call delivers them), G.711
mu-law both ways, and the endpointer with each installed detector (WebRTC, energy,
Silero), on 30 s of espeak-ng speech with pauses (a tone where espeak-ng is missing). A
live session needs 1x; the margin is what the other sessions on the core can have.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from langchain_openrouter_audio.testing import speech_pcm16, tone_pcm16
from langchain_openrouter_audio.voice import (
    Endpointer,
    Resampler,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    resample_pcm16,
)


def speech(seconds: float, rate: int = 24_000) -> bytes:
    """`seconds` of speech with half-second pauses at `rate`."""
    if not shutil.which("espeak-ng"):
        return tone_pcm16(seconds, 220.0, sample_rate=rate)
    one = speech_pcm16("What is the weather like in Paris right now? ", sample_rate=rate)
    pcm = one + bytes(rate)
    pcm *= int(2 * rate * seconds / len(pcm)) + 1
    return pcm[: int(2 * rate * seconds)]


def pieces(pcm: bytes, rate: int) -> list[bytes]:
    """`pcm` in 20 ms pieces, as a call delivers it."""
    step = 2 * rate // 50
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def x_real_time(audio_s: float, work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return audio_s / max(best, 1e-9)


def streamed(make: Callable[[], Any], chunks: list[bytes]) -> Callable[[], None]:
    """Push `chunks` one by one into a fresh `make()` (a Resampler or Endpointer), flush."""

    def run() -> None:
        worker = make()
        for c in chunks:
            worker.push(c)
        worker.flush()

    return run


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    seconds = 10.0 if ctx["quick"] else 30.0
    src = speech(seconds)
    rows = []

    def add(work: str, x: float) -> None:
        rows.append({"work": work, "x real time": x})

    for dst in (8000, 16000, 44100, 48000):
        for a, b, clip in ((24000, dst, src), (dst, 24000, resample_pcm16(src, 24000, dst))):
            run = streamed(partial(Resampler, a, b), pieces(clip, a))
            add(
                f"resample {a / 1000:g} kHz -> {b / 1000:g} kHz (20 ms pieces)",
                x_real_time(seconds, run),
            )
    phone = resample_pcm16(src, 24000, 8000)
    ulaw = pcm16_to_mulaw(phone)
    add("mu-law encode, 8 kHz", x_real_time(seconds, lambda: pcm16_to_mulaw(phone)))
    add("mu-law decode, 8 kHz", x_real_time(seconds, lambda: mulaw_to_pcm16(ulaw)))
    for rate in (16000, 24000):
        chunks = pieces(resample_pcm16(src, 24000, rate), rate)
        for vad in ("webrtc", "energy", "silero"):
            try:
                Endpointer(rate, vad=vad)  # type: ignore[arg-type]
            except ImportError:  # webrtc: the [listen] extra; silero: [vad]
                continue
            run = streamed(partial(Endpointer, rate, vad=vad), chunks)
            add(f"endpointer, {vad}, {rate // 1000} kHz", x_real_time(seconds, run))
    title = f"Voice audio work: x real time on one core ({seconds:.0f} s of speech)"
    return {title: rows}
