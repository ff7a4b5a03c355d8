"""`OpenRouterTranscription` against the local server, with the shipped spoken clips."""

from __future__ import annotations

import base64
import math
import wave
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_openrouter_audio import (
    BadRequestError,
    OpenRouterTranscription,
    RateLimitError,
    ServerError,
    audio_block_from_file,
    get_openrouter_callback,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    error_reply,
    rate_limit_reply,
)
from langchain_openrouter_audio.testing._audio_api import mp3_from_pcm
from tests._helpers import ASSETS, CLIP_WORDS, clip_pcm

QUESTION = ASSETS / "question.wav"


def test_bytes_in_transcript_out(
    stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer
) -> None:
    wav = QUESTION.read_bytes()
    assert stt.invoke(wav) == CLIP_WORDS["question"]
    (request,) = openrouter_server.requests
    assert request.path == "/api/v1/audio/transcriptions"
    assert request.json == {
        "model": "openai/whisper-1",
        "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"},
    }


def test_blocks_messages_and_options(openrouter_server: OpenRouterTestServer) -> None:
    stt = OpenRouterTranscription(
        base_url=openrouter_server.base_url,
        api_key=openrouter_server.api_key,
        language="en",
        temperature=0.2,
        provider_options={"groq": {"prompt": "Paris"}},
    )
    try:
        block = audio_block_from_file(QUESTION)
        assert stt.invoke(block) == CLIP_WORDS["question"]
        message = HumanMessage(content=[{"type": "text", "text": "hi"}, block])
        assert stt.invoke(message) == CLIP_WORDS["question"]
        assert stt.invoke([message, HumanMessage("no audio here")]) == CLIP_WORDS["question"]
        # A block that names a file is read from disk.
        assert stt.invoke({"type": "audio", "path": str(QUESTION)}) == CLIP_WORDS["question"]
    finally:
        stt.close()
    body = openrouter_server.requests[-1].json
    assert body["language"] == "en"
    assert body["temperature"] == 0.2
    assert body["provider"] == {"options": {"groq": {"prompt": "Paris"}}}


def test_raw_pcm_blocks_go_as_wav_and_mp3_as_mp3(
    stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer
) -> None:
    pcm = clip_pcm("hello")
    block = {
        "type": "audio",
        "base64": base64.b64encode(pcm).decode(),
        "mime_type": "audio/pcm;rate=24000",
    }
    openrouter_server.transcript = "Hello!"
    assert stt.invoke(block) == "Hello!"
    sent = openrouter_server.requests[-1].json["input_audio"]
    assert sent["format"] == "wav"
    assert base64.b64decode(sent["data"])[:4] == b"RIFF"
    stt.invoke(mp3_from_pcm(pcm))
    assert openrouter_server.requests[-1].json["input_audio"]["format"] == "mp3"


def test_cost_reaches_the_cost_callback(
    stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer
) -> None:
    with get_openrouter_callback() as cb:
        stt.invoke(QUESTION.read_bytes())
        stt.invoke(QUESTION.read_bytes())
    assert cb.successful_requests == 2
    # Billed by the whole second at whisper-1's $0.0001 a second.
    with wave.open(str(QUESTION)) as w:
        billed = math.ceil(w.getnframes() / w.getframerate())
    assert cb.total_cost == pytest.approx(2 * billed * 0.0001)


async def test_async(stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue_transcription(Reply(text="async words"))
    assert await stt.ainvoke(QUESTION.read_bytes()) == "async words"
    assert await stt.abatch([QUESTION.read_bytes()]) == [CLIP_WORDS["question"]]


def test_retries_and_typed_errors(
    stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue_transcription(rate_limit_reply(0), Reply(text="after a retry"))
    assert stt.invoke(QUESTION.read_bytes()) == "after a retry"
    openrouter_server.enqueue_transcription(*[error_reply(502, "Provider returned error")] * 3)
    with pytest.raises(ServerError):
        stt.invoke(QUESTION.read_bytes())
    openrouter_server.enqueue_transcription(*[rate_limit_reply(0)] * 3)
    with pytest.raises(RateLimitError):
        stt.invoke(QUESTION.read_bytes())
    chat = OpenRouterTranscription(
        base_url=openrouter_server.base_url,
        api_key=openrouter_server.api_key,
        model="openai/gpt-4o",
    )
    try:
        with pytest.raises(BadRequestError, match="does not exist"):
            chat.invoke(QUESTION.read_bytes())
    finally:
        chat.close()


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ("question.wav", r"audio_block_from_file\('question.wav'\)"),
        (Path("question.wav"), "read_bytes"),
        (b"", "empty"),
        (b"not audio at all", "not audio of a known format"),
        (HumanMessage("What did I say?"), "no audio block"),
        ({"type": "audio", "url": "https://example.com/a.wav"}, "does not fetch audio URLs"),
        ({"type": "audio", "path": "/nonexistent/q.wav"}, "cannot read"),
        (42, "not a int"),
    ],
)
def test_bad_input_fails_before_the_network(
    stt: OpenRouterTranscription, openrouter_server: OpenRouterTestServer, given: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        stt.invoke(given)
    assert openrouter_server.requests == []


def test_size_limit_is_checked_before_reading(openrouter_server: OpenRouterTestServer) -> None:
    stt = OpenRouterTranscription(
        api_key="k", base_url=openrouter_server.base_url, max_audio_bytes=1000
    )
    with pytest.raises(ValueError, match="over max_audio_bytes=1000"):
        stt.invoke({"type": "audio", "path": str(QUESTION)})
    with pytest.raises(ValueError, match="over max_audio_bytes=1000"):
        stt.invoke(QUESTION.read_bytes())
    assert openrouter_server.requests == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="temperature"):
        OpenRouterTranscription(api_key="k", temperature=3)
    with pytest.raises(ValueError, match="language"):
        OpenRouterTranscription(api_key="k", language="English please")
    stt = OpenRouterTranscription(api_key="sk-or-hidden")
    assert "sk-or-hidden" not in repr(stt)
