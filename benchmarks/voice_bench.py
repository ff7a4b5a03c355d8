"""Speed of the voice loop's audio work, as multiples of real time on one core.

    python benchmarks/voice_bench.py                 # prints a table
    python benchmarks/voice_bench.py --out res.json  # and writes the figures as JSON

Measures CPU time (`time.process_time`, one thread) for: the resampler (24 kHz to and from
8/16/44.1/48 kHz, fed in 20 ms pieces as a stream would), G.711 mu-law both ways, and the
endpointer with each detector, on espeak-ng speech with pauses (a tone without espeak-ng).
"x real time" is seconds of audio processed per CPU second.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from langchain_openrouter_audio.testing import speech_pcm16, tone_pcm16
from langchain_openrouter_audio.voice import (
    Endpointer,
    Resampler,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    resample_pcm16,
)

SECONDS = 30.0


def speech(rate: int) -> bytes:
    """About 30 s of speech with pauses at `rate`."""
    if shutil.which("espeak-ng"):
        one = speech_pcm16("What is the weather like in Paris right now? ", sample_rate=rate)
        pause = bytes(2 * rate // 2)
        pcm = b""
        while len(pcm) < 2 * rate * SECONDS:
            pcm += one + pause
        return pcm[: int(2 * rate * SECONDS)]
    return tone_pcm16(SECONDS, 220.0, sample_rate=rate)


def pieces(pcm: bytes, rate: int, ms: int = 20) -> list[bytes]:
    step = 2 * rate * ms // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def x_realtime(audio_s: float, work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return audio_s / max(best, 1e-9)


def bench() -> dict[str, float]:
    results: dict[str, float] = {}
    src = speech(24000)
    audio_s = len(src) / 48000
    for dst in (8000, 16000, 44100, 48000):
        for a, b, clip in ((24000, dst, src), (dst, 24000, resample_pcm16(src, 24000, dst))):
            chunks = pieces(clip, a)

            def stream(a: int = a, b: int = b, chunks: list[bytes] = chunks) -> None:
                r = Resampler(a, b)
                for c in chunks:
                    r.push(c)
                r.flush()

            results[f"resample {a}->{b} (20 ms pieces)"] = x_realtime(audio_s, stream)
    phone = resample_pcm16(src, 24000, 8000)
    ulaw = pcm16_to_mulaw(phone)
    results["mu-law encode 8 kHz"] = x_realtime(audio_s, lambda: pcm16_to_mulaw(phone))
    results["mu-law decode 8 kHz"] = x_realtime(audio_s, lambda: mulaw_to_pcm16(ulaw))
    for rate in (16000, 24000):
        clip = src if rate == 24000 else resample_pcm16(src, 24000, rate)
        chunks = pieces(clip, rate)
        for vad in ("webrtc", "energy"):
            try:
                Endpointer(rate, vad=vad)  # type: ignore[arg-type]
            except ImportError:
                continue

            def listen(rate: int = rate, vad: str = vad, chunks: list[bytes] = chunks) -> None:
                e = Endpointer(rate, vad=vad)  # type: ignore[arg-type]
                for c in chunks:
                    e.push(c)
                e.flush()

            results[f"endpointer {vad} {rate // 1000} kHz"] = x_realtime(audio_s, listen)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="voice loop audio speed")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    results = bench()
    width = max(map(len, results))
    print(f"{'':{width}}  x real time (one core, {SECONDS:.0f} s of audio)")
    for name, value in results.items():
        print(f"{name:{width}}  {value:10.0f}")
    if args.out is not None:
        meta = {"python": sys.version.split()[0], "machine": platform.machine()}
        args.out.write_text(json.dumps({"meta": meta, "x_realtime": results}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
