from __future__ import annotations

import random

import pytest

from langchain_openrouter_audio.voice import FrameBuffer


@pytest.mark.parametrize(
    ("rate", "ms", "size"), [(24000, 20, 960), (8000, 20, 320), (16000, 30, 960)]
)
def test_frame_size(rate: int, ms: int, size: int) -> None:
    assert FrameBuffer(rate, ms).frame_bytes == size


def test_pieces_of_any_size_give_the_same_frames() -> None:
    data = bytes(random.Random(0).randrange(256) for _ in range(10_001))
    buffer = FrameBuffer()
    rng = random.Random(1)
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 2500)
        frames += buffer.push(data[pos : pos + step])
        pos += step
    assert all(len(f) == 960 for f in frames)
    assert b"".join(frames) == data[: len(frames) * 960]
    assert len(frames) == len(data) // 960
    tail = buffer.flush()
    assert tail == data[len(frames) * 960 :] + bytes(960 - len(data) % 960)
    assert buffer.flush() == b""


def test_exact_frames_leave_nothing() -> None:
    buffer = FrameBuffer(8000, 20)
    assert buffer.push(bytes(640)) == [bytes(320), bytes(320)]
    assert buffer.flush() == b""


def test_rejects_fractional_frames() -> None:
    with pytest.raises(ValueError, match="whole number"):
        FrameBuffer(44100, 15)  # 661.5 samples
