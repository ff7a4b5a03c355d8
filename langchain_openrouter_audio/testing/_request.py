"""`RecordedRequest`: what the test server received."""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedRequest", "parse_json"]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the test server saw it, recorded before any check.

    ``headers`` has lower-cased names; ``json`` is the parsed body, or None when the
    body is not valid JSON.

    Examples:
        >>> r = RecordedRequest("POST", "/api/v1/chat/completions",
        ...                     {"authorization": "Bearer k"}, b"{}", {})
        >>> r.authorization
        'Bearer k'
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any

    @property
    def authorization(self) -> str | None:
        """The raw ``Authorization`` header, or None when it was not sent."""
        return self.headers.get("authorization")


def parse_json(body: bytes) -> Any:
    """Parse a request body; None when it is empty or not JSON."""
    try:
        return _json.loads(body)
    except ValueError:
        return None
