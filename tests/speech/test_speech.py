"""`OpenRouterSpeech` against the local server: real sockets, real espeak-ng speech."""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    BadRequestError,
    IncompleteStreamError,
    OpenRouterSpeech,
    RateLimitError,
    audio_bytes,
    audio_pcm,
    get_openrouter_callback,
    save_audio,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    rate_limit_reply,
    raw_reply,
    speech_pcm16,
)
from langchain_openrouter_audio.testing._audio_api import mp3_from_pcm, zod_error
from langchain_openrouter_audio.voice import truncate_to_heard
from tests._helpers import HAS_ESPEAK, summed, summed_pcm

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="needs espeak-ng")


class _Heard(AudioCallbackHandler):
    def __init__(self) -> None:
        super().__init__()
        self.pcm = b""
        self.rates: set[int] = set()
        self.ended = 0

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        assert len(chunk) % 2 == 0  # whole samples only
        self.pcm += chunk
        self.rates.add(sample_rate)

    def on_audio_end(self, **kwargs: Any) -> None:
        self.ended += 1


def test_invoke_is_a_spoken_reply(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer, tmp_path: Any
) -> None:
    reply = tts.invoke("Your table is booked.")
    assert isinstance(reply, AIMessage)
    assert reply.text == "Your table is booked."
    (block,) = [b for b in reply.content if isinstance(b, dict) and b["type"] == "audio"]
    assert block["mime_type"] == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(block["base64"]))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
    # Exactly the speech the server sent: espeak-ng's rendering of the input.
    assert audio_pcm(reply) == speech_pcm16("Your table is booked.")
    assert save_audio(reply, tmp_path / "booked.wav").stat().st_size > 44
    # The voice loop's barge-in cut takes it like a spoken reply of the chat model.
    heard = truncate_to_heard(reply, 0.5)
    assert audio_pcm(heard) == speech_pcm16("Your table is booked.")[:24000]
    assert 0 < len(heard.text) < len(reply.text)
    assert reply.response_metadata["id"].startswith("gen-tts-")
    (request,) = openrouter_server.requests
    assert request.path == "/api/v1/audio/speech"
    assert request.json == {
        "model": "openai/gpt-4o-mini-tts-2025-12-15",
        "input": "Your table is booked.",
        "response_format": "pcm",
        "voice": "alloy",
    }


def test_an_agent_reply_is_spoken_with_provider_options(
    openrouter_server: OpenRouterTestServer,
) -> None:
    tts = OpenRouterSpeech(
        base_url=openrouter_server.base_url,
        api_key=openrouter_server.api_key,
        voice="nova",
        speed=1.25,
        instructions="Calm and warm.",
        provider_options={"azure": {"style": "cheerful"}},
    )
    try:
        reply = tts.invoke(AIMessage("It is sunny."), voice="coral")
    finally:
        tts.close()
    assert reply.text == "It is sunny."
    body = openrouter_server.requests[-1].json
    assert body["voice"] == "coral"
    assert body["speed"] == 1.25
    assert "instructions" not in body  # not in OpenRouter's schema: it goes to the provider
    assert body["provider"] == {
        "options": {"openai": {"instructions": "Calm and warm."}, "azure": {"style": "cheerful"}}
    }


