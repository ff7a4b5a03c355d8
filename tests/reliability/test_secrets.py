"""The API key goes in the Authorization header to the configured host, and nowhere else."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.errors import (
    APIConnectionError,
    AuthenticationError,
    OpenRouterError,
    RateLimitError,
    StreamError,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    error_reply,
    rate_limit_reply,
    speech_reply,
    tone_pcm16,
)
from tests._helpers import make_llm, refusing_port

SECRET = "sk-or-v1-SECRET-xyz"
PCM = tone_pcm16(0.1, 440.0)


@pytest.fixture
def server() -> Iterator[OpenRouterTestServer]:
    with OpenRouterTestServer(api_key=SECRET) as srv:
        yield srv


@pytest.fixture
def llm(server: OpenRouterTestServer) -> ChatOpenRouterAudio:
    return make_llm(server, max_retries=2)


def _no_secret(*things: Any) -> None:
    for thing in things:
        assert SECRET not in str(thing)
        assert SECRET not in repr(thing)


def _check_exception(err: BaseException) -> None:
    _no_secret(err, err.args, vars(err))
    _no_secret("".join(traceback.format_exception(err)))
    if isinstance(err, StreamError) and err.partial is not None:
        _no_secret(err.partial)
    for linked in (err.__cause__, err.__context__):
        if linked is not None:
            _check_exception(linked)


class _Spy(BaseCallbackHandler):
    """Records everything LangChain hands to callbacks (what a tracer would upload)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self.seen.append((serialized, messages, kw))

    def on_llm_new_token(self, token: str, **kw: Any) -> None:
        self.seen.append((token, kw))

    def on_llm_end(self, response: Any, **kw: Any) -> None:
        self.seen.append((response, kw))

    def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        self.seen.append((error, kw))


def _check_server_records(server: OpenRouterTestServer) -> None:
    assert server.requests
    for request in server.requests:
        assert request.authorization == f"Bearer {SECRET}"
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        _no_secret(others, request.body, request.path)


# -- the model object ----------------------------------------------------------------


def test_model_repr_and_serialization_hide_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer
) -> None:
    server.enqueue(speech_reply(PCM, "hello"))
    llm.invoke("hi")  # the transport (which holds the header) now exists
    _no_secret(llm, llm.model_dump(), llm.model_dump_json(), dumps(llm), dumpd(llm))
    _no_secret(dumps(llm, pretty=True))
    _no_secret(llm._get_ls_params(), llm._identifying_params, llm.asdict())
    _no_secret(llm.__dict__, llm.model_fields_set)
    # The secret is there, but only behind get_secret_value().
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == SECRET
    _check_server_records(server)


def test_key_from_environment_is_hidden_too(
    monkeypatch: pytest.MonkeyPatch, server: OpenRouterTestServer
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", SECRET)
    llm = ChatOpenRouterAudio(base_url=server.base_url)
    _no_secret(llm, llm.model_dump(), llm.model_dump_json(), dumps(llm))
    server.enqueue(speech_reply(PCM, "env"))
    assert llm.invoke("hi").text == "env"


def test_openrouter_api_key_spelling_is_the_secret_field(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "ok"))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, openrouter_api_key="test-key")
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == "test-key"
    assert "test-key" not in repr(llm)
    llm.invoke("hi")
    assert b"test-key" not in openrouter_server.requests[0].body


def test_secret_looking_unknown_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="look like secrets"):
        ChatOpenRouterAudio(api_key="k", openai_api_key="sk-123")
    with pytest.raises(ValueError, match="look like secrets"):
        ChatOpenRouterAudio(api_key="k", access_token="t")


def test_callbacks_never_see_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer
) -> None:
    spy = _Spy()
    server.enqueue(speech_reply(PCM, "hello"))
    llm.invoke("hi", config={"callbacks": [spy]})
    server.enqueue(rate_limit_reply(0.01), speech_reply(PCM, "again", error_after=2))
    with pytest.raises(StreamError):
        llm.invoke("hi", config={"callbacks": [spy]})
    assert spy.seen
    _no_secret(spy.seen)


# -- errors ----------------------------------------------------------------------------


def test_401_error_hides_the_key(server: OpenRouterTestServer) -> None:
    # The server knows another key, so ours is refused: a real 401.
    other = OpenRouterTestServer(api_key="sk-or-v1-the-right-one").start()
    try:
        llm = make_llm(other, api_key=SECRET)
        with pytest.raises(AuthenticationError) as info:
            llm.invoke("hi")
        _check_exception(info.value)
    finally:
        other.stop()


