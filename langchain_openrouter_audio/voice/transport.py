"""The contract between the turn engine and a channel (local devices, a browser, a phone line).

A `TurnEngine` owns the conversation: endpointing, the agent call, barge-in, what was heard,
history, cost and latency. A `VoiceTransport` only moves audio and says what was played:

- **audio in**: the transport's `run(engine)` hands the user's audio to `engine.audio(pcm)`
  (PCM16 mono, little-endian, at the transport's `input_rate`, in pieces of any size) until
  the channel ends;
- **audio out**: the engine calls `play(turn, pcm)` with pieces of the current reply (PCM16
  mono at the transport's `output_rate`, whole samples), `end_reply(turn)` once the reply is
  complete, and `clear(turn)` when the user barges in (stop at once, drop what is buffered);
- **what was played**: the transport reports `engine.played(turn, seconds)` as the reply
  plays (seconds of that reply's audio actually heard), and `engine.played(turn, seconds,
  done=True)` once playback of that reply is over: it played to the end, or it stopped after
  a `clear`. A local sink knows this frame by frame; a browser reports it; a phone line
  echoes marks. After `clear` the engine waits (bounded) for that final report: it decides
  what the user heard, and so what the conversation keeps;
- **events**: `send_event(event)` gets the engine's `VoiceEvent`s (the user's words,
  transcript pieces, tool calls, reply end with cost and latency, errors) for a UI; a
  transport may ignore them.

Optional, for turn-taking (a transport without them works as before):

- **pausing**: speech over a reply pauses it until the engine knows it is an interruption.
  A transport with `can_pause = True` gets `pause(turn)` (hold playback where it is, keep
  the buffer) and `resume(turn)` (play on). One with `can_resend = True` gets `clear(turn)`
  (and reports where it stopped, as after a barge-in); to play on, the engine sends the
  rest of the reply again with `play(turn, pcm)` (and `end_reply(turn)` if the reply is
  complete): the transport plays it as a fresh start of that turn and reports `played`
  seconds counted from that start (the engine adds the position it stopped at). With
  neither, a reply plays on under a short sound (which is still no turn);
- **echo**: `warming_up` (a bool attribute or property) True while an echo canceller on
  the channel is still learning: speech over a reply then neither pauses nor interrupts it.

The engine keeps each reply's whole audio at `output_rate` (also what arrives after a
barge-in), so that what was heard is cut from it exactly. A transport also gets the user's
other input to the engine:
`engine.push_to_talk(pressed)`, `engine.user_text(text)` and `engine.dtmf(digits)`.

A transport that plays into a buffer (a browser, a phone line) sends audio as it comes and
reports progress as the far end plays it. A transport that *is* the clock (a sound card, a
file) plays one frame per input frame and, when its input is not real time, calls
`await engine.wait_idle()` before each input frame so that the agent's work takes no
conversation time (a recorded conversation then plays out the same on every run).

```python
import asyncio

from langchain_openrouter_audio.voice.transport import EngineHandle, VoiceEvent


class LoopbackTransport:
    '''Feeds a clip in, collects the reply, and says it was all heard at once.'''

    input_rate = 16000
    output_rate = 24000

    def __init__(self, clip: bytes) -> None:
        self.clip = clip
        self.replies: dict[int, bytearray] = {}
        self.engine: EngineHandle | None = None

    async def run(self, engine: EngineHandle) -> None:
        self.engine = engine
        for i in range(0, len(self.clip), 640):
            await engine.audio(self.clip[i : i + 640])
        await engine.end_of_input()
        await engine.wait_idle()

    async def play(self, turn: int, pcm: bytes) -> None:
        self.replies.setdefault(turn, bytearray()).extend(pcm)

    async def end_reply(self, turn: int) -> None:
        assert self.engine is not None
        seconds = len(self.replies.get(turn, b"")) / 2 / self.output_rate
        self.engine.played(turn, seconds, done=True)

    async def clear(self, turn: int) -> None:
        assert self.engine is not None
        self.engine.played(turn, 0.0, done=True)

    async def send_event(self, event: VoiceEvent) -> None:
        pass
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice.turn import VoiceTurn

__all__ = [
    "EngineHandle",
    "ReplyEnded",
    "SpeechStarted",
    "ToolCalled",
    "ToolReturned",
    "TranscriptDelta",
    "TurnEnded",
    "TurnFailed",
    "UserTranscript",
    "UserTurnStarted",
    "VoiceEvent",
    "VoiceTransport",
]


# -- events: engine -> transport (optional, for a UI or a log) ------------------------------


@dataclass(frozen=True)
class SpeechStarted:
    """The user started speaking (the endpointer heard `min_speech_ms` of speech)."""


@dataclass(frozen=True)
class UserTurnStarted:
    """An utterance (or typed text) was handed to the agent: turn `turn` starts.

    `seconds` is the utterance's length (0.0 for text); `text` is the typed text, if any.
    """

    turn: int
    seconds: float
    text: str | None = None


@dataclass(frozen=True)
class UserTranscript:
    """What the user said in turn `turn`, in words (the transcription, or the typed text).

    Sent once per turn whose words are known: with `transcription=` set, when the
    transcript arrives (before the agent is called when the agent reads it; whenever it
    is ready when a speech-native agent hears the recording itself); for typed text, at
    once. Never sent for a turn without either.
    """

    turn: int
    text: str


@dataclass(frozen=True)
class TranscriptDelta:
    """A piece of the reply's transcript, as the model streams it (runs ahead of the audio)."""

    turn: int
    text: str


