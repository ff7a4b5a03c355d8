"""`soxr` and `numpy`, imported on first use: the `[voice]` extra installs them.

They stay out of the core install (numpy alone is tens of MB). Without them the resampler
falls back to linear interpolation and says so once, naming the extra.
"""

from __future__ import annotations

import warnings
from types import ModuleType

__all__ = ["MISSING_SOXR_MESSAGE", "ResamplingQualityWarning", "load_soxr"]

MISSING_SOXR_MESSAGE = (
    "soxr is not installed: resampling falls back to linear interpolation without an "
    "anti-alias filter (tones above the new Nyquist fold back; not telephone-grade). "
    "Install the voice extra: pip install 'langchain-openrouter-audio[voice]'"
)


class ResamplingQualityWarning(UserWarning):
    """Resampling runs without its anti-alias filter because `soxr` is missing."""


_MODULES: tuple[ModuleType, ModuleType] | None = None
_MISSING = False  # tried, failed and warned: later calls stay quiet and cheap


def load_soxr() -> tuple[ModuleType, ModuleType] | None:
    """`(numpy, soxr)`, or None (with one `ResamplingQualityWarning` per process)."""
    global _MODULES, _MISSING
    if _MODULES is not None or _MISSING:
        return _MODULES
    try:
        import numpy
        import soxr  # type: ignore[import-untyped]
    except ImportError:
        _MISSING = True
        warnings.warn(MISSING_SOXR_MESSAGE, ResamplingQualityWarning, stacklevel=3)
        return None
    _MODULES = (numpy, soxr)
    return _MODULES
