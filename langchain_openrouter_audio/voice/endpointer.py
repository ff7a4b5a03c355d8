"""Endpointing: cut a live PCM stream into utterances, one per thing the user said."""

from __future__ import annotations

from collections import deque
from typing import Protocol, runtime_checkable

from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.vad import VadKind, make_vad

__all__ = ["Endpointer", "TurnDetector"]


@runtime_checkable
class TurnDetector(Protocol):
    """Says how likely the user has finished their turn, from the audio of it so far.

    `probability(pcm, sample_rate)` gets the utterance (PCM16 mono, from its first word to
    a little after its last) and returns 0..1. `SmartTurnDetector` is one.
    """

    def probability(self, pcm: bytes, sample_rate: int) -> float: ...


_FRAME_MS = 30  # the longest frame WebRTC's detector takes: fewest calls, steadiest decisions


class Endpointer:
    """Finds utterances in a PCM16 mono stream with a voice activity detector.

    `push(pcm)` takes audio in pieces of any size and returns each utterance that has ended,
    i.e. is followed by `silence_ms` of silence; an utterance is the speech plus up to
    `padding_ms` of audio on each side. Voice activity under `min_speech_ms` (a click, a
    cough) is dropped. `flush()` ends any utterance in progress.

    `vad="auto"` takes the best detector installed: Silero (the `[vad]` extra), then WebRTC
    (`[listen]`), then the energy detector; `"silero"`, `"webrtc"` or `"energy"` pick one.

    With a `turn_detector` the silence that ends an utterance depends on what was said:
    once `min_endpointing_delay_ms` of silence has passed the detector hears the
    utterance, and if it says the turn is finished (probability >= `turn_threshold`) the
    utterance ends there; if not, it ends after `max_endpointing_delay_ms` of silence
    unless the user goes on. `silence_ms` then plays no part.

    Signals for a conversation engine, updated by every `push`: `speaking` is True from
    the moment `min_speech_ms` of speech is heard until the utterance ends (what barge-in
    watches); `speech_s` is the speech heard in the utterance so far and `silence_s` the
    silence since its last word (both 0.0 between utterances), so speech still shorter
    than a minimum interruption can be treated as a backchannel; `last_speech_s` is the
    speech in the last finished utterance, and `turn_probability` the detector's last
    answer (None without a detector, and from the start of an utterance until it is
    asked; after the utterance ends it still holds the answer that ended it).

    ```python
    from langchain_openrouter_audio.testing import speech_pcm16
    from langchain_openrouter_audio.voice import Endpointer

    speech = speech_pcm16("Hello there.", sample_rate=16000)
    silence = bytes(2 * 16000)  # one second
    endpointer = Endpointer(sample_rate=16000)
    utterances = endpointer.push(silence + speech + silence) + endpointer.flush()
    assert len(utterances) == 1
    ```
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        silence_ms: int = 600,
        min_speech_ms: int = 200,
        *,
        vad: VadKind = "auto",
        aggressiveness: int = 2,
        padding_ms: int = 150,
        turn_detector: TurnDetector | None = None,
        min_endpointing_delay_ms: int = 500,
        max_endpointing_delay_ms: int = 3000,
        turn_threshold: float = 0.5,
    ) -> None:
        if silence_ms <= 0 or min_speech_ms < 0 or padding_ms < 0:
            raise ValueError("need silence_ms > 0, min_speech_ms >= 0 and padding_ms >= 0")
        if not 0 < min_endpointing_delay_ms <= max_endpointing_delay_ms:
            raise ValueError("need 0 < min_endpointing_delay_ms <= max_endpointing_delay_ms")
        if not 0.0 < turn_threshold <= 1.0:
            raise ValueError("need 0 < turn_threshold <= 1")
        if turn_detector is not None and not isinstance(turn_detector, TurnDetector):
            raise TypeError("turn_detector needs a probability(pcm, sample_rate) method")
        self.sample_rate = sample_rate
        self.silence_ms = silence_ms
        self.min_speech_ms = min_speech_ms
        self.padding_ms = padding_ms
        self.turn_detector = turn_detector
        self.min_endpointing_delay_ms = min_endpointing_delay_ms
        self.max_endpointing_delay_ms = max_endpointing_delay_ms
        self.turn_threshold = turn_threshold
        self.turn_probability: float | None = None
        self.last_speech_s = 0.0
        self._vad = make_vad(vad, sample_rate, aggressiveness)
        self._frames = FrameBuffer(sample_rate, _FRAME_MS)
        self._pad_frames = -(-padding_ms // _FRAME_MS)
        self._before: deque[bytes] = deque(maxlen=self._pad_frames)
        self._utterance: list[bytes] = []
        self._voiced = 0  # voiced frames in the current utterance
        self._silent_run = 0  # unvoiced frames since the last voiced one
        self._frames_seen = 0
        self._speech_end_frame = 0
        self.speaking = False

    @property
    def vad(self) -> str:
        """The detector in use: `"silero"`, `"webrtc"` or `"energy"`."""
        return self._vad.name

    @property
    def speech_s(self) -> float:
        """Seconds of speech in the utterance under way (0.0 between utterances)."""
        return self._voiced * _FRAME_MS / 1000 if self._utterance else 0.0

    @property
    def silence_s(self) -> float:
        """Seconds of silence since the last word of the utterance under way."""
        return self._silent_run * _FRAME_MS / 1000 if self._utterance else 0.0

    @property
    def position_s(self) -> float:
        """Seconds of audio pushed so far (whole frames)."""
        return self._frames_seen * _FRAME_MS / 1000

    @property
    def last_speech_end_s(self) -> float:
        """Stream time at which the last finished utterance's speech stopped."""
        return self._speech_end_frame * _FRAME_MS / 1000

    def push(self, pcm: bytes) -> list[bytes]:
        """Add audio; return the utterances that ended in it (PCM16 at `sample_rate`)."""
        done: list[bytes] = []
        for frame in self._frames.push(pcm):
            utterance = self._step(frame)
            if utterance is not None:
                done.append(utterance)
        return done

    def flush(self) -> list[bytes]:
        """End the stream: return the utterance in progress (if it is speech), then reset."""
        done: list[bytes] = []
        tail = self._frames.flush()
        if tail and (utterance := self._step(tail)) is not None:
            done.append(utterance)
        if self._utterance and (utterance := self._finish()) is not None:
            done.append(utterance)
        self._before.clear()
        return done

    def reset(self) -> None:
        """Forget everything heard so far (e.g. after the agent spoke)."""
        self._frames.flush()
        self._before.clear()
        self._utterance = []
        self._voiced = self._silent_run = 0
        self.speaking = False
        self.turn_probability = None

    def _step(self, frame: bytes) -> bytes | None:
        self._frames_seen += 1
        voiced = self._vad.is_speech(frame)
        if not self._utterance:
            if not voiced:
                self._before.append(frame)
                return None
            self._utterance = [*self._before, frame]
            self._before.clear()
            self._voiced, self._silent_run = 1, 0
            self.turn_probability = None
        else:
            self._utterance.append(frame)
            if voiced:
                self._voiced += 1
                self._silent_run = 0
            else:
                self._silent_run += 1
        if self._voiced * _FRAME_MS >= self.min_speech_ms:
            self.speaking = True
        if self._turn_over():
            return self._finish()
        return None

    def _turn_over(self) -> bool:
        silent_ms = self._silent_run * _FRAME_MS
        if self.turn_detector is None:
            return silent_ms >= self.silence_ms
        if silent_ms >= self.max_endpointing_delay_ms:
            return True
        # Asked once per pause, when it reaches the minimum delay, and only about speech.
        if silent_ms < self.min_endpointing_delay_ms or silent_ms - _FRAME_MS >= (
            self.min_endpointing_delay_ms
        ):
            return False
        if self._voiced * _FRAME_MS < self.min_speech_ms:
            return True  # a click: nothing to ask about, drop it as soon as allowed
        audio = b"".join(self._utterance[: self._kept(len(self._utterance), self._silent_run)])
        self.turn_probability = self.turn_detector.probability(audio, self.sample_rate)
        return self.turn_probability >= self.turn_threshold

    def _kept(self, frames: int, trailing: int) -> int:
        """Frames of an utterance that are its speech plus up to `padding_ms` of the silence
        after it."""
        return frames - trailing + min(trailing, self._pad_frames)

    def _finish(self) -> bytes | None:
        frames, trailing, voiced = self._utterance, self._silent_run, self._voiced
        confirmed = self._voiced * _FRAME_MS >= self.min_speech_ms
        self._utterance = []
        self._voiced = self._silent_run = 0
        self.speaking = False
        keep = self._kept(len(frames), trailing)
        self._before.extend(frames[keep:])
        if not confirmed:
            return None
        self._speech_end_frame = self._frames_seen - trailing
        self.last_speech_s = voiced * _FRAME_MS / 1000
        return b"".join(frames[:keep])
