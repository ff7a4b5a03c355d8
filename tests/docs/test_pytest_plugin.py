"""The `openrouter_server` fixture works with no conftest (the pytest11 entry point)."""

from __future__ import annotations

from pathlib import Path

from tests._helpers import ROOT, run_offline
from tests.docs.test_code_blocks import extract_blocks


def test_fixture_from_the_docs_runs_with_no_conftest(tmp_path: Path) -> None:
    [block] = [b for b in extract_blocks(ROOT / "docs" / "testing.md") if "def test_" in b.code]
    (tmp_path / "test_my_agent.py").write_text(block.code, encoding="utf-8")
    run = run_offline(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_agent.py"], tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
