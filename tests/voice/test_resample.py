from __future__ import annotations

import importlib.util
import itertools
import math
import random
import sys
import warnings
import wave
from array import array
from pathlib import Path

import pytest

from langchain_openrouter_audio.testing import tone_pcm16
from langchain_openrouter_audio.voice import Resampler, resample_pcm16
from langchain_openrouter_audio.voice._pcm import from_samples, rms, samples
from langchain_openrouter_audio.voice.resample import ResamplingQualityWarning

from .conftest import needs_espeak

RATES = [8000, 16000, 44100, 48000]
DOWN = [(24000, 8000), (24000, 16000), (48000, 16000), (48000, 24000)]
UP = [(8000, 24000), (16000, 24000), (16000, 48000), (24000, 44100)]

needs_soxr = pytest.mark.skipif(
    importlib.util.find_spec("soxr") is None, reason="soxr is not installed (the [voice] extra)"
)


def zero_crossing_hz(pcm: bytes, rate: int) -> float:
    """Pitch of a pure tone from its sign changes (no FFT needed)."""
    values = samples(pcm)
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    return crossings / 2 / (len(values) / rate)


def middle(pcm: bytes) -> bytes:
    """The middle half of a clip: levels without the start and end transients."""
    count = len(pcm) // 2
    return pcm[2 * (count // 4) : 2 * (count * 3 // 4)]


def level_db(pcm: bytes, reference: bytes) -> float:
    """RMS of `pcm` relative to `reference`'s, in dB (-inf for digital silence)."""
    level = rms(pcm)
    return 20 * math.log10(level / rms(reference)) if level else -math.inf


def amplitude_db(pcm: bytes, rate: int, hz: float, full: float) -> float:
    """Level of the `hz` component relative to `full` (Hann-windowed Goertzel), in dB."""
    values = samples(pcm)
    n = len(values)
    re = im = wsum = 0.0
    step = 2 * math.pi * hz / rate
    for i, v in enumerate(values):
        w = 0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))
        re += v * w * math.cos(step * i)
        im -= v * w * math.sin(step * i)
        wsum += w
    amplitude = math.hypot(re, im) * 2 / wsum
    return 20 * math.log10(amplitude / full) if amplitude else -math.inf


def pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 3001)  # odd sizes split samples in half
        out.append(data[pos : pos + step])
        pos += step
    return out


@pytest.mark.parametrize("dst", RATES)
def test_tone_keeps_pitch_and_level_there_and_back(dst: int) -> None:
    tone = tone_pcm16(1.0, 440.0, amplitude=0.5)
    there = resample_pcm16(tone, 24000, dst)
    back = resample_pcm16(there, dst, 24000)
    assert abs(len(there) / 2 - dst) <= 2  # one second at the new rate
    for pcm, rate in ((there, dst), (back, 24000)):
        assert zero_crossing_hz(pcm, rate) == pytest.approx(440.0, abs=3.0)
        assert rms(pcm) == pytest.approx(rms(tone), rel=0.03)
    assert abs(len(back) - len(tone)) <= 8


@pytest.mark.parametrize(("src", "dst"), [(24000, d) for d in RATES] + [(d, 24000) for d in RATES])
def test_pieces_give_the_same_audio_as_whole(src: int, dst: int) -> None:
    clip = tone_pcm16(0.7, 300.0, sample_rate=src) + tone_pcm16(0.5, 1234.0, sample_rate=src)
    whole = resample_pcm16(clip, src, dst)
    resampler = Resampler(src, dst)
    streamed = b"".join(resampler.push(p) for p in pieces(clip, seed=src + dst))
    streamed += resampler.flush()
    assert streamed == whole


@needs_espeak
def test_speech_in_pieces_has_no_clicks_at_edges() -> None:
    from langchain_openrouter_audio.testing import speech_pcm16

    speech = speech_pcm16("Streaming speech must not click at chunk edges.")
    resampler = Resampler(24000, 8000)
    streamed = b"".join(resampler.push(p) for p in pieces(speech, seed=7)) + resampler.flush()
    assert streamed == resample_pcm16(speech, 24000, 8000)
    # And the speech is still there: same loudness within a few percent.
    assert rms(streamed) == pytest.approx(rms(speech), rel=0.1)


def test_reusable_after_flush_and_same_rate_passthrough() -> None:
    resampler = Resampler(24000, 16000)
    clip = tone_pcm16(0.2, 500.0)
    first = resampler.push(clip) + resampler.flush()
    assert resampler.push(clip) + resampler.flush() == first
    assert resample_pcm16(clip, 24000, 24000) == clip
    assert resample_pcm16(b"", 24000, 8000) == b""


def test_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_silence_stays_silent() -> None:
    out = resample_pcm16(bytes(4800), 24000, 44100)
    assert set(out) == {0}
    assert math.isclose(len(out) / 2, 4410, abs_tol=2)


def streamed(clip: bytes, resampler: Resampler, seed: int) -> bytes:
    return b"".join(resampler.push(p) for p in pieces(clip, seed)) + resampler.flush()


