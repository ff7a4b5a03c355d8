"""Real wire: a recorded live stream replayed byte for byte, and every real shape, over sockets.

The recording (``tests/fixtures/real_wire``, MIT, see its NOTICE) is a live gpt-audio-1.5
stream: no ``finish_reason`` anywhere, ``[DONE]`` at the end, chunks without ``choices``,
``obfuscation`` padding and ``expires_at`` after the usage chunk. The expected transcript
and PCM are decoded here independently of the client.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool

from langchain_openrouter_audio import (
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    raw_reply,
    recorded_reply,
    speech_reply,
    text_reply,
    tone_pcm16,
    tool_call_reply,
)
from tests._helpers import (
    AsyncRecorder,
    Recorder,
    audio_block,
    make_llm,
    question_with_audio,
    reply_pcm,
    summed,
    summed_pcm,
)

RECORDING = (
    Path(__file__).parent.parent / "fixtures" / "real_wire" / "gpt-audio-1.5_hello.stream.sse"
)
RAW = RECORDING.read_bytes()
AUDIO_ID = "audio_6a233a354ee081918e294494ab803d56"
EXPIRES_AT = 1780697157


def _recorded_events(raw: bytes) -> list[Any]:
    """The recording's data payloads, parsed without the client (``[DONE]`` stays a string)."""
    events: list[Any] = []
    for block in raw.decode("utf-8").split("\n\n"):
        data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            joined = "\n".join(data)
            events.append(joined if joined == "[DONE]" else json.loads(joined))
    return events


EVENTS = _recorded_events(RAW)
AUDIO_ITEMS = [
    c["delta"]["audio"]
    for e in EVENTS
    if isinstance(e, dict)
    for c in e.get("choices", [])
    if "audio" in c.get("delta", {})
]
EXPECTED_TEXT = "".join(a.get("transcript", "") for a in AUDIO_ITEMS)
# Each piece decoded on its own, then joined: the pieces are separately padded base64.
EXPECTED_PCM = b"".join(
    base64.b64decode(a["data"], validate=True) for a in AUDIO_ITEMS if "data" in a
)


def test_the_recording_is_what_its_notice_says() -> None:
    assert EVENTS[-1] == "[DONE]"
    assert len(EVENTS) == 28  # 27 data events and [DONE]
    assert EXPECTED_TEXT == "Hello"
    assert len(EXPECTED_PCM) == 45_600
    choices = [c for e in EVENTS[:-1] for c in e.get("choices", [])]
    assert all(c.get("finish_reason") is None for c in choices)
    assert sum("choices" not in e for e in EVENTS[:-1]) > 10
    assert (RECORDING.parent / "NOTICE.md").read_text().count("MIT") >= 1


def _check_wav(message: Any) -> None:
    block = audio_block(message)
    with wave.open(io.BytesIO(base64.b64decode(block["base64"])), "rb") as w:
        assert w.getframerate() == 24_000
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getnframes() == len(EXPECTED_PCM) // 2
        assert w.readframes(w.getnframes()) == EXPECTED_PCM


def _check_recorded_reply(message: Any) -> None:
    assert message.text == EXPECTED_TEXT
    assert reply_pcm(message) == EXPECTED_PCM
    _check_wav(message)
    block = audio_block(message)
    assert block["id"] == AUDIO_ID
    # expires_at arrives after the usage chunk: it must not be lost.
    assert block["extras"]["expires_at"] == EXPIRES_AT
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 18
    assert message.usage_metadata["output_tokens"] == 24
    assert message.usage_metadata["total_tokens"] == 42


# -- the recording, as a new user would call it ------------------------------------


