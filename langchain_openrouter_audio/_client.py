"""The HTTP client for `/chat/completions`: httpx, retries, SSE, status -> exception.

It sends JSON bodies and hands back decoded chunks; it knows OpenRouter's
HTTP conventions and nothing about LangChain messages. One instance per chat
model, with pooled httpx clients created on first use (constructing a model
does no I/O).

Retry policy: connection failures and 408/429/500/502/503/504 are retried
with exponential backoff and jitter, honouring `Retry-After` /
`retry-after-ms` up to a cap. A stream is retried only while opening it:
once its status is 200, chunks may have reached the caller and nothing is
retried, so no audio is ever delivered twice.

Everything read from the server is bounded: SSE lines by `max_line_bytes`,
error and non-streamed bodies by a byte cap that counts inflated bytes, so a
small gzip body cannot inflate into gigabytes. Text from the server that ends
up in an exception or a log line has the API key redacted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import math
import re
import ssl
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
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
    MalformedStreamError,
    OpenRouterError,
    error_for_status,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ERROR_BODY_BYTES",
    "RETRYABLE_STATUS",
    "AsyncChunkStream",
    "ChunkStream",
    "CompletionsClient",
    "parse_retry_after",
]

logger = logging.getLogger("langchain_openrouter_audio")

# Strings longer than this are JSON-escaped in pieces of this size (see `encode_body`).
_LONG_STRING = 1 << 20

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Guards lazy creation of the sync client when threads race to the first call.
_CLIENT_LOCK = threading.Lock()

MAX_RETRY_AFTER = 60.0
"""Longest `Retry-After` we honour; a server asking for more gets this."""

MAX_ERROR_BODY_BYTES = 1024 * 1024
"""Most bytes (after decompression) read from an error response."""

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Most bytes (after decompression) read from a non-streamed reply: ~7 min of speech."""

_READ_SIZE = 64 * 1024
# Most bytes read after `[DONE]` to keep a connection for reuse.
_DRAIN_BYTES = 1024 * 1024
# Most bytes joined into one piece of a stream: one step of the event loop stays short.
_COALESCE_BYTES = 256 * 1024
# Only encodings we can inflate with a bound; httpx would otherwise also offer br/zstd.
_ACCEPT_ENCODING = "gzip, deflate"

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


# -- reading bodies with a bound --------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _Inflater:
    """Undoes `Content-Encoding`, never producing more than asked for at once.

    httpx inflates each network read whole, and 64 KiB of gzip can hold
    64 MiB of zeros; this inflates in bounded steps instead.
    """

    __slots__ = ("_z",)

    def __init__(self, content_encoding: str | None) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding in ("", "identity"):
            self._z: Any = None
        elif encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header
        else:
            msg = f"OpenRouter sent Content-Encoding {encoding[:40]!r}, which was not asked for"
            raise MalformedStreamError(msg)

    def pieces(self, raw: bytes) -> Iterator[bytes]:
        """The inflated bytes of `raw`, in pieces of at most `_READ_SIZE`."""
        if self._z is None:
            if raw:
                yield raw
            return
        data = raw
        try:
            while data:
                out = self._z.decompress(data, _READ_SIZE)
                data = self._z.unconsumed_tail
                if out:
                    yield out
        except zlib.error as err:
            raise MalformedStreamError(
                f"OpenRouter sent a corrupt compressed body: {err}"
            ) from None


class _CappedBody:
    """Collects a response body up to `cap` inflated bytes, in one buffer."""

    __slots__ = ("_inflater", "buffer", "cap")

    def __init__(self, response: httpx.Response, cap: int) -> None:
        self._inflater = _Inflater(response.headers.get("content-encoding"))
        self.cap = cap
        # One growing buffer, handed to json.loads as is: no second copy of the body.
        self.buffer = bytearray()

    def add(self, raw: bytes) -> None:
        for piece in self._inflater.pieces(raw):
            room = self.cap - len(self.buffer)
            if len(piece) > room:
                self.buffer += piece[:room]
                raise _BodyTooLarge
            self.buffer += piece


