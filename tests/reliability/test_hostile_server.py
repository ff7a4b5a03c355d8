"""Hostile and broken servers: no loss, typed errors, secrets kept, memory bounded, early refusals.

Every case goes through a real socket to `OpenRouterTestServer` (``raw_reply`` and
``recorded_reply`` send exactly the bytes under test).
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import math
import resource
import sys
import tracemalloc
import zlib
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool

from langchain_openrouter_audio import (
    ChatOpenRouterAudio,
    OpenRouterError,
    ServerError,
    StreamError,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    raw_reply,
    recorded_reply,
    speech_reply,
    tone_pcm16,
)
from tests._helpers import (
    Recorder,
    make_llm,
    question_with_audio,
    reply_pcm,
    summed,
    summed_pcm,
)

LOGGER = "langchain_openrouter_audio"
PCM = tone_pcm16(0.2, 440.0)  # 9 600 bytes
B64 = base64.b64encode(PCM).decode()


def _chunk(delta: Any = None, *, choices: Any = None, **extra: Any) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": "chatcmpl-h", "object": "chat.completion.chunk", "created": 1}
    chunk["choices"] = choices if choices is not None else [{"index": 0, "delta": delta}]
    chunk.update(extra)
    return chunk


def _event(payload: Any) -> bytes:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return b"data: " + raw + b"\n\n"


# The good start of a spoken reply: transcript "Hello" and all of PCM.
PREFIX = [
    _chunk({"role": "assistant", "refusal": None}),
    _chunk({"content": None, "audio": {"id": "audio_h", "transcript": "Hel"}}),
    _chunk({"audio": {"data": B64}}),
    _chunk({"audio": {"transcript": "lo"}}),
]
PREFIX_BYTES = b"".join(_event(c) for c in PREFIX)
DONE = b"data: [DONE]\n\n"


# -- events before a malformed one reach everyone first ----------------------------


def test_events_before_malformed_one_in_same_read_stream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # One write: the good events and the broken one arrive in the same network read.
    body = PREFIX_BYTES + b"data: {not json\n\n" + DONE
    openrouter_server.enqueue(recorded_reply(body))
    handler = Recorder()
    got: list[AIMessageChunk] = []
    llm = make_llm(openrouter_server, max_retries=3)
    with pytest.raises(StreamError) as info:
        got.extend(llm.stream("hi", config={"callbacks": [handler]}))
    assert isinstance(info.value, OpenRouterError)
    assert got, "no chunk reached the stream before the error"
    assert summed(got).text == "Hello"
    assert summed_pcm(summed(got)) == PCM
    assert handler.pcm == PCM
    assert "".join(handler.text) == "Hello"
    assert len(handler.ends) == 1
    partial = info.value.partial
    assert partial is not None
    assert partial.text == "Hello"
    assert reply_pcm(partial) == PCM
    assert len(openrouter_server.requests) == 1


def test_events_before_malformed_one_in_same_read_invoke(
    openrouter_server: OpenRouterTestServer,
) -> None:
    body = PREFIX_BYTES + b"data: [1, 2]\n\n" + DONE
    openrouter_server.enqueue(recorded_reply(body))
    handler = Recorder()
    with pytest.raises(StreamError) as info:
        make_llm(openrouter_server).invoke("hi", config={"callbacks": [handler]})
    assert handler.pcm == PCM
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello"
    assert reply_pcm(info.value.partial) == PCM


async def test_events_before_malformed_one_in_same_read_astream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    body = PREFIX_BYTES + b"data: {not json\n\n" + DONE
    openrouter_server.enqueue(recorded_reply(body))
    got: list[AIMessageChunk] = []
    with pytest.raises(StreamError) as info:
        async for chunk in make_llm(openrouter_server).astream("hi"):
            got.append(chunk)
    assert summed(got).text == "Hello"
    assert summed_pcm(summed(got)) == PCM
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello"


# -- wrong types anywhere: a typed error with .partial -----------------------------

WRONG_TYPES: dict[str, dict[str, Any]] = {
    "choices: [null]": _chunk(choices=[None]),
    "choices: {}": _chunk(choices={}),
    "choices: 'x'": _chunk(choices="x"),
    "delta: []": _chunk(choices=[{"index": 0, "delta": []}]),
    "delta: 'x'": _chunk(choices=[{"index": 0, "delta": "x"}]),
    "audio: 'x'": _chunk({"audio": "x"}),
    "audio: []": _chunk({"audio": []}),
    "audio.data: 123": _chunk({"audio": {"data": 123}}),
    "audio.data: {}": _chunk({"audio": {"data": {}}}),
    "audio.data: not base64": _chunk({"audio": {"data": "!!not base64!!"}}),
    "transcript: 5": _chunk({"audio": {"transcript": 5}}),
    "transcript: []": _chunk({"audio": {"transcript": ["a"]}}),
    "content: 5": _chunk({"content": 5}),
    "content: {}": _chunk({"content": {"text": "x"}}),
    "tool_calls: {}": _chunk({"tool_calls": {}}),
    "tool_calls: [5]": _chunk({"tool_calls": [5]}),
    "tool_calls: [null]": _chunk({"tool_calls": [None]}),
    "tool_calls[0].function: 'x'": _chunk({"tool_calls": [{"index": 0, "function": "x"}]}),
    "tool_calls[0].function.arguments: 5": _chunk(
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": 5}}]}
    ),
    "tool_calls[0].index: 'a'": _chunk(
        {"tool_calls": [{"index": "a", "function": {"name": "f", "arguments": ""}}]}
    ),
    "error: 'x'": _chunk(choices=[], error="boom"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_wrong_type_field_is_a_typed_error(
    openrouter_server: OpenRouterTestServer, case: str
) -> None:
    body = PREFIX_BYTES + _event(WRONG_TYPES[case]) + DONE
    openrouter_server.enqueue(recorded_reply(body), recorded_reply(body))
    llm = make_llm(openrouter_server, max_retries=3)
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello"
    assert reply_pcm(info.value.partial) == PCM
    got: list[AIMessageChunk] = []
    with pytest.raises(StreamError):
        got.extend(llm.stream("hi"))
    assert summed(got).text == "Hello"
    assert len(openrouter_server.requests) == 2  # never retried


_KEYS = st.sampled_from(
    [
        "choices", "delta", "audio", "data", "transcript", "id", "expires_at", "content",
        "tool_calls", "index", "function", "name", "arguments", "finish_reason", "usage",
        "role", "error", "code", "message", "prompt_tokens", "refusal", "type", "x",
    ]
)  # fmt: skip
_FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: failures are reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
    | st.text(max_size=4) | st.just(B64[:8]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(_FUZZ, max_examples=60)
@given(chunk=st.dictionaries(_KEYS, _JSON, max_size=4), streamed=st.booleans())
def test_any_json_object_as_a_chunk_is_fine_or_typed(
    openrouter_server: OpenRouterTestServer, chunk: dict[str, Any], streamed: bool
) -> None:
    openrouter_server.reset()
    openrouter_server.enqueue(recorded_reply(PREFIX_BYTES + _event(chunk) + DONE))
    llm = make_llm(openrouter_server, max_retries=0)
    failure: OpenRouterError | None = None
    got: list[AIMessageChunk] = []
    try:
        if streamed:
            got.extend(llm.stream("hi"))
        else:
            got.append(llm.invoke("hi"))  # type: ignore[arg-type]
    except OpenRouterError as err:  # anything else (TypeError, KeyError...) fails the test
        failure = err
    if failure is None:
        assert summed(got).text.startswith("Hel")
    elif isinstance(failure, StreamError):
        assert failure.partial is not None
        assert failure.partial.text.startswith("Hel")


_COMPLETION_KEYS = st.sampled_from(
    ["choices", "message", "audio", "data", "transcript", "content", "tool_calls", "function",
     "name", "arguments", "finish_reason", "usage", "error", "code", "index", "id", "x"]
)  # fmt: skip
_COMPLETION_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4) | st.just(B64[:8]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(_COMPLETION_KEYS, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(_FUZZ, max_examples=40)
@given(body=st.dictionaries(_COMPLETION_KEYS, _COMPLETION_JSON, max_size=4), streamed=st.booleans())
def test_any_json_object_as_a_whole_reply_is_fine_or_typed(
    openrouter_server: OpenRouterTestServer, body: dict[str, Any], streamed: bool
) -> None:
    # A non-streamed reply, or HTTP 200 + JSON to a streamed request (what relays send).
    openrouter_server.reset()
    openrouter_server.enqueue(raw_reply(json.dumps(body).encode()))
    if streamed:
        llm = make_llm(openrouter_server, max_retries=0)
        messages: Any = "hi"
    else:
        llm = make_llm(openrouter_server, max_retries=0, modalities=["text"])
        messages = [question_with_audio("What is it?")]
    try:
        reply = llm.invoke(messages)
    except OpenRouterError:  # anything else (TypeError, KeyError...) fails the test
        return
    assert isinstance(reply.text, str)


# -- malformed metadata never costs a complete reply -------------------------------

BAD_METADATA: dict[str, Any] = {
    "usage: 'x'": _chunk(choices=[], usage="x"),
    "usage: []": _chunk(choices=[], usage=[1]),
    "usage.prompt_tokens: 'many'": _chunk(
        choices=[], usage={"prompt_tokens": "many", "completion_tokens": 2, "total_tokens": 3}
    ),
    "usage.completion_tokens_details: 'x'": _chunk(
        choices=[],
        usage={
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "completion_tokens_details": "x",
        },
    ),
    "expires_at: 'soon'": _chunk({"audio": {"expires_at": "soon"}}),
    # Legal JSON that Python reads as infinity: int() would raise OverflowError.
    "usage.prompt_tokens: 1e400": (
        b'{"choices":[],"usage":{"prompt_tokens":1e400,"completion_tokens":2,"total_tokens":3}}'
    ),
    "expires_at: 1e400": b'{"choices":[{"index":0,"delta":{"audio":{"expires_at":1e400}}}]}',
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_malformed_metadata_keeps_the_reply(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    body = PREFIX_BYTES + _event(BAD_METADATA[case]) + DONE
    openrouter_server.enqueue(recorded_reply(body))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        reply = make_llm(openrouter_server).invoke("hi")
    assert reply.text == "Hello"
    assert reply_pcm(reply) == PCM
    # The package's own warnings: a stray one of another logger (say asyncio collecting an
    # earlier test's task) is not this reply's.
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.split(".")[0] == LOGGER
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    if case.startswith("usage"):
        usage = reply.usage_metadata
        assert usage is None or all(isinstance(v, int) for k, v in usage.items() if "tokens" in k)


def test_malformed_usage_warning_never_quotes_the_server(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A server echoing the key in a usage field: the warning names the field, not the value.
    usage = {"prompt_tokens": openrouter_server.api_key, "completion_tokens": 1}
    body = PREFIX_BYTES + _event(_chunk(choices=[], usage=usage)) + DONE
    openrouter_server.enqueue(recorded_reply(body))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert make_llm(openrouter_server).invoke("hi").text == "Hello"
    assert caplog.records
    assert all(openrouter_server.api_key not in r.getMessage() for r in caplog.records)


def test_finish_reason_then_a_broken_connection_keeps_the_reply(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    finished = _event(_chunk({}, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    openrouter_server.enqueue(raw_reply([PREFIX_BYTES + finished], content_type=None, cut=True))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        reply = make_llm(openrouter_server, max_retries=0).invoke("hi")
    assert reply.text == "Hello"
    assert reply_pcm(reply) == PCM
    assert reply.response_metadata["finish_reason"] == "stop"
    assert any("broke after the reply finished" in r.getMessage() for r in caplog.records)


def test_superfluous_padding_never_lands_mid_stream(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # A relay pads whole 6-byte pieces with "==" (base64 decoders accept it): chunks must
    # not reuse that text, or the summed block would hold "=" in the middle.
    pieces = [PCM[i : i + 4800] for i in range(0, len(PCM), 4800)]
    padded = [_chunk({"audio": {"data": base64.b64encode(p).decode() + "=="}}) for p in pieces]
    events = [_event(c) for c in [*PREFIX[:2], *padded]] + [DONE]
    openrouter_server.enqueue(raw_reply(events, content_type=None))  # one HTTP chunk each
    chunks = list(make_llm(openrouter_server).stream("hi"))
    audio = [
        b["base64"]
        for c in chunks
        for b in c.content
        if isinstance(b, dict) and b["type"] == "audio"
    ]
    assert all("=" not in text for text in audio[:-1])
    joined = "".join(audio)
    assert "=" not in joined.rstrip("=")  # padding only at the very end
    assert base64.b64decode(joined, validate=True) == PCM


def test_credentials_in_base_url_are_refused() -> None:
    with pytest.raises(ValueError, match="must not carry credentials") as info:
        ChatOpenRouterAudio(api_key="k", base_url="https://user:hunter2@openrouter.ai/api/v1")
    assert "hunter2" not in str(info.value)


# -- keys: stripped, refused when impossible, never echoed ------------------------


def test_key_with_surrounding_whitespace_is_stripped(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(PCM, "ok"))
    llm = make_llm(openrouter_server, api_key=f"  \t{openrouter_server.api_key}\r\n")
    assert llm.invoke("hi").text == "ok"
    assert openrouter_server.requests[0].authorization == f"Bearer {openrouter_server.api_key}"


@pytest.mark.parametrize(
    "key",
    [
        "sk-or-v1-abc\ndef-SECRETPART",
        "sk-or-v1-abc\r\nX-Evil: 1",
        "sk-or-v1-kéy✓SECRETPART",
        "a\x00b",
    ],
)
def test_key_that_cannot_be_a_header_is_refused_at_construction(
    openrouter_server: OpenRouterTestServer, key: str
) -> None:
    with pytest.raises(ValueError, match=r"(?i)key") as info:
        make_llm(openrouter_server, api_key=key)
    text = str(info.value) + repr(info.value)
    assert key not in text
    assert "SECRETPART" not in text
    assert "abc" not in text
    assert openrouter_server.requests == []


def test_bad_header_value_is_not_retried_nor_echoed(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    value = "hidden-☃-VALUE"
    with (
        caplog.at_level(logging.DEBUG, logger=LOGGER),
        pytest.raises((ValueError, OpenRouterError)) as info,
    ):
        llm = make_llm(openrouter_server, default_headers={"X-Custom": value}, max_retries=3)
        llm.invoke("hi")
    assert "VALUE" not in str(info.value) + repr(info.value)
    assert all("VALUE" not in r.getMessage() for r in caplog.records)
    assert not any("retry" in r.getMessage() for r in caplog.records)
    assert openrouter_server.requests == []


def test_bad_url_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger=LOGGER),
        pytest.raises((ValueError, OpenRouterError)),
    ):
        llm = ChatOpenRouterAudio(
            base_url="http://127.0.0.1:99999/api/v1", api_key="k", max_retries=3
        )
        llm.invoke("hi")
    assert not any("retry" in r.getMessage() for r in caplog.records)


SECRET_KEY = "sk-or-v1-" + "5ec7e7" * 8


@pytest.fixture
def secret_server() -> Any:
    with OpenRouterTestServer(api_key=SECRET_KEY) as server:
        yield server


def _assert_no_key(err: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(err), repr(err), *(r.getMessage() for r in caplog.records)]
    if isinstance(err, OpenRouterError):
        texts += [err.message, json.dumps(err.metadata, default=str)]
    for text in texts:
        assert SECRET_KEY not in text
        assert SECRET_KEY[9:30] not in text


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (401, "application/json", {"error": {"code": 401, "message": f"Bad key {SECRET_KEY}"}}),
        (
            400,
            "application/json",
            {
                "error": {
                    "code": 400,
                    "message": "Provider returned error",
                    "metadata": {"raw": json.dumps({"error": {"message": f"key={SECRET_KEY}"}})},
                }
            },
        ),
        (503, "application/json", {"error": {"code": 503, "message": f"down for {SECRET_KEY}"}}),
        (502, "text/plain", f"Bad gateway, Authorization: Bearer {SECRET_KEY}"),
    ],
)
def test_key_echoed_by_server_is_redacted(
    secret_server: OpenRouterTestServer,
    caplog: pytest.LogCaptureFixture,
    fast_backoff: None,
    status: int,
    content_type: str,
    body: Any,
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    secret_server.responder = lambda request: raw_reply(
        raw, status=status, content_type=content_type
    )
    with caplog.at_level(logging.DEBUG, logger=LOGGER), pytest.raises(OpenRouterError) as info:
        make_llm(secret_server, max_retries=1).invoke("hi")
    assert info.value.status_code == status
    _assert_no_key(info.value, caplog)


def test_key_echoed_in_midstream_error_is_redacted(
    secret_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    error = {"code": 502, "message": f"upstream rejected {SECRET_KEY}"}
    secret_server.enqueue(speech_reply(PCM, "partial", error_after=2, stream_error=error))
    with caplog.at_level(logging.DEBUG, logger=LOGGER), pytest.raises(StreamError) as info:
        make_llm(secret_server).invoke("hi")
    _assert_no_key(info.value, caplog)


# -- bounded reads ------------------------------------------------------------------

BOMB_INFLATED = 512 * 1024 * 1024


@cache
def _gzip_bomb() -> bytes:
    """About 0.5 MB of gzip that inflates to 512 MB of a JSON-looking error body."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = b'{"error": {"code": 400, "message": "'
    parts = [comp.compress(head)]
    block = b"A" * (1024 * 1024)
    for _ in range(BOMB_INFLATED // len(block)):
        parts.append(comp.compress(block))
    parts.append(comp.compress(b'"}}'))
    parts.append(comp.flush())
    return b"".join(parts)


def _measured(call: Any) -> tuple[BaseException | None, int, int]:
    """Run ``call``; return its exception, the traced peak and the max-RSS growth, in bytes."""
    gc.collect()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    error: BaseException | None = None
    try:
        call()
    except BaseException as err:
        error = err
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_kb) * scale
    return error, peak, grown


