"""The offline OpenRouter test server, exercised with plain httpx and raw sockets."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import http.client
import io
import json
import math
import re
import shutil
import socket
import struct
import threading
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_openrouter_audio.testing import (
    SAMPLE_RATE,
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    error_reply,
    pytest_plugin,
    rate_limit_reply,
    raw_reply,
    recorded_reply,
    speech_pcm16,
    speech_reply,
    text_reply,
    tone_pcm16,
    tool_call_reply,
)

openrouter_server = pytest_plugin.openrouter_server

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODEL = "openai/gpt-audio-mini"
PROCESSING = ": OPENROUTER PROCESSING"
INTERNAL_ERROR = {"error": {"code": 500, "message": "Internal Server Error"}}


# -- helpers -------------------------------------------------------------------


def wav_b64(pcm: bytes, rate: int = SAMPLE_RATE) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return base64.b64encode(buf.getvalue()).decode()


def audio_out_body(**overrides: Any) -> dict[str, Any]:
    """A request for spoken output, as the client must send it."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hi"}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "stream": True,
    }
    body.update(overrides)
    return body


def audio_in_body(pcm: bytes = b"\x00\x00" * 2400, **overrides: Any) -> dict[str, Any]:
    """A text-output request carrying spoken input."""
    content = [
        {"type": "text", "text": "Transcribe:"},
        {"type": "input_audio", "input_audio": {"data": wav_b64(pcm), "format": "wav"}},
    ]
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "modalities": ["text"],
    }
    body.update(overrides)
    return body


def post(
    server: OpenRouterTestServer, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers=AUTH if headers is None else headers,
        timeout=5,
    )


def stream(
    server: OpenRouterTestServer, body: Any, timeout: httpx.Timeout | float = 5
) -> tuple[httpx.Response, bytes]:
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream(
            "POST", f"{server.base_url}/chat/completions", json=body, headers=AUTH
        ) as response,
    ):
        return response, b"".join(response.iter_raw())


def parse_sse(raw: bytes) -> tuple[list[str], list[Any]]:
    """Comments and dispatched data events; ``[DONE]`` stays a string."""
    comments: list[str] = []
    events: list[Any] = []
    data: list[str] = []
    for line in raw.decode("utf-8").replace("\r\n", "\n").split("\n"):
        if not line:
            if data:
                joined = "\n".join(data)
                events.append(joined if joined == "[DONE]" else json.loads(joined))
                data = []
        elif line.startswith(":"):
            comments.append(line)
        else:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    return comments, events


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if e != "[DONE]" and e["choices"]]


def raw_exchange(server: OpenRouterTestServer, body: Any) -> tuple[bytes, list[bytes], bool]:
    """POST over a bare socket: response head, HTTP chunks, and whether the 0-chunk came."""
    payload = json.dumps(body).encode()
    request = (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer test-key\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload)
    ) + payload
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        while piece := sock.recv(65536):
            received += piece
    head, _, rest = received.partition(b"\r\n\r\n")
    chunks: list[bytes] = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return head, chunks, True
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    return head, chunks, False


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def provider_raw_message(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["message"] == "Provider returned error"
    assert error["metadata"]["provider_name"] == "OpenAI"
    assert error["metadata"]["is_byok"] is False
    raw = json.loads(error["metadata"]["raw"])
    assert raw["error"]["type"] == "invalid_request_error"
    return str(raw["error"]["message"])


# -- basics, routing, auth -----------------------------------------------------


def test_fixture_serves_on_loopback(openrouter_server: OpenRouterTestServer) -> None:
    assert openrouter_server.api_key == "test-key"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", openrouter_server.base_url)
    assert openrouter_server.base_url.endswith(f":{openrouter_server.port}/api/v1")


def test_start_stop_are_idempotent_and_restartable() -> None:
    server = OpenRouterTestServer(api_key="k")
    server.start()
    assert server.start() is server
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        response = httpx.get(f"{server.base_url}/no-such-route", timeout=5)
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/no-such-route"),
        ("POST", "/api/v1/completions"),
        ("GET", "/api/v1/chat/completions"),
    ],
)
def test_unknown_routes_are_404(
    openrouter_server: OpenRouterTestServer, method: str, path: str
) -> None:
    url = f"http://127.0.0.1:{openrouter_server.port}{path}"
    response = httpx.request(method, url, headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "message": "Not Found"}}
    assert openrouter_server.requests[-1].path == path


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No auth credentials found"),
        ({"Authorization": "Bearer"}, "No auth credentials found"),
        ({"Authorization": "Basic dGVzdC1rZXk="}, "No auth credentials found"),
        ({"Authorization": "Bearer sk-or-wrong-secret"}, "User not found."),
        ({"Authorization": "Bearer test-key-but-longer"}, "User not found."),
    ],
)
def test_auth_errors_never_echo_keys(
    openrouter_server: OpenRouterTestServer, headers: dict[str, str], message: str
) -> None:
    openrouter_server.enqueue(text_reply("unused"))
    response = post(openrouter_server, audio_out_body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": 401, "message": message}}
    for secret in ("test-key", "sk-or-wrong-secret", "dGVzdC1rZXk"):
        assert secret not in response.text
    assert openrouter_server.pending == 1
    assert openrouter_server.requests[-1].authorization == headers.get("Authorization")


# -- gateway checks ------------------------------------------------------------


def test_audio_output_requires_stream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("unused"))
    for body in (audio_out_body(stream=False), {**audio_out_body(), "stream": None}):
        response = post(openrouter_server, body)
        assert response.status_code == 400
        assert response.json() == {
            "error": {"code": 400, "message": "Audio output requires stream: true"}
        }
    assert openrouter_server.pending == 1


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_audio_output_requires_pcm16(openrouter_server: OpenRouterTestServer, fmt: str) -> None:
    response = post(openrouter_server, audio_out_body(audio={"voice": "alloy", "format": fmt}))
    assert response.status_code == 400
    assert provider_raw_message(response) == (
        f"Unsupported value: 'audio.format' does not support '{fmt}' when stream=true. "
        "Supported values are: 'pcm16'."
    )


