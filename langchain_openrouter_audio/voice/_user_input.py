"""The user's audio on its way to utterances: the input position, a held talk button, and
the endpointer's feed with the length limit.

`UserInput` owns where the input is (`samples`), the audio of a talk button held down,
and how much speech the endpointer has heard without an end. In: PCM16 pieces, the
button, the end of input, and the engine's `max_utterance_s` with each piece (a setting
users may change). Out: the utterances found (audio, cut at the limit) and the endpoint
delay for the engine to queue; it pushes into the endpointer and reads nothing else.
Whether an utterance is a turn (a backchannel, a continuation) is `TurnTaking`'s call.

    transport --pcm, button--> engine --pcm, limit--> UserInput --utterances--> engine
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH
from langchain_openrouter_audio.voice.limits import UTTERANCE_CAP_S

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice.engine import EndpointerLike

__all__ = ["UserInput"]


class UserInput:
    """Turns the user's audio into utterances; counts where the input is."""

    def __init__(self, endpointer: EndpointerLike, input_rate: int) -> None:
        self._endpointer = endpointer
        self._rate = input_rate
        self.samples = 0
        """Position on the input timeline: samples of user audio so far."""
        self._pressed: bytearray | None = None  # the talk button's audio while held
        self._speech_bytes = 0  # heard since the endpointer began an utterance

    def advance(self, pcm: bytes) -> None:
        """`pcm` arrived: the input position moves on."""
        self.samples += len(pcm) // SAMPLE_WIDTH

    # -- a talk button ------------------------------------------------------------------

    @property
    def pressed(self) -> bool:
        return self._pressed is not None

    def press(self) -> None:
        self._pressed = bytearray()

    def release(self) -> bytes:
        """The button is up: the audio held since it went down (b"" if none)."""
        audio, self._pressed = self._pressed, None
        return bytes(audio or b"")

    def hold(self, pcm: bytes, max_utterance_s: float | None) -> list[bytes]:
        """Audio while the button is down; returns utterances cut at the limit exactly
        (`UTTERANCE_CAP_S` at most, so a button held for ever holds bounded memory)."""
        assert self._pressed is not None
        self._pressed += pcm
        limit = self._limit_bytes(max_utterance_s)
        cuts: list[bytes] = []
        while len(self._pressed) >= limit:
            cuts.append(bytes(self._pressed[:limit]))
            del self._pressed[:limit]
        return cuts

    # -- the endpointer -----------------------------------------------------------------

    def endpoint(self, pcm: bytes, max_utterance_s: float | None) -> list[bytes]:
        """Audio through the endpointer; returns the utterances it ended (endless noise is
        ended at the limit)."""
        endpointer = self._endpointer
        utterances = endpointer.push(pcm)
        self._speech_bytes = self._speech_bytes + len(pcm) if endpointer.speaking else 0
        limit = self._limit_bytes(max_utterance_s)
        if self._speech_bytes >= limit:  # endless noise: end it here
            utterances += endpointer.flush()
            self._speech_bytes = 0
        return utterances

    def flush(self) -> list[bytes]:
        """The input ended: the utterance in progress, if any."""
        return self._endpointer.flush()

    def endpoint_delay(self) -> float:
        """How long after the speech ended the endpointer ended the utterance."""
        position = getattr(self._endpointer, "position_s", None)
        speech_end = getattr(self._endpointer, "last_speech_end_s", None)
        if position is None or speech_end is None:
            return 0.0
        return max(0.0, float(position) - float(speech_end))

    def _limit_bytes(self, max_utterance_s: float | None) -> int:
        # Memory stays bounded without a limit too: `UTTERANCE_CAP_S` is the longest kept.
        seconds = (
            UTTERANCE_CAP_S if max_utterance_s is None else min(max_utterance_s, UTTERANCE_CAP_S)
        )
        return max(1, round(seconds * self._rate)) * SAMPLE_WIDTH