LIMIT = 100 * 1024 * 1024


def _assert_read_with_a_cap(server: OpenRouterTestServer, streamed: bool) -> None:
    """One call (streamed, or a spoken question answered in text): typed error, memory bounded."""
    if streamed:
        llm = make_llm(server, max_retries=0)
        messages: Any = "hi"
    else:
        llm = make_llm(server, max_retries=0, modalities=["text"])
        messages = [question_with_audio("What is it?")]
    error, peak, grown = _measured(lambda: llm.invoke(messages))
    assert isinstance(error, OpenRouterError), repr(error)
    assert peak < LIMIT, f"traced peak {peak / 2**20:.0f} MiB"
    assert grown < LIMIT, f"max RSS grew {grown / 2**20:.0f} MiB"
    assert len(str(error)) < 8192


@pytest.mark.parametrize(
    ("status", "streamed"),
    [(400, True), (500, True), (200, True), (200, False), (400, False)],
)
def test_gzip_bomb_body_is_read_with_a_cap(
    openrouter_server: OpenRouterTestServer, status: int, streamed: bool
) -> None:
    bomb = _gzip_bomb()
    assert len(bomb) < 1024 * 1024
    openrouter_server.responder = lambda request: raw_reply(
        bomb, status=status, headers={"Content-Encoding": "gzip"}
    )
    _assert_read_with_a_cap(openrouter_server, streamed)
    assert len(openrouter_server.requests) == 1


