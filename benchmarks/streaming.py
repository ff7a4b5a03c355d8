"""The stream path: `astream` against `ainvoke` and the floor, at length and at scale.

Whether streaming stays linear in the reply's length and keeps the event loop free (the
longest stall of a 2 ms ticker, garbage-collection pauses, with and without
`gc.freeze()`); summing the chunks (`join_chunks` against `+`); client CPU of 50
concurrent sessions against the floor; 10^5 one-character transcript deltas; and 50
sessions at real-time pace (`OpenRouterTestServer` pacing its events, in a process of its
own), each variant in a fresh process. Replies interleave transcript and 100 ms audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import httpx

from benchmarks import harness as h
from benchmarks.floor import afloor_invoke
from langchain_openrouter_audio import audio_pcm, join_chunks

TICK_S = 0.002  # the lag ticker's period
PLUS_CAP_S = 10.0  # a quadratic sum is cut here and extrapolated


def config(quick: bool) -> dict[str, Any]:
    return {
        "lengths": [60, 240] if quick else [60, 240, 600],
        "reps": {60: 3, 240: 2} if quick else {60: 5, 240: 3, 600: 3},
        "tiny_n": 20_000 if quick else 100_000,
        "tiny_reps": 2,
        "sessions": 50,
        "conc_s": 10 if quick else 30,
        "cpu_rounds": 2 if quick else 3,
        "paced_s": 6 if quick else 10,
    }


def tiny(n: int) -> Any:
    """`n` one-character transcript deltas over 10 s of speech."""
    from langchain_openrouter_audio.testing import speech_reply

    text = ("abcdefghij klmnopqrst " * (n // 20 + 1))[:n]
    pcm = h.pcm_of(10)
    return speech_reply(pcm, text, audio_piece_bytes=h.PIECE, text_piece_chars=1, interleave=True)


@contextlib.contextmanager
def servers(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The replay server for the timed replies, `OpenRouterTestServer` for the paced ones."""
    cfg = config(ctx["quick"])
    replies = {f"speech{s}": h.speech(s, interleave=True) for s in {*cfg["lengths"], cfg["conc_s"]}}
    replies["tiny"] = tiny(cfg["tiny_n"])
    with (
        h.replaying(ctx, replies) as ctx,
        h.server_process("benchmarks.streaming:serve_paced", None) as paced,
    ):
        yield {**ctx, "paced": paced}


def serve_paced(_arg: None) -> None:
    """Server process: `OpenRouterTestServer` whose replies take their own length to send.

    The prompt names the length: "paced 6" is 6 s of speech, events spread over 6 s.
    """
    import signal

    from langchain_openrouter_audio.testing import OpenRouterTestServer

    def respond(request: Any) -> Any:
        seconds = float(json.loads(request.body)["messages"][-1]["content"].split()[1])
        events = seconds * 48_000 / h.PIECE + len(h.transcript_of(seconds)) / 4
        return h.speech(seconds, interleave=True, event_delay_s=seconds / events)

    with OpenRouterTestServer(api_key=h.KEY) as server:
        server.responder = respond
        print(server.base_url, flush=True)
        signal.sigwait({signal.SIGTERM})


class Watch:
    """While on: how late a task sleeping `TICK_S` wakes (the event loop's lag), and every
    garbage collection's generation and pause."""

    async def __aenter__(self) -> Watch:
        self.lags: list[float] = []
        self.pauses: list[tuple[int, float]] = []
        self._gc_start = 0.0
        self._ticker = asyncio.get_running_loop().create_task(h.record_lag(TICK_S, self.lags))
        await asyncio.sleep(0)  # the ticker's first sleep starts now
        gc.callbacks.append(self._on_gc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._gc_start))

    def longest_gc(self) -> float:
        return max((pause for _, pause in self.pauses), default=0.0)

    def full_gcs(self) -> int:
        return sum(generation == 2 for generation, _ in self.pauses)

    def stall(self) -> float:
        return max(self.lags, default=0.0)


async def consume(model: Any, prompt: str = h.PROMPT) -> int:
    """Stream one reply, consuming its chunks without summing them: how many there were."""
    n = 0
    async for _chunk in model.astream(prompt):
        n += 1
    return n


