"""`user_text` on the voice page, over real sockets: uvicorn, a WebSocket client speaking the
page's protocol, the local OpenRouter server transcribing and answering."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain_core.messages import HumanMessage

from langchain_openrouter_audio import OpenRouterSpeech, OpenRouterTranscription
from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply
from langchain_openrouter_audio.voice import TurnEngine, VoiceTurn
from langchain_openrouter_audio.web import voice_app
from tests._helpers import CLIP_WORDS, make_llm
from tests.web import test_voice_app as web

# The voice page's fixtures: uvicorn in a thread, a WebSocket client speaking the protocol.
openrouter, llm, app_url, connect = web.openrouter, web.llm, web.app_url, web.connect
QUESTION, ANSWER_PCM, silence, texts = web.QUESTION, web.ANSWER_PCM, web.silence, web.texts
WORDS = CLIP_WORDS["question"]
CHAT_COST = 0.0012  # the scripted replies' default
STT_COST = 0.0003


def index(events: list[dict[str, Any]], kind: str, turn: int) -> int:
    return next(i for i, e in enumerate(events) if e["type"] == kind and e.get("turn") == turn)


def the_engine(app: Any) -> TurnEngine:
    (engine,) = app.state.sessions
    assert isinstance(engine, TurnEngine)
    return engine


def finished_turns(engine: TurnEngine, count: int) -> list[VoiceTurn]:
    deadline = time.monotonic() + 20
    while len(engine.turns) < count:
        assert time.monotonic() < deadline, "the turn never finished"
        time.sleep(0.02)
    return list(engine.turns)


async def test_the_page_gets_the_words_beside_a_speech_native_agent(
    openrouter: OpenRouterTestServer, app_url: Callable[[Any], str], connect: Any
) -> None:
    # The transcript takes 4 s; the gpt-audio agent answers from the recording at once
    # (its first audio comes well within that on a loaded machine too).
    openrouter.enqueue_transcription(text_reply(WORDS, cost=STT_COST, headers_delay_s=4.0))
    common: dict[str, Any] = {"base_url": openrouter.base_url, "api_key": openrouter.api_key}
    app = voice_app(make_llm(openrouter), transcription=OpenRouterTranscription(**common))
    page = await connect(app_url(app))
    await page.hello()
    engine = the_engine(app)
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)
    said = await page.until("user_text", turn=1)

    assert said == {"type": "user_text", "turn": 1, "text": WORDS}
    # The reply was under way before the words came: the agent did not wait for them.
    assert index(page.events, "audio_start", 1) < index(page.events, "user_text", 1)
    assert bytes(page.audio[1]) == ANSWER_PCM
    (chat,) = [r for r in openrouter.requests if r.path.endswith("/chat/completions")]
    (user,) = chat.json["messages"]
    assert [part["type"] for part in user["content"]] == ["input_audio"]

    await page.send(type="played", turn=1, seconds=len(ANSWER_PCM) / 48_000, done=True)
    (turn,) = finished_turns(engine, 1)
    assert turn.user_text == WORDS
    assert turn.cost == pytest.approx(CHAT_COST + STT_COST)
    assert engine.usage.total_cost == pytest.approx(CHAT_COST + STT_COST)
    question = engine.history[0]
    assert isinstance(question, HumanMessage)
    assert question.additional_kwargs["transcript"] == WORDS


async def test_a_text_agent_reads_the_words_the_page_shows_first(
    openrouter: OpenRouterTestServer, app_url: Callable[[Any], str], connect: Any
) -> None:
    openrouter.responder = None
    openrouter.enqueue_transcription(text_reply(WORDS, cost=STT_COST))
    openrouter.enqueue(text_reply("It is sunny in Paris."))
    common: dict[str, Any] = {"base_url": openrouter.base_url, "api_key": openrouter.api_key}
    app = voice_app(
        make_llm(openrouter, model="openai/gpt-4o"),
        transcription=OpenRouterTranscription(**common),
        speech=OpenRouterSpeech(**common),
    )
    page = await connect(app_url(app))
    await page.hello()
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)

    assert texts(page.events, "user_text", 1) == [{"type": "user_text", "turn": 1, "text": WORDS}]
    assert index(page.events, "user_text", 1) < index(page.events, "transcript", 1)


async def test_typed_text_is_echoed_and_speech_without_transcription_is_not(
    openrouter: OpenRouterTestServer,
    llm: Any,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)
    await page.send(type="played", turn=1, seconds=len(ANSWER_PCM) / 48_000, done=True)
    await page.send(type="text", text="And tomorrow?")
    said = await page.until("user_text")
    assert said == {"type": "user_text", "turn": 2, "text": "And tomorrow?"}
    await page.until("reply_end", turn=2)
    assert not texts(page.events, "user_text", 1)  # no transcription model: no words
