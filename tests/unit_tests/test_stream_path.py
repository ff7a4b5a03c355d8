"""The stream path: what core hands `on_llm_end`, `join_chunks`, coalesced reads, no re-decoding."""

from __future__ import annotations

import asyncio
import functools
import operator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.outputs import LLMResult

from langchain_openrouter_audio import (
    ChatOpenRouterAudio,
    audio_block_from_bytes,
    audio_pcm,
    join_chunks,
    pcm16_to_wav,
)
from langchain_openrouter_audio._driver import SpeechChunk
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    speech_reply,
    text_reply,
    tone_pcm16,
)
from tests._helpers import make_llm

PCM = tone_pcm16(0.5, 440.0)
CALLS = [
    {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
    {"id": "call_2", "name": "get_time", "arguments": '{"tz": "CET"}'},
]

REPLIES = {
    "speech": lambda: speech_reply(
        PCM, "Hello there, friend.", audio_piece_bytes=1001, text_piece_chars=3, interleave=True
    ),
    "speech in one write": lambda: speech_reply(PCM, "All at once.", audio_piece_bytes=4800),
    "tools": lambda: Reply(tool_calls=CALLS),
    "speech and tools": lambda: Reply(
        pcm=PCM, transcript="Checking.", tool_calls=CALLS, audio_piece_bytes=777
    ),
    "text": lambda: text_reply("Plain text, streamed.", text_piece_chars=2),
}


class EndRecorder(BaseCallbackHandler):
    """Keeps what langchain-core hands `on_llm_end`: its merge of the streamed chunks."""

    def __init__(self) -> None:
        self.ends: list[LLMResult] = []
        self.tokens: list[Any] = []

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        self.tokens.append(chunk)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append(response)


def _model(server: OpenRouterTestServer, kind: str, **kw: Any) -> ChatOpenRouterAudio:
    if kind == "text":
        kw = {"modalities": ["text"], **kw}
    return make_llm(server, **kw)


def _question(kind: str) -> Any:
    # gpt-audio models answer in text only what they heard.
    if kind != "text":
        return "hi"
    return [HumanMessage(content=[audio_block_from_bytes(pcm16_to_wav(PCM))])]


def _same(a: AIMessageChunk, b: AIMessageChunk) -> None:
    assert a.content == b.content
    assert a.tool_call_chunks == b.tool_call_chunks
    assert a.tool_calls == b.tool_calls
    assert a.usage_metadata == b.usage_metadata
    assert a.response_metadata == b.response_metadata
    assert a.id == b.id
    assert a.chunk_position == b.chunk_position


@pytest.mark.parametrize("kind", list(REPLIES))
@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_on_llm_end_gets_exactly_the_sum_of_the_chunks(
    openrouter_server: OpenRouterTestServer, kind: str, output_version: str
) -> None:
    openrouter_server.enqueue(REPLIES[kind]())
    llm = _model(openrouter_server, kind, output_version=output_version)
    recorder = EndRecorder()
    chunks = list(llm.stream(_question(kind), config={"callbacks": [recorder]}))
    summed = functools.reduce(operator.add, chunks)
    (end,) = recorder.ends
    merged = end.generations[0][0].message
    assert isinstance(merged, AIMessageChunk)
    _same(merged, summed)
    _same(join_chunks(chunks), summed)


@pytest.mark.parametrize("kind", list(REPLIES))
async def test_async_on_llm_end_gets_exactly_the_sum_of_the_chunks(
    openrouter_server: OpenRouterTestServer, kind: str
) -> None:
    openrouter_server.enqueue(REPLIES[kind]())
    llm = _model(openrouter_server, kind)
    recorder = EndRecorder()
    chunks = [c async for c in llm.astream(_question(kind), config={"callbacks": [recorder]})]
    merged = recorder.ends[0].generations[0][0].message
    assert isinstance(merged, AIMessageChunk)
    _same(merged, functools.reduce(operator.add, chunks))


def test_join_chunks_gives_the_whole_reply(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(REPLIES["speech"]())
    reply = join_chunks(_model(openrouter_server, "speech").stream("hi"))
    assert reply.text == "Hello there, friend."
    assert audio_pcm(reply) == PCM
    audio = [b for b in reply.content if isinstance(b, dict) and b["type"] == "audio"]
    assert len(audio) == 1
    assert audio[0]["mime_type"] == "audio/pcm;rate=24000"


def test_join_chunks_of_one_chunk_and_of_none() -> None:
    only = AIMessageChunk(content=[{"type": "text", "text": "hi", "index": 0}])
    assert join_chunks([only]).content == only.content
    assert join_chunks([only]) is not only
    with pytest.raises(ValueError, match="at least one chunk"):
        join_chunks([])


def test_chunks_edited_after_the_stream_are_summed_as_they_are_now(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # The shortcut applies only to the chunks as emitted; anything else is summed for real.
    openrouter_server.enqueue(REPLIES["speech"]())
    chunks = list(_model(openrouter_server, "speech").stream("hi"))
    edited = chunks[0].model_copy(update={"content": [{"type": "text", "text": "X", "index": 0}]})
    expected = functools.reduce(operator.add, [edited, *chunks[1:]])
    _same(join_chunks([edited, *chunks[1:]]), expected)


def test_a_burst_of_events_in_one_read_is_one_chunk(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # Forty transcript events written at once: no more chunks than reads, text intact.
    openrouter_server.enqueue(text_reply("x" * 40, text_piece_chars=1, write_size=1 << 20))
    llm = _model(openrouter_server, "text")
    chunks = list(llm.stream(_question("text")))
    assert "".join(c.text for c in chunks) == "x" * 40
    assert len(chunks) < 10


def test_chunks_carry_their_speech_as_pcm_for_handlers(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(REPLIES["speech"]())
    recorder = EndRecorder()
    _model(openrouter_server, "speech").invoke("hi", config={"callbacks": [recorder]})
    speech = [c for c in recorder.tokens if isinstance(c, SpeechChunk) and c.pcm]
    assert b"".join(c.pcm for c in speech) == PCM
    assert all(len(c.pcm) % 2 == 0 for c in speech)


async def test_async_events_that_piled_up_become_one_chunk(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # One HTTP chunk per SSE event, as servers send them; while the consumer is busy with
    # the first chunk, the rest arrives and comes back joined, not one chunk per event.
    pcm = tone_pcm16(2.0, 330.0)
    openrouter_server.enqueue(speech_reply(pcm, "Piled up.", audio_piece_bytes=960))
    llm = _model(openrouter_server, "speech")
    chunks = []
    async for chunk in llm.astream("hi"):
        if not chunks:
            # A slow consumer: the reader keeps reading. (Long enough for the server thread
            # to have sent all 100 events even on a loaded machine, where a late one would
            # come as a chunk of its own.)
            await asyncio.sleep(1.0)
        chunks.append(chunk)
    await llm.aclose()
    assert audio_pcm(join_chunks(chunks)) == pcm  # 100 audio events
    assert len(chunks) <= 5
