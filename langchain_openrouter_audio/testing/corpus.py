"""A conversation corpus for turn-taking: speech, pauses, backchannels, noise, echo.

Every scene is mixed by code from espeak-ng speech and synthesized sound, seeded, so the
same call gives the same bytes on every machine with the same espeak-ng. Each `Scene`
says where the words are and how many turns an ideal endpointer returns, so a detector
can be scored on it (`benchmarks/turn_taking.py` does; so can your own evaluation).

Needs numpy (any extra with a neural detector installs it) and espeak-ng.

```python
from langchain_openrouter_audio.testing.corpus import noisy_question, typing
from langchain_openrouter_audio.voice import Endpointer

scene = noisy_question(snr_db=10)
endpointer = Endpointer(16000)
turns = endpointer.push(scene.pcm) + endpointer.flush()
print(scene.name, scene.turns, len(turns))  # noisy question 10 dB 1 1
assert Endpointer(16000).push(typing(5).pcm) == []
```
"""

from __future__ import annotations

import functools
import io
import itertools
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

try:
    import numpy as np
except ImportError as err:  # pragma: no cover - numpy is in every extra that needs this
    raise ImportError(
        "the turn-taking corpus needs numpy: pip install 'langchain-openrouter-audio[vad]'"
    ) from err

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice.endpointer import Endpointer

__all__ = [
    "RATE",
    "Heard",
    "LoudspeakerRoom",
    "Scene",
    "backchannel_over_agent",
    "door_slams",
    "echo_only",
    "fan",
    "finished_sentences",
    "listen",
    "music",
    "noise_scenes",
    "noisy_question",
    "paused_sentence",
    "paused_sentences",
    "pink_noise",
    "speak",
    "to_pcm16",
    "typing",
    "user_over_echo",
]

RATE = 16000
"""Every scene is PCM16 mono at 16 kHz."""

SPEECH_DBFS = -26.0
"""RMS of the voiced part of every spoken clip (a close-talking microphone)."""

QUESTION = "What is the weather going to be like in Paris this weekend?"
PAUSED = (
    ("I would like to book a table for", "four people tomorrow evening."),
    ("I would like to book a table for, um", "four people tomorrow evening."),
    ("I was hoping to", "change my appointment to Friday."),
    ("So I was thinking that maybe we could", "go to the beach on Saturday."),
)
"""Sentences said in two parts with a pause between. espeak-ng says every part with the
falling pitch of a finished sentence, so the first one's fragment sounds finished to an
audio turn detector; the others end on a filler or a word that needs more."""
AGENT_REPLY = (
    "Sure. I found three restaurants near the river that have a table free tomorrow "
    "evening. The first one is a small French bistro with a garden."
)
FINISHED = (
    "What time does the museum open on Sunday?",
    "Please send the invoice to my office address.",
    "Can you tell me how long the drive to the airport takes?",
    "I think that is everything, thank you very much.",
)
VOICES = ("en-us", "en-gb", "en-us+f3")


@dataclass(frozen=True)
class Scene:
    """One mixed recording and what an ideal listener makes of it.

    `speech` holds the (start, end) seconds of each user turn's words; `turns` is how
    many utterances an ideal endpointer returns (`len(speech)`; 0 for noise). `far_end`
    is what the agent played meanwhile (echo scenes), aligned with `pcm`.
    """

    name: str
    pcm: bytes
    speech: tuple[tuple[float, float], ...] = ()
    far_end: bytes = b""
    meta: dict[str, float] = field(default_factory=dict)

    @property
    def turns(self) -> int:
        return len(self.speech)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE


def to_pcm16(x: np.ndarray) -> bytes:
    """Float samples (full scale 1.0) as PCM16 little-endian bytes, clipped."""
    return bytes(np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes())


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _db(value: float) -> float:
    return float(10 ** (value / 20))


