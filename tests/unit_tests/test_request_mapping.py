"""LangChain messages -> OpenRouter request bodies (pure functions, no I/O)."""

from __future__ import annotations

import base64

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio._request import convert_messages
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import tone_pcm16

WAV = pcm16_to_wav(tone_pcm16(0.05))
WAV_B64 = base64.b64encode(WAV).decode()


def _convert(*messages: object) -> list[dict[str, object]]:
    return convert_messages(list(messages), max_audio_bytes=10**6)  # type: ignore[arg-type]


def test_roles_and_text() -> None:
    converted = _convert(
        SystemMessage("sys"),
        HumanMessage("hi", name="ann"),
        ChatMessage(role="developer", content="dev"),
        AIMessage("hello"),
    )
    assert converted == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "developer", "content": "dev"},
        {"role": "assistant", "content": "hello"},
    ]


def test_assistant_tool_calls_without_text_and_tool_results() -> None:
    call = {"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}
    converted = _convert(
        AIMessage("", tool_calls=[call]),
        ToolMessage(content=[{"type": "text", "text": "42"}], tool_call_id="c1"),
    )
    assert converted[0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
        ],
    }
    assert converted[1] == {"role": "tool", "tool_call_id": "c1", "content": "42"}


def test_spoken_reply_is_sent_as_transcript_only() -> None:
    spoken = AIMessage(
        content=[
            {"type": "text", "text": "It is sunny."},
            {"type": "audio", "base64": WAV_B64, "mime_type": "audio/wav", "id": "audio_1"},
        ]
    )
    assert _convert(spoken) == [{"role": "assistant", "content": "It is sunny."}]


def test_audio_block_keeps_its_base64_and_format() -> None:
    [message] = _convert(
        HumanMessage(
            content=[
                "transcribe",
                {"type": "audio", "base64": WAV_B64, "mime_type": "audio/x-wav"},
                {"type": "audio", "url": f"data:audio/wav;base64,{WAV_B64}"},
            ]
        )
    )
    assert message["content"] == [
        {"type": "text", "text": "transcribe"},
        {"type": "input_audio", "input_audio": {"data": WAV_B64, "format": "wav"}},
        {"type": "input_audio", "input_audio": {"data": WAV_B64, "format": "wav"}},
    ]


def test_image_blocks_become_image_url_parts() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8)).decode()
    [message] = _convert(
        HumanMessage(
            content=[
                {"type": "image", "base64": png, "mime_type": "image/png"},
                {"type": "image", "url": "https://example.test/cat.png"},
                {"type": "image_url", "image_url": {"url": "https://example.test/dog.png"}},
            ]
        )
    )
    urls = [part["image_url"]["url"] for part in message["content"]]  # type: ignore[index]
    assert urls == [
        f"data:image/png;base64,{png}",
        "https://example.test/cat.png",
        "https://example.test/dog.png",
    ]


def test_unknown_block_type_is_named() -> None:
    with pytest.raises(ValueError, match="content block 0 has unsupported type 'hologram'"):
        _convert(HumanMessage(content=[{"type": "hologram"}]))


def test_body_for_spoken_and_text_replies() -> None:
    llm = ChatOpenRouterAudio(api_key="k", voice="sage", stop=["END"], seed=3)
    request = llm._request([HumanMessage("hi")], None, {}, stream=False)
    body, spoken = request.body, request.spoken
    assert spoken
    assert body["stream"] is True
    assert body["audio"] == {"voice": "sage", "format": "pcm16"}
    assert (body["stop"], body["seed"]) == (["END"], 3)
    request = llm._request(
        [HumanMessage("hi")], ["STOP"], {"modalities": ["text"], "model": "x/y"}, stream=False
    )
    body, spoken = request.body, request.spoken
    assert not spoken
    assert (body["stream"], body["model"], body["stop"]) == (False, "x/y", ["STOP"])
    assert "audio" not in body


def test_ls_params() -> None:
    llm = ChatOpenRouterAudio(api_key="k", temperature=0.5, max_tokens=9, stop="X")
    params = llm._get_ls_params(model="other/model")
    assert params == {
        "ls_provider": "openrouter",
        "ls_model_name": "other/model",
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_max_tokens": 9,
        "ls_stop": ["X"],
    }


def test_model_profile_for_audio_models_only() -> None:
    profile = ChatOpenRouterAudio(api_key="k").profile
    assert profile is not None
    assert profile["audio_inputs"]
    assert profile["audio_outputs"]
    assert profile["tool_calling"]
    assert ChatOpenRouterAudio(api_key="k", model="acme/other").profile is None
