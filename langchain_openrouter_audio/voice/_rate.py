"""`TokenBucket`: how many events a connection may send per second, with a burst."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows `burst` events at once and `per_s` events per second on average.

    The caller passes the clock (``time.monotonic()``), so one bucket serves any clock.

    Examples:
        >>> bucket = TokenBucket(per_s=2.0, burst=3)
        >>> [bucket.take(now=0.0) for _ in range(4)]
        [True, True, True, False]
        >>> bucket.take(now=0.5)  # half a second refills one token
        True
    """

    def __init__(self, *, per_s: float, burst: int) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError("need per_s > 0 and burst >= 1")
        self._per_s = per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    def take(self, *, now: float) -> bool:
        """One event at `now`: True if it is within the bound (it is counted), else False."""
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._per_s)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