@functools.lru_cache(maxsize=256)
def _espeak(text: str, voice: str, speed: int) -> tuple[bytes, int]:
    """espeak-ng's PCM16 and its sample rate, synthesized once per process."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; on Debian run `apt-get install espeak-ng`")
    result = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", "--stdin"],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    with wave.open(io.BytesIO(result.stdout), "rb") as wav:
        rate = wav.getframerate()
        chunks = []
        while chunk := wav.readframes(65536):  # espeak writes no length to a pipe
            chunks.append(chunk)
    return b"".join(chunks), rate


def _voiced(x: np.ndarray, threshold_db: float = -40.0) -> tuple[int, int]:
    """First and last sample of the words (espeak pads its clips with silence)."""
    loud = np.flatnonzero(np.abs(x) > _db(threshold_db))
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, 0)


def speak(text: str, voice: str = "en-us", speed: int = 165) -> np.ndarray:
    """espeak-ng speech as float samples at 16 kHz, trimmed to the words, voiced RMS -26 dBFS.

    Cached per process: each (text, voice, speed) is synthesized once.
    """
    pcm, rate = _espeak(text, voice, speed)
    raw = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    at = np.arange(round(len(raw) * RATE / rate)) * (rate / RATE)
    x: np.ndarray = np.interp(at, np.arange(len(raw)), raw)  # linear: plenty for a detector
    first, last = _voiced(x)
    x = x[first:last]
    frames = x[: len(x) // 480 * 480].reshape(-1, 480)
    levels = np.sqrt(np.mean(frames**2, axis=1))
    active = levels > levels.max() * _db(-30)
    level = float(np.sqrt(np.mean(levels[active] ** 2))) if active.any() else 1.0
    scaled: np.ndarray = x * (_db(SPEECH_DBFS) / level)
    return scaled


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE))


def pink_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (-3 dB per octave), RMS 1."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[1:] /= np.sqrt(freqs[1:] / 20.0).clip(1.0)  # flat below 20 Hz
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / _rms(x)


def _place(length: int, parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    out = np.zeros(length)
    for start_s, clip in parts:
        start = round(start_s * RATE)
        end = min(length, start + len(clip))
        out[start:end] += clip[: end - start]
    return out


def _sentence_scene(
    pieces: list[np.ndarray | float], lead_s: float = 0.5, tail_s: float = 1.5
) -> tuple[np.ndarray, tuple[float, float]]:
    """Speech pieces (arrays) and pauses (seconds) in a row, with silence around."""
    parts = [_silence(lead_s)]
    for piece in pieces:
        parts.append(_silence(piece) if isinstance(piece, float) else piece)
    words = np.concatenate(parts[1:])
    x = np.concatenate([*parts, _silence(tail_s)])
    return x, (lead_s, lead_s + len(words) / RATE)


def paused_sentence(pause_s: float = 0.9, voice: str = "en-us", which: int = 0) -> Scene:
    """`PAUSED[which]` with `pause_s` of silence mid-sentence: one turn.

    The default is "I would like to book a table for ... four people tomorrow evening."
    """
    head, tail = PAUSED[which]
    first, second = speak(head, voice), speak(tail, voice)
    x, span = _sentence_scene([first, pause_s, second], tail_s=3.5)
    meta = {"pause_at_s": span[0] + len(first) / RATE, "pause_s": pause_s}
    name = f"paused {pause_s:.1f} s: {head[:20]}... ({voice})"
    return Scene(name, to_pcm16(x), (span,), meta=meta)


def paused_sentences(pause_s: float = 0.9) -> list[Scene]:
    """Every `PAUSED` sentence in every voice."""
    return [paused_sentence(pause_s, v, i) for i in range(len(PAUSED)) for v in VOICES]


def finished_sentences(voices: tuple[str, ...] = VOICES) -> list[Scene]:
    """Complete questions and statements, each alone with silence after it: one turn each."""
    scenes = []
    for text, voice in ((t, v) for t in FINISHED for v in voices):
        x, span = _sentence_scene([speak(text, voice)], tail_s=3.5)
        scenes.append(Scene(f"finished: {text[:24]}... ({voice})", to_pcm16(x), (span,)))
    return scenes


def noisy_question(snr_db: float = 5.0, seed: int = 0, voice: str = "en-us") -> Scene:
    """`QUESTION` in pink noise at `snr_db` (speech RMS over noise RMS): one turn."""
    x, span = _sentence_scene([speak(QUESTION, voice)], lead_s=1.5)
    noise = pink_noise(len(x) / RATE, seed) * _db(SPEECH_DBFS - snr_db)
    return Scene(f"noisy question {snr_db:g} dB", to_pcm16(x + noise), (span,))


def typing(seconds: float = 30.0, seed: int = 0) -> Scene:
    """Keyboard typing near the microphone: clicks at typing rhythm, no turn.

    Each key is a press and a release (40-110 ms later): a broadband burst decaying in a
    few milliseconds with a faint case resonance; ~6 keys a second in words, with pauses.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    out = np.zeros(n)
    t = 0.2
    while t < seconds - 0.3:
        for _ in range(int(rng.integers(3, 9))):  # a word
            for offset, gain in ((0.0, 1.0), (float(rng.uniform(0.04, 0.11)), 0.5)):
                length = round(0.025 * RATE)
                decay = np.exp(-np.arange(length) / (float(rng.uniform(0.002, 0.005)) * RATE))
                burst = rng.standard_normal(length) * decay
                ring = np.sin(2 * np.pi * float(rng.uniform(1500, 3500)) * np.arange(length) / RATE)
                click = (burst + 0.5 * ring * decay) * gain * _db(float(rng.uniform(-14, -8)))
                start = round((t + offset) * RATE)
                out[start : start + length] += click[: max(0, n - start)]
            t += float(rng.lognormal(np.log(0.16), 0.35))
        t += float(rng.uniform(0.15, 0.9))  # space bar, thinking
    return Scene(f"typing {seconds:g} s", to_pcm16(out))


