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
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages.content import AudioContentBlock, create_audio_block

from langchain_openrouter_audio import _encoding
from langchain_openrouter_audio._formats import (
    FORMAT_TO_MIME,
    audio_format_for_mime,
    check_audio_bytes,
    sniff_audio_format,
)
from langchain_openrouter_audio._transcode import needs_transcode

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "PCM_CHANNELS",
    "PCM_SAMPLE_RATE",
    "PCM_SAMPLE_WIDTH",
    "audio_block_from_bytes",
    "audio_block_from_file",
    "audio_block_data",
    "resolve_audio_block",
    "audio_bytes",
    "audio_pcm",
    "display_audio",
    "import_sounddevice",
    "pcm16_to_wav",
    "pcm_rate",
    "record_audio_block",
    "save_audio",
    "wav_data",
]

# The EBML header that opens every webm (Matroska) file.
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"

PCM_SAMPLE_RATE = 24_000
"""Sample rate of OpenRouter's streamed `pcm16` speech (gpt-audio models)."""
PCM_CHANNELS = _encoding.PCM_CHANNELS
PCM_SAMPLE_WIDTH = _encoding.PCM_SAMPLE_WIDTH


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
    header = _encoding.wav_header(len(pcm), sample_rate=sample_rate, channels=channels)
    return header + pcm + _encoding.wav_pad(len(pcm))


def audio_block_from_bytes(data: bytes, mime_type: str | None = None) -> AudioContentBlock:
    """Make a v1 `audio` content block from encoded audio bytes.

    The format is sniffed from the bytes when `mime_type` is not given; raw
    PCM has no magic number, so pass `mime_type="audio/pcm"` for it. Browser
    recordings (`audio/webm`, `audio/ogg` with opus) are converted to WAV when
    the request is built (needs the `[transcode]` extra).

    ```python
    block = audio_block_from_bytes(open("q.mp3", "rb").read())  # audio/mpeg
    ```

    Raises:
        ValueError: the bytes are not audio of a format OpenRouter accepts.
        TypeError: a file name instead of bytes (use `audio_block_from_file`).
    """
    if isinstance(data, (str, Path)):
        msg = (
            f"audio_block_from_bytes takes the audio's bytes, not a file name: "
            f"for a file call audio_block_from_file({str(data)!r})"
        )
        raise TypeError(msg)
    if mime_type is None:
        fmt = "webm" if data[:4] == _EBML_MAGIC else sniff_audio_format(data)
        if fmt is None:
            msg = "cannot tell the audio format from the bytes; pass mime_type="
            raise ValueError(msg)
        mime_type = "audio/webm" if fmt == "webm" else FORMAT_TO_MIME[fmt]
    if not needs_transcode(mime_type):
        check_audio_bytes(data, audio_format_for_mime(mime_type))
    return create_audio_block(base64=base64.b64encode(data).decode("ascii"), mime_type=mime_type)


def audio_block_from_file(path: str | Path, mime_type: str | None = None) -> AudioContentBlock:
    """Make a v1 `audio` content block from an audio file (format sniffed).

    ```python
    HumanMessage(content=[{"type": "text", "text": "Answer this:"},
                          audio_block_from_file("question.wav")])
    ```
    """
    return audio_block_from_bytes(Path(path).read_bytes(), mime_type)


_EXTENSION_MIME = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".aiff": "audio/aiff",
    ".webm": "audio/webm",
}


def _mime_of(data: bytes, path: str | None = None) -> str | None:
    if data[:4] == _EBML_MAGIC:
        return "audio/webm"
    if (fmt := sniff_audio_format(data)) is not None:
        return FORMAT_TO_MIME[fmt]
    return _EXTENSION_MIME.get(Path(path).suffix.lower()) if path else None


def _read_limited(path: str | Path, max_bytes: int, what: str) -> bytes:
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as err:
        raise ValueError(f"{what}: cannot read {str(path)!r} ({err.strerror})") from None
    if size > max_bytes:
        raise ValueError(f"{what}: {str(path)!r} is {size} bytes, over max_audio_bytes={max_bytes}")
    return file.read_bytes()


