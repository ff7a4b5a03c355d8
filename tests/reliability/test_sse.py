"""SSE framing: bytes split anywhere, CRLF, comments, unknown events, oversized lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_openrouter_audio._client import CompletionsClient
from langchain_openrouter_audio._sse import SSEDecoder, SSELineTooLong
from langchain_openrouter_audio.errors import IncompleteStreamError, StreamError
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_reply,
    text_reply,
    tone_pcm16,
)
from tests._helpers import capture_sse, make_llm, question_with_audio, reply_pcm

TRANSCRIPT = "héllo wörld ✓ 日本"
TEXT_MODEL = "openai/gpt-4o-mini"  # answers text questions in text (gpt-audio models refuse to)
PCM = tone_pcm16(0.05, 440.0)  # 2 400 bytes


def _events(decoder: SSEDecoder, pieces: list[bytes]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    return out


@pytest.fixture(scope="module")
def real_sse() -> bytes:
    """A real spoken-reply stream: CRLF, keep-alive comments, UTF-8, padded base64 pieces."""
    reply = speech_reply(
        PCM,
        TRANSCRIPT,
        crlf=True,
        comments=3,
        audio_piece_bytes=401,
        text_piece_chars=1,
        interleave=True,
    )
    return capture_sse(reply)


# -- end to end over real sockets ----------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("write_size", [1, 2, 3, 7, 64])
def test_spoken_reply_survives_any_write_size(
    openrouter_server: OpenRouterTestServer, write_size: int, crlf: bool
) -> None:
    openrouter_server.enqueue(
        speech_reply(
            PCM,
            TRANSCRIPT,
            write_size=write_size,
            crlf=crlf,
            comments=3,
            audio_piece_bytes=401,
            text_piece_chars=1,
            interleave=True,
        )
    )
    llm = make_llm(openrouter_server)
    msg = llm.invoke("hi")
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("write_size", [1, 3, 7])
async def test_spoken_reply_survives_any_write_size_async(
    openrouter_server: OpenRouterTestServer, write_size: int, crlf: bool
) -> None:
    openrouter_server.enqueue(
        speech_reply(PCM, TRANSCRIPT, write_size=write_size, crlf=crlf, text_piece_chars=1)
    )
    llm = make_llm(openrouter_server)
    msg = await llm.ainvoke("hi")
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("write_size", [1, 2, 3, 7, 64])
def test_streamed_text_reply_survives_any_write_size(
    openrouter_server: OpenRouterTestServer, write_size: int, crlf: bool
) -> None:
    openrouter_server.enqueue(
        text_reply(TRANSCRIPT, write_size=write_size, crlf=crlf, text_piece_chars=1, comments=2)
    )
    llm = make_llm(openrouter_server, modalities=["text"], streaming=True)
    msg = llm.invoke([question_with_audio("say it")])
    assert msg.content == TRANSCRIPT
    assert openrouter_server.requests[0].json["stream"] is True


# -- SSEDecoder ------------------------------------------------------------------------


def test_real_stream_decodes_to_json_chunks(real_sse: bytes) -> None:
    events = SSEDecoder().feed(real_sse)
    assert events[-1] == ("message", b"[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(name == "message" for name, _ in events)
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_every_split_point_gives_the_same_events(real_sse: bytes) -> None:
    whole = SSEDecoder().feed(real_sse)
    for cut in range(len(real_sse) + 1):
        assert _events(SSEDecoder(), [real_sse[:cut], real_sse[cut:]]) == whole, cut


def test_byte_at_a_time_gives_the_same_events(real_sse: bytes) -> None:
    whole = SSEDecoder().feed(real_sse)
    pieces = [real_sse[i : i + 1] for i in range(len(real_sse))]
    assert _events(SSEDecoder(), pieces) == whole


def test_every_pair_of_split_points_small_stream() -> None:
    raw = (
        b": OPENROUTER PROCESSING\r\n\r\n"
        b'data: {"t":"h\xc3\xa9 \xe2\x9c\x93"}\r\n\r\n'
        b"event: ping\r\ndata: {}\r\n\r\n"
        b"id: 7\nretry: 100\ndata: a\ndata: b\n\n"
        b"data: [DONE]\n\n"
    )
    whole = SSEDecoder().feed(raw)
    assert whole == [
        ("message", '{"t":"hé ✓"}'.encode()),
        ("ping", b"{}"),
        ("message", b"a\nb"),
        ("message", b"[DONE]"),
    ]
    for i in range(len(raw) + 1):
        for j in range(i, len(raw) + 1):
            assert _events(SSEDecoder(), [raw[:i], raw[i:j], raw[j:]]) == whole, (i, j)


def test_comments_only_give_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": OPENROUTER PROCESSING\n\n" * 5) == []
    assert decoder.feed(b":\n:x\n\n") == []


def test_unknown_fields_are_ignored() -> None:
    decoder = SSEDecoder()
    raw = b"id: 1\nretry: 5\nfoo: bar\nx-custom\ndata: {}\n\n"
    assert decoder.feed(raw) == [("message", b"{}")]


def test_unknown_event_type_is_named() -> None:
    assert SSEDecoder().feed(b"event: ping\ndata: {}\n\n") == [("ping", b"{}")]
    # The event name does not stick to the next event.
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\ndata: 1\n\ndata: 2\n\n") == [
        ("ping", b"1"),
        ("message", b"2"),
    ]


def test_data_without_space_and_without_colon() -> None:
    assert SSEDecoder().feed(b"data:x\n\n") == [("message", b"x")]
    assert SSEDecoder().feed(b"data:  two spaces\n\n") == [("message", b" two spaces")]
    assert SSEDecoder().feed(b"data\n\n") == [("message", b"")]


def test_event_without_data_is_not_dispatched() -> None:
    assert SSEDecoder().feed(b"event: ping\n\n") == []
    assert SSEDecoder().feed(b"\n\n\n") == []


def test_oversized_line_split_across_feeds_raises() -> None:
    decoder = SSEDecoder(max_line_bytes=1024)
    decoder.feed(b"data: " + b"x" * 1000)
    with pytest.raises(SSELineTooLong):
        decoder.feed(b"x" * 100)


def test_oversized_line_memory_is_bounded() -> None:
    decoder = SSEDecoder(max_line_bytes=64 * 1024)
    piece = b"x" * 4096
    fed = 0
    with pytest.raises(SSELineTooLong) as info:
        for _ in range(10_000):  # would be 40 MB
            decoder.feed(piece)
            fed += len(piece)
    assert fed <= 64 * 1024
    assert "max_line_bytes=65536" in str(info.value)
    # The buffer was dropped: the decoder holds nothing of the oversized line.
    assert decoder.feed(b"\ndata: ok\n\n") == [("message", b"ok")]


def test_line_at_the_limit_is_fine() -> None:
    line = b"data: " + b"y" * 1018  # 1 024 bytes
    assert SSEDecoder(max_line_bytes=1024).feed(line[:500] + b"") == []
    decoder = SSEDecoder(max_line_bytes=1024)
    assert _events(decoder, [line[:500], line[500:], b"\n\n"]) == [("message", b"y" * 1018)]


@pytest.mark.parametrize("cut", [None, 10, 600, 1200])
def test_oversized_line_raises_however_it_is_split(cut: int | None) -> None:
    """The limit is on a line, so it must not depend on how the bytes were split."""
    raw = b"data: " + b"z" * 2000 + b"\n\n"
    pieces = [raw] if cut is None else [raw[:cut], raw[cut:]]
    with pytest.raises(SSELineTooLong):
        _events(SSEDecoder(max_line_bytes=1024), pieces)


def test_transport_turns_an_oversized_line_into_incomplete_stream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # 4 800-byte audio pieces make ~6.5 kB data lines: over a 2 kB limit.
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.2), "big lines", write_size=512))
    transport = CompletionsClient(
        base_url=openrouter_server.base_url,
        headers={"Authorization": "Bearer test-key"},
        timeout=5,
        max_retries=0,
        max_line_bytes=2048,
    )
    body = {
        "model": "openai/gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with pytest.raises(IncompleteStreamError) as info:
        list(transport.stream(body))
    assert "max_line_bytes=2048" in str(info.value)
    transport.close()


# -- what the transport does with odd events (scripted bytes through httpx) ----------------


def _mock_llm(raw: bytes, **kw: Any):
    def handler(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for i in range(0, len(raw), 5):
                yield raw[i : i + 5]

        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    from langchain_openrouter_audio import ChatOpenRouterAudio

    return ChatOpenRouterAudio(
        base_url="http://mock.test/api/v1", api_key="k", http_client=client, max_retries=3, **kw
    )


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    payload = {"id": "gen-1", "model": "m", "choices": [choice]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def test_ping_events_and_comments_are_skipped() -> None:
    raw = (
        b": OPENROUTER PROCESSING\n\n"
        + b"event: ping\ndata: {}\n\n"
        + _chunk({"content": "hé"})
        + b"event: ping\ndata: not json\n\n"
        + _chunk({"content": "llo"})
        + b"retry: 10\n\n"
        + _chunk({}, "stop")
        + b"data: [DONE]\n\n"
    )
    llm = _mock_llm(raw, model=TEXT_MODEL, modalities=["text"], streaming=True)
    assert llm.invoke("hi").content == "héllo"


def test_error_carried_by_an_unknown_event_type_is_raised() -> None:
    error = {"error": {"code": 503, "message": "overloaded upstream"}}
    raw = (
        _chunk({"content": "so far"})
        + b"event: error\ndata: "
        + json.dumps(error).encode()
        + b"\n\n"
    )
    llm = _mock_llm(raw, model=TEXT_MODEL, modalities=["text"], streaming=True)
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    assert "overloaded upstream" in str(info.value)
    assert info.value.partial is not None
    assert info.value.partial.content == "so far"


def test_malformed_data_is_an_incomplete_stream() -> None:
    raw = _chunk({"content": "ok "}) + b"data: {not json\n\n" + _chunk({}, "stop")
    llm = _mock_llm(raw, model=TEXT_MODEL, modalities=["text"], streaming=True)
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi")
    assert "malformed SSE data" in str(info.value)
    assert info.value.partial is not None
    assert info.value.partial.content == "ok "


@pytest.mark.parametrize("data", ["A", "@@@", "AAAA@@@@"])
def test_bad_base64_audio_is_an_incomplete_stream(data: str) -> None:
    """Audio data that is not base64 must fail loudly, not be dropped (a silent gap)."""
    raw = (
        _chunk({"audio": {"transcript": "x"}})
        + _chunk({"audio": {"data": data}})
        + _chunk({}, "stop")
        + b"data: [DONE]\n\n"
    )
    llm = _mock_llm(raw)
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi")
    assert "not base64" in str(info.value)


def test_event_of_many_data_lines_is_bounded() -> None:
    """The limit also holds for one event built from many short `data:` lines."""
    decoder = SSEDecoder(max_line_bytes=1000)
    with pytest.raises(SSELineTooLong):
        for _ in range(200):
            decoder.feed(b"data: " + b"z" * 10 + b"\n")
