"""G.711 mu-law, the 8-bit companding of telephone media streams (8 kHz).

Pure Python with lookup tables (no extra needed), bit-exact with the ITU/Sun reference
`g711.c` (and `audioop.lin2ulaw`/`ulaw2lin`).
"""

from __future__ import annotations

from array import array

from langchain_openrouter_audio.voice._pcm import from_samples, samples

__all__ = ["mulaw_to_pcm16", "pcm16_to_mulaw"]

_BIAS = 0x84
_CLIP = 8159  # largest 14-bit magnitude mu-law encodes
_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _encode14(value: int) -> int:
    """Reference G.711 encoder on a 14-bit sample (the 16-bit one shifted right by 2)."""
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, _CLIP) + (_BIAS >> 2)
    for seg, end in enumerate(_SEG_END):
        if value <= end:
            return ((seg << 4) | ((value >> (seg + 1)) & 0xF)) ^ mask
    return 0x7F ^ mask  # pragma: no cover - unreachable after the clip


def _decode(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    return _BIAS - t if code & 0x80 else t - _BIAS


# Indexed by the 14-bit sample as an unsigned number (sample >> 2 & 0x3FFF).
_ENCODE = bytes(_encode14(i - 0x4000 if i & 0x2000 else i) for i in range(0x4000))
_DECODE = tuple(_decode(code) for code in range(256))


def pcm16_to_mulaw(pcm: bytes) -> bytes:
    """Encode PCM16 mono (little-endian) to G.711 mu-law, one byte per sample.

    ```python
    from langchain_openrouter_audio.voice import pcm16_to_mulaw

    assert pcm16_to_mulaw(b"\\x00\\x00\\xff\\x7f\\x00\\x80") == b"\\xff\\x80\\x00"
    ```
    """
    table = _ENCODE
    return bytes([table[(s >> 2) & 0x3FFF] for s in samples(pcm)])


def mulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode G.711 mu-law bytes to PCM16 mono (little-endian).

    ```python
    from langchain_openrouter_audio.voice import mulaw_to_pcm16

    assert mulaw_to_pcm16(b"\\xff\\x80") == b"\\x00\\x00\\x7c\\x7d"  # 0 and 32124
    ```
    """
    table = _DECODE
    return from_samples(array("h", [table[b] for b in ulaw]))
