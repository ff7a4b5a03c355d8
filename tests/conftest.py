"""Shared fixtures: a model pointed at the local server, real audio.

`openrouter_server` comes from the package's pytest plugin (a `pytest11` entry point).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, tone_pcm16

HAS_ESPEAK = shutil.which("espeak-ng") is not None


@pytest.fixture(autouse=True)
async def _close_every_model() -> AsyncIterator[None]:
    """Close every model a test makes (or copies) when the test ends.

    Tests build models freely and drop them; their pooled sockets would then be
    closed by the garbage collector, with a ResourceWarning, in some later test.
    Async clients are closed in the test's own event loop.
    """
    made: list[ChatOpenRouterAudio] = []
    cls = ChatOpenRouterAudio
    saved = {name: cls.__dict__.get(name) for name in ("__init__", "model_copy")}
    init, copy = cls.__init__, cls.model_copy

    def tracked_init(self: ChatOpenRouterAudio, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    def tracked_copy(self: ChatOpenRouterAudio, **kwargs: Any) -> ChatOpenRouterAudio:
        copied = copy(self, **kwargs)
        made.append(copied)
        return copied

    cls.__init__ = tracked_init  # type: ignore[method-assign]
    cls.model_copy = tracked_copy  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for name, original in saved.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        for model in made:
            model.close()
            await model.aclose()


@pytest.fixture
def llm(openrouter_server: OpenRouterTestServer) -> Iterator[ChatOpenRouterAudio]:
    """A model talking to the local server, with quick retries."""
    model = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url,
        api_key=openrouter_server.api_key,
        max_retries=2,
        timeout=10,
    )
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
