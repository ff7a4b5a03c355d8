"""The README's main job: the voice agent example, run as a user would (offline)."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_agent.py"


def test_voice_agent_offline_writes_a_playable_wav(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENROUTER_API_KEY"}
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "No OPENROUTER_API_KEY" in run.stdout
    assert "Tool call: get_weather({'city': 'Paris'})" in run.stdout
    assert "Transcript: It is twenty one degrees and sunny in Paris." in run.stdout
    with wave.open(str(tmp_path / "reply.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.getnframes() > 24000  # over a second of speech
