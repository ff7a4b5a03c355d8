"""Load test of the web voice app: many browser-protocol WebSocket clients at real-time pace.

    python benchmarks/web_load.py --clients 60 --turns 2 --out /tmp/web_load.json

Each client behaves like the voice page: it says hello, streams its microphone without
pause as 20 ms PCM16 frames at 16 kHz in real time (silence, then the shipped spoken
question, then silence while it listens), receives the streamed reply, "plays" it in real
time and reports playback, for `--turns` questions. The app (the weather agent of
examples/web_voice_agent.py, one uvicorn worker) runs in its own process against the local
OpenRouter server in a third, which streams speech at twice real time. Reported: the app
process's CPU time over the run and so sessions per core at real-time pace, and latency
from the end of the user's speech to the first reply audio (it includes the endpointer's
600 ms of silence). `--out` writes JSON; it never overwrites a file tracked by git.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import wave
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ASSETS = files("langchain_openrouter_audio.testing") / "assets"
MIC_RATE = 16_000
FRAME_BYTES = MIC_RATE // 50 * 2  # 20 ms
REPLY_RATE = 24_000


def clip_pcm(name: str) -> bytes:
    with wave.open(io.BytesIO((ASSETS / f"{name}.wav").read_bytes())) as w:
        return w.readframes(w.getnframes())


# -- the app process -------------------------------------------------------------------


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def serve(port: int, base_url: str) -> None:
    import uvicorn
    from langchain.agents import create_agent
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.web import voice_app

    llm = ChatOpenRouterAudio(base_url=base_url, api_key="bench-key", timeout=60)
    app = voice_app(create_agent(llm, [get_weather]))
    lags: list[float] = []

    async def watch_loop() -> None:
        # How late a 10 ms sleep wakes up: the wait every session's next frame sees.
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    async def lag(request: Request) -> JSONResponse:
        if not hasattr(app.state, "watcher"):
            app.state.watcher = asyncio.create_task(watch_loop())
        seen = sorted(lags)
        lags.clear()
        pick = (lambda q: round(seen[int(q * (len(seen) - 1))] * 1000, 1)) if seen else None
        return JSONResponse(pick and {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1)})

    app.router.routes.append(Route("/_lag", lag))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=1 << 20)


def serve_openrouter(port: int) -> None:
    """The local OpenRouter server: a weather tool call, then the spoken answer."""
    from langchain_openrouter_audio.testing import (
        OpenRouterTestServer,
        RecordedRequest,
        Reply,
        speech_reply,
        tool_call_reply,
    )

    answer = clip_pcm("weather_answer")
    words = json.loads((ASSETS / "transcripts.json").read_text("utf-8"))["weather_answer"]

    def responder(request: RecordedRequest) -> Reply:
        if request.json["messages"][-1]["role"] != "tool":
            return tool_call_reply("get_weather", {"city": "Paris"})
        # 0.1 s of speech every 50 ms: twice real time, like a fast model.
        return speech_reply(answer, words, audio_piece_bytes=4800, event_delay_s=0.05)

    with OpenRouterTestServer(api_key="bench-key", port=port) as server:
        server.responder = responder
        stop = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the clients -----------------------------------------------------------------------


class Client:
    def __init__(self, url: str, question: bytes, turns: int) -> None:
        self.url = url
        self.question = question
        self.turns = turns
        self.latencies: list[float] = []
        self.audio_bytes = 0
        self.completed = 0
        self.errors: list[str] = []
        self._asking = asyncio.Event()
        self._speech_end = 0.0

    async def _microphone(self, ws: Any) -> None:
        """20 ms frames on a real-time clock: the question when asked, silence otherwise."""
        silence = bytes(FRAME_BYTES)
        start = time.monotonic()
        sent = 0
        pending = b""
        while True:
            if not pending and self._asking.is_set():
                self._asking.clear()
                pending = self.question
            frame, pending = pending[:FRAME_BYTES], pending[FRAME_BYTES:]
            if not frame:
                frame = silence
            await ws.send(frame.ljust(FRAME_BYTES, b"\0"))
            if frame is not silence and not pending:
                self._speech_end = time.monotonic()
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))

    async def run(self, connected: asyncio.Queue[None], go: asyncio.Event, delay: float) -> None:
        import websockets

        try:
            origin = "http://" + self.url.split("/")[2]  # as the page's browser sends it
            async with websockets.connect(self.url, max_size=None, origin=origin) as ws:
                await ws.send(json.dumps({"type": "hello", "sample_rate": MIC_RATE}))
                mic = asyncio.create_task(self._microphone(ws))
                connected.put_nowait(None)
                await go.wait()
                await asyncio.sleep(delay)  # spread the first questions out
                try:
                    for turn in range(1, self.turns + 1):
                        await asyncio.sleep(0.3)
                        self._asking.set()
                        await self._turn(ws, turn)
                finally:
                    mic.cancel()
        except Exception as err:
            self.errors.append(f"{type(err).__name__}: {err}")

    async def _turn(self, ws: Any, turn: int) -> None:
        first_audio = None
        received = 0
        while True:
            frame = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(frame, bytes):
                if first_audio is None:
                    first_audio = time.monotonic()
                received += len(frame)
                continue
            event = json.loads(frame)
            if event["type"] == "error":
                self.errors.append(event["message"])
            if event["type"] == "reply_end" and event["turn"] == turn:
                break
        if first_audio is None:
            self.errors.append(f"turn {turn}: no audio")
            return
        self.latencies.append(first_audio - self._speech_end)
        self.audio_bytes += received
        # Play it in real time (from the first byte), then report, as the page does.
        seconds = received / 2 / REPLY_RATE
        await asyncio.sleep(max(0.0, first_audio + 0.08 + seconds - time.monotonic()))
        await ws.send(
            json.dumps({"type": "played", "turn": turn, "seconds": seconds, "done": True})
        )
        self.completed += 1


# -- main ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tracked_by_git(path: Path) -> bool:
    result = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(path.resolve())],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


class Phases:
    """App CPU seconds and wall seconds while clients only listen, then while they talk."""

    idle_cpu = idle_wall = busy_cpu = busy_wall = 0.0
    idle_lag: dict[str, float] | None = None  # app event-loop lag percentiles
    busy_lag: dict[str, float] | None = None


async def load(
    url: str, clients: int, turns: int, ramp_s: float, idle_s: float, app_pid: int
) -> tuple[list[Client], Phases]:
    question = resample(clip_pcm("question"))
    crowd = [Client(url, question, turns) for _ in range(clients)]
    connected: asyncio.Queue[None] = asyncio.Queue()
    go = asyncio.Event()

    async def start(i: int, client: Client) -> None:
        await asyncio.sleep(ramp_s * i / clients)
        await client.run(connected, go, ramp_s * i / clients)

    lag_url = url.replace("ws://", "http://").replace("/ws", "/_lag")
    await asyncio.to_thread(httpx.get, lag_url)  # starts the event-loop watcher
    tasks = [asyncio.create_task(start(i, c)) for i, c in enumerate(crowd)]
    for _ in crowd:  # everyone connected and streaming silence
        await connected.get()
    phases = Phases()
    cpu0, t0 = cpu_seconds(app_pid), time.monotonic()
    await asyncio.sleep(idle_s)
    phases.idle_cpu, phases.idle_wall = cpu_seconds(app_pid) - cpu0, time.monotonic() - t0
    phases.idle_lag = (await asyncio.to_thread(httpx.get, lag_url)).json()
    cpu0, t0 = cpu_seconds(app_pid), time.monotonic()
    go.set()
    await asyncio.gather(*tasks)
    phases.busy_cpu, phases.busy_wall = cpu_seconds(app_pid) - cpu0, time.monotonic() - t0
    phases.busy_lag = (await asyncio.to_thread(httpx.get, lag_url)).json()
    return crowd, phases


def resample(pcm24k: bytes) -> bytes:
    from langchain_openrouter_audio.voice import resample_pcm16

    return resample_pcm16(pcm24k, REPLY_RATE, MIC_RATE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds to connect everyone")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of listening only")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the app process
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--openrouter", type=int, help=argparse.SUPPRESS)  # the model process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.base_url)
        return 0
    if args.openrouter:
        serve_openrouter(args.openrouter)
        return 0
    if args.out is not None and args.out.exists() and tracked_by_git(args.out):
        parser.error(f"{args.out} is tracked by git; write results somewhere else")

    app_port, openrouter_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{openrouter_port}/api/v1"
    me = [sys.executable, __file__]
    procs = [
        subprocess.Popen([*me, "--openrouter", str(openrouter_port)], start_new_session=True),
        subprocess.Popen(
            [*me, "--serve", str(app_port), "--base-url", base_url], start_new_session=True
        ),
    ]
    try:
        for proc, port in zip(procs, (openrouter_port, app_port), strict=True):
            wait_for_port(port, proc)
        app, model = procs[1], procs[0]
        load_before = os.getloadavg()[0]
        harness0, model0 = time.process_time(), cpu_seconds(model.pid)
        url = f"ws://127.0.0.1:{app_port}/ws"
        crowd, phases = asyncio.run(
            load(url, args.clients, args.turns, args.ramp, args.idle, app.pid)
        )
        harness_cpu = time.process_time() - harness0
        model_cpu = cpu_seconds(model.pid) - model0
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)

    latencies = sorted(x for c in crowd for x in c.latencies)
    errors = [e for c in crowd for e in c.errors]
    turns_done = sum(c.completed for c in crowd)
    # Cost model: listening costs `idle` CPU-s per session-second; each turn costs `per_turn`.
    idle = phases.idle_cpu / phases.idle_wall / args.clients
    busy_turns = phases.busy_cpu - idle * args.clients * phases.busy_wall
    per_turn = max(0.0, busy_turns) / max(turns_done, 1)
    cores = phases.busy_cpu / phases.busy_wall
    result: dict[str, Any] = {
        "clients": args.clients,
        "turns_per_client": args.turns,
        "turns_completed": turns_done,
        "errors": len(errors),
        "first_errors": errors[:5],
        "talk_phase_wall_s": round(phases.busy_wall, 2),
        "talk_phase_app_cpu_s": round(phases.busy_cpu, 2),
        "talk_phase_app_cores_busy": round(cores, 3),
        "sessions_per_core_talking": round(args.clients / cores, 1),
        "listen_cpu_ms_per_session_second": round(idle * 1000, 3),
        "cpu_ms_per_turn": round(per_turn * 1000, 1),
        "sessions_per_core_one_turn_per_15s": round(1 / (idle + per_turn / 15), 1),
        "listen_phase_loop_lag": phases.idle_lag,
        "talk_phase_loop_lag": phases.busy_lag,
        "clients_cpu_s": round(harness_cpu, 2),
        "openrouter_server_cpu_s": round(model_cpu, 2),
        "load_average_before": round(load_before, 2),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3)
        if latencies
        else None,
        "reply_audio_mb": round(sum(c.audio_bytes for c in crowd) / 1e6, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if errors or turns_done != args.clients * args.turns else 0


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the app did not start")


if __name__ == "__main__":
    sys.exit(main())
