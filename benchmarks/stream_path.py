"""The stream path (issue 9): `astream` vs `ainvoke`, summing, many sessions, tiny deltas.

    python benchmarks/stream_path.py                  # this tree only: about 2 min on 2 cores
    python benchmarks/stream_path.py --quick          # shorter replies: about 1 min
    python benchmarks/stream_path.py --before /tmp/before --out results.json   # about 4 min
    python benchmarks/stream_path.py --before /tmp/before --tree mid=/tmp/mid  # one more side
    python benchmarks/stream_path.py --profile sessions   # cProfile of one case

Every case runs in a client process of its own ("after": this tree; "before":
the tree given by `--before`, put first on `PYTHONPATH`; any `--tree LABEL=PATH`
likewise), against servers in processes of their own:

* a replay server (`replay.py`) serving byte-for-byte what `OpenRouterTestServer`
  sent for each scripted reply (rendering costs nothing at timing time);
* `OpenRouterTestServer` itself (`--serve` mode of this script), pacing events
  with `event_delay_s` for the real-time sessions case.

Replies are `speech_reply(...)`: 24 kHz PCM16 in 4800-byte (100 ms) pieces,
the transcript (~14 characters a second, 4-character pieces) interleaved.
Reported are ratios inside one client process (astream / ainvoke, ours /
floor); the floor is `floor.py` (stream, split SSE, `json.loads` each event,
base64-decode each piece). Results go to stdout (markdown), and to `--out`
(JSON) only when asked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

KEY = "test-key"
MODEL = "openai/gpt-audio-mini"
PROMPT = "Read me the long story."
SAMPLE_RATE = 24_000
PIECE = 4800  # bytes of PCM per audio event: 100 ms
TICK_S = 0.002  # the lag ticker's period
PLUS_CAP_S = 10.0  # a quadratic sum is cut here and extrapolated


# -- replies ----------------------------------------------------------------------


def pcm_of(seconds: float) -> bytes:
    from langchain_openrouter_audio.testing import tone_pcm16

    return tone_pcm16(1.0) * int(seconds) + tone_pcm16(seconds - int(seconds))


def transcript_of(seconds: float) -> str:
    # About 2.5 words a second, as spoken.
    return ("The quick brown fox jumps. " * (int(seconds) + 1))[: int(seconds * 14)]


def speech(seconds: float, **kw: Any) -> Any:
    from langchain_openrouter_audio.testing import speech_reply

    return speech_reply(
        pcm_of(seconds), transcript_of(seconds), audio_piece_bytes=PIECE, interleave=True, **kw
    )


def tiny(n: int) -> Any:
    """`n` one-character transcript deltas over 10 s of speech."""
    from langchain_openrouter_audio.testing import speech_reply

    text = ("abcdefghij klmnopqrst " * (n // 20 + 1))[:n]
    return speech_reply(
        pcm_of(10), text, audio_piece_bytes=PIECE, text_piece_chars=1, interleave=True
    )


def paced(seconds: float) -> Any:
    """A reply whose events are spread over about `seconds`: real-time pace."""
    events = seconds * SAMPLE_RATE * 2 / PIECE + len(transcript_of(seconds)) / 4
    return speech(seconds, event_delay_s=seconds / events)


def request_body(stream: bool = True) -> bytes:
    return json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": PROMPT}],
            "modalities": ["text", "audio"],
            "audio": {"voice": "alloy", "format": "pcm16"},
            "stream": stream,
        }
    ).encode()


def headers() -> dict[str, str]:
    return {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }


# -- servers ----------------------------------------------------------------------


def record_payloads(lengths: list[int], conc_s: int, tiny_n: int) -> dict[str, Any]:
    """What `OpenRouterTestServer` sends for each reply, for the replay server."""
    import httpx
    from replay import Payload, split_events

    from langchain_openrouter_audio.testing import OpenRouterTestServer

    replies = {f"speech{s}": speech(s) for s in {*lengths, conc_s, 2}}
    replies["tiny"] = tiny(tiny_n)
    payloads = {}
    with OpenRouterTestServer(api_key=KEY) as server, httpx.Client(timeout=120) as client:
        for name, reply in replies.items():
            server.enqueue(reply)
            url = f"{server.base_url}/chat/completions"
            with client.stream("POST", url, content=request_body(), headers=headers()) as r:
                data = b"".join(r.iter_raw())
                assert r.status_code == 200, data[:300]
            payloads[name] = Payload(events=split_events(data))
    return payloads


def serve() -> None:
    """`--serve`: `OpenRouterTestServer` in this process; the prompt names the reply.

    Prompts: "paced <seconds>" (events spread over the reply's length).
    """
    from langchain_openrouter_audio.testing import OpenRouterTestServer

    def respond(request: Any) -> Any:
        words = json.loads(request.body)["messages"][-1]["content"]
        if isinstance(words, list):
            words = words[0]["text"]
        _kind, value = words.split()
        return paced(float(value))

    server = OpenRouterTestServer(api_key=KEY).start()
    server.responder = respond
    print(server.base_url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes the pipe
    finally:
        server.stop()


# -- measuring --------------------------------------------------------------------


class Ticker:
    """How late a task that sleeps `TICK_S` wakes: the event loop's lag."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            t = clock()
            await asyncio.sleep(TICK_S)
            self.lags.append(clock() - t - TICK_S)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class GcWatch:
    """Every garbage collection while on: generation and pause."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t = 0.0

    def _cb(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._cb)

    def summary(self) -> dict[str, Any]:
        full = [p for g, p in self.pauses if g == 2]
        return {
            "gc_max_s": max((p for _, p in self.pauses), default=0.0),
            "gc_total_s": sum(p for _, p in self.pauses),
            "gc_full": len(full),
            "gc_full_max_s": max(full, default=0.0),
        }


async def watched(fn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run `fn` under the ticker and the GC watch: wall time, longest stall, GC pauses."""
    gc.collect()
    ticker = Ticker()
    ticker.start()
    await asyncio.sleep(0)
    with GcWatch() as g:
        t = time.perf_counter()
        result = await fn()
        wall = time.perf_counter() - t
    await ticker.stop()
    return {
        "wall_s": wall,
        "stall_s": max(ticker.lags, default=0.0),
        "result": result,
        **g.summary(),
    }


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else 0.0


def audio_of(message: Any) -> str:
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "audio"]
    assert len(blocks) == 1, [type(b) for b in message.content]
    return str(blocks[0].get("base64") or blocks[0].get("data"))


