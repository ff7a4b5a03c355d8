"""Audio formats: MIME types, magic numbers, and checks that bytes are what they claim.

Used to refuse bad input before any request is sent; not public API.
"""

from __future__ import annotations

import struct

__all__ = [
    "FORMAT_TO_MIME",
    "MIME_TO_FORMAT",
    "audio_format_for_mime",
    "check_audio_bytes",
    "sniff_audio_format",
    "sniff_encoded_audio",
]

MIME_TO_FORMAT: dict[str, str] = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/aiff": "aiff",
    "audio/x-aiff": "aiff",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/pcm": "pcm16",
    "audio/l16": "pcm16",
    "audio/pcm16": "pcm16",
    "audio/pcm24": "pcm24",
}
"""MIME type -> OpenRouter `input_audio.format` (the formats OpenRouter lists)."""

FORMAT_TO_MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "pcm16": "audio/pcm",
    "pcm24": "audio/pcm24",
}

# Headerless formats: nothing in the bytes can confirm them.
_RAW_FORMATS = {"pcm16": 2, "pcm24": 3}


def audio_format_for_mime(mime_type: str) -> str:
    """Map a MIME type (parameters allowed) to OpenRouter's format name.

    >>> audio_format_for_mime("audio/x-wav")
    'wav'

    Raises:
        ValueError: the MIME type is not an audio format OpenRouter accepts.
    """
    base = mime_type.split(";", 1)[0].strip().lower()
    fmt = MIME_TO_FORMAT.get(base)
    if fmt is None:
        known = ", ".join(sorted(MIME_TO_FORMAT))
        msg = f"unsupported audio MIME type {mime_type!r}; OpenRouter accepts: {known}"
        raise ValueError(msg)
    return fmt


def sniff_audio_format(data: bytes) -> str | None:
    """Name the container format of `data` from its magic numbers, or None.

    >>> sniff_audio_format(b"RIFF\\x00\\x00\\x00\\x00WAVE")
    'wav'
    """
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        # ADTS (AAC) sets layer bits to 00; MPEG audio layer III sets them to 01.
        if head[1] & 0xF6 == 0xF0:
            return "aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02:
            return "mp3"
    return None


def check_audio_bytes(data: bytes, fmt: str, *, what: str = "audio") -> None:
    """Refuse bytes that are not the audio format they claim to be.

    Raises:
        ValueError: empty bytes, bytes of another format, a WAV without its
            `fmt `/`data` chunks, or raw PCM whose length is not whole samples.
    """
    if not data:
        raise ValueError(f"{what} is empty")
    if fmt in _RAW_FORMATS:
        width = _RAW_FORMATS[fmt]
        if len(data) % width:
            msg = f"{what}: {fmt} must be whole {width}-byte samples, got {len(data)} bytes"
            raise ValueError(msg)
        return
    sniffed = sniff_audio_format(data)
    if sniffed is None:
        msg = f"{what} does not look like {fmt} audio (corrupt, or not audio at all)"
        raise ValueError(msg)
    if sniffed != fmt:
        raise ValueError(f"{what} is declared as {fmt} but its bytes are {sniffed}")
    if fmt == "wav":
        _check_wav_chunks(data, what)


# PCM, MS ADPCM, IEEE float, A-law, mu-law, IMA ADPCM, GSM 6.10, MPEG layer 3, extensible.
_WAV_FORMAT_TAGS = frozenset(
    {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0055, 0xFFFE}
)


def _check_wav_chunks(data: bytes, what: str) -> None:
    pos, fmt, has_data = 12, None, False
    while pos + 8 <= len(data) and not (fmt and has_data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        if chunk_id == b"fmt ":
            fmt = data[pos + 8 : pos + 8 + size]
        has_data = has_data or chunk_id == b"data"
        pos += 8 + size + (size & 1)
    if fmt is None or not has_data:
        raise ValueError(f"{what} is a corrupt WAV: no 'fmt ' and 'data' chunks")
    if len(fmt) < 16:
        raise ValueError(f"{what} is a corrupt WAV: its 'fmt ' chunk is {len(fmt)} bytes")
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", fmt)
    # Compressed formats may state 0 bits per sample; PCM and float may not.
    needs_bits = tag in (0x0001, 0x0003, 0xFFFE)
    if tag not in _WAV_FORMAT_TAGS or not channels or not rate or (needs_bits and not bits):
        msg = (
            f"{what} is a corrupt WAV: format tag {tag:#06x}, {channels} channel(s), "
            f"{rate} Hz, {bits} bits per sample"
        )
        raise ValueError(msg)


# MPEG audio: bitrates (kbit/s) of layer III by version, and sample rates by version.
_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}


def _mp3_frame_length(head: bytes) -> int | None:
    """The length of the MPEG layer III frame whose 4-byte header is `head`, or None."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0 or head[1] & 0x06 != 0x02:
        return None
    version = {3: 1, 2: 2, 0: 25}.get((head[1] >> 3) & 0x03)
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 0x03
    if version is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[1 if version == 1 else 2][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (head[2] >> 1) & 0x01
    return (144 if version == 1 else 72) * bitrate // rate + padding


def sniff_encoded_audio(data: bytes) -> str | None:
    """The container of audio a model sent instead of raw PCM (mp3, wav, ogg, flac, m4a).

    Stricter than `sniff_audio_format` for MP3, since raw PCM can start with any
    bytes: a bare frame sync counts only when a second frame header follows where
    the first frame ends.

    >>> sniff_encoded_audio(b"ID3\x04\x00\x00\x00\x00\x00\x00"), sniff_encoded_audio(bytes(8))
    ('mp3', None)
    """
    fmt = sniff_audio_format(data)
    if fmt in ("wav", "ogg", "flac", "m4a") or (fmt == "mp3" and data[:3] == b"ID3"):
        return fmt
    length = _mp3_frame_length(data[:4])
    if length is not None and _mp3_frame_length(data[length : length + 4]) is not None:
        return "mp3"
    return None