@dataclass(frozen=True)
class ToolCalled:
    """The agent called a tool."""

    turn: int
    name: str
    args: Any


@dataclass(frozen=True)
class ToolReturned:
    """A tool returned `output` (as text); `name` is the tool's."""

    turn: int
    output: str
    name: str = "tool"


@dataclass(frozen=True)
class ReplyEnded:
    """The agent's call is over; every piece of the reply has gone to `play`.

    `audio_bytes` is the reply audio handed to the transport (at its `output_rate`);
    `session_cost` is OpenRouter's billed cost of the conversation so far. Latency:
    `endpoint_delay_s` (user stopped -> utterance called), `first_audio_s` (utterance handed
    over -> first reply audio received) and `first_played_s` (-> first audio reported
    played; None if the transport has not reported it yet).
    """

    turn: int
    audio_bytes: int
    session_cost: float
    endpoint_delay_s: float
    first_audio_s: float | None
    first_played_s: float | None


@dataclass(frozen=True)
class TurnFailed:
    """The agent's call failed; `message` is safe to show to the user."""

    turn: int
    message: str


@dataclass(frozen=True)
class TurnEnded:
    """A turn is over (played out or interrupted); `record` says what was heard and how fast."""

    record: VoiceTurn


VoiceEvent: TypeAlias = (
    SpeechStarted
    | UserTurnStarted
    | UserTranscript
    | TranscriptDelta
    | ToolCalled
    | ToolReturned
    | ReplyEnded
    | TurnFailed
    | TurnEnded
)


# -- the two sides ---------------------------------------------------------------------------


class EngineHandle(Protocol):
    """What a transport may call on the engine (a `TurnEngine` is one)."""

    async def audio(self, pcm: bytes) -> None:
        """The user's audio: PCM16 mono at the transport's `input_rate`, any piece size."""
        ...

    def played(self, turn: int, seconds: float, *, done: bool = False) -> None:
        """`seconds` of turn `turn`'s reply have been played; `done`: playback of it is over.

        Reports for another turn than the current one are ignored, so a late report is
        harmless. After `clear(turn)` the first `done=True` report gives the final position.
        """
        ...

    async def push_to_talk(self, pressed: bool) -> None:
        """A talk button: pressed interrupts the reply and starts collecting an utterance
        without endpointing; released hands that utterance to the agent."""
        ...

    async def user_text(self, text: str) -> None:
        """Typed text from the user: a turn like an utterance, with a text message."""
        ...

    async def dtmf(self, digits: str) -> None:
        """Keypad digits from a phone line (given to the engine's `on_dtmf`, if any)."""
        ...

    async def end_of_input(self) -> None:
        """The user's audio has ended: finish the utterance in progress."""
        ...

    async def wait_idle(self) -> None:
        """Until no agent call runs and no utterance waits that could be answered now.

        A transport whose input is not real time calls this before each input frame.
        """
        ...

    @property
    def busy(self) -> bool:
        """A reply is being generated or played, or an utterance waits for its turn.

        A transport whose input has ended keeps playing (and reporting) while this holds.
        """
        ...


@runtime_checkable
class VoiceTransport(Protocol):
    """A channel the engine talks through: audio in and out, and what was played.

    `run(engine)` moves the user's audio into the engine until the channel ends (the
    engine's conversation ends with it). The other methods are the engine's calls; they
    should return quickly (a transport that must wait for its channel buffers instead).
    """

    input_rate: int
    output_rate: int

    async def run(self, engine: EngineHandle) -> None:
        """Deliver the user's audio (and played reports) to `engine` until the channel ends."""
        ...

    async def play(self, turn: int, pcm: bytes) -> None:
        """The next piece of turn `turn`'s reply, PCM16 mono at `output_rate`, whole samples."""
        ...

    async def end_reply(self, turn: int) -> None:
        """Turn `turn`'s reply is complete: play out what is buffered, then report `done`."""
        ...

    async def clear(self, turn: int) -> None:
        """Barge-in: stop playing turn `turn` now, drop what is buffered, report `done`."""
        ...

    async def send_event(self, event: VoiceEvent) -> None:
        """An engine event for a UI or a log; a transport may ignore any of them."""
        ...
