"""A file name where audio is expected gets a message saying what to call."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from langchain_openrouter_audio import audio_block_from_bytes
from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply
from tests._helpers import ASSETS, make_llm

QUESTION = ASSETS / "question.wav"


@pytest.mark.parametrize("name", ["question.wav", Path("question.wav")])
def test_audio_block_from_bytes_names_the_file_helper(name: str | Path) -> None:
    with pytest.raises(TypeError, match=r"audio_block_from_file\('question.wav'\)"):
        audio_block_from_bytes(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "prompt",
    ["question.wav", " recordings/Q1.MP3 ", [{"type": "text", "text": "clip.ogg"}]],
)
def test_a_prompt_that_is_only_a_file_name_is_refused(
    openrouter_server: OpenRouterTestServer, prompt: str | list[dict[str, str]]
) -> None:
    llm = make_llm(openrouter_server)
    with pytest.raises(ValueError, match=r"HumanMessage\(content=\[audio_block_from_file\("):
        llm.invoke([HumanMessage(content=prompt)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="audio_block_from_file"):
        llm.invoke(prompt if isinstance(prompt, str) else "x.wav")
    assert openrouter_server.requests == []


def test_a_sentence_naming_a_file_is_just_text(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("It is a WAV file."))
    llm = make_llm(openrouter_server, model="openai/gpt-4o")
    assert llm.invoke("What kind of file is question.wav?").text == "It is a WAV file."


@pytest.mark.parametrize(
    "block",
    [
        {"type": "audio", "path": str(QUESTION)},
        {"type": "audio", "path": QUESTION, "mime_type": "audio/wav"},
        {"type": "audio", "data": QUESTION.read_bytes()},
    ],
)
def test_blocks_with_a_path_or_raw_bytes_are_read(
    openrouter_server: OpenRouterTestServer, block: dict[str, object]
) -> None:
    openrouter_server.enqueue(text_reply("Sunny."))
    llm = make_llm(openrouter_server, modalities=["text"])
    assert llm.invoke([HumanMessage(content=[block])]).text == "Sunny."
    (part,) = openrouter_server.requests[-1].json["messages"][0]["content"]
    assert part["input_audio"]["format"] == "wav"
    assert base64.b64decode(part["input_audio"]["data"]) == QUESTION.read_bytes()


def test_a_path_over_the_limit_is_refused_before_reading(
    openrouter_server: OpenRouterTestServer,
) -> None:
    llm = make_llm(openrouter_server, max_audio_bytes=1000)
    with pytest.raises(ValueError, match="over max_audio_bytes=1000"):
        llm.invoke([HumanMessage(content=[{"type": "audio", "path": str(QUESTION)}])])
    with pytest.raises(ValueError, match="cannot read"):
        llm.invoke([HumanMessage(content=[{"type": "audio", "path": "/nonexistent.wav"}])])
    assert openrouter_server.requests == []
