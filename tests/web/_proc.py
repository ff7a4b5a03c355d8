"""Run a server command in its own process group on a free port: wait until it answers, kill
it cleanly."""

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
import psutil

from tests._helpers import ROOT, free_port, offline_env

# What a server that could not bind its port prints (errno 98, in uvicorn's words too).
_PORT_TAKEN = ("address already in use", "errno 98", "cannot listen")


class PortTaken(Exception):
    """Another process took the chosen port before the server could listen on it."""


@contextlib.contextmanager
def serving(
    cmd: Sequence[str],
    ready_path: str,
    *,
    cwd: Path = ROOT,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    attempts: int = 3,
) -> Iterator[int]:
    """Start `cmd` on a free port, wait until `http://127.0.0.1:<port><ready_path>` answers
    200, yield the port; then kill it. `{port}` in `cmd` is replaced with the port.

    `env` is added to the environment of a user without an OpenRouter key.

    The port is free when chosen, but the server binds it only once it has started, seconds
    later: the suites running alongside may take it meanwhile (and answer the ready check
    themselves). A server that could not bind it, or that is not the one listening on it,
    is stopped and started again on another port.

    The process gets its own session so the whole group (uvicorn/langgraph workers) dies.
    """
    for attempt in range(1, attempts + 1):
        port = free_port()
        args = [arg.replace("{port}", str(port)) for arg in cmd]
        proc, log = _start(args, cwd, env)
        try:
            _wait_ready(proc, log, port, ready_path, timeout_s)
        except PortTaken:
            _stop(proc)
            if attempt == attempts:
                raise
            continue
        except BaseException:
            sys.stderr.write(f"--- server log ({log}) ---\n{tail(log)}\n")
            _stop(proc)
            raise
        try:
            yield port
        except BaseException:
            sys.stderr.write(f"--- server log ({log}) ---\n{tail(log)}\n")
            raise
        finally:
            _stop(proc)
        return


def _start(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None
) -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env={**offline_env(), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def _wait_ready(
    proc: subprocess.Popen[bytes], log: Path, port: int, ready_path: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            if any(sign in tail(log).lower() for sign in _PORT_TAKEN):
                raise PortTaken(port)
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                if not _listens(proc, port):
                    raise PortTaken(port)  # someone else's server answered
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args} not ready after {timeout_s:.0f} s:\n{tail(log)}")
        time.sleep(0.2)


def _listens(proc: subprocess.Popen[bytes], port: int) -> bool:
    """Whether `proc` (or a process it started) is what listens on `port` (True when the
    system does not let us look)."""
    try:
        group = psutil.Process(proc.pid)
        members = [group, *group.children(recursive=True)]
    except psutil.AccessDenied:
        return True
    except psutil.Error:
        return False
    for member in members:
        try:
            connections = member.net_connections("tcp")
        except psutil.AccessDenied:
            return True
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections):
            return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
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
