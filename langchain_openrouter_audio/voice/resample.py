"""Sample-rate conversion of PCM16 mono, whole or streamed in pieces.

Backed by `soxr` (libsoxr, "HQ" recipe; the `[voice]` extra installs it with numpy, both
imported on first use). It low-pass filters before it decimates: a tone above the new
Nyquist frequency does not fold back (it is below int16 resolution), and the passband is
flat (within 0.1 dB) up to 0.9 x the lower Nyquist (3.6 kHz at 8 kHz). It runs in float32
and rounds to int16 itself (soxr's int16 mode dithers depending on how the input is cut),
so a stream converted piece by piece is byte for byte the conversion of the whole.

Its filter works in blocks: while streaming, the output trails the input by up to about
75 ms of audio at 8 kHz (40 ms at 16 kHz and up), and `flush()` returns what is still
inside the filter. `low_latency=True` (and any resampler when `soxr` is missing, which warns
once) uses `audioop.ratecv` instead: linear interpolation with no anti-alias filter, whose
output for each piece comes at once. That suits a voice activity detector, not a listener.
"""

from __future__ import annotations

from typing import Any

from langchain_openrouter_audio.voice._audioop import load_audioop
from langchain_openrouter_audio.voice._pcm import SAMPLE_WIDTH
from langchain_openrouter_audio.voice._soxr import ResamplingQualityWarning, load_soxr

__all__ = ["Resampler", "ResamplingQualityWarning", "resample_pcm16"]


class Resampler:
    """Stateful PCM16 mono rate converter: `.push(pcm)` pieces, then `.flush()`.

    Fed at once or in pieces of any size (odd byte counts too), it gives the same bytes.
    Creating one is cheap (the filter is built on the first `push`), so make one per stream.

    ```python
    from langchain_openrouter_audio.voice import Resampler

    to_phone = Resampler(24000, 8000)
    out = to_phone.push(b"\\x00\\x00" * 2400)  # some now, some held in the filter
    out += to_phone.flush()  # the rest: 100 ms in, 100 ms out
    assert len(out) == 2 * 800
    ```

    `low_latency=True` trades the anti-alias filter for output that follows each piece at
    once (about `len(pcm) * dst_rate / src_rate`): for detectors that need fixed frame
    sizes now, such as a VAD. `method` says which path runs: `"soxr"`, `"linear"` or
    `"passthrough"` (same rates).
    """

    def __init__(self, src_rate: int, dst_rate: int, *, low_latency: bool = False) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._odd = b""
        self._numpy: Any = None
        self._soxr: Any = None
        self._stream: Any = None  # soxr.ResampleStream, made on the first push
        self._audioop: Any = None
        self._state: Any = None  # audioop.ratecv's state between pieces
        modules = None if low_latency or src_rate == dst_rate else load_soxr()
        if src_rate == dst_rate:
            self.method = "passthrough"
        elif modules is not None:
            self.method = "soxr"
            self._numpy, self._soxr = modules
        else:
            self.method = "linear"
            self._audioop = load_audioop()

    def push(self, pcm: bytes) -> bytes:
        """Convert the next piece; returns what is ready (a whole number of samples)."""
        data = self._odd + pcm
        usable = len(data) // SAMPLE_WIDTH * SAMPLE_WIDTH
        self._odd = data[usable:]
        if not usable:
            return b""
        if self.method == "passthrough":
            return data[:usable]
        if self.method == "soxr":
            if self._stream is None:
                self._stream = self._soxr.ResampleStream(
                    self.src_rate, self.dst_rate, 1, dtype="float32", quality="HQ"
                )
            np = self._numpy
            floats = np.frombuffer(data, dtype="<i2", count=usable // SAMPLE_WIDTH)
            return self._to_pcm16(self._stream.resample_chunk(floats.astype(np.float32)))
        out: bytes
        out, self._state = self._audioop.ratecv(
            data[:usable], SAMPLE_WIDTH, 1, self.src_rate, self.dst_rate, self._state
        )
        return out

    def flush(self) -> bytes:
        """End the stream: return what the filter still holds, and reset for reuse.

        With `soxr` the whole stream comes out `round(n * dst / src)` samples long, its
        end filtered like the rest (no cut, so no click). The linear path emits output up
        to the last input sample as it goes, so its flush returns `b""` (a clip comes out
        a sample or two short). A dangling half sample is dropped either way.
        """
        self._odd = b""
        self._state = None
        if self._stream is None:
            return b""
        np = self._numpy
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream.clear()
        return self._to_pcm16(tail)

    def _to_pcm16(self, floats: Any) -> bytes:
        np = self._numpy
        rounded = np.clip(np.rint(floats), -32768, 32767)
        return bytes(rounded.astype("<i2").tobytes())


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Convert a whole PCM16 mono clip from `src_rate` to `dst_rate`.

    ```python
    from langchain_openrouter_audio.voice import resample_pcm16

    assert len(resample_pcm16(b"\\x00\\x00" * 24000, 24000, 16000)) == 2 * 16000
    ```
    """
    resampler = Resampler(src_rate, dst_rate)
    return resampler.push(pcm) + resampler.flush()