def test_audio_output_requires_audio_object(openrouter_server: OpenRouterTestServer) -> None:
    body = audio_out_body()
    del body["audio"]
    response = post(openrouter_server, body)
    assert response.status_code == 400
    assert provider_raw_message(response) == "Missing required parameter: 'audio'."


@pytest.mark.parametrize("modalities", [None, ["text"]])
def test_audio_model_needs_audio_somewhere(
    openrouter_server: OpenRouterTestServer, modalities: list[str] | None
) -> None:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if modalities is not None:
        body["modalities"] = modalities
    response = post(openrouter_server, body)
    assert response.status_code == 400
    assert provider_raw_message(response) == (
        "This model requires that either input content or output modality contain audio."
    )


@pytest.mark.parametrize(
    ("input_audio", "fragment"),
    [
        ({"data": "not base64!!", "format": "wav"}, "base64"),
        ({"data": "data:audio/wav;base64,AAAA", "format": "wav"}, "base64"),
        ({"data": "AAA", "format": "wav"}, "base64"),
        ({"data": "", "format": "wav"}, "input_audio.data"),
        ({"data": "AAAA", "format": "ogg"}, "'ogg'"),
        ({"data": "AAAA"}, "input_audio.format"),
        ({"data": "AAAA", "format": "webm"}, "Supported values are: 'wav' and 'mp3'"),
    ],
)
def test_bad_input_audio_is_rejected(
    openrouter_server: OpenRouterTestServer, input_audio: dict[str, str], fragment: str
) -> None:
    body = audio_in_body()
    body["messages"][0]["content"][1]["input_audio"] = input_audio
    response = post(openrouter_server, body)
    assert response.status_code == 400
    message = provider_raw_message(response)
    assert fragment in message
    assert "messages[0].content[1].input_audio" in message


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"model": MODEL, "messages": []}).encode(),
        json.dumps({"model": MODEL}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "hi"}], "model": 3}).encode(),
    ],
)
def test_malformed_requests_are_400(openrouter_server: OpenRouterTestServer, body: bytes) -> None:
    response = httpx.post(
        f"{openrouter_server.base_url}/chat/completions", content=body, headers=AUTH, timeout=5
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["message"]
    assert KEY not in response.text


@pytest.mark.parametrize(
    ("framing", "status"),
    [
        # A negative chunk size would have the server read until the peer hangs up.
        (b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
        # Over the body cap: refused from its headers, before any of it is read.
        (b"Content-Length: 1073741824\r\n\r\n", 413),
        (b"Transfer-Encoding: chunked\r\n\r\n40000000\r\n", 413),
    ],
)
def test_hostile_body_framing_is_refused_unread(
    openrouter_server: OpenRouterTestServer, framing: bytes, status: int
) -> None:
    head = b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + framing
    with socket.create_connection(("127.0.0.1", openrouter_server.port), timeout=5) as sock:
        sock.sendall(head)  # the connection stays open: the answer cannot wait for EOF
        reply = b""
        while b"\r\n\r\n" not in reply:
            piece = sock.recv(4096)
            assert piece, f"connection closed without an answer: {reply!r}"
            reply += piece
    assert reply.startswith(f"HTTP/1.0 {status} ".encode()) or reply.startswith(
        f"HTTP/1.1 {status} ".encode()
    ), reply[:80]


# A request cut off anywhere: in the request line, in the headers, in the body.
HALF_REQUESTS = [
    b"POST /api/v1/chat/comp",
    b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le",
    b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
    b"\r\n\r\n10\r\n{",
]


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server hung up (EOF or reset) before the client's own timeout."""
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize("half", HALF_REQUESTS, ids=["line", "headers", "body", "chunk"])
def test_a_client_that_sends_half_a_request_is_disconnected(half: bytes) -> None:
    with OpenRouterTestServer(read_timeout_s=0.5) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(half)
            assert closed_by_server(sock)  # before: held open for good
        # The server still answers everyone else.
        response = post(server, audio_out_body())
        assert response.status_code == 400  # no scripted reply: a complete exchange
        assert server.requests[-1].json == audio_out_body()


def test_an_idle_kept_alive_connection_is_closed_after_the_read_timeout() -> None:
    request = b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n\r\n"
    with (
        OpenRouterTestServer(read_timeout_s=0.5) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock,
    ):
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert closed_by_server(sock)  # the answer, then EOF once idle


def test_the_read_timeout_has_a_default_and_is_checked() -> None:
    assert OpenRouterTestServer().read_timeout_s == 10.0
    for bad in (0, -1, math.nan, math.inf, "5"):
        with pytest.raises(ValueError, match="read_timeout_s"):
            OpenRouterTestServer(read_timeout_s=bad)  # type: ignore[arg-type]


def test_pauses_the_server_makes_are_not_cut_by_the_read_timeout() -> None:
    with OpenRouterTestServer(read_timeout_s=0.2) as server:
        server.enqueue(
            text_reply("slow and whole", text_piece_chars=5, event_delay_s=0.4, headers_delay_s=0.4)
        )
        pcm = b"\x01\x02" * 4800
        server.enqueue_speech(Reply(pcm=pcm, audio_piece_bytes=4800, event_delay_s=0.4))
        response, raw = stream(server, audio_out_body(), timeout=20)
        assert response.status_code == 200
        assert "slow and whole" in "".join(
            d.get("content") or "" for d in deltas(parse_sse(raw)[1])
        )
        speech = httpx.post(
            f"{server.base_url}/audio/speech",
            headers=AUTH,
            json={"model": "openai/gpt-4o-mini-tts-2025-12-15", "input": "hi"},
            timeout=20,
        )
        assert speech.status_code == 200
        assert speech.content == pcm  # two pieces, 0.4 s apart


def test_no_scripted_reply_left(openrouter_server: OpenRouterTestServer) -> None:
    response = post(openrouter_server, audio_out_body())
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": 400,
            "message": "OpenRouterTestServer: no scripted reply left for this request",
        }
    }