def test_scripted_401_hides_the_key(llm: ChatOpenRouterAudio, server: OpenRouterTestServer) -> None:
    server.enqueue(error_reply(401, "Invalid credentials"))
    with pytest.raises(AuthenticationError) as info:
        llm.invoke("hi")
    _check_exception(info.value)


def test_429_storm_error_hides_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer
) -> None:
    server.enqueue(*[rate_limit_reply(0.01) for _ in range(3)])
    with pytest.raises(RateLimitError) as info:
        llm.invoke("hi")
    _check_exception(info.value)
    _check_server_records(server)


def test_midstream_error_hides_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer
) -> None:
    server.enqueue(speech_reply(PCM, "partial words", error_after=3))
    with pytest.raises(StreamError) as info:
        llm.invoke("hi")
    _check_exception(info.value)


async def test_async_errors_hide_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer
) -> None:
    server.enqueue(speech_reply(PCM, "partial words", cut_after=2))
    with pytest.raises(StreamError) as info:
        await llm.ainvoke("hi")
    _check_exception(info.value)
    await llm.aclose()


@pytest.mark.usefixtures("fast_backoff")
def test_connection_error_hides_the_key() -> None:
    with refusing_port() as port:
        llm = ChatOpenRouterAudio(
            base_url=f"http://127.0.0.1:{port}/api/v1", api_key=SECRET, max_retries=1
        )
        with pytest.raises(APIConnectionError) as info:
            llm.invoke("hi")
    _check_exception(info.value)


# -- logs --------------------------------------------------------------------------------


def test_debug_logs_never_carry_the_key(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: langchain_openrouter_audio, httpx, httpcore, ...
    for name in ("langchain_openrouter_audio", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    server.enqueue(rate_limit_reply(0.01), speech_reply(PCM, "hello"))
    llm.invoke("hi")
    server.enqueue(error_reply(401, "Invalid credentials"))
    with pytest.raises(AuthenticationError):
        llm.invoke("hi")
    server.enqueue(speech_reply(PCM, "broken", error_after=2))
    with pytest.raises(StreamError):
        llm.invoke("hi")
    server.enqueue(error_reply(503, "busy", headers={"Retry-After": "0.01"}))
    server.enqueue(speech_reply(PCM, "streamed"))
    list(llm.stream("hi"))
    names = {r.name.split(".")[0] for r in caplog.records}
    assert {"httpx", "httpcore", "langchain_openrouter_audio"} <= names  # we did listen
    for record in caplog.records:
        _no_secret(record.getMessage(), record.args, record.__dict__)
    _no_secret(caplog.text)


# -- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_another_host_is_not_followed(
    llm: ChatOpenRouterAudio,
    server: OpenRouterTestServer,
    second_server: OpenRouterTestServer,
    status: int,
) -> None:
    second_server.enqueue(speech_reply(PCM, "stolen"))
    location = f"{second_server.base_url}/chat/completions"
    server.enqueue(error_reply(status, "moved", headers={"Location": location}))
    with pytest.raises(OpenRouterError) as info:
        llm.invoke("hi")
    assert info.value.status_code == status
    assert second_server.requests == []
    assert len(server.requests) == 1  # and not retried
    _check_exception(info.value)


async def test_redirect_not_followed_async(
    llm: ChatOpenRouterAudio, server: OpenRouterTestServer, second_server: OpenRouterTestServer
) -> None:
    location = f"{second_server.base_url}/chat/completions"
    server.enqueue(error_reply(307, "moved", headers={"Location": location}))
    with pytest.raises(OpenRouterError) as info:
        await llm.ainvoke("hi")
    assert info.value.status_code == 307
    assert second_server.requests == []
    await llm.aclose()


def test_redirect_not_followed_for_plain_post(
    server: OpenRouterTestServer, second_server: OpenRouterTestServer
) -> None:
    from tests._helpers import question_with_audio

    llm = make_llm(server, modalities=["text"])
    location = f"{second_server.base_url}/chat/completions"
    server.enqueue(error_reply(307, "moved", headers={"Location": location}))
    with pytest.raises(OpenRouterError) as info:
        llm.invoke([question_with_audio("hi")])
    assert info.value.status_code == 307
    assert second_server.requests == []
    assert server.requests[0].json["stream"] is False