def resolve_audio_block(
    block: dict[str, Any], *, max_bytes: int, what: str = "audio block"
) -> dict[str, Any]:
    """The block with its audio as base64 text, whatever form it came in.

    Accepts `base64` text, raw bytes in `data` (or `base64`), and a `path` on disk
    (read, with the `max_bytes` limit checked before reading). The MIME type is
    sniffed from the bytes when the block has none.
    """
    data = block.get("base64") or block.get("data")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > max_bytes:
            raise ValueError(f"{what} is {len(raw)} bytes, over max_audio_bytes={max_bytes}")
        mime = block.get("mime_type") or _mime_of(raw)
    elif not data and isinstance(block.get("path"), (str, Path)):
        raw = _read_limited(block["path"], max_bytes, what)
        mime = block.get("mime_type") or _mime_of(raw, str(block["path"]))
    else:
        return block
    if not mime:
        raise ValueError(f"{what}: cannot tell the audio format from the bytes; add a mime_type")
    out = {k: v for k, v in block.items() if k not in ("data", "path", "base64")}
    out.update(base64=base64.b64encode(raw).decode("ascii"), mime_type=mime)
    return out


def audio_block_data(block: dict[str, Any], *, max_bytes: int) -> tuple[bytes, str | None]:
    """The decoded bytes of an `audio` block, and its MIME type (None: not stated).

    Raises:
        ValueError: no audio in the block, a URL, bad base64, or over `max_bytes`.
    """
    block = resolve_audio_block(block, max_bytes=max_bytes)
    data = block.get("base64")
    mime = block.get("mime_type")
    url = block.get("url")
    if not data and isinstance(url, str) and url.startswith("data:"):
        head, _, data = url.partition(",")
        mime = mime or head[5:].split(";", 1)[0]
    elif not data and url:
        msg = "the audio block has a url; OpenRouter does not fetch audio URLs: send the bytes"
        raise ValueError(msg)
    if not isinstance(data, str) or not data:
        raise ValueError("the audio block has no audio (base64, data or path)")
    if len(data) * 3 // 4 > max_bytes + 2:
        raise ValueError(f"the audio block is over max_audio_bytes={max_bytes}")
    return _encoding.decode_base64("".join(data.split()), what="the audio block"), mime


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
    if sniff_audio_format(data) == "wav":
        return wav_data(data)
    if (mime := _encoded_mime(message)) is not None:
        msg = f"the message's audio is {mime}, not PCM; audio_bytes(message) gives its bytes"
        raise ValueError(msg)
    return data


def save_audio(message: BaseMessage, path: str | Path) -> Path:
    """Write a reply's speech to `path` as a playable WAV file.

    Raw PCM (from a summed stream, or `audio_output="pcm"`) is wrapped in a
    WAV header first. Audio that came as MP3 (or OGG, FLAC: music models,
    `OpenRouterSpeech(response_format="mp3")`) is written as it is: give the
    path a matching suffix.

    Raises:
        ValueError: the message holds no audio.
    """
    out = Path(path)
    if _encoded_mime(message) is not None:
        out.write_bytes(audio_bytes(message))
        return out
    out.write_bytes(_playable_wav(message))
    return out


def _encoded_mime(message: BaseMessage) -> str | None:
    """The MIME type of a message's audio when it is a container other than WAV (MP3, ...)."""
    blocks = _audio_blocks(message)
    mime = str(blocks[0].get("mime_type") or "") if blocks else ""
    base = mime.split(";", 1)[0].strip().lower()
    if not base or base in ("audio/wav", "audio/x-wav", "audio/wave", "audio/pcm", "audio/l16"):
        return None
    return base


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
    """Import the optional `sounddevice`, or say what to install: the extra, or PortAudio."""
    try:
        import sounddevice  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        msg = "audio devices need sounddevice: pip install 'langchain-openrouter-audio[playback]'"
        raise ImportError(msg) from err
    except OSError as err:
        # sounddevice loads the PortAudio C library when imported; pip cannot install it
        # on Linux, and its own message does not say which package holds it.
        msg = (
            f"audio devices need the PortAudio library, which sounddevice could not load "
            f"({err}): install it with the system's package manager (Debian/Ubuntu: "
            f"apt-get install libportaudio2; Fedora: dnf install portaudio; "
            f"macOS: brew install portaudio)"
        )
        raise OSError(msg) from err
    return sounddevice