def floor(url: str) -> Callable[..., Awaitable[Any]]:
    """The floor's async call on `url`, pooled as the package's own async client is (no cap,
    every connection kept); it takes the prompt."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx.AsyncClient(timeout=120, limits=limits)

    def call(prompt: str = h.PROMPT) -> Awaitable[Any]:
        body = h.request_body(prompt)
        return afloor_invoke(client, f"{url}/chat/completions", h.headers(), body)

    return call


def freeze(frozen: bool) -> None:
    """After a full collection, keep what exists out of later ones (or stop keeping it)."""
    gc.collect()
    if frozen:
        gc.freeze()
    else:
        gc.unfreeze()


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    cfg = config(ctx["quick"])
    here = ctx["side"] == "here"  # the gc.freeze variants and the floor: for this tree only
    frozen = (False, True) if here else (False,)
    replay = ctx["replay"]
    out: dict[str, list[dict[str, Any]]] = {}

    async def run_async() -> None:  # the async cases first: a fresh heap, as a server has
        out["astream (chunks consumed) vs ainvoke, same reply"] = [
            await stream_vs_invoke(replay, s, cfg["reps"][s], f)
            for f in frozen
            for s in cfg["lengths"]
        ]
        out["10^5 tiny deltas: one-character transcript pieces"] = [
            await tiny_deltas(replay, cfg["tiny_n"], 1 if f else cfg["tiny_reps"], f)
            for f in frozen
        ]
        out["Concurrent sessions: client CPU vs the floor"] = [
            await sessions_cpu(replay, cfg["sessions"], cfg["conc_s"], cfg["cpu_rounds"])
        ]

    asyncio.run(run_async())
    out["Summing the chunks of stream()"] = [summing(replay, s) for s in cfg["lengths"]]
    clients = [ctx["side"], ctx["side"] + "+gc.freeze"]
    if here:
        clients.insert(0, "floor")
    arg = {"url": ctx["paced"], "n": cfg["sessions"], "seconds": cfg["paced_s"]}
    out["Sessions at real-time pace: event-loop lag (2 ms ticker)"] = [
        h.in_process("benchmarks.streaming:paced", {**arg, "which": which}) for which in clients
    ]
    return out


async def watched_rounds(fns: dict[str, Any], reps: int, base: str) -> dict[str, Any]:
    """Alternating rounds, each under a `Watch`: each call's median time, its ratio to
    `base`, its longest stall, and the GC pauses of `astream` (it returns its chunk count)."""
    walls: dict[str, list[float]] = {k: [] for k in fns}
    watches: dict[str, list[Watch]] = {k: [] for k in fns}
    chunks = []
    for k in h.orders(list(fns), reps):
        gc.collect()
        async with Watch() as watch:
            start = time.perf_counter()
            result = await fns[k]()
            walls[k].append(time.perf_counter() - start)
        watches[k].append(watch)
        if k == "astream":
            chunks.append(result)
    freeze(False)
    row: dict[str, Any] = {"chunks": chunks[0]}
    for k in fns:
        row[k] = h.med(walls[k])
        if k != base:
            row[f"{k} / {base}"] = h.ratio(walls, k, base)
        row[f"longest stall, {k}"] = max(w.stall() for w in watches[k])
    streamed = watches["astream"]
    row["astream: longest GC pause"] = max(w.longest_gc() for w in streamed)
    row["astream: full GCs"] = max(w.full_gcs() for w in streamed)
    row["astream: GC total"] = h.med([sum(p for _, p in w.pauses) for w in streamed])
    return {**row, "reps": reps}


async def stream_vs_invoke(replay: str, seconds: int, reps: int, frozen: bool) -> Any:
    model = h.model(h.replay_url(replay, f"speech{seconds}"))
    assert audio_pcm(await model.ainvoke(h.PROMPT)) == h.pcm_of(seconds), "ainvoke: audio differs"
    freeze(frozen)
    fns = {"ainvoke": lambda: model.ainvoke(h.PROMPT), "astream": lambda: consume(model)}
    row = await watched_rounds(fns, reps, "ainvoke")
    return {"gc.freeze": frozen, "speech": f"{seconds} s", **row}


async def tiny_deltas(replay: str, n: int, reps: int, frozen: bool) -> Any:
    url = h.replay_url(replay, "tiny")
    model = h.model(url)
    assert len((await model.ainvoke(h.PROMPT)).text) == n
    floor_call = floor(url)
    await floor_call()
    freeze(frozen)
    fns = {
        "floor": floor_call,
        "astream": lambda: consume(model),
        "ainvoke": lambda: model.ainvoke(h.PROMPT),
    }
    return {"gc.freeze": frozen, "deltas": n, **await watched_rounds(fns, reps, "floor")}


async def sessions_cpu(replay: str, n: int, seconds: int, rounds: int) -> Any:
    """CPU time of this process (the server is another) around `n` concurrent calls."""
    url = h.replay_url(replay, f"speech{seconds}")
    model = h.model(url)
    fns = {
        "astream": lambda: consume(model),
        "ainvoke": lambda: model.ainvoke(h.PROMPT),
        "floor": floor(url),
    }
    for fn in fns.values():  # warm-up: connections and imports
        await asyncio.gather(*(fn() for _ in range(n)))
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for k in h.orders(list(fns), rounds):
        gc.collect()
        start = time.process_time()
        await asyncio.gather(*(fns[k]() for _ in range(n)))
        cpu[k].append(time.process_time() - start)
    row: dict[str, Any] = {
        "sessions x speech": f"{n} x {seconds} s",
        "floor CPU": h.med(cpu["floor"]),
    }
    for k in ("astream", "ainvoke"):
        row[f"{k} CPU"] = h.med(cpu[k])
        row[f"{k} / floor"] = h.ratio(cpu, k, "floor")
    return {**row, "rounds": rounds}


def summing(replay: str, seconds: int) -> dict[str, Any]:
    """`join_chunks` against `+` one by one (cut at PLUS_CAP_S and extrapolated as n²)."""
    chunks = list(h.model(h.replay_url(replay, f"speech{seconds}")).stream(h.PROMPT))
    pcm = h.pcm_of(seconds)
    gc.collect()
    start = time.perf_counter()
    assert audio_pcm(join_chunks(chunks)) == pcm, "join_chunks: audio differs"
    joined = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    total, k = chunks[0], 1
    for chunk in chunks[1:]:
        total, k = total + chunk, k + 1
        if k % 16 == 0 and time.perf_counter() - start > PLUS_CAP_S:
            break
    took = time.perf_counter() - start
    if k == len(chunks):
        assert audio_pcm(total) == pcm, "+: audio differs"
    return {
        "speech": f"{seconds} s",
        "chunks": len(chunks),
        "join_chunks": joined,
        "+ one by one": took * (len(chunks) / k) ** 2,  # quadratic
        "+ summed (of all)": f"{k} / {len(chunks)}",
    }


def paced(arg: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: `n` sessions at real-time pace, the event loop's lag."""
    which, n, url = arg["which"], arg["n"], arg["url"]
    one = floor(url) if which == "floor" else partial(consume, h.model(url))

    async def run() -> dict[str, Any]:
        await asyncio.gather(*(one("paced 1") for _ in range(n)))  # warm-up
        freeze(which.endswith("+gc.freeze"))
        async with Watch() as watch:
            cpu, start = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(f"paced {arg['seconds']}") for _ in range(n)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - start
        return {
            "client": which,
            "sessions x speech": f"{n} x {arg['seconds']} s",
            "wall": wall,
            "CPU": cpu,
            "lag p50": h.med(watch.lags),
            "lag p99": h.pct(watch.lags, 0.99),
            "lag max": watch.stall(),
            "longest GC pause": watch.longest_gc(),
            "full GCs": watch.full_gcs(),
        }

    return asyncio.run(run())


