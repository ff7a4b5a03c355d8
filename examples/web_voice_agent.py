"""The weather voice agent on a web page: talk to it from a browser.

    pip install -e '.[examples,web]'
    python examples/web_voice_agent.py --port 8000   # then open http://127.0.0.1:8000

With `OPENROUTER_API_KEY` set it talks to OpenRouter. Without it, it says so and runs
against the package's local OpenRouter server, whose scripted replies call the weather tool
and then answer with a spoken clip shipped with the package (espeak-ng speech), whatever
you ask. Speak, pause, and the agent answers; speak over the answer to interrupt it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from _offline import offline_server
from langchain.agents import create_agent

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.web import voice_app

SYSTEM_PROMPT = "You are a weather assistant. Answer briefly, out loud."


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


@contextlib.contextmanager
def chat_model() -> Iterator[ChatOpenRouterAudio]:
    """The real API with a key; otherwise the local server with scripted replies."""
    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENROUTER_API_KEY"):
            print("Using OpenRouter (OPENROUTER_API_KEY is set).")
            llm = ChatOpenRouterAudio(app_title="langchain-openrouter-audio web voice agent")
        else:
            print("No OPENROUTER_API_KEY: answering from the local OpenRouter test server.")
            server = stack.enter_context(offline_server())
            llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
        stack.callback(llm.close)
        yield llm


def build_app(llm: ChatOpenRouterAudio, **kwargs: Any) -> Any:
    """The weather agent behind the voice page (an ASGI app)."""
    agent = create_agent(llm, [get_weather], system_prompt=SYSTEM_PROMPT)
    return voice_app(agent, title="Weather voice agent", **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--tool-details",
        action="store_true",
        help="show the page what tools are given and return (by default only their names)",
    )
    args = parser.parse_args(argv)

    import uvicorn

    with chat_model() as llm:
        app = build_app(llm, tool_details=args.tool_details)
        print(f"Open http://{args.host}:{args.port} and press 'Start talking'.", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
