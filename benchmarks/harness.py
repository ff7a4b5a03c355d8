"""What every benchmark shares: scripted replies, the replay server, child processes, paired
timing and the markdown tables.

A benchmark module defines `measure(ctx) -> {title: rows}`, run once per measured tree in a
client process of its own, and may define `servers(ctx)`, a context manager run once in the
parent that starts what the clients talk to and adds their addresses to `ctx`. Rows are
dicts from column to value; `cell` shows a float by its column's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import pickle
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key"
MODEL = "openai/gpt-audio-mini"
PROMPT = "Read me the long story."
PIECE = 4800  # bytes of PCM per audio event: 100 ms

# -- scripted replies ---------------------------------------------------------------------


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


def request_body(prompt: str = PROMPT) -> bytes:
    """What the client sends for a streamed spoken reply to `prompt`."""
    spoken = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "pcm16"}}
    message = {"role": "user", "content": prompt}
    return json.dumps({"model": MODEL, "messages": [message], **spoken, "stream": True}).encode()


def headers(stream: bool = True) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }


def model(base_url: str) -> Any:
    """The client under test, talking to `base_url`."""
    from langchain_openrouter_audio import ChatOpenRouterAudio

    return ChatOpenRouterAudio(api_key=KEY, base_url=base_url, model=MODEL)


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


# -- the replay server --------------------------------------------------------------------
# `OpenRouterTestServer` renders every reply on each request (base64 of all the PCM, one
# json.dumps and one write per event); in the client's process it would compete for the
# GIL and dilute every ratio. So each reply is recorded once and served byte for byte from
# a process of its own, with the same framing (one HTTP chunk per SSE event).

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Generation-Id: gen-0-replay\r\nTransfer-Encoding: chunked\r\n\r\n"
)
MARK_GAP_S = 0.03  # the pause before and after a marked event


def _chunked(events: list[bytes]) -> bytes:
    return b"".join(b"%X\r\n%s\r\n" % (len(event), event) for event in events)


def _json_response(status: int, data: bytes) -> bytes:
    head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % (status, len(data)) + data


@dataclass
class Payload:
    """One recorded reply, served at `/p/<name>/api/v1`: its SSE events for a streamed
    request, its JSON body for one without `"stream": true`.

    With `mark`, the server pauses around the reply's first audio event and notes
    `time.perf_counter()` just before writing it, for `/stats` to report as `mark`: on Linux
    every process reads that clock alike, so a client can take its time to first audio.
    """

    events: list[bytes] | None = None
    json_body: bytes | None = None
    mark: bool = False

    @classmethod
    def of(cls, sse: bytes | None = None, json_body: bytes | None = None) -> Payload:
        if sse is None:
            return cls(None, json_body)
        sep = b"\r\n\r\n" if b"\r\n\r\n" in sse else b"\n\n"
        parts = sse.split(sep)
        events = [part + sep for part in parts[:-1]]
        if parts[-1]:  # bytes after the last blank line
            events.append(parts[-1])
        return cls(events, json_body)


class ReplayServer:
    """Serves `payloads` over HTTP/1.1 keep-alive; `/stats` counts connections and requests."""

    def __init__(self, payloads: dict[str, Payload]) -> None:
        self.payloads = payloads
        self.stats = {"connections": 0, "requests": 0, "mark": 0.0}
        # Rendered once: serving is then a write of bytes that already exist.
        self.wire = {
            name: _chunked(p.events) + b"0\r\n\r\n" for name, p in payloads.items() if p.events
        }

    async def serve(self) -> None:
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=2048)
        print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:  # one request after another on the same connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(length[1]) if length else 0)
                self.stats["requests"] += 1
                await self._respond(head.split(b" ")[1].decode(), body, writer)
        writer.close()

    async def _respond(self, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        name = path.split("/")[2] if path.startswith("/p/") else ""
        payload = self.payloads.get(name)
        if path == "/stats":
            writer.write(_json_response(200, json.dumps(self.stats).encode()))
        elif payload is None:
            writer.write(_json_response(404, b'{"error":{"code":404,"message":"no payload"}}'))
        elif body and json.loads(body).get("stream") is True:
            writer.write(_SSE_HEAD)
            if payload.mark:
                await self._send_marked(payload.events or [], writer)
            else:
                await _write(writer, self.wire[name])
        else:
            assert payload.json_body is not None, f"no JSON body recorded for {path}"
            writer.write(_json_response(200, payload.json_body))

    async def _send_marked(self, events: list[bytes], writer: asyncio.StreamWriter) -> None:
        audio = (i for i, e in enumerate(events) if b'"audio":{' in e and b'"data":"' in e)
        first = next(audio)
        await _write(writer, _chunked(events[:first]))
        # The pauses keep the marked event out of the reads before and after it.
        await asyncio.sleep(MARK_GAP_S)
        self.stats["mark"] = time.perf_counter()
        await _write(writer, _chunked(events[first : first + 1]))
        await asyncio.sleep(MARK_GAP_S)
        await _write(writer, _chunked(events[first + 1 :]) + b"0\r\n\r\n")


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    # In 256 KB slices, so a long reply waits for the client instead of piling up in memory.
    view = memoryview(data)
    for i in range(0, len(view), 256 * 1024):
        writer.write(view[i : i + 256 * 1024])
        await writer.drain()


def serve_replay(path: str) -> None:
    """Server process: the replay server for the payloads pickled at `path`."""
    with open(path, "rb") as f:
        payloads = pickle.load(f)
    asyncio.run(ReplayServer(payloads).serve())


@contextlib.contextmanager
def replay_process(payloads: dict[str, Payload]) -> Iterator[tuple[str, str]]:
    """The replay server in a process of its own: yields its URL and the payload file."""
    fd, path = tempfile.mkstemp(prefix="bench-replay-", suffix=".pickle")
    with open(fd, "wb") as f:
        pickle.dump(payloads, f, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        with server_process("benchmarks.harness:serve_replay", path) as url:
            yield url, path
    finally:
        Path(path).unlink(missing_ok=True)


@contextlib.contextmanager
def replaying(ctx: dict[str, Any], replies: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`ctx` plus `replay`, the URL of a replay process serving each of `replies` as
    `OpenRouterTestServer` sends it for `request_body()`."""
    from langchain_openrouter_audio.testing import OpenRouterTestServer

    with OpenRouterTestServer(api_key=KEY) as server:
        payloads = {k: Payload.of(record(server, r, request_body())) for k, r in replies.items()}
    with replay_process(payloads) as (url, _path):
        yield {**ctx, "replay": url}


