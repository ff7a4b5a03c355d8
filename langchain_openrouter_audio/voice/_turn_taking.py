"""Turn-taking people don't notice: continuation, false interruptions, backchannels, echo.

`TurnTaking` is the policy. It decides what the user's speech over a reply means and keeps
what it must remember between pieces of audio (a reply paused for a short sound, a
question the user went on with, whether the speech under way began over a reply, the
counters). It acts on nothing: it returns an `Act` and the engine carries it out (pauses,
resumes or cuts the reply through the transport, cancels the call, sets the history).

In: its settings; the endpointer's `speech_s` / `last_speech_s` and the channel's
`input_rate`, `warming_up`, `can_pause`, `can_resend` (read only); and with each call a
`Moment`, the engine's state as it is then (the reply under way, the question it answers,
the input position, whether utterances wait). Out: `Act`s, `held_back(reply)` for the
outlet, the question to answer with the next utterance (`take_held`), and the `Pause` to
play on from (`take_pause`, `interrupted`).

    engine --Moment, what happened--> TurnTaking --Act--> engine --pause/clear/...--> transport
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice._reply import Reply
    from langchain_openrouter_audio.voice._utterance import Utterance

__all__ = ["Act", "Channel", "Moment", "Pause", "TurnTaking"]


class Act(enum.Enum):
    """What the engine is to do with the reply under way."""

    NOTHING = "nothing"
    PAUSE = "pause"  # hold it: `transport.pause`, or `clear` if `held_back` (sent again later)
    INTERRUPT = "interrupt"  # barge-in: cut it, keep what was heard
    ABANDON = "abandon"  # cancel it unheard; its question waits for the rest (`went_on`)
    RESUME = "resume"  # play the paused reply on (`take_pause` says from where)


class Channel(Protocol):
    """What turn-taking reads of the transport (`warming_up`, `can_pause`, `can_resend`
    are optional: read with `getattr`)."""

    @property
    def input_rate(self) -> int: ...


@dataclass(frozen=True)
class Moment:
    """The engine's state when it asks for a decision."""

    reply: Reply | None  # the reply under way
    question: Utterance | None  # what `reply` answers
    input_samples: int  # position on the input timeline
    waiting: bool  # utterances wait for their turn


@dataclass
class Pause:
    """A reply held while the user makes a sound that may be no interruption."""

    reply: Reply
    at_sample: int  # input position when it paused
    cleared: bool  # the transport cannot pause: it was cleared, the rest is sent again
    position_s: float  # where playback stopped in the reply
    acked: bool = False  # (cleared) the transport said where it stopped
    resume_at: int | None = None  # (cleared) input sample when it should have played on


