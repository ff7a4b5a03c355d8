"""Whisper's log-mel spectrogram in numpy: the input of Whisper-based audio models.

Whisper (and models fine-tuned from its encoder, such as smart-turn) hear 16 kHz audio
as 80 mel bands: a 25 ms periodic Hann window every 10 ms, the power spectrum of a
centred, reflect-padded STFT, Slaney-scale triangular filters with Slaney area
normalisation, log10 clamped 8 decades under the loudest bin, then scaled by
`(x + 4) / 4`. The waveform is normalised to zero mean and unit variance first.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["RATE", "log_mel"]

RATE = 16000
_N_FFT = 400  # 25 ms
_HOP = 160  # 10 ms
_MELS = 80


def _hz_to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Slaney's mel scale: linear (3 mels per 200 Hz) to 1 kHz, logarithmic above."""
    log_step = 27.0 / math.log(6.4)
    linear = hz * 3.0 / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * log_step
    return np.where(hz < 1000.0, linear, logarithmic)


def _mel_to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    log_step = math.log(6.4) / 27.0
    return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp((mel - 15.0) * log_step))


@functools.lru_cache(maxsize=1)
def _filters() -> NDArray[np.float64]:
    """(mels, fft bins) triangles, each of unit area in Hz (Slaney normalisation)."""
    bins = np.linspace(0.0, RATE / 2, _N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(RATE / 2.0))), _MELS + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return triangles * (2.0 / (upper - lower))


def log_mel(audio: NDArray[np.floating], seconds: int = 8) -> NDArray[np.float32]:
    """Features of the last `seconds` of 16 kHz float audio: shape (80, 100 * seconds).

    Shorter audio is zero-padded in front, so the end of speech always sits at the end
    of the window, where the model was trained to look for it.
    """
    size = RATE * seconds
    x = np.asarray(audio, dtype=np.float32)[-size:]
    x = np.concatenate([np.zeros(size - len(x), dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), _N_FFT // 2, mode="reflect")
    starts = np.arange(0, len(padded) - _N_FFT + 1, _HOP)
    frames = padded[starts[:, None] + np.arange(_N_FFT)[None, :]]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = np.log10(np.maximum(_filters() @ power.T, 1e-10))[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    scaled: NDArray[np.float32] = ((mel + 4.0) / 4.0).astype(np.float32)
    return scaled
