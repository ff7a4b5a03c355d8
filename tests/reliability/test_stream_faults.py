"""Faults after the stream opened (HTTP 200): never retried; what arrived is kept and heard once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.errors import IncompleteStreamError, StreamError
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    raw_reply,
    speech_reply,
    tone_pcm16,
)
from tests._helpers import (
    AsyncRecorder,
    Recorder,
    make_llm,
    question_with_audio,
    reply_pcm,
    summed_pcm,
)

PCM = tone_pcm16(0.5, 440.0)  # 24 000 bytes: five 4 800-byte pieces
TRANSCRIPT = "Partial speech here."  # five 4-character pieces
PIECE = 4800
N_TEXT = 5  # transcript events come first, then the audio events


def _speech(**kw: Any):
    return speech_reply(PCM, TRANSCRIPT, audio_piece_bytes=PIECE, text_piece_chars=4, **kw)


def _partial_pcm(err: StreamError) -> bytes:
    assert err.partial is not None
    return reply_pcm(err.partial)


# -- mid-stream error event --------------------------------------------------------


def _check_midstream(err: StreamError, server: OpenRouterTestServer) -> None:
    assert type(err) is StreamError  # an error event, not a broken stream
    assert err.status_code == 502
    assert err.code == 502
    assert err.metadata == {"error_type": "provider_unavailable"}
    assert "mid-stream" in str(err)
    assert "Provider disconnected" in str(err)
    assert err.partial is not None
    assert err.partial.text == TRANSCRIPT
    assert _partial_pcm(err) == PCM[: 3 * PIECE]
    assert len(server.requests) == 1  # never retried


def test_midstream_error_invoke(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(error_after=N_TEXT + 3))
    llm = make_llm(openrouter_server, max_retries=5)
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    _check_midstream(info.value, openrouter_server)


def test_midstream_error_invoke_with_handler(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(error_after=N_TEXT + 3))
    llm = make_llm(openrouter_server, max_retries=5)
    handler = Recorder()
    with pytest.raises(StreamError) as info:
        llm.invoke("hi", config={"callbacks": [handler]})
    _check_midstream(info.value, openrouter_server)
    # Exactly the audio that arrived, once, in order; then one end notice naming the error.
    assert handler.pcm == PCM[: 3 * PIECE]
    assert "".join(handler.text) == TRANSCRIPT
    assert len(handler.ends) == 1
    assert handler.ends[0]["error"] is info.value


async def test_midstream_error_ainvoke_with_async_handler(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(_speech(error_after=N_TEXT + 3))
    llm = make_llm(openrouter_server, max_retries=5)
    handler = AsyncRecorder()
    with pytest.raises(StreamError) as info:
        await llm.ainvoke("hi", config={"callbacks": [handler]})
    _check_midstream(info.value, openrouter_server)
    assert handler.pcm == PCM[: 3 * PIECE]
    assert "".join(handler.text) == TRANSCRIPT
    assert len(handler.ends) == 1


def test_midstream_error_stream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(error_after=N_TEXT + 3))
    llm = make_llm(openrouter_server, max_retries=5)
    handler = Recorder()
    got: list[AIMessageChunk] = []
    with pytest.raises(StreamError) as info:
        for chunk in llm.stream("hi", config={"callbacks": [handler]}):
            got.append(chunk)
    _check_midstream(info.value, openrouter_server)
    total = got[0]
    for chunk in got[1:]:
        total += chunk
    # What the caller saw is what the partial holds, and what the handler heard.
    assert total.text == TRANSCRIPT
    assert summed_pcm(total) == PCM[: 3 * PIECE]
    assert handler.pcm == PCM[: 3 * PIECE]


async def test_midstream_error_astream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(error_after=N_TEXT + 3))
    llm = make_llm(openrouter_server, max_retries=5)
    got: list[AIMessageChunk] = []
    with pytest.raises(StreamError) as info:
        async for chunk in llm.astream("hi"):
            got.append(chunk)
    _check_midstream(info.value, openrouter_server)
    pcm = b"".join(
        base64.b64decode(b["base64"])
        for c in got
        for b in c.content
        if isinstance(b, dict) and b.get("type") == "audio"
    )
    assert pcm == PCM[: 3 * PIECE]


def test_midstream_error_with_string_code(openrouter_server: OpenRouterTestServer) -> None:
    # The docs show error.code as a string too ("server_error").
    error = {"code": "server_error", "message": "Internal provider failure"}
    openrouter_server.enqueue(_speech(error_after=N_TEXT, stream_error=error))
    llm = make_llm(openrouter_server)
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    assert info.value.code == "server_error"
    assert info.value.status_code is None
    assert "Internal provider failure" in str(info.value)
    assert info.value.partial is not None
    assert info.value.partial.text == TRANSCRIPT
    assert len(openrouter_server.requests) == 1


def test_midstream_error_before_any_content(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(error_after=0))
    llm = make_llm(openrouter_server, max_retries=5)
    handler = Recorder()
    with pytest.raises(StreamError) as info:
        llm.invoke("hi", config={"callbacks": [handler]})
    assert info.value.partial is not None
    assert info.value.partial.text == ""
    assert handler.audio == []
    assert len(openrouter_server.requests) == 1  # status was 200: not retried


@pytest.mark.parametrize("piece", [1001, 4804, 7])
def test_midstream_error_odd_pieces_handler_hears_what_arrived(
    openrouter_server: OpenRouterTestServer, piece: int
) -> None:
    """Pieces that are not whole samples (odd byte counts, base64 padding mid-stream)."""
    pcm = tone_pcm16(0.3, 300.0)  # 14 400 bytes
    n_pieces = -(-len(pcm) // piece)
    stop_after = n_pieces // 2
    reply = speech_reply(
        pcm, "odd", audio_piece_bytes=piece, text_piece_chars=4, error_after=1 + stop_after
    )
    openrouter_server.enqueue(reply)
    llm = make_llm(openrouter_server)
    handler = Recorder()
    with pytest.raises(StreamError) as info:
        llm.invoke("hi", config={"callbacks": [handler]})
    arrived = pcm[: stop_after * piece]
    assert info.value.partial is not None
    assert reply_pcm(info.value.partial) == arrived
    # Every byte that arrived reaches the handler, even the tail that does not fill a
    # 6-byte slice yet: what the caller hears must match the partial message.
    assert handler.pcm == arrived


# -- broken streams ------------------------------------------------------------------


def test_cut_stream_is_incomplete(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(cut_after=N_TEXT + 2))
    llm = make_llm(openrouter_server, max_retries=5)
    handler = Recorder()
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi", config={"callbacks": [handler]})
    err = info.value
    assert "broke off" in str(err)
    assert err.partial is not None
    assert err.partial.text == TRANSCRIPT
    assert _partial_pcm(err) == PCM[: 2 * PIECE]
    assert handler.pcm == PCM[: 2 * PIECE]
    assert len(openrouter_server.requests) == 1


async def test_cut_stream_is_incomplete_async(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(cut_after=2))
    llm = make_llm(openrouter_server, max_retries=5)
    with pytest.raises(IncompleteStreamError) as info:
        await llm.ainvoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.text == TRANSCRIPT[:8]
    assert len(openrouter_server.requests) == 1


def test_cut_right_after_headers(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(cut_after=0))
    llm = make_llm(openrouter_server, max_retries=5)
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.text == ""
    assert len(openrouter_server.requests) == 1


def test_no_finish_no_done_is_incomplete(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(omit_finish=True, omit_done=True))
    llm = make_llm(openrouter_server)
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi")
    err = info.value
    assert "without [DONE] or a finish reason" in str(err)
    assert err.partial is not None
    assert err.partial.text == TRANSCRIPT
    assert _partial_pcm(err) == PCM
    assert len(openrouter_server.requests) == 1


def test_done_without_finish_is_complete(openrouter_server: OpenRouterTestServer) -> None:
    # Real OpenAI audio streams carry no finish_reason at all: [DONE] ends them.
    openrouter_server.enqueue(_speech(omit_finish=True))
    llm = make_llm(openrouter_server)
    msg = llm.invoke("hi")
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM
    assert "finish_reason" not in msg.response_metadata


async def test_no_finish_no_done_is_incomplete_astream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(_speech(omit_finish=True, omit_done=True))
    llm = make_llm(openrouter_server)
    with pytest.raises(IncompleteStreamError):
        async for _ in llm.astream("hi"):
            pass


def test_finish_without_done_is_complete(openrouter_server: OpenRouterTestServer) -> None:
    # The finish reason and usage arrived; only the [DONE] sentinel is missing.
    openrouter_server.enqueue(_speech(omit_done=True))
    llm = make_llm(openrouter_server)
    msg = llm.invoke("hi")
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM
    assert msg.response_metadata["finish_reason"] == "stop"


# -- stalls and trickles ---------------------------------------------------------------


def test_stall_longer_than_timeout_is_incomplete(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_speech(stall_after=N_TEXT + 1, stall_s=10.0))
    # Each read may take 1.5 s (the events before the stall arrive in time on a loaded
    # machine too: a timeout before them would be retried); the stall is far longer.
    llm = make_llm(openrouter_server, timeout=1.5, max_retries=5)
    handler = Recorder()
    with pytest.raises(IncompleteStreamError) as info:
        llm.invoke("hi", config={"callbacks": [handler]})
    err = info.value
    assert "stalled" in str(err)
    assert err.partial is not None
    assert err.partial.text == TRANSCRIPT
    assert _partial_pcm(err) == PCM[:PIECE]
    assert handler.pcm == PCM[:PIECE]
    assert len(openrouter_server.requests) == 1


async def test_stall_longer_than_timeout_is_incomplete_async(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(_speech(stall_after=N_TEXT + 2, stall_s=10.0))
    # Each read may take 1.5 s (the events before the stall arrive in time on a loaded
    # machine too: a timeout before them would be retried); the stall is far longer.
    llm = make_llm(openrouter_server, timeout=1.5, max_retries=5)
    with pytest.raises(IncompleteStreamError) as info:
        await llm.ainvoke("hi")
    assert "stalled" in str(info.value)
    assert info.value.partial is not None
    assert _partial_pcm(info.value) == PCM[: 2 * PIECE]
    assert len(openrouter_server.requests) == 1


def test_slow_trickle_within_timeout_completes(openrouter_server: OpenRouterTestServer) -> None:
    # 13 events 0.3 s apart: ~3.9 s in all, over three times the 1.2 s timeout, which
    # bounds each read and not the whole reply. (Each gap has 0.9 s to spare for a loaded
    # machine: one late read would cut the reply.)
    openrouter_server.enqueue(_speech(event_delay_s=0.3))
    llm = make_llm(openrouter_server, timeout=1.2)
    handler = Recorder()
    msg = llm.invoke("hi", config={"callbacks": [handler]})
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM
    assert handler.pcm == PCM
    assert len(openrouter_server.requests) == 1


async def test_slow_trickle_within_timeout_completes_async(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(_speech(event_delay_s=0.3))
    llm = make_llm(openrouter_server, timeout=1.2)
    msg = await llm.ainvoke("hi")
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM


# -- success invariants --------------------------------------------------------------


@pytest.mark.parametrize("interleave", [False, True])
@pytest.mark.parametrize("piece", [4800, 1001, 3])
def test_audio_heard_once_in_order(
    openrouter_server: OpenRouterTestServer, interleave: bool, piece: int
) -> None:
    pcm = tone_pcm16(0.1, 523.0)
    openrouter_server.enqueue(
        speech_reply(pcm, TRANSCRIPT, audio_piece_bytes=piece, interleave=interleave)
    )
    llm = make_llm(openrouter_server)
    handler = Recorder()
    msg = llm.invoke("hi", config={"callbacks": [handler]})
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == pcm
    assert handler.pcm == pcm
    assert all(len(c) % 2 == 0 for c in handler.audio)  # whole 16-bit samples
    assert "".join(handler.text) == TRANSCRIPT
    assert len(handler.ends) == 1
    assert "error" not in handler.ends[0]


def test_stream_chunks_sum_to_the_reply(openrouter_server: OpenRouterTestServer) -> None:
    pcm = tone_pcm16(0.1, 523.0)
    openrouter_server.enqueue(speech_reply(pcm, TRANSCRIPT, audio_piece_bytes=1001))
    llm = make_llm(openrouter_server)
    chunks = list(llm.stream("hi"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.text == TRANSCRIPT
    assert summed_pcm(total) == pcm


def test_endless_bytes_after_done_are_not_read_forever() -> None:
    # A broken relay that keeps sending after [DONE]: the reply is complete at [DONE],
    # and draining the connection for reuse stops after a bounded amount.
    pulled: list[int] = []

    def body() -> Iterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"content":"Done."}}]}\n\n'
        yield b"data: [DONE]\n\n"
        for _ in range(100_000):  # 6.5 GB of keep-alive comments, if anyone read them all
            pulled.append(1)
            yield b": " + b"x" * 65_533 + b"\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body())

    llm = ChatOpenRouterAudio(
        base_url="http://relay.test/api/v1",
        api_key="k",
        model="openai/gpt-4o-mini",
        modalities=["text"],
        streaming=True,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert llm.invoke("hi").text == "Done."
    assert len(pulled) <= 20  # about 1 MB


def test_cut_after_done_is_still_a_whole_reply(openrouter_server: OpenRouterTestServer) -> None:
    # The relay hangs up while the client drains the body after [DONE]: nothing is lost.
    body = b'data: {"choices":[{"index":0,"delta":{"content":"Whole."}}]}\n\ndata: [DONE]\n\n'
    openrouter_server.enqueue(raw_reply([body, b": trailing"], content_type=None, cut=True))
    llm = make_llm(openrouter_server, modalities=["text"], streaming=True, max_retries=0)
    assert llm.invoke([question_with_audio("hi")]).text == "Whole."
