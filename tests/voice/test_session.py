"""VoiceSession over the local server's real sockets, with espeak-ng speech for both sides.

The source is not real time, so playback advances one 20 ms frame per source frame and the
run is deterministic: barge-in lands on the same frame every time.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_pcm16,
    speech_reply,
    tone_pcm16,
    tool_call_reply,
)
from langchain_openrouter_audio.voice import (
    CallbackSink,
    PcmSource,
    VoiceSession,
    VoiceTurn,
    WavFileSink,
    WavFileSource,
)
from tests._helpers import HAS_ESPEAK, Line, make_llm

from .conftest import click, silence

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

RATE = 16000
FRAME = 640  # 20 ms at 16 kHz
LONG = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west, "
    "and it will stay that way until the evening, when clouds come in from the sea."
)
SHORT = "Tomorrow it will rain."


@pytest.fixture(scope="module")
def voices() -> dict[str, bytes]:
    return {
        "q1": speech_pcm16("What is the weather in Paris?", sample_rate=RATE),
        "q2": speech_pcm16("Wait, what about tomorrow?", sample_rate=RATE),
        "long": speech_pcm16(LONG),
        "short": speech_pcm16(SHORT),
    }


def conversation(voices: dict[str, bytes], gap_ms: int = 2500) -> tuple[bytes, int]:
    """Question 1, then question 2 `gap_ms` later (over the long reply); and where q2 starts."""
    stream = silence(500) + voices["q1"] + silence(gap_ms)
    q2_at = len(stream)
    return stream + voices["q2"] + silence(1500), q2_at


def assistant_texts(server: OpenRouterTestServer, request: int) -> list[str]:
    """The assistant turns sent in the `request`-th chat request (cost lookups skipped)."""
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    return [
        m["content"] if isinstance(m["content"], str) else str(m["content"])
        for m in chats[request].json["messages"]
        if m["role"] == "assistant"
    ]


async def test_barge_in_stops_playback_cancels_and_keeps_only_heard_words(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    openrouter_server.enqueue(speech_reply(voices["long"], LONG))
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream, q2_at = conversation(voices)
    line = Line(stream)
    seen: list[VoiceTurn] = []

    class Watcher(BaseCallbackHandler):  # a LangChain handler that also hears turns
        async def on_voice_turn(self, turn: VoiceTurn) -> None:
            seen.append(turn)

    session = VoiceSession(
        make_llm(openrouter_server),
        source=line.source(),
        sink=line.sink(),
        callbacks=[Watcher()],  # type: ignore[list-item]
    )
    summary = await session.run()

    first, second = summary.turns
    assert seen == summary.turns
    assert first.interrupted
    assert not second.interrupted
    assert 0 < first.heard_s < len(voices["long"]) / 48000

    # Playback paused as soon as the user was heard (min_speech_ms), was cleared once the
    # speech passed min_interruption_ms, and no reply frame came after that.
    (cleared_at,) = line.clears
    q2_end = (q2_at + len(voices["q2"])) // FRAME
    assert not [n for n, _ in line.writes if cleared_at < n <= q2_end]
    first_reply = [(n, f) for n, f in line.writes if n <= cleared_at]
    second = 2 * RATE  # bytes
    assert q2_at // FRAME <= cleared_at <= (q2_at + second) // FRAME  # within q2's first second
    last_written = max(n for n, _ in first_reply)
    assert last_written <= (q2_at + second // 2) // FRAME  # paused within its first 0.5 s
    played = b"".join(f for _, f in first_reply)
    assert played == voices["long"][: len(played)]  # the reply's first samples, in order
    assert len(played) == round(first.heard_s * 48000)

    # The conversation keeps exactly the heard words, never the unheard rest.
    human1, cut, human2, answer = session.messages
    assert isinstance(human1, HumanMessage)
    assert isinstance(human2, HumanMessage)
    assert isinstance(cut, AIMessage)
    assert cut.response_metadata["interrupted"] is True
    words = LONG.split()
    expected = len(words) * first.heard_s / (len(voices["long"]) / 48000)
    assert cut.text == " ".join(words[: int(expected)])
    assert 0 < len(cut.text) < len(LONG)
    assert not first.cancelled  # a file source waits for the whole reply: deterministic
    assert answer.text == SHORT
    # What went back to the model for the second question is the heard part only.
    assert assistant_texts(openrouter_server, 1) == [cut.text]
    assert summary.total_cost == pytest.approx(0.0012 * 2)
    assert first.latency_s is not None
    assert first.latency_s >= first.endpoint_delay_s >= 0.5


async def test_create_agent_tool_call_then_interrupted_speech(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    from langchain.agents import create_agent

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"Sunny in {city}"

    openrouter_server.enqueue(tool_call_reply("get_weather", {"city": "Paris"}, call_id="c1"))
    openrouter_server.enqueue(speech_reply(voices["long"], LONG))
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    agent = create_agent(make_llm(openrouter_server), [get_weather])
    stream, _ = conversation(voices)
    line = Line(stream)
    session = VoiceSession(agent, source=line.source(), sink=line.sink())
    summary = await session.run()

    assert [t.interrupted for t in summary.turns] == [True, False]
    kinds = [type(m).__name__ for m in session.messages]
    assert kinds == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    call, result, cut = session.messages[1:4]
    assert isinstance(call, AIMessage)
    assert call.tool_calls[0]["id"] == "c1"
    assert isinstance(result, ToolMessage)
    assert result.content == "Sunny in Paris"
    assert cut.response_metadata["interrupted"] is True
    assert 0 < len(cut.text) < len(LONG)
    assert LONG.startswith(cut.text)
    # The third request (second question) carries the tool exchange and the heard words.
    sent = openrouter_server.requests[2].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[3]["content"] == cut.text
    assert summary.turns[0].heard_s == pytest.approx(
        cut.response_metadata["heard_seconds"], abs=0.021
    )


async def test_custom_langgraph_graph_and_wav_files(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes], tmp_path: Path
) -> None:
    from langgraph.graph import START, MessagesState, StateGraph

    llm = make_llm(openrouter_server)

    async def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("respond", respond)
    graph = graph.add_edge(START, "respond").compile()
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    question = tmp_path / "question.wav"
    with wave.open(str(question), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(silence(300) + voices["q1"] + silence(1000))
    sink = WavFileSink(tmp_path / "reply_{turn}.wav")
    summary = await VoiceSession(graph, source=WavFileSource(question), sink=sink).run()

    (turn,) = summary.turns
    assert turn.transcript == SHORT
    assert not turn.interrupted
    assert sink.paths == [tmp_path / "reply_1.wav"]
    with wave.open(str(sink.paths[0])) as w:
        assert w.getframerate() == 24000
        pcm = w.readframes(w.getnframes())
    # The whole reply, padded with silence to whole 20 ms frames.
    assert pcm[: len(voices["short"])] == voices["short"]
    assert len(pcm) - len(voices["short"]) < 960
    # The user's utterance went to the model as a 16 kHz WAV.
    sent = openrouter_server.requests[0].json["messages"][0]["content"][0]
    assert sent["type"] == "input_audio"
    assert sent["input_audio"]["format"] == "wav"


async def test_without_barge_in_the_reply_plays_out(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    openrouter_server.enqueue(speech_reply(voices["long"], LONG))
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream, _ = conversation(voices)
    line = Line(stream)
    session = VoiceSession(
        make_llm(openrouter_server), source=line.source(), sink=line.sink(), barge_in=False
    )
    summary = await session.run()
    assert [t.interrupted for t in summary.turns] == [False, False]
    assert line.clears == []
    assert [m.text for m in session.messages if isinstance(m, AIMessage)] == [LONG, SHORT]


async def test_a_user_who_talks_over_a_long_reply_is_bounded(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    # Without barge-in, questions asked over a 20 s reply wait for it: the fifth waiting one
    # ends the session (4 by default, as on the web and the phone).
    openrouter_server.responder = lambda request: speech_reply(tone_pcm16(20.0), LONG)
    stream = silence(300) + voices["q1"] + silence(1000)
    stream += (voices["q2"] + silence(1000)) * 6
    line = Line(stream)
    session = VoiceSession(
        make_llm(openrouter_server), source=line.source(), sink=line.sink(), barge_in=False
    )
    summary = await session.run()
    assert session.ended is not None
    assert session.ended.reason == "too many utterances waiting for an answer"
    assert len(openrouter_server.requests) == 1  # no model call for what waited
    assert len(summary.turns) <= 1


async def test_a_click_during_playback_does_not_interrupt(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream = silence(500) + voices["q1"] + silence(1000) + click(100) + silence(3000)
    line = Line(stream)
    session = VoiceSession(make_llm(openrouter_server), source=line.source(), sink=line.sink())
    summary = await session.run()
    (turn,) = summary.turns
    assert not turn.interrupted
    assert turn.transcript == SHORT
    assert line.clears == []


async def test_real_time_source_barge_in_cancels_the_call_mid_stream(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    """Speech plays while it streams; the user cuts in long before the stream is over."""
    import asyncio

    # 100 ms of speech every 80 ms, transcript interleaved: the 7 s reply takes 6 s to arrive.
    slow = {"event_delay_s": 0.08, "interleave": True, "text_piece_chars": 30}
    openrouter_server.enqueue(speech_reply(voices["long"], LONG, **slow))
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream, q2_at = conversation(voices, gap_ms=1200)
    line = Line(stream)

    async def paced() -> AsyncIterator[bytes]:
        async for chunk in line._chunks():
            await asyncio.sleep(0.02)
            yield chunk

    source = PcmSource(paced(), sample_rate=RATE, realtime=True)
    session = VoiceSession(make_llm(openrouter_server), source=source, sink=line.sink())
    summary = await session.run()

    first, second = summary.turns
    assert first.interrupted
    assert first.cancelled  # the model call was still streaming
    # Latency: played (the sink's frames) comes after received, and is what latency_s uses.
    assert first.response_s is not None
    assert first.first_played_s is not None
    assert first.first_played_s >= first.response_s
    assert first.latency_s == pytest.approx(first.endpoint_delay_s + first.first_played_s)
    assert second.transcript == SHORT
    (cleared_at,) = line.clears
    q2_end = (q2_at + len(voices["q2"])) // FRAME
    assert not [n for n, _ in line.writes if cleared_at < n <= q2_end]
    cut = session.messages[1]
    assert isinstance(cut, AIMessage)
    assert LONG.startswith(cut.text)
    assert len(cut.text) < len(LONG) // 2
    # Never more words than a fast talker says in the time heard.
    assert len(cut.text.split()) <= first.heard_s * 3.5 + 1
    assert assistant_texts(openrouter_server, 1) == ([cut.text] if cut.text else [])
    # The cancelled call reported no cost, yet it was billed: its cost was looked up.
    assert summary.usage.successful_requests == 1
    assert summary.usage.cut_short_requests == 1
    cut_cost = summary.total_cost - 0.0012  # what the finished call reported
    assert 0 < cut_cost < 0.0012


async def test_a_failed_turn_is_reported_and_the_session_goes_on(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    from langchain_openrouter_audio.testing import error_reply

    openrouter_server.enqueue(error_reply(400, "Bad audio"))
    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream = silence(300) + voices["q1"] + silence(1000) + voices["q2"] + silence(1000)
    line = Line(stream)
    session = VoiceSession(make_llm(openrouter_server), source=line.source(), sink=line.sink())
    summary = await session.run()
    failed, answered = summary.turns
    assert failed.error is not None
    assert "Bad audio" in failed.error
    assert failed.reply is None
    assert answered.transcript == SHORT
    assert [type(m).__name__ for m in session.messages] == [
        "HumanMessage",
        "HumanMessage",
        "AIMessage",
    ]


def test_input_shape_follows_the_agent(openrouter_server: OpenRouterTestServer) -> None:
    from langchain.agents import create_agent

    llm = make_llm(openrouter_server)

    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    def session(agent: Any, **kw: Any) -> VoiceSession:
        return VoiceSession(agent, source=PcmSource(nothing()), sink=lambda f: None, **kw)

    assert session(llm).input_key is None  # a chat model takes the message list

    def get_weather(city: str) -> str:
        """Weather for a city."""
        return city

    assert session(llm.bind_tools([get_weather])).input_key is None
    assert session(create_agent(llm, [])).input_key == "messages"
    assert session(create_agent(llm, []), input_key="history").input_key == "history"


async def test_phone_line_sink_gets_8khz_frames(
    openrouter_server: OpenRouterTestServer, voices: dict[str, bytes]
) -> None:
    """A telephony sink: 20 ms frames at 8 kHz, sent on as G.711 mu-law."""
    from langchain_openrouter_audio.voice import pcm16_to_mulaw, resample_pcm16

    openrouter_server.enqueue(speech_reply(voices["short"], SHORT))
    stream = silence(300) + voices["q1"] + silence(1000)
    pcm_frames: list[bytes] = []
    sink = CallbackSink(pcm_frames.append, sample_rate=8000)
    session = VoiceSession(make_llm(openrouter_server), source=Line(stream).source(), sink=sink)
    await session.run()
    assert {len(f) for f in pcm_frames} == {320}
    played = b"".join(pcm_frames)
    expected = resample_pcm16(voices["short"], 24000, 8000)
    assert played[: len(expected)] == expected  # streamed conversion == whole-clip conversion
    assert {len(pcm16_to_mulaw(f)) for f in pcm_frames} == {160}


async def test_a_failed_run_closes_its_source(openrouter_server: Any, question_16k: bytes) -> None:
    # A sink that fails (a speaker unplugged) must not leave the source capturing.
    from langchain_openrouter_audio.testing import speech_reply, tone_pcm16
    from langchain_openrouter_audio.voice.sinks import CallbackSink
    from langchain_openrouter_audio.voice.sources import PcmSource

    state = {"open": False}

    async def microphone() -> AsyncIterator[bytes]:
        state["open"] = True
        try:
            for blob in (bytes(32_000), question_16k, bytes(64_000)):
                for i in range(0, len(blob), 640):
                    yield blob[i : i + 640]
            while True:
                yield bytes(640)
        finally:
            state["open"] = False

    def unplugged(frame: bytes) -> None:
        raise OSError("device unplugged")

    openrouter_server.enqueue(speech_reply(tone_pcm16(1.0), "It is sunny."))
    llm = make_llm(openrouter_server)
    source = PcmSource(microphone(), sample_rate=16_000, realtime=False)
    session = VoiceSession(llm, source=source, sink=CallbackSink(unplugged))
    with pytest.raises(OSError, match="unplugged"):
        await session.run()
    assert state["open"] is False
    await llm.aclose()


async def test_a_hung_agent_times_the_turn_out(question_16k: bytes) -> None:
    # A graph node that never returns must not keep the session waiting forever.
    from langchain_core.runnables import RunnableLambda

    from langchain_openrouter_audio.voice.sinks import CallbackSink
    from langchain_openrouter_audio.voice.sources import PcmSource

    async def hung(state: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return state

    async def microphone() -> AsyncIterator[bytes]:
        for blob in (bytes(16_000), question_16k, bytes(64_000)):
            for i in range(0, len(blob), 640):
                yield blob[i : i + 640]

    source = PcmSource(microphone(), sample_rate=16_000, realtime=False)
    session = VoiceSession(
        RunnableLambda(hung),
        source=source,
        sink=CallbackSink(lambda frame: None),
        turn_timeout_s=0.5,
    )
    summary = await asyncio.wait_for(session.run(), 30)
    (turn,) = summary.turns
    assert turn.error is not None
    assert "TimeoutError" in turn.error
    assert turn.reply is None
