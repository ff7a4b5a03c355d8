"""OpenRouter's dedicated audio endpoints, as the test server answers them.

``POST /api/v1/audio/speech`` (text to speech: raw audio bytes),
``POST /api/v1/audio/transcriptions`` (speech to text: JSON) and
``GET /api/v1/generation?id=`` (what a generation cost). The checks follow what the
real service is documented or reported to refuse: a schema error comes back in the
validator's own shape (``{"success": false, "error": {"name": "ZodError", ...}}``),
an unknown model as ``{"error": {"code": 400, "message": "Model X does not exist"}}``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import secrets
import struct
import time
import wave
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from ._answers import CLIPS, clip_wav
from ._answers import clip_transcript as words_of_clip
from ._gateway import Rejection, gateway_error

__all__ = [
    "SPEECH_MODELS",
    "TRANSCRIPTION_MODELS",
    "check_speech",
    "check_transcription",
    "clip_transcript",
    "model_catalog",
    "generation_record",
    "mp3_from_pcm",
    "new_audio_generation_id",
    "speech_cost",
    "speech_too_long",
    "transcription_usage",
    "zod_error",
]

# Slug -> USD per input character (the price lists of the model pages).
SPEECH_MODELS: dict[str, float] = {
    "openai/gpt-4o-mini-tts-2025-12-15": 0.6e-6,
    "google/gemini-3.1-flash-tts-preview": 1e-6,
    "mistralai/voxtral-mini-tts-2603": 16e-6,
    "hexgrad/kokoro-82m": 1e-6,
    "x-ai/grok-voice-tts-1.0": 15e-6,
    "microsoft/mai-voice-2": 15e-6,
    "assemblyai/assemblyai-tts-1": 10e-6,
}
"""TTS slugs the speech endpoint serves; anything else "does not exist"."""

# Formats a model is reported to refuse (Gemini: pcm only; Voxtral: mp3 only).
_SPEECH_FORMAT_ONLY = {
    "google/gemini-3.1-flash-tts-preview": "pcm",
    "mistralai/voxtral-mini-tts-2603": "mp3",
}

# Slug -> USD per second of input audio (duration-priced), or None (token-priced).
TRANSCRIPTION_MODELS: dict[str, float | None] = {
    "openai/whisper-1": 0.0001,
    "openai/whisper-large-v3": 0.0000308,
    "openai/whisper-large-v3-turbo": 0.0000111,
    "openai/gpt-4o-transcribe": None,
    "openai/gpt-4o-mini-transcribe": None,
    "google/chirp-3": 0.000266,
    "deepgram/nova-3": 0.0000717,
    "microsoft/mai-transcribe-2": 0.0000278,
}
"""STT slugs the transcription endpoint serves; chat models are refused."""

_STT_FORMATS = ("wav", "mp3", "flac", "m4a", "ogg", "webm", "aac")
_MP3_FRAME_HEADER = b"\xff\xfb\x90\x64"  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, mono
_MP3_FRAME_BYTES = 417


def zod_error(*issues: tuple[list[str | int], str, str]) -> Rejection:
    """The 400 a schema failure gets: ``(path, code, message)`` issues in a JSON string."""
    listed = [{"code": code, "path": path, "message": message} for path, code, message in issues]
    return 400, {
        "success": False,
        "error": {"name": "ZodError", "message": json.dumps(listed, indent=2)},
    }


def _required(path: list[str | int], expected: str = "string") -> tuple[Any, str, str]:
    return path, "invalid_type", f"Invalid input: expected {expected}, received undefined"


def _wrong_type(path: list[str | int], expected: str, value: Any) -> tuple[Any, str, str]:
    received = "null" if value is None else type(value).__name__
    return path, "invalid_type", f"Invalid input: expected {expected}, received {received}"


def _not_exist(model: str) -> Rejection:
    return gateway_error(400, f"Model {model} does not exist")


def new_audio_generation_id(kind: str) -> str:
    """``gen-tts-<unix seconds>-<20 alphanumerics>`` (or ``gen-stt-...``)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(20))
    return f"gen-{kind}-{int(time.time())}-{suffix}"


