"""Sessions per core of the web voice app, under clients speaking its browser protocol.

Each client does what the voice page does, at real-time pace: says hello, streams its
microphone without pause (20 ms PCM16 frames at 16 kHz: silence, the shipped spoken
question, silence while it listens), receives the streamed reply, "plays" it in real time
and reports playback, for `--turns` questions. The app (a weather agent, one uvicorn
worker) runs in a process of its own against `OpenRouterTestServer` in another, which
streams speech at twice real time. Measured: the app's CPU while everyone only listens,
then while they talk (hence CPU per listening session-second and per turn); its event-loop
lag; the latency from the end of the user's speech to the first reply audio (the
endpointer's 600 ms of silence included).

With `--remote N` the agent is the example LangGraph deployment (examples/langgraph_server)
under one `langgraph dev`, fronted by N voice workers (one process each, one conversation
secret). Each client asks each question on the next worker, resuming its conversation
there; a reconnect that does not resume counts as an error.
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

from benchmarks import harness as h

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


def serve_app(arg: dict[str, str]) -> None:
    """Server process: the voice app in front of a local agent talking to `openrouter`, or
    of the deployment at `langgraph`; prints its URL and pid. `/_lag` says how late a 10 ms
    timer fired since the last call (the first call starts the timer)."""
    import uvicorn
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from langchain_openrouter_audio.web import voice_app

    if "langgraph" in arg:
        from langgraph.pregel.remote import RemoteGraph

        graph = RemoteGraph("voice_agent", url=arg["langgraph"])
        app = voice_app(graph, conversation_secret=SECRET, max_sessions=None)
    else:
        from langchain.agents import create_agent

        from langchain_openrouter_audio import ChatOpenRouterAudio

        llm = ChatOpenRouterAudio(base_url=arg["openrouter"], api_key="bench-key", timeout=60)
        app = voice_app(create_agent(llm, [get_weather]))
    lags: list[float] = []

    async def lag(_request: Any) -> JSONResponse:
        if not hasattr(app.state, "timer"):
            app.state.timer = asyncio.create_task(h.record_lag(0.01, lags))
        seen = list(lags)
        lags.clear()
        return JSONResponse({q: h.pct(seen, x) for q, x in (("p50", 0.5), ("p99", 0.99))})

    app.router.routes.append(Route("/_lag", lag))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"ws://127.0.0.1:{sock.getsockname()[1]}/ws {os.getpid()}", flush=True)
    config = uvicorn.Config(app, log_level="warning", ws_max_size=1 << 20)
    uvicorn.Server(config).run(sockets=[sock])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Client:
    """One browser tab: a microphone on a real-time clock, replies played in real time.

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
        """Say hello to worker `first + hop` (resuming the conversation), start the mic."""
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
        played = {"type": "played", "turn": turn, "seconds": seconds, "done": True}
        await ws.send(json.dumps(played))
        self.completed += 1


@contextlib.contextmanager
def servers(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with h.server_process("benchmarks.web_load:serve_openrouter", None) as url:
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
        shutil.copy(h.ROOT / "examples" / "langgraph_server" / name, workdir / name)
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
    served = False
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
        served = True
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        if served:  # after a failure, its server.log is what to read
            shutil.rmtree(workdir, ignore_errors=True)


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    from langchain_openrouter_audio.voice import resample_pcm16

    clients, turns = (5, 1) if ctx["quick"] else (ctx["clients"], ctx["turns"])
    idle_s = 3.0 if ctx["quick"] else 5.0
    question = resample_pcm16(clip_pcm("question"), REPLY_RATE, MIC_RATE)
    remote = ctx["remote"]
    arg = {"langgraph": ctx["langgraph"]} if remote else {"openrouter": ctx["openrouter"]}
    load_before = f"{os.getloadavg()[0]:.1f}"
    with contextlib.ExitStack() as stack:
        apps = []
        for _ in range(max(remote, 1)):
            line = stack.enter_context(h.server_process("benchmarks.web_load:serve_app", arg))
            apps.append(line.split())
        urls = [url for url, _pid in apps]
        app_pids = [int(pid) for _url, pid in apps]
        backend_pids = [ctx["langgraph_pid"]] if remote else []
        crowd = [Client(urls, question, turns, first=i) for i in range(clients)]
        lag_url = urls[0].replace("ws://", "http://").replace("/ws", "/_lag")
        phases = asyncio.run(load(crowd, lag_url, app_pids, backend_pids, idle_s))
    latencies = [x for c in crowd for x in c.latencies]
    errors = [e for c in crowd for e in c.errors]
    done = sum(c.completed for c in crowd)
    p50 = h.med(latencies) if latencies else None
    p95 = h.pct(latencies, 0.95) if latencies else None
    # Listening costs `idle` CPU-s per session-second; each turn costs `per_turn`.
    listen, talk = phases["listen"], phases["talk"]
    idle = listen["cpu"] / listen["wall"] / clients
    per_turn = max(0.0, talk["cpu"] - idle * clients * talk["wall"]) / max(done, 1)
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
            "langgraph dev CPU per turn": talk["backend cpu"] / max(done, 1),
            "worker 1 loop lag p99, talking": talk["lag"]["p99"],
            "load average before": load_before,
        }
        title = f"Voice workers in front of langgraph dev ({remote} workers)"
        return {title: [row], "Voice workers: first errors": [{"error": e} for e in errors[:5]]}
    row = {
        "clients": clients,
        "turns done": f"{done} / {clients * turns}",
        "errors": len(errors),
        "app CPU per listening session-second": idle,
        "app CPU per turn": per_turn,
        "sessions per core, talking non-stop": round(clients * talk["wall"] / talk["cpu"]),
        "sessions per core, a question every 15 s": round(1 / (idle + per_turn / 15)),
        "latency p50": p50,
        "latency p95": p95,
        "app loop lag p50, talking": talk["lag"]["p50"],
        "app loop lag p99, talking": talk["lag"]["p99"],
        "app loop lag p99, listening": listen["lag"]["p99"],
        "load average before": load_before,
    }
    return {
        "Web voice app: sessions per core at real-time pace": [row],
        "Web voice app: first errors": [{"error": e} for e in errors[:5]],
    }


async def load(
    crowd: list[Client], lag_url: str, pids: list[int], backend: list[int], idle_s: float
) -> dict[str, dict[str, Any]]:
    """Connect everyone (spread over 3 s), let them listen for `idle_s`, then let them
    talk: each phase's CPU of the apps and of the backend, wall time and app loop lag."""
    ramp_s, connected, go = 3.0, asyncio.Queue[None](), asyncio.Event()
    await asyncio.to_thread(httpx.get, lag_url)  # starts the app's lag timer

    async def start(i: int, client: Client) -> None:
        await asyncio.sleep(ramp_s * i / len(crowd))
        await client.run(connected, go, ramp_s * i / len(crowd))

    tasks = [asyncio.create_task(start(i, c)) for i, c in enumerate(crowd)]
    for _ in crowd:  # everyone connected and streaming silence
        await connected.get()
    phases = {}
    for phase in ("listen", "talk"):
        cpu, backend_cpu, t0 = cpu_seconds(pids), cpu_seconds(backend), time.monotonic()
        if phase == "listen":
            await asyncio.sleep(idle_s)
        else:
            go.set()
            await asyncio.gather(*tasks)
        phases[phase] = {
            "lag": (await asyncio.to_thread(httpx.get, lag_url)).json(),
            "cpu": cpu_seconds(pids) - cpu,
            "wall": time.monotonic() - t0,
            "backend cpu": cpu_seconds(backend) - backend_cpu,
        }
    return phases
