"""Connection settings shared by the speech and transcription runnables.

The same fields, defaults and checks as `ChatOpenRouterAudio` (its validators
are reused, not copied), and the same `CompletionsClient`: one retry policy,
one error mapping, one place that keeps the key out of errors.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Self

import httpx
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
)

from langchain_openrouter_audio._client import CompletionsClient
from langchain_openrouter_audio.chat_models import (
    DEFAULT_BASE_URL,
    ChatOpenRouterAudio,
    open_client,
)

__all__ = ["OpenRouterConnection"]

# Guards lazy creation of the client, as the chat model's does.
_CLIENT_LOCK = threading.Lock()


class OpenRouterConnection(BaseModel):
    """Where and how to reach OpenRouter: key, URL, timeout, retries, headers."""

    # hide_input_in_errors: a refused api_key must not come back in the error text.
    model_config = ConfigDict(
        populate_by_name=True,
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
        protected_namespaces=(),
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

    _client: CompletionsClient | None = PrivateAttr(default=None)

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, key: SecretStr | None) -> SecretStr | None:
        return ChatOpenRouterAudio._check_api_key(key)

    @field_validator("default_headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str] | None) -> dict[str, str] | None:
        return ChatOpenRouterAudio._check_headers(headers)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, timeout: float | httpx.Timeout | None) -> float | httpx.Timeout | None:
        return ChatOpenRouterAudio._check_timeout(timeout)

    @field_validator("max_retries")
    @classmethod
    def _check_retries(cls, value: int) -> int:
        return ChatOpenRouterAudio._check_retries(value)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, url: str) -> str:
        return ChatOpenRouterAudio._check_base_url(url)

    @property
    def client(self) -> CompletionsClient:
        """The HTTP client, created on first use and reused (pooled connections)."""
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = open_client(self)
        return self._client

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy; the copy makes its own connections, and `update` values are validated."""
        copied = super().model_copy(deep=deep)
        for name, value in (update or {}).items():
            type(self).__pydantic_validator__.validate_assignment(copied, name, value)
        copied._client = None
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """A deep copy that opens its own connections; injected HTTP clients are shared."""
        memo = {} if memo is None else memo
        if self._client is not None:  # it holds locks and sockets: never copied
            memo[id(self._client)] = None
        for injected in (self.http_client, self.http_async_client):
            if injected is not None:
                memo[id(injected)] = injected
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the settings, not the connections: the unpickled copy opens its own."""
        if self.http_client is not None or self.http_async_client is not None:
            msg = (
                f"a {type(self).__name__} with an injected http_client/http_async_client "
                "cannot be pickled (a client holds sockets); pickle one without and inject it "
                "again"
            )
            raise TypeError(msg)
        state = super().__getstate__()
        state["__pydantic_private__"] = {
            **(state.get("__pydantic_private__") or {}),
            "_client": None,
        }
        return state

    def close(self) -> None:
        """Close the pooled sync HTTP client (injected clients are left open)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients (injected clients are left open)."""
        if self._client is not None:
            await self._client.aclose()


def provider_body(options: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """OpenRouter's `provider` object for per-provider passthrough options."""
    if not options:
        return None
    for slug, value in options.items():
        if not isinstance(value, dict):
            msg = f"provider_options[{slug!r}] must be a dict of that provider's options"
            raise ValueError(msg)
    return {"options": {slug: dict(value) for slug, value in options.items()}}
