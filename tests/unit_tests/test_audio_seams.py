"""The seams between the requests of a split text: PCM on samples, MP3 frame to frame.

The MP3 pieces are real encodes (libmp3lame through PyAV: an ID3v2 tag, then a LAME
Info frame stating the piece's own length), fed in reads of every size; the joined
stream is checked by two decoders nobody here wrote.
"""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile as sf

from langchain_openrouter_audio._audio_seams import Mp3Seam, PcmSeam
from langchain_openrouter_audio._speech_stream import SpeechFormat
from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.testing._audio_api import mp3_from_pcm

av = pytest.importorskip("av")

SECONDS = (1.0, 2.0, 0.5)


def _pieces() -> list[bytes]:
    mp3s = [mp3_from_pcm(tone_pcm16(s, 300 + 200 * i)) for i, s in enumerate(SECONDS)]
    assert all(m[:3] == b"ID3" and b"Info" in m[:1000] for m in mp3s)
    return mp3s


def _join(pieces: list[bytes], read: int) -> bytes:
    out = b""
    for i, piece in enumerate(pieces):
        seam = Mp3Seam(first=i == 0, last=i == len(pieces) - 1)
        for start in range(0, len(piece), read):
            out += seam.take(piece[start : start + read])
        out += seam.end()
    return out


def _decoded_seconds(mp3: bytes) -> tuple[float, float]:
    data, rate = sf.read(io.BytesIO(mp3), dtype="int16")
    with av.open(io.BytesIO(mp3)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return len(data) / rate, samples / 24000


def test_mp3_pieces_as_they_come_decode_as_one_stream() -> None:
    pieces = _pieces()
    # Joined as they come, a decoder stops at the first piece's stated length.
    naive, _ = sf.read(io.BytesIO(b"".join(pieces)))
    assert len(naive) / 24000 == pytest.approx(SECONDS[0], abs=0.05)
    joined = {_join(pieces, read) for read in (1, 7, 417, 4096, 1 << 20)}
    (mp3,) = joined  # the same bytes, however the reads fall
    assert mp3.count(b"ID3") == 1
    assert mp3[:3] == b"ID3"
    assert b"Info" not in mp3
    by_soundfile, by_av = _decoded_seconds(mp3)
    assert by_soundfile == by_av
    # All of it, plus each piece's encoder delay and padding (under 0.1 s a seam).
    assert sum(SECONDS) <= by_soundfile <= sum(SECONDS) + 0.1 * len(SECONDS)


def test_an_id3v1_tag_between_pieces_goes_and_the_last_one_stays() -> None:
    tag = b"TAG" + b"x" * 125
    pieces = [p + tag for p in _pieces()]
    mp3 = _join(pieces, 333)
    assert mp3.count(b"TAG" + b"x" * 125) == 1
    assert mp3.endswith(tag)
    by_soundfile, by_av = _decoded_seconds(mp3)
    assert by_soundfile == by_av >= sum(SECONDS)


def test_what_is_not_mp3_passes_as_it_is() -> None:
    seam = Mp3Seam(first=False, last=False)
    data = bytes(range(256)) * 4
    assert seam.take(data[:5]) + seam.take(data[5:]) + seam.end() == data
    short = Mp3Seam(first=False, last=True)
    assert short.take(b"ID") + short.end() == b"ID"


def test_pcm_passes_whole_samples_and_drops_a_dangling_byte() -> None:
    seam = PcmSeam()
    assert seam.take(b"\x01\x02\x03") == b"\x01\x02"
    assert seam.take(b"\x04\x05") == b"\x03\x04"
    assert seam.end() == b""  # \x05: half a sample, never shifted onto the next piece
    assert seam.take(b"\x06\x07") == b"\x06\x07"


@pytest.mark.parametrize(
    ("content_type", "kind", "rate", "encoded", "joins_as"),
    [
        ("audio/pcm;rate=24000;channels=1", "pcm", 24000, None, ("pcm", 24000)),
        ("Audio/L16; rate=16000", "pcm", 16000, None, ("pcm", 16000)),
        ("", "pcm", 24000, None, ("pcm", 24000)),  # no type: PCM, as OpenRouter's default
        ("audio/mpeg", "mp3", 24000, "mp3", ("mp3", 0)),
        ("AUDIO/MP3", "mp3", 24000, "mp3", ("mp3", 0)),
        ("audio/wav", "audio/wav", 24000, "wav", ("audio/wav", 0)),
    ],
)
def test_a_speech_response_format_is_read_from_its_content_type(
    content_type: str, kind: str, rate: int, encoded: str | None, joins_as: tuple[str, int]
) -> None:
    # One parse per response serves both the reply (its rate, its container) and the
    # join check between the pieces of a split text.
    headers = {"content-type": content_type} if content_type else {}
    fmt = SpeechFormat.of(httpx.Response(200, headers=headers))
    assert (fmt.kind, fmt.rate, fmt.encoded, fmt.joins_as) == (kind, rate, encoded, joins_as)
    assert fmt.content_type == content_type