@pytest.mark.parametrize(("status", "streamed"), [(500, True), (200, False)])
def test_endless_plain_body_is_read_with_a_cap(
    openrouter_server: OpenRouterTestServer, status: int, streamed: bool
) -> None:
    # 256 MiB of plain bytes (one 1 MiB block written 256 times): the client must stop early.
    block = b"A" * (1024 * 1024)
    openrouter_server.responder = lambda request: raw_reply((block,) * 256, status=status)
    _assert_read_with_a_cap(openrouter_server, streamed)


def test_huge_error_text_is_cut_in_exceptions_and_logs(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture, fast_backoff: None
) -> None:
    message = "overloaded " + "x" * 1_000_000
    body = json.dumps({"error": {"code": 503, "message": message}}).encode()
    openrouter_server.responder = lambda request: raw_reply(body, status=503)
    with caplog.at_level(logging.DEBUG, logger=LOGGER), pytest.raises(ServerError) as info:
        make_llm(openrouter_server, max_retries=1).invoke("hi")
    assert "overloaded" in str(info.value)
    assert len(str(info.value)) < 8192
    assert len(repr(info.value)) < 8192
    assert caplog.records, "the retry was not logged"
    assert all(len(r.getMessage()) < 8192 for r in caplog.records)
    assert len(openrouter_server.requests) == 2


