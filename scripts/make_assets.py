"""Regenerate the spoken clips the demo, the examples and the docs tests use.

    python scripts/make_assets.py          # needs espeak-ng (Debian: apt-get install espeak-ng)

Writes `langchain_openrouter_audio/testing/assets/<name>.wav` (24 kHz, mono, 16-bit,
leading and trailing silence trimmed) and `transcripts.json` (name -> the words
spoken). The clips are committed, so nobody needs espeak-ng to run the demo.
"""

from __future__ import annotations

import json
import sys
from array import array
from pathlib import Path

from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import speech_pcm16

ASSETS = Path(__file__).resolve().parents[1] / "langchain_openrouter_audio" / "testing" / "assets"

# name -> words. Keep them short: the clips ship in the wheel.
CLIPS = {
    "question": "What is the weather like in Paris right now?",
    "weather_answer": "It is twenty one degrees and sunny in Paris.",
    "hello": "Hello! It is nice to meet you.",
    "story": "Once upon a time, a little robot learned to sing.",
    "booking_request": "Please book a table for two at eight tonight.",
}

_SILENCE = 300  # absolute sample value under which a sample counts as silence
_MARGIN = 2400  # samples of silence kept at each end (0.1 s)


def trim(pcm: bytes) -> bytes:
    """Drop the silence espeak-ng leaves around the words, keeping a short margin."""
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    loud = [i for i, s in enumerate(samples) if abs(s) > _SILENCE]
    if not loud:
        return pcm
    start = max(0, loud[0] - _MARGIN)
    end = min(len(samples), loud[-1] + _MARGIN)
    out = samples[start:end]
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def main() -> int:
    ASSETS.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, words in CLIPS.items():
        wav = pcm16_to_wav(trim(speech_pcm16(words)))
        (ASSETS / f"{name}.wav").write_bytes(wav)
        total += len(wav)
        print(f"{name}.wav: {len(wav) / 48000:.1f} s, {len(wav) // 1024} KiB  {words!r}")
    transcripts = json.dumps(CLIPS, indent=2) + "\n"
    (ASSETS / "transcripts.json").write_text(transcripts, encoding="utf-8")
    print(f"total {total // 1024} KiB in {ASSETS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