# -- the client process -----------------------------------------------------------


class Client:
    """One side ("after" or "before") in its own process."""

    def __init__(self, args: argparse.Namespace) -> None:
        import httpx

        from langchain_openrouter_audio import ChatOpenRouterAudio, audio_pcm

        self.args = args
        self.side = args.side
        self.ports = json.loads(args.urls)
        self.cls = ChatOpenRouterAudio
        self.audio_pcm = audio_pcm
        self.httpx = httpx
        package = Path(__import__("langchain_openrouter_audio").__file__).parent
        git = ["git", "-C", str(package.parent)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "langchain_openrouter_audio"],
            capture_output=True,
            text=True,
        )
        self.out: dict[str, Any] = {
            "side": self.side,
            "package": str(package),
            "commit": head.stdout.strip() + (" + uncommitted changes" if dirty.stdout else ""),
        }

    def floor_client(self) -> Any:
        # The pool the package's own async client has: no cap, every connection kept.
        limits = self.httpx.Limits(max_connections=None, max_keepalive_connections=None)
        return self.httpx.AsyncClient(timeout=120, limits=limits)

    def url(self, name: str) -> str:
        return f"{self.ports['replay']}/p/{name}/api/v1"

    def model(self, name: str) -> Any:
        return self.cls(api_key=KEY, base_url=self.url(name), model=MODEL)

    # -- case: astream vs ainvoke --------------------------------------------------

    async def stream_vs_invoke(self, lengths: list[int], reps: dict[int, int]) -> None:
        rows = []
        for frozen in (False, True) if self.side == "after" else (False,):
            if frozen:
                gc.collect()
                gc.freeze()
            for s in lengths:
                rows.append(await self._svi(s, reps[s], frozen))
            if frozen:
                gc.unfreeze()
        self.out["stream_vs_invoke"] = rows

    async def _svi(self, seconds: int, reps: int, frozen: bool) -> dict[str, Any]:
        model = self.model(f"speech{seconds}")
        pcm = pcm_of(seconds)
        msg = await model.ainvoke(PROMPT)
        assert self.audio_pcm(msg) == pcm, "ainvoke: audio differs"
        del msg

        async def astream() -> int:
            n = 0
            async for _chunk in model.astream(PROMPT):
                n += 1
            return n

        async def ainvoke() -> int:
            await model.ainvoke(PROMPT)
            return 1

        runs: dict[str, list[dict[str, Any]]] = {"astream": [], "ainvoke": []}
        fns = {"astream": astream, "ainvoke": ainvoke}
        for i in range(reps):
            for name in ("astream", "ainvoke") if i % 2 == 0 else ("ainvoke", "astream"):
                runs[name].append(await watched(fns[name]))
        row: dict[str, Any] = {"seconds": seconds, "reps": reps, "gc_frozen": frozen}
        for name, rs in runs.items():
            row[f"{name}_s"] = med([r["wall_s"] for r in rs])
            row[f"{name}_stall_s"] = max(r["stall_s"] for r in rs)
            row[f"{name}_gc_max_s"] = max(r["gc_max_s"] for r in rs)
            row[f"{name}_gc_full"] = max(r["gc_full"] for r in rs)
        row["chunks"] = runs["astream"][0]["result"]
        row["ratio"] = med(
            [
                a["wall_s"] / b["wall_s"]
                for a, b in zip(runs["astream"], runs["ainvoke"], strict=True)
            ]
        )
        return row

    # -- case: summing ---------------------------------------------------------------

    def summing(self, lengths: list[int]) -> None:
        try:
            from langchain_openrouter_audio import join_chunks
        except ImportError:
            join_chunks = None
        rows = []
        for s in lengths:
            chunks = list(self.model(f"speech{s}").stream(PROMPT))
            pcm = pcm_of(s)
            row: dict[str, Any] = {"seconds": s, "chunks": len(chunks)}
            if join_chunks is not None:
                gc.collect()
                t = time.perf_counter()
                joined = join_chunks(chunks)
                row["join_s"] = time.perf_counter() - t
                assert self.audio_pcm(joined) == pcm, "join_chunks: audio differs"
                del joined
            gc.collect()
            t = time.perf_counter()
            total, k = chunks[0], 1
            for chunk in chunks[1:]:
                total = total + chunk
                k += 1
                if k % 16 == 0 and time.perf_counter() - t > PLUS_CAP_S:
                    break
            took = time.perf_counter() - t
            row["plus_done"] = k == len(chunks)
            if row["plus_done"]:
                row["plus_s"] = took
                assert self.audio_pcm(total) == pcm, "+: audio differs"
            else:  # quadratic: time grows with the square of the chunks summed
                row["plus_s"] = took * (len(chunks) / k) ** 2
                row["plus_summed"] = k
            del total, chunks
            rows.append(row)
        self.out["summing"] = rows

    # -- case: many sessions, CPU ----------------------------------------------------

    async def sessions_cpu(self, n: int, seconds: int, rounds: int) -> None:
        from floor import afloor_invoke

        name = f"speech{seconds}"
        model = self.model(name)
        client = self.floor_client()
        endpoint = f"{self.url(name)}/chat/completions"
        body, hdrs = request_body(), headers()

        async def one_stream() -> int:
            k = 0
            async for _chunk in model.astream(PROMPT):
                k += 1
            return k

        async def one_floor() -> Any:
            return await afloor_invoke(client, endpoint, hdrs, body)

        fns = {
            "astream": one_stream,
            "ainvoke": lambda: model.ainvoke(PROMPT),
            "floor": one_floor,
        }
        for fn in fns.values():  # warm-up: connections and imports
            await asyncio.gather(*(fn() for _ in range(n)))
        cpu: dict[str, list[float]] = {k: [] for k in fns}
        wall: dict[str, list[float]] = {k: [] for k in fns}
        names = list(fns)
        for i in range(rounds):
            for k in names if i % 2 == 0 else names[::-1]:
                gc.collect()
                c, t = time.process_time(), time.perf_counter()
                await asyncio.gather(*(fns[k]() for _ in range(n)))
                cpu[k].append(time.process_time() - c)
                wall[k].append(time.perf_counter() - t)
        await client.aclose()
        row: dict[str, Any] = {"sessions": n, "seconds": seconds, "rounds": rounds}
        for k in names:
            row[f"{k}_cpu_s"] = med(cpu[k])
            row[f"{k}_wall_s"] = med(wall[k])
        for k in ("astream", "ainvoke"):
            row[f"{k}_ratio"] = med([a / b for a, b in zip(cpu[k], cpu["floor"], strict=True)])
        self.out["sessions_cpu"] = row

    # -- case: 10^5 tiny deltas ------------------------------------------------------

    async def tiny_deltas(self, n: int, reps: int) -> None:
        from floor import afloor_invoke

        model = self.model("tiny")
        client = self.httpx.AsyncClient(timeout=120)
        endpoint = f"{self.url('tiny')}/chat/completions"
        body, hdrs = request_body(), headers()
        msg = await model.ainvoke(PROMPT)
        assert len(msg.text) == n, len(msg.text)
        del msg

        async def astream() -> int:
            k = 0
            async for _chunk in model.astream(PROMPT):
                k += 1
            return k

        async def ainvoke() -> int:
            await model.ainvoke(PROMPT)
            return 1

        async def floor() -> int:
            await afloor_invoke(client, endpoint, hdrs, body)
            return 0

        fns = {"floor": floor, "astream": astream, "ainvoke": ainvoke}
        await floor()
        rows = []
        # With gc.freeze() (after only): one round, to bound the run.
        for frozen in (False, True) if self.side == "after" else (False,):
            if frozen:
                gc.collect()
                gc.freeze()
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in fns}
            for i in range(1 if frozen else reps):
                for k in list(fns) if i % 2 == 0 else list(fns)[::-1]:
                    runs[k].append(await watched(fns[k]))
            if frozen:
                gc.unfreeze()
            row: dict[str, Any] = {
                "deltas": n,
                "gc_frozen": frozen,
                "reps": len(runs["floor"]),
                "chunks": runs["astream"][0]["result"],
            }
            for k, rs in runs.items():
                row[f"{k}_s"] = med([r["wall_s"] for r in rs])
                row[f"{k}_stall_s"] = max(r["stall_s"] for r in rs)
                row[f"{k}_gc_max_s"] = max(r["gc_max_s"] for r in rs)
                row[f"{k}_gc_full"] = max(r["gc_full"] for r in rs)
                row[f"{k}_gc_total_s"] = med([r["gc_total_s"] for r in rs])
            for k in ("astream", "ainvoke"):
                row[f"{k}_ratio"] = med(
                    [a["wall_s"] / b["wall_s"] for a, b in zip(runs[k], runs["floor"], strict=True)]
                )
            rows.append(row)
        await client.aclose()
        self.out["tiny"] = rows

    # -- case: invoke vs the floor (sync) --------------------------------------------

    def invoke_floor(self, lengths: list[int], reps: dict[int, int]) -> None:
        from floor import floor_invoke

        rows = []
        client = self.httpx.Client(timeout=120)
        for s in lengths:
            model = self.model(f"speech{s}")
            endpoint = f"{self.url(f'speech{s}')}/chat/completions"
            body, hdrs = request_body(), headers()
            fns = {
                "floor": lambda e=endpoint, h=hdrs, b=body: floor_invoke(client, e, h, b),
                "invoke": lambda m=model: m.invoke(PROMPT),
            }
            for fn in fns.values():
                fn()
            times: dict[str, list[float]] = {k: [] for k in fns}
            for i in range(reps[s]):
                for k in list(fns) if i % 2 == 0 else list(fns)[::-1]:
                    gc.collect()
                    t = time.perf_counter()
                    fns[k]()
                    times[k].append(time.perf_counter() - t)
            rows.append(
                {
                    "seconds": s,
                    "reps": reps[s],
                    "floor_s": med(times["floor"]),
                    "invoke_s": med(times["invoke"]),
                    "ratio": med(
                        [a / b for a, b in zip(times["invoke"], times["floor"], strict=True)]
                    ),
                }
            )
        client.close()
        self.out["invoke_floor"] = rows

    # -- case: sessions at real-time pace --------------------------------------------

    async def paced_lag(self, which: str, n: int, seconds: int) -> None:
        from floor import afloor_invoke

        base = self.ports["paced"]
        model = self.cls(api_key=KEY, base_url=base, model=MODEL)
        client = self.floor_client()
        body = json.dumps(
            {**json.loads(request_body()), "messages": [{"role": "user", "content": "paced 1"}]}
        ).encode()
        prompt = f"paced {seconds}"
        full = json.dumps(
            {**json.loads(request_body()), "messages": [{"role": "user", "content": prompt}]}
        ).encode()

        async def one(b: bytes, p: str) -> None:
            if which == "floor":
                await afloor_invoke(client, f"{base}/chat/completions", headers(), b)
            else:
                async for _chunk in model.astream(p):
                    pass

        await asyncio.gather(*(one(body, "paced 1") for _ in range(n)))  # warm-up, connections
        gc.collect()
        if which.endswith("+gc.freeze"):
            gc.freeze()
        ticker = Ticker()
        ticker.start()
        with GcWatch() as g:
            c, t = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(full, prompt) for _ in range(n)))
            cpu, wall = time.process_time() - c, time.perf_counter() - t
        await ticker.stop()
        await client.aclose()
        lags = ticker.lags
        self.out["paced"] = {
            "which": which,
            "sessions": n,
            "seconds": seconds,
            "wall_s": wall,
            "cpu_s": cpu,
            "lag_p50_s": med(lags),
            "lag_p99_s": p99(lags),
            "lag_max_s": max(lags),
            "ticks": len(lags),
            **g.summary(),
        }


