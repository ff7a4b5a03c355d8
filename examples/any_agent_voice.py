"""Any chat model as a voice agent: transcribe, think in text, speak sentence by sentence.

    python examples/any_agent_voice.py          # offline: a recorded question
    python examples/any_agent_voice.py --mic    # live: microphone and speaker (needs a key)

The agent is a `create_agent` graph on a text-only model (`openai/gpt-4o`) with a tool.
It never hears audio and is never asked for any: `VoiceSession(transcription=...,
speech=...)` transcribes each utterance into a text question, and speaks the agent's
text reply with a TTS model one sentence at a time while the text still streams, so the
first words play before the reply is written.

Offline (the default, and whenever OPENROUTER_API_KEY is not set) the package's local
OpenRouter server plays every part: the text model (a tool call, then a streamed
answer), the transcription endpoint (it cannot really transcribe, so it is told what
the recorded question says) and the speech endpoint (espeak-ng speaks each sentence).
The reply is saved as played in `examples-output/reply_1.wav` (or `$EXAMPLES_OUT`).

Live (`--mic`, with OPENROUTER_API_KEY and `pip install 'langchain-openrouter-audio[listen,
playback]'`): talk to the agent; use headphones so it does not hear itself. Ctrl-C ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from _offline import clip_pcm, output_dir, transcript
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage

from langchain_openrouter_audio import (
    ChatOpenRouterAudio,
    OpenRouterSpeech,
    OpenRouterTranscription,
    get_openrouter_callback,
    pcm16_to_wav,
)
from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply, tool_call_reply
from langchain_openrouter_audio.voice import VoiceSession, VoiceTurn, WavFileSink, WavFileSource

RATE = 24000
SYSTEM = "You are a friendly voice assistant. Answer briefly, in plain sentences."
ANSWER = (
    "It is twenty one degrees and sunny in Paris. "
    "Take your sunglasses if you go out. "
    "The evening will stay warm, with a light wind from the west."
)
TEXT_MODEL = "openai/gpt-4o"
STT_MODEL = "openai/whisper-1"
TTS_MODEL = "openai/gpt-4o-mini-tts-2025-12-15"


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def print_turn(turn: VoiceTurn) -> None:
    response = f"{turn.response_s * 1000:.0f} ms" if turn.response_s is not None else "-"
    state = f"interrupted after {turn.heard_s:.2f} s" if turn.interrupted else "played out"
    print(f"turn {turn.index}: first audio {response} after the question ended, {state}")
    print(f"  heard: {turn.transcript!r}")


def recorded_question() -> Path:
    """The shipped spoken question, with half a second of silence before it, 2 s after."""
    path = output_dir() / "question_24k.wav"
    silence = bytes(2 * RATE // 2)
    path.write_bytes(pcm16_to_wav(silence + clip_pcm("question") + silence * 4))
    return path


async def offline() -> int:
    print("No OPENROUTER_API_KEY (or no --mic): a recorded question, offline.")
    questions = recorded_question()
    with OpenRouterTestServer() as server:
        # The local server cannot transcribe: it is told what the recording says.
        server.transcript = transcript("question")
        server.enqueue(
            tool_call_reply("get_weather", {"city": "Paris"}),
            text_reply(ANSWER, text_piece_chars=6, event_delay_s=0.03),
        )
        connection = {"base_url": server.base_url, "api_key": server.api_key}
        llm = ChatOpenRouterAudio(model=TEXT_MODEL, **connection)
        stt = OpenRouterTranscription(model=STT_MODEL, **connection)
        tts = OpenRouterSpeech(model=TTS_MODEL, voice="alloy", **connection)
        agent = create_agent(llm, [get_weather], system_prompt=SYSTEM)
        sink = WavFileSink(str(output_dir() / "reply_{turn}.wav"))
        session = VoiceSession(
            agent,
            source=WavFileSource(questions),
            sink=sink,
            transcription=stt,
            speech=tts,
            on_turn=print_turn,
        )
        with get_openrouter_callback() as cost:
            await session.run()
        for model in (llm, stt, tts):
            await model.aclose()
        spoken = [r.json["input"] for r in server.requests if r.path.endswith("/audio/speech")]
    question = next(m for m in session.messages if isinstance(m, HumanMessage))
    answer = session.messages[-1]
    print(f"The agent read: {question.text!r}")
    if isinstance(answer, AIMessage):
        print(f"The agent wrote: {answer.text!r}")
    for i, sentence in enumerate(spoken, 1):
        print(f"  spoken {i}: {sentence!r}")
    for path in sink.paths:
        print(f"saved {path}")
    print(f"cost (transcription + model + speech): ${cost.total_cost:.6f}")
    return 0


async def live() -> int:
    from langchain_openrouter_audio.voice import MicrophoneSource, SpeakerSink

    llm = ChatOpenRouterAudio(model=TEXT_MODEL, app_title="langchain-openrouter-audio")
    agent = create_agent(llm, [get_weather], system_prompt=SYSTEM)
    session = VoiceSession(
        agent,
        source=MicrophoneSource(),
        sink=SpeakerSink(),
        transcription=STT_MODEL,
        speech=TTS_MODEL,
        on_turn=print_turn,
    )
    print("Listening. Ask about the weather; interrupt whenever you like. Ctrl-C ends.")
    with get_openrouter_callback() as cost:
        try:
            await session.run()
        finally:
            print(f"{len(session.turns)} turns, ${cost.total_cost:.4f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mic", action="store_true", help="live on microphone and speaker")
    args = parser.parse_args()
    if args.mic and os.environ.get("OPENROUTER_API_KEY"):
        try:
            return asyncio.run(live())
        except KeyboardInterrupt:
            return 0
    if args.mic:
        print("--mic needs OPENROUTER_API_KEY; running offline instead.")
    return asyncio.run(offline())


if __name__ == "__main__":
    sys.exit(main())
