"""The benchmark harness runs end to end: a recorded reply served from its own process, the
floor and the client timed in pairs, one module through the command line. No timing is
asserted; the figures are checked for shape and the audio for equality."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from benchmarks import harness
from benchmarks.floor import floor_invoke
from langchain_openrouter_audio import ChatOpenRouterAudio, audio_pcm
from langchain_openrouter_audio.testing import OpenRouterTestServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_replayed_reply_is_timed_against_the_floor() -> None:
    with OpenRouterTestServer(api_key=harness.KEY) as server:
        sse = harness.record(server, harness.speech(1), harness.request_body())
    with harness.replay_process({"s": harness.Payload.of(sse)}) as (url, _path):
        base = harness.replay_url(url, "s")
        model = ChatOpenRouterAudio(api_key=harness.KEY, base_url=base, model=harness.MODEL)
        with httpx.Client(timeout=30) as client:
            endpoint, body = f"{base}/chat/completions", harness.request_body()
            floor = lambda: floor_invoke(client, endpoint, harness.headers(), body)  # noqa: E731
            times = harness.paired({"floor": floor, "client": lambda: model.invoke("hi")}, 2)
            wav, transcript = floor()
        assert audio_pcm(model.invoke("hi")) == harness.pcm_of(1) == wav[44:]
        assert transcript == harness.transcript_of(1)
        model.close()
    assert [len(t) for t in times.values()] == [2, 2]
    row = {"case": "1 s", "floor": harness.med(times["floor"])}
    table = harness.markdown("Spoken", [{**row, "client / floor": 1.25}])
    assert "| case | floor | client / floor |" in table
    assert "| 1 s | " in table
    assert table.rstrip().endswith("| 1.25x |")


@pytest.mark.timeout(120)
def test_command_line_runs_one_module_and_writes_only_where_asked(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--only", "voice_dsp", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| work | x real time |" in proc.stdout
    assert "| mu-law encode, 8 kHz |" in proc.stdout
    results = json.loads(out.with_suffix(".json").read_text())
    rows = next(iter(results["modules"]["voice_dsp"].values()))
    assert all(row["x real time"] > 0 for row in rows)
    assert out.with_suffix(".md").read_text().count("###") == 1
