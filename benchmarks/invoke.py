"""`invoke` and its peers: how much the client adds to the least work any client must do.

Every reply is recorded from `OpenRouterTestServer` for the very body the client sends and
replayed byte for byte from a process of its own. Measured against the floor (`floor.py`)
and the floor + base64 block: spoken `invoke` at three lengths, sync and async (sync also
straight from `OpenRouterTestServer` in this process), growth with length, peak memory,
time to first audio through each consumer, concurrent `ainvoke`. Then text and tool-call
replies against the installed peers (`ChatOpenAI`, `ChatOpenRouter`), construction, and a
fresh instance's first call. Every client result is checked before it is timed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import importlib.util
import io
import time
import wave
from collections.abc import Callable, Iterator
from functools import partial, reduce
from itertools import product
from operator import add
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import AIMessageChunk, HumanMessage

from benchmarks import harness as h
from benchmarks.floor import afloor_invoke, floor_invoke, wav_header
from langchain_openrouter_audio import (
    AsyncAudioCallbackHandler,
    AudioCallbackHandler,
    ChatOpenRouterAudio,
    audio_pcm,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    text_reply,
    tone_pcm16,
    tool_call_reply,
)

OURS = "ChatOpenRouterAudio"
CALLS = ("stream", "invoke")
# langchain-openrouter is not in the benchmark extra (its SDK pins pydantic): measured only
# when installed by hand.
PEERS = {"ChatOpenRouter": "langchain_openrouter", "ChatOpenAI": "langchain_openai"}


def config(quick: bool) -> dict[str, Any]:
    return {
        "lengths": [10, 60, 120] if quick else [10, 60, 600],
        "pairs": {10: 5, 60: 3, 120: 3} if quick else {10: 15, 60: 9, 600: 5},
        "concurrency": [50, 200],
        "rounds": 3 if quick else 9,
        "peer_pairs": 5 if quick else 15,
        "conc_s": 2,
    }


def get_weather(city: str, unit: str, days: int, note: str) -> str:
    """Weather forecast for a city."""
    return "sunny"


def peer_replies() -> dict[str, Any]:
    text = ("Sure. The clip is a steady 440 Hz tone, half a second long. " * 40)[:2000]
    args = {"city": "Oslo", "unit": "celsius", "days": 7, "note": "x" * 300}
    return {
        "text": text_reply(text, text_piece_chars=4),
        "tool": tool_call_reply("get_weather", args, call_id="call_1"),
    }


def question() -> list[HumanMessage]:
    """A user turn with a short WAV: the test server wants audio in or out for text replies."""
    pcm = tone_pcm16(0.5)
    wav = base64.b64encode(wav_header(len(pcm)) + pcm).decode("ascii")
    blocks: list[Any] = [
        {"type": "text", "text": "What is in this clip?"},
        {"type": "audio", "base64": wav, "mime_type": "audio/wav"},
    ]
    return [HumanMessage(content=blocks)]


def make(name: str, base_url: str, tools: bool = False) -> Any:
    if name == "ChatOpenRouter":
        from langchain_openrouter import ChatOpenRouter

        model = ChatOpenRouter(model=h.MODEL, api_key=h.KEY, base_url=base_url, timeout=60_000)
    elif name == "ChatOpenAI":
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(model=h.MODEL, api_key=h.KEY, base_url=base_url, timeout=60)
    else:
        model = ChatOpenRouterAudio(
            api_key=h.KEY, base_url=base_url, model=h.MODEL, modalities=["text"]
        )
    return model.bind_tools([get_weather]) if tools else model


def installed_peers() -> list[str]:
    return [p for p, m in PEERS.items() if importlib.util.find_spec(m) is not None]


@contextlib.contextmanager
def servers(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every reply recorded for the very body our client sends, replayed from a process."""
    cfg = config(ctx["quick"])
    payloads: dict[str, h.Payload] = {}
    with OpenRouterTestServer(api_key=h.KEY) as server:
        server.enqueue(h.speech(2))
        h.model(server.base_url).invoke(h.PROMPT)
        body = server.requests[-1].body
        for s in {*cfg["lengths"], cfg["conc_s"], 2}:
            payloads[f"speech{s}"] = h.Payload.of(h.record(server, h.speech(s), body))
        for kind, reply in peer_replies().items():
            # Text and tool calls: the body of a streamed call and of a plain one.
            ours = make(OURS, server.base_url, tools=kind == "tool")
            server.enqueue(reply)
            list(ours.stream(question()))
            server.enqueue(reply)
            ours.invoke(question())
            streamed, plain = [request.body for request in server.requests[-2:]]
            sse, json_body = h.record(server, reply, streamed), h.record(server, reply, plain)
            payloads[kind] = h.Payload.of(sse, json_body)
    payloads["ttfa"] = h.Payload(payloads["speech2"].events, mark=True)
    with h.replay_process(payloads) as (url, _path):
        yield {**ctx, "replay": url, "body": body.decode()}


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    cfg = config(ctx["quick"])
    body = ctx["body"].encode()

    def url(name: str) -> str:
        return h.replay_url(ctx["replay"], name)

    speech_rows = []
    for s in cfg["lengths"]:
        speech_rows += spoken(url(f"speech{s}"), s, cfg["pairs"][s], body, "replay")
    with OpenRouterTestServer(api_key=h.KEY) as server:
        for s in cfg["lengths"]:
            reply = h.speech(s)
            server.responder = lambda _request, reply=reply: reply
            speech_rows += spoken(server.base_url, s, cfg["pairs"][s], body, "test server")
    status = peer_status()
    longest = cfg["lengths"][-1]
    return {
        "Spoken reply: invoke vs the floor": speech_rows,
        f"Linear growth: time at {longest} s / at 60 s": growth(speech_rows, longest),
        f"Peak memory, {longest} s reply": memory(longest, ctx),
        "Time to first audio: first audio event written -> consumer": first_audio(ctx, body),
        "Concurrent ainvoke (one model) vs the floor (one AsyncClient)": concurrency(
            url(f"speech{cfg['conc_s']}"), cfg, body
        ),
        "Peers (ours / peer < 1: ours is faster)": peers(url, cfg["peer_pairs"], status),
        "Peers that could not be measured": [
            {"peer, reply, call": k, "error": v} for k, v in status.items() if v != "ok"
        ],
        "Construction": construction(cfg["rounds"], installed_peers()),
        "A fresh instance and its first stream() (2,000-character text reply)": first_call(
            url("text"), cfg["rounds"], status
        ),
    }


