"""A voice agent that listens, answers out loud, and can be interrupted (barge-in).

    python examples/voice_loop.py              # offline: a recorded conversation
    python examples/voice_loop.py --mic        # live: microphone and speaker (needs a key)

Offline (the default, and whenever OPENROUTER_API_KEY is not set) it plays a WAV of two
spoken questions into a `VoiceSession` around a `create_agent` graph served by the
package's local OpenRouter server. The second question cuts into the long answer to the
first: playback stops, the model call is cancelled, and the conversation keeps only the
words the user heard. Replies are saved as reply_1.wav, reply_2.wav (as played) in
`examples-output/` (or `$EXAMPLES_OUT`), and it
prints each turn's latency, the heard transcript and the session's cost.

Speech is real: espeak-ng synthesizes the questions and the scripted answers when it is
installed; otherwise the spoken clips shipped with the package are used.

Live (`--mic`, with OPENROUTER_API_KEY and `pip install 'langchain-openrouter-audio[listen,
playback]'`): talk to the agent; use headphones so it does not hear itself. Ctrl-C ends.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import sys
import wave
from pathlib import Path

from _offline import clip_pcm, output_dir, transcript
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_openrouter_audio import ChatOpenRouterAudio, get_openrouter_callback, pcm16_to_wav
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_pcm16,
    speech_reply,
    tool_call_reply,
)
from langchain_openrouter_audio.voice import (
    VoiceSession,
    VoiceSummary,
    VoiceTurn,
    WavFileSink,
    WavFileSource,
)

RATE = 24000
SYSTEM = "You are a friendly voice assistant. Answer out loud, briefly."
HAS_ESPEAK = shutil.which("espeak-ng") is not None
LONG_ANSWER = (
    "It is twenty one degrees and sunny in Paris right now, with a light breeze from the "
    "west. It will stay that way all afternoon, and in the evening a few clouds will come "
    "in from the sea, so take a jacket if you go out late."
)
SHORT_ANSWER = "Tomorrow will be cooler, with some rain in the morning."
SECOND_QUESTION = "Sorry, what about tomorrow?"


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def speech(text: str, clip: str) -> bytes:
    """`text` spoken by espeak-ng, or the shipped clip `clip` without it."""
    return speech_pcm16(text) if HAS_ESPEAK else clip_pcm(clip)


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def recorded_conversation(path: Path) -> None:
    """Two spoken questions; the second comes 2.5 s after the first, over the answer."""
    first = clip_pcm("question")
    second = speech(SECOND_QUESTION, "hello")
    pcm = silence(0.5) + first + silence(2.5) + second + silence(1.5)
    path.write_bytes(pcm16_to_wav(pcm, sample_rate=RATE))


def scripted_replies(server: OpenRouterTestServer) -> dict[str, str]:
    """What the local server answers: a tool call, a long answer, a short one."""
    if HAS_ESPEAK:
        long_text, long_pcm = LONG_ANSWER, speech_pcm16(LONG_ANSWER)
        short_text, short_pcm = SHORT_ANSWER, speech_pcm16(SHORT_ANSWER)
    else:
        long_text = f"{transcript('weather_answer')} {transcript('story')}"
        long_pcm = clip_pcm("weather_answer") + clip_pcm("story")
        short_text, short_pcm = transcript("hello"), clip_pcm("hello")
    server.enqueue(
        tool_call_reply("get_weather", {"city": "Paris"}),
        speech_reply(long_pcm, long_text, interleave=True),
        speech_reply(short_pcm, short_text, interleave=True),
    )
    return {"long": long_text, "short": short_text}


def print_turn(turn: VoiceTurn) -> None:
    latency = f"{turn.latency_s * 1000:.0f} ms" if turn.latency_s is not None else "-"
    state = f"interrupted after {turn.heard_s:.2f} s" if turn.interrupted else "played out"
    print(
        f"turn {turn.index}: latency {latency} (endpointing {turn.endpoint_delay_s * 1000:.0f} "
        f"ms + response {(turn.response_s or 0) * 1000:.0f} ms), {state}"
    )
    print(f"  heard: {turn.transcript!r}")


def print_conversation(messages: list[BaseMessage]) -> None:
    print("conversation kept:")
    for message in messages:
        if isinstance(message, HumanMessage):
            print("  user: (spoken question)")
        elif isinstance(message, AIMessage) and message.tool_calls:
            print(f"  assistant: calls {message.tool_calls[0]['name']}")
        elif isinstance(message, AIMessage):
            print(f"  assistant: {message.text!r}")
        else:
            print(f"  tool: {message.text!r}")


def wav_seconds(path: Path) -> float:
    with wave.open(io.BytesIO(path.read_bytes())) as w:
        return w.getnframes() / w.getframerate()


async def offline() -> int:
    print("No OPENROUTER_API_KEY (or no --mic): a recorded conversation, offline.")
    print(f"Speech: {'espeak-ng' if HAS_ESPEAK else 'the shipped clips'}.")
    out = output_dir()
    questions = out / "questions.wav"
    recorded_conversation(questions)
    with OpenRouterTestServer() as server:
        replies = scripted_replies(server)
        llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
        agent = create_agent(llm, [get_weather], system_prompt=SYSTEM)
        sink = WavFileSink(str(out / "reply_{turn}.wav"))
        session = VoiceSession(
            agent, source=WavFileSource(questions), sink=sink, on_turn=print_turn
        )
        summary: VoiceSummary = await session.run()
        await llm.aclose()
    print(f"full first answer: {replies['long']!r}")
    for path in sink.paths:
        print(f"saved {path} ({wav_seconds(path):.2f} s as played)")
    print_conversation(session.messages)
    print(summary)
    return 0


async def live() -> int:
    from langchain_openrouter_audio.voice import MicrophoneSource, SpeakerSink

    llm = ChatOpenRouterAudio(app_title="langchain-openrouter-audio voice loop")
    agent = create_agent(llm, [get_weather], system_prompt=SYSTEM)
    session = VoiceSession(agent, source=MicrophoneSource(), sink=SpeakerSink(), on_turn=print_turn)
    print("Listening. Ask about the weather; interrupt whenever you like. Ctrl-C ends.")
    with get_openrouter_callback() as cost:
        try:
            await session.run()  # a microphone never ends: Ctrl-C cancels this
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
        print("--mic needs OPENROUTER_API_KEY; running the offline conversation instead.")
    return asyncio.run(offline())


if __name__ == "__main__":
    sys.exit(main())
