"""Echo cancellation: take the agent's own voice out of the microphone signal.

With a loudspeaker instead of headphones the microphone hears the agent, and an
endpointer would take that for the user barging in. `EchoCanceller` runs WebRTC's AEC3
(the canceller in Chrome; `pywebrtc-audio`, Apache-2.0, the `[aec]` extra): it is told
what the speaker plays (`far_end`) and subtracts its echo from what the microphone hears
(`process`), adapting to the room as it goes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from langchain_openrouter_audio.voice.frames import FrameBuffer

__all__ = ["EchoCanceller"]

_FRAME_MS = 10  # what WebRTC's audio processing works on
_RATES = (8000, 16000, 32000, 48000)


def _import_aec() -> tuple[Any, Any]:
    try:
        import numpy
        import pywebrtc_audio  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as err:
        msg = (
            "echo cancellation needs pywebrtc-audio: pip install 'langchain-openrouter-audio[aec]'"
        )
        raise ImportError(msg) from err
    return numpy, pywebrtc_audio


class EchoCanceller:
    """WebRTC AEC3 on PCM16 mono: `far_end(played)`, then `process(heard)` -> cleaned.

    Give `far_end` exactly the audio handed to the speaker, when it is handed over, and
    `process` the microphone audio as it arrives (both at `sample_rate`, any piece size).
    Each 10 ms of microphone audio is matched with the next 10 ms of far-end audio (silence
    when none is queued), so the two streams must run at the same pace, as they do when
    one frame plays per frame heard. `stream_delay_ms` is the time from handing audio to
    the speaker to hearing it back (device buffers; AEC3 also finds the delay itself).

    For its first `warmup_ms` of far-end speech the canceller is still learning the room:
    `warming_up` is True and an engine should not let the user interrupt on what it hears
    (LiveKit waits 3 s). `process` returns what it could complete: a whole number of 10 ms
    frames, the rest kept for the next call. At most `max_queue_ms` of far-end audio waits
    for the microphone; older audio is dropped.

    ```python
    from langchain_openrouter_audio.voice import EchoCanceller, Endpointer
    from langchain_openrouter_audio.testing.corpus import echo_only

    scene = echo_only()  # the agent through a loudspeaker, 60 ms late, 6 dB down
    canceller = EchoCanceller(16000, stream_delay_ms=60)
    endpointer = Endpointer(16000)
    heard = []
    for i in range(0, len(scene.pcm), 640):  # 20 ms at a time, played and heard
        canceller.far_end(scene.far_end[i : i + 640])
        heard += endpointer.push(canceller.process(scene.pcm[i : i + 640]))
    assert heard + endpointer.flush() == []
    ```
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        stream_delay_ms: int = 0,
        warmup_ms: int = 3000,
        max_queue_ms: int = 2000,
    ) -> None:
        if sample_rate not in _RATES:
            raise ValueError(f"echo cancellation runs at {_RATES} Hz, not {sample_rate}")
        if stream_delay_ms < 0 or warmup_ms < 0 or max_queue_ms < _FRAME_MS:
            raise ValueError("need stream_delay_ms >= 0, warmup_ms >= 0 and max_queue_ms >= 10")
        self._np, aec = _import_aec()
        self.sample_rate = sample_rate
        self.warmup_ms = warmup_ms
        self._aec = aec.EchoCanceller(sample_rate, 1, stream_delay_ms)
        self._near = FrameBuffer(sample_rate, _FRAME_MS)
        self._far = FrameBuffer(sample_rate, _FRAME_MS)
        # Bounded: far-end audio nobody hears back (no microphone yet) is dropped, oldest first.
        self._queued: deque[bytes] = deque(maxlen=max_queue_ms // _FRAME_MS)
        self._silence = bytes(self._near.frame_bytes)
        self._far_speech_ms = 0

    @property
    def warming_up(self) -> bool:
        """True until `warmup_ms` of far-end audio that is not silence has been processed."""
        return self._far_speech_ms < self.warmup_ms

    @property
    def queued_ms(self) -> int:
        """Far-end audio waiting for microphone audio to meet it."""
        return len(self._queued) * _FRAME_MS

    def far_end(self, pcm: bytes) -> None:
        """Queue audio the speaker is playing."""
        self._queued.extend(self._far.push(pcm))

    def process(self, near_pcm: bytes) -> bytes:
        """Microphone audio in, the same with the speaker's echo removed out."""
        np = self._np
        out: list[bytes] = []
        for frame in self._near.push(near_pcm):
            far = self._queued.popleft() if self._queued else self._silence
            if far != self._silence:
                self._far_speech_ms += _FRAME_MS
            near_samples = np.frombuffer(frame, dtype="<i2").astype(np.int16)
            far_samples = np.frombuffer(far, dtype="<i2").astype(np.int16)
            cleaned = np.asarray(self._aec.process(near_samples, far_samples), dtype="<i2")
            out.append(cleaned.tobytes())
        return b"".join(out)

    def reset(self) -> None:
        """Forget the room and any queued audio (a new call, another device)."""
        self._aec.reset()
        self._near.flush()
        self._far.flush()
        self._queued.clear()
        self._far_speech_ms = 0