@needs_soxr
@pytest.mark.parametrize("times_nyquist", [1.1, 1.4])
@pytest.mark.parametrize(("src", "dst"), DOWN)
def test_tones_above_the_new_nyquist_do_not_fold_back(
    src: int, dst: int, times_nyquist: float
) -> None:
    # 24 -> 8 kHz: a 4.4 kHz or 5.6 kHz tone would come back as 3.6 or 2.4 kHz.
    tone = tone_pcm16(1.0, times_nyquist * dst / 2, sample_rate=src, amplitude=0.5)
    out = resample_pcm16(tone, src, dst)
    assert abs(len(out) / 2 - dst) <= 1
    assert level_db(middle(out), middle(tone)) < -80  # int16 rounding leaves about nothing


def test_low_latency_path_folds_a_tone_back_as_documented() -> None:
    # Why soxr is the default: linear interpolation turns 6 kHz into a full-strength 2 kHz.
    tone = tone_pcm16(1.0, 6000.0, amplitude=0.5)
    resampler = Resampler(24000, 8000, low_latency=True)
    out = resampler.push(tone) + resampler.flush()
    assert resampler.method == "linear"
    assert level_db(middle(out), middle(tone)) > -1
    assert zero_crossing_hz(middle(out), 8000) == pytest.approx(2000, abs=10)


@needs_soxr
@pytest.mark.parametrize("where", [None, 0.8, 0.9])
@pytest.mark.parametrize(("src", "dst"), DOWN + UP)
def test_passband_tones_keep_their_level(src: int, dst: int, where: float | None) -> None:
    # The documented passband: flat within 0.1 dB from low tones up to 0.9 x Nyquist.
    hz = 1000.0 if where is None else where * min(src, dst) / 2
    tone = tone_pcm16(1.0, hz, sample_rate=src, amplitude=0.5)
    out = resample_pcm16(tone, src, dst)
    assert abs(level_db(middle(out), middle(tone))) < 0.1
    assert zero_crossing_hz(middle(out), dst) == pytest.approx(hz, rel=0.002)


@needs_soxr
@pytest.mark.parametrize(("src", "dst"), UP)
def test_upsampling_adds_no_image_above_the_old_nyquist(src: int, dst: int) -> None:
    # A tone at 0.8 x the old Nyquist: linear interpolation leaves its mirror image at
    # src - f about 11 dB down; the filter removes it.
    hz = 0.4 * src
    full = 0.5 * 32767
    out = resample_pcm16(tone_pcm16(1.0, hz, sample_rate=src, amplitude=0.5), src, dst)
    assert amplitude_db(middle(out), dst, hz, full) == pytest.approx(0.0, abs=0.1)
    assert amplitude_db(middle(out), dst, src - hz, full) < -80
    linear = Resampler(src, dst, low_latency=True)
    old = linear.push(tone_pcm16(1.0, hz, sample_rate=src, amplitude=0.5))
    assert amplitude_db(middle(old), dst, src - hz, full) > -20  # the measurement sees it