def door_slams(seconds: float = 30.0, every_s: float = 5.0, seed: int = 0) -> Scene:
    """A door slamming every `every_s` seconds: a low thump and a rattle, no turn."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    out = np.zeros(n)
    length = round(0.7 * RATE)
    k = np.arange(length)
    for start_s in np.arange(1.0, seconds - 0.7, every_s):
        thump = np.sin(2 * np.pi * float(rng.uniform(60, 110)) * k / RATE) * np.exp(
            -k / (0.06 * RATE)
        )
        crack = rng.standard_normal(length) * np.exp(-k / (0.012 * RATE))
        rattle = rng.standard_normal(length) * np.exp(-k / (0.15 * RATE)) * 0.05
        wall = np.convolve(crack, np.exp(-np.arange(200) / 40.0), mode="same") / 20
        slam = 0.6 * thump + 0.5 * crack + wall + rattle
        slam *= _db(-4) / np.abs(slam).max()
        start = round(float(start_s) * RATE)
        out[start : start + length] += slam[: n - start]
    return Scene(f"door slams {seconds:g} s", to_pcm16(out))


def fan(seconds: float = 30.0, seed: int = 0) -> Scene:
    """A fan: steady low-pitched noise, a hum and its blade rate, at -35 dBFS; no turn."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # no drift
    hum = sum(np.sin(2 * np.pi * f * t) / i for i, f in enumerate((100, 200, 300), 1))
    x = brown / _rms(brown) + 0.3 * hum * (1 + 0.2 * np.sin(2 * np.pi * 23 * t))
    x += 0.3 * pink_noise(seconds, seed + 1)
    return Scene(f"fan {seconds:g} s", to_pcm16(x * (_db(-35) / _rms(x))))


