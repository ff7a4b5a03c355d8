"""`ClientOwner`: a model that reaches OpenRouter through one pooled HTTP client.

The chat model and the speech and transcription runnables share it. Each declares
the connection settings as its own fields (so each keeps its own field order, repr
and docs); this base checks them, opens one `CompletionsClient` from them on first
use, and keeps that client out of copies and pickles: the settings travel, the
sockets do not.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, field_validator

from langchain_openrouter_audio._client import CompletionsClient

__all__ = ["DEFAULT_BASE_URL", "ClientOwner"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

# Guards lazy creation of a model's HTTP client when threads race to the first call.
_CLIENT_LOCK = threading.Lock()

# What an HTTP header value may hold (RFC 9110 field-value, visible ASCII and inner spaces).
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")


class ClientOwner(BaseModel):
    """Checks the connection settings and owns the HTTP client made from them."""

    # A refused api_key must not come back in the error text.
    model_config = ConfigDict(hide_input_in_errors=True)

    if TYPE_CHECKING:
        # The subclass's fields (not declared here: pydantic would put them first).
        api_key: SecretStr | None
        base_url: str
        timeout: float | httpx.Timeout | None
        max_retries: int
        app_url: str | None
        app_title: str | None
        default_headers: dict[str, str] | None
        http_client: httpx.Client | None
        http_async_client: httpx.AsyncClient | None

    _client: CompletionsClient | None = PrivateAttr(default=None)
    # Set on a copy that uses the connections of the model it was made from (the chat
    # model's `with_structured_output` binds one): it opens and closes none of its own.
    _connections_of: ClientOwner | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        # Pydantic gives a class with private attributes a `model_post_init` of its own
        # unless it declares one; that one would hide the next in line, langchain-core's,
        # which records the package versions in `metadata["lc_versions"]` for traces.
        super().model_post_init(context)

    # -- checks (check_fields=False: the fields are the subclass's) ----------

    @field_validator("api_key", check_fields=False)
    @classmethod
    def _check_api_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Strip a pasted key's whitespace; refuse one that cannot travel in a header."""
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if value and not _KEY_CHARS.fullmatch(value):
            bad = next(i for i, c in enumerate(value) if not _KEY_CHARS.fullmatch(c))
            # Never echo the key, not even in part.
            msg = (
                f"api_key has a character that cannot be sent in an HTTP header (at position "
                f"{bad} of {len(value)}); copy the key again from openrouter.ai/keys"
            )
            raise ValueError(msg)
        return SecretStr(value)

    @field_validator("default_headers", check_fields=False)
    @classmethod
    def _check_headers(cls, headers: dict[str, str] | None) -> dict[str, str] | None:
        for name, value in (headers or {}).items():
            if not _HEADER_VALUE.fullmatch(str(value)):
                raise ValueError(f"default_headers[{name!r}] is not a valid HTTP header value")
        return headers

    @field_validator("timeout", check_fields=False)
    @classmethod
    def _check_timeout(cls, timeout: float | httpx.Timeout | None) -> float | httpx.Timeout | None:
        values = (
            [timeout.connect, timeout.read, timeout.write, timeout.pool]
            if isinstance(timeout, httpx.Timeout)
            else [timeout]
        )
        for value in values:
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
        return timeout

    @field_validator("max_retries", check_fields=False)
    @classmethod
    def _check_retries(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"max_retries must be 0 or more, got {value}")
        return value

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _check_base_url(cls, url: str) -> str:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise ValueError(f"base_url has an invalid port: {url!r}") from None
        if parts.username is not None or parts.password is not None:
            # They would show in repr, logs and errors; the key has its own field.
            raise ValueError("base_url must not carry credentials; pass the key as api_key")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must look like https://host/path, got {url!r}")
        if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
            raise ValueError(f"base_url must not carry a query or fragment, got {url!r}")
        return url

    # -- the client -------------------------------------------------------------

    @property
    def client(self) -> CompletionsClient:
        """The HTTP client, created on first use and reused (pooled connections)."""
        if self._connections_of is not None:
            return self._connections_of.client
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = self._open_client()
        return self._client

    def _open_client(self) -> CompletionsClient:
        """A client for these settings; without an API key, `ValueError` before any request."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        if not key:
            msg = "no OpenRouter API key: pass api_key=... or set OPENROUTER_API_KEY"
            raise ValueError(msg)
        headers = {"Authorization": f"Bearer {key}"}
        if self.app_url:
            headers["HTTP-Referer"] = self.app_url
        if self.app_title:
            headers["X-Title"] = headers["X-OpenRouter-Title"] = self.app_title
        headers.update(self.default_headers or {})
        return CompletionsClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=self.http_client,
            http_async_client=self.http_async_client,
            secrets=(key,),
        )

    # -- copies and pickles -----------------------------------------------------

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the model; the copy makes its own connections from its own settings.

        Unlike pydantic's default, `update` values are validated, so
        `update={"api_key": "..."}` stays a `SecretStr`.
        """
        copied = super().model_copy(deep=deep)
        for name, value in (update or {}).items():
            type(self).__pydantic_validator__.validate_assignment(copied, name, value)
        copied._client = None
        copied._connections_of = None
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        """A deep copy that opens its own connections; injected HTTP clients are shared.

        Pooled clients hold locks and sockets: they are never copied.
        """
        memo = {} if memo is None else memo
        # Copied as None, for this copy only: the memo is shared with whatever else is
        # being copied, which may hold the model whose connections a copy uses (an
        # agent's state with the model and its `with_structured_output` copy).
        pooled = {id(p) for p in (self._client, self._connections_of) if p is not None}
        before = {key: memo[key] for key in pooled if key in memo}
        memo.update(dict.fromkeys(pooled))
        for injected in (self.http_client, self.http_async_client):
            if injected is not None:
                memo[id(injected)] = injected
        try:
            return super().__deepcopy__(memo)
        finally:
            for key in pooled:
                if key in before:
                    memo[key] = before[key]
                else:
                    memo.pop(key, None)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the settings, not the connections: the unpickled model opens its own."""
        if self.http_client is not None or self.http_async_client is not None:
            msg = (
                f"a {type(self).__name__} with an injected http_client/http_async_client "
                "cannot be pickled (a client holds sockets); pickle one without and inject it "
                "again"
            )
            raise TypeError(msg)
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private.update(_client=None, _connections_of=None)
        state["__pydantic_private__"] = private
        return state

    # -- closing -----------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled sync HTTP client (injected clients are left open)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the pooled HTTP clients (injected clients are left open).

        Each event loop gets its own pooled client, closed when the loop shuts
        down its async generators (`asyncio.run` does). A loop you close by hand
        without `loop.shutdown_asyncgens()` keeps its client until the model is
        closed: `await llm.aclose()` in that loop before closing it.
        """
        if self._client is not None:
            await self._client.aclose()
