from __future__ import annotations

import struct
import warnings

import pytest

from langchain_openrouter_audio.voice import mulaw_to_pcm16, pcm16_to_mulaw

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))


def test_known_code_points() -> None:
    # G.711 (Sun g711.c): 0 -> 0xFF, full scale -> 0x80 / 0x00, codes are bit-inverted.
    pcm = struct.pack("<6h", 0, 32767, -32768, -1, 8, -8)
    assert pcm16_to_mulaw(pcm) == bytes([0xFF, 0x80, 0x00, 0x7E, 0xFE, 0x7E])
    decoded = struct.unpack("<6h", mulaw_to_pcm16(bytes([0xFF, 0x7F, 0x80, 0x00, 0xEF, 0x6F])))
    assert decoded == (0, 0, 32124, -32124, 132, -132)


def test_round_trip_error_is_within_the_segment_step() -> None:
    back = struct.unpack("<65536h", mulaw_to_pcm16(pcm16_to_mulaw(ALL_SAMPLES)))
    for x, y in zip(range(-32768, 32768), back, strict=True):
        if abs(x) <= 32124:
            # Steps double per segment: the error is under 1/16 of the value, plus 8 near 0.
            assert abs(x - y) <= abs(x) // 16 + 8, (x, y)
        else:
            assert abs(y) == 32124
        assert (x >= 0) == (y >= 0) or y == 0


def test_every_code_decodes_and_re_encodes_to_itself() -> None:
    codes = bytes(range(256))
    again = pcm16_to_mulaw(mulaw_to_pcm16(codes))
    # 0x7F is negative zero: it decodes to 0, which encodes as positive zero.
    assert again == codes.replace(b"\x7f", b"\xff")


def test_one_byte_per_sample() -> None:
    assert len(pcm16_to_mulaw(bytes(1600))) == 800
    assert len(mulaw_to_pcm16(bytes(800))) == 1600


def test_matches_audioop_when_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    assert pcm16_to_mulaw(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert mulaw_to_pcm16(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)
