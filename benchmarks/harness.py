"""What every benchmark shares: scripted replies, servers in their own processes, paired
timing, and one output format.

A benchmark module (`invoke`, `streaming`, ...) defines `measure(ctx) -> {title: rows}`,
run once per measured tree in a client process of its own, and optionally `servers(ctx)`,
a context manager run once in the parent that starts what the clients talk to and adds
their addresses to `ctx`. Rows are dicts from column to value; floats are shown by column
name (`cell`): times as ms, columns with a "/" or ending in "x PCM" as ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import pickle
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
MODEL = "openai/gpt-audio-mini"
PROMPT = "Read me the long story."
PIECE = 4800  # bytes of PCM per audio event: 100 ms

# -- scripted replies -----------------------------------------------------------------


def pcm_of(seconds: float) -> bytes:
    """`seconds` of a 440 Hz tone as 24 kHz PCM16, whole seconds repeated."""
    from langchain_openrouter_audio.testing import tone_pcm16

    rest = seconds - int(seconds)
    return tone_pcm16(1.0) * int(seconds) + (tone_pcm16(rest) if rest else b"")


def transcript_of(seconds: float) -> str:
    # About 2.5 words (14 characters) a second, as spoken.
    return ("The quick brown fox jumps. " * (int(seconds) + 1))[: int(seconds * 14)]


def speech(seconds: float, **kw: Any) -> Any:
    """A spoken reply: 100 ms audio pieces, the transcript in 4-character pieces."""
    from langchain_openrouter_audio.testing import speech_reply

    return speech_reply(pcm_of(seconds), transcript_of(seconds), audio_piece_bytes=PIECE, **kw)


def request_body(prompt: str = PROMPT, stream: bool = True) -> bytes:
    """What the client sends for a spoken reply to `prompt`."""
    spoken = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "pcm16"}}
    message = {"role": "user", "content": prompt}
    return json.dumps({"model": MODEL, "messages": [message], **spoken, "stream": stream}).encode()


def headers(stream: bool = True) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }


def record(server: Any, reply: Any, body: bytes) -> bytes:
    """The bytes `OpenRouterTestServer` sends for `reply` to the request `body`."""
    import httpx

    stream = json.loads(body).get("stream") is True
    server.enqueue(reply)
    url = f"{server.base_url}/chat/completions"
    with (
        httpx.Client(timeout=120) as client,
        client.stream("POST", url, content=body, headers=headers(stream)) as response,
    ):
        data = b"".join(response.iter_raw())
    assert response.status_code == 200, data[:300]
    return data


# -- the replay server ----------------------------------------------------------------
# `OpenRouterTestServer` renders every reply on each request (base64 of all the PCM, one
# json.dumps and one write per event); in the client's process it would compete for the
# GIL and dilute every ratio. So each reply is recorded once and served byte for byte from
# here, in a process of its own: the same chunked framing (one HTTP chunk per SSE event),
# nothing left to compute.

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Generation-Id: gen-0-replay\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _chunked(events: list[bytes]) -> bytes:
    return b"".join(b"%X\r\n%s\r\n" % (len(e), e) for e in events)


@dataclass
class Payload:
    """One recorded reply, served at `/p/<name>/api/v1`: SSE events and/or a JSON body.

    With `mark_event` set, the server pauses `gap_s` around that event and appends
    `time.perf_counter()` to `ReplayServer.marks` just before writing it (time to first
    audio, measured on one clock, with the server in a thread of the client's process).
    """

    events: list[bytes] | None = None
    json_body: bytes | None = None
    mark_event: int | None = None
    gap_s: float = 0.03

    @classmethod
    def of(cls, sse: bytes | None = None, json_body: bytes | None = None) -> Payload:
        if sse is None:
            return cls(json_body=json_body)
        sep = b"\r\n\r\n" if b"\r\n\r\n" in sse else b"\n\n"
        parts = sse.split(sep)
        return cls([p + sep for p in parts[:-1]] + ([parts[-1]] if parts[-1] else []), json_body)


class ReplayServer:
    """The asyncio server; `start()` runs it in a daemon thread of this process."""

    def __init__(self, payloads: dict[str, Payload]) -> None:
        self.payloads = payloads
        self.wire = {k: _chunked(p.events) + b"0\r\n\r\n" for k, p in payloads.items() if p.events}
        self.marks: list[float] = []
        self.connections = self.requests = self.port = 0
        self._ready = threading.Event()

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/p/{name}/api/v1"

    async def serve(self, on_ready: Callable[[int], Any]) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0, backlog=2048)
        self.port = server.sockets[0].getsockname()[1]
        on_ready(self.port)
        async with server:
            await server.serve_forever()

    def start(self) -> ReplayServer:
        run = lambda: asyncio.run(self.serve(lambda _port: self._ready.set()))  # noqa: E731
        threading.Thread(target=run, daemon=True).start()
        self._ready.wait(10)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                self.requests += 1
                length = next(
                    (int(h.split(":")[1]) for h in head if h.lower().startswith("content-length")),
                    0,
                )
                body = await reader.readexactly(length) if length else b""
                await self._respond(head[0].split(" ")[1], body, writer)
        writer.close()

    async def _respond(self, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        if path == "/stats":
            stats = {"connections": self.connections, "requests": self.requests}
            return self._json(writer, 200, json.dumps(stats).encode())
        parts = path.split("/")
        name = parts[2] if len(parts) > 2 and parts[1] == "p" else ""
        payload = self.payloads.get(name)
        if payload is None:
            return self._json(writer, 404, b'{"error":{"code":404,"message":"no payload"}}')
        if not (json.loads(body).get("stream") is True if body else False):
            assert payload.json_body is not None, f"no JSON body recorded for {path}"
            return self._json(writer, 200, payload.json_body)
        assert payload.events is not None, f"no SSE body recorded for {path}"
        writer.write(_SSE_HEAD)
        if payload.mark_event is None:
            return await self._write_all(writer, self.wire[name])
        events, m = payload.events, payload.mark_event
        await self._write_all(writer, _chunked(events[:m]))
        await asyncio.sleep(payload.gap_s)
        self.marks.append(time.perf_counter())
        writer.write(_chunked(events[m : m + 1]))
        await writer.drain()
        await asyncio.sleep(payload.gap_s)
        await self._write_all(writer, _chunked(events[m + 1 :]) + b"0\r\n\r\n")

    @staticmethod
    async def _write_all(writer: asyncio.StreamWriter, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), 256 * 1024):
            writer.write(view[i : i + 256 * 1024])
            await writer.drain()

    @staticmethod
    def _json(writer: asyncio.StreamWriter, status: int, data: bytes) -> None:
        head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        writer.write(head % (status, len(data)) + data)


def save_payloads(payloads: dict[str, Payload]) -> str:
    fd, name = tempfile.mkstemp(prefix="bench-replay-", suffix=".pickle")
    with open(fd, "wb") as f:
        pickle.dump(payloads, f, protocol=pickle.HIGHEST_PROTOCOL)
    return name


def load_payloads(path: str) -> dict[str, Payload]:
    with open(path, "rb") as f:
        payloads: dict[str, Payload] = pickle.load(f)
    return payloads


def serve_replay(path: str) -> None:
    """Server process: the replay server for the payloads pickled at `path`."""
    server = ReplayServer(load_payloads(path))
    asyncio.run(server.serve(lambda port: print(f"http://127.0.0.1:{port}", flush=True)))


@contextlib.contextmanager
def replay_process(payloads: dict[str, Payload]) -> Iterator[tuple[str, str]]:
    """The replay server in a process of its own: yields (its URL, the payload file)."""
    path = save_payloads(payloads)
    try:
        with server_process("benchmarks.harness:serve_replay", path) as url:
            yield url, path
    finally:
        Path(path).unlink(missing_ok=True)


def replay_url(base: str, name: str) -> str:
    return f"{base}/p/{name}/api/v1"


# -- processes --------------------------------------------------------------------------


def _python(ref: str, arg: Any, tree: str | None) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if tree:
        env["BENCH_TREE"] = tree
    return [sys.executable, "-m", "benchmarks", "--call", ref, json.dumps(arg)], env


@contextlib.contextmanager
def server_process(ref: str, arg: Any, tree: str | None = None) -> Iterator[str]:
    """Run `module:function(arg)` in a process; yield the first line it prints (its URL)."""
    cmd, env = _python(ref, arg, tree)
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline().strip() if proc.stdout else ""
            if not line:
                raise RuntimeError(f"{ref} did not start")
            yield line
        finally:
            proc.terminate()


def in_process(ref: str, arg: Any, tree: str | None = None) -> Any:
    """`module:function(arg)` in a fresh process (of `tree`'s package); its JSON result."""
    cmd, env = _python(ref, arg, tree)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{ref} failed (exit {proc.returncode}); its error is above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def call(ref: str, arg: str) -> None:
    """`--call module:function JSON`: the entry point of every child process."""
    module, name = ref.split(":")
    result = getattr(import_module(module), name)(json.loads(arg))
    if result is not None:
        print(json.dumps(result))


def package_info() -> str:
    """Where the measured package lives and at which commit."""
    package = Path(import_module("langchain_openrouter_audio").__file__ or "").parent
    git = ["git", "-C", str(package.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", package.name], capture_output=True, text=True
    )
    commit = head.stdout.strip() or "no git commit"
    return f"`{package}` at {commit}" + (" + changes" if dirty.stdout else "")


# -- timing -------------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) in the same round."""
    return med([x / y for x, y in zip(times[a], times[b], strict=True)])


def orders(names: list[str], rounds: int) -> Iterator[str]:
    """`names` in order, then reversed, and so on for `rounds` rounds: A B, B A, ..."""
    for i in range(rounds):
        yield from names if i % 2 == 0 else names[::-1]


def paired(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Time each function `rounds` times in alternating order (A B, B A, ...) after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for name in orders(list(fns), rounds):
        gc.collect()
        t = time.perf_counter()
        fns[name]()
        times[name].append(time.perf_counter() - t)
    return times


async def apaired(
    fns: dict[str, Callable[[], Coroutine[Any, Any, Any]]], rounds: int, warm: bool = True
) -> dict[str, list[float]]:
    """`paired` for coroutine functions."""
    for fn in fns.values() if warm else ():
        await fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for name in orders(list(fns), rounds):
        gc.collect()
        t = time.perf_counter()
        await fns[name]()
        times[name].append(time.perf_counter() - t)
    return times


# -- output -------------------------------------------------------------------------------


def ms(x: float) -> str:
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms" if x >= 0.001 or x == 0 else f"{x * 1e6:.0f} µs"


def cell(column: str, value: Any) -> str:
    """A value as shown in its column: ratios, MB, multiples of real time, else seconds."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, float):
        return "-" if value is None else str(value)
    if "/" in column or column.endswith("x PCM"):
        return f"{value:.2f}x"
    if column.endswith("dB"):  # below -120: under what int16 output can show
        return "< -120" if value < -120 else f"{0.0 if round(value, 2) == 0 else value:.2f}"
    if column.endswith("MB") or "per min" in column:
        return f"{value:.1f}"
    if column.endswith("real time"):
        return f"{value:,.0f}"
    return ms(value)


def markdown(title: str, rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = [f"### {title}\n", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":")[1].strip() for x in info if "model name" in x), platform.machine())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "load average": round(os.getloadavg()[0], 1),
    }
