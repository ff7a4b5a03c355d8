"""Bounds on one conversation: time, memory, money, and what a client may send.

A voice endpoint spends its owner's OpenRouter money on every turn and holds memory, a
slot and an upstream stream per connection, so each of these has a safe default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["MAX_PENDING_UTTERANCES", "UTTERANCE_CAP_S", "SessionEnded", "SessionLimits"]

MAX_PENDING_UTTERANCES = 4
"""Utterances that may wait for their turn, by default everywhere (`TurnEngine`,
`VoiceSession`, `voice_app`, phone calls): one more ends the conversation instead of
queueing audio (and model calls) without bound."""

UTTERANCE_CAP_S = 300.0
"""The longest utterance held in memory, whatever `max_utterance_s` says (even None): a
talk button held down, or noise the endpointer never hears end, is cut here as
`max_utterance_s` cuts it, and the rest starts the next utterance. Five minutes is 9.6 MB
of 16 kHz audio per connection."""


class SessionEnded(Exception):
    """A conversation was ended by one of its limits (or by a failure inside it).

    `reason` is short and safe to show to the client; `code` is the WebSocket close code
    a server should use: 1001 (going away: idle, too long), 1008 (policy: a limit or a bad
    client), 1009 (too big), 1011 (an internal failure; the log has the detail).
    """

    def __init__(self, reason: str, code: int = 1008) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class SessionLimits:
    """The limits of one voice connection; every field has a safe default.

    ```python
    from langchain_openrouter_audio.voice.limits import SessionLimits

    limits = SessionLimits(max_cost_usd=0.25, idle_timeout_s=120)
    # voice_app(agent, limits=limits)
    ```
    """

    hello_timeout_s: float = 10.0
    """A connection that has not said ``hello`` by then is closed (1008)."""
    idle_timeout_s: float = 300.0
    """No speech, turn or reply for this long (streaming silence counts as idle): closed (1001)."""
    max_session_s: float = 3600.0
    """A connection is closed (1001) after this long, whatever it does."""
    send_timeout_s: float = 10.0
    """A frame the client does not take within this time (it stopped reading): the session
    ends, its slot and upstream stream are freed."""
    max_frame_s: float = 1.0
    """Longest audio frame accepted (the page sends 20 ms); a longer one closes (1009)."""
    max_input_s: float = 4000.0
    """Seconds of audio a connection may send in all (at any pace); beyond: closed (1009)."""
    max_message_bytes: int = 16_384
    """Largest control (text) message; beyond: closed (1009)."""
    max_messages_per_s: float = 20.0
    """Control (text) messages a connection may send per second on average, bad audio frames
    (each answered with an ``error``) counted too; the page sends a few per second. Beyond
    it, and past a burst of `message_burst`: closed (1008, "too many messages")."""
    message_burst: int = 40
    """Control messages a connection may send at once, before `max_messages_per_s` holds."""
    max_pending_utterances: int = MAX_PENDING_UTTERANCES
    """Utterances waiting for their turn; one more closes the connection (1008, "too many
    utterances waiting for an answer")."""
    max_turns_per_minute: int = 30
    """Turns started in any 60 s; one more closes the connection (1008). Interrupted turns
    are billed too: this bounds how fast a user who keeps interrupting can spend, while
    their cost reaches `max_cost_usd` only once it is looked up, a moment later."""
    turn_timeout_s: float | None = 120.0
    """Longest agent call of one turn (tools included); then the turn fails with a message."""
    max_cost_usd: float | None = 1.0
    """OpenRouter's billed cost of the conversation after which no new model call starts; the
    connection is told and closed (1008). Calls cut short by a barge-in, a timeout or a
    takeover count too, once their cost is looked up (within a few seconds). None: no
    limit."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in ("turn_timeout_s", "max_cost_usd"):
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and value > 0):
                raise ValueError(f"{field.name} must be a positive number, got {value!r}")
        if not (isinstance(self.message_burst, int) and self.message_burst >= 1):
            raise ValueError(
                f"message_burst must be a whole number >= 1, got {self.message_burst!r}"
            )