# -- speech ----------------------------------------------------------------------------------


def check_speech(body: Any) -> Rejection | None:
    """The error ``/audio/speech`` sends for this parsed body, or None.

    Examples:
        >>> check_speech({"model": "openai/gpt-4o-mini-tts-2025-12-15"})[1]["error"]["name"]
        'ZodError'
        >>> check_speech({"model": "openai/gpt-audio-mini", "input": "hi"})[1]["error"]["message"]
        'Model openai/gpt-audio-mini does not exist'
    """
    if not isinstance(body, dict):
        return zod_error(([], "invalid_type", "Invalid input: expected object"))
    issues = []
    for name in ("model", "input"):
        if name not in body:
            issues.append(_required([name]))
        elif not isinstance(body[name], str):
            issues.append(_wrong_type([name], "string", body[name]))
    if "voice" in body and (not isinstance(body["voice"], str) or not body["voice"]):
        issues.append((["voice"], "too_small", "Too small: expected string to have >=1 characters"))
    fmt = body.get("response_format", "pcm")
    if fmt not in ("mp3", "pcm"):
        issues.append(
            (["response_format"], "invalid_value", 'Invalid option: expected one of "mp3"|"pcm"')
        )
    speed = body.get("speed")
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, (int, float))):
        issues.append(_wrong_type(["speed"], "number", speed))
    provider = body.get("provider")
    if provider is not None and not isinstance(provider, dict):
        issues.append(_wrong_type(["provider"], "object", provider))
    if issues:
        return zod_error(*issues)
    model = body["model"]
    if model not in SPEECH_MODELS:
        return _not_exist(model)
    only = _SPEECH_FORMAT_ONLY.get(model)
    if only is not None and fmt != only:
        return gateway_error(400, f"{model} does not support response_format '{fmt}'")
    return None


def speech_too_long(body: dict[str, Any], limit: int | None) -> Rejection | None:
    """The 400 a provider's input cap gets when ``body["input"]`` is over ``limit``, or None.

    OpenRouter's schema has no cap; the provider refuses, and OpenRouter relays its
    error as it relays every provider 400 (``"Provider returned error"``, the
    provider's JSON in ``metadata.raw``). The raw error is OpenAI's for a string over
    its maximum length; how the live service words this one is unconfirmed.

    Examples:
        >>> speech_too_long({"input": "x" * 5}, 4)[1]["error"]["message"]
        'Provider returned error'
    """
    text = str(body.get("input", ""))
    if limit is None or len(text) <= limit:
        return None
    raw = json.dumps(
        {
            "error": {
                "message": (
                    f"Invalid 'input': string too long. Expected a string with maximum "
                    f"length {limit}, but got a string with length {len(text)} instead."
                ),
                "type": "invalid_request_error",
                "param": "input",
                "code": "string_above_max_length",
            }
        },
        separators=(",", ":"),
    )
    metadata = {"raw": raw, "provider_name": "OpenAI", "is_byok": False}
    return 400, {"error": {"code": 400, "message": "Provider returned error", "metadata": metadata}}


def speech_cost(body: dict[str, Any]) -> float:
    """What speaking ``body["input"]`` costs on its model (per character)."""
    return SPEECH_MODELS.get(str(body.get("model")), 0.0) * len(str(body.get("input", "")))