# -- SSE rendering -------------------------------------------------------------


def test_speech_stream_matches_openrouter(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.25)  # 12000 bytes
    transcript = "Hello there, friend!"
    openrouter_server.enqueue(
        speech_reply(pcm, transcript, audio_piece_bytes=4801, audio_id="audio_abc")
    )
    before = int(time.time())
    response, raw = stream(openrouter_server, audio_out_body())

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["transfer-encoding"] == "chunked"
    gen_id = response.headers["x-generation-id"]
    assert re.fullmatch(r"gen-\d+-[0-9a-f]+", gen_id)
    assert raw.startswith(PROCESSING.encode() + b"\n\n")

    comments, events = parse_sse(raw)
    assert comments == [PROCESSING]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        assert chunk["id"] == gen_id
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == MODEL
        assert chunk["provider"] == "OpenAI"
        assert isinstance(chunk["created"], int)

    ds = deltas(chunks)
    assert ds[0] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "audio": {"id": "audio_abc", "transcript": "Hell"},
    }
    audio = [d["audio"] for d in ds if "audio" in d]
    kinds = [next(k for k in a if k != "id") for a in audio]
    assert kinds == ["transcript"] * 5 + ["data"] * 3 + ["expires_at"]
    assert "".join(a["transcript"] for a in audio if "transcript" in a) == transcript
    pieces = [a["data"] for a in audio if "data" in a]
    assert [len(base64.b64decode(p)) for p in pieces] == [4801, 4801, 2398]
    assert pieces[0].endswith("=")  # padding mid-stream: the pieces cannot be joined as text
    assert b"".join(base64.b64decode(p) for p in pieces) == pcm
    assert audio[-1].keys() == {"expires_at"}
    assert before + 3500 <= audio[-1]["expires_at"] <= int(time.time()) + 3700

    # OpenRouter sends the finish reason twice, the second time with the usage.
    for finish_chunk in chunks[-2:]:
        finish = finish_chunk["choices"][0]
        assert finish["delta"] == {}
        assert finish["finish_reason"] == finish["native_finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    assert "usage" not in chunks[-2]
    completion = 3 + len(transcript) // 4 + 1
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": completion,
        "total_tokens": 11 + completion,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "audio_tokens": 0,
            "text_tokens": 11,
            "image_tokens": 0,
            "cache_write_tokens": 0,
            "video_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 3,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
            "text_tokens": completion - 3,
            "image_tokens": 0,
        },
        "cost": 0.0012,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": None},
    }


def test_speech_interleaved(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(
        speech_reply(
            b"\x01\x00" * 10, "abcdefgh", text_piece_chars=2, audio_piece_bytes=4, interleave=True
        )
    )
    _, raw = stream(openrouter_server, audio_out_body())
    audio = [d["audio"] for d in deltas(parse_sse(raw)[1]) if "audio" in d]
    kinds = [next(k for k in a if k != "id") for a in audio]
    assert kinds == ["transcript", "data"] * 4 + ["data", "expires_at"]
    assert "id" in audio[0]
    assert all("id" not in a for a in audio[1:])


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 480, 100_000])
def test_audio_piece_sizes_reassemble(openrouter_server: OpenRouterTestServer, piece: int) -> None:
    pcm = tone_pcm16(0.01, 1000)  # 480 bytes
    openrouter_server.enqueue(speech_reply(pcm, "", audio_piece_bytes=piece))
    _, raw = stream(openrouter_server, audio_out_body())
    audio = [d["audio"] for d in deltas(parse_sse(raw)[1]) if "audio" in d]
    pieces = [base64.b64decode(a["data"], validate=True) for a in audio if "data" in a]
    assert len(pieces) == -(-len(pcm) // piece)
    assert b"".join(pieces) == pcm
    assert audio[0]["id"].startswith("audio_")


def test_text_stream_with_audio_input(openrouter_server: OpenRouterTestServer) -> None:
    text = "héllo wörld ✓ ok"
    openrouter_server.enqueue(text_reply(text, text_piece_chars=3, provider="Azure", cost=0.5))
    body = audio_in_body(tone_pcm16(1.0), stream=True)
    _, raw = stream(openrouter_server, body)
    _, events = parse_sse(raw)
    ds = deltas(events)
    assert ds[0] == {"role": "assistant", "content": "hél", "refusal": None}
    assert all(d.keys() == {"content"} for d in ds[1:-2])
    assert ds[-2:] == [{}, {}]  # the finish reason, twice
    assert "".join(d.get("content", "") for d in ds) == text
    assert events[0]["provider"] == "Azure"
    usage = events[-2]["usage"]
    assert usage["prompt_tokens_details"]["audio_tokens"] == 10  # one second of input
    assert usage["prompt_tokens"] == 10 + 10 + len("Transcribe:") // 4
    assert usage["completion_tokens_details"]["audio_tokens"] == 0
    assert usage["completion_tokens"] == len(text) // 4 + 1
    assert usage["cost"] == 0.5


def test_text_only_request_gets_transcript_as_content(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.1), "spoken words"))
    _, raw = stream(openrouter_server, audio_in_body(stream=True))
    ds = deltas(parse_sse(raw)[1])
    assert "".join(d.get("content", "") for d in ds) == "spoken words"
    assert not any("audio" in d for d in ds)


