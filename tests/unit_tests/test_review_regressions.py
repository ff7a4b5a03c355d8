"""Regression tests for bugs found in review (each failed before its fix)."""

from __future__ import annotations

import base64
import threading
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    ChatOpenRouterAudio,
    OpenRouterError,
    audio_block_from_bytes,
    audio_pcm,
)
from langchain_openrouter_audio._client import parse_retry_after
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    speech_reply,
    text_reply,
)


class _State(TypedDict):
    messages: Annotated[list[Any], add_messages]


def test_langgraph_messages_stream_shows_a_spoken_reply_once(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Hello there"))
    graph = StateGraph(_State)
    graph.add_node("model", lambda state: {"messages": [llm.invoke(state["messages"])]})
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    ids: dict[str | None, list[str]] = {}
    for message, _meta in graph.compile().stream(
        {"messages": [("user", "hi")]}, stream_mode="messages"
    ):
        ids.setdefault(message.id, []).append(type(message).__name__)
    # One message: its chunks, and not the whole reply (with its audio) once more.
    [kinds] = ids.values()
    assert set(kinds) == {"AIMessageChunk"}


def test_parallel_tool_calls_in_a_plain_reply_stay_apart(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    calls = [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_2", "name": "get_time", "arguments": '{"tz": "CET"}'},
    ]
    openrouter_server.enqueue(Reply(tool_calls=calls))
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    reply = llm.invoke([HumanMessage(content=[audio_block_from_bytes(question_wav)])])
    assert openrouter_server.requests[0].json["stream"] is False
    assert [(c["id"], c["name"], c["args"]) for c in reply.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_time", {"tz": "CET"}),
    ]
    assert reply.invalid_tool_calls == []


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


def test_per_call_client_options_are_refused_before_sending(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    for option in ({"timeout": 5}, {"audio_output": "pcm"}, {"api_key": "other"}):
        with pytest.raises(ValueError, match="set them on the model"):
            llm.invoke("hi", **option)
    assert openrouter_server.requests == []


def test_threads_racing_to_the_first_call_share_one_client() -> None:
    llm = ChatOpenRouterAudio(api_key="k", base_url="http://127.0.0.1:9/api/v1")
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def first_use() -> None:
        barrier.wait()
        seen.append(id(llm.client.client))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    llm.close()


def test_a_copy_makes_its_own_connections(answer_pcm: bytes) -> None:
    with OpenRouterTestServer(api_key="a") as a, OpenRouterTestServer(api_key="b-secret") as b:
        a.enqueue(speech_reply(answer_pcm, "from A"))
        b.enqueue(speech_reply(answer_pcm, "from B"))
        llm = ChatOpenRouterAudio(base_url=a.base_url, api_key="a")
        assert llm.invoke("hi").text == "from A"
        copy = llm.model_copy(update={"base_url": b.base_url, "api_key": "b-secret"})
        assert "b-secret" not in repr(copy)
        assert copy.invoke("hi").text == "from B"
        assert copy.client is not llm.client
        copy.close()
        llm.close()


def test_200_with_an_error_and_a_string_code_is_typed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "server_error", "message": "upstream exploded"}}
        return httpx.Response(200, json=body)

    llm = ChatOpenRouterAudio(
        api_key="k",
        model="openai/gpt-4o-mini",
        modalities=["text"],
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(OpenRouterError, match="upstream exploded") as caught:
        llm.invoke([AIMessage("x"), HumanMessage("hi")])
    assert caught.value.code == "server_error"


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
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_handler_that_skips_super_init_still_hears_audio(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, answer_pcm: bytes
) -> None:
    class Forgetful(AudioCallbackHandler):
        def __init__(self) -> None:  # no super().__init__()
            self.pcm = bytearray()

        def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            self.pcm += chunk

    openrouter_server.enqueue(speech_reply(answer_pcm, "ok"))
    handler = Forgetful()
    reply = llm.invoke("hi", config={"callbacks": [handler]})
    assert bytes(handler.pcm) == answer_pcm == audio_pcm(reply)


def test_wrapped_base64_audio_is_accepted(
    openrouter_server: OpenRouterTestServer, question_wav: bytes
) -> None:
    openrouter_server.enqueue(text_reply("ok"))
    wrapped = base64.encodebytes(question_wav).decode()  # MIME style, a newline every 76
    llm = ChatOpenRouterAudio(
        base_url=openrouter_server.base_url, api_key="test-key", modalities=["text"]
    )
    block = {"type": "audio", "base64": wrapped, "mime_type": "audio/wav"}
    assert llm.invoke([HumanMessage(content=[block])]).text == "ok"
    sent = openrouter_server.requests[0].json["messages"][0]["content"][0]["input_audio"]
    assert base64.b64decode(sent["data"], validate=True) == question_wav
