"""An incremental Server-Sent Events decoder for OpenRouter streams.

Bytes go in as they come off the socket, in any split (mid-line, mid-UTF-8
character, CRLF cut in two); complete event payloads come out. Comment lines
(OpenRouter's `: OPENROUTER PROCESSING` keep-alives) and unknown fields are
dropped, and so is a UTF-8 byte-order mark opening the stream, as the SSE spec
says. A line (or an event's data) longer than `max_line_bytes` raises
instead of growing the buffer without bound.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "SSELineTooLong"]

_BOM = b"\xef\xbb\xbf"


class SSELineTooLong(ValueError):
    """A single SSE line exceeded the decoder's limit."""


class SSEDecoder:
    """Turn a byte stream into `(event, data)` pairs.

    `event` is the SSE event name (`"message"` when none was given) and
    `data` the event's data lines joined with `\\n`, as bytes.

    >>> d = SSEDecoder()
    >>> d.feed(b": OPENROUTER PROCESSING\\n\\ndata: {\\"a\\"")
    []
    >>> d.feed(b": 1}\\r\\n\\r\\n")
    [('message', b'{"a": 1}')]
    """

    __slots__ = (
        "_data",
        "_data_len",
        "_event",
        "_head",
        "_pending",
        "_pending_len",
        "max_line_bytes",
    )

    def __init__(self, max_line_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_line_bytes = max_line_bytes
        # A partial line is kept as a list of pieces so that a long line
        # arriving in many reads is joined once, not re-copied on every read.
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._data: list[bytes] = []
        self._data_len = 0
        self._event = b""
        # The stream's first bytes, until we know whether they open with a BOM.
        self._head: bytes | None = b""

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """Consume `chunk`; return the events it completed, in order."""
        if self._head is not None:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head  # a BOM may still be arriving
                return []
            self._head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            buf = b"".join(self._pending)
            self._pending, self._pending_len = [], 0
        else:
            buf = chunk
        out: list[tuple[str, bytes]] = []
        start = 0
        find = buf.find
        while (end := find(b"\n", start)) >= 0:
            if end - start > self.max_line_bytes:
                self._too_long(end - start)
            line = buf[start : end - 1] if end > start and buf[end - 1] == 13 else buf[start:end]
            start = end + 1
            if not line:
                if data := self._data:
                    name = self._event.decode("utf-8", "replace") if self._event else "message"
                    out.append((name, data[0] if len(data) == 1 else b"\n".join(data)))
                    self._data = []
                    self._data_len = 0
                self._event = b""
            elif line[0] != 58:  # ':' starts a comment
                if line[:6] == b"data: ":  # the usual field, without the general parse
                    field, value = b"data", line[6:]
                else:
                    field, _, value = line.partition(b":")
                    if value[:1] == b" ":
                        value = value[1:]
                if field == b"data":
                    self._data.append(value)
                    self._data_len += len(value)
                    if self._data_len > self.max_line_bytes:
                        self._too_long(self._data_len)
                elif field == b"event":
                    self._event = value
        if start < len(buf):
            self._keep(buf[start:])
        return out

    def _keep(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_len += len(piece)
        if self._pending_len > self.max_line_bytes:
            self._too_long(self._pending_len)

    def _too_long(self, size: int) -> None:
        self._pending, self._pending_len = [], 0
        self._data, self._data_len = [], 0
        msg = f"an SSE line of over {size} bytes exceeds max_line_bytes={self.max_line_bytes}"
        raise SSELineTooLong(msg)
