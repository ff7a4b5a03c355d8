"""Property-based checks (hypothesis): chunking, message conversion, audio input validation."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_openrouter_audio._assembler import ReplyAssembler
from langchain_openrouter_audio._request import convert_messages
from langchain_openrouter_audio._sse import SSEDecoder
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import (
    Reply,
    speech_reply,
    text_reply,
    tone_pcm16,
)
from tests._helpers import capture_sse, wav_pcm

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: failures are reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def _stream(kind: str) -> bytes:
    if kind == "speech":
        reply = speech_reply(
            tone_pcm16(0.05, 440.0),
            "héllo wörld ✓ 日本",
            audio_piece_bytes=401,
            text_piece_chars=3,
            interleave=True,
            crlf=True,
            comments=3,
        )
        return capture_sse(reply)
    if kind == "tools":
        calls = [
            {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Zürich"}'},
            {"id": "call_b", "name": "get_time", "arguments": '{"tz": "Asia/Tōkyō"}'},
        ]
        return capture_sse(Reply(tool_calls=calls, comments=2))
    text_body = {
        "model": "openai/gpt-audio-mini",
        "modalities": ["text"],
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                ],
            }
        ],
    }
    return capture_sse(text_reply("plain téxt ✓", text_piece_chars=2), body=text_body)


def _assemble(pieces: list[bytes], *, list_content: bool) -> dict[str, Any]:
    decoder = SSEDecoder()
    asm = ReplyAssembler(list_content=list_content)
    for piece in pieces:
        for _event, data in decoder.feed(piece):
            if data == b"[DONE]":
                continue
            asm.feed(json.loads(data))
    assert asm.complete
    msg = asm.finish()
    return {
        "content": msg.content,
        "tool_calls": msg.tool_calls,
        "invalid_tool_calls": msg.invalid_tool_calls,
        "usage": msg.usage_metadata,
        "finish": msg.response_metadata.get("finish_reason"),
        "id": msg.response_metadata.get("id"),
    }


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("kind", ["speech", "tools", "text"])
@PROPERTY
@given(cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=60))
def test_any_chunking_gives_the_same_message(kind: str, cuts: list[int]) -> None:
    raw = _stream(kind)
    list_content = kind == "speech"
    expected = _assemble([raw], list_content=list_content)
    assert _assemble(_split(raw, cuts), list_content=list_content) == expected


def test_reference_messages_are_what_was_scripted() -> None:
    speech = _assemble([_stream("speech")], list_content=True)
    assert speech["content"][0] == {"type": "text", "text": "héllo wörld ✓ 日本"}
    wav = base64.b64decode(speech["content"][1]["base64"])
    assert wav_pcm(wav) == tone_pcm16(0.05, 440.0)
    tools = _assemble([_stream("tools")], list_content=False)
    assert [(c["name"], c["args"]) for c in tools["tool_calls"]] == [
        ("get_weather", {"city": "Zürich"}),
        ("get_time", {"tz": "Asia/Tōkyō"}),
    ]
    assert _assemble([_stream("text")], list_content=False)["content"] == "plain téxt ✓"


# -- convert_messages on random conversations ---------------------------------------------

_text = st.text(max_size=40)
_name = st.none() | st.text(max_size=10)
_text_block = st.builds(lambda t: {"type": "text", "text": t}, _text)
_junk_block = st.dictionaries(
    st.sampled_from(["type", "text", "base64", "mime_type", "url", "data", "input_audio"]),
    st.none() | st.text(max_size=10) | st.integers(),
    max_size=4,
)
_human_content = _text | st.lists(_text | _text_block, max_size=4)


@st.composite
def _tool_calls(draw: st.DrawFn) -> list[dict[str, Any]]:
    return draw(
        st.lists(
            st.builds(
                lambda name, args, cid: {"name": name, "args": args, "id": cid},
                st.text(min_size=1, max_size=10),
                st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers()),
                st.text(min_size=1, max_size=10),
            ),
            max_size=2,
        )
    )


_message = st.one_of(
    st.builds(lambda c, n: HumanMessage(content=c, name=n), _human_content, _name),
    st.builds(lambda c: SystemMessage(content=c), _text),
    st.builds(lambda c, tc: AIMessage(content=c, tool_calls=tc), _text, _tool_calls()),
    st.builds(lambda c, i: ToolMessage(content=c, tool_call_id=i), _text, st.text(max_size=10)),
)


@PROPERTY
@given(messages=st.lists(_message, max_size=8))
def test_random_conversations_convert(messages: list[BaseMessage]) -> None:
    out = convert_messages(messages, max_audio_bytes=10**6)
    assert len(out) == len(messages)
    roles = {"human": "user", "system": "system", "ai": "assistant", "tool": "tool"}
    for message, turn in zip(messages, out, strict=True):
        assert turn["role"] == roles[message.type]
    # The body must survive the transport's encoding.
    json.dumps(out, ensure_ascii=False).encode("utf-8")


@PROPERTY
@given(blocks=st.lists(_text_block | _junk_block, min_size=1, max_size=4))
def test_random_content_blocks_convert_or_raise_value_error(blocks: list[dict[str, Any]]) -> None:
    try:
        out = convert_messages([HumanMessage(content=blocks)], max_audio_bytes=10**6)
    except ValueError:
        return
    assert len(out) == 1


# -- random bytes as audio ------------------------------------------------------------------

_REAL_WAV = pcm16_to_wav(tone_pcm16(0.01, 300.0))


def _audio_message(data: bytes) -> HumanMessage:
    block = {"type": "audio", "base64": base64.b64encode(data).decode(), "mime_type": "audio/wav"}
    return HumanMessage(content=[block])


_WAV_FORMAT_TAGS = {1, 3, 6, 7, 0xFFFE}  # PCM, IEEE float, A-law, mu-law, extensible


def _is_real_wav(data: bytes) -> bool:
    """A RIFF/WAVE file whose `fmt ` chunk describes playable audio, followed by `data`."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos, fmt_ok, seen_data = 12, False, False
    while pos + 8 <= len(data) and not seen_data:
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if size < 16 or len(body) < 16:
                return False
            tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", body)
            fmt_ok = (
                tag in _WAV_FORMAT_TAGS and channels >= 1 and rate > 0 and bits > 0 and align > 0
            )
        elif chunk_id == b"data":
            seen_data = True
        pos += 8 + size + (size & 1)
    return fmt_ok and seen_data


