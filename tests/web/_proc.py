"""Run a server command in its own process group: wait until it answers, kill it cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests._helpers import ROOT, offline_env


@contextlib.contextmanager
def serving(
    cmd: Sequence[str],
    ready_url: str,
    *,
    cwd: Path = ROOT,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
) -> Iterator[Path]:
    """Start `cmd`, wait until `ready_url` answers 200, yield the log file path; then kill it.

    `env` is added to the environment of a user without an OpenRouter key.

    The process gets its own session so the whole group (uvicorn/langgraph workers) dies.
    """
    log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env={**offline_env(), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd} not ready after {timeout_s:.0f} s:\n{tail(log)}")
            time.sleep(0.2)
        yield log
    except BaseException:
        sys.stderr.write(f"--- server log ({log}) ---\n{tail(log)}\n")
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
