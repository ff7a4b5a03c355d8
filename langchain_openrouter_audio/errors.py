"""The exceptions this package raises.

Every error that comes from OpenRouter (or from talking to it) is an
`OpenRouterError`; catch that, or one precise subclass. Nobody should have to
parse a message:

```python
from langchain_openrouter_audio import ChatOpenRouterAudio, RateLimitError

try:
    ChatOpenRouterAudio().invoke("hi")
except RateLimitError as err:
    print(err.status_code, err.retry_after, err.message)
```

Bad *input* (an unknown audio format, a corrupt clip, a bad tool schema) is a
`ValueError` raised before any request is sent; it is not an `OpenRouterError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "IncompleteStreamError",
    "InsufficientCreditsError",
    "MalformedStreamError",
    "NotFoundError",
    "OpenRouterError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "StreamError",
    "error_for_status",
]


class OpenRouterError(Exception):
    """Base class: something went wrong between us and OpenRouter.

    Attributes:
        message: OpenRouter's own message (or ours, for transport failures).
        status_code: the HTTP status, when there was one.
        code: OpenRouter's `error.code` (an int status or a string such as
            `"server_error"`; the docs show both).
        metadata: OpenRouter's `error.metadata`: moderation `reasons`, the
            provider's `raw` error, `error_type`, ...
        retry_after: seconds the server asked us to wait, when it said so.
        body: the response body as text (capped), when there was one.

    The text of an error is cut to a few KB; the API key is redacted from
    anything the server sent, should it echo it.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | str | None = None,
        metadata: dict[str, Any] | None = None,
        retry_after: float | None = None,
        body: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after
        self.body = body
        super().__init__(self._describe())

    def redact(self, secrets: Iterable[str]) -> None:
        """Replace each of `secrets` wherever the server's text holds it."""
        secrets = [s for s in secrets if s]
        if not secrets:
            return
        self.message = _redact(self.message, secrets)
        self.metadata = _redact(self.metadata, secrets)
        if self.body is not None:
            self.body = _redact(self.body, secrets)
        self.args = (self._describe(),)

    def _describe(self) -> str:
        parts = [_clip(self.message)]
        if self.status_code is not None:
            parts.insert(0, f"[{self.status_code}]")
        raw = self.metadata.get("raw")
        if raw:
            parts.append(f"(provider said: {str(raw)[:500]})")
        reasons = self.metadata.get("reasons")
        if isinstance(reasons, list) and reasons:
            parts.append(f"(reasons: {', '.join(map(str, reasons))})")
        return _clip(" ".join(parts))


class BadRequestError(OpenRouterError):
    """400: OpenRouter or the provider refused the request as malformed."""


class AuthenticationError(OpenRouterError):
    """401: the API key is missing, invalid or disabled."""


class InsufficientCreditsError(OpenRouterError):
    """402: the account has run out of credits."""


class PermissionDeniedError(OpenRouterError):
    """403: forbidden, e.g. a moderation flag or a guardrail (see `metadata`)."""


class NotFoundError(OpenRouterError):
    """404: no such model, or no endpoint meets the routing constraints."""


class RequestTimeoutError(OpenRouterError):
    """408: OpenRouter timed out waiting for the provider. Retried."""


class PayloadTooLargeError(OpenRouterError):
    """413: the request body is over OpenRouter's limit (usually long audio)."""


class RateLimitError(OpenRouterError):
    """429: rate limited. Retried, honouring `Retry-After`."""


class ServerError(OpenRouterError):
    """5xx: OpenRouter or the provider failed. 500/502/503/504 are retried."""


class APIConnectionError(OpenRouterError):
    """The connection failed (refused, reset, DNS). Retried before any chunk arrived."""


class APITimeoutError(APIConnectionError):
    """No byte arrived within `timeout` seconds."""


class StreamError(OpenRouterError):
    """The reply failed after it had started.

    Raised for OpenRouter's mid-stream error events (HTTP 200 with a
    top-level `error`) and, as `IncompleteStreamError`, for streams that end
    or break early. Never retried: part of the reply already reached you.

    Attributes:
        partial: an `AIMessage` holding everything that arrived before the
            failure (transcript, audio, tool calls), so nothing is lost.
    """

    def __init__(
        self,
        message: str,
        *,
        partial: AIMessage | None = None,
        status_code: int | None = None,
        code: int | str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.partial = partial
        super().__init__(message, status_code=status_code, code=code, metadata=metadata)


class IncompleteStreamError(StreamError):
    """The stream was cut, stalled past `timeout`, or ended with neither `[DONE]`
    nor a finish reason; or, for a long text that `OpenRouterSpeech` speaks over
    several requests, a later request failed (its status, code and metadata are here,
    the request's own error is `__cause__`)."""


class MalformedStreamError(IncompleteStreamError):
    """The server sent something that is not OpenRouter's protocol: undecodable
    JSON, a field of the wrong type, audio that is not base64, an oversize body.
    What arrived before it is in `partial`."""


_MAX_TEXT = 4000
_REDACTED = "[REDACTED]"


def _clip(text: str) -> str:
    if len(text) <= _MAX_TEXT:
        return text
    return f"{text[:_MAX_TEXT]}... [{len(text) - _MAX_TEXT} more characters]"


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, _REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


def _schema_issues(message: str) -> str:
    """`input: expected string, received undefined; ...` from a ZodError's JSON issue list."""
    try:
        issues = json.loads(message)
    except ValueError:
        return f"invalid request: {message}"
    if not isinstance(issues, list):
        return f"invalid request: {message}"
    parts = []
    for issue in issues:
        if isinstance(issue, dict):
            path = ".".join(str(p) for p in issue.get("path") or []) or "(body)"
            parts.append(f"{path}: {issue.get('message', 'invalid')}")
    return "invalid request: " + "; ".join(parts) if parts else f"invalid request: {message}"


_STATUS_ERRORS: dict[int, type[OpenRouterError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_for_status(
    status_code: int,
    body: Any,
    *,
    retry_after: float | None = None,
    body_cut: bool = False,
    text: str | None = None,
) -> OpenRouterError:
    """Build the typed error for an HTTP error response.

    `body` is the decoded JSON body (OpenRouter's `{"error": {...}}`) or the
    raw text when it was not JSON; `body_cut` says it was cut at the size cap;
    `text` is the body as received, kept on the error as `body`.
    """
    message = f"HTTP {status_code}"
    code: int | str | None = None
    metadata: dict[str, Any] | None = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        if error.get("name") == "ZodError":
            # The request validator's shape: no code, the issues as a JSON string.
            message = _schema_issues(message)
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, (int, str)) else None
        meta = error.get("metadata")
        metadata = meta if isinstance(meta, dict) else None
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    if body_cut:
        message += " (the error body was cut at the size cap)"
    cls = _STATUS_ERRORS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else OpenRouterError
    return cls(
        message,
        status_code=status_code,
        code=code,
        metadata=metadata,
        retry_after=retry_after,
        body=text if text is not None else body if isinstance(body, str) else None,
    )
