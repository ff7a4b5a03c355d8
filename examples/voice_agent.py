"""A voice tool agent: a spoken question in, a tool call, a spoken answer out.

    python examples/voice_agent.py            # offline unless OPENROUTER_API_KEY is set

With `OPENROUTER_API_KEY` set it talks to OpenRouter. Without it, it says so
and runs the same code against the package's local OpenRouter server, which
answers with spoken clips shipped with the package (espeak-ng speech). The
question is a shipped clip too: "What is the weather like in Paris right now?".
Tool calls print as the model makes them and the answer's transcript as it is spoken;
the answer is saved as `reply.wav` in `examples-output/` (or `$EXAMPLES_OUT`).
"""

from __future__ import annotations

import sys
from typing import Any

from _offline import chat_model, clip_wav, output_dir, transcript
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.outputs import LLMResult

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    audio_block_from_bytes,
    save_audio,
)


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


class LivePrinter(AudioCallbackHandler):
    """Prints each tool call when the model makes it, then the answer as it is spoken."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_bytes = 0
        self.speaking = False

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        if self.speaking:
            print()  # the end of the spoken answer
            self.speaking = False
        for generation in response.generations[0]:
            for call in getattr(getattr(generation, "message", None), "tool_calls", []):
                print(f"Tool call: {call['name']}({call['args']})", flush=True)

    def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        if not self.speaking:
            print("Answer, as it is spoken: ", end="")
            self.speaking = True
        print(text, end="", flush=True)

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        self.audio_bytes += len(chunk)  # a real app would play it: see SpeakerPlayer


def question_message() -> HumanMessage:
    """The spoken question: a WAV clip in a v1 `audio` block."""
    wav = clip_wav("question")
    print(f"Asking, in {(len(wav) - 44) / 48000:.1f} s of speech: {transcript('question')!r}")
    return HumanMessage(content=[audio_block_from_bytes(wav)])


def main() -> int:
    with chat_model(app_title="langchain-openrouter-audio voice agent") as llm:
        agent = create_agent(llm, [get_weather], system_prompt="Answer briefly, out loud.")
        printer = LivePrinter()
        result = agent.invoke({"messages": [question_message()]}, config={"callbacks": [printer]})
    reply = result["messages"][-1]
    meta = reply.response_metadata
    if "audio_seconds" not in meta:
        print("The reply had no speech.")
        return 1
    path = save_audio(reply, output_dir() / "reply.wav")
    print(
        f"Saved {meta['audio_seconds']:.1f} s of speech to {path} "
        f"(first audio after {meta['time_to_first_audio_s'] * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
