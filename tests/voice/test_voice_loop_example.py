"""examples/voice_loop.py runs offline, as CI runs it, and its interrupted turn keeps only
the heard words."""

from __future__ import annotations

import ast
import re
import wave
from pathlib import Path

from tests._helpers import EXAMPLES, run_offline

EXAMPLE = EXAMPLES / "voice_loop.py"


def test_voice_loop_offline(tmp_path: Path) -> None:
    run = run_offline([str(EXAMPLE)], tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "interrupted after" in out.split("turn 2:")[0]
    heard = [ast.literal_eval(h) for h in re.findall(r"^  heard: (.*)$", out, re.M)]
    full = ast.literal_eval(re.search(r"^full first answer: (.*)$", out, re.M)[1])  # type: ignore[index]
    kept = [ast.literal_eval(a) for a in re.findall(r"^  assistant: ('.*'|\".*\")$", out, re.M)]
    # The first answer was cut: the conversation holds the heard words, not the rest.
    assert heard[0]
    assert full.startswith(heard[0])
    assert len(heard[0]) < len(full)
    assert kept == [heard[0], heard[1]]
    assert full not in out.split("conversation kept:")[1]
    # What was played is on disk: the interrupted reply is shorter than the whole answer.
    with wave.open(str(tmp_path / "examples-output" / "reply_1.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        played_s = w.getnframes() / 24000
    heard_s = float(re.search(r"interrupted after ([\d.]+) s", out)[1])  # type: ignore[index]
    assert abs(played_s - heard_s) < 0.03
    assert (tmp_path / "examples-output" / "reply_2.wav").exists()
    assert re.search(r"^cost: \$0\.\d+ over 3 requests", out, re.M)
    assert re.search(r"^turn 1: latency \d+ ms", out, re.M)