@pytest.mark.parametrize("low_latency", [False, True])
@pytest.mark.parametrize(("src", "dst"), DOWN + UP + [(44100, 24000), (24000, 48000)])
def test_noise_in_random_pieces_gives_the_same_bytes_as_whole(
    src: int, dst: int, low_latency: bool
) -> None:
    # White noise has energy at every frequency, the filter's hardest input; pieces of
    # 1..3001 bytes split samples in half.
    rng = random.Random(src ^ dst)
    noise = from_samples(samples(bytes(rng.getrandbits(8) for _ in range(2 * src // 2))))
    whole = Resampler(src, dst, low_latency=low_latency)
    expected = whole.push(noise) + whole.flush()
    for seed in range(3):
        resampler = Resampler(src, dst, low_latency=low_latency)
        assert streamed(noise, resampler, seed) == expected
        assert streamed(noise, resampler, seed + 10) == expected  # and again after flush


@needs_soxr
def test_one_byte_at_a_time_gives_the_same_bytes() -> None:
    clip = tone_pcm16(0.1, 700.0) + tone_pcm16(0.1, 3000.0)
    resampler = Resampler(24000, 8000)
    out = b"".join(resampler.push(clip[i : i + 1]) for i in range(len(clip)))
    assert out + resampler.flush() == resample_pcm16(clip, 24000, 8000)


@pytest.mark.parametrize(("src", "dst"), DOWN + UP + [(44100, 24000)])
def test_flush_returns_the_tail_so_the_length_is_right(src: int, dst: int) -> None:
    resampler = Resampler(src, dst)
    for count in (1, 2, 3, 7, 120, 479, 4801):
        out = resampler.push(bytes(2 * count)) + resampler.flush()
        assert abs(len(out) / 2 - count * dst / src) <= 0.5


@needs_soxr
@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (24000, 16000), (24000, 48000)])
def test_flush_ends_a_reply_without_a_lost_tail_or_a_click(src: int, dst: int) -> None:
    # A reply that ends in a 10 ms fade, streamed in 20 ms pieces as the engine does.
    tone = samples(tone_pcm16(0.31, 1000.0, sample_rate=src, amplitude=0.5))
    fade = src // 100
    for i in range(fade):
        tone[len(tone) - fade + i] = round(tone[len(tone) - fade + i] * (fade - 1 - i) / fade)
    clip = from_samples(tone)
    resampler = Resampler(src, dst)
    step = 2 * src // 50
    out = b"".join(resampler.push(clip[i : i + step]) for i in range(0, len(clip), step))
    tail = resampler.flush()
    assert tail  # the filter held the end back; flush gives it
    out += tail
    assert out == resample_pcm16(clip, src, dst)
    assert abs(len(out) / 2 - len(clip) / 2 * dst / src) <= 0.5
    # The last 30 ms (the fade included) keep their level: nothing lost at the end.
    last_in, last_out = clip[-2 * src * 30 // 1000 :], out[-2 * dst * 30 // 1000 :]
    assert abs(level_db(last_out, last_in)) < 0.5
    # And it ends as quietly as the input: no step at the end louder than the tone's own.
    values = samples(out)
    biggest_step = max(abs(b - a) for a, b in itertools.pairwise(values[: -dst // 50]))
    assert max(abs(b - a) for a, b in itertools.pairwise(values[-dst // 50 :])) <= biggest_step
    assert abs(values[-1]) < 0.01 * 32767  # the input's last sample is 0


def test_low_latency_output_follows_each_piece_at_once() -> None:
    # What a VAD needs: 20 ms in, 20 ms out (a sample either way), from the first piece.
    resampler = Resampler(24000, 16000, low_latency=True)
    clip = tone_pcm16(0.5, 440.0)
    sizes = {len(resampler.push(clip[i : i + 960])) // 2 for i in range(0, len(clip), 960)}
    assert sizes <= {319, 320, 321}


@needs_soxr
def test_wave_file_round_trip(tmp_path: Path) -> None:
    # 24 kHz WAV of a 1 kHz voice-band tone plus a 6 kHz whine, to an 8 kHz WAV and back:
    # both files are valid, the right length, the 1 kHz tone is intact, the whine is gone
    # rather than folded to 2 kHz.
    voice = samples(tone_pcm16(1.0, 1000.0, amplitude=0.4))
    whine = samples(tone_pcm16(1.0, 6000.0, amplitude=0.4))
    mixed = from_samples(array("h", [a + b for a, b in zip(voice, whine, strict=True)]))
    source = tmp_path / "reply-24k.wav"
    write_wav(source, mixed, 24000)
    phone, rate = read_wav(source)
    assert rate == 24000
    write_wav(tmp_path / "phone-8k.wav", resample_pcm16(phone, rate, 8000), 8000)
    narrow, narrow_rate = read_wav(tmp_path / "phone-8k.wav")
    assert narrow_rate == 8000
    assert len(narrow) == 2 * 8000
    full = 0.4 * 32767
    assert amplitude_db(middle(narrow), 8000, 1000.0, full) == pytest.approx(0.0, abs=0.1)
    assert amplitude_db(middle(narrow), 8000, 2000.0, full) < -80
    write_wav(tmp_path / "back-24k.wav", resample_pcm16(narrow, 8000, 24000), 24000)
    back, _ = read_wav(tmp_path / "back-24k.wav")
    assert len(back) == len(mixed)
    assert amplitude_db(middle(back), 24000, 1000.0, full) == pytest.approx(0.0, abs=0.1)
    assert amplitude_db(middle(back), 24000, 6000.0, full) < -80


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


def test_without_soxr_it_falls_back_to_linear_and_says_which_extra_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_openrouter_audio.voice import _soxr

    monkeypatch.setitem(sys.modules, "soxr", None)  # `import soxr` raises ImportError
    monkeypatch.setattr(_soxr, "_MODULES", None)
    monkeypatch.setattr(_soxr, "_MISSING", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same rate and low_latency do not look for soxr
        Resampler(24000, 24000)
        Resampler(24000, 8000, low_latency=True)
    with pytest.warns(ResamplingQualityWarning) as caught:
        resampler = Resampler(24000, 8000)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "pip install 'langchain-openrouter-audio[voice]'" in message
    assert "anti-alias" in message
    assert resampler.method == "linear"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, not once per reply
        again = resample_pcm16(tone_pcm16(0.2, 440.0), 24000, 16000)
    linear = Resampler(24000, 16000, low_latency=True)
    assert again == linear.push(tone_pcm16(0.2, 440.0)) + linear.flush()
    assert zero_crossing_hz(again, 16000) == pytest.approx(440.0, abs=3.0)


@needs_soxr
def test_soxr_is_the_default_path() -> None:
    assert Resampler(24000, 8000).method == "soxr"
    assert Resampler(24000, 24000).method == "passthrough"
