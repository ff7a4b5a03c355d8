"""Audio helpers: WAV wrapping checked by real decoders, sniffing, blocks from files."""

from __future__ import annotations

import base64
import binascii
import io
import subprocess
import wave
from pathlib import Path

import pytest
import soundfile

from langchain_openrouter_audio._encoding import b64decode_strict
from langchain_openrouter_audio._formats import audio_format_for_mime, sniff_audio_format
from langchain_openrouter_audio.audio import (
    audio_block_from_bytes,
    audio_block_from_file,
    pcm16_to_wav,
)
from langchain_openrouter_audio.testing import tone_pcm16
from tests._helpers import HAS_ESPEAK


@pytest.mark.parametrize("seconds", [0.0, 0.01, 1.0])
def test_pcm16_to_wav_is_read_by_wave_and_libsndfile(seconds: float) -> None:
    pcm = tone_pcm16(seconds)
    wav = pcm16_to_wav(pcm)
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.getnframes() == len(pcm) // 2
        assert w.readframes(w.getnframes()) == pcm
    info = soundfile.info(io.BytesIO(wav))
    assert (info.samplerate, info.channels, info.frames) == (24000, 1, len(pcm) // 2)
    assert info.subtype == "PCM_16"


def test_odd_pcm_gets_a_riff_pad_byte() -> None:
    wav = pcm16_to_wav(b"\x01\x00\x02")
    assert len(wav) % 2 == 0
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() == 1


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_block_from_real_speech_file(tmp_path: Path) -> None:
    path = tmp_path / "q.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Is it raining?"], check=True)
    block = audio_block_from_file(path)
    assert block["type"] == "audio"
    assert block["mime_type"] == "audio/wav"
    assert base64.b64decode(block["base64"]) == path.read_bytes()


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\xff\xf1\x50\x80", "aac"),
        (b"OggS\x00\x02", "ogg"),
        (b"fLaC\x00\x00", "flac"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"FORM\x00\x00\x00\x00AIFF", "aiff"),
        (b"hello", None),
    ],
)
def test_sniff(head: bytes, fmt: str | None) -> None:
    assert sniff_audio_format(head + bytes(16)) == fmt


def test_sniffed_block_without_mime_type() -> None:
    block = audio_block_from_bytes(pcm16_to_wav(tone_pcm16(0.1)))
    assert block["mime_type"] == "audio/wav"
    with pytest.raises(ValueError, match="cannot tell the audio format"):
        audio_block_from_bytes(b"definitely not audio")
    raw = audio_block_from_bytes(tone_pcm16(0.1), mime_type="audio/pcm")
    assert raw["mime_type"] == "audio/pcm"
    with pytest.raises(ValueError, match="whole 2-byte samples"):
        audio_block_from_bytes(b"\x00\x01\x02", mime_type="audio/pcm")


@pytest.mark.parametrize(
    ("mime", "fmt"),
    [
        ("audio/wav", "wav"),
        ("audio/x-wav", "wav"),
        ("audio/wave", "wav"),
        ("audio/mpeg", "mp3"),
        ("audio/mp3", "mp3"),
        ("Audio/WAV; codecs=1", "wav"),
        ("audio/flac", "flac"),
    ],
)
def test_mime_mapping(mime: str, fmt: str) -> None:
    assert audio_format_for_mime(mime) == fmt


def test_unknown_mime_is_named() -> None:
    with pytest.raises(ValueError, match="'audio/webm'"):
        audio_format_for_mime("audio/webm")


# The answers Python 3.11 and 3.12 give; 3.13 alone refuses padding after a whole group.
@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("AAAA", b"\0\0\0"),
        ("AAA=", b"\0\0"),
        ("AA==", b"\0"),
        ("AAAA=", b"\0\0\0"),
        ("AAAA==", b"\0\0\0"),
        ("AAAA====", b"\0\0\0"),
        ("AAAAAA==", b"\0\0\0\0"),
        ("", b""),
    ],
)
def test_strict_base64_accepts_superfluous_padding_on_every_version(
    text: str, decoded: bytes
) -> None:
    assert b64decode_strict(text) == decoded


@pytest.mark.parametrize(
    "text", ["AAA==", "AA=", "AAAAAA===", "AAAAAA=", "====", "AAAA\n==", "A==="]
)
def test_strict_base64_still_refuses_what_every_version_refuses(text: str) -> None:
    with pytest.raises(binascii.Error):
        b64decode_strict(text)
