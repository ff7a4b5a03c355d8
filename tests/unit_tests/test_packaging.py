"""The built distributions: what PyPI shows and what a `pip install` gets.

Builds the wheel and the sdist from this checkout with the build backend `pyproject.toml`
names (without build isolation: hatchling and its readme plugin are in `[dev]`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email import message_from_string
from email.message import Message
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:)[^)\s]+\)")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatch_fancy_pypi_readme", reason="needs the [dev] extra")
    out = tmp_path_factory.mktemp("dist")
    build = (
        "import sys, hatchling.build as b; b.build_wheel(sys.argv[1]); b.build_sdist(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", build, str(out)], cwd=ROOT, check=True)
    return out


@pytest.fixture(scope="module")
def metadata(dist: Path) -> Message:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return message_from_string(zf.read(name).decode("utf-8"))


def test_pypi_description_is_the_readme_without_links_that_cannot_resolve(
    metadata: Message,
) -> None:
    description = metadata.get_payload()
    assert isinstance(description, str)
    readme = (ROOT / "README.md").read_text("utf-8")
    assert RELATIVE_LINK.search(readme), "the README links to its docs (the check below means it)"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert RELATIVE_LINK.findall(description) == []
    # The link texts stay, in place: "**Speech in** ([Listening](docs/listening.md))".
    assert "**Speech in** (Listening)" in description
    assert description.splitlines()[0] == readme.splitlines()[0]
    assert len(description) > 0.9 * len(readme)


def test_python_versions_agree(metadata: Message) -> None:
    assert metadata["Requires-Python"] == ">=3.11"
    versions = {
        c.rsplit(":: ", 1)[1]
        for c in metadata.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert versions == {"3.11", "3.12", "3.13"}
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert all(v in ci for v in versions), ".ci/run tests every version the package claims"


def test_wheel_holds_the_package_and_its_data_only(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = [n for n in names if not n.split("/")[0].endswith(".dist-info")]
    assert {n.split("/")[0] for n in package} == {"langchain_openrouter_audio"}
    for needed in (
        "langchain_openrouter_audio/py.typed",
        "langchain_openrouter_audio/web/static/voice.js",
        "langchain_openrouter_audio/testing/assets/question.wav",
        "langchain_openrouter_audio/testing/assets/transcripts.json",
    ):
        assert needed in names


def test_sdist_holds_what_the_description_points_to(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    readme = (ROOT / "README.md").read_text("utf-8")
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)#\s][^)\s]*)\)", readme)}
    local = {t.rstrip("/") for t in targets if not t.startswith(("http://", "https://"))}
    assert local, "the README links to files of the repository"
    for target in local:
        assert (ROOT / target).exists(), f"README links to a missing {target}"
        assert target in names or any(n.startswith(target + "/") for n in names), target