def audio_ok(message: Any, pcm: bytes) -> bool:
    """The reply's one audio block is a WAV (54-byte header, read by `wave`) of `pcm`."""
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "audio"]
    with wave.open(io.BytesIO(base64.b64decode(blocks[0]["base64"]))) as w:
        frames_ok = w.getnframes() * 2 == len(pcm) and w.getframerate() == 24_000
    return len(blocks) == 1 and frames_ok and audio_pcm(message) == pcm


def spoken(url: str, seconds: int, pairs: int, body: bytes, server: str) -> list[dict[str, Any]]:
    """`invoke` against the floor and the floor + base64 block: sync, and on the replay
    server also async (the in-process test server would compete for the GIL)."""
    endpoint, hdrs, pcm = f"{url}/chat/completions", h.headers(), h.pcm_of(seconds)
    model, client, aclient = h.model(url), httpx.Client(timeout=60), httpx.AsyncClient(timeout=60)
    assert audio_ok(model.invoke(h.PROMPT), pcm), "client audio differs from the PCM sent"
    wav, _transcript = floor_invoke(client, endpoint, hdrs, body)
    assert wav == wav_header(len(pcm)) + pcm, "floor audio differs"
    rows = []
    with h.event_loop() as loop:
        run = loop.run_until_complete
        floor = partial(floor_invoke, client, endpoint, hdrs, body)
        afloor = partial(afloor_invoke, aclient, endpoint, hdrs, body)
        apis = {
            "sync": {
                "floor": floor,
                "floor + b64 block": partial(floor, encode_block=True),
                "client": partial(model.invoke, h.PROMPT),
            }
        }
        if server == "replay":
            assert audio_ok(run(model.ainvoke(h.PROMPT)), pcm), "ainvoke audio differs"
            apis["async"] = {
                "floor": lambda: run(afloor()),
                "floor + b64 block": lambda: run(afloor(encode_block=True)),
                "client": lambda: run(model.ainvoke(h.PROMPT)),
            }
        for api, fns in apis.items():
            t = h.paired(fns, pairs)
            row = {"server": server, "API": api, "speech": f"{seconds} s"}
            row |= {name: h.med(times) for name, times in t.items()}
            row["client / floor"] = h.ratio(t, "client", "floor")
            row["client / (floor + b64)"] = h.ratio(t, "client", "floor + b64 block")
            rows.append({**row, "pairs": pairs})
        run(aclient.aclose())
    client.close()
    return rows


