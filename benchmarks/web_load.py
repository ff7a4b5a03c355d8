"""Sessions per core of the web voice app, under browser-protocol clients at real-time pace.

Each client behaves like the voice page: it says hello, streams its microphone without
pause as 20 ms PCM16 frames at 16 kHz (silence, the shipped spoken question, silence while
it listens), receives the streamed reply, "plays" it in real time and reports playback,
for `--turns` questions. The app (a weather agent, one uvicorn worker) runs in its own
process against `OpenRouterTestServer` in a third, which streams speech at twice real time.
Measured: the app's CPU while everyone only listens, then while they talk, hence CPU per
listening session-second and per turn; its event-loop lag; latency from the end of the
user's speech to the first reply audio (it includes the endpointer's 600 ms of silence).

With ``--remote N`` the agent is a LangGraph deployment instead: the example graph
(examples/langgraph_server) under one `langgraph dev`, its model talking to the same local
OpenRouter server, fronted by N voice workers (`voice_app(RemoteGraph(...))`, one process
each, one shared conversation secret). Each client asks its first question on one worker,
then hangs up and asks the next on the next worker, resuming its conversation by id; a
reconnect that does not resume counts as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import ROOT, server_process

SECRET = "the web_load benchmark's conversation secret"
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
    """Server process: the voice app in front of a local agent."""
    from langchain.agents import create_agent

    from langchain_openrouter_audio import ChatOpenRouterAudio
    from langchain_openrouter_audio.web import voice_app

    llm = ChatOpenRouterAudio(base_url=base_url, api_key="bench-key", timeout=60)
    _serve(voice_app(create_agent(llm, [get_weather])))


def serve_remote_app(langgraph_url: str) -> None:
    """Server process: a voice worker in front of the LangGraph deployment."""
    from langgraph.pregel.remote import RemoteGraph

    from langchain_openrouter_audio.web import voice_app

    graph = RemoteGraph("voice_agent", url=langgraph_url)
    _serve(voice_app(graph, conversation_secret=SECRET, max_sessions=None))


def _serve(app: Any) -> None:
    """Serves `app`, plus `/_lag` (how late a 10 ms sleep wakes); prints its URL and pid."""
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

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
    """One browser tab: microphone on a real-time clock, replies played in real time.

    With several `urls` (voice workers) it asks each question on the next worker, resuming
    its conversation there by the id the first worker gave.
    """

    def __init__(self, urls: list[str], question: bytes, turns: int, first: int = 0) -> None:
        self.urls, self.question, self.turns, self.first = urls, question, turns, first
        self.latencies: list[float] = []
        self.completed = 0
        self.resumed = 0
        self.errors: list[str] = []
        self.conversation: str | None = None
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

    async def _connect(self, hop: int) -> tuple[Any, asyncio.Task[None]]:
        """Connects to worker `first + hop`, says hello (resuming the conversation), starts
        the microphone."""
        import websockets

        url = self.urls[(self.first + hop) % len(self.urls)]
        origin = "http://" + url.split("/")[2]  # as the page's browser sends it
        ws = await websockets.connect(url, max_size=None, origin=origin)
        hello: dict[str, Any] = {"type": "hello", "sample_rate": MIC_RATE}
        if self.conversation is not None:
            hello["conversation"] = self.conversation
        await ws.send(json.dumps(hello))
        while (ready := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "ready":
            pass
        if self.conversation is not None:
            if ready.get("resumed") is True and ready.get("conversation") == self.conversation:
                self.resumed += 1
            else:
                self.errors.append(f"reconnect {hop}: conversation not resumed")
        self.conversation = ready.get("conversation")
        return ws, asyncio.create_task(self._microphone(ws))

    async def run(self, connected: asyncio.Queue[None], go: asyncio.Event, delay: float) -> None:
        ws, mic = None, None
        try:
            ws, mic = await self._connect(0)
            connected.put_nowait(None)
            await go.wait()
            await asyncio.sleep(delay)  # spread the first questions out
            turn = 0
            for asked in range(self.turns):
                if asked and len(self.urls) > 1:  # hang up; the next worker resumes
                    mic.cancel()
                    await ws.close()
                    ws, mic = await self._connect(asked)
                    turn = 0
                turn += 1
                await asyncio.sleep(0.3)
                self._asking.set()
                await self._turn(ws, turn)
        except Exception as err:
            self.errors.append(f"{type(err).__name__}: {err}")
        finally:
            if mic is not None:
                mic.cancel()
            if ws is not None:
                await ws.close()

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
        if not ctx.get("remote"):
            yield {**ctx, "openrouter": url}
            return
        with langgraph_dev(url) as (langgraph_url, pid):
            yield {**ctx, "openrouter": url, "langgraph": langgraph_url, "langgraph_pid": pid}


@contextlib.contextmanager
def langgraph_dev(openrouter_url: str) -> Iterator[tuple[str, int]]:
    """`langgraph dev` serving examples/langgraph_server, its model on `openrouter_url`."""
    cli = Path(sys.executable).with_name("langgraph")
    if not cli.exists():
        raise RuntimeError("--remote needs the langgraph CLI: pip install 'langgraph-cli[inmem]'")
    workdir = Path(tempfile.mkdtemp(prefix="web-load-langgraph-"))
    for name in ("langgraph.json", "voice_agent.py"):
        shutil.copy(ROOT / "examples" / "langgraph_server" / name, workdir / name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "OPENROUTER_API_KEY": "bench-key",
        "OPENROUTER_BASE_URL": openrouter_url,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
    }
    cmd = [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n-jobs-per-worker", "100"]
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited; see {workdir / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"langgraph dev not ready; see {workdir / 'server.log'}")
            time.sleep(0.3)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    from langchain_openrouter_audio.voice import resample_pcm16

    clients, turns = (5, 1) if ctx["quick"] else (ctx["clients"], ctx["turns"])
    ramp_s, idle_s = 3.0, 3.0 if ctx["quick"] else 5.0
    question = resample_pcm16(clip_pcm("question"), REPLY_RATE, MIC_RATE)
    remote = int(ctx.get("remote") or 0)
    with contextlib.ExitStack() as stack:
        if remote:
            ref, arg = "benchmarks.web_load:serve_remote_app", ctx["langgraph"]
        else:
            ref, arg = "benchmarks.web_load:serve_app", ctx["openrouter"]
        lines = [stack.enter_context(server_process(ref, arg)) for _ in range(max(remote, 1))]
        urls = [line.split()[0] for line in lines]
        pids = [int(line.split()[1]) for line in lines]
        lag_url = urls[0].replace("ws://", "http://").replace("/ws", "/_lag")
        backend = [ctx["langgraph_pid"]] if remote else []
        load_before = os.getloadavg()[0]

        async def load() -> tuple[list[Client], dict[str, Any]]:
            crowd = [Client(urls, question, turns, first=i) for i in range(clients)]
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
                cpu0, t0 = sum(map(cpu_seconds, pids)), time.monotonic()
                back0 = sum(map(cpu_seconds, backend))
                if phase == "listen":
                    await asyncio.sleep(idle_s)
                else:
                    go.set()
                    await asyncio.gather(*tasks)
                lag = (await asyncio.to_thread(httpx.get, lag_url)).json()
                cpu = sum(map(cpu_seconds, pids)) - cpu0
                phases[phase] = (cpu, time.monotonic() - t0, lag)
                phases[f"{phase} backend"] = sum(map(cpu_seconds, backend)) - back0
            return crowd, phases

        crowd, phases = asyncio.run(load())
    latencies = sorted(x for c in crowd for x in c.latencies)
    errors = [e for c in crowd for e in c.errors]
    done = sum(c.completed for c in crowd)
    p50 = statistics.median(latencies) if latencies else None
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
    # Listening costs `idle` CPU-s per session-second; each turn costs `per_turn`.
    (idle_cpu, idle_wall, idle_lag), (cpu, wall, lag) = phases["listen"], phases["talk"]
    idle = idle_cpu / idle_wall / clients
    per_turn = max(0.0, cpu - idle * clients * wall) / max(done, 1)
    if remote:
        row = {
            "voice workers": remote,
            "clients": clients,
            "turns done": f"{done} / {clients * turns}",
            "resumed on another worker": sum(c.resumed for c in crowd),
            "errors": len(errors),
            "first audio p50": p50,
            "first audio p95": p95,
            "workers' CPU per turn": per_turn,
            "langgraph dev CPU per turn": phases["talk backend"] / max(done, 1),
            "worker 1 loop lag p99, talking": lag["p99"],
            "load average before": f"{load_before:.1f}",
        }
        title = f"Voice workers in front of langgraph dev ({remote} workers)"
        return {title: [row], "Voice workers: first errors": [{"error": e} for e in errors[:5]]}
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
                "latency p50": p50,
                "latency p95": p95,
                "app loop lag p50, talking": lag["p50"],
                "app loop lag p99, talking": lag["p99"],
                "app loop lag p99, listening": idle_lag["p99"],
                "load average before": f"{load_before:.1f}",
            }
        ],
        "Web voice app: first errors": [{"error": e} for e in errors[:5]],
    }