def replay_url(base: str, name: str) -> str:
    return f"{base}/p/{name}/api/v1"


# -- processes ----------------------------------------------------------------------------


def _command(ref: str, arg: Any, tree: str | None) -> tuple[list[str], dict[str, str]]:
    # BENCH_TREE puts another worktree's package first on the child's path (`--tree`).
    env = {**os.environ, "BENCH_TREE": tree} if tree else dict(os.environ)
    return [sys.executable, "-m", "benchmarks", "--call", ref, json.dumps(arg)], env


@contextlib.contextmanager
def server_process(ref: str, arg: Any) -> Iterator[str]:
    """Run `module:function(arg)` in a process; yield the first line it prints (its URL)."""
    cmd, env = _command(ref, arg, None)
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
    cmd, env = _command(ref, arg, tree)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{ref} failed (exit {proc.returncode}); its error is above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- measuring ----------------------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1))] if xs else 0.0


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) in the same round."""
    return med([x / y for x, y in zip(times[a], times[b], strict=True)])


def orders(names: list[str], rounds: int) -> Iterator[str]:
    """`names` in order, then reversed, and so on for `rounds` rounds: A B, B A, ..."""
    for i in range(rounds):
        yield from names if i % 2 == 0 else names[::-1]


def paired(
    fns: dict[str, Callable[[], Any]], rounds: int, warm: bool = True
) -> dict[str, list[float]]:
    """Time each function `rounds` times in alternating order (A B, B A, ...), after a
    warm-up call of each unless `warm` is false.

    Alternating spreads a shared machine's slow moments over all of them alike. Async calls
    come as `lambda: loop.run_until_complete(...)`, all on one loop.
    """
    for fn in fns.values() if warm else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for name in orders(list(fns), rounds):
        gc.collect()
        start = time.perf_counter()
        fns[name]()
        times[name].append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop for timing async calls from sync code. Closing it closes the async clients
    models made on it: each guards its client with one of the loop's async generators."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def traced(fn: Callable[[], Any]) -> tuple[int, int]:
    """Bytes tracemalloc sees while `fn` runs: the peak, and what is held with its result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = fn()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak - before, current - before


async def record_lag(period: float, lags: list[float]) -> None:
    """Forever: sleep `period` and append how late it woke, the event loop's lag."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - start - period)


# -- output -------------------------------------------------------------------------------


def ms(x: float) -> str:
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1000:.1f} ms" if x >= 0.001 or x == 0 else f"{x * 1e6:.0f} µs"


def cell(column: str, value: Any) -> str:
    """A value as shown in its column: ratios, dB, MB, multiples of real time, else time."""
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