def mp3_from_pcm(pcm: bytes, sample_rate: int = 24000) -> bytes:
    """Encode PCM16 mono as MP3 with PyAV when it is installed, else silent MPEG frames.

    The fallback is a valid MP3 of about the same length (an ID3 tag, then frames a
    decoder plays as silence), so clients still get real MPEG audio to pass along.
    """
    try:
        import av
    except ImportError:
        return _silent_mp3(len(pcm) / 2 / sample_rate)
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream: Any = container.add_stream("libmp3lame", rate=sample_rate)
        stream.layout = "mono"
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm[: len(pcm) // 2 * 2])
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def _silent_mp3(seconds: float) -> bytes:
    frames = max(1, math.ceil(seconds * 44100 / 1152))
    id3 = b"ID3\x04\x00\x00" + struct.pack(">I", 0)
    return id3 + (_MP3_FRAME_HEADER + bytes(_MP3_FRAME_BYTES - 4)) * frames


# -- transcription -----------------------------------------------------------------------------


def check_transcription(body: Any) -> Rejection | None:
    """The error ``/audio/transcriptions`` sends for this parsed JSON body, or None.

    Examples:
        >>> check_transcription({"model": "openai/whisper-1", "input_audio": {"data": "AAAA"}})[0]
        400
    """
    if not isinstance(body, dict):
        return zod_error(([], "invalid_type", "Invalid input: expected object"))
    issues = []
    if not isinstance(body.get("model"), str):
        issues.append(
            _required(["model"])
            if "model" not in body
            else _wrong_type(["model"], "string", body["model"])
        )
    spec = body.get("input_audio")
    if not isinstance(spec, dict):
        issues.append(_required(["input_audio"], "object"))
    else:
        for name in ("data", "format"):
            if not isinstance(spec.get(name), str):
                issues.append(_required(["input_audio", name]))
    language = body.get("language")
    if language is not None and not isinstance(language, str):
        issues.append(_wrong_type(["language"], "string", language))
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float))
    ):
        issues.append(_wrong_type(["temperature"], "number", temperature))
    fmt = body.get("response_format", "json")
    if fmt not in ("json", "verbose_json", "text", "srt", "vtt"):
        issues.append(
            (
                ["response_format"],
                "invalid_value",
                'Invalid option: expected one of "json"|"verbose_json"',
            )
        )
    if issues:
        return zod_error(*issues)
    if fmt in ("text", "srt", "vtt"):
        return gateway_error(
            400, f"response_format '{fmt}' is not supported; use json or verbose_json"
        )
    model = body["model"]
    if model not in TRANSCRIPTION_MODELS:
        return _not_exist(model)
    assert isinstance(spec, dict)
    data = spec["data"]
    if data.startswith("data:"):
        return gateway_error(400, "Invalid base64: send plain base64, not a data: URI")
    try:
        audio = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return gateway_error(400, "Invalid base64 in input_audio.data")
    if not audio:
        return gateway_error(400, "input_audio.data is empty")
    if spec["format"] not in _STT_FORMATS:
        return gateway_error(400, f"Unsupported audio format '{spec['format']}'")
    return None


def _audio_seconds(audio: bytes, fmt: str) -> float:
    if fmt == "wav":
        try:
            with wave.open(io.BytesIO(audio), "rb") as wav:
                return wav.getnframes() / float(wav.getframerate())
        except (wave.Error, EOFError, ZeroDivisionError):
            pass
    return len(audio) / 16000  # 128 kbit/s, the usual compressed bitrate


def transcription_usage(body: dict[str, Any], text: str, cost: float | None) -> dict[str, Any]:
    """``usage`` as the model bills it: seconds (duration-priced) or tokens, and ``cost``."""
    spec = body["input_audio"]
    seconds = _audio_seconds(base64.b64decode(spec["data"]), spec["format"])
    per_second = TRANSCRIPTION_MODELS.get(body["model"])
    if per_second is not None:
        billed = max(1, math.ceil(seconds))
        return {"seconds": billed, "cost": cost if cost is not None else billed * per_second}
    input_tokens = max(1, round(seconds * 10))
    output_tokens = max(1, len(text.split()))
    usage_cost = input_tokens * 1.25e-6 + output_tokens * 5e-6
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost": cost if cost is not None else usage_cost,
    }


def clip_transcript(audio_b64: str) -> str | None:
    """The transcript of a clip shipped in ``testing/assets``, when these are its bytes."""
    try:
        audio = base64.b64decode(audio_b64)
    except (binascii.Error, ValueError):
        return None
    return _words_of_clips().get(audio)


