"""The voice notebook runs top to bottom offline (nbclient), with players and transcripts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the dev extra")
nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the dev extra")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "voice_notebook.ipynb"


def _outputs(cell: nbformat.NotebookNode) -> str:
    """A cell's printed text (stream pieces joined as printed) and its rich outputs."""
    printed = "".join(o.get("text", "") for o in cell.get("outputs", []))
    rich = [str(v) for o in cell.get("outputs", []) for v in o.get("data", {}).values()]
    return "\n".join([printed, *rich])


def test_voice_notebook_runs_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute(env=dict(os.environ))
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code)
    text = "\n".join(_outputs(cell) for cell in code)
    assert "No OPENROUTER_API_KEY: running offline" in text
    assert "Tool call: get_weather({'city': 'Paris'})" in text
    assert "It is twenty one degrees and sunny in Paris." in text
    assert "Once upon a time, a little robot learned to sing." in text
    # Inline players: the question, the spoken reply, the agent's answer, the streamed one.
    assert text.count("<audio") >= 4
