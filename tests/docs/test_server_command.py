"""`python -m langchain_openrouter_audio.testing`: the README's command for running snippets."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from langchain_openrouter_audio import ChatOpenRouterAudio, audio_pcm
from tests._helpers import clip_pcm, free_port

COMMAND = [sys.executable, "-m", "langchain_openrouter_audio.testing"]


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The command running with `args`; yields it and the lines it printed up to the exports."""
    proc = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("export OPENROUTER_BASE_URL="):
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C, as the command says
        proc.communicate(timeout=10)


def test_prints_the_exports_and_answers_like_a_model() -> None:
    port = free_port()
    with serving("--port", str(port), "--api-key", "my-key") as (proc, lines):
        base_url = f"http://127.0.0.1:{port}/api/v1"
        assert "export OPENROUTER_API_KEY=my-key" in lines
        assert lines[-1] == f"export OPENROUTER_BASE_URL={base_url}"

        llm = ChatOpenRouterAudio(base_url=base_url, api_key="my-key")
        try:
            reply = llm.invoke("Tell me a story")
            assert audio_pcm(reply) == clip_pcm("story")

            def get_weather(city: str) -> str:
                """Return the weather in a city."""
                return f"Sunny in {city}."

            call = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")
            assert call.tool_calls[0]["name"] == "get_weather"
            assert call.tool_calls[0]["args"] == {"city": "Paris"}
        finally:
            llm.close()

        wrong = httpx.post(
            f"{base_url}/chat/completions", headers={"Authorization": "Bearer nope"}, json={}
        )
        assert wrong.status_code == 401
        assert "my-key" not in wrong.text
    assert proc.returncode == 0


def test_a_new_random_key_each_run() -> None:
    keys = []
    for _ in range(2):
        with serving() as (_proc, lines):
            [key] = [ln.split("=", 1)[1] for ln in lines if ln.startswith("export OPENROUTER_API")]
            keys.append(key)
    assert keys[0] != keys[1]
    assert all(len(k) > 12 for k in keys)


def test_a_taken_port_is_an_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [*COMMAND, "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "export" not in run.stdout


def test_a_client_that_stops_mid_request_is_disconnected() -> None:
    port = free_port()
    with (
        serving("--port", str(port), "--read-timeout", "0.5"),
        socket.create_connection(("127.0.0.1", port), timeout=20) as sock,
    ):
        sock.sendall(b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # the server hung up; before, it waited for good


def test_a_bad_read_timeout_is_an_error_naming_it() -> None:
    run = subprocess.run(
        [*COMMAND, "--read-timeout", "0"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "--read-timeout must be a positive number" in run.stderr
