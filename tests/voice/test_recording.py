"""record=: the conversation as one stereo WAV, user left, agent (as played) right.

Read back with `wave`, checked sample for sample and by measuring energy per window.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, speech_reply
from langchain_openrouter_audio.voice import (
    CallbackSink,
    PcmSource,
    VoiceSession,
    resample_pcm16,
)
from langchain_openrouter_audio.voice._pcm import rms, samples
from langchain_openrouter_audio.voice.recording import ConversationRecorder
from tests._helpers import HAS_ESPEAK, make_llm

from .conftest import silence

RATE = 16000
FRAME = 640
LONG = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west, "
    "and it will stay that way until the evening, when clouds come in from the sea."
)
SHORT = "Tomorrow it will rain."


def channels(path: Path) -> tuple[bytes, bytes, int]:
    """(left PCM, right PCM, rate) of a stereo 16-bit WAV."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2
        assert w.getsampwidth() == 2
        frames = samples(w.readframes(w.getnframes()))
        rate = w.getframerate()
    left, right = frames[0::2], frames[1::2]
    return left.tobytes(), right.tobytes(), rate


def window(pcm: bytes, start_s: float, end_s: float, rate: int = RATE) -> bytes:
    return pcm[2 * round(start_s * rate) : 2 * round(end_s * rate)]


def test_recorder_places_agent_audio_on_the_user_timeline(tmp_path: Path) -> None:
    recorder = ConversationRecorder(tmp_path / "call.wav", sample_rate=RATE)
    user = b"\x10\x00" * RATE  # one second
    recorder.user_audio(user[: RATE // 2 * 2])
    recorder.flush(RATE // 4)  # the first quarter second is final
    recorder.agent_audio(RATE // 8, b"\x20\x00" * 100)  # partly before the flushed part
    recorder.user_audio(user[RATE // 2 * 2 :])
    recorder.agent_audio(RATE // 2, b"\x30\x00" * RATE)  # runs past the user's end
    path = recorder.close()
    left, right, rate = channels(path)
    assert rate == RATE
    assert len(left) == len(right) == 2 * (RATE // 2 + RATE)
    assert left[: len(user)] == user
    assert set(left[len(user) :]) == {0}  # the user is silent while the agent goes on
    assert set(right[:RATE]) == {0}  # audio before the flushed point cannot be placed
    assert right[RATE : RATE + 2] == b"\x30\x00"


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
async def test_a_session_records_both_sides_cut_at_the_barge_in(
    openrouter_server: OpenRouterTestServer, tmp_path: Path
) -> None:
    q1 = speech_pcm16("What is the weather in Paris?", sample_rate=RATE)
    q2 = speech_pcm16("Wait, what about tomorrow?", sample_rate=RATE)
    long, short = speech_pcm16(LONG), speech_pcm16(SHORT)
    openrouter_server.enqueue(speech_reply(long, LONG), speech_reply(short, SHORT))
    stream = silence(500) + q1 + silence(2500)
    q2_at = len(stream) // 2
    stream += q2 + silence(1500)
    clears: list[int] = []
    fed = {"frames": 0}

    async def chunks() -> AsyncIterator[bytes]:
        for pos in range(0, len(stream), FRAME):
            fed["frames"] = pos // FRAME
            yield stream[pos : pos + FRAME]

    sink = CallbackSink(lambda f: None, on_clear=lambda: clears.append(fed["frames"]))
    source = PcmSource(chunks(), sample_rate=RATE, realtime=False)
    record = tmp_path / "calls" / "{session}.wav"
    session = VoiceSession(make_llm(openrouter_server), source=source, sink=sink, record=record)
    summary = await session.run()
    first, second = summary.turns
    assert first.interrupted
    assert not second.interrupted

    (path,) = (tmp_path / "calls").glob("*.wav")  # {session}: a fresh id per conversation
    left, right, rate = channels(path)
    assert rate == RATE
    # The timeline is the user's audio, then silence while the last reply played out.
    assert left[: len(stream)] == stream
    assert set(left[len(stream) :]) == {0}
    played_out = len(right) - len(stream)
    assert 0 < played_out <= 2 * round((len(short) / 48000 + 0.1) * RATE)
    # The agent is silent while the user asks, speaks after the question...
    q1_end = (len(silence(500)) + len(q1)) // 2 / RATE
    assert rms(window(right, 0, q1_end)) == 0
    assert rms(window(right, q1_end + 0.8, q1_end + 0.8 + first.heard_s - 0.3)) > 300
    # ...falls silent where the user barged in, and stays so until the next answer.
    (cleared_at,) = clears
    cut = (cleared_at + 1) * FRAME // 2 / RATE
    assert q2_at / RATE <= cut <= q2_at / RATE + 1.0
    q2_end = (q2_at * 2 + len(q2)) // 2 / RATE
    assert rms(window(right, cut, q2_end)) == 0
    # The second answer is there, after the second question.
    assert rms(window(right, q2_end, len(right) / 2 / RATE)) > 300
    # The first reply as played: its first `heard_s`, ending where playback was cut.
    heard = resample_pcm16(long[: round(first.heard_s * 24000) * 2], 24000, RATE)
    start = right.find(heard) / 2 / RATE
    assert start >= q1_end
    # Playback paused at the user's first words and was cleared once they were a barge-in.
    stopped = start + first.heard_s
    assert q2_at / RATE <= stopped <= cut
    assert rms(window(right, stopped, q2_end)) == 0


def test_overlapping_agent_audio_is_mixed_and_clipped(tmp_path: Path) -> None:
    recorder = ConversationRecorder(tmp_path / "mix.wav", sample_rate=RATE)
    recorder.user_audio(bytes(2 * 100))
    recorder.agent_audio(10, b"\x00\x40" * 20)  # 16384
    recorder.agent_audio(20, b"\x00\x60" * 20)  # 24576: overlaps the last 10 samples
    _, right, _ = channels(recorder.close())
    values = samples(right)
    assert list(values[10:20]) == [16384] * 10
    assert list(values[20:30]) == [32767] * 10  # 16384 + 24576, clipped
    assert list(values[30:40]) == [24576] * 10
    assert set(values[40:]) == {0}
