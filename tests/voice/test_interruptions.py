"""Turn-taking in the engine over real sockets: continuation after a pause, false
interruptions, backchannels, noise, and echo cancellation, on espeak-ng speech.

The local OpenRouter server answers; its recorded requests say what the model was asked
and how often. Sources are not real time (deterministic) unless the point needs the
agent's latency to take conversation time.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import wave
from collections.abc import AsyncIterator
from typing import Any

import pytest

from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, speech_reply
from langchain_openrouter_audio.voice import (
    CallbackSink,
    Endpointer,
    PcmSource,
    TurnEngine,
    VoiceSession,
)
from langchain_openrouter_audio.voice.transports import LocalTransport
from tests._helpers import HAS_ESPEAK, make_llm

from .conftest import silence
from .test_turn_taking import smart_turn, smart_turn_model  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
corpus = pytest.importorskip("langchain_openrouter_audio.testing.corpus")
np = pytest.importorskip("numpy")

RATE = 16000
FRAME = 640  # 20 ms at 16 kHz
LONG = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west, "
    "and it will stay that way until the evening, when clouds come in from the sea."
)


@pytest.fixture(scope="module")
def long_reply() -> bytes:
    return speech_pcm16(LONG)  # 24 kHz


@pytest.fixture(scope="module")
def question() -> bytes:
    return speech_pcm16("What is the weather in Paris today?", sample_rate=RATE)


class Line:
    """A source that counts frames (real time or not), and a sink that keeps what it got."""

    def __init__(self, stream: bytes, *, realtime: bool = False) -> None:
        self.stream = stream
        self.realtime = realtime
        self.frame = 0
        self.writes: list[tuple[int, bytes]] = []
        self.clears: list[int] = []

    async def _chunks(self) -> AsyncIterator[bytes]:
        for pos in range(0, len(self.stream), FRAME):
            self.frame = pos // FRAME
            if self.realtime:
                await asyncio.sleep(0.02)
            yield self.stream[pos : pos + FRAME]

    def source(self) -> PcmSource:
        return PcmSource(self._chunks(), sample_rate=RATE, realtime=self.realtime)

    def sink(self) -> CallbackSink:
        return CallbackSink(
            lambda f: self.writes.append((self.frame, f)),
            on_clear=lambda: self.clears.append(self.frame),
        )

    @property
    def played(self) -> bytes:
        return b"".join(f for _, f in self.writes)


def user_audio(server: OpenRouterTestServer, request: int) -> list[bytes]:
    """The PCM of each user audio block in one upstream request."""
    clips = []
    for message in server.requests[request].json["messages"]:
        if message["role"] != "user" or isinstance(message["content"], str):
            continue
        for part in message["content"]:
            if part.get("type") == "input_audio":
                wav = base64.b64decode(part["input_audio"]["data"])
                with wave.open(io.BytesIO(wav)) as w:
                    clips.append(w.readframes(w.getnframes()))
    return clips


def whole(played: bytes, reply: bytes) -> bool:
    """The reply, then at most the zero padding of its last 20 ms frame at 24 kHz."""
    rest = played[len(reply) :]
    return played.startswith(reply) and len(rest) < 960 and not rest.strip(b"\x00")


def pcm(x: Any) -> bytes:
    return bytes(corpus.to_pcm16(x))


# -- a pause mid-sentence ------------------------------------------------------------------


async def test_a_09s_pause_mid_sentence_gets_one_reply_to_the_whole_question(
    openrouter_server: OpenRouterTestServer,
) -> None:
    """The endpointer ends the first half after 0.6 s of silence and the agent is called;
    the user goes on before any reply plays: that call is cancelled and the whole sentence
    is asked once, in one HumanMessage."""
    scene = corpus.paused_sentence(0.9)
    # A model that takes 2.5 s to answer (real ones take about 1 s to the first audio; the
    # margin is for a loaded machine, where the paced source runs late).
    openrouter_server.enqueue(speech_reply(speech_pcm16("Early."), "Early.", headers_delay_s=2.5))
    openrouter_server.enqueue(speech_reply(speech_pcm16("For four, yes."), "For four, yes."))
    line = Line(scene.pcm, realtime=True)
    session = VoiceSession(make_llm(openrouter_server), source=line.source(), sink=line.sink())
    summary = await session.run()

    assert len(openrouter_server.requests) == 2  # the first was cancelled mid-wait
    (turn,) = summary.turns
    assert turn.transcript == "For four, yes."
    assert not turn.interrupted
    (asked,) = user_audio(openrouter_server, 1)  # one user message, one clip
    start, end = scene.speech[0]
    words_s = end - start - scene.meta["pause_s"]
    assert len(asked) / 2 / RATE >= words_s  # both halves are in it
    first_half = user_audio(openrouter_server, 0)[0]
    assert asked.startswith(first_half)  # the cancelled request asked the first half only
    assert len(first_half) < 0.75 * len(asked)
    # The conversation holds one question and one answer.
    assert [type(m).__name__ for m in session.messages] == ["HumanMessage", "AIMessage"]
    assert whole(line.played, speech_pcm16("For four, yes."))


async def test_with_smart_turn_the_pause_never_reaches_the_model(
    openrouter_server: OpenRouterTestServer,
    smart_turn: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    scene = corpus.paused_sentence(0.9, which=2)  # "I was hoping to ... change my appointment"
    openrouter_server.enqueue(speech_reply(speech_pcm16("Friday it is."), "Friday it is."))
    line = Line(scene.pcm)
    endpointer = Endpointer(RATE, turn_detector=smart_turn)
    session = VoiceSession(
        make_llm(openrouter_server), source=line.source(), sink=line.sink(), endpointer=endpointer
    )
    summary = await session.run()
    assert len(openrouter_server.requests) == 1
    (_turn,) = summary.turns
    (asked,) = user_audio(openrouter_server, 0)
    start, end = scene.speech[0]
    assert len(asked) / 2 / RATE >= end - start  # the whole sentence, pause included


# -- sounds over the reply -----------------------------------------------------------------


def yeah_over_reply(question: bytes, at_s: float = 2.0) -> bytes:
    yeah = pcm(corpus.speak("yeah", "en-us", speed=190))
    assert len(yeah) / 2 / RATE < 0.5
    # The reply starts playing on the frame after the question's utterance ends (~0.6 s).
    return silence(300) + question + silence(round(600 + at_s * 1000)) + yeah + silence(9000)


@pytest.mark.parametrize(
    ("can_pause", "can_resend"),
    [(True, True), (False, True), (False, False)],
    ids=["paused", "cleared-and-resent", "neither: plays on"],
)
async def test_a_yeah_over_the_reply_neither_stops_it_nor_is_a_turn(
    openrouter_server: OpenRouterTestServer,
    question: bytes,
    long_reply: bytes,
    can_pause: bool,
    can_resend: bool,
) -> None:
    openrouter_server.enqueue(speech_reply(long_reply, LONG))
    line = Line(yeah_over_reply(question))

    class Transport(LocalTransport):
        pass

    transport = Transport(line.source(), line.sink())
    transport.can_pause = can_pause  # type: ignore[misc]
    transport.can_resend = can_resend  # type: ignore[misc]
    llm = make_llm(openrouter_server)
    engine = TurnEngine(llm, transport)
    summary = await engine.run()
    await llm.aclose()

    assert len(openrouter_server.requests) == 1  # the "yeah" asked nothing
    (turn,) = summary.turns
    assert not turn.interrupted
    assert turn.transcript == LONG  # heard whole
    assert turn.heard_s == pytest.approx(len(long_reply) / 48000, abs=0.021)
    assert whole(line.played, long_reply)  # every sample, in order, none twice
    assert engine.false_interruptions == 1
    # Playback held while the user spoke (a gap in the frames written), if it could.
    frames = [n for n, _ in line.writes]
    longest_gap = max(b - a for a, b in itertools.pairwise(frames))
    assert (longest_gap >= 10) is (can_pause or can_resend)
    assert (line.clears != []) is (can_resend and not can_pause)


async def test_a_real_sentence_over_the_reply_still_interrupts(
    openrouter_server: OpenRouterTestServer, question: bytes, long_reply: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(long_reply, LONG))
    openrouter_server.enqueue(speech_reply(speech_pcm16("Sure."), "Sure."))
    cut_in = speech_pcm16("Wait, what about tomorrow?", sample_rate=RATE)
    stream = silence(300) + question + silence(2600) + cut_in + silence(2000)
    line = Line(stream)
    summary = await VoiceSession(
        make_llm(openrouter_server), source=line.source(), sink=line.sink()
    ).run()
    first, second = summary.turns
    assert first.interrupted
    assert 0 < first.heard_s < 3.5
    assert second.transcript == "Sure."
    assert len(openrouter_server.requests) == 2


async def test_typing_starts_no_turn_and_a_question_in_5db_noise_is_one(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(speech_pcm16("Sunny."), "Sunny."))
    typing = corpus.typing(30).pcm
    noisy = corpus.noisy_question(snr_db=5)
    line = Line(typing + noisy.pcm)
    summary = await VoiceSession(
        make_llm(openrouter_server), source=line.source(), sink=line.sink()
    ).run()
    assert len(openrouter_server.requests) == 1
    (_turn,) = summary.turns
    (asked,) = user_audio(openrouter_server, 0)
    start, end = noisy.speech[0]
    assert len(asked) / 2 / RATE >= end - start  # the whole question, once


# -- echo ------------------------------------------------------------------------------------


class Room(corpus.LoudspeakerRoom):  # type: ignore[misc,name-defined]
    """The corpus's loudspeaker and microphone, as a session's source and sink."""

    def source(self) -> PcmSource:
        return PcmSource(self.microphone(), sample_rate=RATE, realtime=False)

    def sink(self) -> CallbackSink:
        return CallbackSink(self.play)

    @property
    def writes(self) -> list[bytes]:
        return self.frames


async def run_room(
    server: OpenRouterTestServer, room: Room, echo: bool
) -> tuple[Any, VoiceSession]:
    pytest.importorskip("pywebrtc_audio", reason="the [aec] extra (pywebrtc-audio)")
    session = VoiceSession(
        make_llm(server),
        source=room.source(),
        sink=room.sink(),
        echo_cancellation=echo,
        endpointer=Endpointer(RATE, vad="webrtc"),
    )
    return await session.run(), session


async def test_with_echo_cancellation_the_agent_never_interrupts_itself(
    openrouter_server: OpenRouterTestServer, question: bytes, long_reply: bytes
) -> None:
    user = silence(300) + question + silence(14000)
    for echo in (False, True):
        openrouter_server.reset()
        openrouter_server.enqueue(speech_reply(long_reply, LONG))
        openrouter_server.enqueue(speech_reply(speech_pcm16("Yes?"), "Yes?"))
        room = Room(user)
        summary, _ = await run_room(openrouter_server, room, echo)
        if not echo:
            # The echo is heard as the user: the reply pauses for it again and again (and
            # the echo stops with it, so it never reaches a barge-in): a stutter.
            assert room.pauses() >= 3
            continue
        assert room.pauses() == 0  # played straight through
        (turn,) = summary.turns
        assert not turn.interrupted
        assert turn.transcript == LONG
        assert whole(b"".join(room.writes), long_reply)
        assert len(openrouter_server.requests) == 1


async def test_with_echo_cancellation_the_user_can_still_interrupt(
    openrouter_server: OpenRouterTestServer, question: bytes, long_reply: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(long_reply, LONG))
    openrouter_server.enqueue(speech_reply(speech_pcm16("Sure."), "Sure."))
    cut_in = speech_pcm16("Wait, what about tomorrow evening?", sample_rate=RATE)
    # The reply starts ~0.6 s after the question; the user cuts in 5 s into it (after warm-up).
    user = silence(300) + question + silence(5600) + cut_in + silence(4000)
    room = Room(user)
    summary, _ = await run_room(openrouter_server, room, True)
    first, second = summary.turns
    assert first.interrupted
    assert 4.0 < first.heard_s < 7.0
    assert second.transcript == "Sure."
    (asked,) = user_audio(openrouter_server, 1)[-1:]
    assert len(asked) / 2 / RATE >= 0.8 * len(cut_in) / 2 / RATE  # the user's words, not lost


def test_echo_cancellation_setting() -> None:
    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    def session(**kw: Any) -> VoiceSession:
        return VoiceSession(make_llm_stub(), source=PcmSource(nothing()), sink=lambda f: None, **kw)

    assert session().echo_canceller is None  # a stream and a callback: no loudspeaker
    assert session(echo_cancellation=False).echo_canceller is None
    pytest.importorskip("pywebrtc_audio", reason="the [aec] extra (pywebrtc-audio)")
    assert session(echo_cancellation=True).echo_canceller is not None


def make_llm_stub() -> Any:
    from langchain_openrouter_audio import ChatOpenRouterAudio

    return ChatOpenRouterAudio(api_key="test-key", base_url="http://127.0.0.1:9/api/v1")


def test_without_the_aec_extra_a_microphone_and_speaker_warn_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_openrouter_audio.voice import MicrophoneSource, SpeakerSink, echo, session

    def missing() -> Any:
        raise ImportError("echo cancellation needs pywebrtc-audio: pip install '...[aec]'")

    monkeypatch.setattr(echo, "_import_aec", missing)
    monkeypatch.setattr(session, "_warned_no_aec", False)
    mic = MicrophoneSource.__new__(MicrophoneSource)  # no sound card needed to decide
    mic.sample_rate = RATE
    speaker = SpeakerSink.__new__(SpeakerSink)
    speaker.sample_rate = 24000
    with caplog.at_level("WARNING"):
        assert session._echo_canceller(None, mic, speaker) is None
        assert session._echo_canceller(None, mic, speaker) is None
    warnings = [r.getMessage() for r in caplog.records if "echo cancellation" in r.getMessage()]
    assert len(warnings) == 1
    assert "langchain-openrouter-audio[aec]" in warnings[0]
    with pytest.raises(ImportError, match=r"\[aec\]"):
        session._echo_canceller(True, mic, speaker)  # asked for explicitly: an error
