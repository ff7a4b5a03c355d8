"""End-of-turn detection with smart-turn v3 (BSD-2), an audio model: has the user finished?

The model is a Whisper-tiny encoder fine-tuned to tell a finished turn ("...tomorrow
evening.") from a speaker pausing mid-sentence ("I would like to book a table for...")
from intonation and rhythm, in any of its 23 languages. It hears the last 8 s as an
80-band log-mel spectrogram and returns a probability. It needs numpy and onnxruntime
(the `[turn]` extra) and the model file: pass its path, or install `pipecat-ai`, whose
wheel ships it (`pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`, 8.7 MB).
Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

__all__ = ["SmartTurnDetector", "bundled_smart_turn_model"]

_PACKAGE_PATH = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")


def bundled_smart_turn_model() -> Path | None:
    """The smart-turn v3.2 ONNX file inside an installed `pipecat-ai`, or None.

    Found without importing pipecat (which would pull in its dependencies).
    """
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*_PACKAGE_PATH)
        if path.is_file():
            return path
    return None


def _import_runtime() -> tuple[Any, Any]:
    try:
        import numpy
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]
    except ImportError as err:
        msg = (
            "smart-turn needs numpy and onnxruntime: pip install 'langchain-openrouter-audio[turn]'"
        )
        raise ImportError(msg) from err
    return numpy, onnxruntime


class SmartTurnDetector:
    """A `TurnDetector` on the smart-turn v3 ONNX model, run on the CPU.

    One call takes about 40 ms of one core (the model sees 8 s whatever the length); the
    `Endpointer` asks once per pause, after `min_endpointing_delay_ms` of silence.

    <!-- not-run: needs the model file -->
    ```python
    from langchain_openrouter_audio.voice import Endpointer, SmartTurnDetector

    endpointer = Endpointer(16000, turn_detector=SmartTurnDetector())  # pipecat-ai installed
    endpointer = Endpointer(16000, turn_detector=SmartTurnDetector("smart-turn-v3.2-cpu.onnx"))
    ```
    """

    def __init__(
        self, model_path: str | os.PathLike[str] | None = None, *, threads: int = 1
    ) -> None:
        np, ort = _import_runtime()
        path = Path(model_path) if model_path is not None else bundled_smart_turn_model()
        if path is None:
            msg = (
                "no smart-turn model: pass model_path= (an smart-turn-v3 .onnx file) "
                "or install pipecat-ai, whose wheel ships one"
            )
            raise FileNotFoundError(msg)
        if not path.is_file():
            raise FileNotFoundError(f"no smart-turn model at {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._np = np
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        (first,) = self._session.get_inputs()
        self._input = first.name
        self.model_path = path

    def probability(self, pcm: bytes, sample_rate: int) -> float:
        """How likely the turn in `pcm` (PCM16 mono) is finished, 0..1."""
        from langchain_openrouter_audio.voice._log_mel import RATE, log_mel
        from langchain_openrouter_audio.voice.resample import resample_pcm16

        if sample_rate != RATE:
            pcm = resample_pcm16(pcm, sample_rate, RATE)
        np = self._np
        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768
        features = log_mel(audio)[None, :, :]
        (out,) = self._session.run(None, {self._input: features})
        return float(np.asarray(out).reshape(-1)[0])
