"""`CostLookup`: what OpenRouter billed for generations, read from their records.

Where a reply carries no `usage.cost` (speech and transcription never do; a chat stream
cut short never gets its last chunk), the cost is read from `GET /generation?id=`,
polling briefly while the record appears. Not public API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from langchain_openrouter_audio._client import CompletionsClient
from langchain_openrouter_audio.errors import NotFoundError, OpenRouterError

__all__ = ["GENERATION_PATH", "CostLookup"]

logger = logging.getLogger("langchain_openrouter_audio")

GENERATION_PATH = "/generation"
# Pauses between looks for the generation record, which shows up a moment after the call.
_COST_POLL_S = (0.1, 0.2, 0.4, 0.8, 1.0, 1.5)


class CostLookup:
    """Reads generations' `total_cost`, waiting briefly while each record appears."""

    def __init__(self, client: CompletionsClient, wait_s: float) -> None:
        self._client = client
        self._wait_s = wait_s

    def _pauses(self) -> Iterator[float]:
        left = self._wait_s
        for pause in _COST_POLL_S:
            if left <= 0:
                return
            yield min(pause, left)
            left -= pause

    def total(self, gen_ids: list[str]) -> float | None:
        """The summed cost of `gen_ids` (those found; None if none was).

        The records are looked for together, round by round, so a split text's lookup
        waits `wait_s` in all, not `wait_s` per request."""
        costs: dict[str, float | None] = {}
        missing = [gen_id for gen_id in dict.fromkeys(gen_ids) if gen_id]
        pauses = self._pauses()
        while missing:
            still_missing = []
            for gen_id in missing:
                try:
                    costs[gen_id] = _cost_of(self._client.get_json(GENERATION_PATH, {"id": gen_id}))
                except NotFoundError:
                    still_missing.append(gen_id)
                except (OpenRouterError, ValueError) as err:
                    logger.warning("could not read the cost of %s: %s", gen_id, err)
            missing = still_missing
            pause = next(pauses, None) if missing else None
            if pause is None:
                break
            time.sleep(pause)
        for gen_id in missing:
            logger.warning("the cost of %s was not available within %ss", gen_id, self._wait_s)
        return _sum([costs.get(gen_id) for gen_id in gen_ids])

    async def atotal(self, gen_ids: list[str]) -> float | None:
        """Async `total`: the records are looked up side by side."""
        return _sum(list(await asyncio.gather(*(self.aget(gen_id) for gen_id in gen_ids))))

    async def aget(self, gen_id: str) -> float | None:
        if not gen_id:
            return None
        pauses = self._pauses()
        while True:
            try:
                return _cost_of(await self._client.aget_json(GENERATION_PATH, {"id": gen_id}))
            except NotFoundError:
                pause = next(pauses, None)
                if pause is None:
                    break
                await asyncio.sleep(pause)
            except (OpenRouterError, ValueError) as err:
                logger.warning("could not read the cost of %s: %s", gen_id, err)
                return None
        logger.warning("the cost of %s was not available within %ss", gen_id, self._wait_s)
        return None


def _sum(costs: list[float | None]) -> float | None:
    found = [cost for cost in costs if cost is not None]
    if len(found) < len(costs) and found:
        logger.warning("%d of %d costs were not found", len(costs) - len(found), len(costs))
    return sum(found) if found else None


def _cost_of(reply: dict[str, Any]) -> float | None:
    data = reply.get("data")
    cost = data.get("total_cost") if isinstance(data, dict) else None
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return float(cost)
    return None