def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes | bytearray, bool]:
    """The (inflated) body up to `cap` bytes, and whether it was cut there."""
    if response.is_stream_consumed:  # read already (e.g. a mock transport's bytes)
        return response.content[:cap], len(response.content) > cap
    body = _CappedBody(response, cap)
    try:
        for raw in response.iter_raw():
            body.add(raw)
    except _BodyTooLarge:
        return body.buffer, True
    finally:
        response.close()
    return body.buffer, False


async def _aread_capped(response: httpx.Response, cap: int) -> tuple[bytes | bytearray, bool]:
    if response.is_stream_consumed:
        return response.content[:cap], len(response.content) > cap
    body = _CappedBody(response, cap)
    try:
        async for raw in response.aiter_raw():
            body.add(raw)
    except _BodyTooLarge:
        return body.buffer, True
    finally:
        await response.aclose()
    return body.buffer, False


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "").lower()


# -- decoding -----------------------------------------------------------------------------------


def _decode_json(data: bytes | bytearray) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_status(parsed: Any) -> int:
    """The HTTP status an error object in a 200 reply stands for.

    Its `code` names the error (and whether it is retried); without a valid one
    it counts as a gateway error.
    """
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 400 <= code < 600 else 502


class _ChunkReader:
    """Response bytes in, batches of decoded OpenRouter chunks out, until `[DONE]`.

    A batch holds every event completed by one network read, so that a
    driver can turn a burst of events into one LangChain chunk. An event that
    cannot be decoded does not cost the ones before it: they are returned
    first and the error waits in `error` for the caller to raise.
    """

    __slots__ = ("_decoder", "_inflater", "done", "error")

    def __init__(self, response: httpx.Response, max_line_bytes: int) -> None:
        self._inflater = _Inflater(response.headers.get("content-encoding"))
        self._decoder = SSEDecoder(max_line_bytes)
        self.done = False
        self.error: IncompleteStreamError | None = None

    def feed(self, raw: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for piece in self._inflater.pieces(raw):
                for event, data in self._decoder.feed(piece):
                    if data == b"[DONE]":
                        self.done = True
                        return out
                    if (chunk := _decode_event(event, data)) is not None:
                        out.append(chunk)
        except SSELineTooLong as err:
            self.error = IncompleteStreamError(str(err))
        except IncompleteStreamError as err:
            self.error = err
        return out


def _decode_event(event: str, data: bytes) -> dict[str, Any] | None:
    if event != "message":
        # Unknown event types are skipped, unless they carry an error.
        parsed = _decode_json(data)
        return parsed if isinstance(parsed, dict) and "error" in parsed else None
    try:
        parsed = json.loads(data)
    except ValueError as err:
        raise MalformedStreamError(f"malformed SSE data from OpenRouter: {err}") from None
    if not isinstance(parsed, dict):
        kind = type(parsed).__name__
        raise MalformedStreamError(f"OpenRouter sent SSE data that is a JSON {kind}, not an object")
    return parsed


def _broken_stream(err: httpx.TransportError) -> IncompleteStreamError:
    if isinstance(err, httpx.TimeoutException):
        return IncompleteStreamError(f"the stream stalled: no data within the timeout ({err!r})")
    return IncompleteStreamError(f"the stream broke off: {type(err).__name__}: {err}")


@contextlib.contextmanager
def _stream_failures() -> Iterator[None]:
    """Turn a failure while reading a started stream into `IncompleteStreamError`."""
    try:
        yield
    except httpx.TransportError as err:
        raise _broken_stream(err) from None


# -- one streamed reply ------------------------------------------------------------------------


class ChunkStream:
    """One streamed reply: iterate for batches of chunks; `done` tells how it ended.

    `done` becomes True once the reply ended as complete on the wire: `[DONE]`
    arrived, or the server answered with one whole JSON reply.
    """

    def __init__(self, client: CompletionsClient, content: bytes) -> None:
        self.done = False
        self._batches = self._read(client, content)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return self._batches

    def close(self) -> None:
        """End the HTTP stream now (leaving early must not wait for garbage collection)."""
        self._batches.close()

    def _read(
        self, client: CompletionsClient, content: bytes
    ) -> Generator[list[dict[str, Any]], None, None]:
        opened: httpx.Response | dict[str, Any] = client._retrying()(client._open_stream, content)
        if isinstance(opened, dict):
            self.done = True  # a whole reply where a stream was asked for
            yield [opened]
            return
        response = opened
        reader = _ChunkReader(response, client.max_line_bytes)
        try:
            with _stream_failures():
                reads = response.iter_raw()
                for raw in reads:
                    if batch := reader.feed(raw):
                        yield batch
                    if reader.error is not None:
                        raise reader.error
                    if reader.done:
                        self.done = True
                        # Read to the end of the body so the connection goes back
                        # to the pool, but not forever: past the cap it is dropped.
                        with contextlib.suppress(httpx.TransportError):  # the reply is whole
                            drained = 0
                            for rest in reads:
                                drained += len(rest)
                                if drained > _DRAIN_BYTES:
                                    break
                        return
        finally:
            response.close()


class AsyncChunkStream:
    """Async `ChunkStream`."""

    def __init__(self, client: CompletionsClient, content: bytes) -> None:
        self.done = False
        self._batches = self._read(client, content)

    def __aiter__(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._batches

    async def aclose(self) -> None:
        """End the HTTP stream now."""
        await self._batches.aclose()

    async def _read(
        self, client: CompletionsClient, content: bytes
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        opened: httpx.Response | dict[str, Any] = await client._async_retrying()(
            client._aopen_stream, content
        )
        if isinstance(opened, dict):
            self.done = True
            yield [opened]
            return
        response = opened
        reader = _ChunkReader(response, client.max_line_bytes)
        reads = _coalesced(response.aiter_raw())
        try:
            with _stream_failures():
                async for raw in reads:
                    if batch := reader.feed(raw):
                        yield batch
                    if reader.error is not None:
                        raise reader.error
                    if reader.done:
                        self.done = True
                        with contextlib.suppress(httpx.TransportError):  # the reply is whole
                            drained = 0
                            async for rest in reads:  # to the end, to keep the connection
                                drained += len(rest)
                                if drained > _DRAIN_BYTES:
                                    break
                        return
        finally:
            await reads.aclose()
            await response.aclose()


async def _coalesced(reads: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """The body's pieces, each turn joining all that arrived since the last one.

    httpx hands a body over one HTTP chunk at a time, and servers send one chunk
    per SSE event, so without this every event would become its own LangChain
    chunk. A reader task takes pieces as they come; the consumer gets whatever
    piled up while it was busy, in one piece of at most `_COALESCE_BYTES`. A lone
    piece still goes through at once, so speech is not held back, and the reader
    pauses once that much is waiting, so memory stays bounded.
    """
    pending: collections.deque[bytes] = collections.deque()
    waiting = 0
    ended: list[BaseException | None] = []
    wake, room = asyncio.Event(), asyncio.Event()
    room.set()

    async def pump() -> None:
        nonlocal waiting
        try:
            async for raw in reads:
                pending.append(raw)
                waiting += len(raw)
                wake.set()
                if waiting >= _COALESCE_BYTES:
                    room.clear()
                    await room.wait()
        except BaseException as err:  # handed to the consumer, raised there
            ended.append(err)
        else:
            ended.append(None)
        finally:
            wake.set()

    reader = asyncio.ensure_future(pump())
    try:
        while True:
            await wake.wait()
            wake.clear()
            while pending:
                joined = [pending.popleft()]
                size = len(joined[0])
                while pending and size + len(pending[0]) <= _COALESCE_BYTES:
                    joined.append(pending.popleft())
                    size += len(joined[-1])
                waiting -= size
                room.set()
                yield joined[0] if len(joined) == 1 else b"".join(joined)
            if ended:
                if ended[0] is not None:
                    raise ended[0]
                return
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


# -- the client ---------------------------------------------------------------------------------


class CompletionsClient:
    """Sends chat-completion requests to `{base_url}/chat/completions`, sync and async.

    Args:
        base_url: e.g. `https://openrouter.ai/api/v1`.
        headers: sent on every request (auth, attribution, defaults).
        timeout: seconds, or an `httpx.Timeout`; for streams this bounds each
            read, so a slow but steady stream never times out.
        max_retries: retries after the first attempt.
        http_client / http_async_client: injected clients (not closed by us).
        secrets: strings to redact from anything the server sends back.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        max_line_bytes: int = 64 * 1024 * 1024,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.root = base_url.rstrip("/")
        self.url = self.root + "/chat/completions"
        self._url = httpx.URL(self.url)  # parsed once, not on every request
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": _ACCEPT_ENCODING,
            **headers,
        }
        self._stream_headers = {**self._headers, "Accept": "text/event-stream"}
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._max_retries = max(0, max_retries)
        # Injected clients belong to the caller: we never close them.
        self._owns_client = http_client is None
        self._client = http_client
        self._async_client = http_async_client
        self._loop_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self.max_line_bytes = max_line_bytes
        self.secrets = tuple(s for s in secrets if s)

    # -- clients -------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """The pooled sync client, created on first use (one per instance, thread-safe)."""
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    client = httpx.Client(
                        timeout=self._timeout, follow_redirects=False, verify=_ssl_context()
                    )
                    # A model dropped without close() (or alive at exit) closes its pooled
                    # sockets quietly, as the OpenAI SDK does: no ResourceWarning.
                    weakref.finalize(self, client.close)
                    self._client = client
        return self._client

    async def async_client(self) -> httpx.AsyncClient:
        """The pooled async client of the running event loop.

        Pooled connections belong to the loop that opened them, so each loop
        gets its own client: `asyncio.run(llm.ainvoke(...))` twice must work.
        The client closes itself when its loop shuts down (`asyncio.run`
        closes the loop's async generators, and one of them guards it), so no
        socket outlives the loop that owns it.
        """
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        entry = self._loop_clients.get(loop)
        if entry is None:
            client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                verify=_ssl_context(),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
            guard = self._close_with_loop(loop, client)
            # Stored before the first await, so concurrent first calls share one client.
            entry = self._loop_clients[loop] = (client, guard)
            await guard.__anext__()
        return entry[0]

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

    def _encode(self, body: dict[str, Any] | bytes) -> bytes:
        return body if isinstance(body, bytes) else encode_body(body)

    def redact(self, err: OpenRouterError) -> OpenRouterError:
        """Remove the API key from text the server sent back, should it echo it."""
        err.redact(self.secrets)
        return err

    # -- responses -----------------------------------------------------------

    def _error(
        self, response: httpx.Response, body: bytes | bytearray, cut: bool
    ) -> OpenRouterError:
        parsed = _decode_json(body) if not cut else None
        text = body.decode("utf-8", "replace")
        err = error_for_status(
            response.status_code,
            parsed if parsed is not None else text,
            retry_after=parse_retry_after(response.headers),
            body_cut=cut,
            text=text,
        )
        return self.redact(err)

    def _reply(
        self, response: httpx.Response, body: bytes | bytearray, cut: bool
    ) -> dict[str, Any]:
        """A whole (non-streamed) chat reply's JSON, or the typed error it carries."""
        parsed = self._json_reply(response, body, cut)
        if not isinstance(choices := parsed.get("choices"), list) or not choices:
            # A whole reply is all there is: without a choice it answers nothing.
            msg = "OpenRouter sent a reply with no choices"
            raise OpenRouterError(msg, status_code=response.status_code)
        return parsed

    def _local_error(self, err: Exception) -> ValueError:
        # httpx's text can quote the offending header value: never repeat it.
        msg = (
            f"the request to {self.url} could not be built ({type(err).__name__}): a header "
            "value or the URL is not valid HTTP; check api_key, default_headers and base_url"
        )
        return ValueError(msg)

    def _connection_error(self, err: httpx.TransportError) -> APIConnectionError:
        if isinstance(err, httpx.TimeoutException):
            return APITimeoutError(f"timed out talking to {self.url}: {type(err).__name__}")
        return APIConnectionError(f"could not reach {self.url}: {type(err).__name__}: {err}")

    # -- sync ----------------------------------------------------------------

    def _send(
        self,
        content: bytes | None,
        headers: dict[str, str],
        *,
        url: httpx.URL | None = None,
        method: str = "POST",
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            request = self.client.build_request(
                method,
                url or self._url,
                content=content,
                headers=headers,
                params=params,
                timeout=self._timeout,
            )
            return self.client.send(request, stream=True)
        except (httpx.LocalProtocolError, httpx.InvalidURL, httpx.UnsupportedProtocol) as err:
            raise self._local_error(err) from None
        except httpx.TransportError as err:
            raise self._connection_error(err) from None

    def _read(self, response: httpx.Response, cap: int) -> tuple[bytes | bytearray, bool]:
        try:
            return _read_capped(response, cap)
        except httpx.TransportError as err:
            raise self._connection_error(err) from None

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a non-streamed request; return the decoded JSON reply."""
        result: dict[str, Any] = self._retrying()(self._post_once, self._encode(body))
        return result

    def _post_once(self, content: bytes) -> dict[str, Any]:
        response = self._send(content, self._headers)
        if response.status_code != 200:
            raise self._error(response, *self._read(response, MAX_ERROR_BODY_BYTES))
        return self._reply(response, *self._read(response, MAX_BODY_BYTES))

    def stream(self, body: dict[str, Any]) -> ChunkStream:
        """Send a streamed request; iterate the result for batches of decoded chunks."""
        return ChunkStream(self, self._encode(body))

    def _open_stream(self, content: bytes) -> httpx.Response | dict[str, Any]:
        response = self._send(content, self._stream_headers)
        if response.status_code != 200:
            raise self._error(response, *self._read(response, MAX_ERROR_BODY_BYTES))
        if _is_json(response):
            # A relay answered the stream with one JSON body: an error or a whole reply.
            return self._reply(response, *self._read(response, MAX_BODY_BYTES))
        return response

    # -- async ---------------------------------------------------------------

    async def _asend(
        self,
        content: bytes | None,
        headers: dict[str, str],
        *,
        url: httpx.URL | None = None,
        method: str = "POST",
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        client = await self.async_client()
        try:
            request = client.build_request(
                method,
                url or self._url,
                content=content,
                headers=headers,
                params=params,
                timeout=self._timeout,
            )
            return await client.send(request, stream=True)
        except (httpx.LocalProtocolError, httpx.InvalidURL, httpx.UnsupportedProtocol) as err:
            raise self._local_error(err) from None
        except httpx.TransportError as err:
            raise self._connection_error(err) from None

    async def _aread(self, response: httpx.Response, cap: int) -> tuple[bytes | bytearray, bool]:
        try:
            return await _aread_capped(response, cap)
        except httpx.TransportError as err:
            raise self._connection_error(err) from None

    async def apost(self, body: dict[str, Any] | bytes) -> dict[str, Any]:
        """Async `post`; `body` may be already encoded by `encode_body`."""
        content = self._encode(body)
        result: dict[str, Any] = await self._async_retrying()(self._apost_once, content)
        return result

    async def _apost_once(self, content: bytes) -> dict[str, Any]:
        response = await self._asend(content, self._headers)
        if response.status_code != 200:
            raise self._error(response, *await self._aread(response, MAX_ERROR_BODY_BYTES))
        return self._reply(response, *await self._aread(response, MAX_BODY_BYTES))

    def astream(self, body: dict[str, Any] | bytes) -> AsyncChunkStream:
        """Async `stream`; `body` may be already encoded by `encode_body`."""
        return AsyncChunkStream(self, self._encode(body))

    async def _aopen_stream(self, content: bytes) -> httpx.Response | dict[str, Any]:
        response = await self._asend(content, self._stream_headers)
        if response.status_code != 200:
            raise self._error(response, *await self._aread(response, MAX_ERROR_BODY_BYTES))
        if _is_json(response):
            return self._reply(response, *await self._aread(response, MAX_BODY_BYTES))
        return response

    # -- other endpoints: JSON in, JSON or raw bytes out ----------------------

    def endpoint(self, path: str) -> httpx.URL:
        """The URL of `path` under the API root, e.g. `/audio/speech`."""
        return httpx.URL(self.root + path)

    def _json_reply(
        self, response: httpx.Response, body: bytes | bytearray, cut: bool
    ) -> dict[str, Any]:
        """A whole reply's JSON object, or the typed error it carries."""
        if cut:
            msg = f"OpenRouter sent a reply of over {MAX_BODY_BYTES} bytes; refusing to read it all"
            raise OpenRouterError(msg, status_code=response.status_code)
        parsed = _decode_json(body)
        if not isinstance(parsed, dict):
            msg = "OpenRouter sent a reply that is not a JSON object"
            raise self.redact(OpenRouterError(msg, status_code=response.status_code))
        if isinstance(parsed.get("error"), dict):
            # A 200 carrying an error: the request failed after all.
            raise self.redact(error_for_status(_error_status(parsed), parsed))
        return parsed

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], httpx.Headers]:
        """POST a JSON body to `path` (retried); the JSON reply and its headers."""
        content, url = self._encode(body), self.endpoint(path)
        result: tuple[dict[str, Any], httpx.Headers] = self._retrying()(
            self._post_json_once, url, content
        )
        return result

    def _post_json_once(
        self, url: httpx.URL, content: bytes
    ) -> tuple[dict[str, Any], httpx.Headers]:
        response = self._send(content, self._headers, url=url)
        if response.status_code != 200:
            raise self._error(response, *self._read(response, MAX_ERROR_BODY_BYTES))
        return self._json_reply(response, *self._read(response, MAX_BODY_BYTES)), response.headers

    def get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """GET `path?params` once (no retries: callers poll); the JSON reply."""
        response = self._send(
            None, self._headers, url=self.endpoint(path), method="GET", params=params
        )
        if response.status_code != 200:
            raise self._error(response, *self._read(response, MAX_ERROR_BODY_BYTES))
        return self._json_reply(response, *self._read(response, MAX_BODY_BYTES))

    def open_bytes(self, path: str, body: dict[str, Any], accept: str) -> httpx.Response:
        """POST a JSON body to `path` whose reply is raw bytes; the open response.

        Retried until the status is 200, never after: read it with `iter_bytes`.
        """
        content, url = self._encode(body), self.endpoint(path)
        headers = {**self._headers, "Accept": accept}
        response: httpx.Response = self._retrying()(self._open_bytes_once, url, content, headers)
        return response

    def _open_bytes_once(
        self, url: httpx.URL, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        response = self._send(content, headers, url=url)
        if response.status_code != 200 or _is_json(response):
            raise self._bytes_error(response, *self._read(response, MAX_ERROR_BODY_BYTES))
        return response

    def _bytes_error(
        self, response: httpx.Response, body: bytes | bytearray, cut: bool
    ) -> OpenRouterError:
        """The error of a reply that should have been bytes: a status, or JSON with HTTP 200."""
        if response.status_code != 200:
            return self._error(response, body, cut)
        # A JSON body where audio was asked for is an error; its code names it.
        parsed = _decode_json(body)
        text = body.decode("utf-8", "replace")
        return self.redact(
            error_for_status(_error_status(parsed), parsed if parsed is not None else text)
        )

    @staticmethod
    def iter_bytes(response: httpx.Response) -> Iterator[bytes]:
        """The body of an open response, inflated, as it arrives; closes it at the end.

        Raises:
            IncompleteStreamError: the connection broke or stalled mid-body.
        """
        inflater = _Inflater(response.headers.get("content-encoding"))
        try:
            with _stream_failures():
                for raw in response.iter_raw():
                    yield from inflater.pieces(raw)
        finally:
            response.close()

    async def apost_json(
        self, path: str, body: dict[str, Any] | bytes
    ) -> tuple[dict[str, Any], httpx.Headers]:
        """Async `post_json`; `body` may be already encoded by `encode_body`."""
        content, url = self._encode(body), self.endpoint(path)
        result: tuple[dict[str, Any], httpx.Headers] = await self._async_retrying()(
            self._apost_json_once, url, content
        )
        return result

    async def _apost_json_once(
        self, url: httpx.URL, content: bytes
    ) -> tuple[dict[str, Any], httpx.Headers]:
        response = await self._asend(content, self._headers, url=url)
        if response.status_code != 200:
            raise self._error(response, *await self._aread(response, MAX_ERROR_BODY_BYTES))
        body, cut = await self._aread(response, MAX_BODY_BYTES)
        return self._json_reply(response, body, cut), response.headers

    async def aget_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """Async `get_json`."""
        url = self.endpoint(path)
        response = await self._asend(None, self._headers, url=url, method="GET", params=params)
        if response.status_code != 200:
            raise self._error(response, *await self._aread(response, MAX_ERROR_BODY_BYTES))
        return self._json_reply(response, *await self._aread(response, MAX_BODY_BYTES))

    async def aopen_bytes(self, path: str, body: dict[str, Any], accept: str) -> httpx.Response:
        """Async `open_bytes`."""
        content, url = self._encode(body), self.endpoint(path)
        headers = {**self._headers, "Accept": accept}
        response: httpx.Response = await self._async_retrying()(
            self._aopen_bytes_once, url, content, headers
        )
        return response

    async def _aopen_bytes_once(
        self, url: httpx.URL, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        response = await self._asend(content, headers, url=url)
        if response.status_code != 200 or _is_json(response):
            raise self._bytes_error(response, *await self._aread(response, MAX_ERROR_BODY_BYTES))
        return response

    @staticmethod
    async def aiter_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
        """Async `iter_bytes`."""
        inflater = _Inflater(response.headers.get("content-encoding"))
        try:
            with _stream_failures():
                async for raw in response.aiter_raw():
                    for piece in inflater.pieces(raw):
                        yield piece
        finally:
            await response.aclose()

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the sync client this instance created (not an injected one)."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the sync client and this loop's async client, if we created them."""
        self.close()
        entry = self._loop_clients.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # the guard closes the client

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
    ) -> AsyncGenerator[None, None]:
        """Closes `client` and forgets it when closed: by `aclose()`, or by its loop's shutdown."""
        try:
            yield
        finally:
            if (entry := self._loop_clients.get(loop)) is not None and entry[0] is client:
                del self._loop_clients[loop]
            await client.aclose()


def encode_body(body: dict[str, Any]) -> bytes:
    """The request body as JSON bytes.

    A long string (an audio clip's base64) is escaped in pieces: one `json.dumps` over
    megabytes holds the GIL for tens of milliseconds, stalling the event loop even when the
    request is built in a worker thread.
    """
    longs: list[str] = []
    marker = f"lora-{uuid.uuid4().hex}-"

    def swap(value: Any) -> Any:
        if isinstance(value, str) and len(value) > _LONG_STRING:
            longs.append(value)
            return f"{marker}{len(longs) - 1}"
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [swap(item) for item in value]
        return value

    skeleton = _dumps(swap(body))
    if not longs:
        return skeleton.encode("utf-8")
    pieces: list[bytes] = []
    for i, part in enumerate(re.split(f'"{marker}([0-9]+)"', skeleton)):
        if i % 2 == 0:
            pieces.append(part.encode("utf-8"))
            continue
        text = longs[int(part)]
        pieces.append(b'"')
        for start in range(0, len(text), _LONG_STRING):
            pieces.append(_dumps(text[start : start + _LONG_STRING])[1:-1].encode("utf-8"))
        pieces.append(b'"')
    return b"".join(pieces)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~20 ms; every client in the process can share one.
    return httpx.create_ssl_context()