def growth(rows: list[dict[str, Any]], longest: int) -> list[dict[str, Any]]:
    out = []
    for server in ("replay", "test server"):
        for api in ("sync", "async"):
            by = {r["speech"]: r for r in rows if r["server"] == server and r["API"] == api}
            if not by:
                continue
            top, base = by[f"{longest} s"], by["60 s"]
            row = {"server": server, "API": api}
            row["client: longest / 60 s"] = top["client"] / base["client"]
            row["floor: longest / 60 s"] = top["floor"] / base["floor"]
            out.append(row)
    return out


def memory(seconds: int, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Each measurement in a fresh process, after a warm-up call on a 2 s reply."""
    pcm, rows = seconds * 48_000, []
    for which in ("client", "floor", "floor+b64"):
        arg = {"which": which, "body": ctx["body"], "replay": ctx["replay"], "seconds": seconds}
        t = h.in_process("benchmarks.invoke:memory_probe", {**arg, "mode": "tracemalloc"})
        r = h.in_process("benchmarks.invoke:memory_probe", {**arg, "mode": "rss"})
        rows.append(
            {
                "what": which,
                "tracemalloc peak MB": t["peak"] / 1e6,
                "peak x PCM": t["peak"] / pcm,
                "RSS growth MB": r["growth"] / 1e6,
                "growth x PCM": r["growth"] / pcm,
                "retained MB": t["retained"] / 1e6,
                "PCM MB": pcm / 1e6,
                "high-water mark reset": r["reset"],
            }
        )
    return rows


def memory_probe(arg: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: tracemalloc's peak and retained bytes, or RSS growth (VmHWM after
    the call minus VmRSS before)."""
    body, which = arg["body"].encode(), arg["which"]
    warm = h.replay_url(arg["replay"], "speech2")
    url = h.replay_url(arg["replay"], f"speech{arg['seconds']}")
    if which == "client":
        h.model(warm).invoke(h.PROMPT)
        model = h.model(url)

        def run() -> Any:
            return model.invoke(h.PROMPT)

    else:
        client = httpx.Client(timeout=60)
        floor_invoke(client, f"{warm}/chat/completions", h.headers(), body)

        def run() -> Any:
            endpoint, encode = f"{url}/chat/completions", which == "floor+b64"
            return floor_invoke(client, endpoint, h.headers(), body, encode_block=encode)

    if arg["mode"] == "tracemalloc":
        peak, retained = h.traced(run)
        return {"peak": peak, "retained": retained}
    # ru_maxrss survives exec (it would be the parent's peak): read VmHWM, reset to the
    # current RSS through clear_refs where the kernel allows it.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    rss, hwm = proc_status("VmRSS"), proc_status("VmHWM")
    run()
    return {"growth": proc_status("VmHWM") - rss, "reset": hwm - rss < 1_000_000}


def proc_status(field: str) -> int:
    """A size from /proc/self/status, in bytes."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if field in x)
    return int(line.split()[1]) * 1024


def first_audio(ctx: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """From the replay server writing the first audio event (the mark it reports) to each
    consumer seeing it, on one clock; each consumer against the floor of its kind."""
    from langgraph.graph import START, MessagesState, StateGraph

    url = h.replay_url(ctx["replay"], "ttfa")
    endpoint, hdrs, model = f"{url}/chat/completions", h.headers(), h.model(url)
    client, aclient = httpx.Client(timeout=60), httpx.AsyncClient(timeout=60)
    seen: list[float] = []

    def stamp(*_args: Any, **_kwargs: Any) -> None:
        if not seen:
            seen.append(time.perf_counter())

    class Ear(AudioCallbackHandler):
        def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    class AsyncEar(AsyncAudioCallbackHandler):
        async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    def heard(item: Any) -> None:
        chunk = item[0] if isinstance(item, tuple) else item  # LangGraph: (chunk, metadata)
        if isinstance(chunk, AIMessageChunk) and any(
            isinstance(b, dict) and b.get("type") == "audio" and b.get("base64")
            for b in chunk.content
        ):
            stamp()

    def listen(items: Any) -> None:
        for item in items:
            heard(item)

    async def alisten(items: Any) -> None:
        async for item in items:
            heard(item)

    def talk(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def atalk(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("talk", talk).add_edge(START, "talk").compile()
    agraph = StateGraph(MessagesState).add_node("talk", atalk).add_edge(START, "talk").compile()
    turn = {"messages": [("user", h.PROMPT)]}
    rounds = 5 if ctx["quick"] else 15
    with h.event_loop() as loop:
        run = loop.run_until_complete
        # Each kind's floor first: the other consumers of the kind are compared with it.
        kinds: dict[str, dict[str, Callable[[], Any]]] = {
            "sync": {
                "floor (sync)": partial(
                    floor_invoke, client, endpoint, hdrs, body, on_first_piece=stamp
                ),
                "invoke + AudioCallbackHandler": lambda: model.invoke(
                    h.PROMPT, {"callbacks": [Ear()]}
                ),
                "stream()": lambda: listen(model.stream(h.PROMPT)),
                "LangGraph stream_mode=messages (sync)": lambda: listen(
                    graph.stream(turn, stream_mode="messages")
                ),
            },
            "async": {
                "floor (async)": lambda: run(
                    afloor_invoke(aclient, endpoint, hdrs, body, on_first_piece=stamp)
                ),
                "ainvoke + AsyncAudioCallbackHandler": lambda: run(
                    model.ainvoke(h.PROMPT, {"callbacks": [AsyncEar()]})
                ),
                "astream()": lambda: run(alisten(model.astream(h.PROMPT))),
                "LangGraph astream stream_mode=messages": lambda: run(
                    alisten(agraph.astream(turn, stream_mode="messages"))
                ),
            },
        }
        consumers = {name: fn for kind in kinds.values() for name, fn in kind.items()}
        latency: dict[str, list[float]] = {name: [] for name in consumers}
        for name in h.orders(list(consumers), rounds + 1):  # the first round warms up
            seen.clear()
            gc.collect()
            consumers[name]()
            assert seen, f"{name}: no audio seen"
            mark = httpx.get(f"{ctx['replay']}/stats").json()["mark"]
            latency[name].append(seen[0] - mark)
        run(aclient.aclose())
    rows = []
    for kind in kinds.values():
        floor = h.med(latency[next(iter(kind))][1:])
        for name in kind:
            xs = latency[name][1:]  # without the warm-up
            above = None if "floor" in name else h.med(xs) - floor
            row = {"consumer": name, "median": h.med(xs), "p90": h.pct(xs, 0.9)}
            rows.append({**row, "above the floor (median)": above, "n": len(xs)})
    return rows


def concurrency(url: str, cfg: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """N concurrent `ainvoke` of one model vs N floors on one pooled AsyncClient."""
    endpoint, pcm = f"{url}/chat/completions", h.pcm_of(cfg["conc_s"])
    wav = wav_header(len(pcm)) + pcm
    model = h.model(url)
    # The client's own pool limits: no cap, every connection kept.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    client = httpx.AsyncClient(timeout=60, limits=limits)

    def at(n: int, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        correct: list[bool] = []

        async def ours() -> None:
            replies = await asyncio.gather(*(model.ainvoke(h.PROMPT) for _ in range(n)))
            correct.extend(audio_ok(m, pcm) for m in replies)

        async def floor(hdrs: dict[str, str]) -> None:
            outs = await asyncio.gather(
                *(afloor_invoke(client, endpoint, hdrs, body) for _ in range(n))
            )
            correct.extend(out == wav for out, _transcript in outs)

        fns = {
            "floor": lambda: loop.run_until_complete(floor(h.headers())),
            "floor new conn": lambda: loop.run_until_complete(
                floor({**h.headers(), "Connection": "close"})
            ),
            "client": lambda: loop.run_until_complete(ours()),
        }
        # The first rounds run slow on both sides (fresh pools): timed, but not kept.
        h.paired({"floor": fns["floor"], "client": fns["client"]}, 2)
        t = h.paired(fns, cfg["rounds"], warm=False)
        return {
            "concurrent": n,
            "speech each": f"{cfg['conc_s']} s",
            "floor": h.med(t["floor"]),
            "floor, new connection each": h.med(t["floor new conn"]),
            "client": h.med(t["client"]),
            "client / floor": h.ratio(t, "client", "floor"),
            "client / floor (new conn.)": h.ratio(t, "client", "floor new conn"),
            "all correct": all(correct),
        }

    with h.event_loop() as loop:
        rows = [at(n, loop) for n in cfg["concurrency"]]
        loop.run_until_complete(client.aclose())
    return rows


def peer_status() -> dict[str, str]:
    """Each class, reply and call once against `OpenRouterTestServer`: "ok" when its result
    is right, else what went wrong. Only what works is timed."""
    replies, msgs, status = peer_replies(), question(), {}
    with OpenRouterTestServer(api_key=h.KEY) as server:
        for name, kind, op in product((OURS, *installed_peers()), ("text", "tool"), CALLS):
            server.enqueue(replies[kind])
            model = make(name, server.base_url, tools=kind == "tool")
            key = f"{name}, {kind}, {op}"
            try:
                msg = model.invoke(msgs) if op == "invoke" else reduce(add, model.stream(msgs))
                if kind == "text":
                    ok = msg.text == replies["text"].text
                else:
                    ok = msg.tool_calls[0]["args"]["days"] == 7
                status[key] = "ok" if ok else "wrong result"
            except Exception as err:
                status[key] = f"{type(err).__name__}: {err}"[:300]
            server.reset()
    return status


def working(status: dict[str, str], kind: str, op: str) -> list[str]:
    return [name for name in (OURS, *PEERS) if status.get(f"{name}, {kind}, {op}") == "ok"]


def peers(url: Callable[[str], str], pairs: int, status: dict[str, str]) -> list[dict[str, Any]]:
    msgs, rows = question(), []
    for kind, op in product(("text", "tool"), CALLS):
        names = working(status, kind, op)
        models = {name: make(name, url(kind), tools=kind == "tool") for name in names}
        if op == "stream":
            fns = {name: (lambda m=m: list(m.stream(msgs))) for name, m in models.items()}
        else:
            fns = {name: (lambda m=m: m.invoke(msgs)) for name, m in models.items()}
        t = h.paired(fns, pairs)
        row: dict[str, Any] = {"reply": kind, "call": op, "ours": h.med(t[OURS])}
        for peer in names[1:]:
            row[peer] = h.med(t[peer])
            row[f"ours / {peer}"] = h.ratio(t, OURS, peer)
        rows.append({**row, "pairs": pairs})
    return rows


def construction(rounds: int, peers: list[str]) -> list[dict[str, Any]]:
    """Time per construction; each class is built in batches that take about 0.1 s."""
    url = "http://127.0.0.1:9/api/v1"
    with_clients = f"{OURS} + its httpx clients"

    async def build_with_clients(n: int) -> None:
        # Ours builds its httpx clients on first use, the peers in their constructors.
        for _ in range(n):
            model = make(OURS, url)
            _ = model.client.client
            _ = await model.client.async_client()

    with h.event_loop() as loop:

        def batch(name: str, n: int) -> Callable[[], Any]:
            if name == with_clients:
                return lambda: loop.run_until_complete(build_with_clients(n))
            return lambda: [make(name, url) for _ in range(n)]

        names, sizes = [OURS, with_clients, *peers], {}
        for name in names:
            batch(name, 1)()  # imports, caches
            start = time.perf_counter()
            batch(name, 1)()
            sizes[name] = max(1, min(500, int(0.1 / max(time.perf_counter() - start, 1e-6))))
        t = h.paired({name: batch(name, sizes[name]) for name in names}, rounds)
    per = {name: [x / sizes[name] for x in xs] for name, xs in t.items()}
    return [
        {
            "class": name,
            "per construction": h.med(per[name]),
            "ours / it": h.ratio(per, OURS, name) if name in peers else None,
            "batch": sizes[name],
        }
        for name in names
    ]


def first_call(url: str, rounds: int, status: dict[str, str]) -> list[dict[str, Any]]:
    """What an app that builds its model per request pays on every request."""
    msgs, names = question(), working(status, "text", "stream")
    t = h.paired({n: (lambda n=n: list(make(n, url).stream(msgs))) for n in names}, rounds)
    return [
        {
            "class": n,
            "construct + first stream()": h.med(t[n]),
            "ours / it": h.ratio(t, OURS, n) if n != OURS else None,
        }
        for n in names
    ]


def _profile_invoke60(ctx: dict[str, Any], floor: bool) -> Callable[[], None]:
    url = h.replay_url(ctx["replay"], "speech60")
    model, client, body = h.model(url), httpx.Client(timeout=60), ctx["body"].encode()

    def one() -> Any:
        if floor:
            endpoint = f"{url}/chat/completions"
            return floor_invoke(client, endpoint, h.headers(), body, encode_block=True)
        return model.invoke(h.PROMPT)

    one()  # warm-up: imports, connection

    def run() -> None:
        for _ in range(20):
            one()

    return run


# `--profile invoke60`: 20 sync `invoke` of a 60 s reply (`invoke60-floor`: the floor + b64).
PROFILES = {
    "invoke60": lambda ctx: _profile_invoke60(ctx, floor=False),
    "invoke60-floor": lambda ctx: _profile_invoke60(ctx, floor=True),
}
