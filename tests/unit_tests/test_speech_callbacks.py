"""Speech reaching callbacks, LangGraph agents and v3 event streams; stream failures."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    ChatOpenRouterAudio,
    IncompleteStreamError,
    StreamError,
    WavFileWriter,
    audio_block_from_bytes,
    audio_pcm,
    save_audio,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_reply,
    tool_call_reply,
)
from tests._helpers import AsyncRecorder, Recorder, get_weather


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream", "stream_events_v3"])
@pytest.mark.parametrize("handler_cls", [Recorder, AsyncRecorder])
async def test_handler_hears_every_byte_once(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    answer_pcm: bytes,
    how: str,
    handler_cls: type[Recorder] | type[AsyncRecorder],
) -> None:
    openrouter_server.enqueue(
        speech_reply(answer_pcm, "Hello, world.", audio_piece_bytes=1001, interleave=True)
    )
    handler = handler_cls()
    config: Any = {"callbacks": [handler]}
    if how == "invoke":
        llm.invoke("hi", config=config)
    elif how == "stream":
        list(llm.stream("hi", config=config))
    elif how == "ainvoke":
        await llm.ainvoke("hi", config=config)
    elif how == "astream":
        async for _ in llm.astream("hi", config=config):
            pass
    else:
        stream = await llm.astream_events("hi", config=config, version="v3")
        async for _ in stream:
            pass
        await stream  # the run (and its on_llm_end) finishes with the final message
    assert bytes(handler.pcm) == answer_pcm
    assert handler.transcript == "Hello, world."
    assert len(handler.ends) == 1
    if isinstance(handler, Recorder):
        assert handler.rates == {24000}


def test_handler_that_skips_super_init_still_hears_audio(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    class Forgetful(AudioCallbackHandler):
        def __init__(self) -> None:  # no super().__init__()
            self.pcm = bytearray()

        def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            self.pcm += chunk

    openrouter_server.enqueue(speech_reply(answer_pcm, "ok"))
    handler = Forgetful()
    reply = llm.invoke("hi", config={"callbacks": [handler]})
    assert bytes(handler.pcm) == answer_pcm == audio_pcm(reply)


def test_wav_file_writer(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    answer_pcm: bytes,
    tmp_path: Path,
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Saved."))
    out = tmp_path / "live.wav"
    reply = llm.invoke("hi", config={"callbacks": [WavFileWriter(out)]})
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(w.getnframes()) == answer_pcm
    saved = save_audio(reply, tmp_path / "reply.wav")
    with wave.open(str(saved)) as w:
        assert w.getframerate() == 24000
        assert w.readframes(w.getnframes()) == answer_pcm


def test_stream_events_v3_keeps_every_byte(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Events.", audio_piece_bytes=777))
    stream = llm.stream_events("hi", version="v3")
    events = list(stream)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "message-start"
    assert kinds[-1] == "message-finish"
    starts = [e for e in events if e["event"] == "content-block-start"]
    [audio_start] = [e for e in starts if e["content"]["type"] == "audio"]
    deltas = [
        e["delta"]["data"]
        for e in events
        if e["event"] == "content-block-delta" and e["index"] == audio_start["index"]
    ]
    assert all(
        d["type"] == "data-delta"
        for e in events
        if e["event"] == "content-block-delta" and e["index"] == audio_start["index"]
        for d in [e["delta"]]
    )
    assert b"".join(base64.b64decode(d) for d in deltas) == answer_pcm
    message = stream.output
    assert message.text == "Events."
    [audio] = [b for b in message.content_blocks if b["type"] == "audio"]
    wav = base64.b64decode(audio["base64"])
    with wave.open(io.BytesIO(wav)) as w:
        assert w.readframes(w.getnframes()) == answer_pcm


def _scripted_agent(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer, question_wav: bytes, answer_pcm: bytes
) -> tuple[Any, HumanMessage]:
    """An agent whose model calls the weather tool, then speaks; and a spoken question."""
    server.enqueue(
        tool_call_reply("get_weather", {"city": "Paris"}, call_id="call_w"),
        speech_reply(answer_pcm, "It is sunny in Paris.", audio_piece_bytes=2400),
    )
    question = HumanMessage(content=[audio_block_from_bytes(question_wav)])
    return create_agent(llm, [get_weather]), question


def test_agent_graph_speech_in_tool_speech_out(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    question_wav: bytes,
    answer_pcm: bytes,
) -> None:
    agent, question = _scripted_agent(llm, openrouter_server, question_wav, answer_pcm)
    handler = Recorder()
    result = agent.invoke({"messages": [question]}, config={"callbacks": [handler]})

    final = result["messages"][-1]
    assert final.text == "It is sunny in Paris."
    tool_message = result["messages"][-2]
    assert tool_message.content == "It is sunny in Paris."
    assert bytes(handler.pcm) == answer_pcm
    assert len(handler.ends) == 1
    # The second request carried the tool result and no audio output bytes.
    second = openrouter_server.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool"]


async def test_agent_graph_messages_stream_carries_raw_pcm(
    llm: ChatOpenRouterAudio,
    openrouter_server: OpenRouterTestServer,
    question_wav: bytes,
    answer_pcm: bytes,
) -> None:
    agent, question = _scripted_agent(llm, openrouter_server, question_wav, answer_pcm)
    handler = Recorder()
    pcm = bytearray()
    async for message, _meta in agent.astream(
        {"messages": [question]}, config={"callbacks": [handler]}, stream_mode="messages"
    ):
        if isinstance(message, AIMessageChunk) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, dict) and block.get("type") == "audio":
                    pcm += base64.b64decode(block["base64"])
    assert bytes(pcm) == answer_pcm
    assert bytes(handler.pcm) == answer_pcm


class _State(TypedDict):
    messages: Annotated[list[Any], add_messages]


def test_langgraph_messages_stream_shows_a_spoken_reply_once(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Hello there"))
    graph = StateGraph(_State)
    graph.add_node("model", lambda state: {"messages": [llm.invoke(state["messages"])]})
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    ids: dict[str | None, list[str]] = {}
    for message, _meta in graph.compile().stream(
        {"messages": [("user", "hi")]}, stream_mode="messages"
    ):
        ids.setdefault(message.id, []).append(type(message).__name__)
    # One message: its chunks, and not the whole reply (with its audio) once more.
    [kinds] = ids.values()
    assert set(kinds) == {"AIMessageChunk"}


# -- failures mid-stream -----------------------------------------------------------


def test_mid_stream_error_carries_partial_and_is_not_retried(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(
        speech_reply(answer_pcm, "Partial answer here.", audio_piece_bytes=4800, error_after=6)
    )
    handler = Recorder()
    with pytest.raises(StreamError) as caught:
        llm.invoke("hi", config={"callbacks": [handler]})
    err = caught.value
    assert not isinstance(err, IncompleteStreamError)
    assert err.code == 502
    assert "Provider disconnected" in str(err)
    assert err.partial is not None
    # 6 events: transcript pieces first, then audio pieces.
    assert err.partial.text
    assert "Partial answer here.".startswith(err.partial.text)
    partial_pcm = audio_pcm(err.partial)
    assert answer_pcm.startswith(partial_pcm)
    assert bytes(handler.pcm) == partial_pcm[: len(handler.pcm)]
    assert handler.transcript == err.partial.text
    assert len(openrouter_server.requests) == 1


def test_cut_stream_raises_incomplete_with_partial(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Cut short.", cut_after=8))
    chunks: list[Any] = []
    with pytest.raises(IncompleteStreamError) as caught:
        for chunk in llm.stream("hi"):
            chunks.append(chunk)
    partial = caught.value.partial
    assert partial is not None
    assert partial.text == "".join(c.text for c in chunks)
    assert len(openrouter_server.requests) == 1


def test_stream_without_finish_reason_is_an_error(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "No end.", omit_finish=True, omit_done=True))
    incomplete = r"without \[DONE\] or a finish reason"
    with pytest.raises(IncompleteStreamError, match=incomplete) as caught:
        llm.invoke("hi")
    assert caught.value.partial is not None
    assert caught.value.partial.text == "No end."
