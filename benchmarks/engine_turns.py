"""Turn-taking in whole conversations: a `VoiceSession` over the corpus and the package's
local OpenRouter server, counting replies, interruptions and upstream requests.

Rows: "before" (the engine's turn-taking off: `continuation=False`,
`min_interruption_ms=0`, `backchannel_window_s=0`, no echo cancellation) and "after" (the
defaults); a tree whose engine has no such settings gives one row of its own defaults.
Scenes: backchannels ("yeah", "mm-hm", "okay", "right") 2 s into an 8 s reply; a 0.9 s
pause mid-sentence, 3 voices, with a model 1 s to its first byte (real time, about 30 s);
the agent's own echo from a loudspeaker (`corpus.LoudspeakerRoom`); the endpointing delay
of the 12 finished sentences (`VoiceTurn.endpoint_delay_s`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import statistics
from typing import Any

BACKCHANNELS = ("yeah", "mm-hm", "okay", "right")
OFF = {"continuation": False, "min_interruption_ms": 0, "backchannel_window_s": 0.0}


def conversation(
    user: bytes,
    replies: list[tuple[bytes, str]],
    settings: dict[str, Any],
    *,
    realtime: bool = False,
    latency_s: float = 0.0,
    room: bool = False,
) -> dict[str, Any]:
    """One conversation through a VoiceSession: its turns, requests and playback pauses."""
    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.testing import OpenRouterTestServer, corpus, speech_reply
    from langchain_openrouter_audio.voice import CallbackSink, PcmSource, VoiceSession

    loud = corpus.LoudspeakerRoom(user) if room else None

    async def paced() -> Any:
        for i in range(0, len(user), 640):
            if realtime:
                await asyncio.sleep(0.02)
            yield user[i : i + 640]

    async def go() -> dict[str, Any]:
        with OpenRouterTestServer() as server:
            for n, (pcm, text) in enumerate(replies):
                delay = latency_s if n == 0 else 0.0
                server.enqueue(speech_reply(pcm, text, headers_delay_s=delay))
            llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
            if loud is not None:
                source = PcmSource(loud.microphone(), sample_rate=16000, realtime=False)
                sink = CallbackSink(loud.play)
            else:
                source = PcmSource(paced(), sample_rate=16000, realtime=realtime)
                sink = CallbackSink(lambda frame: None)
            summary = await VoiceSession(llm, source=source, sink=sink, **settings).run()
            await llm.aclose()
            return {
                "requests": len(server.requests),
                "turns": summary.turns,
                "pauses": loud.pauses() if loud is not None else None,
            }

    return asyncio.run(go())


def figures(settings: dict[str, Any], echo: bool) -> dict[str, Any]:
    """Every scene's figures for one set of engine settings."""
    from langchain_openrouter_audio.testing import corpus, speech_pcm16

    reply = speech_pcm16(corpus.AGENT_REPLY)
    reply_s = len(reply) / 48000
    question = corpus.to_pcm16(corpus.speak(corpus.QUESTION))
    row: dict[str, Any] = {}
    stopped = extra = whole = 0
    for word in BACKCHANNELS:
        back = corpus.to_pcm16(corpus.speak(word, "en-us", speed=190))
        # The reply starts about 0.6 s after the question; the word comes 2 s into it.
        user = bytes(9600) + question + bytes(19200) + bytes(64000) + back + bytes(320000)
        out = conversation(user, [(reply, corpus.AGENT_REPLY)] * 2, settings)
        first = out["turns"][0]
        stopped += first.interrupted
        extra += out["requests"] - 1
        whole += abs(first.heard_s - reply_s) < 0.03
    n = len(BACKCHANNELS)
    row["backchannel: reply stopped"] = f"{stopped} / {n}"
    row["backchannel: extra requests"] = f"{extra} / {n}"
    row["backchannel: reply heard whole"] = f"{whole} / {n}"
    scenes = [corpus.paused_sentence(0.9, voice, 0) for voice in corpus.VOICES]
    replies = 0
    for scene in scenes:
        out = conversation(
            scene.pcm, [(reply[:48000], "Sure.")] * 2, settings, realtime=True, latency_s=1.0
        )
        replies += len(out["turns"])
    row["0.9 s pause: replies"] = f"{replies} for {len(scenes)}"
    if importlib.util.find_spec("pywebrtc_audio") and hasattr(corpus, "LoudspeakerRoom"):
        user = bytes(9600) + question + bytes(384000)
        room_settings = {**settings, "echo_cancellation": True} if echo else settings
        out = conversation(user, [(reply, corpus.AGENT_REPLY)] * 3, room_settings, room=True)
        row["echo: reply pauses"] = out["pauses"]
        row["echo: reply stopped"] = "yes" if out["turns"][0].interrupted else "no"
        row["echo: extra requests"] = out["requests"] - 1
    delays = []
    for scene in corpus.finished_sentences():
        out = conversation(scene.pcm, [(reply[:24000], "Yes.")], settings)
        delays += [turn.endpoint_delay_s for turn in out["turns"]]
    row["finished: median endpointing delay"] = statistics.median(delays)
    return row


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    title = "Turn-taking in whole conversations (VoiceSession, local server)"
    from langchain_openrouter_audio.voice import VoiceSession

    has = inspect.signature(VoiceSession).parameters
    if "continuation" not in has:  # an engine from before turn-taking: its defaults
        return {title: [{"engine": "defaults", **figures({}, echo=False)}]}
    before = dict(OFF)
    if "echo_cancellation" in has:
        before["echo_cancellation"] = False
    rows = [{"engine": "before", **figures(before, echo=False)}]
    rows.append({"engine": "after", **figures({}, echo=True)})
    return {title: rows}