def test_stream_yields_pcm_as_it_arrives(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    pcm = speech_pcm16("One moment please.")
    # Odd-sized pieces: chunks must still fall on sample boundaries.
    openrouter_server.enqueue_speech(Reply(pcm=pcm, audio_piece_bytes=4801))
    heard = _Heard()
    chunks = list(tts.stream("One moment please.", config={"callbacks": [heard]}))
    assert chunks[0].text == "One moment please."
    audio_chunks = [c for c in chunks if any(b.get("type") == "audio" for b in c.content)]
    assert len(audio_chunks) >= len(pcm) // 4801
    for chunk in audio_chunks:
        for block in chunk.content:
            if block.get("type") == "audio":
                assert len(base64.b64decode(block["base64"])) % 2 == 0
    total = summed(chunks)
    assert total.text == "One moment please."
    assert summed_pcm(total) == pcm
    assert heard.pcm == pcm
    assert heard.rates == {24000}
    assert heard.ended == 1


async def test_astream_and_ainvoke(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    heard = _Heard()
    chunks = [c async for c in tts.astream("Good evening.", config={"callbacks": [heard]})]
    assert summed_pcm(summed(chunks)) == speech_pcm16("Good evening.") == heard.pcm
    reply = await tts.ainvoke("Good evening.")
    assert audio_pcm(reply) == heard.pcm


def test_mp3_is_returned_as_it_came(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer, tmp_path: Any
) -> None:
    mp3 = mp3_from_pcm(speech_pcm16("Music to my ears."))
    openrouter_server.enqueue_speech(Reply(pcm=mp3, audio_piece_bytes=1000))
    heard = _Heard()
    reply = tts.invoke("Music to my ears.", response_format="mp3", config={"callbacks": [heard]})
    (block,) = [b for b in reply.content if isinstance(b, dict) and b["type"] == "audio"]
    assert block["mime_type"] == "audio/mpeg"
    assert audio_bytes(reply) == mp3
    assert heard.pcm == b""  # MP3 is not samples to play
    assert save_audio(reply, tmp_path / "m.mp3").read_bytes() == mp3
    with pytest.raises(ValueError, match="audio/mpeg"):
        audio_pcm(reply)
    assert openrouter_server.requests[-1].json["response_format"] == "mp3"


def test_cost_comes_from_the_generation_record(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.generation_misses = 2  # the record appears a moment late
    with get_openrouter_callback() as cb:
        reply = tts.invoke("Hello there")
    gen_id = reply.response_metadata["id"]
    record = openrouter_server.generation(gen_id)
    assert record is not None
    assert reply.response_metadata["cost"] == record["total_cost"] > 0
    assert cb.total_cost == record["total_cost"]
    assert cb.successful_requests == 1
    lookups = [r for r in openrouter_server.requests if r.path.startswith("/api/v1/generation")]
    assert len(lookups) == 3
    # stream() gets no run manager from langchain-core: the cost block is still seen.
    with get_openrouter_callback() as streamed:
        chunks = list(tts.stream("Hello there"))
    assert streamed.total_cost == chunks[-1].response_metadata["cost"] > 0
    # Without a cost handler (and fetch_cost unset) nobody waits for the record.
    tts.invoke("Hello again")
    assert openrouter_server.requests[-1].path == "/api/v1/audio/speech"


def test_retries_then_typed_errors(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue_speech(rate_limit_reply(0))
    assert tts.invoke("Hi").text == "Hi"
    assert len(openrouter_server.requests) == 2
    openrouter_server.enqueue_speech(*[rate_limit_reply(0)] * 3)
    with pytest.raises(RateLimitError):
        tts.invoke("Hi")
    status, body = zod_error((["input"], "invalid_type", "Invalid input: expected string"))
    zod = raw_reply(json.dumps(body).encode(), status=status, content_type="application/json")
    openrouter_server.enqueue_speech(zod)
    with pytest.raises(BadRequestError, match=r"input: Invalid input: expected string") as err:
        tts.invoke("Hi")
    assert err.value.status_code == 400
    with pytest.raises(BadRequestError, match="does not exist"):
        tts.invoke("Hi", model="openai/gpt-audio-mini")


def test_a_cut_stream_keeps_what_arrived(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    pcm = speech_pcm16("This sentence will be cut short.")
    openrouter_server.enqueue_speech(Reply(pcm=pcm, audio_piece_bytes=4800, cut_after=3))
    with pytest.raises(IncompleteStreamError) as err:
        list(tts.stream("This sentence will be cut short."))
    partial = err.value.partial
    assert partial is not None
    assert audio_pcm(partial) == pcm[: 3 * 4800]
    assert partial.text == "This sentence will be cut short."
    assert "cost" not in partial.response_metadata  # nobody asked for it: not looked up
    # Asked for, the cut request's cost is looked up and carried: it was billed.
    openrouter_server.enqueue_speech(
        Reply(pcm=pcm, audio_piece_bytes=4800, cut_after=3, cost=0.0009)
    )
    with get_openrouter_callback() as cb, pytest.raises(IncompleteStreamError) as err:
        tts.invoke("This sentence will be cut short.")
    assert err.value.partial is not None
    assert err.value.partial.response_metadata["cost"] == pytest.approx(0.0009)
    assert cb.total_cost == pytest.approx(0.0009)


@pytest.mark.parametrize(
    ("given", "kwargs", "match"),
    [
        ("   ", {}, "nothing to speak"),
        ("Hi", {"temperature": 1}, "does not take"),
        (AIMessage(content=[]), {}, "AIMessage holds no text"),
    ],
)
def test_bad_input_fails_before_the_network(
    tts: OpenRouterSpeech,
    openrouter_server: OpenRouterTestServer,
    given: Any,
    kwargs: dict[str, Any],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        tts.invoke(given, **kwargs)
    assert openrouter_server.requests == []


def test_settings_are_checked_and_the_key_never_shows() -> None:
    with pytest.raises(ValueError, match="speed"):
        OpenRouterSpeech(api_key="sk-or-secret", speed=9)
    with pytest.raises(ValueError, match="base_url"):
        OpenRouterSpeech(api_key="sk-or-secret", base_url="ftp://x")
    with pytest.raises(ValueError, match="instruction"):
        OpenRouterSpeech(api_key="sk-or-secret", instruction="typo")
    tts = OpenRouterSpeech(api_key="sk-or-secret")
    assert "sk-or-secret" not in repr(tts)
    assert "sk-or-secret" not in str(tts.model_dump())


def test_a_copy_has_its_own_connections(
    tts: OpenRouterSpeech, openrouter_server: OpenRouterTestServer
) -> None:
    tts.invoke("Hi")
    copy = tts.model_copy(update={"voice": "nova", "api_key": openrouter_server.api_key})
    try:
        assert copy.client is not tts.client
        assert copy.voice == "nova"
        assert "SecretStr" in type(copy.api_key).__name__
        copy.invoke("Hi")
        copy.close()
        assert tts.invoke("Still open").text == "Still open"
        assert openrouter_server.requests[-2].json["voice"] == "nova"
    finally:
        copy.close()