def client_main(args: argparse.Namespace) -> None:
    c = Client(args)
    cfg = json.loads(args.config)
    if args.paced:
        asyncio.run(c.paced_lag(args.paced, cfg["paced_n"], cfg["paced_s"]))
    else:
        reps = {int(k): v for k, v in cfg["reps"].items()}

        async def run_async() -> None:
            await c.stream_vs_invoke(cfg["lengths"], reps)
            await c.tiny_deltas(cfg["tiny_n"], cfg["tiny_reps"])
            await c.sessions_cpu(cfg["sessions"], cfg["conc_s"], cfg["cpu_rounds"])

        # The async cases first: a fresh heap, as a server has.
        asyncio.run(run_async())
        c.invoke_floor(cfg["invoke_lengths"], {int(k): v for k, v in cfg["invoke_reps"].items()})
        c.summing(cfg["lengths"])
    print(json.dumps(c.out))


def profile_main(args: argparse.Namespace) -> None:
    """`--profile WHAT`: cProfile of one case in this process, against the replay server.

    WHAT: `sessions` (50 concurrent `astream` of a 30 s reply), `astream600`,
    `tiny` (`astream` of 10^5 deltas), `invoke60` (20 sync `invoke` of 60 s).
    Shares are of tottime, grouped by where the code lives.
    """
    import cProfile
    import pstats

    from replay import ReplayProcess

    from langchain_openrouter_audio import ChatOpenRouterAudio

    what = args.profile
    name = {"sessions": "speech30", "astream600": "speech600", "tiny": "tiny"}.get(what, "speech60")
    payloads = record_payloads(
        [], 30 if what == "sessions" else 2, 100_000 if what == "tiny" else 10
    )
    if what == "astream600":
        payloads.update(record_payloads([600], 2, 10))
    elif what == "invoke60":
        payloads.update(record_payloads([60], 2, 10))
    profiler = cProfile.Profile()
    with ReplayProcess({name: payloads[name]}) as replay:
        url = f"http://127.0.0.1:{replay.port}/p/{name}/api/v1"
        model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
        n = 50 if what == "sessions" else 1

        import httpx
        from floor import afloor_invoke

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        floor_client = httpx.AsyncClient(timeout=120, limits=limits)

        async def one() -> None:
            if args.profile_floor:
                endpoint = f"{url}/chat/completions"
                await afloor_invoke(floor_client, endpoint, headers(), request_body())
                return
            async for _chunk in model.astream(PROMPT):
                pass

        async def run() -> None:
            await asyncio.gather(*(one() for _ in range(n)))  # warm-up
            gc.collect()
            profiler.enable()
            await asyncio.gather(*(one() for _ in range(n)))
            profiler.disable()

        if what == "invoke60":
            model.invoke(PROMPT)
            profiler.enable()
            for _ in range(20):
                model.invoke(PROMPT)
            profiler.disable()
        else:
            asyncio.run(run())
    stats = pstats.Stats(profiler)
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in rows.values())
    groups: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in rows.items():
        if "langchain_openrouter_audio" in file:
            key = "ours: " + Path(file).name
        elif "langchain_core" in file:
            key = "langchain_core: " + Path(file).name
        elif "pydantic" in file or "validate_python" in func:
            key = "pydantic"
        elif any(m in file for m in ("httpx", "httpcore", "h11", "anyio")):
            key = "httpx/httpcore/h11/anyio"
        elif "asyncio" in file or "select" in func:
            key = "asyncio"
        elif "json" in file or func in ("<method 'decode' of 'json.decoder.JSONDecoder' objects>",):
            key = "json"
        elif "b64decode" in func or "a2b_base64" in func or "base64" in file:
            key = "base64"
        else:
            key = "other: " + (Path(file).name if file != "~" else func)
        groups[key] = groups.get(key, 0.0) + tt
    print(f"# cProfile, {what}: {total:.2f} s of tottime\n")
    print("| where | share |\n|---|---|")
    for key, tt in sorted(groups.items(), key=lambda kv: -kv[1])[:20]:
        print(f"| {key} | {tt / total * 100:.1f} % |")
    print()
    stats.sort_stats("tottime").print_stats(25)


