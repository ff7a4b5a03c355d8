"""`TokenBucket`, the per-connection message rate bound, on a clock the test drives."""

from __future__ import annotations

import pytest

from langchain_openrouter_audio.voice._rate import TokenBucket


def test_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(per_s=10.0, burst=5)
    assert [bucket.take(now=0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(now=0.1)  # 0.1 s at 10 per second: one more
    assert not bucket.take(now=0.1)
    # A long pause refills the burst, never more.
    assert [bucket.take(now=100.0) for _ in range(6)] == [True] * 5 + [False]


def test_a_steady_pace_under_the_rate_is_never_refused() -> None:
    bucket = TokenBucket(per_s=10.0, burst=1)
    assert all(bucket.take(now=i * 0.11) for i in range(1000))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="per_s > 0 and burst >= 1"):
        TokenBucket(per_s=0, burst=1)
    with pytest.raises(ValueError, match="per_s > 0 and burst >= 1"):
        TokenBucket(per_s=1, burst=0)
