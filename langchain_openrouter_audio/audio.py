"""Audio helpers: PCM and WAV, format sniffing, and audio blocks in and out.

Speech *from* OpenRouter is raw PCM16 (signed 16-bit little-endian, mono,
24 kHz). These helpers wrap it in WAV, and turn files or bytes *to* send into
LangChain v1 `audio` content blocks:

```python
from langchain_core.messages import HumanMessage
from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.audio import audio_block_from_file, save_audio

question = HumanMessage(content=[audio_block_from_file("question.wav")])
reply = ChatOpenRouterAudio().invoke([question])
save_audio(reply, "answer.wav")
```
"""

from __future__ import annotations

import base64
import binascii
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages.content import AudioContentBlock, create_audio_block

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "MIME_TO_FORMAT",
    "PCM_CHANNELS",
    "PCM_SAMPLE_RATE",
    "PCM_SAMPLE_WIDTH",
    "audio_block_from_bytes",
    "audio_block_from_file",
    "audio_bytes",
    "audio_format_for_mime",
    "audio_pcm",
    "b64encode_consuming",
    "check_audio_bytes",
    "decode_base64",
    "display_audio",
    "import_sounddevice",
    "pcm16_to_wav",
    "pcm_rate",
    "record_audio_block",
    "save_audio",
    "sniff_audio_format",
    "wav_data",
    "wav_header",
    "wav_pad",
]

PCM_SAMPLE_RATE = 24_000
"""Sample rate of OpenRouter's streamed `pcm16` speech (gpt-audio models)."""
PCM_CHANNELS = 1
PCM_SAMPLE_WIDTH = 2

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