@cache
def _words_of_clips() -> dict[bytes, str]:
    # Read once: every transcription request looks its audio up here.
    return {clip_wav(name): words_of_clip(name) for name in CLIPS}


# -- generation --------------------------------------------------------------------------------


def generation_record(
    gen_id: str,
    *,
    api_type: str,
    model: str,
    cost: float,
    started: float,
    streamed: bool | None = None,
    cancelled: bool = False,
    counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``data`` of ``GET /generation``: every documented key, null where it does not apply.

    ``streamed`` None: as the endpoint streams (speech does, transcription does not);
    ``counts`` fills token counters and finish reasons (a chat completion's)."""
    latency_ms = max(1, round((time.time() - started) * 1000))
    created = datetime.fromtimestamp(started, tz=UTC).isoformat()
    keys = [
        "request_id",
        "upstream_id",
        "router",
        "data_region",
        "workspace_id",
        "app_id",
        "preset_id",
        "session_id",
        "origin",
        "http_referer",
        "user_agent",
        "external_user",
        "service_tier",
        "provider_responses",
        "response_cache_source_id",
        "upstream_inference_cost",
        "cache_discount",
        "moderation_latency",
        "tokens_prompt",
        "tokens_completion",
        "native_tokens_prompt",
        "native_tokens_completion",
        "native_tokens_reasoning",
        "native_tokens_cached",
        "native_tokens_completion_images",
        "num_media_prompt",
        "num_media_completion",
        "num_input_audio_prompt",
        "num_search_results",
        "num_fetches",
        "web_search_engine",
        "finish_reason",
        "native_finish_reason",
    ]
    record: dict[str, Any] = dict.fromkeys(keys)
    record.update(
        id=gen_id,
        api_type=api_type,
        model=model,
        provider_name=model.split("/", 1)[0].title(),
        total_cost=cost,
        usage=cost,
        is_byok=False,
        created_at=created,
        latency=latency_ms,
        generation_time=latency_ms,
        streamed=api_type == "tts" if streamed is None else streamed,
        cancelled=cancelled,
    )
    record.update({key: value for key, value in (counts or {}).items() if key in record})
    return record


# -- /models -----------------------------------------------------------------------------------

_TEXT_CHAT_MODELS = ("openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5")
_AUDIO_CHAT_MODELS = (
    "openai/gpt-audio",
    "openai/gpt-audio-mini",
    "openai/gpt-4o-audio-preview",
    "google/lyria-3-clip-preview",
    "google/lyria-3-pro-preview",
)


def _entry(slug: str, inputs: list[str], outputs: list[str], voices: Any = None) -> dict[str, Any]:
    return {
        "id": slug,
        "name": slug,
        "architecture": {
            "input_modalities": inputs,
            "output_modalities": outputs,
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
        },
        "supported_voices": voices,
    }


def model_catalog(extra: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Every model the server knows, shaped like ``/models`` entries, plus ``extra``."""
    voices = ["alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"]
    models = [_entry(m, ["text", "image", "file"], ["text"]) for m in _TEXT_CHAT_MODELS]
    models += [_entry(m, ["text", "audio"], ["text", "audio"]) for m in _AUDIO_CHAT_MODELS]
    models += [_entry(m, ["text"], ["speech"], voices) for m in SPEECH_MODELS]
    models += [_entry(m, ["audio"], ["transcription"]) for m in TRANSCRIPTION_MODELS]
    return models + list(extra)


def filter_models(
    models: list[dict[str, Any]], output_modalities: str | None
) -> list[dict[str, Any]]:
    """``/models`` answers text-output models unless ``output_modalities`` names others.

    A comma-separated list keeps models with any of them; ``all`` keeps every model.
    """
    wanted = {m.strip() for m in (output_modalities or "text").split(",") if m.strip()}
    if "all" in wanted:
        return models
    return [m for m in models if wanted & set(m["architecture"]["output_modalities"])]
