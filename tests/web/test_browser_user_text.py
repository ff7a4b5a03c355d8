"""The voice page in headless Chromium shows the user's words once they are transcribed.

A fake microphone plays the shipped question; `voice_app` runs under uvicorn with a
speech-native agent and a transcription model on the local OpenRouter server, whose
transcription endpoint is scripted to answer with the question's words.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.web import test_browser as browser

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain_openrouter_audio import OpenRouterTranscription
from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply
from langchain_openrouter_audio.web import voice_app
from tests._helpers import CLIP_WORDS
from tests.web import test_voice_app as web

pytestmark = browser.pytestmark
openrouter, llm, app_url = web.openrouter, web.llm, web.app_url
WORDS = CLIP_WORDS["question"]


def test_the_page_shows_what_the_user_said(
    openrouter: OpenRouterTestServer,
    llm: Any,
    app_url: Callable[[Any], str],
    tmp_path: Path,
) -> None:
    # Slow enough that the reply has started when the words come.
    openrouter.enqueue_transcription(text_reply(WORDS, headers_delay_s=1.0))
    common: dict[str, Any] = {"base_url": openrouter.base_url, "api_key": openrouter.api_key}
    app = voice_app(llm, transcription=OpenRouterTranscription(**common))
    url = app_url(app).replace("ws://", "http://").removesuffix("/ws") + "/"
    mic = browser.fake_mic_wav(tmp_path / "question.wav", pause_s=30.0)
    with browser.browser_page(tmp_path / "profile", mic) as page:
        page.goto(url)
        page.click("#talk")
        page.wait_for_function("() => window.voiceStats.userTexts.length >= 1", timeout=60_000)
        first = browser.wait_for_turn(page, 1)
        assert first["userTexts"] == [{"turn": 1, "text": WORDS}]
        # The words took the place of "(spoke for N s)" in the conversation.
        assert page.locator("#log li.user span").first.inner_text() == WORDS
        assert page.locator("#log li.user").count() == 1
        assert page.locator("#log li.agent span").first.inner_text() == CLIP_WORDS["weather_answer"]