class TurnTaking:
    """Decides what the user's speech over a reply means; remembers what that needs."""

    def __init__(
        self,
        *,
        continuation: bool,
        min_interruption_ms: int,
        false_interruption_timeout_s: float,
        backchannel_window_s: float,
        endpointer: object,
        channel: Channel,
    ) -> None:
        self.continuation = continuation
        self.min_interruption_ms = min_interruption_ms
        self.false_interruption_timeout_s = false_interruption_timeout_s
        self.backchannel_window_s = backchannel_window_s
        self._endpointer = endpointer  # read only: speech_s, last_speech_s
        self._channel = channel  # read only: input_rate and capabilities
        self.pause: Pause | None = None
        self.held: Utterance | None = None  # answered together with the next utterance
        self.overlapping = False  # the utterance under way began over a reply
        self.during_warmup = False  # ... while the echo canceller was still learning
        self.last_play_end = -(10**12)  # input sample where the last reply played out
        self.false_interruptions = 0
        self.continuations = 0

    # -- what it reads ----------------------------------------------------------------

    def speech_s(self) -> float:
        """Speech heard in the utterance under way (0 between utterances)."""
        return float(getattr(self._endpointer, "speech_s", 0.0))

    def warming_up(self) -> bool:
        return bool(getattr(self._channel, "warming_up", False))

    def held_back(self, reply: Reply) -> bool:
        """The reply is paused by clearing the channel: its speech is sent when it plays on."""
        pause = self.pause
        return pause is not None and pause.reply is reply and pause.cleared

    def _can_hold(self) -> bool:
        """The transport can pause, or be cleared and sent the rest of a reply again."""
        channel = self._channel
        return bool(getattr(channel, "can_pause", False) or getattr(channel, "can_resend", False))

    def _over_reply(self, now: Moment) -> bool:
        """A reply is playing (or has not started yet), or played out a moment ago."""
        if now.reply is not None and now.reply.under_way:
            return True
        window = round(self.backchannel_window_s * self._channel.input_rate)
        return now.input_samples - self.last_play_end <= window

    def _continuable(self, now: Moment) -> bool:
        """The user went on before any of this reply played: answer both parts at once."""
        reply = now.reply
        return (
            self.continuation
            and reply is not None
            and not reply.interrupted
            and not reply.finished.done()
            and reply.first_played_at is None
            and reply.played_s == 0
            and not reply.tools_called
            and not now.waiting
            and now.question is not None
            and now.question.pcm is not None
        )

    # -- what the engine tells it -----------------------------------------------------

    def speech_began(self, now: Moment) -> None:
        """An utterance began: remember whether it is over a reply (or its echo)."""
        self.overlapping = self._over_reply(now)
        self.during_warmup = now.reply is not None and now.reply.under_way and self.warming_up()

    def speech_over(self) -> None:
        self.overlapping = self.during_warmup = False

    def played_out(self, at_sample: int) -> None:
        """A reply's playback ended at this input position."""
        self.last_play_end = at_sample

    def went_on(self, question: Utterance) -> None:
        """A reply was abandoned: its question is answered with the next utterance."""
        self.held = question
        self.overlapping = False  # what the user says now is the rest of the question

    def take_held(self) -> Utterance | None:
        """The question the user went on with (now to be answered), if any."""
        held, self.held = self.held, None
        return held

    def take_pause(self) -> Pause | None:
        """The pause to play on from (it is over)."""
        pause, self.pause = self.pause, None
        return pause

    def interrupted(self) -> Pause | None:
        """A barge-in cut the reply: the words that interrupted are a turn; the pause it
        cut, if any, is returned (over)."""
        self.during_warmup = False
        return self.take_pause()

    # -- decisions --------------------------------------------------------------------

    def is_backchannel(self, now: Moment) -> bool:
        """The utterance just returned is short and began over a reply (or right after it).

        (Asked only with barge-in on.)
        """
        if self._continuable(now):
            return False
        if self.during_warmup:  # most likely the agent's own echo
            self.false_interruptions += 1
            return True
        if not self.overlapping or not hasattr(self._endpointer, "last_speech_s"):
            return False
        speech_ms = float(getattr(self._endpointer, "last_speech_s", 0.0)) * 1000
        if speech_ms >= self.min_interruption_ms:
            return False
        self.false_interruptions += 1
        return True

    def on_speech(self, now: Moment) -> Act:
        """The user is speaking (`min_speech_ms` heard) while `now.reply` may be under way.

        `PAUSE` is decided here: `pause` holds where (the engine pauses or clears).
        """
        reply = now.reply
        if reply is None:
            return Act.NOTHING
        if self._continuable(now):
            self.continuations += 1
            return Act.ABANDON
        if not reply.under_way or self.warming_up():
            return Act.NOTHING
        if not hasattr(self._endpointer, "speech_s"):
            return Act.INTERRUPT  # no way to tell a backchannel: as before
        if self.speech_s() * 1000 >= self.min_interruption_ms:
            return Act.INTERRUPT
        if self.pause is None and self._can_hold():
            can_pause = bool(getattr(self._channel, "can_pause", False))
            self.pause = Pause(reply, now.input_samples, not can_pause, reply.played_s)
            return Act.PAUSE
        return Act.NOTHING

    def played_while_held(self, reply: Reply, position: float | None, done: bool) -> Act | None:
        """A progress report for a reply paused by clearing: `NOTHING` (taken), or `RESUME`
        (taken, and it was only waiting for this to play on); None if it is not one."""
        pause = self.pause
        if pause is None or pause.reply is not reply or not pause.cleared:
            return None
        if done:  # where it stopped: the re-send starts there
            if position is not None:
                pause.position_s = max(pause.position_s, position)
            pause.acked = True
            if pause.resume_at is not None:
                return Act.RESUME
        return Act.NOTHING

    def resume_due(self, now: Moment, stop_timeout_s: float) -> bool:
        """The paused reply should play on now (the sound ended, or it paused too long)."""
        pause = self.pause
        if pause is None:
            return False
        rate = self._channel.input_rate
        if pause.resume_at is not None:  # waiting for the channel to say where it stopped
            # It never said: play on from its last report.
            return now.input_samples - pause.resume_at >= round(stop_timeout_s * rate)
        timeout = round(self.false_interruption_timeout_s * rate)
        if self.speech_s() == 0 or now.input_samples - pause.at_sample >= timeout:
            if pause.cleared and not pause.acked:
                pause.resume_at = now.input_samples
                return False
            return True
        return False
