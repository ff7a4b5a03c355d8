"""The request checks OpenRouter (and OpenAI behind it) apply to chat-completion calls.

Audio output is for models that speak (``openai/gpt-audio*``, Google Lyria); the
gpt-audio family refuses text in, text out; other models answer text as usual.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any

from ._usage import input_audio_parts

__all__ = ["Rejection", "check_request", "gateway_error", "wants_audio"]

Rejection = tuple[int, dict[str, Any]]
"""An HTTP status and the JSON body to send instead of a reply."""

_INPUT_AUDIO_FORMATS = ("wav", "mp3")
# Chat models whose output_modalities include "audio": the gpt-audio family, Google Lyria.
_AUDIO_ONLY_MODELS = ("openai/gpt-audio", "openai/gpt-4o-audio", "openai/gpt-4o-mini-audio")
_SPEAKING_MODELS = (*_AUDIO_ONLY_MODELS, "google/lyria-")


def gateway_error(status: int, message: str) -> Rejection:
    """An error raised by OpenRouter itself."""
    return status, {"error": {"code": status, "message": message}}


def _provider_error(message: str) -> Rejection:
    # OpenRouter relays upstream 400s with the provider's own JSON as a string in `raw`.
    raw = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error"}},
        separators=(",", ":"),
    )
    return 400, {
        "error": {
            "code": 400,
            "message": "Provider returned error",
            "metadata": {"raw": raw, "provider_name": "OpenAI", "is_byok": False},
        }
    }


def wants_audio(body: Any) -> bool:
    """Whether the request asks for audio output (``"audio"`` in ``modalities``)."""
    modalities = body.get("modalities") if isinstance(body, dict) else None
    return isinstance(modalities, list) and "audio" in modalities


def _check_audio_output(body: dict[str, Any]) -> Rejection | None:
    if body.get("stream") is not True:
        return gateway_error(400, "Audio output requires stream: true")
    audio = body.get("audio")
    if not isinstance(audio, dict):
        return _provider_error("Missing required parameter: 'audio'.")
    if "format" not in audio:
        return _provider_error("Missing required parameter: 'audio.format'.")
    fmt = audio["format"]
    if fmt != "pcm16":
        return _provider_error(
            f"Unsupported value: 'audio.format' does not support {_show(fmt)} when "
            "stream=true. Supported values are: 'pcm16'."
        )
    return None


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _check_input_audio(body: dict[str, Any]) -> Rejection | None:
    for i, j, part in input_audio_parts(body):
        where = f"messages[{i}].content[{j}].input_audio"
        spec = part.get("input_audio")
        if not isinstance(spec, dict):
            return _provider_error(f"Missing required parameter: '{where}'.")
        data = spec.get("data")
        if not isinstance(data, str) or not data:
            return _provider_error(f"Missing required parameter: '{where}.data'.")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return _provider_error(
                f"Invalid '{where}.data': expected base64-encoded audio data "
                "(no URL, no data: prefix)."
            )
        if "format" not in spec:
            return _provider_error(f"Missing required parameter: '{where}.format'.")
        if spec["format"] not in _INPUT_AUDIO_FORMATS:
            return _provider_error(
                f"Invalid value for '{where}.format': {_show(spec['format'])}. "
                "Supported values are: 'wav' and 'mp3'."
            )
    return None


def check_request(body: Any, speaking: Collection[str] = ()) -> Rejection | None:
    """Return the error the gateway would send for this parsed JSON ``body``, or None.

    ``speaking`` names more models that produce audio (the server's extra catalog entries).

    Examples:
        >>> check_request({"model": "openai/gpt-audio", "messages": []})[0]
        400
    """
    if not isinstance(body, dict):
        return gateway_error(400, "Invalid JSON body: expected an object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return gateway_error(400, 'Input required: specify "prompt" or "messages"')
    if not isinstance(body.get("model"), str):
        return gateway_error(400, 'Invalid request: "model" must be a string')
    model = body["model"]
    if wants_audio(body):
        if not model.startswith(_SPEAKING_MODELS) and model not in speaking:
            # Text-output models (architecture.output_modalities == ["text"]) refuse it.
            return _provider_error("This model does not support audio output.")
        rejection = _check_audio_output(body)
        if rejection is not None:
            return rejection
    elif model.startswith(_AUDIO_ONLY_MODELS) and next(input_audio_parts(body), None) is None:
        return _provider_error(
            "This model requires that either input content or output modality contain audio."
        )
    return _check_input_audio(body)
