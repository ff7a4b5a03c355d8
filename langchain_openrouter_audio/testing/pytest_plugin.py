"""Pytest fixture for `OpenRouterTestServer`.

Installing the package registers this module as a pytest plugin (a ``pytest11`` entry
point), so the ``openrouter_server`` fixture is there in every test, with no import::

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.testing import text_reply

    def test_hello(openrouter_server):
        openrouter_server.enqueue(text_reply("Hello"))
        llm = ChatOpenRouterAudio(
            base_url=openrouter_server.base_url, api_key=openrouter_server.api_key
        )
        ...

Run with ``-p no:langchain_openrouter_audio`` to switch it off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import OpenRouterTestServer

__all__ = ["openrouter_server"]


@pytest.fixture
def openrouter_server() -> Iterator[OpenRouterTestServer]:
    """A started `OpenRouterTestServer` with ``api_key="test-key"``, stopped afterwards."""
    with OpenRouterTestServer(api_key="test-key") as server:
        yield server
