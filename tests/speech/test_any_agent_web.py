"""`voice_app(transcription=..., speech=...)` over real sockets: a text agent on the voice page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain_openrouter_audio import OpenRouterSpeech, OpenRouterTranscription
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, text_reply
from langchain_openrouter_audio.web import voice_app
from tests._helpers import CLIP_WORDS, HAS_ESPEAK, make_llm
from tests.web import test_voice_app as web

# The voice page's fixtures: uvicorn in a thread, a WebSocket client speaking the protocol.
openrouter, llm, app_url, connect = web.openrouter, web.llm, web.app_url, web.connect
QUESTION, silence = web.QUESTION, web.silence

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

SENTENCES = ["It is twenty one degrees and sunny in Paris.", "Enjoy your walk."]


async def test_a_text_agent_on_the_voice_page(
    openrouter: OpenRouterTestServer, app_url: Callable[[Any], str], connect: Any
) -> None:
    openrouter.responder = None
    openrouter.transcript = CLIP_WORDS["question"]
    openrouter.enqueue(text_reply(" ".join(SENTENCES)))
    common: dict[str, Any] = {"base_url": openrouter.base_url, "api_key": openrouter.api_key}
    agent = make_llm(openrouter, model="openai/gpt-4o")
    app = voice_app(
        agent,
        transcription=OpenRouterTranscription(**common),
        speech=OpenRouterSpeech(**common),
    )
    page = await connect(app_url(app))
    await page.hello()
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    end = await page.until("reply_end", turn=1)

    chat = [r for r in openrouter.requests if r.path.endswith("/chat/completions")]
    assert chat[0].json["messages"] == [{"role": "user", "content": CLIP_WORDS["question"]}]
    transcript = "".join(e["text"] for e in page.events if e["type"] == "transcript")
    assert transcript == " ".join(SENTENCES)
    expected = b"".join(speech_pcm16(s) for s in SENTENCES)
    assert bytes(page.audio[1]) == expected  # every sentence's speech, in order
    assert end["audio_bytes"] == len(expected)
    assert not [e for e in page.events if e["type"] == "error"]
