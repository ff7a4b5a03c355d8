"""ChatOpenRouterAudio against the local OpenRouter server, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import logging
import os
import subprocess
import sys
import time
import warnings
import wave
from typing import Any

import httpx
import pytest
import soundfile
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from langchain_openrouter_audio import (
    AuthenticationError,
    BadRequestError,
    ChatOpenRouterAudio,
    OpenRouterError,
    PermissionDeniedError,
    RateLimitError,
    audio_block_from_bytes,
    audio_pcm,
)
from langchain_openrouter_audio.audio import wav_data
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    error_reply,
    rate_limit_reply,
    speech_reply,
    text_reply,
    tone_pcm16,
    tool_call_reply,
)
from tests._helpers import get_weather, question_with_audio


def _wav_params(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


# -- text mode: audio in, text out -------------------------------------------------


def test_text_reply_to_audio_question(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(text_reply("It is sunny in Paris."))
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url,
        api_key="test-key",
        modalities=["text"],
        app_url="https://example.test",
        app_title="Voice tests",
        temperature=0.2,
        max_tokens=50,
        provider={"order": ["openai"]},
        models=["openai/gpt-audio"],
    )
    reply = llm.invoke([SystemMessage("Be brief."), question_with_audio(wav=question_wav)])

    assert reply.text == "It is sunny in Paris."
    assert reply.response_metadata["model_provider"] == "openrouter"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["model_name"] == "openai/gpt-audio-mini"
    assert reply.response_metadata["id"].startswith("gen-")
    assert reply.response_metadata["cost"] == pytest.approx(0.0012)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_token_details"]["audio"] > 0

    [request] = openrouter_server.requests
    body = request.json
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.headers["http-referer"] == "https://example.test"
    assert request.headers["x-title"] == "Voice tests"
    assert request.headers["x-openrouter-title"] == "Voice tests"
    assert body["stream"] is False
    assert body["modalities"] == ["text"]
    assert "audio" not in body
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert body["provider"] == {"order": ["openai"]}
    assert body["models"] == ["openai/gpt-audio"]
    part = body["messages"][1]["content"][1]
    assert part["type"] == "input_audio"
    assert part["input_audio"]["format"] == "wav"
    assert base64.b64decode(part["input_audio"]["data"]) == question_wav


def test_openai_style_input_audio_passes_through(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(text_reply("ok"))
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    data = base64.b64encode(question_wav).decode()
    block = {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    assert llm.invoke([HumanMessage(content=[block])]).text == "ok"
    sent = openrouter_server.requests[0].json["messages"][0]["content"][0]
    assert sent == block


def test_mime_wrapped_base64_audio_is_accepted(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(text_reply("ok"))
    wrapped = base64.encodebytes(question_wav).decode()  # MIME style, a newline every 76
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    block = {"type": "audio", "base64": wrapped, "mime_type": "audio/wav"}
    assert llm.invoke([HumanMessage(content=[block])]).text == "ok"
    sent = openrouter_server.requests[0].json["messages"][0]["content"][0]["input_audio"]
    assert base64.b64decode(sent["data"], validate=True) == question_wav


# -- speech out --------------------------------------------------------------------


def test_invoke_returns_transcript_and_playable_wav(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "It is sunny in Paris.", audio_id="audio_1"))
    reply = llm.invoke("What is the weather in Paris?")

    assert reply.text == "It is sunny in Paris."
    [audio] = [b for b in reply.content_blocks if b["type"] == "audio"]
    assert audio["mime_type"] == "audio/wav"
    assert audio.get("id") == "audio_1"
    wav = base64.b64decode(audio["base64"])
    assert _wav_params(wav) == (24000, 1, 2, len(answer_pcm) // 2)
    assert wav_data(wav) == answer_pcm
    assert audio_pcm(reply) == answer_pcm
    assert audio["extras"]["expires_at"] > time.time()
    meta = reply.response_metadata
    assert meta["audio_seconds"] == pytest.approx(len(answer_pcm) / 48000)
    assert 0 <= meta["time_to_first_transcript_s"] <= meta["duration_s"]
    assert 0 <= meta["time_to_first_audio_s"] <= meta["duration_s"]
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_token_details"]["audio"] > 0

    body = openrouter_server.requests[0].json
    assert body["stream"] is True
    assert body["modalities"] == ["text", "audio"]
    assert body["audio"] == {"voice": "alloy", "format": "pcm16"}


def test_audio_output_pcm_returns_raw_pcm(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Hi."))
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", audio_output="pcm", voice="echo"
    )
    reply = llm.invoke("hi")
    [audio] = [b for b in reply.content_blocks if b["type"] == "audio"]
    assert audio["mime_type"] == "audio/pcm;rate=24000"
    assert base64.b64decode(audio["base64"]) == answer_pcm
    assert openrouter_server.requests[0].json["audio"]["voice"] == "echo"


@pytest.mark.parametrize(
    ("piece", "interleave"), [(4800, False), (4801, True), (1, False), (7, True), (99_999, False)]
)
def test_stream_sum_equals_invoke(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    answer_pcm: bytes,
    piece: int,
    interleave: bool,
) -> None:
    pcm = answer_pcm[: 24000 * 2 // 3 + 1]  # odd length: a half sample at the end
    script = speech_reply(pcm, "Sunny and warm.", audio_piece_bytes=piece, interleave=interleave)
    openrouter_server.enqueue(script, script)

    chunks = list(llm.stream("weather?"))
    for chunk in chunks:
        for block in chunk.content:
            if isinstance(block, dict) and block["type"] == "audio":
                decoded = base64.b64decode(block["base64"])
                assert decoded[:4] != b"RIFF"  # raw PCM pieces, no WAV header
                assert len(decoded) % 6 == 0 or chunk is chunks[-1]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    [audio] = [b for b in total.content if isinstance(b, dict) and b["type"] == "audio"]
    assert audio["mime_type"] == "audio/pcm;rate=24000"
    assert base64.b64decode(audio["base64"]) == pcm
    assert total.text == "Sunny and warm."

    invoked = llm.invoke("weather?")
    wav = base64.b64decode(invoked.content[1]["base64"])  # type: ignore[index]
    with wave.open(io.BytesIO(wav)) as w:
        assert w.readframes(w.getnframes()) == pcm[: len(pcm) // 2 * 2]
    assert wav_data(wav) == pcm  # all of it, the odd trailing byte too
    assert soundfile.info(io.BytesIO(wav)).frames == len(pcm) // 2


async def test_astream_sum_equals_pcm(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Async hello.", audio_piece_bytes=333))
    total = None
    async for chunk in llm.astream("hello"):
        total = chunk if total is None else total + chunk
    assert total is not None
    assert total.text == "Async hello."
    [audio] = [b for b in total.content if isinstance(b, dict) and b["type"] == "audio"]
    assert base64.b64decode(audio["base64"]) == answer_pcm
    assert total.usage_metadata is not None
    assert total.response_metadata["finish_reason"] == "stop"


async def test_ainvoke_and_batch(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.responder = lambda req: speech_reply(
        answer_pcm, f"echo {req.json['messages'][-1]['content']}"
    )
    reply = await llm.ainvoke("one")
    assert reply.text == "echo one"
    replies = await llm.abatch(["a", "b", "c"])
    assert sorted(r.text for r in replies) == ["echo a", "echo b", "echo c"]
    assert llm.batch(["x", "y"])[1].text == "echo y"


def test_spoken_reply_goes_back_as_transcript(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "First answer."))
    first = llm.invoke("first")
    openrouter_server.enqueue(speech_reply(answer_pcm, "Second answer."))
    llm.invoke([HumanMessage("first"), first, HumanMessage("and then?")])

    history = openrouter_server.requests[1].json["messages"]
    assert history[1] == {"role": "assistant", "content": "First answer."}
    assert len(json.dumps(history)) < 500  # no audio bytes went back


# -- tools -------------------------------------------------------------------------


def test_tool_calling_round_trip(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    question_wav: bytes,
    answer_pcm: bytes,
) -> None:
    openrouter_server.enqueue(
        tool_call_reply("get_weather", {"city": "Paris"}, call_id="call_1"),
        speech_reply(answer_pcm, "It is sunny in Paris."),
    )
    bound = llm.bind_tools([get_weather], tool_choice="get_weather", parallel_tool_calls=False)
    messages: list[Any] = [question_with_audio(wav=question_wav)]
    first = bound.invoke(messages)
    assert first.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]
    messages += [first, ToolMessage(get_weather("Paris"), tool_call_id="call_1")]
    final = bound.invoke(messages)
    assert final.text == "It is sunny in Paris."

    body0, body1 = (r.json for r in openrouter_server.requests)
    assert body0["tools"][0]["function"]["name"] == "get_weather"
    assert body0["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body0["parallel_tool_calls"] is False
    assistant, tool = body1["messages"][1:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "It is sunny in Paris."}


def test_streamed_tool_call_chunks_merge(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue(tool_call_reply("get_weather", {"city": "Zürich"}, call_id="c9"))
    chunks = list(llm.bind_tools([get_weather]).stream("weather?"))
    assert sum(len(c.tool_call_chunks) for c in chunks) > 2  # arguments arrived in pieces
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.tool_calls == [
        {"name": "get_weather", "args": {"city": "Zürich"}, "id": "c9", "type": "tool_call"}
    ]
    assert total.response_metadata["finish_reason"] == "tool_calls"


def test_parallel_tool_calls_in_a_plain_reply_stay_apart(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    calls = [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_2", "name": "get_time", "arguments": '{"tz": "CET"}'},
    ]
    openrouter_server.enqueue(Reply(tool_calls=calls))
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    reply = llm.invoke([HumanMessage(content=[audio_block_from_bytes(question_wav)])])
    assert openrouter_server.requests[0].json["stream"] is False
    assert [(c["id"], c["name"], c["args"]) for c in reply.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_time", {"tz": "CET"}),
    ]
    assert reply.invalid_tool_calls == []


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        (True, "required"),
    ],
)
def test_tool_choice_spellings(llm: ChatOpenRouterAudio, choice: Any, wire: Any) -> None:
    bound = llm.bind_tools([get_weather], tool_choice=choice)
    assert bound.kwargs["tool_choice"] == wire  # type: ignore[attr-defined]


def test_bad_tool_schema_fails_before_any_request(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    bad = {"type": "function", "function": {"name": "has space", "parameters": {}}}
    with pytest.raises(ValueError, match="tool name 'has space'"):
        llm.bind_tools([bad])
    not_object = {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
    with pytest.raises(ValueError, match="type 'object'"):
        llm.bind_tools([not_object])
    with pytest.raises(ValueError, match="names no bound tool"):
        llm.bind_tools([get_weather], tool_choice="nope")
    assert openrouter_server.requests == []


class Weather(BaseModel):
    city: str
    sunny: bool


def test_structured_output_function_calling(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(tool_call_reply("Weather", {"city": "Paris", "sunny": True}))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    result = llm.with_structured_output(Weather, include_raw=True).invoke(
        [question_with_audio(wav=question_wav)]
    )
    assert result["parsed"] == Weather(city="Paris", sunny=True)
    assert isinstance(result["raw"], AIMessage)
    body = openrouter_server.requests[0].json
    assert body["modalities"] == ["text"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}


def test_structured_output_traces_no_private_flags(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    class Params(BaseCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[dict[str, Any]] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.seen.append(kwargs["invocation_params"])

    openrouter_server.enqueue(tool_call_reply("Weather", {"city": "Paris", "sunny": True}))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    handler = Params()
    llm.with_structured_output(Weather).invoke(
        [question_with_audio(wav=question_wav)], config={"callbacks": [handler]}
    )
    (params,) = handler.seen
    assert params["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    # `_type` is langchain-core's own; nothing private of ours is traced.
    assert [key for key in params if key.startswith("_")] == ["_type"]
    assert openrouter_server.requests[0].json["modalities"] == ["text"]


def test_structured_output_json_schema(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(text_reply('{"city": "Oslo", "sunny": false}'))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    structured = llm.with_structured_output(Weather, method="json_schema", strict=True)
    assert structured.invoke([question_with_audio(wav=question_wav)]) == Weather(
        city="Oslo", sunny=False
    )
    rf = openrouter_server.requests[0].json["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"]["properties"]["city"]["type"] == "string"


# -- errors and retries ------------------------------------------------------------


def test_rate_limit_retry_after_is_honoured(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(rate_limit_reply(retry_after=1), speech_reply(answer_pcm, "Done."))
    started = time.monotonic()
    assert llm.invoke("hi").text == "Done."
    assert time.monotonic() - started >= 0.95  # the wait IS the behaviour under test
    assert len(openrouter_server.requests) == 2


def test_rate_limit_storm_raises_typed_error(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.responder = lambda _: rate_limit_reply(retry_after=0.01)
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", max_retries=1
    )
    with pytest.raises(RateLimitError) as caught:
        llm.invoke("hi")
    assert caught.value.status_code == 429
    assert caught.value.retry_after == pytest.approx(0.01)
    assert "Rate limit exceeded" in str(caught.value)
    assert len(openrouter_server.requests) == 2


def test_unauthorized_shows_openrouter_message_not_key(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-or-v1-not-the-right-key-1234"
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key=secret)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as caught:
        llm.invoke("hi")
    err = caught.value
    assert err.status_code == 401
    assert err.message == "User not found."
    assert "User not found." in str(err)
    assert len(openrouter_server.requests) == 1  # 401 is never retried
    for text in (str(err), repr(err), repr(llm), str(llm), caplog.text):
        assert secret not in text


def test_provider_error_is_typed_with_metadata(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue(
        error_reply(403, "Input flagged", metadata={"reasons": ["violence"], "flagged_input": "x"})
    )
    with pytest.raises(PermissionDeniedError) as caught:
        llm.invoke("hi")
    err = caught.value
    assert err.status_code == 403
    assert err.metadata["reasons"] == ["violence"]
    assert "violence" in str(err)


def test_error_body_in_a_200_with_a_string_code_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "server_error", "message": "upstream exploded"}}
        return httpx.Response(200, json=body)

    llm = ChatOpenRouterAudio(
        api_key="k",
        model="openai/gpt-4o-mini",
        modalities=["text"],
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(OpenRouterError, match="upstream exploded") as caught:
        llm.invoke([AIMessage("x"), HumanMessage("hi")])
    assert caught.value.code == "server_error"


def test_text_in_text_out_on_an_audio_model_is_refused_before_the_network(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # The real gateway answers 400 ("either input content or output modality contain audio").
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    with pytest.raises(ValueError, match=r"modalities=\['text', 'audio'\]"):
        llm.invoke("plain text")
    assert openrouter_server.requests == []


def test_gateway_400_is_not_retried(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(error_reply(400, "Provider returned error"))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    with pytest.raises(BadRequestError) as caught:
        llm.invoke("plain text")
    assert "Provider returned error" in str(caught.value)
    assert len(openrouter_server.requests) == 1


# -- bad input fails before the network --------------------------------------------


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"type": "audio", "base64": "not base64!!", "mime_type": "audio/wav"}, "not valid base64"),
        ({"type": "audio", "base64": "AAAA", "mime_type": "audio/x-foo"}, "unsupported audio MIME"),
        ({"type": "audio", "base64": "AAAA", "mime_type": "audio/webm"}, "could not be decoded"),
        ({"type": "audio", "url": "https://example.test/a.wav"}, "does not fetch audio URLs"),
        (
            {
                "type": "audio",
                "base64": base64.b64encode(b"hello world").decode(),
                "mime_type": "audio/wav",
            },
            "does not look like wav",
        ),
        (
            {
                "type": "audio",
                "base64": base64.b64encode(b"ID3\x03" + bytes(64)).decode(),
                "mime_type": "audio/wav",
            },
            "declared as wav but its bytes are mp3",
        ),
        (
            {
                "type": "audio",
                "base64": base64.b64encode(b"RIFF\x00\x00\x00\x00WAVE").decode(),
                "mime_type": "audio/wav",
            },
            "corrupt WAV",
        ),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "webm"}}, "webm"),
        ({"type": "audio", "base64": "AAAA"}, "no mime_type"),
    ],
)
def test_bad_audio_is_refused_before_any_request(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    block: dict[str, Any],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        llm.invoke([HumanMessage(content=[block])])
    assert openrouter_server.requests == []


def test_oversize_audio_is_refused_before_any_request(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", max_audio_bytes=1000
    )
    with pytest.raises(ValueError, match="over max_audio_bytes=1000"):
        llm.invoke([question_with_audio(wav=question_wav)])
    assert openrouter_server.requests == []


def test_missing_key_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    llm = ChatOpenRouterAudio(base_url="http://127.0.0.1:9/api/v1")
    with pytest.raises(ValueError, match="no OpenRouter API key"):
        llm.invoke("hi")


def test_unknown_kwargs_go_to_model_kwargs(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "ok"))
    with pytest.warns(UserWarning, match=r"unknown argument\(s\) session_id, top_k: they"):
        llm = ChatOpenRouterAudio(
            base_url=openrouter_server.base_url, api_key="test-key", top_k=5, session_id="s1"
        )
    assert llm.model_kwargs == {"top_k": 5, "session_id": "s1"}
    llm.invoke("hi", seed=7)
    body = openrouter_server.requests[0].json
    assert (body["top_k"], body["session_id"], body["seed"]) == (5, "s1", 7)


def test_per_call_client_options_are_refused_before_sending(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    for option in ({"timeout": 5}, {"audio_output": "pcm"}, {"api_key": "other"}):
        with pytest.raises(ValueError, match="set them on the model"):
            llm.invoke("hi", **option)
    assert openrouter_server.requests == []


def test_injected_http_clients_are_used_and_left_open(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    seen: list[str] = []
    client = httpx.Client(event_hooks={"request": [lambda r: seen.append("sync")]})

    async def hook(request: httpx.Request) -> None:
        seen.append("async")

    async_client = httpx.AsyncClient(event_hooks={"request": [hook]})
    openrouter_server.responder = lambda _: speech_reply(answer_pcm, "ok")
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url,
        api_key="test-key",
        http_client=client,
        http_async_client=async_client,
        default_headers={"X-Trace": "abc"},
    )
    llm.invoke("hi")

    async def ainvoke_and_close() -> None:
        await llm.ainvoke("hi")
        await llm.aclose()
        assert not async_client.is_closed
        await async_client.aclose()

    asyncio.run(ainvoke_and_close())
    llm.close()
    assert seen == ["sync", "async"]
    assert not client.is_closed
    assert openrouter_server.requests[0].headers["x-trace"] == "abc"
    client.close()


def test_connections_are_reused_and_each_event_loop_gets_its_own(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.responder = lambda _: speech_reply(answer_pcm[:4800], "ok")
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    ports: set[int] = set()
    client = llm.client.client
    client.event_hooks["response"].append(
        lambda r: ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
    )
    for _ in range(3):
        assert llm.invoke("hi").text == "ok"
    assert len(ports) == 1  # the stream was read to its end, so the connection was pooled

    async def ask() -> str:
        try:
            return (await llm.ainvoke("hi")).text
        finally:
            await llm.aclose()  # this loop's client, before asyncio.run closes the loop

    for _ in range(2):  # a second asyncio.run must not reuse the first loop's connections
        assert asyncio.run(ask()) == "ok"


def test_a_copy_makes_its_own_connections(answer_pcm: bytes) -> None:
    with OpenRouterTestServer(api_key="a") as a, OpenRouterTestServer(api_key="b-secret") as b:
        a.enqueue(speech_reply(answer_pcm, "from A"))
        b.enqueue(speech_reply(answer_pcm, "from B"))
        llm = ChatOpenRouterAudio(base_url=a.base_url, api_key="a")
        assert llm.invoke("hi").text == "from A"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "unknown argument" for cached attributes
            copy = llm.model_copy(update={"base_url": b.base_url, "api_key": "b-secret"})
        assert copy.model_kwargs == {}
        assert "b-secret" not in repr(copy)
        assert copy.invoke("hi").text == "from B"
        assert "_serialized" not in b.requests[0].json
        assert copy.client is not llm.client
        copy.close()
        llm.close()


def test_json_mode(openrouter_server: OpenRouterTestServer, question_wav: bytes) -> None:
    openrouter_server.enqueue(text_reply('{"city": "Rome", "sunny": true}'))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    schema = {"title": "Weather", "type": "object", "properties": {"city": {"type": "string"}}}
    result = llm.with_structured_output(schema, method="json_mode").invoke(
        [question_with_audio(wav=question_wav)]
    )
    assert result == {"city": "Rome", "sunny": True}
    assert openrouter_server.requests[0].json["response_format"] == {"type": "json_object"}


def test_structured_output_without_audio_input_keeps_speech(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    # gpt-audio refuses text in + text out, so a typed question gets a spoken JSON reply.
    openrouter_server.enqueue(speech_reply(answer_pcm, '{"city": "Oslo", "sunny": false}'))
    structured = llm.with_structured_output(Weather, method="json_schema")
    assert structured.invoke("Weather in Oslo?") == Weather(city="Oslo", sunny=False)
    body = openrouter_server.requests[0].json
    assert body["modalities"] == ["text", "audio"]
    assert body["response_format"]["type"] == "json_schema"


def test_asyncio_run_leaves_no_socket_open(openrouter_server: OpenRouterTestServer) -> None:
    # Each loop's pooled client closes itself when asyncio.run shuts the loop down.
    openrouter_server.responder = lambda _: speech_reply(tone_pcm16(0.1), "ok")
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            assert asyncio.run(llm.ainvoke("hi")).text == "ok"
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(llm.client._loop_clients) == 0


def test_a_model_never_closed_leaves_no_unclosed_socket_warning(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # A script that drops a model, or just exits, must not print "unclosed socket":
    # the pooled client is closed when the model is collected or at interpreter exit.
    openrouter_server.responder = lambda _: speech_reply(tone_pcm16(0.1), "ok")
    script = (
        "import gc\n"
        "from langchain_openrouter_audio import ChatOpenRouterAudio\n"
        "def dropped():\n"
        "    assert ChatOpenRouterAudio().invoke('hi').text == 'ok'\n"
        "dropped()\n"
        "gc.collect()\n"
        "kept = ChatOpenRouterAudio()\n"
        "assert kept.invoke('hi').text == 'ok'\n"
    )
    env = {
        **os.environ,
        "OPENROUTER_BASE_URL": openrouter_server.base_url,
        "OPENROUTER_API_KEY": openrouter_server.api_key,
    }
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "ResourceWarning" not in run.stderr
    assert len(openrouter_server.requests) == 2