def test_tool_call_stream(openrouter_server: OpenRouterTestServer) -> None:
    args = {"city": "Oslo", "unit": "celsius"}
    openrouter_server.enqueue(tool_call_reply("get_weather", args, call_id="call_1"))
    _, raw = stream(openrouter_server, audio_out_body())
    _, events = parse_sse(raw)
    ds = deltas(events)
    assert ds[0] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
    }
    fragments = [d["tool_calls"][0] for d in ds[1:-2]]
    assert all(f.keys() == {"index", "function"} and f["index"] == 0 for f in fragments)
    assert all(len(f["function"]["arguments"]) <= 8 for f in fragments)
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == args
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_several_tool_calls(openrouter_server: OpenRouterTestServer) -> None:
    calls = [
        {"id": "call_a", "name": "a", "arguments": '{"x": 1}'},
        {"id": "call_b", "name": "b", "arguments": "{}"},
    ]
    openrouter_server.enqueue(Reply(tool_calls=calls), Reply(tool_calls=calls))
    _, raw = stream(openrouter_server, audio_out_body())
    merged: dict[int, dict[str, str]] = {}
    for d in deltas(parse_sse(raw)[1]):
        for call in d.get("tool_calls", []):
            entry = merged.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.get("id", "")
            entry["name"] += call.get("function", {}).get("name", "")
            entry["arguments"] += call["function"].get("arguments", "")
    assert [merged[0], merged[1]] == calls

    response = post(openrouter_server, audio_in_body())
    message = response.json()["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"]},
        }
        for c in calls
    ]


def test_non_stream_json(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("The transcript.", model="openai/gpt-audio"))
    response = post(openrouter_server, audio_in_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert body["id"] == response.headers["x-generation-id"]
    assert body["object"] == "chat.completion"
    assert body["model"] == "openai/gpt-audio"
    assert body["provider"] == "OpenAI"
    assert body["choices"] == [
        {
            "index": 0,
            "finish_reason": "stop",
            "native_finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "The transcript.", "refusal": None},
        }
    ]
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_explicit_usage_and_finish_reason(openrouter_server: OpenRouterTestServer) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    openrouter_server.enqueue(text_reply("cut", usage=usage, finish_reason="length"))
    _, raw = stream(openrouter_server, audio_out_body())
    _, events = parse_sse(raw)
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    assert events[-2]["usage"] == usage


def test_crlf_line_endings(openrouter_server: OpenRouterTestServer) -> None:
    reply = speech_reply(tone_pcm16(0.05), "Hi there", audio_id="audio_1", expires_at=5)
    openrouter_server.enqueue(reply, dataclasses.replace(reply, crlf=True))
    _, lf = stream(openrouter_server, audio_out_body())
    _, crlf = stream(openrouter_server, audio_out_body())
    assert b"\r\n\r\n" in crlf
    assert re.search(rb"[^\r]\n", crlf) is None
    assert deltas(parse_sse(crlf)[1]) == deltas(parse_sse(lf)[1])


def test_comments_before_and_mid_stream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("abcdefghijkl", comments=3), text_reply("x", comments=0))
    _, raw = stream(openrouter_server, audio_out_body())
    text = raw.decode()
    assert text.startswith((PROCESSING + "\n\n") * 3 + "data: ")
    assert text.count(PROCESSING) == 4
    assert text.rindex(PROCESSING) > text.index("data: ")
    _, raw = stream(openrouter_server, audio_out_body())
    assert raw.startswith(b"data: ")


def test_write_size_splits_the_byte_stream(openrouter_server: OpenRouterTestServer) -> None:
    reply = speech_reply(
        tone_pcm16(0.02), "ünïcödé ✓ tëxt", audio_id="audio_1", expires_at=5, write_size=7
    )
    openrouter_server.enqueue(reply, dataclasses.replace(reply, write_size=None))
    _, chunks, complete = raw_exchange(openrouter_server, audio_out_body())
    assert complete
    assert {len(c) for c in chunks[:-1]} == {7}
    assert 1 <= len(chunks[-1]) <= 7
    joined = b"".join(chunks)
    assert not all(is_utf8(c) for c in chunks)  # some piece ends inside a character
    _, whole = stream(openrouter_server, audio_out_body())
    assert deltas(parse_sse(joined)[1]) == deltas(parse_sse(whole)[1])


def test_a_paced_stream_plays_out_on_a_connection_numbered_past_select_s_limit() -> None:
    """A process holding many files (a long test run, a busy app) gets socket numbers over
    1023, which `select.select` refuses: a paced stream must not take that for a client
    that left, and cut itself short."""
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"the open-file limit ({soft}) keeps socket numbers under 1024")
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        with OpenRouterTestServer() as server:
            server.enqueue(text_reply("slow and whole", text_piece_chars=5, event_delay_s=0.1))
            response, raw = stream(server, audio_out_body(), timeout=20)
        assert response.status_code == 200
        assert "slow and whole" in "".join(
            d.get("content") or "" for d in deltas(parse_sse(raw)[1])
        )
        assert parse_sse(raw)[1][-1] == "[DONE]"
    finally:
        for fd in held:
            os.close(fd)


def test_event_delay_keeps_content(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("slow trickle", event_delay_s=0.005, write_size=5))
    _, raw = stream(openrouter_server, audio_out_body())
    ds = deltas(parse_sse(raw)[1])
    assert "".join(d.get("content", "") for d in ds) == "slow trickle"


def test_omit_done_and_omit_finish(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("a", omit_done=True), text_reply("a", omit_finish=True))
    _, raw = stream(openrouter_server, audio_out_body())
    events = parse_sse(raw)[1]
    assert events[-1] != "[DONE]"
    assert "usage" in events[-1]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    _, raw = stream(openrouter_server, audio_out_body())
    events = parse_sse(raw)[1]
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == []  # the usage alone, no finish reason anywhere
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-2])


# -- faults --------------------------------------------------------------------


