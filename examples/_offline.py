"""Offline setup shared by the examples and the notebook.

With `OPENROUTER_API_KEY` set, `chat_model()` gives a model talking to OpenRouter.
Without it, it starts the package's local OpenRouter server and points the model at it.
The server answers like a patient model would (`answer_like_a_model`, the same answers as
`python -m langchain_openrouter_audio.testing`): it calls a bound tool, then speaks an
answer, using the spoken clips shipped with the package, so every offline run hears real
words. `output_dir()` is where an example saves what it makes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    answer_like_a_model,
    clip_pcm16,
    clip_transcript,
    clip_wav,
)

__all__ = [
    "ASSETS",
    "OFFLINE_KEY",
    "chat_model",
    "clip_pcm",
    "clip_wav",
    "offline_server",
    "output_dir",
    "start_offline_unless_key",
    "transcript",
]

ASSETS = Path(str(files("langchain_openrouter_audio.testing") / "assets"))
"""The shipped spoken clips: `question.wav`, `weather_answer.wav`, `hello.wav`, ..."""
OFFLINE_KEY = "offline-demo-key"
OUTPUT_ENV = "EXAMPLES_OUT"
"""Where examples save files: this variable, else `examples-output/` in the current folder."""

transcript = clip_transcript
clip_pcm = clip_pcm16


def output_dir() -> Path:
    """The folder the examples write into (made if missing): `$EXAMPLES_OUT`, else
    `examples-output/` in the current folder."""
    path = Path(os.environ.get(OUTPUT_ENV) or "examples-output")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def offline_server(
    answer: Callable[[RecordedRequest], Reply] = answer_like_a_model,
) -> Iterator[OpenRouterTestServer]:
    """The local OpenRouter server, answering with `answer` once its queue is empty."""
    with OpenRouterTestServer(api_key=OFFLINE_KEY) as server:
        server.responder = answer
        yield server


def start_offline_unless_key() -> OpenRouterTestServer | None:
    """For notebooks: without a key, start the local server and point the env vars at it.

    `ChatOpenRouterAudio()` then reads `OPENROUTER_BASE_URL` and `OPENROUTER_API_KEY`
    and talks to the server, exactly as it would to OpenRouter. Returns the server
    (stop it when done), or None when `OPENROUTER_API_KEY` is set.
    """
    if os.environ.get("OPENROUTER_API_KEY"):
        print("Using OpenRouter (OPENROUTER_API_KEY is set).")
        return None
    print("No OPENROUTER_API_KEY: running offline against the local OpenRouter test server.")
    server = OpenRouterTestServer(api_key=OFFLINE_KEY).start()
    server.responder = answer_like_a_model
    os.environ["OPENROUTER_BASE_URL"] = server.base_url
    os.environ["OPENROUTER_API_KEY"] = server.api_key
    return server


@contextlib.contextmanager
def chat_model(*replies: Reply, **kwargs: Any) -> Iterator[ChatOpenRouterAudio]:
    """OpenRouter with a key; otherwise the local server (scripted `replies` first).

    The model is closed on exit.
    """
    if os.environ.get("OPENROUTER_API_KEY"):
        where = os.environ.get("OPENROUTER_BASE_URL") or "OpenRouter"
        print(f"Using {where} (OPENROUTER_API_KEY is set).")
        llm = ChatOpenRouterAudio(**kwargs)
        try:
            yield llm
        finally:
            llm.close()
        return
    print("No OPENROUTER_API_KEY: running offline against the local OpenRouter test server.")
    with offline_server() as server:
        server.enqueue(*replies)
        llm = ChatOpenRouterAudio(base_url=server.base_url, api_key=server.api_key, **kwargs)
        try:
            yield llm
        finally:
            llm.close()
