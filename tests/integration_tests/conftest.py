"""Live tests talk to the real OpenRouter API: only with OPENROUTER_API_KEY set."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="OPENROUTER_API_KEY is not set: live tests skipped")
    for item in items:
        if "integration_tests" in str(item.path):
            item.add_marker(pytest.mark.live)
            if not os.environ.get("OPENROUTER_API_KEY"):
                item.add_marker(skip)