def music(seconds: float = 30.0, seed: int = 0) -> Scene:
    """Instrumental music: chords with a melody over them, at -24 dBFS RMS; no turn."""
    rng = np.random.default_rng(seed)
    roots = (220.0, 174.6, 261.6, 196.0)  # A, F, C, G
    chord_s, note_s = 1.0, 0.25
    n = round(seconds * RATE)
    out = np.zeros(n)
    k = np.arange(round(chord_s * RATE))
    for i, start in enumerate(range(0, n, len(k))):
        root = roots[i % len(roots)]
        chord = np.zeros(len(k))
        for ratio in (1.0, 1.26, 1.5):  # a major triad
            for harmonic in (1, 2, 3):
                chord += np.sin(2 * np.pi * root * ratio * harmonic * k / RATE) / harmonic**1.5
        chord *= np.minimum(1.0, k / 400) * np.exp(-k / (0.8 * RATE))
        melody = np.zeros(len(k))
        m = np.arange(round(note_s * RATE))
        for j in range(round(chord_s / note_s)):
            pitch = root * 2 * float(rng.choice((1.0, 1.122, 1.26, 1.5, 1.68)))
            note = np.sin(2 * np.pi * pitch * m / RATE) * np.exp(-m / (0.1 * RATE))
            melody[j * len(m) : (j + 1) * len(m)] = note
        piece = (chord + 0.8 * melody)[: n - start]
        out[start : start + len(piece)] += piece
    return Scene(f"music {seconds:g} s", to_pcm16(out * (_db(-24) / _rms(out))))


def noise_scenes(seconds: float = 30.0, seed: int = 0) -> list[Scene]:
    """Typing, door slams, a fan and music: sounds that must start no turn."""
    return [
        typing(seconds, seed),
        door_slams(seconds, seed=seed),
        fan(seconds, seed),
        music(seconds, seed),
    ]


def _room(x: np.ndarray, seed: int, delay_ms: float = 60.0, gain_db: float = -6.0) -> np.ndarray:
    """The agent's voice as the microphone hears it from a loudspeaker: late, down, reverberant."""
    rng = np.random.default_rng(seed)
    k = np.arange(round(0.25 * RATE))
    tail = rng.standard_normal(len(k)) * np.exp(-k / (0.04 * RATE)) * 0.08
    tail[0] = 1.0
    wet = np.convolve(x, tail)[: len(x)]
    wet *= _rms(x) / max(_rms(wet), 1e-12)
    delay = round(delay_ms / 1000 * RATE)
    return np.concatenate([np.zeros(delay), wet[: len(x) - delay]]) * _db(gain_db)


def _agent(voice: str = "en-gb") -> np.ndarray:
    return speak(AGENT_REPLY, voice)


def echo_only(seed: int = 0) -> Scene:
    """The agent talking through a loudspeaker, nobody else: no turn once echo is cancelled.

    `far_end` is the agent's audio as played; `pcm` is the microphone: that audio 60 ms
    late, 6 dB down, with a little reverb.
    """
    agent = np.concatenate([_silence(0.5), _agent(), _silence(1.0)])
    return Scene("echo only", to_pcm16(_room(agent, seed)), far_end=to_pcm16(agent))


def user_over_echo(seed: int = 0) -> Scene:
    """The user asks a question while the agent's echo plays: one turn."""
    agent = np.concatenate([_silence(0.5), _agent(), _silence(1.0)])
    user = speak(QUESTION, "en-us")
    start_s = 3.0
    mic = _room(agent, seed) + _place(len(agent), [(start_s, user)])
    span = ((start_s, start_s + len(user) / RATE),)
    return Scene("user over echo", to_pcm16(mic), span, far_end=to_pcm16(agent))


def backchannel_over_agent(word: str = "yeah") -> Scene:
    """A short "yeah" (~0.3 s; "uh-huh", "okay", "right" too) 2 s into the agent's reply,
    with the reply's echo removed (espeak-ng's "mm-hm" is 0.68 s: too long for one).

    `meta["backchannel_s"]` is the word's length; it is no turn of its own, and a listener
    should not stop the agent for it (see `Endpointer.speech_s`).
    """
    clip = speak(word, "en-us", speed=190)
    x = _place(round(4.0 * RATE), [(2.0, clip)])
    return Scene(
        f"backchannel {word!r}",
        to_pcm16(x),
        meta={"backchannel_at_s": 2.0, "backchannel_s": len(clip) / RATE},
    )


