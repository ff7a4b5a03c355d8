"""The weather voice agent on a phone number, through Twilio Media Streams.

    pip install -e '.[examples,web]'
    python examples/phone_agent.py --port 8000                 # serve the Twilio routes
    python examples/phone_agent.py --port 8000 --call          # and place one simulated call

With `OPENROUTER_API_KEY` set it talks to OpenRouter; without it, it says so and answers
from the package's local OpenRouter server (a weather tool call, then a spoken clip shipped
with the package), whatever is asked. `TWILIO_AUTH_TOKEN` is your Twilio account's auth
token: the routes refuse every request Twilio did not sign with it. Offline, without it, a
demo token is used that only the simulated Twilio (`--call`) knows.

For a real number: expose the port over https (`ngrok http 8000`), set the number's voice
webhook to `https://<your host>/twilio/voice` (HTTP POST) and call it. Behind a proxy that
rewrites the host, pass `--public-url https://<your host>`. docs/phone.md has the steps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from _offline import clip_pcm, offline_server
from langchain.agents import create_agent

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.web import voice_app

SYSTEM_PROMPT = (
    "You are a weather assistant on the phone. Answer briefly, out loud, in one or two "
    "short sentences."
)
DEMO_TWILIO_TOKEN = "offline-demo-twilio-token"


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


@contextlib.contextmanager
def chat_model() -> Iterator[ChatOpenRouterAudio]:
    """The real API with a key; otherwise the local server with scripted replies."""
    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENROUTER_API_KEY"):
            print("Using OpenRouter (OPENROUTER_API_KEY is set).")
            llm = ChatOpenRouterAudio(app_title="langchain-openrouter-audio phone agent")
        else:
            print("No OPENROUTER_API_KEY: answering from the local OpenRouter test server.")
            server = stack.enter_context(offline_server())
            llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key)
        stack.callback(llm.close)
        yield llm


def twilio_token() -> str:
    token = os.environ.get("TWILIO_AUTH_TOKEN")
    if token:
        return token
    if os.environ.get("OPENROUTER_API_KEY"):
        sys.exit("Set TWILIO_AUTH_TOKEN (Twilio console, Account info) to take real calls.")
    print("No TWILIO_AUTH_TOKEN: using a demo token; only the simulated Twilio can call.")
    return DEMO_TWILIO_TOKEN


def build_app(llm: ChatOpenRouterAudio, token: str, public_url: str | None = None) -> Any:
    """The weather agent behind a phone number (an ASGI app; the web page is there too)."""
    agent = create_agent(llm, [get_weather], system_prompt=SYSTEM_PROMPT)
    return voice_app(
        agent,
        title="Weather phone agent",
        twilio_auth_token=token,
        public_url=public_url,
        max_sessions=20,
        max_turns=20,
    )


async def place_call(base_url: str, token: str) -> None:
    """Call the app the way Twilio would, ask the shipped question, listen to the answer."""
    from langchain_openrouter_audio.testing import TwilioSimulator

    twilio = TwilioSimulator(base_url, auth_token=token)
    async with twilio.call() as call:
        print("Simulated call: the caller asks about the weather in Paris...", flush=True)
        _, asked = await call.say(clip_pcm("question"), sample_rate=24_000)
        await call.until_reply_played(timeout_s=60)
    answer = call.played[-1]
    print(
        f"The caller heard {call.played_seconds:.2f} s of answer, "
        f"starting {answer.start - asked:.2f} s after they stopped talking.",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--public-url", help="the https address Twilio calls, behind a proxy")
    parser.add_argument("--call", action="store_true", help="place one simulated call, then exit")
    args = parser.parse_args(argv)
    if args.call and args.public_url:
        parser.error("--call calls the app where it listens; leave out --public-url")

    import uvicorn

    token = twilio_token()
    with chat_model() as llm:
        app = build_app(llm, token, args.public_url)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
        server = uvicorn.Server(config)
        if not args.call:
            print(
                f"Voice webhook: http://{args.host}:{args.port}/twilio/voice "
                "(put it on the public https address in the Twilio console).",
                flush=True,
            )
            server.run()
            return 0
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                return 1
            time.sleep(0.05)
        try:
            asyncio.run(place_call(f"http://{args.host}:{args.port}", token))
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
