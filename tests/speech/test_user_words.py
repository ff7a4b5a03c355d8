"""The user's words in the voice loop, and speech cost lookups off the speaking path.

All against the local OpenRouter server over real sockets: a speech-native agent hears the
recording while the transcript is made beside its call; a text agent's sentences are each
spoken as soon as the one before has played, while the cost of that one is still looked up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_openrouter_audio import (
    OpenRouterSpeech,
    OpenRouterTranscription,
    get_openrouter_callback,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    speech_pcm16,
    speech_reply,
    text_reply,
)
from langchain_openrouter_audio.voice import CallbackSink, PcmSource, VoiceSession, VoiceTurn
from langchain_openrouter_audio.voice.spoken_text import TextSpeaker, agent_hearing
from tests._helpers import HAS_ESPEAK, clip_pcm, make_llm

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

RATE = 16000
QUESTION = "What is the weather like in Paris right now?"
ANSWER = "It is twenty one degrees and sunny in Paris."
SENTENCES = [
    "It is twenty one degrees and sunny in Paris.",
    "Take your sunglasses with you.",
    "The evening will stay warm and clear.",
]
CHAT_COST = 0.0012
STT_COST = 0.0003


def silence(ms: int) -> bytes:
    return bytes(2 * RATE * ms // 1000)


async def frames(stream: bytes) -> AsyncIterator[bytes]:
    for pos in range(0, len(stream), 640):
        yield stream[pos : pos + 640]


def session_of(agent: Any, stream: bytes, **kw: Any) -> VoiceSession:
    return VoiceSession(
        agent,
        source=PcmSource(frames(stream), sample_rate=RATE, realtime=False),
        sink=CallbackSink(lambda frame: None, sample_rate=24000),
        **kw,
    )


def paths(server: OpenRouterTestServer, suffix: str) -> list[RecordedRequest]:
    return [r for r in server.requests if urlsplit(r.path).path.endswith(suffix)]


def common(server: OpenRouterTestServer) -> dict[str, Any]:
    return {"base_url": server.base_url, "api_key": server.api_key, "timeout": 10}


# -- who hears what -----------------------------------------------------------------------


def test_the_agent_hears_audio_unless_it_needs_a_voice(
    openrouter_server: OpenRouterTestServer,
) -> None:
    stt = OpenRouterTranscription(**common(openrouter_server))
    tts = OpenRouterSpeech(**common(openrouter_server))
    native = make_llm(openrouter_server)  # a gpt-audio model: it speaks, so it hears
    text = make_llm(openrouter_server, model="openai/gpt-4o")
    assert agent_hearing("auto", native, None, None) == "audio"
    assert agent_hearing("auto", native, stt, None) == "audio"
    assert agent_hearing("auto", text, stt, None) == "text"
    assert agent_hearing("auto", text, stt, tts) == "text"
    assert agent_hearing("auto", native, stt, tts) == "text"  # it is given a voice
    assert agent_hearing("text", native, stt, None) == "text"
    with pytest.raises(ValueError, match="needs transcription"):
        agent_hearing("text", native, None, None)
    with pytest.raises(ValueError, match="agent_hears must be"):
        agent_hearing("words", native, stt, None)  # type: ignore[arg-type]


# -- beside a speech-native agent ---------------------------------------------------------


async def test_a_speech_native_agent_hears_the_recording_and_the_words_come_beside(
    openrouter_server: OpenRouterTestServer,
) -> None:
    answer = clip_pcm("weather_answer")
    openrouter_server.enqueue(speech_reply(answer, ANSWER))
    # The transcript takes 4 s: the agent's call must not wait for it.
    openrouter_server.enqueue_transcription(
        text_reply(QUESTION, cost=STT_COST, headers_delay_s=4.0)
    )
    stt = OpenRouterTranscription(**common(openrouter_server))
    turns: list[VoiceTurn] = []
    session = session_of(
        make_llm(openrouter_server),
        silence(300) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(1500),
        transcription=stt,
        on_turn=turns.append,
    )
    try:
        summary = await session.run()
    finally:
        stt.close()
        await stt.aclose()

    (turn,) = summary.turns
    assert turns == [turn]
    assert turn.user_text == QUESTION
    # The agent got the recording, and nothing but the recording.
    (chat,) = paths(openrouter_server, "/chat/completions")
    (user,) = chat.json["messages"]
    assert [part["type"] for part in user["content"]] == ["input_audio"]
    # Its first audio came long before the transcript could have (a second or more to
    # spare for a loaded machine).
    assert turn.response_s is not None
    assert turn.response_s < 3.0
    # Both calls are in the turn's cost and the session's.
    assert turn.cost == pytest.approx(CHAT_COST + STT_COST)
    assert summary.total_cost == pytest.approx(CHAT_COST + STT_COST)
    # The history keeps the recording; the words ride along with it.
    question, reply = session.messages
    assert isinstance(question, HumanMessage)
    assert isinstance(reply, AIMessage)
    assert [block["type"] for block in question.content] == ["audio"]  # type: ignore[index]
    assert question.additional_kwargs["transcript"] == QUESTION
    assert f"{QUESTION!r} -> {ANSWER!r}" in str(summary)


async def test_a_failed_transcription_costs_the_turn_nothing_but_its_words(
    openrouter_server: OpenRouterTestServer,
) -> None:
    from langchain_openrouter_audio.testing import error_reply

    openrouter_server.enqueue(speech_reply(clip_pcm("weather_answer"), ANSWER))
    openrouter_server.enqueue_transcription(error_reply(400, "bad audio"))
    stt = OpenRouterTranscription(**common(openrouter_server), max_retries=0)
    session = session_of(
        make_llm(openrouter_server),
        silence(300) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(1500),
        transcription=stt,
    )
    try:
        summary = await session.run()
    finally:
        stt.close()
        await stt.aclose()
    (turn,) = summary.turns
    assert turn.user_text is None
    assert turn.error is None
    assert turn.transcript == ANSWER
    assert "transcript" not in session.messages[0].additional_kwargs


# -- speech cost lookups off the speaking path --------------------------------------------


async def test_the_next_sentence_is_spoken_while_the_last_ones_cost_is_looked_up(
    openrouter_server: OpenRouterTestServer,
) -> None:
    misses = 4  # 404, 404, 404, 404, then the record: 0.1 + 0.2 + 0.4 + 0.8 s of waiting
    openrouter_server.generation_misses = misses
    openrouter_server.enqueue(text_reply(" ".join(SENTENCES), cost=CHAT_COST))
    openrouter_server.enqueue_transcription(text_reply(QUESTION, cost=STT_COST))
    stt = OpenRouterTranscription(**common(openrouter_server))
    tts = OpenRouterSpeech(**common(openrouter_server))
    session = session_of(
        make_llm(openrouter_server, model="openai/gpt-4o"),
        silence(300) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(2000),
        transcription=stt,
        speech=tts,
    )
    try:
        summary = await session.run()
    finally:
        for model in (stt, tts):
            model.close()
            await model.aclose()

    (turn,) = summary.turns
    assert turn.user_text == QUESTION  # the agent read it: known before its call
    order = openrouter_server.requests
    speech = [i for i, r in enumerate(order) if urlsplit(r.path).path.endswith("/speech")]
    assert [order[i].json["input"] for i in speech] == SENTENCES
    lookups = [
        (i, parse_qs(urlsplit(r.path).query)["id"][0])
        for i, r in enumerate(order)
        if urlsplit(r.path).path.endswith("/generation")
    ]
    ids = list(dict.fromkeys(gen_id for _, gen_id in lookups))
    assert len(ids) == len(SENTENCES)
    first = [i for i, gen_id in lookups if gen_id == ids[0]]
    assert len(first) == misses + 1  # the last one found the record: the cost was known
    # The second sentence was asked for before the first one's cost was known.
    assert speech[1] < first[-1]
    # ... and every sentence's cost is in the turn and the session all the same.
    records = [openrouter_server.generation(gen_id) for gen_id in ids]
    tts_cost = sum(record["total_cost"] for record in records if record is not None)
    assert tts_cost > 0
    assert summary.usage.runs_without_cost == 0
    assert summary.usage.successful_requests == 2 + len(SENTENCES)
    assert summary.total_cost == pytest.approx(CHAT_COST + STT_COST + tts_cost)
    assert turn.cost == pytest.approx(summary.total_cost)


async def test_a_barge_in_keeps_counting_the_spoken_sentences_cost(
    openrouter_server: OpenRouterTestServer, tts: OpenRouterSpeech
) -> None:
    """Speech that was played was billed: a barge-in stops speaking, not the cost lookup."""
    openrouter_server.generation_misses = 3  # about 0.7 s before the record is found
    spoken = asyncio.Event()

    async def on_audio(run_id: UUID, pcm: bytes, rate: int) -> None:
        pass

    async def on_spoken(run_id: UUID, message: AIMessage, done: bool) -> None:
        spoken.set()

    with get_openrouter_callback() as cost:
        speaker = TextSpeaker(tts, on_audio, on_spoken)
        run_id = uuid4()
        await speaker.on_transcript_chunk(SENTENCES[0] + " ", run_id=run_id)
        await asyncio.wait_for(spoken.wait(), 10)  # its audio is all out
        assert speaker.pending_costs  # ... and its cost is still being looked up
        await speaker.cancel()  # the user barges in
        assert speaker.pending_costs
        await speaker.settle_costs()
    (lookup,) = {r.path for r in paths(openrouter_server, "/generation")}
    gen_id = parse_qs(urlsplit(lookup).query)["id"][0]
    record = openrouter_server.generation(gen_id)
    assert record is not None
    assert cost.successful_requests == 1
    assert cost.total_cost == pytest.approx(record["total_cost"])