def test_error_after_sends_error_event_without_done(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.3), "Hello world", error_after=2))
    response, raw = stream(openrouter_server, audio_out_body())
    assert response.status_code == 200
    _, events = parse_sse(raw)
    assert "[DONE]" not in events
    assert len(events) == 3
    error_event = events[-1]
    assert error_event["id"] == response.headers["x-generation-id"]
    assert error_event["object"] == "chat.completion.chunk"
    assert error_event["error"] == {
        "code": 502,
        "message": "Provider disconnected",
        "metadata": {"error_type": "provider_unavailable"},
    }
    assert error_event["choices"] == [
        {
            "index": 0,
            "delta": {"content": ""},
            "finish_reason": "error",
            "native_finish_reason": "error",
        }
    ]


def test_custom_stream_error(openrouter_server: OpenRouterTestServer) -> None:
    err = {"code": "server_error", "message": "boom"}
    openrouter_server.enqueue(text_reply("x", error_after=0, stream_error=err))
    _, raw = stream(openrouter_server, audio_out_body())
    comments, events = parse_sse(raw)
    assert comments == [PROCESSING]
    assert len(events) == 1
    assert events[0]["error"] == err


def test_cut_after_breaks_the_chunked_body(openrouter_server: OpenRouterTestServer) -> None:
    reply = speech_reply(tone_pcm16(0.3), "Hello world", cut_after=3)
    openrouter_server.enqueue(reply, reply)
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            f"{openrouter_server.base_url}/chat/completions",
            json=audio_out_body(),
            headers=AUTH,
        ) as response,
    ):
        received.extend(response.iter_raw())
    assert len(parse_sse(b"".join(received))[1]) == 3

    _, chunks, complete = raw_exchange(openrouter_server, audio_out_body())
    assert not complete
    assert len(parse_sse(b"".join(chunks))[1]) == 3


def test_stall_after_trips_read_timeout(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("stalled", stall_after=1, stall_s=30))
    with pytest.raises(httpx.ReadTimeout):
        stream(openrouter_server, audio_out_body(), timeout=httpx.Timeout(5, read=0.3))


def test_stall_then_continue(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("resumes", stall_after=1, stall_s=0.05))
    _, raw = stream(openrouter_server, audio_out_body())
    events = parse_sse(raw)[1]
    assert events[-1] == "[DONE]"
    assert "".join(d.get("content", "") for d in deltas(events)) == "resumes"


