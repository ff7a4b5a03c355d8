"""The weather voice agent as a LangGraph Server graph (`voice_agent` in langgraph.json).

    pip install -e '.[dev]'      # or: pip install 'langgraph-cli[inmem]' langchain
    cd examples/langgraph_server && langgraph dev --no-browser

With `OPENROUTER_API_KEY` set (in the environment or an `.env` next to langgraph.json) the
agent talks to OpenRouter. Without it, importing this module starts the package's local
OpenRouter server in a background thread of the LangGraph Server process, and the agent
answers from it: a weather tool call, then a spoken clip shipped with the package.
Stream a run with `langgraph_sdk` in `messages-tuple` mode to get the speech as it is made.
"""

from __future__ import annotations

import io
import json
import logging
import os
import wave
from importlib.resources import files
from typing import Any

from langchain.agents import create_agent

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    speech_reply,
    tool_call_reply,
)

log = logging.getLogger(__name__)
SYSTEM_PROMPT = "You are a weather assistant. Answer briefly, out loud."
ASSETS = files("langchain_openrouter_audio.testing") / "assets"


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def answer_clip() -> tuple[bytes, str]:
    """The offline spoken answer: raw 24 kHz PCM16 and its transcript."""
    with wave.open(io.BytesIO((ASSETS / "weather_answer.wav").read_bytes())) as w:
        pcm = w.readframes(w.getnframes())
    words = json.loads((ASSETS / "transcripts.json").read_text("utf-8"))["weather_answer"]
    return pcm, words


def scripted(request: RecordedRequest) -> Reply:
    """Offline model: call the weather tool, then speak the answer."""
    messages = request.json.get("messages") or [{}]
    if messages[-1].get("role") != "tool":
        return tool_call_reply("get_weather", {"city": "Paris"})
    return speech_reply(*answer_clip())


def _model() -> ChatOpenRouterAudio:
    if os.environ.get("OPENROUTER_API_KEY"):
        return ChatOpenRouterAudio(app_title="langchain-openrouter-audio langgraph server")
    # One local server per LangGraph Server process, alive as long as the process: the
    # runtime imports this module once and runs every thread's runs in that process.
    server = OpenRouterTestServer(api_key="offline-demo-key").start()
    server.responder = scripted
    log.warning("No OPENROUTER_API_KEY: voice_agent answers from %s", server.base_url)
    return ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)


graph: Any = create_agent(_model(), [get_weather], system_prompt=SYSTEM_PROMPT)
