"""Every ```python block of README.md and docs/**/*.md runs, offline, as a user would paste it.

Blocks of one page run in order in one namespace (a later block may use an earlier
one's names), in a temporary directory holding the shipped spoken clips
(`question.wav`, ...), with `OPENROUTER_BASE_URL` and `OPENROUTER_API_KEY` pointing
`ChatOpenRouterAudio()` at the local OpenRouter server. The server answers like a
model would (examples/_offline.py): it calls a bound tool, then speaks a shipped clip.
A block preceded by `<!-- not-run: reason -->` is skipped (it needs a microphone,
speakers or a real key). A failure names the page and the line of the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import re
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests._helpers import ASSETS, ROOT, models_made

MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the first line of code
    code: str
    skip_reason: str | None


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


def _load_offline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_offline", ROOT / "examples" / "_offline.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _models_closed_afterwards() -> Iterator[None]:
    """Close every model a page makes (or copies) when the page ends.

    A user's script just exits; here a dropped model's pooled sockets would be
    reported as unclosed (the suite turns ResourceWarning into an error).
    """
    with models_made() as created:
        try:
            yield
        finally:
            for model in created:
                model.close()
                asyncio.run(model.aclose())


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_page(path: Path) -> int:
    """Run the page's blocks in order; return how many ran. Fails with the block's line."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    ran = 0
    with _models_closed_afterwards():
        for block in extract_blocks(path):
            if block.skip_reason is not None:
                continue
            # Leading newlines make tracebacks show the line numbers of the Markdown file.
            source = "\n" * (block.line - 1) + block.code
            try:
                exec(compile(source, str(path), "exec"), namespace)
            except BaseException as err:
                detail = "".join(traceback.format_exception(err))
                where = f"{_shown(path)}:{block.line}"
                raise AssertionError(f"code block at {where} failed:\n{detail}") from None
            ran += 1
    namespace.clear()
    gc.collect()  # what the page left unclosed warns here, inside the test
    return ran


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A temp cwd with the spoken clips, and env vars pointing at an answering local server."""
    offline = _load_offline()
    for clip in ASSETS.glob("*.wav"):
        shutil.copy(clip, tmp_path / clip.name)
    monkeypatch.chdir(tmp_path)
    with offline.offline_server() as server:
        monkeypatch.setenv("OPENROUTER_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENROUTER_API_KEY", server.api_key)
        yield server


PAGES = [page for page in MARKDOWN if extract_blocks(page)]


@pytest.mark.parametrize("path", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_code_blocks_run(path: Path, offline_env: Any) -> None:
    blocks = extract_blocks(path)
    assert run_page(path) == sum(b.skip_reason is None for b in blocks)


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
    with pytest.raises(AssertionError, match=r"page.md:6 failed") as info:
        run_page(page)
    assert f'File "{page}", line 7' in str(info.value)
