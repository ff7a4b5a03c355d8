"""The test server's dedicated audio endpoints answer like OpenRouter's, over real sockets."""

from __future__ import annotations

import base64
import io
import json
import wave

import httpx
import pytest

from langchain_openrouter_audio._formats import sniff_audio_format
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    error_reply,
    rate_limit_reply,
)
from langchain_openrouter_audio.testing._audio_api import clip_transcript
from tests._helpers import ASSETS

TTS = "openai/gpt-4o-mini-tts-2025-12-15"


def _auth(server: OpenRouterTestServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


def _speak(server: OpenRouterTestServer, **body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}/audio/speech", headers=_auth(server), json=body)


def test_speech_pcm_is_the_spoken_input(openrouter_server: OpenRouterTestServer) -> None:
    r = _speak(openrouter_server, model=TTS, input="Hello there", voice="alloy")
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/pcm;rate=24000;channels=1"
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["x-generation-id"].startswith("gen-tts-")
    # About a second of 16-bit 24 kHz speech, with real signal in it.
    assert 24000 < len(r.content) < 4 * 48000
    assert len(r.content) % 2 == 0
    assert max(r.content[1::2]) > 0


def test_speech_mp3_is_mpeg(openrouter_server: OpenRouterTestServer) -> None:
    r = _speak(openrouter_server, model=TTS, input="Hi", voice="alloy", response_format="mp3")
    assert r.headers["content-type"] == "audio/mpeg"
    assert sniff_audio_format(r.content) == "mp3"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"model": TTS}, ["input"]),
        ({"input": "hi"}, ["model"]),
        ({"model": TTS, "input": "hi", "response_format": "wav"}, ["response_format"]),
        ({"model": TTS, "input": "hi", "voice": ""}, ["voice"]),
    ],
)
def test_speech_schema_errors_have_the_validator_shape(
    openrouter_server: OpenRouterTestServer, body: dict[str, object], path: list[str]
) -> None:
    r = _speak(openrouter_server, **body)
    assert r.status_code == 400
    payload = r.json()
    assert payload["success"] is False
    assert payload["error"]["name"] == "ZodError"
    assert [issue["path"] for issue in json.loads(payload["error"]["message"])] == [path]


def test_speech_refuses_chat_models(openrouter_server: OpenRouterTestServer) -> None:
    r = _speak(openrouter_server, model="openai/gpt-audio-mini", input="hi", voice="alloy")
    assert r.json() == {
        "error": {"code": 400, "message": "Model openai/gpt-audio-mini does not exist"}
    }


def test_speech_script_and_cut(openrouter_server: OpenRouterTestServer) -> None:
    pcm = bytes(range(256)) * 40
    openrouter_server.enqueue_speech(
        rate_limit_reply(2), Reply(pcm=pcm, audio_piece_bytes=1000, cut_after=3)
    )
    assert _speak(openrouter_server, model=TTS, input="x").status_code == 429
    with pytest.raises(httpx.RemoteProtocolError):
        _speak(openrouter_server, model=TTS, input="x")


def test_generation_comes_late(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.generation_misses = 2
    gen_id = _speak(openrouter_server, model=TTS, input="Hello").headers["x-generation-id"]
    url = f"{openrouter_server.base_url}/generation"
    codes = [
        httpx.get(url, params={"id": gen_id}, headers=_auth(openrouter_server)).status_code
        for _ in range(3)
    ]
    assert codes == [404, 404, 200]
    data = httpx.get(url, params={"id": gen_id}, headers=_auth(openrouter_server)).json()["data"]
    assert data["api_type"] == "tts"
    assert data["model"] == TTS
    assert data["total_cost"] == pytest.approx(0.6e-6 * len("Hello"))
    assert "native_tokens_prompt" in data
    assert data["native_tokens_prompt"] is None


def _transcribe(server: OpenRouterTestServer, **body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}/audio/transcriptions", headers=_auth(server), json=body)


def test_transcription_of_a_shipped_clip(openrouter_server: OpenRouterTestServer) -> None:
    wav = (ASSETS / "question.wav").read_bytes()
    with wave.open(io.BytesIO(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    data = base64.b64encode(wav).decode()
    r = _transcribe(
        openrouter_server, model="openai/whisper-1", input_audio={"data": data, "format": "wav"}
    )
    assert r.headers["x-generation-id"].startswith("gen-stt-")
    body = r.json()
    assert body["text"] == clip_transcript(data) == "What is the weather like in Paris right now?"
    billed = -(-seconds // 1)
    assert body["usage"] == {"seconds": billed, "cost": pytest.approx(billed * 0.0001)}


def test_transcription_script_and_errors(openrouter_server: OpenRouterTestServer) -> None:
    wav = base64.b64encode((ASSETS / "hello.wav").read_bytes()).decode()
    audio = {"data": wav, "format": "wav"}
    openrouter_server.enqueue_transcription(Reply(text="scripted"), error_reply(502, "down"))
    assert (
        _transcribe(openrouter_server, model="openai/whisper-1", input_audio=audio).json()["text"]
        == "scripted"
    )
    assert (
        _transcribe(openrouter_server, model="openai/whisper-1", input_audio=audio).status_code
        == 502
    )
    openrouter_server.transcript = "configured"
    assert (
        _transcribe(openrouter_server, model="openai/whisper-1", input_audio=audio).json()["text"]
        == "configured"
    )
    missing = _transcribe(openrouter_server, model="openai/whisper-1", input_audio={"data": wav})
    assert missing.json()["error"]["name"] == "ZodError"
    uri = {"data": "data:audio/wav;base64," + wav, "format": "wav"}
    assert (
        _transcribe(openrouter_server, model="openai/whisper-1", input_audio=uri).status_code == 400
    )
    chat = _transcribe(openrouter_server, model="openai/gpt-4o", input_audio=audio)
    assert chat.json()["error"]["message"] == "Model openai/gpt-4o does not exist"
    # Every request was recorded, errors included.
    assert [r.path for r in openrouter_server.requests][-1] == "/api/v1/audio/transcriptions"
