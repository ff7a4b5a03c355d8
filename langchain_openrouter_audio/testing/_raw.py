"""Replies made of raw bytes: recorded streams replayed verbatim, and hostile responses."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._replies import Reply

__all__ = ["raw_reply", "recorded_reply"]


def recorded_reply(source: bytes | str | os.PathLike[str], **kw: Any) -> Reply:
    """Replay a recorded SSE body byte for byte (HTTP 200, ``text/event-stream``).

    ``source`` is the body itself or the path of a file holding it (for example a
    ``.sse`` file saved from a live server). Nothing is added or re-encoded: the
    client meets exactly what the live server sent, ``[DONE]`` or not. ``write_size``
    re-cuts the bytes into writes of that size (events split anywhere);
    ``raw_cut=True`` hangs up after the last byte without ending the body.

    Examples:
        >>> body = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\\n\\n'
        >>> recorded_reply(body, write_size=5).raw_body == body
        True
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return Reply(raw_body=data, **kw)


def raw_reply(
    body: bytes | Iterable[bytes],
    *,
    status: int = 200,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    cut: bool = False,
    **kw: Any,
) -> Reply:
    """Any HTTP response, byte for byte: for testing a client against broken or hostile servers.

    ``body`` is sent verbatim; an iterable of byte strings is written one piece per
    HTTP chunk (flushed each time, so a piece can end inside an event, a line or a
    UTF-8 character). ``content_type`` None sends ``text/event-stream``, ``""`` sends
    no Content-Type at all; ``headers`` may add anything, e.g.
    ``{"Content-Encoding": "gzip"}`` for a body you compressed. ``cut=True`` closes
    the connection after the last piece without ending the body.

    Examples:
        >>> import gzip
        >>> r = raw_reply(gzip.compress(b'{"error": {"code": 500}}'), status=500,
        ...               headers={"Content-Encoding": "gzip"})
        >>> r.status, r.content_type
        (500, 'application/json')
        >>> raw_reply([b"data: {", b'"a": 1}\\n\\n'], content_type=None, cut=True).raw_cut
        True
    """
    raw: bytes | tuple[bytes, ...] = body if isinstance(body, bytes) else tuple(body)
    return Reply(
        raw_body=raw,
        status=status,
        content_type=content_type,
        headers=dict(headers or {}),
        raw_cut=cut,
        **kw,
    )
