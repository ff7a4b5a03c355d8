"""Every ```python block of README.md and docs/**/*.md runs offline, exactly as a user would.

The README's one command starts the local OpenRouter server
(``python -m langchain_openrouter_audio.testing``) and prints two ``export`` lines; the
user pastes them and runs a block. So does this test: it starts the command in a
subprocess, reads the exports it prints, and runs each block on its own, in a fresh
Python process, in a fresh empty folder, with only those variables set. No block may
lean on an earlier one, on a file it did not make, or leave a socket unclosed
(``ResourceWarning`` under ``-W default``). A block preceded by
``<!-- not-run: reason -->`` is skipped (it needs a microphone, speakers or a real key).
A failure names the page and the line of the block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._helpers import ROOT

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")
_EXPORT = re.compile(r"^export (?P<name>OPENROUTER_[A-Z_]+)=(?P<value>\S+)$")

# Runs one block: compiled under the Markdown file's name, so tracebacks point into it.
_RUNNER = (
    "import pathlib, sys\n"
    "code = pathlib.Path(sys.argv[1]).read_text(encoding='utf-8')\n"
    "exec(compile(code, sys.argv[2], 'exec'), {'__name__': '__main__'})\n"
)
BLOCK_TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the first line of code
    code: str
    skip_reason: str | None

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with their line numbers and skip markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, lang = match["indent"], match["lang"]
        start = i + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        if lang in ("python", "py"):
            previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            marker = _NOT_RUN.match(previous)
            code = "\n".join(
                ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start:end]
            )
            blocks.append(Block(path, start + 1, code, marker["reason"] if marker else None))
        i = end + 1
    return blocks


def user_env(exports: dict[str, str]) -> dict[str, str]:
    """The environment of a user who pasted `exports` (and has no key of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(exports, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def run_block(block: Block, env: dict[str, str], workdir: Path) -> None:
    """Run `block` in a new process, in an empty `workdir/run`; fail naming page and line."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "block.py"
    # Leading newlines make tracebacks show the line numbers of the Markdown file.
    script.write_text("\n" * (block.line - 1) + block.code + "\n", encoding="utf-8")
    cwd = workdir / "run"
    cwd.mkdir()
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", _RUNNER, str(script), str(block.path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    output = f"--- stdout\n{run.stdout}--- stderr\n{run.stderr}"
    if run.returncode != 0:
        raise AssertionError(f"code block at {block.where} failed:\n{output}")
    if "ResourceWarning" in run.stderr:
        raise AssertionError(f"code block at {block.where} left something unclosed:\n{output}")


@pytest.fixture(scope="module")
def exports() -> Iterator[dict[str, str]]:
    """Start the README's server command; the variables it tells the user to export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "langchain_openrouter_audio.testing"],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    found: dict[str, str] = {}
    printed: list[str] = []
    timer = threading.Timer(60, server.kill)  # a server that never prints fails, not hangs
    timer.start()
    try:
        for line in server.stdout:
            printed.append(line)
            if match := _EXPORT.match(line.strip()):
                found[match["name"]] = match["value"]
            if len(found) == 2:
                break
    finally:
        timer.cancel()
    try:
        assert set(found) == {"OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"}, "".join(printed)
        yield found
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert server.returncode == 0, "the server command did not stop cleanly on SIGTERM"


BLOCKS = [block for page in MARKDOWN for block in extract_blocks(page)]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_code_block_runs(block: Block, exports: dict[str, str], tmp_path: Path) -> None:
    if block.skip_reason is not None:
        pytest.skip(block.skip_reason)
    run_block(block, user_env(exports), tmp_path)


def test_extractor_finds_blocks_lines_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n<!-- not-run: needs a mic -->\n```python\nmic()\n```\n"
        "- item\n\n  ```python\n  y = x + 1\n  ```\n```bash\nls\n```\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(page)
    assert [(b.line, b.code, b.skip_reason) for b in blocks] == [
        (4, "x = 1", None),
        (9, "mic()", "needs a mic"),
        (14, "y = x + 1", None),
    ]


def test_a_failing_block_names_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nok = 1\n```\n\n```python\n\nraise ValueError('boom')\n```\n")
    first, second = extract_blocks(page)
    run_block(first, user_env({}), tmp_path / "first")
    with pytest.raises(AssertionError, match=r"page.md:6 failed") as info:
        run_block(second, user_env({}), tmp_path / "second")
    assert f'File "{page}", line 7' in str(info.value)
    assert "ValueError: boom" in str(info.value)


def test_a_block_sees_no_other_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\nopen('made.txt', 'w').close()\n```\n\n```python\nx\n```\n")
    first, second = extract_blocks(page)
    run_block(first, user_env({}), tmp_path / "first")
    with pytest.raises(AssertionError, match="NameError: name 'x' is not defined"):
        run_block(second, user_env({}), tmp_path / "second")
    assert not (tmp_path / "second" / "run" / "made.txt").exists()


def test_an_unclosed_socket_fails_the_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nimport socket\n\nleaked = socket.socket()\ndel leaked\n```\n")
    [block] = extract_blocks(page)
    with pytest.raises(AssertionError, match="left something unclosed"):
        run_block(block, user_env({}), tmp_path / "w")
