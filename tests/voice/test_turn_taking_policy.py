"""Turn-taking as a policy: given the engine's state (`Moment`) it returns what to do (`Act`)
and keeps its own memory; it touches no transport. (The engine acting on these decisions
over real sockets is tested in `test_interruptions.py`.)"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import HumanMessage

from langchain_openrouter_audio.voice._reply import Reply
from langchain_openrouter_audio.voice._turn_taking import Act, Moment, TurnTaking
from langchain_openrouter_audio.voice._utterance import Utterance

RATE = 16000


@dataclass
class Meter:
    """What turn-taking reads of an endpointer."""

    speech_s: float = 0.0
    last_speech_s: float = 0.0


@dataclass
class Channel:
    """What turn-taking reads of a transport."""

    input_rate: int = RATE
    can_pause: bool = False
    can_resend: bool = False
    warming_up: bool = False


def policy(meter: Meter, channel: Channel) -> TurnTaking:
    return TurnTaking(
        continuation=True,
        min_interruption_ms=500,
        false_interruption_timeout_s=2.0,
        backchannel_window_s=0.3,
        endpointer=meter,
        channel=channel,
    )


def reply(played_s: float = 0.0) -> Reply:
    made = Reply(1, [HumanMessage("q")], 24000, 0.0, 0, 0.0)
    made.played_s = played_s
    made.first_played_at = 1.0 if played_s else None
    return made


def question() -> Utterance:
    return Utterance(b"\0\0" * RATE, None, 0.0, 0.0, RATE, interrupts=True)


async def test_speech_before_any_of_the_reply_played_abandons_it() -> None:
    turn_taking = policy(Meter(speech_s=0.1), Channel())
    unheard = reply()
    now = Moment(unheard, question(), 2 * RATE, waiting=False)
    assert turn_taking.on_speech(now) is Act.ABANDON
    assert turn_taking.continuations == 1
    # Another utterance already waits, or the question was typed: no continuation.
    waiting = Moment(unheard, question(), 2 * RATE, waiting=True)
    assert turn_taking.on_speech(waiting) is not Act.ABANDON
    typed = Moment(unheard, Utterance(None, "hi", 0.0, 0.0, RATE, True), 2 * RATE, False)
    assert turn_taking.on_speech(typed) is not Act.ABANDON


async def test_short_speech_pauses_a_playing_reply_and_long_speech_interrupts_it() -> None:
    meter = Meter(speech_s=0.2)
    turn_taking = policy(meter, Channel(can_pause=True))
    playing = reply(played_s=1.0)
    now = Moment(playing, question(), 3 * RATE, waiting=False)
    assert turn_taking.on_speech(now) is Act.PAUSE
    assert turn_taking.pause is not None
    assert turn_taking.pause.position_s == 1.0
    assert not turn_taking.held_back(playing)  # paused by the transport, not cleared
    assert turn_taking.on_speech(now) is Act.NOTHING  # already paused
    meter.speech_s = 0.5
    assert turn_taking.on_speech(now) is Act.INTERRUPT
    assert turn_taking.interrupted() is not None
    assert turn_taking.pause is None


async def test_no_pause_no_resend_and_echo_warm_up_decide_nothing() -> None:
    playing = reply(played_s=1.0)
    now = Moment(playing, question(), 3 * RATE, waiting=False)
    assert policy(Meter(speech_s=0.2), Channel()).on_speech(now) is Act.NOTHING
    warming = Channel(can_pause=True, warming_up=True)
    assert policy(Meter(speech_s=0.9), warming).on_speech(now) is Act.NOTHING


async def test_a_cleared_pause_plays_on_once_the_channel_says_where_it_stopped() -> None:
    meter = Meter(speech_s=0.2)
    turn_taking = policy(meter, Channel(can_resend=True))
    playing = reply(played_s=1.0)
    assert turn_taking.on_speech(Moment(playing, None, 3 * RATE, False)) is Act.PAUSE
    assert turn_taking.held_back(playing)  # its speech waits in the reply
    meter.speech_s = 0.0  # the sound was short
    assert not turn_taking.resume_due(Moment(playing, None, 3 * RATE + 800, False), 2.0)
    assert turn_taking.played_while_held(playing, 1.25, done=True) is Act.RESUME
    pause = turn_taking.take_pause()
    assert pause is not None
    assert pause.position_s == 1.25
    assert pause.acked
    assert turn_taking.played_while_held(playing, 1.3, done=True) is None  # no pause now


async def test_a_cleared_pause_never_acknowledged_plays_on_after_the_stop_timeout() -> None:
    meter = Meter(speech_s=0.2)
    turn_taking = policy(meter, Channel(can_resend=True))
    playing = reply(played_s=1.0)
    turn_taking.on_speech(Moment(playing, None, 3 * RATE, False))
    meter.speech_s = 0.0
    assert not turn_taking.resume_due(Moment(playing, None, 3 * RATE, False), 2.0)
    assert not turn_taking.resume_due(Moment(playing, None, 4 * RATE, False), 2.0)
    assert turn_taking.resume_due(Moment(playing, None, 5 * RATE, False), 2.0)


async def test_a_short_utterance_over_a_reply_is_a_backchannel_and_a_long_one_a_turn() -> None:
    meter = Meter(speech_s=0.2)
    turn_taking = policy(meter, Channel(can_pause=True))
    playing = reply(played_s=1.0)
    now = Moment(playing, question(), 3 * RATE, waiting=False)
    turn_taking.speech_began(now)
    meter.last_speech_s = 0.3
    assert turn_taking.is_backchannel(now)
    assert turn_taking.false_interruptions == 1
    meter.last_speech_s = 0.8
    assert not turn_taking.is_backchannel(now)
    # Right after a reply played out it is still one; a while later, a turn.
    turn_taking.speech_over()
    turn_taking.played_out(3 * RATE)
    meter.last_speech_s = 0.3
    turn_taking.speech_began(Moment(None, None, 3 * RATE + RATE // 10, False))
    assert turn_taking.is_backchannel(Moment(None, None, 3 * RATE + RATE // 10, False))
    turn_taking.speech_over()
    turn_taking.speech_began(Moment(None, None, 4 * RATE, False))
    assert not turn_taking.is_backchannel(Moment(None, None, 4 * RATE, False))
