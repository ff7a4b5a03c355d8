"""Playback and recording logic, with a stand-in for the `sounddevice` module.

No sound card here: the stand-in records what our code asks of the device API
(rates, formats, the exact PCM written) and plays back a known tone as input.
"""

from __future__ import annotations

import base64
import io
import sys
import types
import wave
from typing import Any

import pytest

from langchain_openrouter_audio import (
    ChatOpenRouterAudio,
    SpeakerPlayer,
    record_audio_block,
)
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16


class _Stream:
    def __init__(self, log: dict[str, Any], **kwargs: Any) -> None:
        self.log = log
        log["opened"].append(kwargs)

    def start(self) -> None:
        self.log["started"] += 1

    def write(self, data: bytes) -> None:
        self.log["written"] += data

    def read(self, frames: int) -> tuple[bytes, bool]:
        return self.log["input"][: frames * 2], False

    def stop(self) -> None:
        self.log["stopped"] += 1

    def close(self) -> None:
        self.log["closed"] += 1

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def fake_sounddevice(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    log: dict[str, Any] = {
        "opened": [],
        "started": 0,
        "written": bytearray(),
        "stopped": 0,
        "closed": 0,
        "input": tone_pcm16(1.0),
    }
    module = types.ModuleType("sounddevice")
    module.RawOutputStream = lambda **kw: _Stream(log, **kw)  # type: ignore[attr-defined]
    module.RawInputStream = lambda **kw: _Stream(log, **kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return log


def test_speaker_player_plays_every_byte_at_the_right_rate(
    openrouter_server: OpenRouterTestServer, answer_pcm: bytes, fake_sounddevice: dict[str, Any]
) -> None:
    openrouter_server.enqueue(speech_reply(answer_pcm, "Playing.", audio_piece_bytes=999))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    llm.invoke("hi", config={"callbacks": [SpeakerPlayer()]})
    assert bytes(fake_sounddevice["written"]) == answer_pcm
    [opened] = fake_sounddevice["opened"]
    assert (opened["samplerate"], opened["channels"], opened["dtype"]) == (24000, 1, "int16")
    assert fake_sounddevice["stopped"] == fake_sounddevice["closed"] == 1


def test_record_audio_block_returns_a_wav_block(fake_sounddevice: dict[str, Any]) -> None:
    block = record_audio_block(0.5)
    assert block["mime_type"] == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(block["base64"]))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(w.getnframes()) == fake_sounddevice["input"][: 12000 * 2]


def test_missing_sounddevice_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(ImportError, match=r"\[playback\]"):
        SpeakerPlayer()


def test_missing_portaudio_names_the_system_package(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the real sounddevice does on a machine without the PortAudio C library.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(OSError, match="apt-get install libportaudio2") as info:
        SpeakerPlayer()
    assert "PortAudio library not found" in str(info.value)