def _converts(data: bytes) -> bool:
    try:
        convert_messages([_audio_message(data)], max_audio_bytes=10**6)
    except ValueError:
        return False
    return True


@PROPERTY
@given(data=st.binary(max_size=512))
def test_random_bytes_are_refused_as_wav(data: bytes) -> None:
    if _converts(data):
        assert _is_real_wav(data)


@PROPERTY
@given(size=st.binary(min_size=4, max_size=4), rest=st.binary(max_size=256))
def test_random_riff_wave_bytes_are_refused_unless_real(size: bytes, rest: bytes) -> None:
    data = b"RIFF" + size + b"WAVE" + rest
    if _converts(data):
        assert _is_real_wav(data)


@PROPERTY
@given(
    cut=st.integers(min_value=0, max_value=len(_REAL_WAV)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=43), st.sampled_from([0, 1, 0xFF])),
        max_size=3,
    ),
)
def test_damaged_wav_is_refused_unless_still_real(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_REAL_WAV[:cut])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    if _converts(bytes(data)):
        assert _is_real_wav(bytes(data)), bytes(data[:44])


def test_real_wav_converts() -> None:
    out = convert_messages([_audio_message(_REAL_WAV)], max_audio_bytes=10**6)
    assert out[0]["content"][0]["input_audio"]["format"] == "wav"


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "what"),
    [
        (20, "<H", 0x1234, "unknown format tag"),
        (22, "<H", 0, "zero channels"),
        (24, "<I", 0, "zero sample rate"),
        (34, "<H", 0, "zero bits per sample"),
    ],
)
def test_wav_with_a_corrupt_fmt_chunk_is_refused(
    offset: int, fmt: str, value: int, what: str
) -> None:
    data = bytearray(_REAL_WAV)
    struct.pack_into(fmt, data, offset, value)
    with pytest.raises(ValueError, match=r"(?i)wav"):
        convert_messages([_audio_message(bytes(data))], max_audio_bytes=10**6)
