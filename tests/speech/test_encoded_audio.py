"""Audio that is not raw PCM (Lyria's MP3, a WAV of another shape) stays exactly what it is."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from langchain_openrouter_audio import AudioCallbackHandler, audio_bytes, save_audio
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16
from langchain_openrouter_audio.testing._audio_api import mp3_from_pcm
from tests._helpers import audio_block, make_llm, summed

LYRIA = "google/lyria-3-clip-preview"


class _Heard(AudioCallbackHandler):
    def __init__(self) -> None:
        super().__init__()
        self.pcm = b""

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        self.pcm += chunk


@pytest.fixture(scope="module")
def song() -> bytes:
    return mp3_from_pcm(tone_pcm16(1.5, 440.0) + tone_pcm16(1.5, 660.0))


def test_lyria_mp3_comes_back_as_one_mp3(
    openrouter_server: OpenRouterTestServer, song: bytes, tmp_path: Path
) -> None:
    # Lyria: the whole song as one MP3 in a single delta, no transcript.
    openrouter_server.enqueue(speech_reply(song, "", audio_piece_bytes=None))
    llm = make_llm(openrouter_server, model=LYRIA)
    heard = _Heard()
    reply = llm.invoke("A calm piano loop", config={"callbacks": [heard]})
    assert reply.text == ""
    block = audio_block(reply)
    assert block["mime_type"] == "audio/mpeg"
    assert audio_bytes(reply) == song
    assert "audio_seconds" not in reply.response_metadata  # not PCM: no sample count
    assert heard.pcm == b""  # MP3 is not PCM samples to play
    assert save_audio(reply, tmp_path / "song.mp3").read_bytes() == song


def test_streamed_mp3_sums_to_the_exact_bytes(
    openrouter_server: OpenRouterTestServer, song: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(song, "", audio_piece_bytes=999))
    llm = make_llm(openrouter_server, model=LYRIA)
    chunks = list(llm.stream("A calm piano loop"))
    firsts = [b for c in chunks for b in c.content if isinstance(b, dict) and "mime_type" in b]
    assert [b["mime_type"] for b in firsts] == ["audio/mpeg"]
    total = summed(chunks)
    assert base64.b64decode(audio_block(total)["base64"]) == song


def test_a_wav_of_another_shape_is_not_rewrapped(openrouter_server: OpenRouterTestServer) -> None:
    # 48 kHz: wrapping its bytes as 24 kHz PCM would play it at half speed.
    wav48 = pcm16_to_wav(tone_pcm16(0.5, 440.0, sample_rate=48000), sample_rate=48000)
    openrouter_server.enqueue(speech_reply(wav48, "", whole_completion=True))
    reply = make_llm(openrouter_server, model=LYRIA).invoke("A short chime")
    assert audio_block(reply)["mime_type"] == "audio/wav"
    assert audio_bytes(reply) == wav48


def test_pcm_that_starts_like_a_frame_sync_is_still_pcm(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # 0xFFFB as the first sample looks like an MPEG frame header; no second frame follows.
    pcm = b"\xff\xfb\x90\x64" + tone_pcm16(0.5)
    openrouter_server.enqueue(speech_reply(pcm, "Hi"))
    reply = make_llm(openrouter_server).invoke("Say hi")
    assert audio_block(reply)["mime_type"] == "audio/wav"
