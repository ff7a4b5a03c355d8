"""Pytest fixture for `OpenRouterTestServer`.

Use it from a ``conftest.py``::

    pytest_plugins = ["langchain_openrouter_audio.testing.pytest_plugin"]

    def test_hello(openrouter_server):
        openrouter_server.enqueue(text_reply("Hello"))
        ...  # client with base_url=openrouter_server.base_url, api_key="test-key"
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
