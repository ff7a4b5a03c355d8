"""The `openrouter_server` fixture works with no conftest (the pytest11 entry point)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.docs.test_code_blocks import ROOT, extract_blocks


def test_fixture_from_the_docs_runs_with_no_conftest(tmp_path: Path) -> None:
    [block] = [b for b in extract_blocks(ROOT / "docs" / "testing.md") if "def test_" in b.code]
    (tmp_path / "test_my_agent.py").write_text(block.code, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_agent.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
