"""The floor: the least work any client must do for a spoken OpenRouter reply.

Plain httpx, no LangChain: POST the body the client sends, split the SSE stream into lines,
`json.loads` each `data:` line, base64-decode each audio piece, join them once behind a WAV
header. `encode_block=True` also base64-encodes the WAV into a `str`, as any LangChain chat
model must to put audio in an `AIMessage` content block: the floor for a LangChain client.
`on_first_piece` is called with the first decoded piece (time to first audio).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["FloorParser", "afloor_invoke", "floor_invoke", "wav_header"]

_b64decode = base64.b64decode
_loads = json.loads


def wav_header(pcm_len: int, sample_rate: int = 24_000) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV holding `pcm_len` bytes."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return b"RIFF%sWAVEfmt %sdata%s" % (
        struct.pack("<I", 36 + pcm_len),
        fmt,
        struct.pack("<I", pcm_len),
    )


class FloorParser:
    """Line splitting and decoding, shared by the sync and async floors."""

    __slots__ = ("buf", "on_first_piece", "pcm_len", "pieces", "transcript")

    def __init__(self, on_first_piece: Callable[[bytes], Any] | None) -> None:
        self.buf = b""
        self.pieces: list[bytes] = []
        self.pcm_len = 0
        self.transcript: list[str] = []
        self.on_first_piece = on_first_piece

    def feed(self, raw: bytes) -> None:
        buf = self.buf + raw if self.buf else raw
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        for line in lines:
            if line[:6] != b"data: ":
                continue  # blank separators and ": OPENROUTER PROCESSING" comments
            payload = line[6:]
            if payload == b"[DONE]":
                # The caller reads on to EOF all the same: a response closed before its
                # terminating chunk is read cannot go back to the connection pool.
                return
            for choice in _loads(payload).get("choices") or ():
                audio = choice["delta"].get("audio")
                if not audio:
                    continue
                if data := audio.get("data"):
                    pcm = _b64decode(data)
                    self.pieces.append(pcm)
                    self.pcm_len += len(pcm)
                    if self.on_first_piece is not None:
                        self.on_first_piece(pcm)
                        self.on_first_piece = None
                if text := audio.get("transcript"):
                    self.transcript.append(text)

    def result(self, encode_block: bool) -> tuple[bytes | str, str]:
        wav = b"".join([wav_header(self.pcm_len), *self.pieces])
        self.pieces = []
        out: bytes | str = base64.b64encode(wav).decode("ascii") if encode_block else wav
        return out, "".join(self.transcript)


def floor_invoke(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    content: bytes,
    *,
    on_first_piece: Callable[[bytes], Any] | None = None,
    encode_block: bool = False,
) -> tuple[bytes | str, str]:
    """Stream one spoken reply with `client`; return (WAV, transcript)."""
    state = FloorParser(on_first_piece)
    with client.stream("POST", url, content=content, headers=headers) as response:
        response.raise_for_status()
        for raw in response.iter_bytes():
            state.feed(raw)
    return state.result(encode_block)


async def afloor_invoke(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    content: bytes,
    *,
    on_first_piece: Callable[[bytes], Any] | None = None,
    encode_block: bool = False,
) -> tuple[bytes | str, str]:
    """Async `floor_invoke`."""
    state = FloorParser(on_first_piece)
    async with client.stream("POST", url, content=content, headers=headers) as response:
        response.raise_for_status()
        async for raw in response.aiter_bytes():
            state.feed(raw)
    return state.result(encode_block)
