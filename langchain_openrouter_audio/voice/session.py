"""VoiceSession: listen -> think -> speak around any runnable, on local devices and files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.voice.echo import EchoCanceller
from langchain_openrouter_audio.voice.endpointer import Endpointer
from langchain_openrouter_audio.voice.engine import (
    BACKCHANNEL_WINDOW_S,
    FALSE_INTERRUPTION_TIMEOUT_S,
    MIN_INTERRUPTION_MS,
    TurnEngine,
    agent_input_key,
)
from langchain_openrouter_audio.voice.limits import MAX_PENDING_UTTERANCES, SessionEnded
from langchain_openrouter_audio.voice.sinks import (
    AudioSink,
    CallbackSink,
    SpeakerSink,
    WavFileSink,
)
from langchain_openrouter_audio.voice.sources import (
    AudioSource,
    MicrophoneSource,
    PcmSource,
    WavFileSource,
)
from langchain_openrouter_audio.voice.spoken_text import AgentHears
from langchain_openrouter_audio.voice.transports.local import LocalTransport
from langchain_openrouter_audio.voice.turn import VoiceSummary, VoiceTurn

__all__ = ["VoiceSession", "VoiceSummary", "VoiceTurn"]

logger = logging.getLogger(__name__)
_warned_no_aec = False


class VoiceSession:
    """Runs listen -> think -> speak for an agent until the source ends.

    A `TurnEngine` over a `LocalTransport`: the engine does the turns, the transport plays
    one `frame_ms` frame to the sink per frame from the source.

    `agent` is any runnable that takes messages: a chat model (input: the message list), a
    `create_agent` graph or any LangGraph graph with a `messages` key (input:
    `{"messages": [...]}`; set `input_key=None` or a name to override). Each utterance the
    `Endpointer` finds becomes a `HumanMessage` holding its audio; the agent's speech goes to
    the sink frame by frame as it streams.

    Playback is paced by the source: one `frame_ms` frame out per frame in, the way a
    phone line or a sound card runs. With a real-time source (microphone, phone line)
    speech plays as it streams, and a barge-in cancels the call mid-stream. With a source
    that is not real time (a file read as fast as it goes) the session holds the source
    until the agent's call is done: its work takes no conversation time, and a run is the
    same every time (tests, evaluations).

    Barge-in (`barge_in=True`): once the user speaks while a reply is under way, the sink
    gets no further frame, is cleared, the agent's call is cancelled, and the conversation
    keeps only what was heard (`truncate_to_heard`). `record="call.wav"` writes the
    conversation as a stereo WAV (user left, agent as played right).

    ```python
    session = VoiceSession(agent, source=WavFileSource("questions.wav"),
                           sink=WavFileSink("reply_{turn}.wav"))
    summary = await session.run()
    print(summary)  # per-turn latency, heard transcripts, cost
    ```
    Each finished turn goes to `on_turn(turn)` and to every handler in `callbacks` that has
    an `on_voice_turn(turn)` method (sync or async). A turn whose agent call takes longer
    than `turn_timeout_s` fails (its `VoiceTurn.error` says so) and the session goes on.
    At most `max_pending_utterances` utterances (4; None for no bound) wait while a reply
    is generated or played (with `barge_in=False`, or a user who talks faster than the agent
    answers): one more ends the session, `run` returns what was answered and `ended` says
    why (`SessionEnded("too many utterances waiting for an answer")`).
    `max_cost_usd` ends the session (`ended` says "spending limit reached") once
    OpenRouter's billed cost reaches it, calls cut short by a barge-in included (their
    cost is looked up and lands a moment later: see `TurnEngine`).
    `transcription=`, `speech=` and `agent_hears=` are `TurnEngine`'s: any chat model as
    the agent, or the user's words (`VoiceTurn.user_text`) beside a speech-native one.

    Turn-taking (see `TurnEngine`): `continuation` answers a question the user went on
    with before the reply played as one; speech over a reply shorter than
    `min_interruption_ms` pauses it and it plays on (within `false_interruption_timeout_s`);
    short sounds over or `backchannel_window_s` after a reply are no turns.

    Echo cancellation: `echo_cancellation=None` (the default) turns it on for a
    `MicrophoneSource` with a `SpeakerSink` (a warning names the `[aec]` extra if it is
    missing), `True` turns it on for any source and sink (ImportError without the extra),
    an `EchoCanceller` is used as given (e.g. with its `stream_delay_ms`), `False` is off.
    What the sink plays is the canceller's far end; until it has heard `warmup_ms` of the
    agent's speech, nothing the microphone hears interrupts a reply.
    """

    def __init__(
        self,
        agent: Runnable[Any, Any],
        *,
        source: AudioSource | AsyncIterable[bytes] | str | Path,
        sink: AudioSink | Callable[[bytes], Any] | str | Path,
        messages: Sequence[BaseMessage] = (),
        endpointer: Endpointer | None = None,
        barge_in: bool = True,
        frame_ms: int = 20,
        input_key: str | None = "auto",
        config: RunnableConfig | None = None,
        callbacks: Sequence[BaseCallbackHandler] = (),
        on_turn: Callable[[VoiceTurn], Any] | None = None,
        source_rate: int = 16000,
        record: str | Path | None = None,
        continuation: bool = True,
        min_interruption_ms: int = MIN_INTERRUPTION_MS,
        false_interruption_timeout_s: float = FALSE_INTERRUPTION_TIMEOUT_S,
        backchannel_window_s: float = BACKCHANNEL_WINDOW_S,
        echo_cancellation: bool | EchoCanceller | None = None,
        transcription: str | Runnable[Any, str] | None = None,
        speech: str | OpenRouterSpeech | None = None,
        turn_timeout_s: float | None = 120.0,
        agent_hears: AgentHears = "auto",
        max_pending_utterances: int | None = MAX_PENDING_UTTERANCES,
        max_cost_usd: float | None = None,
    ) -> None:
        self.agent = agent
        self.source = _as_source(source, source_rate)
        self.sink = _as_sink(sink)
        self.messages: list[BaseMessage] = list(messages)
        self.endpointer = endpointer or Endpointer(sample_rate=self.source.sample_rate)
        if self.endpointer.sample_rate != self.source.sample_rate:
            raise ValueError("the endpointer's sample_rate must be the source's")
        self.barge_in = barge_in
        self.frame_ms = frame_ms
        self.input_key = agent_input_key(agent, input_key)
        self.config: RunnableConfig = dict(config or {})  # type: ignore[assignment]
        self.callbacks = list(callbacks)
        self.on_turn = on_turn
        self.record = record
        self.continuation = continuation
        self.min_interruption_ms = min_interruption_ms
        self.false_interruption_timeout_s = false_interruption_timeout_s
        self.backchannel_window_s = backchannel_window_s
        self.echo_canceller = _echo_canceller(echo_cancellation, self.source, self.sink)
        self.transcription = transcription
        self.speech = speech
        self.turn_timeout_s = turn_timeout_s
        self.agent_hears = agent_hears
        self.max_pending_utterances = max_pending_utterances
        self.max_cost_usd = max_cost_usd
        self.turns: list[VoiceTurn] = []
        self.ended: SessionEnded | None = None
        """Why the last `run` ended before its source did (a limit), or None."""

    async def run(self) -> VoiceSummary:
        """Listen to the source until it ends, answering each utterance; returns a summary."""
        engine = TurnEngine(
            self.agent,
            LocalTransport(
                self.source,
                self.sink,
                frame_ms=self.frame_ms,
                echo_canceller=self.echo_canceller,
            ),
            messages=self.messages,
            endpointer=self.endpointer,
            barge_in=self.barge_in,
            input_key=self.input_key,
            config=self.config,
            callbacks=self.callbacks,
            on_turn=self.on_turn,
            record=self.record,
            continuation=self.continuation,
            min_interruption_ms=self.min_interruption_ms,
            false_interruption_timeout_s=self.false_interruption_timeout_s,
            backchannel_window_s=self.backchannel_window_s,
            transcription=self.transcription,
            speech=self.speech,
            turn_timeout_s=self.turn_timeout_s,
            agent_hears=self.agent_hears,
            max_pending_utterances=self.max_pending_utterances,
            max_cost_usd=self.max_cost_usd,
        )
        try:
            return await engine.run()
        finally:
            self.messages = engine.history
            self.turns = engine.turns
            self.ended = engine.ended
            if engine.ended is not None:
                logger.warning("voice session ended early: %s", engine.ended.reason)


def _as_source(source: AudioSource | AsyncIterable[bytes] | str | Path, rate: int) -> AudioSource:
    if isinstance(source, (str, Path)):
        return WavFileSource(source)
    if isinstance(source, AudioSource):
        return source
    return PcmSource(source, sample_rate=rate)


def _as_sink(sink: AudioSink | Callable[[bytes], Any] | str | Path) -> AudioSink:
    if isinstance(sink, (str, Path)):
        return WavFileSink(sink)
    if isinstance(sink, AudioSink):
        return sink
    return CallbackSink(sink)


def _echo_canceller(
    setting: bool | EchoCanceller | None, source: AudioSource, sink: AudioSink
) -> EchoCanceller | None:
    global _warned_no_aec
    if isinstance(setting, EchoCanceller):
        if setting.sample_rate != source.sample_rate:
            raise ValueError("the echo canceller's sample_rate must be the source's")
        return setting
    if setting is False:
        return None
    if setting is None and not (
        isinstance(source, MicrophoneSource) and isinstance(sink, SpeakerSink)
    ):
        return None  # files, streams, phone lines: no loudspeaker in the room
    try:
        return EchoCanceller(source.sample_rate)
    except (ImportError, ValueError) as err:
        if setting:
            raise
        if isinstance(err, ValueError):  # a rate AEC3 does not run at
            logger.warning("no echo cancellation: %s; use headphones", err)
            return None
        if not _warned_no_aec:
            _warned_no_aec = True
            logger.warning(
                "no echo cancellation: the agent may hear itself from the loudspeaker and "
                "stop; pip install 'langchain-openrouter-audio[aec]' or use headphones"
            )
        return None
