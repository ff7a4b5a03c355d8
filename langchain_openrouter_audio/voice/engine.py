"""TurnEngine: one conversation's turns, over any `VoiceTransport`.

The engine finds utterances in the user's audio, hands each to the agent, streams the
reply's speech out through the transport, stops on barge-in, keeps what the user heard,
and measures cost and latency. The transport only moves audio and says what was played.

The engine is the conductor. It owns the conversation's state (the history, which reply is
under way, the utterances waiting) and only it changes that state; the parts it conducts
get what they read as arguments and return (or report through callables it hands them)
what happened. The one record they share is the `Reply` being answered: the agent's call
fills in its speech and words, the engine its playback and its end. One line per flow:

    transport --audio, button, text--> engine --pcm--> UserInput --utterances--> engine
    engine --Moment--> TurnTaking --Act--> engine --pause/clear/resume/play--> transport
    engine --CallSettings, CallEffects--> AgentCall --speech, events--> ReplyOutlet
    ReplyOutlet --play, events--> transport --played(turn, seconds)--> engine

- `UserInput` (`_user_input.py`) turns the user's audio into utterances (the endpointer,
  a held talk button, the `max_utterance_s` cut) and counts the input position; the
  engine queues what it returns.
- `TurnTaking` (`_turn_taking.py`) decides what speech over a reply means (nothing,
  pause, interrupt, abandon, resume) and remembers what that needs; the engine acts.
- `AgentCall` (`_agent_call.py`) runs one turn's agent call; its effects on the
  conversation (the history it leaves, a transcript, tasks, the spending limit) are the
  `CallEffects` callables the engine gives it.
- `ReplyOutlet` (`_outlet.py`) sends a reply's speech and events to the transport unless
  turn-taking holds it back; `Reply` (`_reply.py`) is one reply's record; `Utterance`
  (`_utterance.py`) one question waiting; `_recording_placement.py` where replies go on
  the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.cost import OpenRouterCallbackHandler, get_openrouter_callback
from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.voice._agent_call import (
    BUDGET_MESSAGE,
    AgentCall,
    CallEffects,
    CallSettings,
    recent_turns,
)
from langchain_openrouter_audio.voice._agent_call import (
    agent_input_key as agent_input_key,  # importable from here, as ever
)
from langchain_openrouter_audio.voice._outlet import ReplyOutlet
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH, seconds
from langchain_openrouter_audio.voice._recording_placement import place_reply, settled_until
from langchain_openrouter_audio.voice._reply import Reply
from langchain_openrouter_audio.voice._turn_taking import Act, Moment, TurnTaking
from langchain_openrouter_audio.voice._user_input import UserInput
from langchain_openrouter_audio.voice._utterance import Utterance
from langchain_openrouter_audio.voice.endpointer import Endpointer
from langchain_openrouter_audio.voice.limits import MAX_PENDING_UTTERANCES, SessionEnded
from langchain_openrouter_audio.voice.recording import ConversationRecorder
from langchain_openrouter_audio.voice.spoken_text import (
    COST_GRACE_S,
    AgentHears,
    agent_hearing,
    as_speech,
    as_transcription,
    settle,
    with_transcript,
)
from langchain_openrouter_audio.voice.transport import (
    ReplyEnded,
    SpeechStarted,
    TurnEnded,
    TurnFailed,
    VoiceEvent,
    VoiceTransport,
)
from langchain_openrouter_audio.voice.turn import VoiceSummary, VoiceTurn

__all__ = ["EndpointerLike", "TurnEngine"]

logger = logging.getLogger(__name__)

# How long a channel may take to say where it stopped after `clear` before the engine takes
# its last progress report: a far end that hangs must not hang the conversation.
STOP_ACK_TIMEOUT_S = 2.0
# Turn-taking defaults (LiveKit's): speech shorter than this over a reply is no barge-in.
MIN_INTERRUPTION_MS = 500
# The longest a reply stays paused for a short sound before it plays on.
FALSE_INTERRUPTION_TIMEOUT_S = 2.0
# A short sound this soon after a reply played out is a backchannel ("mm-hm"), not a turn;
# short, because a quick "yes" answering the reply is a turn.
BACKCHANNEL_WINDOW_S = 0.3
# How long a finished turn waits for a transcript made beside a speech-native agent's call
# before it is recorded without the user's words (the transcript still reaches the UI).
TRANSCRIPT_WAIT_S = 5.0

# User audio goes through the endpointer in pieces this long at most, so a long frame is
# cut at `max_utterance_s` like a stream of short ones.
_PIECE_S = 0.1


class EndpointerLike(Protocol):
    """What the engine needs from `langchain_openrouter_audio.voice.Endpointer`.

    (`position_s` and `last_speech_end_s`, if present, give the endpoint delay.)
    """

    speaking: bool

    def push(self, pcm: bytes) -> list[bytes]: ...

    def flush(self) -> list[bytes]: ...


class TurnEngine:
    """Runs a conversation's turns for `agent` over `transport` until the transport ends.

    `agent` is any runnable that takes messages: a chat model (input: the message list), a
    `create_agent` graph or any LangGraph graph with a `messages` key (input:
    `{"messages": [...]}`, and its returned state is the conversation; `input_key=None` or
    a name overrides). Each utterance the endpointer finds becomes a `HumanMessage` holding
    its audio (a WAV at the transport's input rate); the reply's speech goes to
    `transport.play` as it streams, resampled to the transport's output rate.

    Barge-in (`barge_in=True`): once the user speaks while a reply is under way, the engine
    sends the transport no more of it and calls `transport.clear`; once the channel says
    where it stopped (or after `stop_timeout_s`) it cancels the agent's call, and the
    conversation keeps what was heard: messages before the reply being played stay whole,
    that reply is cut with `truncate_to_heard`, the rest and tool calls left without
    results are dropped. With `barge_in=False` an utterance waits for the reply to end.

    Turn-taking people don't notice (with `barge_in=True` and an endpointer that reports
    `speech_s`, as `Endpointer` does):

    - **Continuation**: if the user speaks again (`min_speech_ms`) before any of the reply
      has played, the agent's call is cancelled (its HTTP stream closes) and the next
      utterance is answered together with the previous one, as one `HumanMessage` holding
      both audio clips joined (`continuation=True`).
    - **False interruptions**: speech over a playing reply pauses it at once
      (`transport.pause` if it `can_pause`, or `clear` and the rest sent again if it
      `can_resend`; a transport with neither keeps playing). Once it reaches
      `min_interruption_ms` of speech it is a barge-in as above; if it stops shorter, the
      reply plays on from where it paused (at the latest `false_interruption_timeout_s`
      after pausing) and the sound is no turn. `false_interruptions` and `continuations`
      count how often each happened.
    - **Backchannels**: an utterance shorter than `min_interruption_ms` that began while a
      reply played, or within `backchannel_window_s` after it played out, is no turn.
    - **Echo warm-up**: while the transport's `warming_up` is True (an echo canceller
      still learning the room), speech over a reply neither pauses nor interrupts it.

    `record` (a path; `{session}` is replaced by `session_id`) writes the conversation as
    a stereo WAV at the input rate: the user left, the agent's played audio right.
    `max_turns` keeps only the last turns in what the agent is sent; `max_utterance_s` cuts
    an utterance (or a held talk button) that long, inside a frame if need be; without it
    (or above it) one is cut at `UTTERANCE_CAP_S` (5 minutes), so memory stays bounded.
    `turn_timeout_s` bounds each turn's agent call (the turn fails with a message).
    `max_cost_usd` stops the conversation once OpenRouter's billed cost reaches it: no new
    model call starts, not even inside a turn. Calls cut short (a barge-in, a timeout)
    count too: their billed cost is looked up in the background and lands a moment
    later (within the model's `cost_wait_s`), so the limit may be passed by about one
    call's cost. `max_pending_utterances` (4 by default; None
    for no bound) caps the utterances waiting while a reply is generated or played: one
    more ends the conversation with `SessionEnded("too many utterances waiting for an
    answer")`. `max_turns_per_minute` bounds the turns started; past any of these the
    conversation ends, `ended` says why (a `SessionEnded`) and `run` returns normally. A
    failure inside a turn is logged with a reference the user is shown; one outside a turn
    ends the conversation. Each finished `VoiceTurn` goes to `on_turn(turn)` and to every
    handler in `callbacks` with an `on_voice_turn(turn)` method (sync or async).
    `on_dtmf(digits)` gets keypad digits; if it returns a string, that text is a user turn.

    Any chat model can be the agent: `transcription=` (a slug such as `"openai/whisper-1"`,
    or an `OpenRouterTranscription`) turns each utterance into a text `HumanMessage`, and
    `speech=` (a TTS slug or an `OpenRouterSpeech`) speaks the agent's text replies
    sentence by sentence while they still stream; a barge-in keeps the words heard.
    With `transcription=` and an agent that hears audio itself (a speech-native model;
    `agent_hears="auto"` decides, see `agent_hearing`), the agent still gets the recording
    at once and the transcript is made beside its call: it reaches the UI as a
    `UserTranscript`, the turn as `VoiceTurn.user_text` and the question in the history
    as `additional_kwargs["transcript"]`.

    ```python
    engine = TurnEngine(agent, transport, record="calls/{session}.wav")
    summary = await engine.run()  # per-turn latency, heard transcripts, cost
    ```
    """

    def __init__(
        self,
        agent: Runnable[Any, Any],
        transport: VoiceTransport,
        *,
        messages: Sequence[BaseMessage] = (),
        endpointer: EndpointerLike | None = None,
        barge_in: bool = True,
        input_key: str | None = "auto",
        config: RunnableConfig | None = None,
        callbacks: Sequence[BaseCallbackHandler] = (),
        on_turn: Callable[[VoiceTurn], Any] | None = None,
        on_dtmf: Callable[[str], Any] | None = None,
        max_turns: int | None = None,
        max_utterance_s: float | None = None,
        stop_timeout_s: float = STOP_ACK_TIMEOUT_S,
        record: str | Path | None = None,
        session_id: str | None = None,
        continuation: bool = True,
        min_interruption_ms: int = MIN_INTERRUPTION_MS,
        false_interruption_timeout_s: float = FALSE_INTERRUPTION_TIMEOUT_S,
        backchannel_window_s: float = BACKCHANNEL_WINDOW_S,
        transcription: str | Runnable[Any, str] | None = None,
        speech: str | OpenRouterSpeech | None = None,
        turn_timeout_s: float | None = 120.0,
        max_cost_usd: float | None = None,
        max_pending_utterances: int | None = MAX_PENDING_UTTERANCES,
        max_turns_per_minute: int | None = None,
        agent_hears: AgentHears = "auto",
    ) -> None:
        if max_turns is not None and max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        if min_interruption_ms < 0:
            raise ValueError("min_interruption_ms must be >= 0")
        if false_interruption_timeout_s <= 0 or backchannel_window_s < 0:
            raise ValueError("need false_interruption_timeout_s > 0 and backchannel_window_s >= 0")
        if max_utterance_s is not None and max_utterance_s <= 0:
            raise ValueError("max_utterance_s must be > 0")
        if max_pending_utterances is not None and max_pending_utterances < 1:
            raise ValueError("max_pending_utterances must be >= 1 (or None for no bound)")
        self.agent = agent
        self.transport = transport
        self.transcription = as_transcription(transcription)
        self.speech = as_speech(speech)
        self.agent_hears = agent_hearing(agent_hears, agent, self.transcription, self.speech)
        self.history: list[BaseMessage] = list(messages)
        self.endpointer: EndpointerLike = endpointer or Endpointer(sample_rate=transport.input_rate)
        rate = getattr(self.endpointer, "sample_rate", transport.input_rate)
        if rate != transport.input_rate:
            raise ValueError("the endpointer's sample_rate must be the transport's input_rate")
        self.barge_in = barge_in
        self.input_key = agent_input_key(agent, input_key)
        self.config: RunnableConfig = dict(config or {})  # type: ignore[assignment]
        self.callbacks = list(callbacks)
        self.on_turn = on_turn
        self.on_dtmf = on_dtmf
        self.max_turns = max_turns
        self.max_utterance_s = max_utterance_s
        self.stop_timeout_s = stop_timeout_s
        self._turn_taking = TurnTaking(
            continuation=continuation,
            min_interruption_ms=min_interruption_ms,
            false_interruption_timeout_s=false_interruption_timeout_s,
            backchannel_window_s=backchannel_window_s,
            endpointer=self.endpointer,
            channel=transport,
        )
        self._outlet = ReplyOutlet(transport, self._turn_taking.held_back)
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.record_path = Path(str(record).format(session=self.session_id)) if record else None
        self.turns: list[VoiceTurn] = []
        self.usage = OpenRouterCallbackHandler()  # replaced by the run's own block
        self.recorder: ConversationRecorder | None = None
        self._queue: deque[Utterance] = deque()
        self._queued = asyncio.Event()
        self._reply: Reply | None = None
        self._count = 0
        self._input = UserInput(self.endpointer, transport.input_rate)
        self._piece_bytes = round(_PIECE_S * transport.input_rate) * SAMPLE_WIDTH
        self._waiters: list[asyncio.Future[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failures: list[BaseException] = []
        self.turn_timeout_s = turn_timeout_s
        self.max_cost_usd = max_cost_usd
        self.max_pending_utterances = max_pending_utterances
        self.max_turns_per_minute = max_turns_per_minute
        self.ended: SessionEnded | None = None
        """Why the conversation ended early (a limit), or None."""
        self._ending = asyncio.Event()
        self._turn_starts: deque[float] = deque()
        self._question: Utterance | None = None  # what the reply under way answers
        self._cost_lookups: set[asyncio.Task[None]] = set()  # of sentences a barge-in cut
        self._call_effects = CallEffects(
            set_history=self._set_history,
            add_transcript=self._add_transcript,
            spawn=self._spawn,
            keep_cost_lookups=self._keep_cost_lookups,
            end=self.end,
            over_budget=self._over_budget,
        )

    # -- the conversation ------------------------------------------------------------

    async def run(self) -> VoiceSummary:
        """Run the transport until it ends, answering each utterance; returns a summary."""
        if self.record_path is not None:
            self.recorder = ConversationRecorder(
                self.record_path, sample_rate=self.transport.input_rate
            )
        with get_openrouter_callback() as usage:
            self.usage = usage
            conductor = self._spawn(self._conduct())
            channel = asyncio.create_task(self.transport.run(self))
            ending = asyncio.create_task(self._ending.wait())
            try:
                await asyncio.wait({channel, ending}, return_when=asyncio.FIRST_COMPLETED)
                if channel.done() and not channel.cancelled():
                    self._channel_ended(channel.exception())
            finally:
                for task in (channel, ending):
                    task.cancel()
                await asyncio.gather(channel, ending, return_exceptions=True)
                await self._shut_down(conductor)
        self._raise_failure()
        return VoiceSummary(self.turns, usage, list(self.history))

    def end(self, ended: SessionEnded) -> None:
        """End the conversation now (the first reason given is kept in `ended`)."""
        if self.ended is None:
            self.ended = ended
        self._ending.set()

    def _channel_ended(self, error: BaseException | None) -> None:
        """A limit the engine raised inside the channel's call ends the conversation; any
        other failure of the channel is the caller's to see."""
        if isinstance(error, SessionEnded):
            self.end(error)
        elif error is not None:
            raise error

    @property
    def turn_count(self) -> int:
        """Turns started so far (answered or being answered)."""
        return self._count

    @property
    def busy(self) -> bool:
        """A reply is being generated or played, or an utterance waits for its turn."""
        reply = self._reply
        return bool(self._queue) or (reply is not None and not reply.finished.done())

    @property
    def false_interruptions(self) -> int:
        """Short sounds over a reply that were no turn (the reply paused or played on)."""
        return self._turn_taking.false_interruptions

    @property
    def continuations(self) -> int:
        """Times the user went on before a reply played, and both parts were answered."""
        return self._turn_taking.continuations

    @property
    def continuation(self) -> bool:
        """Speech before any of a reply played continues the question (the setting)."""
        return self._turn_taking.continuation

    @property
    def min_interruption_ms(self) -> int:
        """Speech over a reply shorter than this is no barge-in (the setting)."""
        return self._turn_taking.min_interruption_ms

    @property
    def false_interruption_timeout_s(self) -> float:
        """The longest a reply stays paused for a short sound (the setting)."""
        return self._turn_taking.false_interruption_timeout_s

    @property
    def backchannel_window_s(self) -> float:
        """How soon after a reply a short sound is still a backchannel (the setting)."""
        return self._turn_taking.backchannel_window_s

    async def _shut_down(self, conductor: asyncio.Task[Any]) -> None:
        conductor.cancel()
        reply = self._reply
        tasks = [conductor, *self._tasks]
        if reply is not None and reply.task is not None:
            reply.task.cancel()
            tasks.append(reply.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if lookups := {task for task in self._cost_lookups if not task.done()}:
            wait_s = self.speech.cost_wait_s if self.speech is not None else 0.0
            await settle(lookups, wait_s + COST_GRACE_S)  # spoken, so billed: count it
        # Model calls cut short were billed too; each of their lookups is bounded.
        await self.usage.wait_for_lookups()
        if self.recorder is not None:
            if reply is not None and not reply.finished.done():
                self._record_reply(reply)  # what was played of a reply cut by the hang-up
            self.recorder.close()

    # -- the channel's calls (EngineHandle) ------------------------------------------

    async def audio(self, pcm: bytes) -> None:
        """The user's audio: PCM16 mono at the transport's input rate, any piece size."""
        self._raise_failure()
        piece = self._piece_bytes
        if len(pcm) <= piece:
            await self._audio(pcm)
            return
        for start in range(0, len(pcm), piece):
            await self._audio(pcm[start : start + piece])

    async def _audio(self, pcm: bytes) -> None:
        self._input.advance(pcm)
        if self.recorder is not None:
            self.recorder.user_audio(pcm)
            self._flush_recording()
        if self._input.pressed:
            for cut in self._input.hold(pcm, self.max_utterance_s):
                self._enqueue(cut, None, 0.0, interrupts=True)
            return
        endpointer = self.endpointer
        was_speaking = endpointer.speaking
        policy = self._turn_taking
        was_in_speech = policy.speech_s() > 0
        utterances = self._input.endpoint(pcm, self.max_utterance_s)
        if not was_in_speech and (policy.speech_s() > 0 or utterances):
            policy.speech_began(self._moment())
        if endpointer.speaking and not was_speaking:
            await self._emit(SpeechStarted())
        if self.barge_in and endpointer.speaking and (reply := self._reply) is not None:
            await self._act(policy.on_speech(self._moment()), reply)
        delay = self._input.endpoint_delay() if utterances else 0.0
        for utterance in utterances:
            if self.barge_in and policy.is_backchannel(self._moment()):
                logger.debug("session %s: a backchannel, no turn", self.session_id)
                continue
            self._enqueue(utterance, None, delay, interrupts=self.barge_in)
        if policy.speech_s() == 0:
            policy.speech_over()
        if policy.resume_due(self._moment(), self.stop_timeout_s):
            await self._resume()

    def played(self, turn: int, seconds: float, *, done: bool = False) -> None:
        """`seconds` of turn `turn`'s reply were played; `done`: its playback is over."""
        reply = self._reply
        if reply is None or turn != reply.index or reply.playback_over:
            return
        valid = isinstance(seconds, int | float) and seconds >= 0  # NaN fails the comparison
        position = reply.play_offset_s + float(seconds) if valid else None
        held = self._turn_taking.played_while_held(reply, position, done)
        if held is not None:
            if held is Act.RESUME:
                self._spawn(self._resume())
            return
        if position is not None:
            reply.played_s = position
            if position > 0 and reply.first_played_at is None:
                now = time.perf_counter()
                reply.first_played_at = max(now - position, reply.first_audio_at or now)
                start = self._input.samples - round(position * self.transport.input_rate)
                reply.play_start_sample = max(start, reply.utterance_sample)
        if done:
            reply.playback_over = True
            self._turn_taking.played_out(self._input.samples)
            if not reply.stopped.done():
                reply.stopped.set_result(reply.played_s)
            self._maybe_finish(reply)
            self._touch()

    async def push_to_talk(self, pressed: bool) -> None:
        """Pressed: cut the reply, collect audio without endpointing; released: answer it."""
        if pressed:
            self._input.press()
            if self._reply is not None and self._reply.under_way:
                await self._interrupt(self._reply)
        elif audio := self._input.release():
            self._enqueue(audio, None, 0.0, interrupts=True)

    async def user_text(self, text: str) -> None:
        """Typed text from the user: a turn with a text `HumanMessage`."""
        if text.strip():
            self._enqueue(None, text, 0.0, interrupts=True)

    async def dtmf(self, digits: str) -> None:
        """Keypad digits: to `on_dtmf`; a string it returns becomes a user turn."""
        if self.on_dtmf is None:
            logger.debug("session %s: DTMF %r ignored (no on_dtmf)", self.session_id, digits)
            return
        result = self.on_dtmf(digits)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            await self.user_text(result)

    async def end_of_input(self) -> None:
        """The user's audio ended: the utterance in progress (or a held button) is answered."""
        if audio := self._input.release():
            self._enqueue(audio, None, 0.0, interrupts=True)
        policy = self._turn_taking
        utterances = self._input.flush()
        delay = self._input.endpoint_delay()
        for utterance in utterances:
            if not (self.barge_in and policy.is_backchannel(self._moment())):
                self._enqueue(utterance, None, delay, interrupts=self.barge_in)
        held = policy.take_held()
        if held is not None:  # the user went on, but nothing came of it: answer it
            self._queue.append(held)
            self._queued.set()
        policy.speech_over()
        await self._resume()

    async def wait_idle(self) -> None:
        """Until no agent call runs and no utterance waits that could be answered now."""
        while not self._idle():
            self._raise_failure()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._raise_failure()

    # -- state --------------------------------------------------------------------------

    def _moment(self) -> Moment:
        """What turn-taking decides on: the state as it is now."""
        return Moment(self._reply, self._question, self._input.samples, bool(self._queue))

    def _idle(self) -> bool:
        reply = self._reply
        if self._queue:
            # Only a reply playing out (which takes time) may keep a waiting utterance.
            return (
                not self._queue[0].interrupts
                and reply is not None
                and reply.under_way
                and reply.generated
            )
        if reply is None:
            return True
        if reply.interrupted or reply.playback_over:
            return reply.finished.done()
        return reply.generated

    def _touch(self) -> None:
        """The state changed: wake `wait_idle`."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _enqueue(
        self, pcm: bytes | None, text: str | None, delay: float, *, interrupts: bool
    ) -> None:
        pending = self.max_pending_utterances
        if pending is not None and len(self._queue) >= pending:
            raise SessionEnded("too many utterances waiting for an answer")
        held = self._turn_taking.take_held()
        if held is not None and held.pcm is not None and pcm is not None:
            pcm = held.pcm + pcm  # the question the user went on with, and the rest of it
        elif held is not None:
            self._queue.append(held)  # typed text after it: both are turns
        self._queue.append(
            Utterance(pcm, text, delay, time.perf_counter(), self._input.samples, interrupts)
        )
        self._queued.set()
        self._touch()

    # -- turns ------------------------------------------------------------------------

    async def _conduct(self) -> None:
        """Takes utterances in order; each waits for (or cuts) the reply before it."""
        while True:
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            previous = self._reply
            if previous is not None and not previous.finished.done():
                if self._queue[0].interrupts and previous.under_way:
                    await self._interrupt(previous)
                await asyncio.shield(previous.finished)
                continue
            if not await self._may_start():
                return
            self._start(self._queue.popleft())

    async def _may_start(self) -> bool:
        """The limits allow another turn; if not, the user is told and the conversation ends."""
        if self._over_budget():
            await self._emit(TurnFailed(self._count + 1, BUDGET_MESSAGE))
            self.end(SessionEnded("spending limit reached"))
            return False
        if self.max_turns_per_minute is not None:
            now = time.monotonic()
            while self._turn_starts and now - self._turn_starts[0] > 60.0:
                self._turn_starts.popleft()
            if len(self._turn_starts) >= self.max_turns_per_minute:
                self.end(SessionEnded("too many turns in a minute"))
                return False
            self._turn_starts.append(now)
        return True

    def _over_budget(self) -> bool:
        return self.max_cost_usd is not None and self.usage.total_cost >= self.max_cost_usd

    def _start(self, utterance: Utterance) -> None:
        self._count += 1
        rate = self.transport.input_rate
        base = recent_turns([*self.history, utterance.question(rate)], self.max_turns)
        self.history = list(base)
        reply = Reply(
            index=self._count,
            base=base,
            output_rate=self.transport.output_rate,
            started_at=utterance.ended_at,
            utterance_sample=utterance.ended_sample,
            cost_at_start=self.usage.total_cost,
        )
        reply.user_audio_s = seconds(utterance.pcm or b"", rate)
        reply.endpoint_delay_s = utterance.endpoint_delay_s
        self._reply = reply
        self._question = utterance
        reply.task = self._spawn(self._generate(reply, utterance))
        self._touch()

    def _call_settings(self) -> CallSettings:
        """The agent call's settings: the engine's, as this turn starts (a server may point
        the engine at another conversation's `config` before the first turn)."""
        return CallSettings(
            agent=self.agent,
            config=self.config,
            input_key=self.input_key,
            agent_hears=self.agent_hears,
            transcription=self.transcription,
            speech=self.speech,
            callbacks=tuple(self.callbacks),
            turn_timeout_s=self.turn_timeout_s,
            max_cost_usd=self.max_cost_usd,
            session_id=self.session_id,
            input_rate=self.transport.input_rate,
        )

    def _set_history(self, messages: list[BaseMessage]) -> None:
        self.history = messages

    def _add_transcript(self, question: BaseMessage, text: str) -> None:
        self.history = with_transcript(self.history, question, text)

    def _keep_cost_lookups(self, lookups: set[asyncio.Task[None]]) -> None:
        """A cut turn's spoken sentences were billed: their lookups finish by session end."""
        self._cost_lookups = {task for task in self._cost_lookups if not task.done()} | lookups

    async def _generate(self, reply: Reply, utterance: Utterance) -> None:
        """The agent's call (its speech goes out as it streams), then the reply's end."""
        settings, effects = self._call_settings(), self._call_effects
        await AgentCall(settings, self._outlet, effects, reply, utterance).run()
        reply.generated = True
        self._touch()
        cleared = self._turn_taking.held_back(reply)
        if not reply.interrupted and not cleared:  # a cleared pause ends it when it plays on
            await self.transport.end_reply(reply.index)
            if not reply.sent_bytes:
                reply.playback_over = True  # nothing for the channel to play
                self._touch()
        await self._emit(
            ReplyEnded(
                turn=reply.index,
                audio_bytes=reply.sent_bytes,
                session_cost=self.usage.total_cost,
                endpoint_delay_s=reply.endpoint_delay_s,
                first_audio_s=reply.first_audio_s,
                first_played_s=reply.first_played_s,
            )
        )
        self._maybe_finish(reply)

    def _maybe_finish(self, reply: Reply) -> None:
        if reply.interrupted or reply.finishing:
            return
        if reply.generated and reply.playback_over:
            reply.finishing = True
            last = self.history[-1] if self.history else None
            spoken = last if isinstance(last, AIMessage) and reply.error is None else None
            self._spawn(self._finish(reply, spoken))

    async def _finish(self, reply: Reply, spoken: AIMessage | None) -> None:
        """The turn is over: record it and tell whoever listens."""
        try:
            if reply.transcribing is not None:
                await asyncio.wait({reply.transcribing}, timeout=TRANSCRIPT_WAIT_S)
                if reply.user_text is not None:  # the agent's state may hold a copy of it
                    self.history = with_transcript(self.history, reply.base[-1], reply.user_text)
            turn = reply.voice_turn(spoken, self.usage.total_cost - reply.cost_at_start)
            self.turns.append(turn)
            self._record_reply(reply)
            await self._emit(TurnEnded(turn))
            for hook in [
                self.on_turn,
                *(getattr(h, "on_voice_turn", None) for h in self.callbacks),
            ]:
                if hook is not None:
                    result = hook(turn)
                    if inspect.isawaitable(result):
                        await result
        finally:
            if not reply.finished.done():
                reply.finished.set_result(None)
            self._touch()

    # -- acting on turn-taking's decisions ----------------------------------------------

    async def _act(self, act: Act, reply: Reply) -> None:
        if act is Act.ABANDON:
            await self._abandon(reply)
        elif act is Act.INTERRUPT:
            await self._interrupt(reply)
        elif act is Act.PAUSE:
            await self._pause(reply)
        elif act is Act.RESUME:
            await self._resume()

    async def _abandon(self, reply: Reply) -> None:
        """Cancel a reply nobody heard yet; its question waits for the rest of it."""
        question, self._question = self._question, None
        assert question is not None  # turn-taking abandons only a reply to a question
        reply.interrupted = True
        reply.cancelled = True
        reply.playback_over = True
        turn = reply.index
        logger.debug("session %s: the user went on; turn %d dropped", self.session_id, turn)
        for task in (reply.task, reply.transcribing):  # the call, and words for a dropped turn
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if reply.sent_bytes:
            await self.transport.clear(reply.index)
        self.history = list(reply.base[:-1])
        self._turn_taking.went_on(question)
        self._reply = None
        if not reply.finished.done():
            reply.finished.set_result(None)
        self._touch()

    async def _pause(self, reply: Reply) -> None:
        """Hold the reply for a sound that may be no interruption (turn-taking noted where)."""
        if self._turn_taking.held_back(reply):  # no pause on this channel: clear, re-send
            await self.transport.clear(reply.index)
        else:
            await self.transport.pause(reply.index)  # type: ignore[attr-defined]

    async def _resume(self) -> None:
        """Play on from where the reply paused (if it still is)."""
        pause = self._turn_taking.take_pause()
        if pause is None:
            return
        reply = pause.reply
        if reply is not self._reply or reply.interrupted or reply.finished.done():
            return
        if not pause.cleared:
            await self.transport.resume(reply.index)  # type: ignore[attr-defined]
            return
        # Sent again from where it stopped; the transport counts from this new start.
        start = min(round(pause.position_s * reply.output_rate) * SAMPLE_WIDTH, len(reply.audio))
        reply.play_offset_s = start / SAMPLE_WIDTH / reply.output_rate
        reply.played_s = reply.play_offset_s
        if rest := bytes(reply.audio[start:]):
            await self.transport.play(reply.index, rest)
        if reply.generated:
            await self.transport.end_reply(reply.index)
            if not rest:
                reply.playback_over = True
                self._maybe_finish(reply)
        self._touch()

    async def _interrupt(self, reply: Reply) -> None:
        """Barge-in: nothing more reaches the channel, it stops now, and the turn settles."""
        if reply.interrupted:
            return
        reply.interrupted = True
        pause = self._turn_taking.interrupted()
        self._touch()
        if pause is not None and pause.reply is reply and pause.cleared:
            # Already cleared for the pause: no second clear. Where it stopped is known, or
            # comes with the channel's report (which `_settle` waits for).
            reply.played_s = max(reply.played_s, pause.position_s)
            if pause.acked and not reply.stopped.done():
                reply.stopped.set_result(reply.played_s)
            self._spawn(self._settle(reply))
            return
        self._spawn(self._settle(reply))
        await self.transport.clear(reply.index)

    async def _settle(self, reply: Reply) -> None:
        """After a barge-in: learn where playback stopped, keep only what was heard."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reply.stopped), self.stop_timeout_s)
        reply.playback_over = True
        # The call runs on (unheard) until then: what it said may still count as heard.
        reply.cancelled = not reply.generated
        if reply.task is not None:
            reply.task.cancel()
            await asyncio.gather(reply.task, return_exceptions=True)
        kept = reply.heard(reply.played_s)
        self.history = [*reply.base, *kept]
        spoken = kept[-1] if kept and isinstance(kept[-1], AIMessage) else None
        await self._finish(reply, spoken)

    # -- recording ----------------------------------------------------------------------

    def _record_reply(self, reply: Reply) -> None:
        if self.recorder is None or reply.recorded:
            return
        place_reply(self.recorder, reply)
        self._flush_recording()

    def _flush_recording(self) -> None:
        """Samples no reply can be placed on any more go to disk."""
        assert self.recorder is not None
        waiting = self._queue[0].ended_sample if self._queue else None
        self.recorder.flush(settled_until(self._input.samples, self._reply, waiting))

    # -- plumbing -----------------------------------------------------------------------

    async def _emit(self, event: VoiceEvent) -> None:
        await self._outlet.event(event)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # An `on_turn` hook or the channel failed: the engine stops taking audio and
            # `run` raises it (agent errors are not this: they end their turn). `run` wakes
            # now, not at the next audio: a silent channel must not hang on a dead engine.
            self._failures.append(error)
            self._ending.set()
            self._touch()

    def _raise_failure(self) -> None:
        if self._failures:
            raise self._failures[0]
