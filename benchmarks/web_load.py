"""Sessions per core of the web voice app, under browser-protocol clients at real-time pace.

Each client behaves like the voice page: it says hello, streams its microphone without
pause as 20 ms PCM16 frames at 16 kHz (silence, the shipped spoken question, silence while
it listens), receives the streamed reply, "plays" it in real time and reports playback,
for `--turns` questions. The app (a weather agent, one uvicorn worker) runs in its own
process against `OpenRouterTestServer` in a third, which streams speech at twice real time.
Measured: the app's CPU while everyone only listens, then while they talk, hence CPU per
listening session-second and per turn; its event-loop lag; latency from the end of the
user's speech to the first reply audio (it includes the endpointer's 600 ms of silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import statistics
import time
import wave
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import httpx

from benchmarks.harness import server_process

MIC_RATE, REPLY_RATE = 16_000, 24_000
FRAME_BYTES = MIC_RATE // 50 * 2  # 20 ms


def clip_pcm(name: str) -> bytes:
    assets = files("langchain_openrouter_audio.testing") / "assets"
    with wave.open(io.BytesIO((assets / f"{name}.wav").read_bytes())) as w:
        return w.readframes(w.getnframes())


def serve_openrouter(_arg: None) -> None:
    """Server process: a weather tool call, then the spoken answer at twice real time."""
    from langchain_openrouter_audio.testing import (
        OpenRouterTestServer,
        speech_reply,
        tool_call_reply,
    )

    assets = files("langchain_openrouter_audio.testing") / "assets"
    answer = clip_pcm("weather_answer")
    words = json.loads((assets / "transcripts.json").read_text("utf-8"))["weather_answer"]

    def respond(request: Any) -> Any:
        if request.json["messages"][-1]["role"] != "tool":
            return tool_call_reply("get_weather", {"city": "Paris"})
        return speech_reply(answer, words, audio_piece_bytes=4800, event_delay_s=0.05)

    with OpenRouterTestServer(api_key="bench-key") as server:
        server.responder = respond
        print(server.base_url, flush=True)
        signal.sigwait({signal.SIGTERM})


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def serve_app(base_url: str) -> None:
    """Server process: the voice app, plus `/_lag` (how late a 10 ms sleep wakes)."""
    import uvicorn
    from langchain.agents import create_agent
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.web import voice_app

    llm = ChatOpenRouterAudio(base_url=base_url, api_key="bench-key", timeout=60)
    app = voice_app(create_agent(llm, [get_weather]))
    lags: list[float] = []

    async def watch_loop() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    async def lag(_request: Any) -> JSONResponse:
        if not hasattr(app.state, "watcher"):
            app.state.watcher = asyncio.create_task(watch_loop())
        seen = sorted(lags)
        lags.clear()
        at = lambda q: seen[int(q * (len(seen) - 1))] if seen else None  # noqa: E731
        return JSONResponse({"p50": at(0.5), "p99": at(0.99), "max": at(1)})

    app.router.routes.append(Route("/_lag", lag))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"ws://127.0.0.1:{sock.getsockname()[1]}/ws {os.getpid()}", flush=True)
    config = uvicorn.Config(app, log_level="warning", ws_max_size=1 << 20)
    uvicorn.Server(config).run(sockets=[sock])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    """One browser tab: microphone on a real-time clock, replies played in real time."""

    def __init__(self, url: str, question: bytes, turns: int) -> None:
        self.url, self.question, self.turns = url, question, turns
        self.latencies: list[float] = []
        self.completed = 0
        self.errors: list[str] = []
        self._asking = asyncio.Event()
        self._speech_end = 0.0

    async def _microphone(self, ws: Any) -> None:
        start, sent, pending = time.monotonic(), 0, b""
        while True:
            if not pending and self._asking.is_set():
                self._asking.clear()
                pending = self.question
            frame, pending = pending[:FRAME_BYTES], pending[FRAME_BYTES:]
            await ws.send(frame.ljust(FRAME_BYTES, b"\0"))
            if frame and not pending:
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
                for turn in range(1, self.turns + 1):
                    await asyncio.sleep(0.3)
                    self._asking.set()
                    await self._turn(ws, turn)
                mic.cancel()
        except Exception as err:
            self.errors.append(f"{type(err).__name__}: {err}")

    async def _turn(self, ws: Any, turn: int) -> None:
        first_audio, received = None, 0
        while True:
            frame = await asyncio.wait_for(ws.recv(), 60)
            if isinstance(frame, bytes):
                first_audio = first_audio or time.monotonic()
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
        seconds = received / 2 / REPLY_RATE  # play it in real time, then report, as the page
        await asyncio.sleep(max(0.0, first_audio + 0.08 + seconds - time.monotonic()))
        await ws.send(
            json.dumps({"type": "played", "turn": turn, "seconds": seconds, "done": True})
        )
        self.completed += 1


@contextlib.contextmanager
def servers(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with server_process("benchmarks.web_load:serve_openrouter", None) as url:
        yield {**ctx, "openrouter": url}


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    from langchain_openrouter_audio.voice import resample_pcm16

    clients, turns = (5, 1) if ctx["quick"] else (ctx["clients"], ctx["turns"])
    ramp_s, idle_s = 3.0, 3.0 if ctx["quick"] else 5.0
    question = resample_pcm16(clip_pcm("question"), REPLY_RATE, MIC_RATE)
    with server_process("benchmarks.web_load:serve_app", ctx["openrouter"]) as line:
        url, pid = line.split()[0], int(line.split()[1])
        lag_url = url.replace("ws://", "http://").replace("/ws", "/_lag")
        load_before = os.getloadavg()[0]

        async def load() -> tuple[list[Client], dict[str, Any]]:
            crowd = [Client(url, question, turns) for _ in range(clients)]
            connected: asyncio.Queue[None] = asyncio.Queue()
            go, phases = asyncio.Event(), {}
            await asyncio.to_thread(httpx.get, lag_url)  # starts the app's lag watcher

            async def start(i: int, client: Client) -> None:
                await asyncio.sleep(ramp_s * i / clients)
                await client.run(connected, go, ramp_s * i / clients)

            tasks = [asyncio.create_task(start(i, c)) for i, c in enumerate(crowd)]
            for _ in crowd:  # everyone connected and streaming silence
                await connected.get()
            for phase in ("listen", "talk"):
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                if phase == "listen":
                    await asyncio.sleep(idle_s)
                else:
                    go.set()
                    await asyncio.gather(*tasks)
                lag = (await asyncio.to_thread(httpx.get, lag_url)).json()
                phases[phase] = (cpu_seconds(pid) - cpu0, time.monotonic() - t0, lag)
            return crowd, phases

        crowd, phases = asyncio.run(load())
    latencies = sorted(x for c in crowd for x in c.latencies)
    errors = [e for c in crowd for e in c.errors]
    done = sum(c.completed for c in crowd)
    # Listening costs `idle` CPU-s per session-second; each turn costs `per_turn`.
    (idle_cpu, idle_wall, idle_lag), (cpu, wall, lag) = phases["listen"], phases["talk"]
    idle = idle_cpu / idle_wall / clients
    per_turn = max(0.0, cpu - idle * clients * wall) / max(done, 1)
    return {
        "Web voice app: sessions per core at real-time pace": [
            {
                "clients": clients,
                "turns done": f"{done} / {clients * turns}",
                "errors": len(errors),
                "app CPU per listening session-second": idle,
                "app CPU per turn": per_turn,
                "sessions per core, talking non-stop": round(clients * wall / cpu),
                "sessions per core, a question every 15 s": round(1 / (idle + per_turn / 15)),
                "latency p50": statistics.median(latencies) if latencies else None,
                "latency p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
                "app loop lag p50, talking": lag["p50"],
                "app loop lag p99, talking": lag["p99"],
                "app loop lag p99, listening": idle_lag["p99"],
                "load average before": f"{load_before:.1f}",
            }
        ],
        "Web voice app: first errors": [{"error": e} for e in errors[:5]],
    }
