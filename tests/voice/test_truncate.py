from __future__ import annotations

import base64
import io
import wave

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from langchain_openrouter_audio import ChatOpenRouterAudio, audio_pcm
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    speech_pcm16,
    speech_reply,
    tone_pcm16,
)
from langchain_openrouter_audio.voice import truncate_to_heard
from tests._helpers import HAS_ESPEAK

TEXT = "one two three four five six seven eight"


def pcm_reply(pcm: bytes, text: str = TEXT, rate: int = 24000) -> AIMessage:
    audio = {
        "type": "audio",
        "base64": base64.b64encode(pcm).decode(),
        "mime_type": f"audio/pcm;rate={rate}",
        "id": "audio_1",
    }
    return AIMessage(
        content=[{"type": "text", "text": text}, audio],
        id="run-1",
        response_metadata={"finish_reason": "stop", "cost": 0.01},
        tool_calls=[{"name": "f", "args": {}, "id": "c1", "type": "tool_call"}],
    )


@pytest.mark.parametrize(
    ("heard", "text"),
    [
        (0.0, ""),
        (0.49, ""),  # the first word takes 0.5 s: not wholly spoken yet
        (0.5, "one"),
        (1.2, "one two"),
        (3.99, "one two three four five six seven"),
        (4.0, TEXT),
        (9.0, TEXT),
    ],
)
def test_transcript_keeps_the_words_spoken_by_then(heard: float, text: str) -> None:
    reply = pcm_reply(tone_pcm16(4.0))  # 8 words in 4 s: 2 words per second
    cut = truncate_to_heard(reply, heard)
    assert cut.text == text
    assert len(audio_pcm(cut)) == 2 * round(min(heard, 4.0) * 24000)
    assert cut.response_metadata["interrupted"] is True
    assert cut.response_metadata["cost"] == 0.01
    assert cut.tool_calls == []
    assert cut.id == "run-1"


def test_audio_is_the_first_samples_at_the_same_rate_and_input_is_untouched() -> None:
    pcm = tone_pcm16(2.0, sample_rate=16000)
    reply = pcm_reply(pcm, rate=16000)
    before = reply.model_dump()
    cut = truncate_to_heard(reply, 0.75)
    assert audio_pcm(cut) == pcm[: 2 * 12000]
    (audio,) = [b for b in cut.content if isinstance(b, dict) and b["type"] == "audio"]
    assert audio["mime_type"] == "audio/pcm;rate=16000"
    assert audio["id"] == "audio_1"
    assert reply.model_dump() == before
    assert "interrupted" not in reply.response_metadata


def test_spacing_and_punctuation_of_kept_words() -> None:
    reply = pcm_reply(tone_pcm16(2.0), text="Hello,  world!\nHow are you?")
    assert truncate_to_heard(reply, 1.0).text == "Hello,  world!"


def test_summed_stream_chunks() -> None:
    pcm = tone_pcm16(2.0)
    chunks = [
        AIMessageChunk(content=[{"type": "text", "text": "one two ", "index": 0}]),
        AIMessageChunk(
            content=[
                {"type": "text", "text": "three four", "index": 0},
                {
                    "type": "audio",
                    "base64": base64.b64encode(pcm).decode(),
                    "mime_type": "audio/pcm;rate=24000",
                    "index": 1,
                },
            ]
        ),
    ]
    total = chunks[0] + chunks[1]
    cut = truncate_to_heard(total, 1.0)
    assert isinstance(cut, AIMessage)
    assert cut.text == "one two"
    assert audio_pcm(cut) == pcm[:48000]


def test_text_only_reply_uses_a_typical_speaking_rate() -> None:
    cut = truncate_to_heard(AIMessage(content=TEXT), 1.0)
    assert cut.text == "one two"
    assert cut.content == "one two"


def test_negative_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        truncate_to_heard(AIMessage(content="x"), -1)


def test_invoke_reply_over_the_local_server(openrouter_server: OpenRouterTestServer) -> None:
    """A real `invoke` reply: its WAV is cut and stays a WAV, at 24 kHz."""
    text = "The quick brown fox jumps over the lazy dog."
    pcm = speech_pcm16(text) if HAS_ESPEAK else tone_pcm16(2.7)
    openrouter_server.enqueue(speech_reply(pcm, text))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    reply = llm.invoke("Say the pangram")
    total_s = len(pcm) / 48000
    heard = total_s * 4.5 / 9  # four and a half of nine words
    cut = truncate_to_heard(reply, heard)
    assert cut.text == "The quick brown fox"
    (audio,) = [b for b in cut.content if isinstance(b, dict) and b["type"] == "audio"]
    assert audio["mime_type"] == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(audio["base64"]))) as w:
        assert w.getframerate() == 24000
        assert w.getnframes() == round(heard * 24000)
        assert w.readframes(w.getnframes()) == pcm[: 2 * round(heard * 24000)]
    assert audio_pcm(reply) == pcm  # the reply itself is unchanged
