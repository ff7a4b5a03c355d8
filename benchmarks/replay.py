"""A replay server: serves byte-for-byte what `OpenRouterTestServer` sent, at almost no cost.

`OpenRouterTestServer` renders every reply on each request (base64 of all the
PCM, one `json.dumps` per event, one write + flush per event) in a thread of
the benchmarking process, so it competes with the client for the GIL and
dilutes every ratio. The harness therefore records the server's response to
the exact body each client sends, once, and serves the recorded bytes from
here: the same HTTP/1.1 chunked framing (one chunk per SSE event, comments and
`[DONE]` included) and the same JSON bodies, with nothing left to compute.

Each recorded reply is a `Payload`, addressed by name in the URL:
`http://127.0.0.1:<port>/p/<name>/api/v1` is the base URL that serves it
(`stream: true` requests get the SSE body, others the JSON body).

Two ways to run it:

* `ReplayProcess(payloads)`: in a subprocess (`python benchmarks/replay.py
  FILE`), so it runs on the other core and none of its work lands in the
  client's process (throughput, memory, concurrency and peer cases).
* `ReplayServer().start()`: in a thread of this process, for time-to-first-
  audio: a payload with `mark_event` set pauses `gap_s` before and after that
  event and appends `time.perf_counter()` to `server.marks` just before
  writing it, so both timestamps come from the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Payload", "ReplayProcess", "ReplayServer"]

_WRITE_SLICE = 256 * 1024
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Generation-Id: gen-0-replay\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@dataclass
class Payload:
    """One recorded reply: SSE events (each ending in a blank line) and/or a JSON body."""

    events: list[bytes] | None = None
    json_body: bytes | None = None
    mark_event: int | None = None
    gap_s: float = 0.05

    def __post_init__(self) -> None:
        self.wire = b"" if self.events is None else self._chunked(self.events) + b"0\r\n\r\n"

    @staticmethod
    def _chunked(events: list[bytes]) -> bytes:
        return b"".join(b"%X\r\n%s\r\n" % (len(e), e) for e in events)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "wire"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()


def split_events(body: bytes) -> list[bytes]:
    """Cut a recorded SSE body into its events, each keeping its blank-line terminator."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"
    parts = body.split(sep)
    events = [p + sep for p in parts[:-1]]
    if parts[-1]:
        events.append(parts[-1])
    return events


class ReplayServer:
    """The asyncio server; `start()` runs it in a daemon thread of this process."""

    def __init__(self, payloads: dict[str, Payload] | None = None) -> None:
        self.payloads: dict[str, Payload] = dict(payloads or {})
        self.marks: list[float] = []
        self.connections = 0
        self.requests = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/p/{name}/api/v1"

    # -- running -----------------------------------------------------------

    async def serve(self, on_ready: Any = None) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0, backlog=2048)
        self.port = server.sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._server = server
        if on_ready is not None:
            on_ready(self.port)
        async with server:
            await server.serve_forever()

    def start(self) -> ReplayServer:
        thread = threading.Thread(target=self._run, name="ReplayServer", daemon=True)
        thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self.serve(lambda _port: self._ready.set()))

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

    # -- HTTP --------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests += 1
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                path = request_line.split(" ")[1]
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                await self._respond(path, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _respond(self, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        if path == "/stats":
            stats = json.dumps({"connections": self.connections, "requests": self.requests})
            self._write_json(writer, 200, stats.encode())
            return
        parts = path.split("/")
        payload = self.payloads.get(parts[2]) if len(parts) > 2 and parts[1] == "p" else None
        if payload is None:
            self._write_json(writer, 404, b'{"error":{"code":404,"message":"no payload"}}')
            return
        stream = json.loads(body).get("stream") is True if body else False
        if not stream:
            assert payload.json_body is not None, f"no JSON body recorded for {path}"
            self._write_json(writer, 200, payload.json_body)
            await writer.drain()
            return
        assert payload.events is not None, f"no SSE body recorded for {path}"
        writer.write(_SSE_HEAD)
        if payload.mark_event is None:
            await self._write_all(writer, payload.wire)
            return
        events, m = payload.events, payload.mark_event
        await self._write_all(writer, Payload._chunked(events[:m]))
        await asyncio.sleep(payload.gap_s)
        self.marks.append(time.perf_counter())
        writer.write(Payload._chunked(events[m : m + 1]))
        await writer.drain()
        await asyncio.sleep(payload.gap_s)
        await self._write_all(writer, Payload._chunked(events[m + 1 :]) + b"0\r\n\r\n")

    @staticmethod
    async def _write_all(writer: asyncio.StreamWriter, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), _WRITE_SLICE):
            writer.write(view[i : i + _WRITE_SLICE])
            await writer.drain()

    @staticmethod
    def _write_json(writer: asyncio.StreamWriter, status: int, data: bytes) -> None:
        reason = "OK" if status == 200 else "Error"
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(data), data)
        )


class ReplayProcess:
    """`ReplayServer` in a subprocess; a context manager with `base_url(name)`."""

    def __init__(self, payloads: dict[str, Payload]) -> None:
        self._payloads = payloads
        self._proc: subprocess.Popen[bytes] | None = None
        self._file: Path | None = None
        self.port = 0

    def __enter__(self) -> ReplayProcess:
        fd, name = tempfile.mkstemp(prefix="replay-", suffix=".pickle")
        self._file = Path(name)
        with open(fd, "wb") as f:
            pickle.dump(self._payloads, f, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self._file)],
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("replay server did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
        if self._file is not None:
            self._file.unlink(missing_ok=True)

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/p/{name}/api/v1"

    def stats(self) -> dict[str, int]:
        import httpx

        stats: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.port}/stats").json()
        return stats


def _main(path: str) -> None:
    with open(path, "rb") as f:
        payloads = pickle.load(f)

    def ready(port: int) -> None:
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()

    asyncio.run(ReplayServer(payloads).serve(ready))


if __name__ == "__main__":
    _main(sys.argv[1])
