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


def encode_silence(seconds: int, container_format: str, codec: str) -> bytes:
    """`seconds` of 48 kHz silence, encoded by PyAV one second at a time (no huge buffer)."""
    buf = io.BytesIO()
    second = bytes(2 * ENCODE_RATE)
    with av.open(buf, mode="w", format=container_format) as out:
        stream = out.add_stream(codec, rate=ENCODE_RATE, layout="mono")
        for i in range(seconds):
            frame = av.AudioFrame(format="s16", layout="mono", samples=ENCODE_RATE)
            frame.planes[0].update(second)
            frame.sample_rate = ENCODE_RATE
            frame.pts = i * ENCODE_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def test_the_default_cap_is_the_chat_models() -> None:
    import inspect

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio._transcode import DEFAULT_MAX_BYTES

    default = inspect.signature(transcode_to_wav).parameters["max_bytes"].default
    assert default == DEFAULT_MAX_BYTES == 20 * 1024 * 1024
    assert ChatOpenRouterAudio.model_fields["max_audio_bytes"].default == DEFAULT_MAX_BYTES


def test_a_direct_call_refuses_a_decompression_bomb_by_default() -> None:
    # 20 minutes of silence in about 200 KB (FLAC in ogg encodes fast; opus packs it
    # smaller still, below): decoded at 24 kHz that is 57.6 MB of PCM. Refused at the
    # 20 MiB default, while decoding, without holding much more than the limit.
    import tracemalloc

    clip = encode_silence(20 * 60, "ogg", "flac")
    assert len(clip) < 250_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="decodes to over") as caught:
            transcode_to_wav(clip, "audio/ogg")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "max_audio_bytes=20971520" in message
    assert "ChatOpenRouterAudio(max_audio_bytes=...)" in message
    assert "transcode_to_wav(..., max_bytes=...)" in message
    assert peak < 2 * 20 * 1024 * 1024  # a full decode holds over 120 MB at its peak


def test_a_direct_call_takes_a_larger_limit_or_none(speech_48k: bytes) -> None:
    clip = encode_opus(bytes(48_000 * 2 * 20), "webm")  # 20 s of opus silence, a few KB
    assert len(clip) < 20_000
    with pytest.raises(ValueError, match=r"over max_audio_bytes=100000 bytes of PCM \(2 s at"):
        transcode_to_wav(clip, "audio/webm", max_bytes=100_000)
    for limit in (None, 2 * 24_000 * 21):
        with wave.open(io.BytesIO(transcode_to_wav(clip, "audio/webm", max_bytes=limit))) as wav:
            assert abs(wav.getnframes() - 24_000 * 20) <= 24_000 * 0.03
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        transcode_to_wav(clip, "audio/webm", max_bytes=0)
