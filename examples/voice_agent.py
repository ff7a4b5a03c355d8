"""A voice tool agent: a spoken question in, a tool call, a spoken answer out.

    python examples/voice_agent.py            # offline unless OPENROUTER_API_KEY is set

With `OPENROUTER_API_KEY` set it talks to OpenRouter. Without it, it says so
and runs the same code against the package's local OpenRouter server with
scripted replies. The transcript prints as it is spoken; the answer is saved
as `reply.wav` in the current directory.

The spoken question comes from `espeak-ng` (Debian: `apt-get install
espeak-ng`); without it the question is sent as text.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    ChatOpenRouterAudio,
    audio_block_from_bytes,
    pcm16_to_wav,
    save_audio,
)

QUESTION = "What is the weather like in Paris right now?"


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


class LivePrinter(AudioCallbackHandler):
    """Prints the transcript as it is generated and counts the speech."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_bytes = 0

    def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        print(text, end="", flush=True)

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        self.audio_bytes += len(chunk)  # a real app would play it: see SpeakerPlayer

    def on_audio_end(self, **kwargs: Any) -> None:
        print()


def question_message() -> HumanMessage:
    if shutil.which("espeak-ng") is None:
        print("(espeak-ng not found: asking in text instead of speech)")
        return HumanMessage(QUESTION)
    from langchain_openrouter_audio.testing import speech_pcm16

    wav = pcm16_to_wav(speech_pcm16(QUESTION))
    print(f"Asking, in {len(wav) // 48000:.0f} s of speech: {QUESTION!r}")
    return HumanMessage(content=[audio_block_from_bytes(wav)])


@contextlib.contextmanager
def chat_model() -> Iterator[ChatOpenRouterAudio]:
    """The real API with a key; otherwise the local server with a scripted reply."""
    if os.environ.get("OPENROUTER_API_KEY"):
        print("Using OpenRouter (OPENROUTER_API_KEY is set).")
        llm = ChatOpenRouterAudio(app_title="langchain-openrouter-audio voice agent")
        try:
            yield llm
        finally:
            llm.close()
        return
    print("No OPENROUTER_API_KEY: running offline against the local OpenRouter test server.")
    from langchain_openrouter_audio.testing import (
        OpenRouterTestServer,
        speech_pcm16,
        speech_reply,
        tone_pcm16,
        tool_call_reply,
    )

    answer = "It is twenty one degrees and sunny in Paris."
    pcm = speech_pcm16(answer) if shutil.which("espeak-ng") else tone_pcm16(2.0)
    with OpenRouterTestServer(api_key="offline-demo-key") as server:
        server.enqueue(
            tool_call_reply("get_weather", {"city": "Paris"}),
            speech_reply(pcm, answer),
        )
        llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
        try:
            yield llm
        finally:
            llm.close()


def main() -> int:
    with chat_model() as llm:
        agent = create_agent(llm, [get_weather], system_prompt="Answer briefly, out loud.")
        printer = LivePrinter()
        result = agent.invoke({"messages": [question_message()]}, config={"callbacks": [printer]})
    for message in result["messages"]:
        for call in getattr(message, "tool_calls", []):
            print(f"Tool call: {call['name']}({call['args']})")
    reply = result["messages"][-1]
    print(f"Transcript: {reply.text}")
    meta = reply.response_metadata
    if "audio_seconds" not in meta:
        print("The reply had no speech.")
        return 1
    path = save_audio(reply, "reply.wav")
    print(
        f"Saved {meta['audio_seconds']:.1f} s of speech to {path} "
        f"(first audio after {meta['time_to_first_audio_s'] * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
