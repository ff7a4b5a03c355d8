"""Which chat models produce audio, from OpenRouter's own catalog (`GET /models`).

Used when a model is built with `speaks="lookup"`: the slugs whose
`architecture.output_modalities` include `"audio"`, fetched once per API root and
kept for an hour. A failed lookup falls back to the models this package knows.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from langchain_openrouter_audio._client import CompletionsClient
from langchain_openrouter_audio.errors import OpenRouterError

__all__ = ["CATALOG_TTL_S", "aspeaking_models", "clear_cache", "speaking_models"]

logger = logging.getLogger("langchain_openrouter_audio")

CATALOG_TTL_S = 3600.0
"""How long a fetched list of speaking models is trusted."""

_LOCK = threading.Lock()
_CACHE: dict[str, tuple[float, frozenset[str]]] = {}
_QUERY = {"output_modalities": "audio"}


def _cached(root: str) -> frozenset[str] | None:
    with _LOCK:
        entry = _CACHE.get(root)
    if entry is not None and time.monotonic() - entry[0] < CATALOG_TTL_S:
        return entry[1]
    return None


def _store(root: str, reply: dict[str, Any]) -> frozenset[str]:
    data = reply.get("data")
    slugs = frozenset(
        str(model["id"])
        for model in (data if isinstance(data, list) else [])
        if isinstance(model, dict)
        and isinstance(arch := model.get("architecture"), dict)
        and "audio" in (arch.get("output_modalities") or [])
    )
    with _LOCK:
        _CACHE[root] = (time.monotonic(), slugs)
    return slugs


def speaking_models(client: CompletionsClient) -> frozenset[str] | None:
    """Slugs of the chat models that produce audio, or None if the catalog is unreachable."""
    if (slugs := _cached(client.root)) is not None:
        return slugs
    try:
        return _store(client.root, client.get_json("/models", _QUERY))
    except (OpenRouterError, ValueError) as err:
        logger.warning("could not read OpenRouter's model list (%s); using known models", err)
        return None


async def aspeaking_models(client: CompletionsClient) -> frozenset[str] | None:
    """Async `speaking_models`."""
    if (slugs := _cached(client.root)) is not None:
        return slugs
    try:
        return _store(client.root, await client.aget_json("/models", _QUERY))
    except (OpenRouterError, ValueError) as err:
        logger.warning("could not read OpenRouter's model list (%s); using known models", err)
        return None


def clear_cache() -> None:
    """Forget every fetched list (the next lookup asks OpenRouter again)."""
    with _LOCK:
        _CACHE.clear()
