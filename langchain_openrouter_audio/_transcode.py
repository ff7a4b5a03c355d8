"""Browser audio (webm/ogg with opus) to WAV, for models that do not take those containers.

Browsers record `audio/webm` (Chrome, Firefox) or `audio/ogg` (Firefox) with the opus codec;
OpenAI's audio models take neither. Needs PyAV: ``pip install
'langchain-openrouter-audio[transcode]'``.

```python
from langchain_openrouter_audio._transcode import transcode_to_wav

wav = transcode_to_wav(open("clip.webm", "rb").read(), "audio/webm;codecs=opus")
```
"""

from __future__ import annotations

import io
from typing import Any

from langchain_openrouter_audio._encoding import wav_header, wav_pad

__all__ = ["DEFAULT_MAX_BYTES", "TRANSCODED_MIME_TYPES", "needs_transcode", "transcode_to_wav"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""Decoded PCM a clip may become by default: `ChatOpenRouterAudio.max_audio_bytes`'s default.

A few KB of opus can hold hours of silence (3 MB in, over 500 MB of PCM out)."""

# MIME base type -> PyAV (FFmpeg) demuxer; webm is a Matroska subset.
_DEMUXERS = {
    "audio/webm": "matroska",
    "video/webm": "matroska",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "application/ogg": "ogg",
}
TRANSCODED_MIME_TYPES = frozenset(_DEMUXERS)
"""MIME types `transcode_to_wav` converts (parameters such as ``;codecs=opus`` allowed)."""

_EXTRA_HINT = "pip install 'langchain-openrouter-audio[transcode]'"


def _base(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()


def needs_transcode(mime_type: str) -> bool:
    """True for browser containers (webm, ogg/opus) that are converted to WAV before sending.

    >>> needs_transcode("audio/webm;codecs=opus"), needs_transcode("audio/wav")
    (True, False)
    """
    return _base(mime_type) in _DEMUXERS


def _import_av() -> Any:
    try:
        import av
    except ImportError as err:
        msg = f"converting browser audio (webm/ogg) to WAV needs PyAV: {_EXTRA_HINT}"
        raise ImportError(msg) from err
    return av


def transcode_to_wav(
    data: bytes,
    mime_type: str,
    *,
    sample_rate: int = 24_000,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> bytes:
    """Decode a webm or ogg clip (opus, vorbis, ...) to a 16-bit mono WAV at `sample_rate`.

    ```python
    wav = transcode_to_wav(webm_bytes, "audio/webm")  # RIFF/WAVE, 24 kHz, mono, 16-bit
    ```

    `max_bytes` bounds the decoded PCM (20 MiB by default, the chat model's
    `max_audio_bytes` default: about 7 minutes at 24 kHz): decoding stops as soon as it is
    passed, so a small clip of hours of silence cannot fill memory. Pass a larger value
    for longer clips, or `None` for no limit (trusted input only).

    Raises:
        ImportError: PyAV is not installed (the message names the `[transcode]` extra).
        ValueError: an unsupported MIME type, bytes that are not a decodable clip, or
            more than `max_bytes` of audio.
    """
    demuxer = _DEMUXERS.get(_base(mime_type))
    if demuxer is None:
        known = ", ".join(sorted(_DEMUXERS))
        raise ValueError(f"cannot transcode {mime_type!r}; supported: {known}")
    if not data:
        raise ValueError(f"{mime_type} clip is empty")
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive (or None for no limit), got {max_bytes}")
    av = _import_av()
    try:
        pcm = _decode(av, data, demuxer, sample_rate, max_bytes)
    except av.FFmpegError as err:
        raise ValueError(f"{mime_type} clip could not be decoded: {err}") from None
    return wav_header(len(pcm), sample_rate=sample_rate) + pcm + wav_pad(len(pcm))


def _decode(av: Any, data: bytes, demuxer: str, sample_rate: int, max_bytes: int | None) -> bytes:
    with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
        if not container.streams.audio:
            raise ValueError("the clip has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        out = bytearray()
        for frame in container.decode(stream):
            for piece in resampler.resample(frame):
                out += _frame_bytes(piece)
            if max_bytes is not None and len(out) > max_bytes:
                raise ValueError(_too_long(max_bytes, sample_rate))
        for piece in resampler.resample(None):  # drain what the resampler holds back
            out += _frame_bytes(piece)
    if not out:
        raise ValueError("the clip holds no audio samples")
    return bytes(out)


def _too_long(max_bytes: int, sample_rate: int) -> str:
    seconds = max_bytes / 2 / sample_rate
    return (
        f"the clip decodes to over max_audio_bytes={max_bytes} bytes of PCM "
        f"({seconds:.0f} s at {sample_rate} Hz); for longer clips raise the limit: "
        "ChatOpenRouterAudio(max_audio_bytes=...) or transcode_to_wav(..., max_bytes=...)"
    )


def _frame_bytes(frame: Any) -> bytes:
    # A packed s16 mono plane can carry alignment padding past the last sample.
    return bytes(frame.planes[0])[: frame.samples * 2]
