"""Models know what they can do: no model is asked for audio it cannot make."""

from __future__ import annotations

import httpx
import pytest

from langchain_openrouter_audio import BadRequestError, ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_reply,
    text_reply,
    tone_pcm16,
)
from tests._helpers import make_llm


def test_a_text_model_answers_in_text(openrouter_server: OpenRouterTestServer) -> None:
    llm = make_llm(openrouter_server, model="openai/gpt-4o")
    assert llm.modalities == ["text"]
    openrouter_server.enqueue(text_reply("Paris."))
    assert llm.invoke("Capital of France?").text == "Paris."
    body = openrouter_server.requests[-1].json
    assert body["modalities"] == ["text"]
    assert "audio" not in body
    assert body["stream"] is False


@pytest.mark.parametrize(
    "model", ["openai/gpt-audio", "openai/gpt-audio-mini", "google/lyria-3-clip-preview"]
)
def test_models_that_speak_speak_by_default(model: str) -> None:
    assert ChatOpenRouterAudio(api_key="k", model=model).modalities == ["text", "audio"]


def test_audio_from_a_text_model_is_refused_before_the_network(
    openrouter_server: OpenRouterTestServer,
) -> None:
    with pytest.raises(ValueError, match=r"openai/gpt-4o cannot answer in audio.*OpenRouterSpeech"):
        make_llm(openrouter_server, model="openai/gpt-4o", modalities=["text", "audio"])
    llm = make_llm(openrouter_server, model="openai/gpt-4o")
    with pytest.raises(ValueError, match="gpt-audio-mini"):
        llm.invoke("hi", modalities=["text", "audio"])
    spoken = make_llm(openrouter_server)
    with pytest.raises(ValueError, match="cannot answer in audio"):
        spoken.invoke("hi", model="openai/gpt-4o", modalities=["text", "audio"])
    assert openrouter_server.requests == []


def test_a_per_call_model_brings_its_own_default(openrouter_server: OpenRouterTestServer) -> None:
    llm = make_llm(openrouter_server)  # gpt-audio-mini: speaks
    openrouter_server.enqueue(text_reply("Paris."))
    assert llm.invoke("Capital of France?", model="openai/gpt-4o").text == "Paris."
    assert openrouter_server.requests[-1].json["modalities"] == ["text"]


def test_speaks_true_trusts_the_user_and_the_server_still_refuses(
    openrouter_server: OpenRouterTestServer,
) -> None:
    llm = make_llm(openrouter_server, model="acme/text-only", speaks=True, max_retries=0)
    assert llm.modalities == ["text", "audio"]
    with pytest.raises(BadRequestError, match="does not support audio output"):
        llm.invoke("hi")
    assert openrouter_server.requests[-1].json["modalities"] == ["text", "audio"]


def test_the_test_server_refuses_audio_from_text_models(
    openrouter_server: OpenRouterTestServer,
) -> None:
    body = {
        "model": "openai/gpt-4o",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    auth = {"Authorization": f"Bearer {openrouter_server.api_key}"}
    r = httpx.post(f"{openrouter_server.base_url}/chat/completions", json=body, headers=auth)
    assert r.status_code == 400
    assert "does not support audio output" in r.json()["error"]["metadata"]["raw"]


def test_lookup_asks_the_catalog_once(openrouter_server: OpenRouterTestServer) -> None:
    from langchain_openrouter_audio import _catalog

    # The catalog is cached per API root for the process: an earlier server on the same
    # (reused) port would otherwise answer for this one.
    _catalog.clear_cache()
    openrouter_server.extra_models.append(
        {
            "id": "acme/new-audio",
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text", "audio"]},
        }
    )
    new = make_llm(openrouter_server, model="acme/new-audio", speaks="lookup")
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.2), "Hi"))
    assert new.invoke("Say hi").text == "Hi"
    body = openrouter_server.requests[-1].json
    assert body["modalities"] == ["text", "audio"]
    # A text model, looked up too: text by default, audio refused before the chat call.
    text = make_llm(openrouter_server, model="openai/gpt-4o", speaks="lookup")
    openrouter_server.enqueue(text_reply("Paris."))
    assert text.invoke("Capital of France?").text == "Paris."
    assert openrouter_server.requests[-1].json["modalities"] == ["text"]
    with pytest.raises(ValueError, match="cannot answer in audio"):
        text.invoke("hi", modalities=["text", "audio"])
    paths = [r.path for r in openrouter_server.requests]
    assert paths.count("/api/v1/models?output_modalities=audio") == 1  # cached per API root
    assert paths.count("/api/v1/chat/completions") == 2


def test_the_catalog_filters_like_openrouter(openrouter_server: OpenRouterTestServer) -> None:
    auth = {"Authorization": f"Bearer {openrouter_server.api_key}"}
    url = f"{openrouter_server.base_url}/models"

    def ids(**params: str) -> set[str]:
        return {m["id"] for m in httpx.get(url, params=params, headers=auth).json()["data"]}

    assert "openai/gpt-4o" in ids()
    assert "openai/whisper-1" not in ids()  # text models only, unless asked
    assert "openai/gpt-audio-mini" in ids(output_modalities="audio")
    assert "openai/gpt-4o" not in ids(output_modalities="audio")
    assert "openai/gpt-4o-mini-tts-2025-12-15" in ids(output_modalities="speech")
    assert "openai/whisper-1" in ids(output_modalities="transcription")
