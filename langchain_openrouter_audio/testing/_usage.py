"""Deterministic token usage, shaped like OpenRouter's ``usage`` object."""

from __future__ import annotations

import base64
import binascii
import copy
import io
import wave
from collections.abc import Iterator
from typing import Any

__all__ = ["compute_usage", "input_audio_parts", "usage_for_wire"]

AUDIO_TOKENS_PER_SECOND = 10
_PCM16_24K_BYTES_PER_SECOND = 48000
_MP3_BYTES_PER_SECOND = 16000  # 128 kbit/s, the usual encoder default


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def input_audio_parts(body: Any) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Yield ``(message_index, part_index, part)`` for every ``input_audio`` content part."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "input_audio":
                yield i, j, part


def _audio_tokens(data: bytes, fmt: str) -> int:
    if fmt == "wav":
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                rate = wav.getframerate()
                frame_size = max(1, wav.getsampwidth() * wav.getnchannels())
                # Streamed WAVs carry a bogus huge length, so count the bytes really there.
                frames = len(wav.readframes(wav.getnframes())) // frame_size
            if rate > 0:
                return _ceil_div(frames * AUDIO_TOKENS_PER_SECOND, rate)
        except (wave.Error, EOFError):
            pass
    per_second = _MP3_BYTES_PER_SECOND if fmt == "mp3" else _PCM16_24K_BYTES_PER_SECOND
    return _ceil_div(len(data) * AUDIO_TOKENS_PER_SECOND, per_second)


def _input_audio_tokens(body: Any) -> int:
    total = 0
    for _, _, part in input_audio_parts(body):
        spec = part.get("input_audio")
        if not isinstance(spec, dict) or not isinstance(spec.get("data"), str):
            continue
        try:
            data = base64.b64decode(spec["data"], validate=True)
        except (binascii.Error, ValueError):
            continue
        total += _audio_tokens(data, str(spec.get("format", "")))
    return total


def _text_chars(body: Any) -> int:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return 0
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"])
    return total


def compute_usage(body: Any, *, completion_text: str, pcm_sent: int, cost: float) -> dict[str, Any]:
    """Usage for a request ``body`` answered with ``completion_text`` and ``pcm_sent`` PCM bytes.

    Input audio counts 10 tokens per second; so does output audio (PCM16 mono 24 kHz).

    Examples:
        >>> body = {"messages": [{"role": "user", "content": "12345678"}]}
        >>> compute_usage(body, completion_text="Hi", pcm_sent=48000, cost=0.0)["total_tokens"]
        23
    """
    audio_in = _input_audio_tokens(body)
    audio_out = _ceil_div(pcm_sent * AUDIO_TOKENS_PER_SECOND, _PCM16_24K_BYTES_PER_SECOND)
    prompt = 10 + audio_in + _text_chars(body) // 4
    completion = audio_out + len(completion_text) // 4 + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": audio_in},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": audio_out},
        "cost": cost,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": None},
    }


def usage_for_wire(usage: dict[str, Any], wire: str) -> dict[str, Any]:
    """The test server's computed ``usage`` in the detail layout a real server sends.

    Examples:
        >>> base = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
        ...         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 2},
        ...         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 3},
        ...         "cost": 0.1, "is_byok": False, "cost_details": {}}
        >>> usage_for_wire(base, "openai")["completion_tokens_details"]["text_tokens"]
        2
        >>> "cost" in usage_for_wire(base, "openai"), "cost" in usage_for_wire(base, "openrouter")
        (False, True)
    """
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    audio_in = usage["prompt_tokens_details"]["audio_tokens"]
    audio_out = usage["completion_tokens_details"]["audio_tokens"]
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "audio_tokens": audio_in,
            "text_tokens": prompt - audio_in,
            "image_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": audio_out,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
            "text_tokens": completion - audio_out,
        },
    }
    if wire == "openrouter":
        out["prompt_tokens_details"].update(cache_write_tokens=0, video_tokens=0)
        out["completion_tokens_details"]["image_tokens"] = 0
        for key in ("cost", "is_byok", "cost_details"):
            out[key] = copy.deepcopy(usage[key])
    return out
