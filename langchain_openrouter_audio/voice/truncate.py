"""The reply as the user heard it before interrupting: audio and transcript cut to match."""

from __future__ import annotations

import base64
import io
import math
import re
import wave
from typing import Any

from langchain_core.messages import AIMessage

from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, pcm16_to_wav, pcm_rate
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH

__all__ = ["truncate_to_heard"]

# Used only for a reply without audio to measure the speaking rate against (~150 wpm).
_DEFAULT_WORDS_PER_SECOND = 2.5
_WORD = re.compile(r"\S+")


def _speech(blocks: list[dict[str, Any]]) -> tuple[bytes, int, bool, dict[str, Any] | None]:
    """(PCM, rate, was_wav, first audio block) of all audio blocks, in order."""
    pcm, rate, was_wav, first = b"", PCM_SAMPLE_RATE, False, None
    for block in blocks:
        if block.get("type") != "audio" or not block.get("base64"):
            continue
        data = base64.b64decode(block["base64"])
        if data[:4] == b"RIFF":
            with wave.open(io.BytesIO(data), "rb") as wav:
                rate = wav.getframerate()
                # Count the bytes really there: streamed WAV headers may claim more.
                data = wav.readframes(wav.getnframes())
            was_wav = True
        else:
            rate = pcm_rate(block.get("mime_type"), rate)
        if first is None:
            first = block
        pcm += data
    return pcm, rate, was_wav, first


def cut_words(text: str, words: int) -> str:
    """The first `words` words of `text`, with the spacing between them as it was."""
    if words <= 0:
        return ""
    ends = [m.end() for m in _WORD.finditer(text)]
    return text if words >= len(ends) else text[: ends[words - 1]]


def truncate_to_heard(message: AIMessage, heard_seconds: float) -> AIMessage:
    """Cut a spoken reply to what was heard in its first `heard_seconds`.

    The audio is cut at `heard_seconds` (same sample rate and format: a WAV stays a WAV,
    streamed raw PCM stays PCM); the transcript keeps the words wholly spoken by then,
    taking the speaking rate as words / audio seconds (as LiveKit does when there are no
    word timings). The result is a new `AIMessage` (the input is not changed) with
    `response_metadata["interrupted"] = True` and `["heard_seconds"]`; tool calls, which
    an interrupted reply never got to run, are dropped.

    ```python
    from langchain_core.messages import AIMessage
    from langchain_openrouter_audio.testing import tone_pcm16
    from langchain_openrouter_audio.voice import truncate_to_heard
    import base64

    reply = AIMessage(content=[
        {"type": "text", "text": "one two three four"},
        {"type": "audio", "base64": base64.b64encode(tone_pcm16(2.0)).decode(),
         "mime_type": "audio/pcm;rate=24000"},
    ])
    heard = truncate_to_heard(reply, 1.1)  # 2 words per second
    assert heard.text == "one two"
    assert heard.response_metadata["interrupted"]
    ```
    """
    if heard_seconds < 0 or math.isnan(heard_seconds):
        raise ValueError("heard_seconds must be >= 0")
    content = message.content
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    if isinstance(content, str):
        text = content
    else:
        parts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        parts += [b for b in content if isinstance(b, str)]
        text = "".join(str(p) for p in parts)
    pcm, rate, was_wav, audio_block = _speech(blocks)

    words = len(_WORD.findall(text))
    if pcm:
        total_s = len(pcm) / (SAMPLE_WIDTH * rate)
        heard_s = min(heard_seconds, total_s)
        # A word counts as heard once its share of the audio has fully played.
        heard_words = math.floor(heard_s / total_s * words + 1e-9) if total_s else words
        cut = pcm[: round(heard_s * rate) * SAMPLE_WIDTH]
    else:
        heard_s = heard_seconds
        heard_words = math.floor(heard_seconds * _DEFAULT_WORDS_PER_SECOND)
        cut = b""
    heard_text = cut_words(text, heard_words)

    new_content: list[str | dict[str, Any]] = []
    if heard_text:
        new_content.append({"type": "text", "text": heard_text})
    if audio_block is not None:
        audio = {k: v for k, v in audio_block.items() if k not in ("base64", "index")}
        data = pcm16_to_wav(cut, sample_rate=rate) if was_wav else cut
        audio["base64"] = base64.b64encode(data).decode("ascii")
        if not was_wav:
            audio["mime_type"] = f"audio/pcm;rate={rate}"
        new_content.append(audio)
    meta = {**message.response_metadata, "interrupted": True, "heard_seconds": heard_s}
    return AIMessage(
        content=new_content if (blocks or not isinstance(content, str)) else heard_text,
        id=message.id,
        name=message.name,
        additional_kwargs={
            k: v
            for k, v in message.additional_kwargs.items()
            if k not in ("tool_calls", "function_call", "audio")
        },
        response_metadata=meta,
        usage_metadata=message.usage_metadata,
    )
