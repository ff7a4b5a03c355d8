"""The script of one scripted response (`Reply`) and helpers that build common ones."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "WIRES",
    "Reply",
    "Wire",
    "error_reply",
    "rate_limit_reply",
    "speech_reply",
    "text_reply",
    "tool_call_reply",
]

Wire = Literal["openrouter", "openai", "azure", "tidy"]
"""Which real server's stream shape a `Reply` imitates (see `Reply`)."""

WIRES: tuple[Wire, ...] = ("openrouter", "openai", "azure", "tidy")

# OpenRouter's typed errors carry `metadata.error_type`; clients branch on it, so the
# builder fills it in for the statuses the gateway documents.
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
}


def _default_stream_error() -> dict[str, Any]:
    return {
        "code": 502,
        "message": "Provider disconnected",
        "metadata": {"error_type": "provider_unavailable"},
    }


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the test server answers to one ``POST /chat/completions``.

    Content: ``text`` (``content`` deltas), ``transcript`` and ``pcm`` (raw PCM16 mono
    24 kHz; sent as ``delta.audio`` only when the request asked for audio, otherwise
    the transcript becomes ``content``), ``audio_id``/``expires_at`` (generated when
    None), ``tool_calls`` (``{"id", "name", "arguments"}`` with JSON-string
    arguments), ``finish_reason`` (None: ``"tool_calls"`` or ``"stop"``), ``usage``
    (None: computed deterministically), ``model`` (None: the requested one),
    ``provider``, ``cost``.

    Wire shape (``wire``), each one taken from recorded traffic of live servers:

    * ``"openrouter"`` (default): ``gen-`` ids, ``provider`` and ``native_finish_reason``
      on every chunk, ``: OPENROUTER PROCESSING`` comments, ``refusal: null`` (and
      ``content: null`` beside audio) in the first delta, the audio ``id`` with the
      first transcript piece, and ``finish_reason: "stop"`` sent twice, the second
      time with the usage.
    * ``"openai"``: what OpenAI's API streams for gpt-audio. ``chatcmpl-`` ids,
      ``service_tier``, ``system_fingerprint``, ``usage: null`` and random
      ``obfuscation`` padding on every chunk; a first delta of only
      ``{"role": "assistant", "refusal": null}``; chunks with no ``choices`` key at all
      (``filler_chunks`` after each content chunk); transcript and data never in one
      chunk; **no finish reason on audio replies** (the stream ends with ``[DONE]``);
      the ``choices: []`` usage chunk, then ``{"audio": {"expires_at": N}}`` alone.
    * ``"azure"``: Azure OpenAI's variant: alphabetically sorted keys, a first
      ``prompt_filter_results`` chunk, ``content_filter_results`` on every choice and
      the ``expires_at`` chunk *before* the usage chunk.
    * ``"tidy"``: the documented shape, one event per piece, nothing extra (the
      test server's shape before it learned the real ones).

    Errors: ``status`` != 200 sends ``{"error": error}`` as JSON with ``headers``;
    ``error`` with ``status=200`` sends the same body with HTTP 200 (what a relay sends
    when generation fails before the stream starts, even to a streamed request).
    ``whole_completion`` answers with one ``chat.completion`` JSON body (HTTP 200,
    ``application/json``, ``message.audio.data`` holding the whole clip when audio was
    asked for) even when the request streamed.

    Raw bytes (hostile or recorded servers; see `raw_reply` and `recorded_reply`):
    ``raw_body`` is sent as the body verbatim, with ``status``, ``headers`` and
    ``content_type`` (None: ``text/event-stream``; ``""``: no Content-Type at all). A
    tuple of byte strings is written one HTTP chunk per item; ``raw_cut`` closes the
    connection after the last byte without ending the body. No gateway rendering,
    no ``[DONE]`` added.

    Stream shaping: ``text_piece_chars``, ``audio_piece_bytes`` (each piece base64-encoded
    on its own; None: the whole clip in one delta, as OpenRouter sometimes sends),
    ``interleave`` (alternate transcript and audio deltas), ``comments``
    (``: OPENROUTER PROCESSING`` lines first, plus one mid-stream when > 1; None: 1 on
    ``openrouter``/``tidy``, 0 on ``openai``/``azure``), ``filler_chunks`` (None: 2 on
    ``openai``/``azure``, else 0), ``crlf``, ``write_size`` (re-cut the byte stream into
    writes of this size), ``event_delay_s``, ``headers_delay_s``.

    Faults, counted in JSON ``data:`` events already sent (filler chunks included):
    ``error_after`` (send the mid-stream ``stream_error`` event, end without ``[DONE]``),
    ``cut_after`` (close without the final HTTP chunk), ``stall_after`` + ``stall_s``
    (pause, then go on); a count larger than the number of events never fires.
    ``reset_before_headers`` drops the connection with a TCP RST; ``omit_done`` /
    ``omit_finish`` leave out ``[DONE]`` / the finish chunk(s).

    Examples:
        >>> Reply(text="Hi!", text_piece_chars=1, comments=3).effective_finish_reason
        'stop'
        >>> Reply(transcript="Hello", pcm=bytes(4800), wire="openai").wire
        'openai'
    """

    # Content
    text: str = ""
    transcript: str = ""
    pcm: bytes = b""
    audio_id: str | None = None
    expires_at: int | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    provider: str = "OpenAI"
    cost: float = 0.0012
    # HTTP error response
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    # Stream shaping
    wire: Wire = "openrouter"
    whole_completion: bool = False
    text_piece_chars: int = 4
    audio_piece_bytes: int | None = 4800
    interleave: bool = False
    comments: int | None = None
    filler_chunks: int | None = None
    crlf: bool = False
    write_size: int | None = None
    event_delay_s: float = 0.0
    headers_delay_s: float = 0.0
    # Faults
    error_after: int | None = None
    stream_error: dict[str, Any] = field(default_factory=_default_stream_error)
    cut_after: int | None = None
    stall_after: int | None = None
    stall_s: float = 0.0
    reset_before_headers: bool = False
    omit_done: bool = False
    omit_finish: bool = False
    # Raw bytes
    raw_body: bytes | tuple[bytes, ...] | None = None
    content_type: str | None = None
    raw_cut: bool = False

    def __post_init__(self) -> None:
        if self.text_piece_chars < 1:
            raise ValueError("text_piece_chars must be >= 1")
        if self.audio_piece_bytes is not None and self.audio_piece_bytes < 1:
            raise ValueError("audio_piece_bytes must be >= 1 or None")
        if self.wire not in WIRES:
            raise ValueError(f"wire must be one of {WIRES}, not {self.wire!r}")
        if self.filler_chunks is not None and self.filler_chunks < 0:
            raise ValueError("filler_chunks must be >= 0 or None")
        if isinstance(self.raw_body, list):
            raise TypeError("raw_body takes bytes or a tuple of bytes, not a list")
        if self.write_size is not None and self.write_size < 1:
            raise ValueError("write_size must be >= 1 or None")
        if self.comments is not None and self.comments < 0:
            raise ValueError("comments must be >= 0 or None")
        for call in self.tool_calls:
            missing = {"id", "name", "arguments"} - call.keys()
            if missing:
                raise ValueError(f"tool call is missing {sorted(missing)}: {call!r}")

    @property
    def effective_finish_reason(self) -> str:
        """``finish_reason``, or ``"tool_calls"``/``"stop"`` when it was left as None."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def effective_comments(self) -> int:
        """``comments``, or the wire's habit when it was left as None."""
        if self.comments is not None:
            return self.comments
        return 1 if self.wire in ("openrouter", "tidy") else 0

    @property
    def effective_filler_chunks(self) -> int:
        """``filler_chunks``, or the wire's habit when it was left as None."""
        if self.filler_chunks is not None:
            return self.filler_chunks
        return 2 if self.wire in ("openai", "azure") else 0


def text_reply(text: str, **kw: Any) -> Reply:
    """A plain text answer.

    Examples:
        >>> text_reply("Hello", text_piece_chars=2).text
        'Hello'
    """
    return Reply(text=text, **kw)


def speech_reply(pcm: bytes, transcript: str, **kw: Any) -> Reply:
    """A spoken answer: raw PCM16 mono 24 kHz plus its transcript.

    Examples:
        >>> speech_reply(b"\\x00\\x00" * 2400, "Hi").transcript
        'Hi'
    """
    return Reply(pcm=pcm, transcript=transcript, **kw)


def tool_call_reply(
    name: str, args: dict[str, Any], *, call_id: str | None = None, **kw: Any
) -> Reply:
    """One tool call; pass ``tool_calls=[...]`` to `Reply` directly for several.

    Examples:
        >>> tool_call_reply("get_weather", {"city": "Oslo"}, call_id="call_1").tool_calls
        [{'id': 'call_1', 'name': 'get_weather', 'arguments': '{"city": "Oslo"}'}]
    """
    call = {
        "id": call_id if call_id is not None else f"call_{secrets.token_hex(12)}",
        "name": name,
        "arguments": json.dumps(args),
    }
    return Reply(tool_calls=[call], **kw)


def error_reply(
    status: int,
    message: str,
    *,
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> Reply:
    """An OpenRouter error response: ``{"error": {"code", "message", "metadata"}}``.

    Without ``metadata``, a documented status gets ``{"error_type": ...}``.

    Examples:
        >>> error_reply(402, "Insufficient credits").error["metadata"]
        {'error_type': 'payment_required'}
    """
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    elif status in _ERROR_TYPES:
        error["metadata"] = {"error_type": _ERROR_TYPES[status]}
    return Reply(status=status, error=error, headers=dict(headers or {}), **kw)


def rate_limit_reply(retry_after: str | float | None = 1, **kw: Any) -> Reply:
    """A 429 with OpenRouter's body and, unless ``retry_after`` is None, ``Retry-After``.

    Examples:
        >>> rate_limit_reply(2.5).headers
        {'Retry-After': '2.5'}
    """
    headers = dict(kw.pop("headers", None) or {})
    if retry_after is not None:
        headers["Retry-After"] = _seconds_header(retry_after)
    error = {
        "code": 429,
        "message": "Rate limit exceeded",
        "metadata": {"error_type": "rate_limit_exceeded"},
    }
    return Reply(status=429, error=error, headers=headers, **kw)


def _seconds_header(value: str | float) -> str:
    if isinstance(value, str):
        return value
    # "1", not "1.0": a whole number is what servers send and what naive parsers expect.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def default_error(status: int) -> dict[str, Any]:
    """The error object sent for a non-200 `Reply` that has no ``error``."""
    try:
        message = HTTPStatus(status).phrase
    except ValueError:
        message = "Error"
    return {"code": status, "message": message}
