"""Connection settings shared by the speech and transcription runnables.

The same fields and defaults as `ChatOpenRouterAudio`; the checks, the pooled
`CompletionsClient`, copies, pickles and closing are `ClientOwner`'s, as the chat
model's are: one retry policy, one error mapping, one place that keeps the key out
of errors.
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.utils import from_env, secret_from_env
from pydantic import AliasChoices, ConfigDict, Field, SecretStr

from langchain_openrouter_audio._client_owner import DEFAULT_BASE_URL, ClientOwner

__all__ = ["OpenRouterConnection"]


class OpenRouterConnection(ClientOwner):
    """Where and how to reach OpenRouter: key, URL, timeout, retries, headers."""

    # hide_input_in_errors comes from ClientOwner: a refused api_key never shows.
    model_config = ConfigDict(
        populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=()
    )

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("OPENROUTER_API_KEY", default=None),
        validation_alias=AliasChoices("api_key", "openrouter_api_key"),
        repr=False,
    )
    """OpenRouter API key; defaults to the `OPENROUTER_API_KEY` environment variable."""
    base_url: str = Field(default_factory=from_env("OPENROUTER_BASE_URL", default=DEFAULT_BASE_URL))
    """API root; defaults to `OPENROUTER_BASE_URL`, else OpenRouter's."""
    timeout: float | httpx.Timeout | None = 60.0
    """Seconds (or an `httpx.Timeout`); for streams, the longest wait for the next bytes."""
    max_retries: int = 2
    """Retries after the first attempt (connection errors, 408, 429, 500, 502, 503, 504)."""
    app_url: str | None = None
    """Sent as `HTTP-Referer` for OpenRouter's app attribution."""
    app_title: str | None = None
    """Sent as `X-Title` / `X-OpenRouter-Title`."""
    default_headers: dict[str, str] | None = Field(default=None, repr=False, exclude=True)
    """Extra headers on every request; never shown or serialized."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own `httpx.Client` (proxies, certificates); we do not close it."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)


def provider_body(options: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """OpenRouter's `provider` object for per-provider passthrough options."""
    if not options:
        return None
    for slug, value in options.items():
        if not isinstance(value, dict):
            msg = f"provider_options[{slug!r}] must be a dict of that provider's options"
            raise ValueError(msg)
    return {"options": {slug: dict(value) for slug, value in options.items()}}
