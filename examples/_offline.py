"""Offline setup shared by the examples, the notebook and the docs tests.

With `OPENROUTER_API_KEY` set, `chat_model()` gives a model talking to OpenRouter.
Without it, it starts the package's local OpenRouter server and points the model
at it. The server answers like a patient model would: it calls a bound tool, then
speaks an answer, using the spoken clips shipped with the package (espeak-ng
speech, made by `scripts/make_assets.py`), so every offline run hears real words.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import wave
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    speech_reply,
    text_reply,
    tool_call_reply,
)

__all__ = [
    "ASSETS",
    "OFFLINE_KEY",
    "chat_model",
    "clip_pcm",
    "clip_wav",
    "offline_server",
    "responder",
    "start_offline_unless_key",
    "transcript",
]

ASSETS = Path(str(files("langchain_openrouter_audio.testing") / "assets"))
"""The shipped spoken clips: `question.wav`, `weather_answer.wav`, `hello.wav`, ..."""
OFFLINE_KEY = "offline-demo-key"

_TRANSCRIPTS: dict[str, str] = json.loads((ASSETS / "transcripts.json").read_text("utf-8"))


def transcript(name: str) -> str:
    """The words spoken in the clip `name`."""
    return _TRANSCRIPTS[name]


def clip_wav(name: str) -> bytes:
    """The shipped clip `name` as WAV bytes (24 kHz, mono, 16-bit)."""
    return (ASSETS / f"{name}.wav").read_bytes()


def clip_pcm(name: str) -> bytes:
    """The shipped clip `name` as raw PCM16, as OpenRouter streams speech."""
    with wave.open(io.BytesIO(clip_wav(name))) as w:
        return w.readframes(w.getnframes())


def spoken(name: str, **kw: Any) -> Reply:
    """A scripted spoken reply saying the clip `name`."""
    return speech_reply(clip_pcm(name), transcript(name), **kw)


# -- a responder that answers sensibly ----------------------------------------------


# Plausible strings by property name, for the tools and schemas of the examples.
_STRINGS = {"city": "Paris", "location": "Paris", "time": "20:00", "name": "Ada"}


def _fake(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A value that fits a JSON schema, plausible for the examples' tools."""
    if "$ref" in schema:
        return _fake(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _fake(options[0] if options else {"type": "null"}, defs, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: _fake(sub, defs, key) for key, sub in props.items()}
    if kind == "array":
        return [_fake(schema.get("items", {}), defs, name)]
    if kind == "string":
        return next((v for k, v in _STRINGS.items() if k in name), "sunny")
    return {"integer": 2, "number": 21.0, "boolean": True}.get(kind)


def _text_of(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
            if any(isinstance(p, dict) and p.get("type") == "input_audio" for p in content):
                parts.append(transcript("question"))  # what the shipped question says
    return " ".join(parts).lower()


def _answer_clip(text: str) -> str:
    if "weather" in text or "sunny" in text:
        return "weather_answer"
    if "story" in text or "poem" in text:
        return "story"
    return "hello"


def responder(request: RecordedRequest) -> Reply:
    """Answer one request: call the bound tool first, otherwise speak (or write) an answer."""
    body = request.json or {}
    messages = body.get("messages") or [{}]
    last = messages[-1]
    tools = body.get("tools") or []
    chosen = body.get("tool_choice")
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"]["schema"]
        answer = json.dumps(_fake(schema, schema.get("$defs", {})))
        return _say(body, answer)
    if fmt.get("type") == "json_object":
        return _say(body, json.dumps({"answer": transcript("hello")}))
    if tools and last.get("role") != "tool" and chosen != "none":
        tool = tools[0]["function"]
        if isinstance(chosen, dict):
            tool = next(
                t["function"] for t in tools if t["function"]["name"] == chosen["function"]["name"]
            )
        params = tool.get("parameters") or {}
        return tool_call_reply(tool["name"], _fake(params, params.get("$defs", {})))
    name = _answer_clip(_text_of(messages))
    return spoken(name)


def _say(body: dict[str, Any], words: str) -> Reply:
    if "audio" in (body.get("modalities") or []):
        return speech_reply(clip_pcm("hello"), words)
    return text_reply(words)


@contextlib.contextmanager
def offline_server(
    answer: Callable[[RecordedRequest], Reply] = responder,
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
    server.responder = responder
    os.environ["OPENROUTER_BASE_URL"] = server.base_url
    os.environ["OPENROUTER_API_KEY"] = server.api_key
    return server


@contextlib.contextmanager
def chat_model(*replies: Reply, **kwargs: Any) -> Iterator[ChatOpenRouterAudio]:
    """OpenRouter with a key; otherwise the local server (scripted `replies` first).

    The model is closed on exit.
    """
    if os.environ.get("OPENROUTER_API_KEY"):
        print("Using OpenRouter (OPENROUTER_API_KEY is set).")
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
