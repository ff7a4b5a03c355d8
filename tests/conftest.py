"""Shared fixtures: a model pointed at the local server, real audio (plain helpers: _helpers.py).

`openrouter_server` comes from the package's pytest plugin (a `pytest11` entry point).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, tone_pcm16
from tests._helpers import HAS_ESPEAK, make_llm, models_made


@pytest.fixture(autouse=True)
async def _close_every_model() -> AsyncIterator[None]:
    """Close every model a test makes (or copies) when the test ends.

    Async clients are closed in the test's own event loop.
    """
    with models_made() as made:
        try:
            yield
        finally:
            for model in made:
                model.close()
                await model.aclose()


@pytest.fixture
def llm(openrouter_server: OpenRouterTestServer) -> Iterator[ChatOpenRouterAudio]:
    """A model talking to the local server, with quick retries."""
    model = make_llm(openrouter_server)
    yield model
    model.close()


@pytest.fixture(scope="session")
def question_pcm() -> bytes:
    """A spoken question (espeak-ng), or a tone where espeak-ng is missing."""
    if HAS_ESPEAK:
        return speech_pcm16("What is the weather in Paris?")
    return tone_pcm16(1.0, 330.0)


@pytest.fixture(scope="session")
def question_wav(question_pcm: bytes) -> bytes:
    return pcm16_to_wav(question_pcm)


@pytest.fixture(scope="session")
def answer_pcm() -> bytes:
    if HAS_ESPEAK:
        return speech_pcm16("It is sunny in Paris.")
    return tone_pcm16(1.2, 523.0)