class LoudspeakerRoom:
    """A live loudspeaker and microphone for a whole voice loop, frame by frame.

    `microphone()` yields 20 ms frames of `user` (16 kHz PCM16) plus the echo of what was
    given to `play` so far: 6 dB down, 60 ms late, with the reverb of the echo scenes.
    Wire `play` as the sink (any rate; resampled to 16 kHz) and `microphone()` as a source
    that is not real time, and the agent hears itself as it would in a room.
    `pauses()` counts how often playback stopped and went on again.
    """

    def __init__(
        self, user: bytes, *, seed: int = 0, delay_ms: float = 60.0, gain_db: float = -6.0
    ) -> None:
        user += bytes(-len(user) % 640)
        self.user = np.frombuffer(user, dtype="<i2").astype(np.float64)
        rng = np.random.default_rng(seed)
        k = np.arange(round(0.25 * RATE))
        tail = rng.standard_normal(len(k)) * np.exp(-k / (0.04 * RATE)) * 0.08
        tail[0] = 1.0
        self.tail = tail / np.sqrt(np.sum(tail**2))
        self.delay = round(delay_ms / 1000 * RATE)
        self.gain = _db(gain_db)
        self.played = np.zeros(0)  # at 16 kHz, one sample per microphone sample so far
        self.frame = 0
        self.written_at: list[int] = []  # the microphone frame each played frame came on
        self.frames: list[bytes] = []

    async def microphone(self) -> AsyncIterator[bytes]:
        n = 320  # 20 ms
        for start in range(0, len(self.user), n):
            end = start + n
            self.frame = start // n
            if len(self.played) < end:  # the speaker is silent meanwhile
                self.played = np.concatenate([self.played, np.zeros(end - len(self.played))])
            echo = np.zeros(n)
            first = max(start - self.delay, 0)  # echo samples m in [first, end - delay)
            if end - self.delay > first:
                lo = max(0, first - len(self.tail) + 1)
                wet = np.convolve(self.played[lo : end - self.delay], self.tail)
                echo[n - (end - self.delay - first) :] = wet[first - lo : end - self.delay - lo]
            mixed = self.user[start:end] + echo * self.gain
            yield np.clip(mixed, -32768, 32767).astype("<i2").tobytes()

    def play(self, frame: bytes, sample_rate: int = 24000) -> None:
        from langchain_openrouter_audio.voice.resample import resample_pcm16

        self.frames.append(frame)
        self.written_at.append(self.frame)
        pcm = resample_pcm16(frame, sample_rate, RATE)
        self.played = np.concatenate([self.played, np.frombuffer(pcm, "<i2").astype(np.float64)])

    def pauses(self) -> int:
        at = self.written_at
        return sum(b - a > 1 for a, b in itertools.pairwise(at))


@dataclass(frozen=True)
class Heard:
    """One utterance an endpointer returned: where it lies in the scene, when it came out."""

    start_s: float
    end_s: float
    returned_at_s: float

    def covers(self, span: tuple[float, float], slack_s: float = 0.0) -> bool:
        """Whether it holds all the words of `span`."""
        return self.start_s <= span[0] + slack_s and self.end_s >= span[1] - slack_s


def listen(endpointer: Endpointer, scene: Scene, chunk_ms: int = 20) -> list[Heard]:
    """Feed `scene` to `endpointer` in `chunk_ms` pieces, as a microphone would.

    `returned_at_s` is stream time: how much audio had been pushed when the utterance came
    back, so `returned_at_s - speech end` is the endpointing delay, on any machine.
    """
    step = 2 * RATE * chunk_ms // 1000
    heard: list[Heard] = []
    pcm = scene.pcm
    for pos in range(0, len(pcm), step):
        for utterance in endpointer.push(pcm[pos : pos + step]):
            heard.append(_locate(pcm, utterance, min(len(pcm), pos + step) / 2 / RATE))
    heard += [_locate(pcm, u, len(pcm) / 2 / RATE) for u in endpointer.flush()]
    return heard


def _locate(pcm: bytes, utterance: bytes, now_s: float) -> Heard:
    start = pcm.find(utterance[: min(len(utterance), 9600)])
    if start < 0 or start % 2:
        raise ValueError("the utterance is not a slice of the scene")
    return Heard(start / 2 / RATE, (start + len(utterance)) / 2 / RATE, now_s)
