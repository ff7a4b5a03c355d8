"""Speech from a remote run keeps its rate: later chunks name none, and a change loses nothing.

A remote run streams each model call's audio as message chunks; only a call's first audio
chunk names its format (summed chunks would repeat it).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice._outlet import ReplyOutlet
from langchain_openrouter_audio.voice._pcm import samples
from langchain_openrouter_audio.voice._remote import run_remote_turn
from langchain_openrouter_audio.voice._reply import Reply

OUTPUT_RATE = 24_000


def zero_crossing_hz(pcm: bytes, rate: int) -> float:
    values = samples(pcm)
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    return crossings / 2 / (len(values) / rate)


class _Speaker:
    """Stands in for a transport: keeps what would play."""

    def __init__(self) -> None:
        self.played = bytearray()

    async def play(self, turn: int, pcm: bytes) -> None:
        self.played += pcm

    async def send_event(self, event: Any) -> None:
        pass


class _RemoteRun:
    """Streams (mode, data) pairs as a `RemoteGraph` does: one model call's audio chunks."""

    def __init__(self, pieces: list[tuple[bytes, str | None]]) -> None:
        self.pieces = pieces

    async def astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for pcm, mime_type in self.pieces:
            block: dict[str, Any] = {"type": "audio", "base64": base64.b64encode(pcm).decode()}
            if mime_type is not None:
                block["mime_type"] = mime_type
            chunk = {"type": "AIMessageChunk", "id": "run-1", "content": [block]}
            yield ("messages", (chunk, {}))
        yield ("values", {"messages": []})


def pieces_of(pcm: bytes, count: int) -> list[bytes]:
    size = len(pcm) // count // 2 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def speak(pieces: list[tuple[bytes, str | None]]) -> tuple[bytes, Reply]:
    speaker = _Speaker()
    reply = Reply(1, [HumanMessage("q")], OUTPUT_RATE, 0.0, 0, 0.0)
    outlet = ReplyOutlet(speaker, lambda _reply: False)  # type: ignore[arg-type]
    await run_remote_turn(outlet, reply, _RemoteRun(pieces), {}, {}, session_id="s", input_key=None)
    return bytes(speaker.played), reply


async def test_chunks_after_the_first_play_at_the_rate_it_named() -> None:
    tone = tone_pcm16(1.0, 440, sample_rate=16_000)
    first, *rest = pieces_of(tone, 10)
    played, reply = await speak([(first, "audio/pcm;rate=16000"), *((p, None) for p in rest)])

    # Read as 24 kHz, the later chunks would play 1.5 times too fast: 660 Hz, 0.7 s.
    assert zero_crossing_hz(played, OUTPUT_RATE) == pytest.approx(440, rel=0.02)
    assert len(played) / 2 / OUTPUT_RATE == pytest.approx(1.0, abs=0.005)
    kept = reply.runs[next(iter(reply.runs))].as_message().content[1]
    assert isinstance(kept, dict)
    assert kept["mime_type"] == "audio/pcm;rate=16000"
    assert base64.b64decode(kept["base64"]) == tone


async def test_a_change_of_rate_loses_none_of_the_speech_before_it() -> None:
    before = tone_pcm16(0.5, 440, sample_rate=16_000)
    after = tone_pcm16(0.5, 440, sample_rate=24_000)
    played, reply = await speak(
        [
            (before, "audio/pcm;rate=16000"),
            (after, "audio/pcm;rate=24000"),
        ]
    )

    # The filter's tail at the change (tens of ms with soxr) still plays.
    assert len(played) / 2 / OUTPUT_RATE == pytest.approx(1.0, abs=0.002)
    assert zero_crossing_hz(played, OUTPUT_RATE) == pytest.approx(440, rel=0.02)
    kept = reply.runs[next(iter(reply.runs))].as_message().content[1]
    assert isinstance(kept, dict)
    assert kept["mime_type"] == "audio/pcm;rate=24000"  # one clip, at the rate it ended on
    assert len(base64.b64decode(kept["base64"])) / 2 / 24_000 == pytest.approx(1.0, abs=0.002)


async def test_chunks_after_a_rate_no_speech_model_streams_are_not_played() -> None:
    # The first chunk is refused for its rate; the rest, which name none, are at that rate
    # too: played as 24 kHz they would be the wrong pitch and length.
    tone = tone_pcm16(1.0, 440, sample_rate=11_025)
    first, *rest = pieces_of(tone, 10)
    played, _reply = await speak([(first, "audio/pcm;rate=11025"), *((p, None) for p in rest)])
    assert played == b""

    # A later chunk that names a rate it can play is played (at that rate) again.
    good = tone_pcm16(0.5, 440, sample_rate=16_000)
    played, _reply = await speak([(first, "audio/pcm;rate=11025"), (good, "audio/pcm;rate=16000")])
    assert len(played) / 2 / OUTPUT_RATE == pytest.approx(0.5, abs=0.002)
