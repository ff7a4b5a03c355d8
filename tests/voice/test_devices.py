"""MicrophoneSource and SpeakerSink with a stand-in for `sounddevice` (no sound card here).

The stand-in delivers a recorded conversation through the input callback from its own
thread, at the pace of speech, as PortAudio does, and records what is written and when the
output is aborted.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from typing import Any

import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, speech_reply
from langchain_openrouter_audio.voice import (
    MicrophoneSource,
    PcmSource,
    SpeakerSink,
    VoiceSession,
    VoiceTurn,
)
from tests._helpers import HAS_ESPEAK

from .conftest import silence

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

ANSWER = "It is sunny in Paris, with a light breeze, and it will stay warm all day long."


class FakeDevices:
    def __init__(self, recording: bytes) -> None:
        self.recording = recording
        self.opened: list[dict[str, Any]] = []
        self.written = bytearray()
        self.aborted = 0
        self.module = types.ModuleType("sounddevice")
        self.module.RawInputStream = self._input  # type: ignore[attr-defined]
        self.module.RawOutputStream = self._output  # type: ignore[attr-defined]

    def _input(self, **kwargs: Any) -> Any:
        devices = self
        devices.opened.append(kwargs)

        class Input:
            def __enter__(self) -> Input:
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self.deliver, daemon=True)
                self.thread.start()
                return self

            def deliver(self) -> None:
                step = kwargs["blocksize"] * 2
                for pos in range(0, len(devices.recording), step):
                    if self.stop.wait(0.02):
                        return
                    kwargs["callback"](devices.recording[pos : pos + step], step // 2, None, None)

            def __exit__(self, *exc: object) -> None:
                self.stop.set()
                self.thread.join()

        return Input()

    def _output(self, **kwargs: Any) -> Any:
        devices = self
        devices.opened.append(kwargs)

        class Output:
            def start(self) -> None: ...

            def write(self, data: bytes) -> None:
                devices.written += data

            def abort(self) -> None:
                devices.aborted += 1

            def stop(self) -> None: ...

            def close(self) -> None: ...

        return Output()


async def test_microphone_to_speaker_with_barge_in(
    openrouter_server: OpenRouterTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = speech_pcm16("What is the weather in Paris?", sample_rate=16000)
    again = speech_pcm16("And tomorrow?", sample_rate=16000)
    answer = speech_pcm16(ANSWER)
    devices = FakeDevices(silence(300) + question + silence(1500) + again + silence(900))
    monkeypatch.setitem(sys.modules, "sounddevice", devices.module)
    openrouter_server.enqueue(speech_reply(answer, ANSWER), speech_reply(answer[:24000], "It"))
    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")

    turns: list[VoiceTurn] = []
    done = asyncio.Event()

    def on_turn(turn: VoiceTurn) -> None:
        turns.append(turn)
        if len(turns) == 2:
            done.set()

    sink = SpeakerSink(sample_rate=24000)
    # Headphones: no echo path (with echo cancellation, on by default for this pair, the
    # first 3 s of the first reply cannot be interrupted while the canceller learns).
    session = VoiceSession(
        llm, source=MicrophoneSource(), sink=sink, on_turn=on_turn, echo_cancellation=False
    )
    running = asyncio.create_task(session.run())
    await asyncio.wait_for(done.wait(), timeout=30)
    running.cancel()  # a microphone never ends
    await asyncio.gather(running, return_exceptions=True)

    (mic,) = [o for o in devices.opened if "callback" in o]
    (speaker,) = [o for o in devices.opened if "callback" not in o]
    assert (mic["samplerate"], mic["channels"], mic["dtype"]) == (16000, 1, "int16")
    assert mic["blocksize"] == 320  # 20 ms
    assert (speaker["samplerate"], speaker["dtype"]) == (24000, "int16")
    first = turns[0]
    assert first.interrupted
    assert devices.aborted == 1  # the speaker's buffer was dropped at once
    played = bytes(devices.written[: round(first.heard_s * 48000)])
    assert played == answer[: len(played)]
    assert ANSWER.startswith(first.transcript)
    assert len(first.transcript) < len(ANSWER)


async def test_speaker_sink_plays_every_frame(
    openrouter_server: OpenRouterTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = FakeDevices(b"")
    monkeypatch.setitem(sys.modules, "sounddevice", devices.module)
    answer = speech_pcm16("Hello there.")
    openrouter_server.enqueue(speech_reply(answer, "Hello there."))
    question = speech_pcm16("Hi!", sample_rate=16000)

    async def chunks() -> Any:
        yield silence(300) + question + silence(1000)

    llm = ChatOpenRouterAudio(base_url=openrouter_server.base_url, api_key="test-key")
    source = PcmSource(chunks(), sample_rate=16000, realtime=False)
    summary = await VoiceSession(llm, source=source, sink=SpeakerSink()).run()
    (turn,) = summary.turns
    assert not turn.interrupted
    assert bytes(devices.written[: len(answer)]) == answer
    assert devices.aborted == 0
