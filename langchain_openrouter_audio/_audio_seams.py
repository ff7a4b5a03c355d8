"""Audio of several TTS requests joined into one stream, as each request's bytes arrive.

PCM joins on sample boundaries: a request whose body ends on half a sample (a broken
relay) loses that byte rather than shifting every later sample by one byte.

MP3 joins frame to frame. Each request's MP3 is a file of its own: an ID3v2 tag in
front, often a Xing/Info (or VBRI) frame that states that file's length, sometimes an
ID3v1 tag at the end. Concatenated as they are, decoders stop at the first file's
stated length or choke on the tag in the middle. So when a text was split, every
piece loses its Xing/Info/VBRI frame (a silent frame of metadata), and every piece
but the first its ID3v2 tag and every piece but the last its ID3v1 tag. What remains
is MPEG frames back to back, which every decoder plays as one stream. Not public API.
"""

from __future__ import annotations

import logging

from langchain_openrouter_audio._formats import _mp3_frame_length

__all__ = ["Mp3Seam", "PcmSeam", "Seam"]

logger = logging.getLogger("langchain_openrouter_audio")

_ID3V1 = 128
# Where a Xing/Info tag sits in layer III's first frame: after the 4-byte header and
# the side information (MPEG-2 mono 9, MPEG-1 mono or MPEG-2 stereo 17, MPEG-1
# stereo 32 bytes); VBRI always 32 bytes after the header.
_TAG_OFFSETS = (13, 21, 36)


class Seam:
    """One request's bytes in, the bytes that join the reply out (the base: as they are)."""

    def take(self, data: bytes) -> bytes:
        return data

    def end(self) -> bytes:
        """What was held back, once the request's body is complete."""
        return b""


class PcmSeam(Seam):
    """Passes whole 16-bit samples; a dangling last byte is dropped at the end."""

    def __init__(self) -> None:
        self._carry = b""

    def take(self, data: bytes) -> bytes:
        data = self._carry + data if self._carry else data
        cut = len(data) - len(data) % 2
        self._carry = data[cut:]
        return data[:cut]

    def end(self) -> bytes:
        if self._carry:
            logger.warning("speech: a piece ended on half a sample; its last byte was dropped")
            self._carry = b""
        return b""


class Mp3Seam(Seam):
    """One piece of a split text's MP3, less the tags and frame that would break the join.

    Args:
        first: the first piece (keeps its ID3v2 tag).
        last: the last piece (keeps a trailing ID3v1 tag).
    """

    def __init__(self, *, first: bool, last: bool) -> None:
        self._first = first
        self._last = last
        self._state = "tag"  # tag -> (keep|drop) tag bytes -> first frame -> body
        self._head = b""  # bytes read but not judged yet
        self._left = 0  # bytes of the ID3v2 tag still to keep or drop
        self._tail = b""  # the last bytes, held back in case they are an ID3v1 tag

    def take(self, data: bytes) -> bytes:
        out = b""
        if self._state != "body":
            out, data = self._open(self._head + data)
            if self._state != "body":
                self._head = data
                return out
            self._head = b""
        if self._last:
            return out + data
        data = self._tail + data
        self._tail = data[-_ID3V1:]
        return out + data[:-_ID3V1]

    def end(self) -> bytes:
        rest, self._head, self._tail = self._head + self._tail, b"", b""
        if self._state == "body" and len(rest) == _ID3V1 and rest[:3] == b"TAG":
            return b""  # an ID3v1 tag that would sit between two pieces
        return rest  # too short to judge, or audio: passed on as it is

    def _open(self, buf: bytes) -> tuple[bytes, bytes]:
        """(bytes to pass on, bytes still to judge) at the start of the piece."""
        out = b""
        while self._state != "body":
            if self._state == "tag":
                if len(buf) < 10 and b"ID3"[: len(buf)] == buf[:3]:
                    return out, buf  # maybe a tag: wait for its header
                if buf[:3] == b"ID3":
                    self._left = _id3v2_size(buf)
                    self._state = "keep" if self._first else "drop"
                else:
                    self._state = "frame"
            elif self._state in ("keep", "drop"):
                n = min(self._left, len(buf))
                if self._state == "keep":
                    out += buf[:n]
                buf, self._left = buf[n:], self._left - n
                if self._left:
                    return out, buf
                self._state = "frame"
            else:
                if len(buf) < 4:
                    return out, buf
                length = _mp3_frame_length(buf[:4])
                if length is not None and len(buf) < length:
                    return out, buf  # the whole first frame is needed to judge it
                if length is not None and _is_info_frame(buf[:length]):
                    buf = buf[length:]
                self._state = "body"
        return out, buf


def _id3v2_size(head: bytes) -> int:
    """The whole length of the ID3v2 tag `head` starts with (header and footer included)."""
    s = head[6:10]
    body = (s[0] & 0x7F) << 21 | (s[1] & 0x7F) << 14 | (s[2] & 0x7F) << 7 | (s[3] & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + body + footer


def _is_info_frame(frame: bytes) -> bool:
    """Whether an MPEG frame is a Xing/Info or VBRI frame (metadata, no audio)."""
    if any(frame[o : o + 4] in (b"Xing", b"Info") for o in _TAG_OFFSETS):
        return True
    return frame[36:40] == b"VBRI"