def _profile(ctx: dict[str, Any], name: str, n: int, of_floor: bool) -> Callable[[], None]:
    url = h.replay_url(ctx["replay"], name)
    one = floor(url) if of_floor else partial(consume, h.model(url))
    loop = asyncio.new_event_loop()

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(n)))

    def batch() -> None:
        loop.run_until_complete(many())

    batch()  # warm-up
    gc.collect()
    return batch


def _conc(ctx: dict[str, Any]) -> str:
    return f"speech{config(ctx['quick'])['conc_s']}"


def _longest(ctx: dict[str, Any]) -> str:
    return f"speech{config(ctx['quick'])['lengths'][-1]}"


# `--profile CASE`: 50 concurrent `astream` of a 30 s reply, one `astream` of the longest
# reply, one of 10^5 deltas; `-floor`: the floor on the same reply.
PROFILES = {
    "sessions": lambda ctx: _profile(ctx, _conc(ctx), 50, False),
    "sessions-floor": lambda ctx: _profile(ctx, _conc(ctx), 50, True),
    "astream-longest": lambda ctx: _profile(ctx, _longest(ctx), 1, False),
    "tiny": lambda ctx: _profile(ctx, "tiny", 1, False),
    "tiny-floor": lambda ctx: _profile(ctx, "tiny", 1, True),
}
