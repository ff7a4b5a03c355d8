"""Retries: which failures are retried, how many times, and how long the client waits."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from types import SimpleNamespace

import httpx
import pytest

from langchain_openrouter_audio import _client
from langchain_openrouter_audio.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    OpenRouterError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    error_reply,
    rate_limit_reply,
    speech_reply,
    text_reply,
    tone_pcm16,
)
from tests._helpers import (
    Recorder,
    make_llm,
    question_with_audio,
    refusing_port,
    reply_pcm,
    summed_pcm,
)

PCM = tone_pcm16(0.2, 440.0)
TRANSCRIPT = "Retried and fine."


def _ok():
    return speech_reply(PCM, TRANSCRIPT)


def _check_ok(msg) -> None:
    assert msg.text == TRANSCRIPT
    assert reply_pcm(msg) == PCM


def _retry_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "langchain_openrouter_audio" and "retry" in r.getMessage()
    )


# -- 429 and Retry-After -------------------------------------------------------


def test_429_retry_after_seconds_then_success(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(rate_limit_reply(0.05), _ok())
    llm = make_llm(openrouter_server)
    _check_ok(llm.invoke("hi"))
    assert len(openrouter_server.requests) == 2


def test_429_retry_after_one_second_is_honoured(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(rate_limit_reply(1), _ok())
    llm = make_llm(openrouter_server)
    start = time.monotonic()
    _check_ok(llm.invoke("hi"))
    assert time.monotonic() - start >= 0.9
    assert len(openrouter_server.requests) == 2


def test_429_retry_after_http_date(openrouter_server: OpenRouterTestServer) -> None:
    # An HTTP-date has one-second resolution: "now + 2 s" means a wait of 1-2 s.
    when = formatdate(time.time() + 2, usegmt=True)
    openrouter_server.enqueue(rate_limit_reply(when), _ok())
    llm = make_llm(openrouter_server)
    start = time.monotonic()
    _check_ok(llm.invoke("hi"))
    assert time.monotonic() - start >= 0.5
    assert len(openrouter_server.requests) == 2


def test_429_retry_after_ms(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(rate_limit_reply(None, headers={"retry-after-ms": "50"}), _ok())
    llm = make_llm(openrouter_server)
    _check_ok(llm.invoke("hi"))
    assert len(openrouter_server.requests) == 2


def test_retry_after_ms_takes_precedence_over_retry_after(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # Retry-After says 30 s; retry-after-ms says 50 ms: the precise one wins.
    reply = rate_limit_reply(30, headers={"retry-after-ms": "50"})
    openrouter_server.enqueue(reply, _ok())
    llm = make_llm(openrouter_server)
    _check_ok(llm.invoke("hi"))
    assert len(openrouter_server.requests) == 2


async def test_429_retry_async(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(rate_limit_reply(0.05), _ok())
    llm = make_llm(openrouter_server)
    handler = Recorder()
    msg = await llm.ainvoke("hi", config={"callbacks": [handler]})
    _check_ok(msg)
    # The 429 delivered nothing, so the retry's audio is heard exactly once.
    assert handler.pcm == PCM
    assert len(openrouter_server.requests) == 2


def test_429_retry_non_streamed_text_request(openrouter_server: OpenRouterTestServer) -> None:
    # modalities=["text"] without streaming goes through the plain POST path.
    openrouter_server.enqueue(rate_limit_reply(0.05), text_reply("plain answer"))
    llm = make_llm(openrouter_server, modalities=["text"])
    msg = llm.invoke([question_with_audio("what is this?")])
    assert msg.content == "plain answer"
    assert len(openrouter_server.requests) == 2
    assert openrouter_server.requests[0].json["stream"] is False


@pytest.mark.parametrize("max_retries", [0, 2])
def test_429_storm_gives_up_after_max_retries(
    openrouter_server: OpenRouterTestServer, max_retries: int
) -> None:
    openrouter_server.enqueue(*[rate_limit_reply(0.05) for _ in range(max_retries + 3)])
    llm = make_llm(openrouter_server, max_retries=max_retries)
    with pytest.raises(RateLimitError) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == max_retries + 1
    assert openrouter_server.pending == 2
    err = info.value
    assert err.status_code == 429
    assert err.retry_after == pytest.approx(0.05)
    assert "Rate limit exceeded" in str(err)
    assert "429" in str(err)


async def test_429_storm_gives_up_async(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(*[rate_limit_reply(0.05) for _ in range(5)])
    llm = make_llm(openrouter_server, max_retries=3)
    with pytest.raises(RateLimitError):
        await llm.ainvoke("hi")
    assert len(openrouter_server.requests) == 4


def test_retry_after_is_capped_at_sixty_seconds() -> None:
    err = RateLimitError("slow down", status_code=429, retry_after=3600.0)
    state = SimpleNamespace(outcome=SimpleNamespace(exception=lambda: err))
    assert _client._wait(state) == 60.0  # type: ignore[arg-type]


def test_negative_retry_after_means_no_wait() -> None:
    err = RateLimitError("slow down", status_code=429, retry_after=-5.0)
    state = SimpleNamespace(outcome=SimpleNamespace(exception=lambda: err))
    assert _client._wait(state) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "bogus", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "not a date"}, None),
        ({"Retry-After": formatdate(0, usegmt=True)}, 0.0),  # in the past: no wait
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert _client.parse_retry_after(httpx.Headers(headers)) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "250"}, 0.25),
    ],
)
def test_retry_after_that_is_not_a_finite_number_is_ignored(
    headers: dict[str, str], expected: float | None
) -> None:
    assert _client.parse_retry_after(httpx.Headers(headers)) == expected


# -- 5xx retried, 4xx not ------------------------------------------------------


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_retryable_status_then_success(
    openrouter_server: OpenRouterTestServer, status: int
) -> None:
    failure = error_reply(status, "upstream trouble", headers={"Retry-After": "0.01"})
    openrouter_server.enqueue(failure, _ok())
    llm = make_llm(openrouter_server)
    _check_ok(llm.invoke("hi"))
    assert len(openrouter_server.requests) == 2


def test_5xx_storm_gives_up(openrouter_server: OpenRouterTestServer) -> None:
    failures = [error_reply(503, "overloaded", headers={"Retry-After": "0.01"}) for _ in range(4)]
    openrouter_server.enqueue(*failures)
    llm = make_llm(openrouter_server, max_retries=2)
    with pytest.raises(ServerError) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == 3
    assert info.value.status_code == 503
    assert "overloaded" in str(info.value)
    assert info.value.metadata.get("error_type") == "provider_overloaded"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
    ],
)
def test_client_errors_not_retried(
    openrouter_server: OpenRouterTestServer, status: int, cls: type[OpenRouterError]
) -> None:
    # Even with a Retry-After header, a 4xx (other than 408/429) is final.
    openrouter_server.enqueue(
        error_reply(status, f"refused with {status}", headers={"Retry-After": "0.01"}), _ok()
    )
    llm = make_llm(openrouter_server)
    with pytest.raises(cls) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == 1
    assert info.value.status_code == status
    assert f"refused with {status}" in str(info.value)


async def test_client_error_not_retried_async(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(error_reply(400, "bad thing"), _ok())
    llm = make_llm(openrouter_server)
    with pytest.raises(BadRequestError):
        await llm.ainvoke("hi")
    assert len(openrouter_server.requests) == 1


def test_wrong_key_is_401_not_retried(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_ok())
    llm = make_llm(openrouter_server, api_key="wrong-key")
    with pytest.raises(AuthenticationError) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == 1
    assert info.value.status_code == 401
    assert "User not found" in str(info.value)


def test_relayed_provider_error_names_the_cause(openrouter_server: OpenRouterTestServer) -> None:
    raw = '{"error":{"message":"Unsupported value: audio.format","type":"invalid_request_error"}}'
    meta = {"raw": raw, "provider_name": "OpenAI", "is_byok": False}
    openrouter_server.enqueue(error_reply(400, "Provider returned error", metadata=meta))
    llm = make_llm(openrouter_server)
    with pytest.raises(BadRequestError) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == 1
    assert info.value.metadata["provider_name"] == "OpenAI"
    assert "Unsupported value: audio.format" in str(info.value)


# -- connection failures ---------------------------------------------------------


@pytest.mark.usefixtures("fast_backoff")
@pytest.mark.parametrize("max_retries", [0, 2])
def test_connection_refused(caplog: pytest.LogCaptureFixture, max_retries: int) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/api/v1"
        llm = make_llm(SimpleNamespace(base_url=url, api_key="k"), max_retries=max_retries)
        with (
            caplog.at_level(logging.WARNING, logger="langchain_openrouter_audio"),
            pytest.raises(APIConnectionError) as info,
        ):
            llm.invoke("hi")
    assert not isinstance(info.value, APITimeoutError)
    assert "could not reach" in str(info.value)
    assert "ConnectError" in str(info.value)
    # One warning per retry: max_retries retries, max_retries + 1 attempts.
    assert _retry_warnings(caplog) == max_retries


@pytest.mark.usefixtures("fast_backoff")
async def test_connection_refused_async(caplog: pytest.LogCaptureFixture) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/api/v1"
        llm = make_llm(SimpleNamespace(base_url=url, api_key="k"), max_retries=3)
        with (
            caplog.at_level(logging.WARNING, logger="langchain_openrouter_audio"),
            pytest.raises(APIConnectionError),
        ):
            await llm.ainvoke("hi")
    assert _retry_warnings(caplog) == 3


@pytest.mark.usefixtures("fast_backoff")
def test_reset_before_headers_then_success(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(Reply(reset_before_headers=True), _ok())
    llm = make_llm(openrouter_server)
    handler = Recorder()
    _check_ok(llm.invoke("hi", config={"callbacks": [handler]}))
    assert len(openrouter_server.requests) == 2
    assert handler.pcm == PCM


@pytest.mark.usefixtures("fast_backoff")
async def test_reset_before_headers_then_success_async(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(Reply(reset_before_headers=True), _ok())
    llm = make_llm(openrouter_server)
    _check_ok(await llm.ainvoke("hi"))
    assert len(openrouter_server.requests) == 2


@pytest.mark.usefixtures("fast_backoff")
def test_reset_storm_gives_up(openrouter_server: OpenRouterTestServer) -> None:
    resets = [Reply(reset_before_headers=True) for _ in range(4)]
    openrouter_server.enqueue(*resets)
    llm = make_llm(openrouter_server, max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        llm.invoke("hi")
    assert len(openrouter_server.requests) == 3
    assert "could not reach" in str(info.value)


@pytest.mark.usefixtures("fast_backoff")
def test_headers_slower_than_timeout_is_a_retried_timeout(
    openrouter_server: OpenRouterTestServer,
) -> None:
    slow = speech_reply(PCM, TRANSCRIPT, headers_delay_s=10.0)
    openrouter_server.enqueue(slow, _ok())
    # The retry's headers must come within the timeout: 1.5 s leaves a loaded machine room.
    llm = make_llm(openrouter_server, timeout=1.5)
    _check_ok(llm.invoke("hi"))
    assert len(openrouter_server.requests) == 2


@pytest.mark.usefixtures("fast_backoff")
def test_headers_timeout_storm_is_api_timeout_error(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(*[speech_reply(PCM, TRANSCRIPT, headers_delay_s=1.5)] * 2)
    llm = make_llm(openrouter_server, timeout=0.3, max_retries=1)
    with pytest.raises(APITimeoutError) as info:
        llm.invoke("hi")
    assert "timed out" in str(info.value)
    assert len(openrouter_server.requests) == 2


# -- a retry happens only before any chunk reached the caller -----------------------------


def test_stream_retried_before_first_chunk_delivers_audio_once(
    openrouter_server: OpenRouterTestServer,
) -> None:
    failure = error_reply(503, "overloaded", headers={"Retry-After": "0.01"})
    openrouter_server.enqueue(failure, _ok())
    llm = make_llm(openrouter_server)
    handler = Recorder()
    chunks = list(llm.stream("hi", config={"callbacks": [handler]}))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.text == TRANSCRIPT
    assert summed_pcm(total) == PCM
    assert handler.pcm == PCM
    assert len(openrouter_server.requests) == 2


def test_midstream_rate_limit_event_is_not_retried(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # A 429 *inside* a 200 stream: part of the reply was delivered, so no retry.
    error = {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "x"}}
    openrouter_server.enqueue(speech_reply(PCM, TRANSCRIPT, error_after=2, stream_error=error))
    openrouter_server.enqueue(_ok())
    llm = make_llm(openrouter_server, max_retries=5)
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    assert not isinstance(info.value, RateLimitError)
    assert info.value.status_code == 429
    assert "Rate limit exceeded" in str(info.value)
    assert len(openrouter_server.requests) == 1
    assert openrouter_server.pending == 1


# -- error bodies that are not OpenRouter JSON (a proxy's HTML page) -------------------------


def test_html_502_from_a_proxy_is_retried_and_named() -> None:
    from langchain_openrouter_audio import ChatOpenRouterAudio

    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        return httpx.Response(502, headers={"Retry-After": "0.01"}, text=html)

    llm = ChatOpenRouterAudio(
        base_url="http://proxy.test/api/v1",
        api_key="k",
        max_retries=2,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(ServerError) as info:
        llm.invoke("hi")
    assert len(calls) == 3
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in str(info.value)
