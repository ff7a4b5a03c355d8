"""Byte-level internals: WAV headers, strict base64, and the store of received speech.

Nothing here is public API; `audio` holds the helpers users call.
"""

from __future__ import annotations

import base64
import binascii
import struct

__all__ = [
    "PCM_CHANNELS",
    "PCM_SAMPLE_WIDTH",
    "SpeechStore",
    "b64decode_strict",
    "decode_base64",
    "encode_base64",
    "wav_header",
    "wav_pad",
]

PCM_CHANNELS = 1
PCM_SAMPLE_WIDTH = 2

_B64_WINDOW = 3 * 65536

# Base64 of a long recording is coded in pieces this big (about a millisecond each), so a
# worker thread building a request gives the event loop the GIL between pieces.
_B64_PIECE = 3 * 4 * 65536


def wav_pad(data_len: int) -> bytes:
    """The pad byte RIFF wants after an odd-sized data chunk (word alignment)."""
    return b"\x00" if data_len & 1 else b""


def wav_header(
    data_len: int,
    *,
    sample_rate: int,
    channels: int = PCM_CHANNELS,
    junk: int = 0,
) -> bytes:
    """The header of a PCM16 WAV whose data chunk holds `data_len` bytes.

    44 bytes; with `junk=n`, a `JUNK` chunk of n bytes (which every reader
    skips) sits between `fmt ` and `data`, e.g. to make the header a
    multiple of 3 bytes so base64 text of the PCM can follow it unchanged.
    """
    block_align = channels * PCM_SAMPLE_WIDTH
    fmt = struct.pack(
        "<4sIHHIIHH",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        PCM_SAMPLE_WIDTH * 8,
    )
    if junk:
        fmt += struct.pack("<4sI", b"JUNK", junk) + bytes(junk) + wav_pad(junk)
    riff_size = 4 + len(fmt) + 8 + data_len + len(wav_pad(data_len))
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + fmt
        + struct.pack("<4sI", b"data", data_len)
    )


def b64decode_strict(data: str) -> bytes:
    """`base64.b64decode(data, validate=True)`, the same on every Python version.

    Python 3.13 refuses ``=`` after a whole 4-character group (``"AAAA=="``), which 3.11
    and 3.12 accept and which relays do send: here it is accepted, and ignored, on all.

    Raises:
        binascii.Error: `data` is not base64.
    """
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        body = data.rstrip("=")
        if not body or body == data or len(body) % 4:
            raise
        return base64.b64decode(body, validate=True)


def decode_base64(data: str, *, what: str) -> bytes:
    """Strictly decode base64, naming `what` in the error."""
    try:
        # In pieces when long and padded only at the end (the same result, the same checks).
        if len(data) <= 2 * _B64_PIECE or data.find("=", 0, len(data) - 4) != -1:
            return b64decode_strict(data)
        step = _B64_PIECE // 3 * 4
        return b"".join(b64decode_strict(data[i : i + step]) for i in range(0, len(data), step))
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"{what} is not valid base64: {err}") from None


def encode_base64(data: bytes) -> str:
    """Base64 text of `data`, coded in pieces when long (see `_B64_PIECE`)."""
    if len(data) <= 2 * _B64_PIECE:
        return _b64(data)
    view = memoryview(data)
    return "".join(_b64(view[i : i + _B64_PIECE]) for i in range(0, len(data), _B64_PIECE))


def _b64(data: bytes | memoryview) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


class SpeechStore:
    """The speech of one reply, kept as it arrived: base64 text where possible.

    Each piece is stored as its base64 text when that text can later be
    joined as is (the piece holds a multiple of 3 bytes, so no `=` padding),
    else as bytes. Building the reply's block then joins strings instead of
    decoding and re-encoding megabytes, and an odd piece costs only itself.

    >>> store = SpeechStore()
    >>> store.add(b"abc", "YWJj"); store.add(b"de", "ZGU=")
    >>> store.encode(head=b"xyz")
    'eHl6YWJjZGU='
    """

    __slots__ = ("_parts", "size")

    def __init__(self) -> None:
        self._parts: list[str | bytes] = []
        self.size = 0

    def add(self, pcm: bytes, b64: str | None = None) -> None:
        """Store one piece: its bytes, and the base64 text it arrived as (if any)."""
        if not pcm:
            return
        joinable = b64 is not None and len(pcm) % 3 == 0 and not b64.endswith("=")
        self._parts.append(b64 if joinable and b64 is not None else pcm)
        self.size += len(pcm)

    def pcm(self) -> bytes:
        """All the bytes stored (decodes the text parts)."""
        return b"".join(p if isinstance(p, bytes) else base64.b64decode(p) for p in self._parts)

    def encode(self, *, head: bytes = b"", tail: bytes = b"") -> str:
        """Base64 of `head + speech + tail`, in one pass over the stored parts.

        Text parts are reused whenever the bytes before them end on a 3-byte
        boundary; otherwise they are decoded (one piece at a time) and
        re-encoded with their neighbours.
        """
        whole = len(head) - len(head) % 3
        out = [_b64(head[:whole])] if whole else []
        carry = head[whole:]
        for part in self._parts:
            if isinstance(part, str):
                if not carry:
                    out.append(part)
                    continue
                part = base64.b64decode(part)
            view = memoryview(part)
            if carry:
                need = -len(carry) % 3
                carry += bytes(view[:need])
                view = view[need:]
                if len(carry) % 3:
                    continue
                out.append(_b64(carry))
                carry = b""
            whole = len(view) - len(view) % 3
            for start in range(0, whole, _B64_WINDOW):
                out.append(_b64(view[start : min(start + _B64_WINDOW, whole)]))
            carry = bytes(view[whole:])
        carry += tail
        if carry:
            out.append(_b64(carry))
        return "".join(out)
