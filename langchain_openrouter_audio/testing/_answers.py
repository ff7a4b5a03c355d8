"""Offline answers that sound like a model: the shipped spoken clips, and tool calls.

`answer_like_a_model` is the responder behind ``python -m langchain_openrouter_audio.testing``,
the examples and the docs: with tools bound it calls one (arguments made up to fit the
schema), after the tool's result it speaks an answer, with a JSON schema it fills one in.
The speech is a clip shipped in ``testing/assets`` (espeak-ng speech, made by
``scripts/make_assets.py``), so an offline run hears real words.
"""

from __future__ import annotations

import io
import json
import wave
from functools import cache
from importlib.resources import files
from typing import Any

from ._replies import Reply, speech_reply, text_reply, tool_call_reply
from ._request import RecordedRequest

__all__ = ["CLIPS", "answer_like_a_model", "clip_pcm16", "clip_transcript", "clip_wav"]

CLIPS = ("question", "weather_answer", "hello", "story", "booking_request")
"""The names of the shipped spoken clips (24 kHz mono 16-bit WAV files)."""


@cache
def _transcripts() -> dict[str, str]:
    text = (files(__package__) / "assets" / "transcripts.json").read_text("utf-8")
    words: dict[str, str] = json.loads(text)
    return words


def _check(name: str) -> None:
    if name not in CLIPS:
        raise ValueError(f"no shipped clip {name!r}; the clips are {', '.join(CLIPS)}")


def clip_wav(name: str) -> bytes:
    """The shipped clip `name` as WAV bytes (24 kHz, mono, 16-bit).

    Examples:
        >>> from langchain_openrouter_audio.testing import clip_wav
        >>> clip_wav("question")[:4]
        b'RIFF'
    """
    _check(name)
    wav: bytes = (files(__package__) / "assets" / f"{name}.wav").read_bytes()
    return wav


def clip_pcm16(name: str) -> bytes:
    """The shipped clip `name` as raw 24 kHz PCM16, as OpenRouter streams speech."""
    with wave.open(io.BytesIO(clip_wav(name))) as w:
        frames: bytes = w.readframes(w.getnframes())
    return frames


def clip_transcript(name: str) -> str:
    """The words spoken in the shipped clip `name`.

    Examples:
        >>> from langchain_openrouter_audio.testing import clip_transcript
        >>> clip_transcript("question")
        'What is the weather like in Paris right now?'
    """
    _check(name)
    return _transcripts()[name]


def _spoken(name: str) -> Reply:
    return speech_reply(clip_pcm16(name), clip_transcript(name))


# Plausible strings by property name, for the tools and schemas of the examples and docs.
_STRINGS = {"city": "Paris", "location": "Paris", "time": "20:00", "name": "Ada"}


def _fake(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A value that fits a JSON schema, plausible for the examples' tools."""
    if "$ref" in schema:
        return _fake(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _fake(options[0] if options else {"type": "null"}, defs, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: _fake(sub, defs, key) for key, sub in props.items()}
    if kind == "array":
        return [_fake(schema.get("items", {}), defs, name)]
    if kind == "string":
        return next((v for k, v in _STRINGS.items() if k in name.lower()), "sunny")
    return {"integer": 2, "number": 21.0, "boolean": True}.get(kind)


def _text_of(messages: list[Any]) -> str:
    """Everything the conversation says, lower-cased; a heard clip counts as the question."""
    parts: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
            if any(isinstance(p, dict) and p.get("type") == "input_audio" for p in content):
                parts.append(clip_transcript("question"))
    return " ".join(parts).lower()


def _answer_clip(text: str) -> str:
    if "weather" in text or "sunny" in text:
        return "weather_answer"
    if "story" in text or "poem" in text:
        return "story"
    return "hello"


def _say(body: dict[str, Any], words: str) -> Reply:
    if "audio" in (body.get("modalities") or []):
        return speech_reply(clip_pcm16("hello"), words)
    return text_reply(words)


def _tool_call(tools: list[Any], chosen: Any) -> Reply:
    functions = [t["function"] for t in tools if isinstance(t, dict) and "function" in t]
    tool = functions[0]
    if isinstance(chosen, dict):
        wanted = chosen.get("function", {}).get("name")
        tool = next((f for f in functions if f.get("name") == wanted), tool)
    params = tool.get("parameters") or {}
    return tool_call_reply(tool["name"], _fake(params, params.get("$defs", {})))


def answer_like_a_model(request: RecordedRequest) -> Reply:
    """Answer one chat-completions request the way a patient audio model would.

    A bound tool is called first (unless the last message is its result or
    ``tool_choice`` is ``"none"``); a JSON schema in ``response_format`` is filled in;
    otherwise the answer is a shipped spoken clip chosen by topic (weather, a story,
    else a greeting), or its transcript when only text is asked for.

    Examples:
        >>> from langchain_openrouter_audio.testing import OpenRouterTestServer
        >>> from langchain_openrouter_audio.testing import answer_like_a_model
        >>> server = OpenRouterTestServer()
        >>> server.responder = answer_like_a_model  # answers once the queue is empty
    """
    body = request.json if isinstance(request.json, dict) else {}
    messages = body.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    tools = body.get("tools") or []
    chosen = body.get("tool_choice")
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"]["schema"]
        return _say(body, json.dumps(_fake(schema, schema.get("$defs", {}))))
    if fmt.get("type") == "json_object":
        return _say(body, json.dumps({"answer": clip_transcript("hello")}))
    if tools and last.get("role") != "tool" and chosen != "none":
        return _tool_call(tools, chosen)
    return _spoken(_answer_clip(_text_of(messages)))
