"""TurnEngine over a small in-memory transport, against the local OpenRouter server's sockets.

The transport here is a buffered far end (like a browser or a phone line): it takes the
reply's audio as it comes and reports what it played. The local devices' transport is
tested through `VoiceSession` (test_session.py), the browser's over uvicorn (tests/web).
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Awaitable, Callable

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16
from langchain_openrouter_audio.voice import Endpointer, TurnEngine, VoiceTransport
from langchain_openrouter_audio.voice._user_input import UserInput
from langchain_openrouter_audio.voice.limits import UTTERANCE_CAP_S
from langchain_openrouter_audio.voice.transport import (
    EngineHandle,
    ReplyEnded,
    SpeechStarted,
    TranscriptDelta,
    TurnEnded,
    UserTurnStarted,
    VoiceEvent,
)
from tests._helpers import make_llm

from .conftest import silence

RATE = 16000
Step = Callable[[EngineHandle], Awaitable[None]]


class FarEnd:
    """A buffered channel: gets audio at once; reports it all played at `end_reply`.

    Turns in `hold` keep "playing" (only `heard_s` reported) so that speech can barge
    in; `ack_clear=False` never says where a cleared reply stopped.
    """

    input_rate = RATE
    output_rate = 24000

    def __init__(
        self,
        steps: list[bytes | Step],
        *,
        hold: frozenset[int] = frozenset(),
        ack_clear: bool = True,
    ) -> None:
        self.steps = steps
        self.hold = hold
        self.ack_clear = ack_clear
        self.heard_s = 0.5
        self.audio: dict[int, bytearray] = {}
        self.calls: list[tuple[str, int]] = []
        self.events: list[VoiceEvent] = []
        self.engine: EngineHandle | None = None

    async def run(self, engine: EngineHandle) -> None:
        self.engine = engine
        for step in self.steps:
            if isinstance(step, bytes):
                for i in range(0, len(step), 640):
                    await engine.audio(step[i : i + 640])
            else:
                await step(engine)
        await engine.end_of_input()
        await engine.wait_idle()

    async def play(self, turn: int, pcm: bytes) -> None:
        assert len(pcm) % 2 == 0
        if turn not in self.audio:
            self.calls.append(("play", turn))
            if turn in self.hold:
                assert self.engine is not None
                self.engine.played(turn, self.heard_s)
        self.audio.setdefault(turn, bytearray()).extend(pcm)

    async def end_reply(self, turn: int) -> None:
        self.calls.append(("end_reply", turn))
        if turn not in self.hold:
            assert self.engine is not None
            self.engine.played(turn, len(self.audio.get(turn, b"")) / 48000, done=True)

    async def clear(self, turn: int) -> None:
        self.calls.append(("clear", turn))
        if self.ack_clear:
            assert self.engine is not None
            self.engine.played(turn, self.heard_s, done=True)

    async def send_event(self, event: VoiceEvent) -> None:
        self.events.append(event)


async def idle(engine: EngineHandle) -> None:
    await engine.wait_idle()


def test_the_far_end_is_a_voice_transport() -> None:
    assert isinstance(FarEnd([]), VoiceTransport)


async def test_a_spoken_turn_streams_out_with_events_and_latency(
    openrouter_server: OpenRouterTestServer, question_16k: bytes
) -> None:
    reply_pcm = tone_pcm16(1.0)
    openrouter_server.enqueue(speech_reply(reply_pcm, "It is sunny."))
    far = FarEnd([silence(300) + question_16k + silence(1000), idle])
    llm = make_llm(openrouter_server)
    summary = await TurnEngine(llm, far).run()
    await llm.aclose()

    (turn,) = summary.turns
    assert turn.transcript == "It is sunny."
    assert bytes(far.audio[1]) == reply_pcm  # every byte, in order, at the output rate
    assert far.calls == [("play", 1), ("end_reply", 1)]
    kinds = [type(e).__name__ for e in far.events]
    assert kinds[0] == "SpeechStarted"
    assert kinds[1] == "UserTurnStarted"
    assert kinds[-2:] == ["ReplyEnded", "TurnEnded"]
    text = "".join(e.text for e in far.events if isinstance(e, TranscriptDelta))
    assert text == "It is sunny."
    (end,) = [e for e in far.events if isinstance(e, ReplyEnded)]
    assert end.audio_bytes == len(reply_pcm)
    assert end.session_cost == pytest.approx(summary.total_cost)
    assert end.session_cost > 0
    # Latency: the endpointer waited its silence; audio came; the far end reported it played.
    assert turn.endpoint_delay_s >= 0.5
    assert turn.first_audio_s is not None
    assert turn.first_audio_s > 0
    assert turn.first_played_s is not None
    assert turn.first_played_s >= turn.first_audio_s
    assert turn.latency_s == pytest.approx(turn.endpoint_delay_s + turn.first_played_s)
    assert turn.heard_s == pytest.approx(1.0)
    assert isinstance(summary.messages[0], HumanMessage)
    ended = [e.record for e in far.events if isinstance(e, TurnEnded)]
    assert ended == summary.turns


async def test_text_and_keypad_turns(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(
        speech_reply(tone_pcm16(0.2), "Hello."), speech_reply(tone_pcm16(0.2), "Sales.")
    )

    async def typed(engine: EngineHandle) -> None:
        await engine.user_text("Hi there")
        await engine.wait_idle()

    async def keypad(engine: EngineHandle) -> None:
        await engine.dtmf("7")  # not a menu choice: on_dtmf returns nothing
        await engine.dtmf("1")
        await engine.wait_idle()

    def menu(digits: str) -> str | None:
        return "Connect me to sales." if digits == "1" else None

    llm = make_llm(openrouter_server)
    far = FarEnd([typed, keypad])
    summary = await TurnEngine(llm, far, on_dtmf=menu).run()
    await llm.aclose()

    assert [t.transcript for t in summary.turns] == ["Hello.", "Sales."]
    assert [t.user_audio_s for t in summary.turns] == [0.0, 0.0]
    sent = openrouter_server.requests[1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent if m["role"] == "user"] == [
        ("user", "Hi there"),
        ("user", "Connect me to sales."),
    ]
    starts = [e for e in far.events if isinstance(e, UserTurnStarted)]
    assert [(e.turn, e.text) for e in starts] == [(1, "Hi there"), (2, "Connect me to sales.")]


@pytest.mark.parametrize("ack_clear", [True, False], ids=["acked", "no-ack"])
async def test_barge_in_keeps_what_the_far_end_played(
    openrouter_server: OpenRouterTestServer,
    question_16k: bytes,
    followup_16k: bytes,
    ack_clear: bool,
) -> None:
    words = "one two three four five six seven eight"
    openrouter_server.enqueue(
        speech_reply(tone_pcm16(2.0), words), speech_reply(tone_pcm16(0.3), "Tomorrow.")
    )
    far = FarEnd(
        [silence(300) + question_16k + silence(1000), idle, followup_16k + silence(1000)],
        hold=frozenset({1}),
        ack_clear=ack_clear,
    )
    far.heard_s = 0.5  # the far end says it played half a second, then nothing more
    llm = make_llm(openrouter_server)
    engine = TurnEngine(llm, far, stop_timeout_s=0.3)
    summary = await engine.run()
    await llm.aclose()

    first, second = summary.turns
    assert first.interrupted
    assert not first.cancelled
    assert first.heard_s == 0.5  # the ack, or else the last progress report
    assert ("clear", 1) in far.calls
    assert any(isinstance(e, SpeechStarted) for e in far.events)
    cut = engine.history[1]
    assert isinstance(cut, AIMessage)
    assert cut.text == "one two"  # 0.5 s of 2 s: a quarter of eight words
    assert cut.response_metadata["interrupted"] is True
    assert second.transcript == "Tomorrow."
    assert [m.get("content") for m in openrouter_server.requests[1].json["messages"]][1] == (
        "one two"
    )


async def test_a_late_or_foreign_played_report_is_ignored(
    openrouter_server: OpenRouterTestServer, question_16k: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.5), "Fine."))

    async def stray(engine: EngineHandle) -> None:
        engine.played(7, 3.0, done=True)  # no such turn
        engine.played(1, float("nan"))
        await engine.wait_idle()

    far = FarEnd([silence(300) + question_16k + silence(1000), stray])
    llm = make_llm(openrouter_server)
    summary = await TurnEngine(llm, far).run()
    await llm.aclose()
    (turn,) = summary.turns
    assert turn.heard_s == pytest.approx(0.5)
    assert not turn.interrupted


def test_bad_settings_fail_before_any_call(openrouter_server: OpenRouterTestServer) -> None:
    from langchain_openrouter_audio.voice import Endpointer

    llm = make_llm(openrouter_server)
    with pytest.raises(ValueError, match="max_turns"):
        TurnEngine(llm, FarEnd([]), max_turns=0)
    with pytest.raises(ValueError, match="max_utterance_s"):
        TurnEngine(llm, FarEnd([]), max_utterance_s=0)
    with pytest.raises(ValueError, match="input_rate"):
        TurnEngine(llm, FarEnd([]), endpointer=Endpointer(sample_rate=24000))
    with pytest.raises(ValueError, match="max_pending_utterances"):
        TurnEngine(llm, FarEnd([]), max_pending_utterances=0)
    assert openrouter_server.requests == []


async def test_utterances_waiting_for_their_turn_are_bounded_by_default(
    openrouter_server: OpenRouterTestServer, question_16k: bytes
) -> None:
    # Turn 1's reply keeps playing (the far end never says it is done) and there is no
    # barge-in, so every later utterance waits: the fifth one waiting ends the conversation.
    openrouter_server.responder = lambda request: speech_reply(tone_pcm16(0.5), "Sunny.")
    asked = silence(300) + question_16k + silence(1000)
    far = FarEnd([asked, idle, *([question_16k + silence(1000)] * 6)], hold=frozenset({1}))
    llm = make_llm(openrouter_server)
    engine = TurnEngine(llm, far, barge_in=False)
    summary = await engine.run()
    await llm.aclose()

    assert engine.max_pending_utterances == 4
    assert engine.ended is not None
    assert (engine.ended.code, engine.ended.reason) == (
        1008,
        "too many utterances waiting for an answer",
    )
    assert engine.turn_count == 1  # nothing queued was answered: no model call for them
    assert len(openrouter_server.requests) == 1
    assert len(summary.turns) <= 1


async def test_no_bound_on_waiting_utterances_only_when_asked(
    openrouter_server: OpenRouterTestServer, question_16k: bytes
) -> None:
    openrouter_server.responder = lambda request: speech_reply(tone_pcm16(0.5), "Sunny.")
    asked = silence(300) + question_16k + silence(1000)
    far = FarEnd([asked, idle, *([question_16k + silence(1000)] * 6)], hold=frozenset({1}))
    llm = make_llm(openrouter_server)
    engine = TurnEngine(llm, far, barge_in=False, max_pending_utterances=None)
    await engine.run()
    await llm.aclose()
    assert engine.ended is None


def sent_audio_s(server: OpenRouterTestServer, request: int) -> list[float]:
    """Seconds of each user audio block the model was sent in one request."""
    seconds = []
    for message in server.requests[request].json["messages"]:
        if message["role"] == "user" and isinstance(message["content"], list):
            for part in message["content"]:
                if part.get("type") == "input_audio":
                    data = base64.b64decode(part["input_audio"]["data"])
                    with wave.open(io.BytesIO(data)) as w:
                        seconds.append(w.getnframes() / w.getframerate())
    return seconds


async def test_a_talk_button_held_without_a_limit_is_cut_at_the_cap(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # No max_utterance_s (the engine's default): a button held down for ever, with audio
    # sent far faster than real time, still holds at most UTTERANCE_CAP_S of it.
    openrouter_server.responder = lambda request: speech_reply(tone_pcm16(0.2), "Yes.")
    second = tone_pcm16(1.0, sample_rate=RATE)
    over_s = 4

    async def press(engine: EngineHandle) -> None:
        await engine.push_to_talk(True)

    async def hold(engine: EngineHandle) -> None:
        for _ in range(round(UTTERANCE_CAP_S) + over_s):
            await engine.audio(second)

    async def release(engine: EngineHandle) -> None:
        await engine.push_to_talk(False)

    far = FarEnd([press, hold, idle, release, idle])
    llm = make_llm(openrouter_server)
    engine = TurnEngine(llm, far)
    assert engine.max_utterance_s is None
    await engine.run()
    await llm.aclose()

    heard = [e.seconds for e in far.events if isinstance(e, UserTurnStarted)]
    assert heard == [UTTERANCE_CAP_S, over_s]  # was one utterance of 304 s
    assert sent_audio_s(openrouter_server, 0) == [UTTERANCE_CAP_S]
    assert sent_audio_s(openrouter_server, 1)[-1] == over_s


def test_a_limit_above_the_cap_is_held_to_the_cap() -> None:
    user_input = UserInput(Endpointer(sample_rate=RATE), RATE)
    user_input.press()
    held = tone_pcm16(UTTERANCE_CAP_S + 1.0, sample_rate=RATE)
    cuts = user_input.hold(held, max_utterance_s=2 * UTTERANCE_CAP_S)
    assert [len(cut) / 2 / RATE for cut in cuts] == [UTTERANCE_CAP_S]
    assert cuts[0] + user_input.release() == held


async def test_a_failing_turn_hook_fails_the_run(
    openrouter_server: OpenRouterTestServer, question_16k: bytes
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.2), "Fine."))

    def broken(turn: object) -> None:
        raise RuntimeError("hook broke")

    llm = make_llm(openrouter_server)
    far = FarEnd([silence(300) + question_16k + silence(1000), idle])
    with pytest.raises(RuntimeError, match="hook broke"):
        await TurnEngine(llm, far, on_turn=broken).run()
    await llm.aclose()
