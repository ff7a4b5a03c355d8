"""The C `audioop` module: stdlib up to Python 3.12, `audioop-lts` from 3.13."""

from __future__ import annotations

import warnings
from types import ModuleType

__all__ = ["load_audioop"]

_MODULE: ModuleType | None = None


def load_audioop() -> ModuleType:
    """Import `audioop` once, quietly, or say which extra installs it."""
    global _MODULE
    if _MODULE is None:
        try:
            with warnings.catch_warnings():
                # 3.11/3.12 warn on import; the module itself is kept alive by audioop-lts.
                warnings.simplefilter("ignore", DeprecationWarning)
                import audioop
        except ImportError as err:  # pragma: no cover - Python 3.13+ without the extra
            msg = (
                "resampling needs audioop (audioop-lts on Python 3.13+): "
                "pip install 'langchain-openrouter-audio[voice]'"
            )
            raise ImportError(msg) from err
        _MODULE = audioop
    return _MODULE
