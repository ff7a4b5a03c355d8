"""Fixtures for the speech and transcription runnables, against the local server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from langchain_openrouter_audio import OpenRouterSpeech, OpenRouterTranscription
from langchain_openrouter_audio.testing import OpenRouterTestServer


@pytest.fixture
async def tts(openrouter_server: OpenRouterTestServer) -> AsyncIterator[OpenRouterSpeech]:
    """A speech model on the local server (closed in the test's own loop)."""
    model = OpenRouterSpeech(
        base_url=openrouter_server.base_url, api_key=openrouter_server.api_key, timeout=10
    )
    yield model
    model.close()
    await model.aclose()


@pytest.fixture
async def stt(
    openrouter_server: OpenRouterTestServer,
) -> AsyncIterator[OpenRouterTranscription]:
    """A transcription model on the local server."""
    model = OpenRouterTranscription(
        base_url=openrouter_server.base_url, api_key=openrouter_server.api_key, timeout=10
    )
    yield model
    model.close()
    await model.aclose()
