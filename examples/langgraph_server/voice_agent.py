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

import logging
import os
from typing import Any

from langchain.agents import create_agent

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import OpenRouterTestServer, answer_like_a_model

log = logging.getLogger(__name__)
SYSTEM_PROMPT = "You are a weather assistant. Answer briefly, out loud."


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def _model() -> ChatOpenRouterAudio:
    if os.environ.get("OPENROUTER_API_KEY"):
        return ChatOpenRouterAudio(app_title="langchain-openrouter-audio langgraph server")
    # One local server per LangGraph Server process, alive as long as the process: the
    # runtime imports this module once and runs every thread's runs in that process.
    server = OpenRouterTestServer(api_key="offline-demo-key").start()
    server.responder = answer_like_a_model  # a weather tool call, then a spoken clip
    log.warning("No OPENROUTER_API_KEY: voice_agent answers from %s", server.base_url)
    return ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)


graph: Any = create_agent(_model(), [get_weather], system_prompt=SYSTEM_PROMPT)