def test_recording_invoke(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(recorded_reply(RECORDING))
    handler = Recorder()
    reply = make_llm(openrouter_server).invoke("Say hello", config={"callbacks": [handler]})
    _check_recorded_reply(reply)
    assert handler.pcm == EXPECTED_PCM
    assert "".join(handler.text) == EXPECTED_TEXT
    assert len(handler.ends) == 1
    assert len(openrouter_server.requests) == 1


async def test_recording_ainvoke(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(recorded_reply(RECORDING))
    handler = AsyncRecorder()
    reply = await make_llm(openrouter_server).ainvoke("Say hello", config={"callbacks": [handler]})
    _check_recorded_reply(reply)
    assert handler.pcm == EXPECTED_PCM


@pytest.mark.parametrize("write_size", [None, 1, 7, 4096])
def test_recording_stream(openrouter_server: OpenRouterTestServer, write_size: int | None) -> None:
    openrouter_server.enqueue(recorded_reply(RECORDING, write_size=write_size))
    chunks = list(make_llm(openrouter_server).stream("Say hello"))
    total = summed(chunks)
    assert total.text == EXPECTED_TEXT
    assert summed_pcm(total) == EXPECTED_PCM


@pytest.mark.parametrize("write_size", [None, 3])
async def test_recording_astream(
    openrouter_server: OpenRouterTestServer, write_size: int | None
) -> None:
    openrouter_server.enqueue(recorded_reply(RECORDING, write_size=write_size))
    chunks = [c async for c in make_llm(openrouter_server).astream("Say hello")]
    total = summed(chunks)
    assert total.text == EXPECTED_TEXT
    assert summed_pcm(total) == EXPECTED_PCM


def test_recording_with_utf8_bom_is_the_same_reply(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # The SSE spec: one leading U+FEFF is skipped.
    openrouter_server.enqueue(recorded_reply(b"\xef\xbb\xbf" + RAW, write_size=2))
    _check_recorded_reply(make_llm(openrouter_server).invoke("Say hello"))


def test_recording_with_crlf_is_the_same_reply(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(recorded_reply(RAW.replace(b"\n", b"\r\n")))
    _check_recorded_reply(make_llm(openrouter_server).invoke("Say hello"))


# -- complete or cut: [DONE] or a finish reason -----------------------------------

_WITHOUT_DONE = RAW[: RAW.rindex(b"data: [DONE]")]


def test_recording_cut_before_done_is_incomplete(openrouter_server: OpenRouterTestServer) -> None:
    # Neither [DONE] nor a finish reason: the connection ended early, whatever arrived.
    openrouter_server.enqueue(recorded_reply(_WITHOUT_DONE))
    with pytest.raises(IncompleteStreamError) as info:
        make_llm(openrouter_server, max_retries=3).invoke("Say hello")
    partial = info.value.partial
    assert partial is not None
    assert partial.text == EXPECTED_TEXT
    assert reply_pcm(partial) == EXPECTED_PCM
    assert len(openrouter_server.requests) == 1


def test_recording_hung_up_before_done_is_incomplete_in_stream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(recorded_reply(_WITHOUT_DONE, raw_cut=True))
    got: list[AIMessageChunk] = []
    with pytest.raises(IncompleteStreamError) as info:
        got.extend(make_llm(openrouter_server).stream("Say hello"))
    assert summed(got).text == EXPECTED_TEXT
    assert summed_pcm(summed(got)) == EXPECTED_PCM
    assert info.value.partial is not None
    assert info.value.partial.text == EXPECTED_TEXT


async def test_recording_cut_before_done_is_incomplete_in_astream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(recorded_reply(_WITHOUT_DONE, write_size=1000))
    got: list[AIMessageChunk] = []
    with pytest.raises(IncompleteStreamError) as info:
        async for chunk in make_llm(openrouter_server).astream("Say hello"):
            got.append(chunk)
    assert summed(got).text == EXPECTED_TEXT
    assert summed_pcm(summed(got)) == EXPECTED_PCM
    assert info.value.partial is not None
    assert reply_pcm(info.value.partial) == EXPECTED_PCM


def test_finish_reason_without_done_is_complete(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.2)
    openrouter_server.enqueue(speech_reply(pcm, "Done at stop.", omit_done=True))
    reply = make_llm(openrouter_server).invoke("hi")
    assert reply.text == "Done at stop."
    assert reply_pcm(reply) == pcm


@pytest.mark.parametrize("wire", ["openai", "azure"])
def test_no_finish_no_done_is_incomplete(
    openrouter_server: OpenRouterTestServer, wire: str
) -> None:
    pcm = tone_pcm16(0.2)
    openrouter_server.enqueue(speech_reply(pcm, "Never ends.", wire=wire, omit_done=True))
    with pytest.raises(IncompleteStreamError) as info:
        make_llm(openrouter_server).invoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.text == "Never ends."
    assert reply_pcm(info.value.partial) == pcm


# -- every real shape, every call style -------------------------------------------

PCM = tone_pcm16(0.5, 330.0)  # 24 000 bytes
TRANSCRIPT = "Real shapes, héllo ✓."
SHAPES: dict[str, dict[str, Any]] = {
    "openrouter": {"wire": "openrouter"},
    "openrouter-whole-audio": {"wire": "openrouter", "audio_piece_bytes": None, "comments": 40},
    "openai": {"wire": "openai"},
    "openai-interleaved": {"wire": "openai", "interleave": True, "audio_piece_bytes": 4801},
    "openai-many-fillers": {"wire": "openai", "filler_chunks": 9, "write_size": 64},
    "azure": {"wire": "azure", "interleave": True},
    "tidy": {"wire": "tidy"},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_real_shapes_invoke(openrouter_server: OpenRouterTestServer, shape: str) -> None:
    openrouter_server.enqueue(speech_reply(PCM, TRANSCRIPT, audio_id="audio_x1", **SHAPES[shape]))
    handler = Recorder()
    reply = make_llm(openrouter_server).invoke("hi", config={"callbacks": [handler]})
    assert reply.text == TRANSCRIPT
    assert reply_pcm(reply) == PCM
    assert audio_block(reply)["id"] == "audio_x1"
    assert isinstance(audio_block(reply)["extras"]["expires_at"], int)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["total_tokens"] > 0
    assert handler.pcm == PCM
    assert len(handler.ends) == 1
    if SHAPES[shape]["wire"] in ("openrouter", "tidy"):
        assert reply.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_real_shapes_stream(openrouter_server: OpenRouterTestServer, shape: str) -> None:
    openrouter_server.enqueue(speech_reply(PCM, TRANSCRIPT, **SHAPES[shape]))
    total = summed(list(make_llm(openrouter_server).stream("hi")))
    assert total.text == TRANSCRIPT
    assert summed_pcm(total) == PCM


@pytest.mark.parametrize("shape", ["openai", "azure", "openrouter-whole-audio"])
async def test_real_shapes_astream(openrouter_server: OpenRouterTestServer, shape: str) -> None:
    openrouter_server.enqueue(speech_reply(PCM, TRANSCRIPT, **SHAPES[shape]))
    total = summed([c async for c in make_llm(openrouter_server).astream("hi")])
    assert total.text == TRANSCRIPT
    assert summed_pcm(total) == PCM


@pytest.mark.parametrize("wire", ["openai", "azure", "openrouter"])
def test_real_shapes_text_reply(openrouter_server: OpenRouterTestServer, wire: str) -> None:
    openrouter_server.enqueue(text_reply("Plain words.", wire=wire))
    llm = make_llm(openrouter_server, modalities=["text"], streaming=True)
    reply = llm.invoke([question_with_audio("What is this?")])
    assert reply.text == "Plain words."
    assert reply.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("wire", ["openai", "azure", "openrouter"])
def test_real_shapes_tool_call(openrouter_server: OpenRouterTestServer, wire: str) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    openrouter_server.enqueue(tool_call_reply("get_weather", {"city": "Oslo"}, wire=wire))
    reply = make_llm(openrouter_server).bind_tools([get_weather]).invoke("weather?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather", {"city": "Oslo"})]


# -- HTTP 200 with a JSON body to a streamed request -------------------------------


@pytest.mark.parametrize(
    ("code", "error", "retried"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (429, RateLimitError, True),
        (503, ServerError, True),
    ],
)
def test_streamed_request_answered_with_json_error(
    openrouter_server: OpenRouterTestServer,
    fast_backoff: None,
    code: int,
    error: type[Exception],
    retried: bool,
) -> None:
    body = {"error": {"code": code, "message": f"upstream said {code}"}}
    openrouter_server.responder = lambda request: Reply(error=body["error"])
    llm = make_llm(openrouter_server, max_retries=2)
    with pytest.raises(error) as info:
        llm.invoke("hi")
    assert f"upstream said {code}" in str(info.value)
    assert len(openrouter_server.requests) == (3 if retried else 1)


def test_streamed_request_answered_with_json_error_then_success(
    openrouter_server: OpenRouterTestServer, fast_backoff: None
) -> None:
    pcm = tone_pcm16(0.1)
    openrouter_server.enqueue(
        raw_reply(b'{"error": {"code": 429, "message": "slow down"}}', status=200),
        speech_reply(pcm, "Second time."),
    )
    reply = make_llm(openrouter_server, max_retries=2).invoke("hi")
    assert reply.text == "Second time."
    assert reply_pcm(reply) == pcm
    assert len(openrouter_server.requests) == 2


def test_streamed_request_answered_with_whole_completion(
    openrouter_server: OpenRouterTestServer,
) -> None:
    pcm = tone_pcm16(0.3)
    openrouter_server.enqueue(
        speech_reply(pcm, "All at once.", whole_completion=True, audio_id="audio_w")
    )
    handler = Recorder()
    reply = make_llm(openrouter_server).invoke("hi", config={"callbacks": [handler]})
    assert reply.text == "All at once."
    assert reply_pcm(reply) == pcm
    assert audio_block(reply)["id"] == "audio_w"
    assert reply.usage_metadata is not None
    assert handler.pcm == pcm


async def test_streamed_request_answered_with_whole_completion_astream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    pcm = tone_pcm16(0.3)
    openrouter_server.enqueue(speech_reply(pcm, "All at once.", whole_completion=True))
    total = summed([c async for c in make_llm(openrouter_server).astream("hi")])
    assert total.text == "All at once."
    assert summed_pcm(total) == pcm


# -- non-streamed replies that carry audio ---------------------------------------


def test_non_streamed_reply_with_audio_data(openrouter_server: OpenRouterTestServer) -> None:
    # A relay may answer a text request with a whole spoken completion.
    pcm = tone_pcm16(0.25)
    message = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "audio": {
            "id": "audio_n",
            "data": base64.b64encode(pcm).decode(),
            "expires_at": 1_900_000_000,
            "transcript": "Spoken, not streamed.",
        },
        "annotations": [],
    }
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-audio",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    openrouter_server.enqueue(raw_reply(json.dumps(body).encode()))
    llm = make_llm(openrouter_server, modalities=["text"])
    reply = llm.invoke([question_with_audio("Say it")])
    assert not openrouter_server.requests[0].json.get("stream")
    assert reply.text == "Spoken, not streamed."
    block = audio_block(reply)
    assert block["mime_type"] == "audio/wav"
    assert reply_pcm(reply) == pcm
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["total_tokens"] == 12


# -- text that needs care ---------------------------------------------------------


def _sse(*payloads: Any, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    return out + (b"data: [DONE]\n\n" if done else b"")


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-t",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-audio",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_surrogate_pair_split_across_transcript_deltas(
    openrouter_server: OpenRouterTestServer,
) -> None:
    pcm = tone_pcm16(0.1)
    # One surrogate per event: json.dumps writes a lone surrogate as its \\uXXXX escape.
    body = _sse(
        _choice({"role": "assistant", "audio": {"id": "audio_s", "transcript": "Hi \ud83d"}}),
        _choice({"audio": {"transcript": "\ude00!"}}),
        _choice({"audio": {"data": base64.b64encode(pcm).decode()}}),
    )
    assert b"\\ud83d" in body
    openrouter_server.enqueue(recorded_reply(body), recorded_reply(body))
    reply = make_llm(openrouter_server).invoke("hi")
    assert reply.text == "Hi \U0001f600!"
    assert reply_pcm(reply) == pcm
    total = summed(list(make_llm(openrouter_server).stream("hi")))
    assert total.text == "Hi \U0001f600!"
    total.text.encode("utf-8")  # no lone surrogate left anywhere


def _repeated_name_stream() -> bytes:
    args = ['{"ci', 'ty": "Os', 'lo"}']
    fragments = [
        {
            "index": 0,
            "id": "call_r",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        },
    ] + [
        # A relay repeating the name (and the type) in every fragment.
        {"index": 0, "type": "function", "function": {"name": "get_weather", "arguments": a}}
        for a in args
    ]
    chunks = [_choice({"role": "assistant", "content": None, "tool_calls": [fragments[0]]})]
    chunks += [_choice({"tool_calls": [f]}) for f in fragments[1:]]
    chunks.append(_choice({}, "tool_calls"))
    return _sse(*chunks)


def test_tool_name_repeated_in_every_fragment(openrouter_server: OpenRouterTestServer) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    body = _repeated_name_stream()
    openrouter_server.enqueue(recorded_reply(body), recorded_reply(body))
    llm = make_llm(openrouter_server).bind_tools([get_weather])
    reply = llm.invoke("weather?")
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Oslo"}, "call_r")
    ]
    total = summed(list(llm.stream("weather?")))
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert [c["name"] for c in total.tool_call_chunks] == ["get_weather"]


def test_recorded_history_turn_goes_back_as_text(openrouter_server: OpenRouterTestServer) -> None:
    # The recorded reply in a later turn: the server receives its transcript, never its audio.
    openrouter_server.enqueue(recorded_reply(RECORDING), speech_reply(tone_pcm16(0.1), "Again."))
    llm = make_llm(openrouter_server)
    first = llm.invoke("Say hello")
    llm.invoke([HumanMessage("Say hello"), first, HumanMessage("Again")])
    sent = openrouter_server.requests[1].json["messages"][1]
    assert sent["role"] == "assistant"
    assert EXPECTED_TEXT in json.dumps(sent)
    assert base64.b64encode(EXPECTED_PCM[:300]).decode()[:40] not in json.dumps(sent)