_FORMAT_TO_MIME = {
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

    >>> sniff_audio_format(pcm16_to_wav(b"\\x00\\x00"))
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


def pcm16_to_wav(
    pcm: bytes,
    *,
    sample_rate: int = PCM_SAMPLE_RATE,
    channels: int = PCM_CHANNELS,
) -> bytes:
    """Wrap raw signed 16-bit little-endian PCM in a 44-byte WAV header.

    >>> import io, wave
    >>> wave.open(io.BytesIO(pcm16_to_wav(b"\\x01\\x00" * 240))).getnframes()
    240
    """
    return (
        wav_header(len(pcm), sample_rate=sample_rate, channels=channels) + pcm + wav_pad(len(pcm))
    )


def wav_pad(data_len: int) -> bytes:
    """The pad byte RIFF wants after an odd-sized data chunk (word alignment)."""
    return b"\x00" if data_len & 1 else b""


def wav_header(
    data_len: int,
    *,
    sample_rate: int = PCM_SAMPLE_RATE,
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


_B64_WINDOW = 3 * 65536


def b64encode_consuming(parts: list[bytes], *, head: bytes = b"", tail: bytes = b"") -> str:
    """Base64 of `head + b"".join(parts) + tail`, emptying `parts` as it goes.

    Releasing each piece once encoded keeps the peak near 2.7x the audio size
    (pieces becoming text, then the joined text) instead of 3.7x for
    join-then-encode.

    >>> b64encode_consuming([b"ab", b"c"], head=b"x")
    'eGFiYw=='
    """
    pieces: list[str] = []
    carry = head
    if tail:
        parts.append(tail)
    parts.reverse()  # pop() from the end is O(1)
    while parts:
        view = memoryview(parts.pop())
        if carry:
            need = -len(carry) % 3
            view, carry = view[need:], carry + bytes(view[:need])
            if len(carry) % 3:
                continue
            pieces.append(binascii.b2a_base64(carry, newline=False).decode("ascii"))
            carry = b""
        whole = len(view) - len(view) % 3
        for start in range(0, whole, _B64_WINDOW):
            window = view[start : min(start + _B64_WINDOW, whole)]
            pieces.append(binascii.b2a_base64(window, newline=False).decode("ascii"))
        carry = bytes(view[whole:])
    pieces.append(binascii.b2a_base64(carry, newline=False).decode("ascii"))
    return "".join(pieces)


def audio_block_from_bytes(data: bytes, mime_type: str | None = None) -> AudioContentBlock:
    """Make a v1 `audio` content block from encoded audio bytes.

    The format is sniffed from the bytes when `mime_type` is not given; raw
    PCM has no magic number, so pass `mime_type="audio/pcm"` for it.

    ```python
    block = audio_block_from_bytes(open("q.mp3", "rb").read())  # audio/mpeg
    ```

    Raises:
        ValueError: the bytes are not audio of a format OpenRouter accepts.
    """
    if mime_type is None:
        fmt = sniff_audio_format(data)
        if fmt is None:
            msg = "cannot tell the audio format from the bytes; pass mime_type="
            raise ValueError(msg)
        mime_type = _FORMAT_TO_MIME[fmt]
    fmt = audio_format_for_mime(mime_type)
    check_audio_bytes(data, fmt)
    return create_audio_block(base64=base64.b64encode(data).decode("ascii"), mime_type=mime_type)


def audio_block_from_file(path: str | Path, mime_type: str | None = None) -> AudioContentBlock:
    """Make a v1 `audio` content block from an audio file (format sniffed).

    ```python
    HumanMessage(content=[{"type": "text", "text": "Answer this:"},
                          audio_block_from_file("question.wav")])
    ```
    """
    return audio_block_from_bytes(Path(path).read_bytes(), mime_type)


def _audio_blocks(message: BaseMessage) -> list[dict[str, Any]]:
    content = message.content
    if isinstance(content, str):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "audio"]


def audio_bytes(message: BaseMessage) -> bytes:
    """Return the speech of a reply as bytes (a WAV, unless raw PCM was asked for).

    Works on a final `AIMessage` and on the sum of streamed chunks (where the
    bytes are raw PCM). Returns `b""` when the message holds no audio.
    """
    blocks = _audio_blocks(message)
    return b"".join(base64.b64decode(b.get("base64") or "") for b in blocks)


def wav_data(wav: bytes) -> bytes:
    """The bytes of a WAV file's `data` chunk: its PCM, whatever chunks precede it.

    Replies' WAVs carry a `JUNK` chunk, so slicing at byte 44 is wrong; use this.

    Raises:
        ValueError: the bytes are not a WAV with a `data` chunk.
    """
    if sniff_audio_format(wav) != "wav":
        raise ValueError("not a WAV file")
    pos = 12
    while pos + 8 <= len(wav):
        chunk_id, size = struct.unpack_from("<4sI", wav, pos)
        if chunk_id == b"data":
            return wav[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise ValueError("the WAV has no 'data' chunk")


def audio_pcm(message: BaseMessage) -> bytes:
    r"""The raw PCM16 of a reply's speech (from its WAV, or as streamed).

    >>> audio_pcm(llm.invoke("Say hi"))  # doctest: +SKIP
    b'\x00\x00\x12\x01...'
    """
    data = audio_bytes(message)
    return wav_data(data) if sniff_audio_format(data) == "wav" else data


def save_audio(message: BaseMessage, path: str | Path) -> Path:
    """Write a reply's speech to `path` as a playable WAV file.

    Raw PCM (from a summed stream, or `audio_output="pcm"`) is wrapped in a
    WAV header first.

    Raises:
        ValueError: the message holds no audio.
    """
    out = Path(path)
    out.write_bytes(_playable_wav(message))
    return out


def pcm_rate(mime_type: str | None, default: int = PCM_SAMPLE_RATE) -> int:
    """The `rate=` parameter of a PCM MIME type (`audio/pcm;rate=24000`), else `default`."""
    for param in str(mime_type or "").split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key == "rate" and value.isdigit():
            return int(value)
    return default


def _playable_wav(message: BaseMessage) -> bytes:
    """The reply's speech as WAV bytes, wrapping raw PCM in a header when needed."""
    blocks = _audio_blocks(message)
    if not blocks:
        raise ValueError("the message holds no audio block")
    data = audio_bytes(message)
    if sniff_audio_format(data) != "wav":
        data = pcm16_to_wav(data, sample_rate=pcm_rate(blocks[0].get("mime_type")))
    return data


def display_audio(message: BaseMessage) -> Any:
    """Return an inline notebook player for a reply's speech.

    ```python
    display_audio(llm.invoke("Say hi"))  # last line of a Jupyter cell
    ```
    Needs IPython (any Jupyter install has it; else
    `pip install 'langchain-openrouter-audio[notebook]'`).
    """
    try:
        from IPython.display import Audio  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        msg = (
            "display_audio needs IPython (run it in Jupyter, or "
            "pip install 'langchain-openrouter-audio[notebook]')"
        )
        raise ImportError(msg) from err
    player: Any = Audio
    return player(data=_playable_wav(message))


def record_audio_block(
    seconds: float,
    *,
    sample_rate: int = PCM_SAMPLE_RATE,
    device: int | str | None = None,
) -> AudioContentBlock:
    """Record from the microphone and return the clip as a WAV `audio` block.

    Needs `pip install 'langchain-openrouter-audio[playback]'` (sounddevice).

    ```python
    question = HumanMessage(content=[record_audio_block(5.0)])  # speak for 5 s
    ```
    """
    sd = import_sounddevice()
    frames = max(1, round(seconds * sample_rate))
    with sd.RawInputStream(
        samplerate=sample_rate, channels=PCM_CHANNELS, dtype="int16", device=device
    ) as stream:
        data, _overflowed = stream.read(frames)
    return audio_block_from_bytes(pcm16_to_wav(bytes(data), sample_rate=sample_rate))


def import_sounddevice() -> Any:
    """Import the optional `sounddevice`, or say which extra installs it."""
    try:
        import sounddevice  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        msg = "audio devices need sounddevice: pip install 'langchain-openrouter-audio[playback]'"
        raise ImportError(msg) from err
    return sounddevice


def decode_base64(data: str, *, what: str) -> bytes:
    """Strictly decode base64, naming `what` in the error."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"{what} is not valid base64: {err}") from None
