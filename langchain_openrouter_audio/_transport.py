"""The HTTP layer: httpx clients, retries, SSE streams, status -> exception.

The transport moves bytes and knows OpenRouter's HTTP conventions; it knows
nothing about LangChain messages. One instance per chat model, with pooled
clients created on first use (constructing a model does no I/O).

Retry policy: connection failures and 408/429/500/502/503/504 are retried
with exponential backoff and jitter, honouring `Retry-After` /
`retry-after-ms` up to a cap. A stream is retried only while opening it:
once its status is 200, chunks may have reached the caller and nothing is
retried, so no audio is ever delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from langchain_openrouter_audio._sse import SSEDecoder, SSELineTooLong
from langchain_openrouter_audio.errors import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    OpenRouterError,
    error_for_status,
)

__all__ = ["RETRYABLE_STATUS", "Transport", "parse_retry_after"]

logger = logging.getLogger("langchain_openrouter_audio")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Guards lazy creation of the sync client when threads race to the first call.
_CLIENT_LOCK = threading.Lock()

MAX_RETRY_AFTER = 60.0
"""Longest `Retry-After` we honour; a server asking for more gets this."""

_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, APIConnectionError):
        return True
    return isinstance(exc, OpenRouterError) and exc.status_code in RETRYABLE_STATUS


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, OpenRouterError) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER)
    return float(_backoff(state))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "OpenRouter request failed (%s: %s); retry %d in %.2fs",
        type(exc).__name__,
        exc,
        state.attempt_number,
        wait,
    )


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or HTTP-date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            if math.isfinite(wait := float(ms) / 1000.0):
                return wait
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        wait = float(value)
    except ValueError:
        pass
    else:
        return wait if math.isfinite(wait) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_error(response: httpx.Response) -> OpenRouterError:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = response.text
    return error_for_status(
        response.status_code, body, retry_after=parse_retry_after(response.headers)
    )


def _connection_error(err: httpx.TransportError, url: str) -> APIConnectionError:
    if isinstance(err, httpx.TimeoutException):
        return APITimeoutError(f"timed out talking to {url}: {type(err).__name__}")
    return APIConnectionError(f"could not reach {url}: {type(err).__name__}: {err}")


class _ChunkReader:
    """SSE bytes in, decoded OpenRouter chunks out, until `[DONE]`."""

    __slots__ = ("_decoder", "done")

    def __init__(self, max_line_bytes: int) -> None:
        self._decoder = SSEDecoder(max_line_bytes)
        self.done = False

    def feed(self, raw: bytes) -> list[dict[str, Any]]:
        out = []
        for event, data in self._decoder.feed(raw):
            if data == b"[DONE]":
                self.done = True
                break
            if (chunk := _decode_event(event, data)) is not None:
                out.append(chunk)
        return out


@contextlib.contextmanager
def _stream_failures() -> Iterator[None]:
    """Turn a failure while reading a started stream into `IncompleteStreamError`."""
    try:
        yield
    except httpx.TransportError as err:
        raise _broken_stream(err) from None
    except SSELineTooLong as err:
        raise IncompleteStreamError(str(err)) from None


def _decode_event(event: str, data: bytes) -> dict[str, Any] | None:
    if event != "message":
        # Unknown event types are skipped, unless they carry an error.
        try:
            parsed = json.loads(data)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) and "error" in parsed else None
    try:
        parsed = json.loads(data)
    except ValueError as err:
        raise IncompleteStreamError(f"malformed SSE data from OpenRouter: {err}") from None
    if not isinstance(parsed, dict):
        raise IncompleteStreamError(f"unexpected SSE data from OpenRouter: {data[:200]!r}")
    return parsed


class Transport:
    """Talks to `{base_url}/chat/completions`, sync and async.

    Args:
        base_url: e.g. `https://openrouter.ai/api/v1`.
        headers: sent on every request (auth, attribution, defaults).
        timeout: seconds; for streams this bounds each read, so a slow but
            steady stream never times out.
        max_retries: retries after the first attempt.
        http_client / http_async_client: injected clients (not closed by us).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float | None,
        max_retries: int,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        max_line_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._url = httpx.URL(self.url)  # parsed once, not on every request
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **headers,
        }
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}
        self._timeout = httpx.Timeout(timeout)
        self._max_retries = max(0, max_retries)
        # Injected clients belong to the caller: we never close them.
        self._owns_client = http_client is None
        self._client = http_client
        self._async_client = http_async_client
        self._loop_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._max_line_bytes = max_line_bytes

    # -- clients -------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """The pooled sync client, created on first use (one per transport, thread-safe)."""
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = httpx.Client(
                        timeout=self._timeout, follow_redirects=False, verify=_ssl_context()
                    )
        return self._client

    @property
    def async_client(self) -> httpx.AsyncClient:
        """The pooled async client of the running event loop.

        Pooled connections belong to the loop that opened them, so each loop
        gets its own client: `asyncio.run(llm.ainvoke(...))` twice must work.
        """
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            client = self._loop_clients[loop] = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                verify=_ssl_context(),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        return client

    def _retry_policy(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self._max_retries + 1),
            "wait": _wait,
            "retry": retry_if_exception(_is_retryable),
            "before_sleep": _log_retry,
            "reraise": True,
        }

    def _retrying(self) -> Retrying:
        return Retrying(**self._retry_policy())

    def _async_retrying(self) -> AsyncRetrying:
        return AsyncRetrying(**self._retry_policy())

    def _encode(self, body: dict[str, Any]) -> bytes:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    # -- sync ----------------------------------------------------------------

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a non-streamed request; return the decoded JSON reply."""
        content = self._encode(body)
        result: dict[str, Any] = self._retrying()(self._post_once, content)
        return result

    def _post_once(self, content: bytes) -> dict[str, Any]:
        request = self.client.build_request(
            "POST", self._url, content=content, headers=self._headers, timeout=self._timeout
        )
        try:
            response = self.client.send(request)
        except httpx.TransportError as err:
            raise _connection_error(err, self.url) from None
        if response.status_code != 200:
            raise _status_error(response)
        return _json_body(response)

    def stream(self, body: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """Send a streamed request; yield each decoded SSE chunk until `[DONE]`."""
        response = self._retrying()(self._open_stream, self._encode(body))
        reader = _ChunkReader(self._max_line_bytes)
        try:
            with _stream_failures():
                reads = response.iter_bytes()
                for raw in reads:
                    yield from reader.feed(raw)
                    if reader.done:
                        # Read to the end of the body so the connection goes
                        # back to the pool instead of being dropped.
                        for _ in reads:
                            pass
                        return
        finally:
            response.close()

    def _open_stream(self, content: bytes) -> httpx.Response:
        request = self.client.build_request(
            "POST", self._url, content=content, headers=self._stream_headers, timeout=self._timeout
        )
        try:
            response = self.client.send(request, stream=True)
        except httpx.TransportError as err:
            raise _connection_error(err, self.url) from None
        if response.status_code != 200:
            try:
                response.read()
            except httpx.TransportError as err:
                raise _connection_error(err, self.url) from None
            finally:
                response.close()
            raise _status_error(response)
        return response

    # -- async ---------------------------------------------------------------

    async def apost(self, body: dict[str, Any]) -> dict[str, Any]:
        """Async `post`."""
        content = self._encode(body)
        result: dict[str, Any] = await self._async_retrying()(self._apost_once, content)
        return result

    async def _apost_once(self, content: bytes) -> dict[str, Any]:
        client = self.async_client
        request = client.build_request(
            "POST", self._url, content=content, headers=self._headers, timeout=self._timeout
        )
        try:
            response = await client.send(request)
        except httpx.TransportError as err:
            raise _connection_error(err, self.url) from None
        if response.status_code != 200:
            raise _status_error(response)
        return _json_body(response)

    async def astream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Async `stream`."""
        response: httpx.Response = await self._async_retrying()(
            self._aopen_stream, self._encode(body)
        )
        reader = _ChunkReader(self._max_line_bytes)
        try:
            with _stream_failures():
                reads = response.aiter_bytes()
                async for raw in reads:
                    for chunk in reader.feed(raw):
                        yield chunk
                    if reader.done:
                        async for _ in reads:  # to the end, to keep the connection
                            pass
                        return
        finally:
            await response.aclose()

    async def _aopen_stream(self, content: bytes) -> httpx.Response:
        client = self.async_client
        request = client.build_request(
            "POST", self._url, content=content, headers=self._stream_headers, timeout=self._timeout
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as err:
            raise _connection_error(err, self.url) from None
        if response.status_code != 200:
            try:
                await response.aread()
            except httpx.TransportError as err:
                raise _connection_error(err, self.url) from None
            finally:
                await response.aclose()
            raise _status_error(response)
        return response

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the sync client this transport created (not an injected one)."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the sync client and this loop's async client, if we created them."""
        self.close()
        client = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~20 ms; every client in the process can share one.
    return httpx.create_ssl_context()


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as err:
        msg = f"OpenRouter sent a reply that is not JSON: {err}"
        raise OpenRouterError(msg, status_code=response.status_code) from None
    if not isinstance(body, dict):
        msg = "OpenRouter sent a reply that is not a JSON object"
        raise OpenRouterError(msg, status_code=response.status_code)
    if isinstance(error := body.get("error"), dict):
        # A 200 carrying an error: the provider failed during generation.
        code = error.get("code")
        raise error_for_status(code if isinstance(code, int) and code >= 400 else 502, body)
    return body


def _broken_stream(err: httpx.TransportError) -> IncompleteStreamError:
    if isinstance(err, httpx.TimeoutException):
        return IncompleteStreamError(f"the stream stalled: no data within the timeout ({err!r})")
    return IncompleteStreamError(f"the stream broke off: {type(err).__name__}: {err}")