def test_headers_delay_trips_read_timeout(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(error_reply(500, "late", headers_delay_s=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{openrouter_server.base_url}/chat/completions",
            json=audio_out_body(),
            headers=AUTH,
            timeout=httpx.Timeout(5, read=0.3),
        )


def test_reset_before_headers(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(Reply(reset_before_headers=True), Reply(reset_before_headers=True))
    with pytest.raises(httpx.TransportError):
        post(openrouter_server, audio_out_body())
    with pytest.raises(ConnectionResetError):
        raw_exchange(openrouter_server, audio_out_body())
    openrouter_server.enqueue(text_reply("still serving"))
    assert post(openrouter_server, audio_in_body()).status_code == 200


def test_stop_returns_while_a_stream_is_stalled() -> None:
    server = OpenRouterTestServer().start()
    server.enqueue(text_reply("never finishes", stall_after=1, stall_s=60))
    first_event = threading.Event()
    outcome: list[BaseException | None] = []

    def client() -> None:
        try:
            with (
                httpx.Client(timeout=30) as http,
                http.stream(
                    "POST",
                    f"{server.base_url}/chat/completions",
                    json=audio_out_body(),
                    headers=AUTH,
                ) as response,
            ):
                for _ in response.iter_raw():
                    first_event.set()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        first_event.set()

    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    idle.request("GET", "/idle")
    idle.getresponse().read()  # leaves a kept-alive connection open

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    assert first_event.wait(5)
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()
    reader.join(10)
    assert isinstance(outcome[0], httpx.TransportError)
    idle.close()


# -- errors and scripting ------------------------------------------------------


def test_rate_limit_reply(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(rate_limit_reply(), rate_limit_reply(2.5), rate_limit_reply(None))
    response = post(openrouter_server, audio_out_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded",
            "metadata": {"error_type": "rate_limit_exceeded"},
        }
    }
    assert post(openrouter_server, audio_out_body()).headers["retry-after"] == "2.5"
    assert "retry-after" not in post(openrouter_server, audio_out_body()).headers


def test_error_reply(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(
        error_reply(503, "No instances available", headers={"Retry-After": "3"}),
        error_reply(402, "Insufficient credits", metadata={"x": 1}),
        Reply(status=418),
    )
    response = post(openrouter_server, audio_out_body())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.json() == {
        "error": {
            "code": 503,
            "message": "No instances available",
            "metadata": {"error_type": "provider_overloaded"},
        }
    }
    assert post(openrouter_server, audio_out_body()).json()["error"]["metadata"] == {"x": 1}
    teapot = post(openrouter_server, audio_out_body())
    assert teapot.status_code == 418
    assert teapot.json()["error"]["code"] == 418


def test_responder_used_after_queue(openrouter_server: OpenRouterTestServer) -> None:
    seen: list[RecordedRequest] = []

    def echo(request: RecordedRequest) -> Reply:
        seen.append(request)
        return text_reply(f"echo {request.json['messages'][0]['content']}")

    openrouter_server.enqueue(text_reply("queued", text_piece_chars=10))
    openrouter_server.responder = echo
    first = post(openrouter_server, audio_out_body(stream=True))
    assert first.status_code == 200
    assert "queued" in first.text
    assert seen == []
    body = audio_out_body(messages=[{"role": "user", "content": "ping"}])
    assert "echo ping" in "".join(
        d.get("content", "") for d in deltas(parse_sse(stream(openrouter_server, body)[1])[1])
    )
    assert len(seen) == 1


def test_a_responder_that_raises_answers_a_bare_500_and_logs_why(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise RuntimeError("database at /srv/secret-path refused")

    openrouter_server.responder = broken
    with caplog.at_level("ERROR", logger="langchain_openrouter_audio.testing"):
        response = post(openrouter_server, audio_out_body())
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    assert "secret-path" not in response.text
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert any("secret-path" in str(r.exc_info[1]) for r in logged if r.exc_info)


def test_a_failure_inside_the_server_answers_a_bare_500_and_logs_why(
    openrouter_server: OpenRouterTestServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from langchain_openrouter_audio.testing import _audio_api

    def broken(extra: Any = ()) -> list[dict[str, Any]]:
        raise KeyError("internal-catalog-key")

    monkeypatch.setattr(_audio_api, "model_catalog", broken)
    with caplog.at_level("ERROR", logger="langchain_openrouter_audio.testing"):
        response = httpx.get(f"{openrouter_server.base_url}/models", headers=AUTH, timeout=10)
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    assert "internal-catalog-key" not in response.text
    assert "KeyError" not in response.text
    assert any(
        r.exc_info is not None and "internal-catalog-key" in str(r.exc_info[1])
        for r in caplog.records
    )
    # The server goes on answering.
    monkeypatch.undo()
    assert httpx.get(f"{openrouter_server.base_url}/models", headers=AUTH).status_code == 200


def test_requests_are_recorded_and_reset(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("a"), text_reply("b"))
    post(openrouter_server, audio_out_body(stream=True))
    httpx.post(
        f"{openrouter_server.base_url}/chat/completions",
        content=b"\xff not json",
        headers={**AUTH, "X-Title": "tests"},
        timeout=5,
    )
    first, second = openrouter_server.requests
    assert first.method == "POST"
    assert first.path == "/api/v1/chat/completions"
    assert first.authorization == "Bearer test-key"
    assert first.headers["content-type"] == "application/json"
    assert first.json == json.loads(first.body)
    assert first.json["audio"] == {"voice": "alloy", "format": "pcm16"}
    assert second.json is None
    assert second.body == b"\xff not json"
    assert second.headers["x-title"] == "tests"
    with pytest.raises(AttributeError):
        first.method = "GET"  # type: ignore[misc]

    openrouter_server.responder = lambda request: text_reply("x")
    openrouter_server.reset()
    assert openrouter_server.requests == []
    assert openrouter_server.pending == 0
    assert openrouter_server.responder is None


def test_connections_are_kept_alive(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("one"), rate_limit_reply(), text_reply("two"))
    conn = http.client.HTTPConnection("127.0.0.1", openrouter_server.port, timeout=5)
    headers = {**AUTH, "Content-Type": "application/json"}
    conn.connect()
    sock = conn.sock
    for status, body in [
        (404, None),
        (200, audio_out_body()),
        (429, audio_out_body()),
        (200, audio_in_body()),
    ]:
        if body is None:
            conn.request("GET", "/api/v1/no-such-route", headers=headers)
        else:
            conn.request("POST", "/api/v1/chat/completions", json.dumps(body), headers)
        response = conn.getresponse()
        response.read()
        assert response.status == status
        assert conn.sock is sock
    conn.close()


async def test_many_concurrent_streams(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.responder = lambda request: speech_reply(b"\x00\x01" * 100, "hi")
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:

        async def one() -> bytes:
            async with client.stream(
                "POST",
                f"{openrouter_server.base_url}/chat/completions",
                json=audio_out_body(),
                headers=AUTH,
            ) as response:
                assert response.status_code == 200
                return b"".join([piece async for piece in response.aiter_raw()])

        bodies = await asyncio.gather(*(one() for _ in range(256)))
    assert all(parse_sse(b)[1][-1] == "[DONE]" for b in bodies)
    assert len(openrouter_server.requests) == 256


# -- replies and audio helpers -------------------------------------------------


def test_reply_defaults_and_validation() -> None:
    assert Reply().effective_finish_reason == "stop"
    call = tool_call_reply("f", {"a": 1}).tool_calls[0]
    assert re.fullmatch(r"call_[0-9a-f]+", call["id"])
    assert json.loads(call["arguments"]) == {"a": 1}
    assert Reply(tool_calls=[call]).effective_finish_reason == "tool_calls"
    with pytest.raises(ValueError, match="audio_piece_bytes"):
        Reply(audio_piece_bytes=0)
    with pytest.raises(ValueError, match="text_piece_chars"):
        Reply(text_piece_chars=0)
    with pytest.raises(ValueError, match="missing"):
        Reply(tool_calls=[{"name": "f"}])
    server = OpenRouterTestServer()
    with pytest.raises(TypeError):
        server.enqueue("not a reply")  # type: ignore[arg-type]


def test_tone_pcm16() -> None:
    assert SAMPLE_RATE == 24000
    assert len(tone_pcm16(0.5)) == 24000
    assert len(tone_pcm16(1.0, sample_rate=16000)) == 32000
    assert tone_pcm16(0) == b""
    samples = struct.unpack("<2400h", tone_pcm16(0.1, 440.0, amplitude=0.5))
    assert samples[0] == 0
    assert samples[1] == round(0.5 * 32767 * math.sin(2 * math.pi * 440 / 24000))
    assert 16000 <= max(samples) <= 16384
    assert -16384 <= min(samples) <= -16000


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_pcm16() -> None:
    pcm = speech_pcm16("Hello world, this is a test.")
    assert len(pcm) % 2 == 0
    assert len(pcm) > SAMPLE_RATE  # well over half a second
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert max(abs(s) for s in samples) > 1000  # not silence
    slower = speech_pcm16("Hello world, this is a test.", sample_rate=16000)
    assert abs(len(slower) / 2 - len(pcm) / 2 * 16000 / 24000) <= 2


def test_speech_pcm16_without_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"espeak-ng.*apt-get install espeak-ng"):
        speech_pcm16("hi")


# -- real wire shapes, raw and recorded replies ----------------------------------


def _audio_items(events: list[Any]) -> list[dict[str, Any]]:
    return [d["audio"] for d in deltas(events) if "audio" in d]


def test_openai_wire_matches_recorded_shapes(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.25)
    reply = speech_reply(pcm, "Hello there", audio_piece_bytes=4800, wire="openai")
    openrouter_server.enqueue(reply)
    response, raw = stream(openrouter_server, audio_out_body())
    assert "x-generation-id" not in response.headers
    comments, events = parse_sse(raw)
    assert comments == []
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(re.fullmatch(r"chatcmpl-\w+", c["id"]) for c in chunks)
    assert all(c["service_tier"] == "default" and "obfuscation" in c for c in chunks)
    assert all(c["model"] == "gpt-audio-mini" and "provider" not in c for c in chunks)
    with_choices = [c for c in chunks if "choices" in c]
    assert len(chunks) - len(with_choices) == 2 * (len(with_choices) - 2)  # fillers
    assert with_choices[0]["choices"][0]["delta"] == {"role": "assistant", "refusal": None}
    # No finish reason anywhere; the expiry comes alone after the usage chunk.
    assert all(ch.get("finish_reason") is None for c in with_choices for ch in c["choices"])
    assert with_choices[-2]["choices"] == []
    assert with_choices[-2]["usage"]["completion_tokens_details"]["audio_tokens"] == 3
    assert "cost" not in with_choices[-2]["usage"]
    last = with_choices[-1]["choices"][0]
    assert last.keys() == {"index", "delta"}
    assert last["delta"]["audio"].keys() == {"expires_at"}
    first_audio = with_choices[1]["choices"][0]["delta"]
    assert first_audio["content"] is None
    assert first_audio["audio"].keys() == {"id", "transcript"}
    items = _audio_items(with_choices)
    assert not any("data" in a and "transcript" in a for a in items)
    assert "".join(a.get("transcript", "") for a in items) == "Hello there"
    assert b"".join(base64.b64decode(a["data"]) for a in items if "data" in a) == pcm


def test_azure_wire_sorts_keys_and_filters(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.1), "Hi", wire="azure"))
    _, raw = stream(openrouter_server, audio_out_body())
    _, events = parse_sse(raw)
    chunks = events[:-1]
    assert "prompt_filter_results" in chunks[0]
    for line in raw.decode().split("\n"):
        if line.startswith("data: {"):
            obj = json.loads(line[6:])
            assert list(obj) == sorted(obj)
    with_choices = [c for c in chunks[1:] if "choices" in c]
    assert all("content_filter_results" in c["choices"][0] for c in with_choices[:-1])
    # Azure: the expiry comes before the usage chunk.
    assert with_choices[-1]["choices"] == []
    assert "expires_at" in with_choices[-2]["choices"][0]["delta"]["audio"]


def test_openai_wire_text_reply_has_finish_reason(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(text_reply("plain", wire="openai"))
    _, raw = stream(openrouter_server, audio_in_body(stream=True))
    chunks = [c for c in parse_sse(raw)[1][:-1] if c.get("choices")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_whole_audio_in_one_delta(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.5)
    openrouter_server.enqueue(speech_reply(pcm, "Hi", audio_piece_bytes=None, comments=20))
    _, raw = stream(openrouter_server, audio_out_body())
    comments, events = parse_sse(raw)
    assert len(comments) == 21
    pieces = [a["data"] for a in _audio_items(events) if "data" in a]
    assert [base64.b64decode(p) for p in pieces] == [pcm]


def test_whole_completion_to_a_streamed_request(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.1)
    openrouter_server.enqueue(speech_reply(pcm, "Hi", whole_completion=True, audio_id="audio_9"))
    response = post(openrouter_server, audio_out_body())
    assert response.headers["content-type"] == "application/json"
    message = response.json()["choices"][0]["message"]
    assert message["content"] is None
    assert message["annotations"] == []
    assert message["audio"]["id"] == "audio_9"
    assert message["audio"]["transcript"] == "Hi"
    assert base64.b64decode(message["audio"]["data"]) == pcm


def test_error_with_status_200(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(Reply(error={"code": 429, "message": "slow down"}))
    response = post(openrouter_server, audio_out_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": 429, "message": "slow down"}}


def test_recorded_reply_is_byte_for_byte(openrouter_server: OpenRouterTestServer) -> None:
    body = b'\xef\xbb\xbfdata: {"x": "\xc3\xa9"}\r\n\r\n: odd\n\ndata: [DONE]\n\n'
    openrouter_server.enqueue(recorded_reply(body), recorded_reply(body, write_size=3))
    response, raw = stream(openrouter_server, audio_out_body())
    assert response.headers["content-type"] == "text/event-stream"
    assert raw == body
    _, chunks, complete = raw_exchange(openrouter_server, audio_out_body())
    assert complete
    assert b"".join(chunks) == body
    assert {len(c) for c in chunks[:-1]} == {3}


def test_raw_reply_pieces_headers_and_cut(openrouter_server: OpenRouterTestServer) -> None:
    gz = gzip.compress(b'{"error": {"code": 418, "message": "teapot"}}')
    openrouter_server.enqueue(
        raw_reply(gz, status=418, headers={"Content-Encoding": "gzip", "X-Odd": "1"}),
        raw_reply([b"data: {", b'"a": 1}\n', b"\n"], content_type="", cut=True),
    )
    response = post(openrouter_server, audio_out_body())
    assert response.status_code == 418
    assert response.headers["x-odd"] == "1"
    assert response.json()["error"]["message"] == "teapot"
    head, chunks, complete = raw_exchange(openrouter_server, audio_out_body())
    assert b"content-type" not in head.lower()
    assert chunks == [b"data: {", b'"a": 1}\n', b"\n"]
    assert not complete


def test_wire_validation() -> None:
    with pytest.raises(ValueError, match="wire"):
        Reply(wire="bogus")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tuple"):
        Reply(raw_body=[b"x"])  # type: ignore[arg-type]
    assert Reply().wire == "openrouter"
    assert Reply(wire="openai").effective_comments == 0
    assert Reply(wire="openai").effective_filler_chunks == 2


def _shape(chunk: dict[str, Any]) -> tuple[Any, ...]:
    """A chunk's keys, its choice's keys and its delta's keys (values ignored)."""
    choices = chunk.get("choices")
    if not choices:
        return (tuple(chunk), None, None)
    choice = choices[0]
    delta = choice["delta"]
    audio = tuple(delta["audio"]) if "audio" in delta else None
    return (tuple(chunk), tuple(choice), tuple(k for k in delta if k != "audio"), audio)


def test_openai_wire_has_the_recorded_stream_shapes(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # Every kind of chunk in the live recording, and no other kind, in the openai wire.
    recording = Path(__file__).parent.parent / "fixtures" / "real_wire"
    raw = (recording / "gpt-audio-1.5_hello.stream.sse").read_bytes()
    recorded = [e for e in parse_sse(raw)[1] if e != "[DONE]"]
    openrouter_server.enqueue(
        speech_reply(tone_pcm16(0.5), "Hello", text_piece_chars=5, wire="openai")
    )
    _, ours_raw = stream(openrouter_server, audio_out_body())
    ours = [e for e in parse_sse(ours_raw)[1] if e != "[DONE]"]
    assert {_shape(c) for c in ours} == {_shape(c) for c in recorded}
    # The same order of kinds: role, id + transcript, data, usage, then the expiry alone.
    assert _shape(ours[0]) == _shape(recorded[0])
    assert _shape(ours[-2]) == _shape(recorded[-2])
    assert _shape(ours[-1]) == _shape(recorded[-1])


# -- chat generations for GET /generation ---------------------------------------------------


def generation(server: OpenRouterTestServer, gen_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/generation", params={"id": gen_id}, headers=AUTH)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


def speech_record_keys(server: OpenRouterTestServer) -> set[str]:
    server.enqueue_speech(Reply(pcm=tone_pcm16(0.1), cost=0.01))
    response = httpx.post(
        f"{server.base_url}/audio/speech",
        json={"model": "openai/gpt-4o-mini-tts-2025-12-15", "input": "Hi", "voice": "alloy"},
        headers=AUTH,
    )
    return set(generation(server, response.headers["x-generation-id"]))


def test_a_streamed_chat_completion_is_recorded_whole(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.3), "Hello there", cost=0.25))
    response, raw = stream(openrouter_server, audio_out_body())
    record = generation(openrouter_server, response.headers["x-generation-id"])
    _, events = parse_sse(raw)
    usage = events[-2]["usage"]
    assert set(record) == speech_record_keys(openrouter_server)  # every key, as for speech
    assert record["api_type"] == "completions"
    assert record["model"] == MODEL
    assert (record["total_cost"], record["usage"]) == (0.25, 0.25)
    assert (record["streamed"], record["cancelled"]) == (True, False)
    assert record["finish_reason"] == "stop"
    assert record["tokens_prompt"] == usage["prompt_tokens"]
    assert record["tokens_completion"] == usage["completion_tokens"]
    assert record["num_fetches"] is None  # null where it does not apply


def test_a_whole_chat_completion_is_recorded_as_not_streamed(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(text_reply("Hi", cost=0.5))
    response = post(openrouter_server, audio_in_body())
    record = generation(openrouter_server, response.headers["x-generation-id"])
    assert (record["total_cost"], record["streamed"], record["cancelled"]) == (0.5, False, False)


def test_a_stream_the_client_leaves_is_billed_for_the_events_sent(
    openrouter_server: OpenRouterTestServer,
) -> None:
    """The client closes while the model pauses after 4 of its events: the record says
    cancelled, and bills 4 / (all events) of the reply's cost, at once."""
    reply = speech_reply(
        tone_pcm16(1.0), "Hello there", cost=0.5, audio_piece_bytes=4800, stall_after=4
    )
    reply = dataclasses.replace(reply, stall_s=30.0)
    openrouter_server.enqueue(reply)
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            f"{openrouter_server.base_url}/chat/completions",
            json=audio_out_body(),
            headers=AUTH,
        ) as response,
    ):
        gen_id = response.headers["x-generation-id"]
        got = b""
        for raw in response.iter_raw():
            got += raw
            if got.count(b"data: ") == 4:
                break
    started = time.monotonic()
    while openrouter_server.generation(gen_id) is None:
        assert time.monotonic() - started < 5, "the server did not notice the client left"
        time.sleep(0.02)
    record = generation(openrouter_server, gen_id)
    whole = speech_reply(tone_pcm16(1.0), "Hello there", audio_piece_bytes=4800)
    openrouter_server.enqueue(whole)
    _, events = parse_sse(stream(openrouter_server, audio_out_body())[1])
    total = len(events) - 1  # without [DONE]
    assert (record["cancelled"], record["streamed"]) == (True, True)
    assert record["total_cost"] == pytest.approx(0.5 * 4 / total)
    assert record["finish_reason"] is None
    assert 0 < record["tokens_completion"] < events[-2]["usage"]["completion_tokens"]


def test_a_server_left_running_keeps_only_the_latest_generation_records(
    openrouter_server: OpenRouterTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chat call leaves a record: a server left running (the shell command) forgets
    the oldest past a bound, rather than growing with each request."""
    from langchain_openrouter_audio.testing import _server

    monkeypatch.setattr(_server, "_MAX_GENERATIONS", 3)
    gen_ids = []
    for word in ("one", "two", "three", "four", "five"):
        openrouter_server.enqueue(text_reply(word, cost=0.01))
        response = post(openrouter_server, {**audio_in_body(), "stream": False})
        assert response.status_code == 200
        gen_ids.append(response.headers["x-generation-id"])
    assert [openrouter_server.generation(g) is not None for g in gen_ids] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert generation(openrouter_server, gen_ids[-1])["total_cost"] == 0.01