# -- settings and requests refused early --------------------------------------------


@pytest.mark.parametrize(
    "settings_",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": math.nan},
        {"timeout": httpx.Timeout(0)},
        {"timeout": httpx.Timeout(math.nan)},
        {"sample_rate": 0},
        {"sample_rate": -24_000},
        {"max_retries": -1},
        {"base_url": "ftp://openrouter.ai/api/v1"},
        {"base_url": "openrouter.ai/api/v1"},
        {"base_url": "http:///api/v1"},
        {"base_url": "https://openrouter.ai/api/v1?key=1"},
        {"base_url": "https://openrouter.ai/api/v1#frag"},
    ],
    ids=repr,
)
def test_bad_settings_are_refused_at_construction(settings_: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings_))):
        ChatOpenRouterAudio(api_key="k", **settings_)


@pytest.mark.parametrize(
    "settings_",
    [
        {"timeout": 5},
        {"timeout": None},
        {"timeout": httpx.Timeout(5.0)},
        {"timeout": httpx.Timeout(5.0, connect=2.0)},
        {"max_retries": 0},
        {"sample_rate": 16_000},
        {"base_url": "http://127.0.0.1:8080/api/v1/"},
    ],
    ids=repr,
)
def test_good_settings_are_accepted(settings_: dict[str, Any]) -> None:
    ChatOpenRouterAudio(api_key="k", **settings_)


