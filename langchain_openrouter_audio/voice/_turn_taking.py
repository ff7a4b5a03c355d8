"""Turn-taking people don't notice: continuation, false interruptions, backchannels, echo.

`TurnTaking` holds these settings and what they need to remember between pieces of audio
(a reply paused for a short sound, a question the user went on with). It reads the
endpointer, the transport and the reply under way from the engine, and acts on the reply
(pause, resume, cut) through the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH
from langchain_openrouter_audio.voice._reply import Reply

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice._utterance import Utterance
    from langchain_openrouter_audio.voice.engine import TurnEngine

__all__ = ["Pause", "TurnTaking"]

# The engine's log: what users filter on (and configure) names the engine.
logger = logging.getLogger("langchain_openrouter_audio.voice.engine")


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
    """Decides what the user's speech over a reply means, and pauses, resumes or cuts it."""

    def __init__(
        self,
        engine: TurnEngine,
        *,
        continuation: bool,
        min_interruption_ms: int,
        false_interruption_timeout_s: float,
        backchannel_window_s: float,
    ) -> None:
        self.engine = engine
        self.continuation = continuation
        self.min_interruption_ms = min_interruption_ms
        self.false_interruption_timeout_s = false_interruption_timeout_s
        self.backchannel_window_s = backchannel_window_s
        self.pause: Pause | None = None
        self.held: Utterance | None = None  # answered together with the next utterance
        self.overlapping = False  # the utterance under way began over a reply
        self.during_warmup = False  # ... while the echo canceller was still learning
        self.last_play_end = -(10**12)  # input sample where the last reply played out
        self.false_interruptions = 0
        self.continuations = 0

    # -- what the engine reads --------------------------------------------------------

    def speech_s(self) -> float:
        return float(getattr(self.engine.endpointer, "speech_s", 0.0))

    def warming_up(self) -> bool:
        return bool(getattr(self.engine.transport, "warming_up", False))

    def held_back(self, reply: Reply) -> bool:
        """The reply is paused by clearing the channel: its speech is sent when it plays on."""
        pause = self.pause
        return pause is not None and pause.reply is reply and pause.cleared

    def speech_began(self) -> None:
        """An utterance began: remember whether it is over a reply (or its echo)."""
        engine = self.engine
        self.overlapping = self.over_reply()
        self.during_warmup = engine._playing(engine._reply) and self.warming_up()

    def speech_over(self) -> None:
        self.overlapping = self.during_warmup = False

    def over_reply(self) -> bool:
        """A reply is playing (or has not started yet), or played out a moment ago."""
        engine = self.engine
        reply = engine._reply
        if reply is not None and engine._playing(reply):
            return True
        window = round(self.backchannel_window_s * engine.transport.input_rate)
        return engine._input_samples - self.last_play_end <= window

    def is_backchannel(self) -> bool:
        """The utterance just returned is short and began over a reply (or right after it)."""
        engine = self.engine
        if not engine.barge_in or self.continuable(engine._reply):
            return False
        if self.during_warmup:  # most likely the agent's own echo
            self.false_interruptions += 1
            return True
        if not self.overlapping or not hasattr(engine.endpointer, "last_speech_s"):
            return False
        speech_ms = float(getattr(engine.endpointer, "last_speech_s", 0.0)) * 1000
        if speech_ms >= self.min_interruption_ms:
            return False
        self.false_interruptions += 1
        return True

    def continuable(self, reply: Reply | None) -> bool:
        """The user went on before any of this reply played: answer both parts at once."""
        engine = self.engine
        return (
            self.continuation
            and reply is not None
            and not reply.interrupted
            and not reply.finished.done()
            and reply.first_played_at is None
            and reply.played_s == 0
            and not reply.tools_called
            and not engine._queue
            and (u := engine._utterances.get(reply.index)) is not None
            and u.pcm is not None
        )

    def can_hold(self) -> bool:
        """The transport can pause, or be cleared and sent the rest of a reply again."""
        transport = self.engine.transport
        return bool(
            getattr(transport, "can_pause", False) or getattr(transport, "can_resend", False)
        )

    # -- what it does -----------------------------------------------------------------

    async def on_speech(self, reply: Reply | None) -> None:
        """The user is speaking (`min_speech_ms` heard) while `reply` may be under way."""
        if reply is None:
            return
        if self.continuable(reply):
            await self.abandon(reply)
            return
        if not self.engine._playing(reply) or self.warming_up():
            return
        if not hasattr(self.engine.endpointer, "speech_s"):
            await self.interrupt(reply)  # no way to tell a backchannel: as before
        elif self.speech_s() * 1000 >= self.min_interruption_ms:
            await self.interrupt(reply)
        elif self.pause is None and self.can_hold():
            await self.pause_reply(reply)

    async def abandon(self, reply: Reply) -> None:
        """Cancel a reply nobody heard yet; its question waits for the rest of it."""
        engine = self.engine
        utterance = engine._utterances.pop(reply.index)
        reply.interrupted = True
        reply.cancelled = True
        reply.playback_over = True
        self.continuations += 1
        turn = reply.index
        logger.debug("session %s: the user went on; turn %d dropped", engine.session_id, turn)
        for task in (reply.task, reply.transcribing):  # the call, and words for a dropped turn
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if reply.sent_bytes:
            await engine.transport.clear(reply.index)
        engine.history = list(reply.base[:-1])
        self.held = utterance
        self.overlapping = False  # what the user says now is the rest of the question
        engine._reply = None
        if not reply.finished.done():
            reply.finished.set_result(None)
        engine._touch()

    async def pause_reply(self, reply: Reply) -> None:
        transport = self.engine.transport
        can_pause = bool(getattr(transport, "can_pause", False))
        self.pause = Pause(reply, self.engine._input_samples, not can_pause, reply.played_s)
        if can_pause:
            await transport.pause(reply.index)  # type: ignore[attr-defined]
        else:
            await transport.clear(reply.index)

    def played_while_held(self, reply: Reply, position: float | None, done: bool) -> bool:
        """A progress report for a reply paused by clearing; False if it is not one."""
        pause = self.pause
        if pause is None or pause.reply is not reply or not pause.cleared:
            return False
        if done:  # where it stopped: the re-send starts there
            if position is not None:
                pause.position_s = max(pause.position_s, position)
            pause.acked = True
            if pause.resume_at is not None:  # it was only waiting for this
                self.engine._spawn(self.resume())
        return True

    async def maybe_resume(self) -> None:
        pause = self.pause
        if pause is None:
            return
        engine = self.engine
        rate = engine.transport.input_rate
        if pause.resume_at is not None:  # waiting for the channel to say where it stopped
            if engine._input_samples - pause.resume_at >= round(engine.stop_timeout_s * rate):
                await self.resume()  # it never said: play on from its last report
            return
        timeout = round(self.false_interruption_timeout_s * rate)
        if self.speech_s() == 0 or engine._input_samples - pause.at_sample >= timeout:
            if pause.cleared and not pause.acked:
                pause.resume_at = engine._input_samples
                return
            await self.resume()

    async def resume(self) -> None:
        """Play on from where the reply paused."""
        pause, self.pause = self.pause, None
        if pause is None:
            return
        engine = self.engine
        reply = pause.reply
        if reply is not engine._reply or reply.interrupted or reply.finished.done():
            return
        if not pause.cleared:
            await engine.transport.resume(reply.index)  # type: ignore[attr-defined]
            return
        # Sent again from where it stopped; the transport counts from this new start.
        start = min(round(pause.position_s * reply.output_rate) * SAMPLE_WIDTH, len(reply.audio))
        reply.play_offset_s = start / SAMPLE_WIDTH / reply.output_rate
        reply.played_s = reply.play_offset_s
        if rest := bytes(reply.audio[start:]):
            await engine.transport.play(reply.index, rest)
        if reply.generated:
            await engine.transport.end_reply(reply.index)
            if not rest:
                reply.playback_over = True
                engine._maybe_finish(reply)
        engine._touch()

    async def interrupt(self, reply: Reply) -> None:
        """Barge-in: nothing more reaches the channel, it stops now, and the turn settles."""
        if reply.interrupted:
            return
        engine = self.engine
        reply.interrupted = True
        self.during_warmup = False  # the words that interrupted are a turn
        pause, self.pause = self.pause, None
        engine._touch()
        if pause is not None and pause.reply is reply and pause.cleared:
            # Already cleared for the pause: no second clear. Where it stopped is known, or
            # comes with the channel's report (which `settle` waits for).
            reply.played_s = max(reply.played_s, pause.position_s)
            if pause.acked and not reply.stopped.done():
                reply.stopped.set_result(reply.played_s)
            engine._spawn(self.settle(reply))
            return
        engine._spawn(self.settle(reply))
        await engine.transport.clear(reply.index)

    async def settle(self, reply: Reply) -> None:
        """After a barge-in: learn where playback stopped, keep only what was heard."""
        engine = self.engine
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reply.stopped), engine.stop_timeout_s)
        reply.playback_over = True
        # The call runs on (unheard) until then: what it said may still count as heard.
        reply.cancelled = not reply.generated
        if reply.task is not None:
            reply.task.cancel()
            await asyncio.gather(reply.task, return_exceptions=True)
        kept = reply.heard(reply.played_s)
        engine.history = [*reply.base, *kept]
        spoken = kept[-1] if kept and isinstance(kept[-1], AIMessage) else None
        await engine._finish(reply, spoken)
