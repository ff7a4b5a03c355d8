"""Browser audio (webm/ogg with opus, encoded here by PyAV itself) converted to WAV."""

from __future__ import annotations

import base64
import builtins
import io
import sys
import wave
from typing import Any

import pytest

from langchain_openrouter_audio._transcode import needs_transcode, transcode_to_wav
from tests._helpers import spoken_pcm

av = pytest.importorskip("av", reason="PyAV (the [transcode] extra) is not installed")

ENCODE_RATE = 48_000


def encode_opus(pcm: bytes, container_format: str) -> bytes:
    """Encode 48 kHz PCM16 mono as opus in a webm or ogg container, like a browser."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as out:
        stream = out.add_stream("libopus", rate=ENCODE_RATE, layout="mono")
        frame_samples = 960  # 20 ms, opus' usual frame
        step = frame_samples * 2
        pts = 0
        for start in range(0, len(pcm), step):
            piece = pcm[start : start + step]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(piece) // 2)
            frame.planes[0].update(piece)
            frame.sample_rate = ENCODE_RATE
            frame.pts = pts
            pts += len(piece) // 2
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def speech_48k() -> bytes:
    return spoken_pcm("The quick brown fox jumps over the lazy dog.", ENCODE_RATE)


@pytest.mark.parametrize(
    ("container_format", "mime_type", "magic"),
    [
        ("webm", "audio/webm;codecs=opus", b"\x1a\x45\xdf\xa3"),
        ("ogg", "audio/ogg; codecs=opus", b"OggS"),
    ],
)
def test_opus_clip_becomes_wav(
    speech_48k: bytes, container_format: str, mime_type: str, magic: bytes
) -> None:
    clip = encode_opus(speech_48k, container_format)
    assert clip.startswith(magic)
    assert needs_transcode(mime_type)

    wav_bytes = transcode_to_wav(clip, mime_type)

    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getframerate() == 24_000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        frames = wav.getnframes()
        pcm = wav.readframes(frames)
    expected = len(speech_48k) // 2 // 2  # 48 kHz samples -> 24 kHz frames
    # Opus adds a little priming/padding, never much: a 20 ms frame either way at most.
    assert abs(frames - expected) <= 24_000 * 0.03
    # The speech survives: its loudness is in the same range as the original's.
    assert rms(pcm) > 0.3 * rms(speech_48k)


def test_other_rate(speech_48k: bytes) -> None:
    wav_bytes = transcode_to_wav(encode_opus(speech_48k, "webm"), "audio/webm", sample_rate=16_000)
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getframerate() == 16_000
        assert abs(wav.getnframes() - len(speech_48k) // 6) <= 16_000 * 0.03


def test_corrupt_clip_is_value_error(speech_48k: bytes) -> None:
    clip = encode_opus(speech_48k, "webm")
    with pytest.raises(ValueError, match=r"could not be decoded|no audio"):
        transcode_to_wav(b"\x1a\x45\xdf\xa3" + b"\x00garbage" * 50, "audio/webm")
    with pytest.raises(ValueError, match="empty"):
        transcode_to_wav(b"", "audio/ogg")
    with pytest.raises(ValueError, match="cannot transcode"):
        transcode_to_wav(clip, "audio/wav")


def test_missing_pyav_names_the_extra(monkeypatch: pytest.MonkeyPatch, speech_48k: bytes) -> None:
    clip = encode_opus(speech_48k[: ENCODE_RATE * 2], "ogg")
    real_import = builtins.__import__

    def no_av(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "av" or name.startswith("av."):
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "av")
    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(ImportError, match=r"\[transcode\]"):
        transcode_to_wav(clip, "audio/ogg")


def rms(pcm: bytes) -> float:
    import array

    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) // 2 * 2])
    return (sum(s * s for s in samples) / max(len(samples), 1)) ** 0.5


@pytest.mark.parametrize("wrapped", [False, True])
def test_webm_block_is_sent_as_wav(speech_48k: bytes, wrapped: bool) -> None:
    from langchain_core.messages import HumanMessage

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply

    clip = encode_opus(speech_48k, "webm")
    encode = base64.encodebytes if wrapped else base64.b64encode  # MIME style: a newline every 76
    block = {
        "type": "audio",
        "base64": encode(clip).decode(),
        "mime_type": "audio/webm;codecs=opus",
    }
    with OpenRouterTestServer(api_key="k") as server:
        server.enqueue(text_reply("Heard you."))
        llm = ChatOpenRouterAudio(base_url=server.base_url, api_key="k", modalities=["text"])
        assert llm.invoke([HumanMessage(content=[block])]).text == "Heard you."
        llm.close()
    (part,) = [
        p
        for p in server.requests[0].json["messages"][-1]["content"]
        if p.get("type") == "input_audio"
    ]
    assert part["input_audio"]["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
        assert abs(wav.getnframes() - len(speech_48k) // 4) <= 24_000 * 0.03


@pytest.mark.parametrize("container", ["webm", "ogg"])
def test_browser_recording_bytes_make_a_block(speech_48k: bytes, container: str) -> None:
    from langchain_openrouter_audio import audio_block_from_bytes

    block = audio_block_from_bytes(encode_opus(speech_48k, container))
    assert block["mime_type"] == f"audio/{container}"
    assert needs_transcode(block["mime_type"])


def test_a_small_clip_of_long_silence_is_refused_while_decoding() -> None:
    # 20 s of opus silence is a few KB; decoded it would be 960 KB of PCM: over the limit.
    from langchain_core.messages import HumanMessage

    from langchain_openrouter_audio import ChatOpenRouterAudio

    clip = encode_opus(bytes(48_000 * 2 * 20), "webm")
    block = {"type": "audio", "base64": base64.b64encode(clip).decode(), "mime_type": "audio/webm"}
    llm = ChatOpenRouterAudio(
        api_key="k", base_url="http://127.0.0.1:9/api/v1", max_audio_bytes=100_000
    )
    with pytest.raises(ValueError, match=r"audio block 0: .*max_audio_bytes=100000"):
        llm.invoke([HumanMessage(content=[block])])