# -- the parent -------------------------------------------------------------------


def run_client(
    side: str, tree: str | None, urls: dict[str, str], cfg: dict[str, Any], paced: str | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        "--side",
        side,
        "--urls",
        json.dumps(urls),
        "--config",
        json.dumps(cfg),
    ]
    if paced:
        cmd += ["--paced", paced]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} client failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def markdown_paced(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "paced" in r:
        out.append("\n### Sessions at real-time pace: event-loop lag (2 ms ticker)\n")
        out.append(
            "| client | sessions x speech | wall | CPU | lag p50 | lag p99 | lag max | "
            "longest GC pause (full GCs) |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for x in r["paced"]:
            out.append(
                f"| {x['which']} | {x['sessions']} x {x['seconds']} s | {ms(x['wall_s'])} | "
                f"{ms(x['cpu_s'])} | {ms(x['lag_p50_s'])} | **{ms(x['lag_p99_s'])}** | "
                f"{ms(x['lag_max_s'])} | {ms(x['gc_max_s'])} ({x['gc_full']}) |"
            )
    return out


def markdown(r: dict[str, Any]) -> str:
    sides = ["before", *r.get("trees", {}), "after"]
    sides = [s for s in sides if s in r]
    out = [f"Run {r['date']}, {r['nproc']} CPUs, Python {r['python']}, {r['wall_s']:.0f} s."]
    for side in sides:
        out.append(f"{side}: `{r[side]['package']}` at {r[side]['commit']}.")
    out.append("")
    if not sides:  # --paced-only
        return "\n".join(out + markdown_paced(r))
    out.append("### astream (chunks consumed) vs ainvoke, same reply\n")
    out.append(
        "| side | gc.freeze | speech | chunks | ainvoke | astream | astream / ainvoke | "
        "longest stall astream / ainvoke | longest GC pause (full GCs) astream / ainvoke | reps |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for side in sides:
        for x in r[side]["stream_vs_invoke"]:
            out.append(
                f"| {side} | {'yes' if x['gc_frozen'] else 'no'} | {x['seconds']} s | "
                f"{x['chunks']} | {ms(x['ainvoke_s'])} | {ms(x['astream_s'])} | "
                f"**{x['ratio']:.2f}x** | "
                f"{ms(x['astream_stall_s'])} / {ms(x['ainvoke_stall_s'])} | "
                f"{ms(x['astream_gc_max_s'])} ({x['astream_gc_full']}) / "
                f"{ms(x['ainvoke_gc_max_s'])} ({x['ainvoke_gc_full']}) | {x['reps']} |"
            )
    out.append("\n### Summing the chunks of `stream()`\n")
    out.append("| side | speech | chunks | `join_chunks` | `+` one by one |")
    out.append("|---|---|---|---|---|")
    for side in sides:
        for x in r[side]["summing"]:
            join = ms(x["join_s"]) if "join_s" in x else "n/a"
            plus = ms(x["plus_s"])
            if not x["plus_done"]:
                plus = f"~{plus} (cut after {x['plus_summed']} chunks, extrapolated as n²)"
            out.append(f"| {side} | {x['seconds']} s | {x['chunks']} | {join} | {plus} |")
    out.append("\n### Concurrent sessions through `astream`: client CPU vs the floor\n")
    out.append(
        "| side | sessions x speech | floor CPU | astream CPU | astream / floor | "
        "ainvoke CPU | ainvoke / floor | rounds |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for side in sides:
        x = r[side]["sessions_cpu"]
        out.append(
            f"| {side} | {x['sessions']} x {x['seconds']} s | {ms(x['floor_cpu_s'])} | "
            f"{ms(x['astream_cpu_s'])} | **{x['astream_ratio']:.2f}x** | "
            f"{ms(x['ainvoke_cpu_s'])} | {x['ainvoke_ratio']:.2f}x | {x['rounds']} |"
        )
    out.append("\n### 10^5 tiny deltas (one-character transcript pieces)\n")
    out.append(
        "| side | gc.freeze | chunks | floor | astream | astream / floor | ainvoke | "
        "ainvoke / floor | longest stall astream / ainvoke / floor | astream: longest GC "
        "pause (full GCs), GC total | reps |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for side in sides:
        for x in r[side]["tiny"]:
            out.append(
                f"| {side} | {'yes' if x['gc_frozen'] else 'no'} | {x['chunks']} | "
                f"{ms(x['floor_s'])} | {ms(x['astream_s'])} | **{x['astream_ratio']:.2f}x** | "
                f"{ms(x['ainvoke_s'])} | {x['ainvoke_ratio']:.2f}x | "
                f"{ms(x['astream_stall_s'])} / {ms(x['ainvoke_stall_s'])} / "
                f"{ms(x['floor_stall_s'])} | {ms(x['astream_gc_max_s'])} "
                f"({x['astream_gc_full']}), {ms(x['astream_gc_total_s'])} | {x['reps']} |"
            )
    out += markdown_paced(r)
    out.append("\n### `invoke` vs the floor (sync)\n")
    out.append("| side | speech | floor | invoke | invoke / floor | reps |")
    out.append("|---|---|---|---|---|---|")
    for side in sides:
        for x in r[side]["invoke_floor"]:
            out.append(
                f"| {side} | {x['seconds']} s | {ms(x['floor_s'])} | {ms(x['invoke_s'])} | "
                f"**{x['ratio']:.2f}x** | {x['reps']} |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short replies, fewer repetitions")
    parser.add_argument("--before", help="a worktree of the code to compare with")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--no-paced", action="store_true", help="skip the real-time sessions")
    parser.add_argument("--paced-only", action="store_true", help="only the real-time sessions")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="another worktree to measure, reported as LABEL (repeatable)",
    )
    parser.add_argument(
        "--profile",
        choices=["sessions", "astream600", "tiny", "invoke60"],
        help="cProfile one case of this tree instead of benchmarking",
    )
    parser.add_argument(
        "--profile-floor", action="store_true", help="with --profile: the floor instead"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--paced", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.client:
        client_main(args)
        return
    if args.profile:
        profile_main(args)
        return

    from replay import ReplayProcess

    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    q = args.quick
    trees = dict(t.split("=", 1) for t in args.tree)
    cfg: dict[str, Any] = {
        "lengths": [60, 240] if q else [60, 240, 600],
        "reps": {60: 3, 240: 2} if q else {60: 5, 240: 3, 600: 3},
        "tiny_n": 20_000 if q else 100_000,
        "tiny_reps": 2,
        "sessions": 50,
        "conc_s": 10 if q else 30,
        "cpu_rounds": 2 if q else 3,
        "invoke_lengths": [60, 600] if not q else [60],
        "invoke_reps": {60: 5, 600: 3},
        "paced_n": 50,
        "paced_s": 6 if q else 10,
    }
    # The old code pays seconds per long call: one repetition where that is so.
    cfg_before = {**cfg, "reps": {60: 3, 240: 1, 600: 1}, "tiny_reps": 1, "cpu_rounds": 2}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "config": cfg,
        "trees": trees,
    }
    if not args.paced_only:
        log("recording replies from OpenRouterTestServer")
        payloads = record_payloads(cfg["lengths"], cfg["conc_s"], cfg["tiny_n"])
        # SSE events per reply (comments and [DONE] included): one HTTP chunk each.
        results["events"] = {name: len(p.events) for name, p in payloads.items()}
        with ReplayProcess(payloads) as replay:
            del payloads
            urls = {"replay": f"http://127.0.0.1:{replay.port}"}
            log("after: all cases")
            results["after"] = run_client("after", None, urls, cfg)
            for label, tree in trees.items():
                log(f"{label}: all cases")
                results[label] = run_client(label, tree, urls, cfg)
            if args.before:
                log("before: all cases")
                results["before"] = run_client("before", args.before, urls, cfg_before)
    if not args.no_paced:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            urls = {"paced": server.stdout.readline().strip()}
            results["paced"] = []
            sides = [("floor", None), ("after", None), ("after+gc.freeze", None)]
            sides.extend(trees.items())
            if args.before:
                sides.append(("before", args.before))
            for which, tree in sides:
                log(f"paced sessions: {which}")
                side = "after" if which in ("floor", "after+gc.freeze") else which
                res = run_client(side, tree, urls, cfg, paced=which)
                results["paced"].append(res["paced"])
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(10)
    results["wall_s"] = time.perf_counter() - started
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(markdown(results))
    log("done" + (f"; wrote {args.out}" if args.out else ""))


if __name__ == "__main__":
    main()
