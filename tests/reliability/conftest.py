"""Fixtures for the reliability suite (plain helpers are in tests/_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_openrouter_audio import _client as client_module
from langchain_openrouter_audio.testing import OpenRouterTestServer


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the exponential backoff (used when no Retry-After is sent) near-instant."""
    monkeypatch.setattr(client_module, "_backoff", lambda state: 0.01)


@pytest.fixture
def second_server() -> Iterator[OpenRouterTestServer]:
    """Another local server (another origin: a different port)."""
    with OpenRouterTestServer(api_key="other-key") as server:
        yield server