def test_httpx_timeout_is_used(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(speech_reply(PCM, "ok"))
    llm = make_llm(openrouter_server, timeout=httpx.Timeout(5.0, connect=2.0))
    assert llm.invoke("hi").text == "ok"


def test_text_only_request_to_an_audio_model_is_refused_before_the_network(
    openrouter_server: OpenRouterTestServer,
) -> None:
    llm = make_llm(openrouter_server, model="openai/gpt-audio", modalities=["text"])
    with pytest.raises(ValueError, match="modalities") as info:
        llm.invoke("Just text, please")
    assert "audio" in str(info.value)
    assert openrouter_server.requests == []
    with pytest.raises(ValueError, match="modalities"):
        list(llm.stream("Just text, please"))
    assert openrouter_server.requests == []


def test_text_only_request_with_audio_input_still_goes(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(PCM, "heard you"))
    llm = make_llm(openrouter_server, model="openai/gpt-audio", modalities=["text"])
    assert llm.invoke([question_with_audio("What is this?")]).text == "heard you"


def test_tool_choice_naming_an_unbound_tool_is_refused(
    openrouter_server: OpenRouterTestServer,
) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    choice = {"type": "function", "function": {"name": "get_time"}}
    with pytest.raises(ValueError, match="get_time"):
        make_llm(openrouter_server).bind_tools([get_weather], tool_choice=choice).invoke("hi")
    assert openrouter_server.requests == []


# -- odd responses: typed errors, never a hang or a library exception ---------------


@pytest.mark.parametrize(
    ("status", "content_type", "body", "headers"),
    [
        (200, "text/html", b"<html><body>Sign in to the Wi-Fi</body></html>", {}),
        (200, "text/event-stream", b"", {}),
        (200, "text/event-stream", b"\xff\xfe garbage \x00\n\n", {}),
        (200, "text/event-stream", b"not gzip at all", {"Content-Encoding": "gzip"}),
        (500, "application/json", b"not gzip at all", {"Content-Encoding": "gzip"}),
        (200, "application/json", b"[1, 2, 3]", {}),
        (200, "application/json", b'{"choices": "x"}', {}),
        (418, "", b"\x00\x01\x02", {}),
    ],
    ids=["html-200", "empty-sse", "binary-sse", "bad-gzip-sse", "bad-gzip-500", "json-list",
         "json-bad-choices", "teapot-binary"],
)  # fmt: skip
def test_odd_responses_raise_typed_errors(
    openrouter_server: OpenRouterTestServer,
    fast_backoff: None,
    status: int,
    content_type: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    openrouter_server.responder = lambda request: raw_reply(
        body, status=status, content_type=content_type, headers=headers
    )
    with pytest.raises(OpenRouterError):
        make_llm(openrouter_server, max_retries=1).invoke("hi")
    got: list[AIMessageChunk] = []
    with pytest.raises(OpenRouterError):
        got.extend(make_llm(openrouter_server, max_retries=0).stream("hi"))


def test_redirect_is_not_followed_with_the_key(
    openrouter_server: OpenRouterTestServer, second_server: OpenRouterTestServer
) -> None:
    target = f"{second_server.base_url}/chat/completions"
    openrouter_server.enqueue(raw_reply(b"", status=307, headers={"Location": target}))
    with pytest.raises(OpenRouterError) as info:
        make_llm(openrouter_server, max_retries=2).invoke("hi")
    assert info.value.status_code == 307
    assert second_server.requests == []
    assert len(openrouter_server.requests) == 1


def test_invalid_utf8_mid_stream_keeps_what_came_before(
    openrouter_server: OpenRouterTestServer,
) -> None:
    body = PREFIX_BYTES + b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe"}}]}\n\n'
    openrouter_server.enqueue(recorded_reply(body + DONE))
    with pytest.raises(StreamError) as info:
        make_llm(openrouter_server).invoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.text == "Hello"
    assert reply_pcm(info.value.partial) == PCM
