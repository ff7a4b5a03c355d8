"""A model that has made calls can be deep-copied and pickled: settings travel, connections
do not (the copy opens its own), and the key stays a secret."""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Iterator

import httpx
import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16
from tests._helpers import make_llm

SECRET = "sk-or-v1-COPY-SECRET"
PCM = tone_pcm16(0.2, 440.0)


@pytest.fixture
def server() -> Iterator[OpenRouterTestServer]:
    with OpenRouterTestServer(api_key=SECRET) as srv:
        srv.responder = lambda request: speech_reply(PCM, "Hello there.")
        yield srv


def _used(server: OpenRouterTestServer) -> ChatOpenRouterAudio:
    llm = make_llm(server, voice="sage")
    assert llm.invoke("hi").text == "Hello there."
    asyncio.run(llm.ainvoke("hi"))  # an async client for that loop too
    return llm


def test_used_model_deep_copies_and_the_copy_calls(server: OpenRouterTestServer) -> None:
    llm = _used(server)
    copied = copy.deepcopy(llm)
    assert copied.voice == "sage"
    assert copied.api_key is not None
    assert copied.api_key.get_secret_value() == SECRET
    assert copied.invoke("again").text == "Hello there."
    assert copied.client is not llm.client  # its own pool
    assert llm.invoke("still").text == "Hello there."  # the original's pool is untouched
    assert len(server.requests) == 4
    assert server.requests[-2].json["audio"]["voice"] == "sage"
    assert llm.model_copy(deep=True).invoke("deep").text == "Hello there."
    copied.close()
    llm.close()


def test_used_model_pickles_and_the_key_stays_secret(server: OpenRouterTestServer) -> None:
    llm = _used(server)
    restored = pickle.loads(pickle.dumps(llm))
    assert SECRET not in repr(restored)
    assert SECRET not in str(restored)
    assert restored.api_key is not None
    assert restored.api_key.get_secret_value() == SECRET
    assert restored.invoke("after pickle").text == "Hello there."
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    restored.close()
    llm.close()


def test_structured_output_copy_of_a_used_model_pickles(server: OpenRouterTestServer) -> None:
    llm = _used(server)
    schema = {"title": "answer", "type": "object", "properties": {"city": {"type": "string"}}}
    structured = llm.with_structured_output(schema)
    assert pickle.loads(pickle.dumps(structured)) is not None
    assert copy.deepcopy(structured) is not None
    llm.close()


def test_a_deep_copy_holding_the_model_and_its_structured_copy_keeps_both(
    server: OpenRouterTestServer,
) -> None:
    # An agent's state may hold the model and the copy `with_structured_output` binds: a
    # deep copy of it must copy the model too, whichever of the two comes first.
    llm = _used(server)
    schema = {"title": "answer", "type": "object", "properties": {"city": {"type": "string"}}}
    structured = llm.with_structured_output(schema)
    for held, at in (([structured, llm], 1), ([llm, structured], 0)):
        model = copy.deepcopy(held)[at]
        assert isinstance(model, ChatOpenRouterAudio)
        assert model is not llm
        assert model.invoke("copied").text == "Hello there."
        model.close()
    llm.close()


def test_injected_client_is_shared_by_a_copy_and_refuses_pickle(
    server: OpenRouterTestServer,
) -> None:
    with httpx.Client() as mine:
        llm = make_llm(server, http_client=mine)
        llm.invoke("hi")
        copied = copy.deepcopy(llm)
        assert copied.http_client is mine
        assert copied.invoke("hi").text == "Hello there."
        with pytest.raises(TypeError, match="injected http_client"):
            pickle.dumps(llm)


def test_used_speech_and_transcription_runnables_copy_and_pickle(
    server: OpenRouterTestServer,
) -> None:
    from langchain_openrouter_audio import OpenRouterSpeech, OpenRouterTranscription

    connection = {"base_url": server.base_url, "api_key": SECRET}
    tts = OpenRouterSpeech(voice="nova", **connection)
    stt = OpenRouterTranscription(**connection)
    assert tts.invoke("It is sunny.").text == "It is sunny."
    _ = stt.client  # its connections are open too
    for used in (tts, stt):
        restored = pickle.loads(pickle.dumps(used))
        assert SECRET not in repr(restored)
        assert restored.api_key is not None
        assert restored.api_key.get_secret_value() == SECRET
        assert restored.client is not used.client  # its own pool
        restored.close()
    for copied in (copy.deepcopy(tts), tts.model_copy(deep=True)):
        assert copied.client is not tts.client
        assert copied.invoke("Copied.").text == "Copied."
        copied.close()
    restored_tts = pickle.loads(pickle.dumps(tts))
    assert restored_tts.voice == "nova"
    assert restored_tts.invoke("Again.").text == "Again."
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    restored_tts.close()
    tts.close()
    stt.close()
