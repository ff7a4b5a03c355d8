"""Any chat model as a voice agent: transcription in, a text model, speech out.

The agent is `openai/gpt-4o` on the local server (text only: it is never sent audio and
never asked for it); the utterance is espeak-ng speech; the reply is spoken sentence by
sentence by the server's TTS endpoint while the text still streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_openrouter_audio import OpenRouterSpeech, OpenRouterTranscription
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    speech_pcm16,
    text_reply,
    tool_call_reply,
)
from langchain_openrouter_audio.voice import VoiceSession, VoiceSummary
from langchain_openrouter_audio.voice.spoken_text import SentenceSplitter
from tests._helpers import EXAMPLES, HAS_ESPEAK, Line, make_llm, run_offline, wav_frames

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

RATE = 16000
FRAME = 640
QUESTION = "What is the weather like in Paris right now?"
SENTENCES = [
    "It is twenty one degrees and sunny in Paris.",
    "Take your sunglasses with you.",
    "The evening will stay warm and clear, with a light wind from the west.",
]
ANSWER = " ".join(SENTENCES)


def silence(ms: int) -> bytes:
    return bytes(2 * RATE * ms // 1000)


def _models(server: OpenRouterTestServer) -> tuple[OpenRouterTranscription, OpenRouterSpeech]:
    common = {"base_url": server.base_url, "api_key": server.api_key, "timeout": 10}
    return OpenRouterTranscription(**common), OpenRouterSpeech(**common)


async def converse(
    server: OpenRouterTestServer, agent: Any, line: Line, *, sink_rate: int | None = None
) -> tuple[VoiceSession, VoiceSummary]:
    """`agent` in a voice conversation over `line`, hearing and speaking through `server`."""
    stt, tts = _models(server)
    sink = line.sink() if sink_rate is None else line.sink(sample_rate=sink_rate)
    session = VoiceSession(agent, source=line.source(), sink=sink, transcription=stt, speech=tts)
    try:
        summary = await session.run()
    finally:
        for model in (stt, tts):
            model.close()
            await model.aclose()
    return session, summary


def test_sentences_are_found_as_the_text_streams() -> None:
    splitter = SentenceSplitter()
    words = ANSWER.split(" ")
    out = [s for i, w in enumerate(words) for s in splitter.push(w if i == 0 else " " + w)]
    assert out == SENTENCES[:2]
    assert splitter.flush() == SENTENCES[2]


async def test_a_chinese_reply_is_spoken_sentence_by_sentence(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # Full stops with no space after them end sentences too, while the reply streams.
    sentences = ["巴黎现在二十一度\uff0c阳光明媚。", "记得带上太阳镜\uff01", "晚上也很暖和。"]
    openrouter_server.transcript = QUESTION
    openrouter_server.enqueue(text_reply("".join(sentences), text_piece_chars=2))
    clips = [speech_pcm16(f"Sentence {i + 1}.") for i in range(len(sentences))]
    openrouter_server.enqueue_speech(*(Reply(pcm=c) for c in clips))
    line = Line(silence(500) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(3000))
    agent = make_llm(openrouter_server, model="openai/gpt-4o")
    session, summary = await converse(openrouter_server, agent, line)
    (turn,) = summary.turns
    assert not turn.interrupted
    spoken = [r.json["input"] for r in openrouter_server.requests if r.path.endswith("/speech")]
    assert spoken == sentences  # one request per sentence, not one for the whole reply
    played = b"".join(f for _, f in line.writes)
    expected = b"".join(clips)
    assert played[: len(expected)] == expected
    assert session.messages[-1].text == "".join(sentences)


async def test_a_text_model_hears_and_speaks(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.transcript = QUESTION
    # The text streams slowly (about 4.5 s in all): speech must start long before it ends.
    # (The first sentence is in after 1.4 s; the seconds after it are for its speech to be
    # made by espeak-ng and arrive on a loaded machine.)
    openrouter_server.enqueue(text_reply(ANSWER, text_piece_chars=5, event_delay_s=0.15))
    line = Line(silence(500) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(3000))
    agent = make_llm(openrouter_server, model="openai/gpt-4o")
    session, summary = await converse(openrouter_server, agent, line)

    (turn,) = summary.turns
    assert not turn.interrupted
    # The agent read text: the transcript, never the recording.
    chat = [r for r in openrouter_server.requests if r.path.endswith("/chat/completions")]
    (request,) = chat
    assert request.json["messages"] == [{"role": "user", "content": QUESTION}]
    assert request.json["modalities"] == ["text"]
    # One TTS request per sentence, in order, all of them spoken.
    spoken = [r.json["input"] for r in openrouter_server.requests if r.path.endswith("/speech")]
    assert spoken == SENTENCES
    played = b"".join(f for _, f in line.writes)
    expected = b"".join(speech_pcm16(s) for s in SENTENCES)  # 24 kHz in, 24 kHz out
    assert played[: len(expected)] == expected  # every sentence, whole and in order
    assert not any(played[len(expected) :])  # then only the last frame's padding
    assert len(played) - len(expected) < 960
    # First audio long before the text was complete.
    human, answer = session.messages
    assert isinstance(human, HumanMessage)
    assert human.content == QUESTION
    assert isinstance(answer, AIMessage)
    assert answer.text == ANSWER
    assert turn.response_s is not None
    assert turn.response_s < answer.response_metadata["duration_s"] - 0.5


async def test_barge_in_keeps_only_the_heard_sentences(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue_transcription(text_reply(QUESTION), text_reply("Wait, and tomorrow?"))
    openrouter_server.enqueue(text_reply(ANSWER), text_reply("Rain tomorrow."))
    q1 = speech_pcm16(QUESTION, sample_rate=RATE)
    q2 = speech_pcm16("Wait, and tomorrow?", sample_rate=RATE)
    # The second question comes 2.5 s into the first answer (about 9 s of speech).
    line = Line(silence(500) + q1 + silence(2500) + q2 + silence(3000))
    agent = make_llm(openrouter_server, model="openai/gpt-4o")
    session, summary = await converse(openrouter_server, agent, line)

    first, second = summary.turns
    assert first.interrupted
    assert not second.interrupted
    human1, cut, human2, answer = session.messages
    assert human1.content == QUESTION
    assert human2.content == "Wait, and tomorrow?"
    assert isinstance(cut, AIMessage)
    assert cut.response_metadata["interrupted"] is True
    assert 0 < len(cut.text) < len(ANSWER)
    assert ANSWER.startswith(cut.text)
    assert answer.text == "Rain tomorrow."
    # What went back to the model for the second question is the heard part only.
    chat = [r for r in openrouter_server.requests if r.path.endswith("/chat/completions")]
    sent = chat[1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == cut.text


def test_the_example_runs_offline(tmp_path: Path) -> None:
    run = run_offline([str(EXAMPLES / "any_agent_voice.py")], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "No OPENROUTER_API_KEY" in out
    assert "The agent read: 'What is the weather like in Paris right now?'" in out
    assert "spoken 1: 'It is twenty one degrees and sunny in Paris.'" in out
    assert "spoken 3: 'The evening will stay warm, with a light wind from the west.'" in out
    sentences = [
        line.split(": ", 1)[1].strip("'") for line in out.splitlines() if "spoken " in line
    ]
    expected = b"".join(speech_pcm16(s) for s in sentences)
    # Saved where every example saves, not in the folder it was run from.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples-output"]
    played = wav_frames((tmp_path / "examples-output" / "reply_1.wav").read_bytes())
    assert played[: len(expected)] == expected
    assert not any(played[len(expected) :])


async def test_a_tool_calling_agent_keeps_its_tool_exchange_on_barge_in(
    openrouter_server: OpenRouterTestServer,
) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"Sunny in {city}"

    openrouter_server.enqueue_transcription(text_reply(QUESTION), text_reply("Wait, and tomorrow?"))
    openrouter_server.enqueue(
        tool_call_reply("get_weather", {"city": "Paris"}, call_id="c1"),
        text_reply(ANSWER),
        text_reply("Rain tomorrow."),
    )
    q1 = speech_pcm16(QUESTION, sample_rate=RATE)
    q2 = speech_pcm16("Wait, and tomorrow?", sample_rate=RATE)
    line = Line(silence(500) + q1 + silence(2500) + q2 + silence(3000))
    agent = create_agent(make_llm(openrouter_server, model="openai/gpt-4o"), [get_weather])
    session, summary = await converse(openrouter_server, agent, line)

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
    assert 0 < len(cut.text) < len(ANSWER)
    assert ANSWER.startswith(cut.text)
    chat = [r for r in openrouter_server.requests if r.path.endswith("/chat/completions")]
    sent = chat[2].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
    assert sent[3]["content"] == cut.text


async def test_speech_is_resampled_to_the_line_whole(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # A 16 kHz line: each sentence's 24 kHz speech is resampled, none of it held back.
    openrouter_server.transcript = QUESTION
    openrouter_server.enqueue(text_reply(ANSWER))
    line = Line(silence(500) + speech_pcm16(QUESTION, sample_rate=RATE) + silence(3000))
    agent = make_llm(openrouter_server, model="openai/gpt-4o")
    await converse(openrouter_server, agent, line, sink_rate=16000)
    played = len(b"".join(f for _, f in line.writes)) // 2
    expected = sum(len(speech_pcm16(s)) // 2 for s in SENTENCES) * 2 / 3
    # Every sentence resampled, nothing held back: at most the last 20 ms frame's padding.
    assert expected - 8 <= played <= expected + 320
