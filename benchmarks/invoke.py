"""`invoke` and its peers: how much the client adds to the least work any client must do.

Spoken replies against the floor (`floor.py`: plain httpx, SSE split, `json.loads`,
base64 decode, one join) at several lengths, sync and async, on the replay server and on
`OpenRouterTestServer` itself; peak memory; time to first audio through every consumer;
concurrent `ainvoke`; text and tool-call replies against `ChatOpenAI` and
`ChatOpenRouter` (those installed); construction and a fresh instance's first call.
Every client result is checked against the PCM sent before it is timed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import importlib.util
import io
import time
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from functools import reduce
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


def sent_body(server: OpenRouterTestServer, call: Callable[[], Any], reply: Any) -> bytes:
    """Run `call` (a client) against the test server; return the body it sent."""
    server.enqueue(reply)
    call()
    return server.requests[-1].body


@contextlib.contextmanager
def servers(ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Record every reply (to the very body our client sends) and serve it from a process."""
    cfg = config(ctx["quick"])
    payloads: dict[str, h.Payload] = {}
    with OpenRouterTestServer(api_key=h.KEY) as server:
        model = ChatOpenRouterAudio(api_key=h.KEY, base_url=server.base_url, model=h.MODEL)
        body = sent_body(server, lambda: model.invoke(h.PROMPT), h.speech(2))
        for s in {*cfg["lengths"], cfg["conc_s"], 2}:
            payloads[f"speech{s}"] = h.Payload.of(h.record(server, h.speech(s), body))
        for kind, reply in peer_replies().items():
            m = make("ChatOpenRouterAudio", server.base_url, tools=kind == "tool")
            sse = sent_body(server, lambda m=m: list(m.stream(question())), reply)
            plain = sent_body(server, lambda m=m: m.invoke(question()), reply)
            payloads[kind] = h.Payload.of(
                h.record(server, reply, sse), h.record(server, reply, plain)
            )
    events = payloads["speech2"].events or []
    first = next(i for i, e in enumerate(events) if b'"audio":{' in e and b'"data":"' in e)
    payloads["ttfa"] = h.Payload(events=events, mark_event=first)
    with h.replay_process(payloads) as (url, path):
        yield {**ctx, "replay": url, "payloads": path, "body": body.decode()}


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    cfg = config(ctx["quick"])
    body = ctx["body"].encode()
    url = lambda name: h.replay_url(ctx["replay"], name)  # noqa: E731
    speech_rows = []
    for s in cfg["lengths"]:
        speech_rows += spoken(url(f"speech{s}"), s, cfg["pairs"][s], body, "replay")
    with OpenRouterTestServer(api_key=h.KEY) as server:
        for s in cfg["lengths"]:
            reply = h.speech(s)
            server.responder = lambda _req, r=reply: r
            speech_rows += spoken(server.base_url, s, cfg["pairs"][s], body, "test server")
    status = peer_status()
    longest = cfg["lengths"][-1]
    return {
        "Spoken reply: invoke vs the floor": speech_rows,
        f"Linear growth: time at {longest} s / at 60 s": growth(speech_rows, longest),
        f"Peak memory, {longest} s reply": memory(longest, url, ctx),
        "Time to first audio: first audio event written -> consumer": first_audio(ctx, body),
        "Concurrent ainvoke (one model) vs the floor (one AsyncClient)": concurrency(
            url(f"speech{cfg['conc_s']}"), cfg, body
        ),
        "Peers (ours / peer < 1: ours is faster)": peers(url, cfg["peer_pairs"], status),
        "Peers that could not be measured": [
            {"peer, reply, call": k, "error": v} for k, v in status.items() if v != "ok"
        ],
        "Construction": construction(cfg["rounds"], [p for p in installed_peers()]),
        "A fresh instance and its first stream() (2,000-character text reply)": first_call(
            url("text"), cfg["rounds"], status
        ),
    }


def installed_peers() -> list[str]:
    # langchain-openrouter is not in the benchmark extra (its SDK pins pydantic): measured
    # only when installed by hand.
    return [p for p, m in PEERS.items() if importlib.util.find_spec(m) is not None]


def audio_ok(message: Any, pcm: bytes) -> bool:
    """The reply's one audio block is a WAV (54-byte header, read by `wave`) of `pcm`."""
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "audio"]
    with wave.open(io.BytesIO(base64.b64decode(blocks[0]["base64"]))) as w:
        frames_ok = w.getnframes() * 2 == len(pcm) and w.getframerate() == 24_000
    return len(blocks) == 1 and frames_ok and audio_pcm(message) == pcm


def spoken(url: str, seconds: int, pairs: int, body: bytes, server: str) -> list[dict[str, Any]]:
    """Sync and async `invoke` against the floor and the floor + base64 content block."""
    endpoint, hdrs, pcm = f"{url}/chat/completions", h.headers(), h.pcm_of(seconds)
    wav = wav_header(len(pcm)) + pcm
    model = ChatOpenRouterAudio(api_key=h.KEY, base_url=url, model=h.MODEL)
    client = httpx.Client(timeout=60)
    assert audio_ok(model.invoke(h.PROMPT), pcm), "client audio differs from the PCM sent"
    assert floor_invoke(client, endpoint, hdrs, body)[0] == wav, "floor audio differs"

    def row(api: str, t: dict[str, list[float]]) -> dict[str, Any]:
        return {
            "server": server,
            "API": api,
            "speech": f"{seconds} s",
            "floor": h.med(t["floor"]),
            "floor + b64 block": h.med(t["floor+b64"]),
            "client": h.med(t["client"]),
            "client / floor": h.ratio(t, "client", "floor"),
            "client / (floor + b64)": h.ratio(t, "client", "floor+b64"),
            "pairs": pairs,
        }

    sync = {
        "floor": lambda: floor_invoke(client, endpoint, hdrs, body),
        "floor+b64": lambda: floor_invoke(client, endpoint, hdrs, body, encode_block=True),
        "client": lambda: model.invoke(h.PROMPT),
    }
    rows = [row("sync", h.paired(sync, pairs))]
    client.close()
    if server != "replay":  # the in-process test server competes for the GIL: sync only
        return rows

    async def run_async() -> dict[str, Any]:
        amodel = ChatOpenRouterAudio(api_key=h.KEY, base_url=url, model=h.MODEL)
        aclient = httpx.AsyncClient(timeout=60)
        assert audio_ok(await amodel.ainvoke(h.PROMPT), pcm)
        fns = {
            "floor": lambda: afloor_invoke(aclient, endpoint, hdrs, body),
            "floor+b64": lambda: afloor_invoke(aclient, endpoint, hdrs, body, encode_block=True),
            "client": lambda: amodel.ainvoke(h.PROMPT),
        }
        return row("async", await h.apaired(fns, pairs))

    return [*rows, asyncio.run(run_async())]


def growth(rows: list[dict[str, Any]], longest: int) -> list[dict[str, Any]]:
    out = []
    for server in ("replay", "test server"):
        for api in ("sync", "async"):
            by = {r["speech"]: r for r in rows if r["server"] == server and r["API"] == api}
            if by:
                top, base = by[f"{longest} s"], by["60 s"]
                out.append(
                    {
                        "server": server,
                        "API": api,
                        "client: longest / 60 s": top["client"] / base["client"],
                        "floor: longest / 60 s": top["floor"] / base["floor"],
                    }
                )
    return out


def memory(seconds: int, url: Callable[[str], str], ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Each measurement in a fresh process, after a warm-up call on a 2 s reply."""
    pcm, rows = seconds * 48_000, []
    for which in ("client", "floor", "floor+b64"):
        arg = {"which": which, "body": ctx["body"]}
        arg |= {"url": url(f"speech{seconds}"), "warm_url": url("speech2")}
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
    """In a fresh process: tracemalloc peak, or RSS growth (`VmHWM` after - RSS before)."""
    import psutil

    body = arg["body"].encode()
    if arg["which"] == "client":
        ChatOpenRouterAudio(api_key=h.KEY, base_url=arg["warm_url"], model=h.MODEL).invoke(h.PROMPT)
        model = ChatOpenRouterAudio(api_key=h.KEY, base_url=arg["url"], model=h.MODEL)
        run: Callable[[], Any] = lambda: model.invoke(h.PROMPT)  # noqa: E731
    else:
        client, encode = httpx.Client(timeout=60), arg["which"] == "floor+b64"
        floor_invoke(client, f"{arg['warm_url']}/chat/completions", h.headers(), body)
        endpoint = f"{arg['url']}/chat/completions"
        run = lambda: floor_invoke(client, endpoint, h.headers(), body, encode_block=encode)  # noqa: E731
    gc.collect()
    if arg["mode"] == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        result = run()
        current, peak = tracemalloc.get_traced_memory()
        return {"peak": peak - before, "retained": current - before}
    # ru_maxrss survives exec (it would be the parent's peak): read VmHWM, reset to the
    # current RSS through clear_refs where the kernel allows it.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    rss = lambda: psutil.Process().memory_info().rss  # noqa: E731
    before, hwm_before = rss(), vm_hwm()
    result = run()
    del result
    return {"growth": vm_hwm() - before, "reset": hwm_before - before < 1_000_000}


def vm_hwm() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if "VmHWM" in x)
    return int(line.split()[1]) * 1024


def first_audio(ctx: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """The replay server in a thread marks the first audio event; consumers stamp it."""
    from langgraph.graph import START, MessagesState, StateGraph

    server = h.ReplayServer(h.load_payloads(ctx["payloads"])).start()
    url = server.base_url("ttfa")
    endpoint, hdrs = f"{url}/chat/completions", h.headers()
    model = ChatOpenRouterAudio(api_key=h.KEY, base_url=url, model=h.MODEL)
    seen: list[float] = []
    stamp = lambda *_a, **_k: seen.append(time.perf_counter()) if not seen else None  # noqa: E731

    class Ear(AudioCallbackHandler):
        def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    class AsyncEar(AsyncAudioCallbackHandler):
        async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    def heard(chunk: Any) -> None:
        if isinstance(chunk, AIMessageChunk) and any(
            isinstance(b, dict) and b.get("type") == "audio" and b.get("base64")
            for b in chunk.content
        ):
            stamp()

    async def anode(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    node = lambda state: {"messages": [model.invoke(state["messages"])]}  # noqa: E731
    graph = StateGraph(MessagesState).add_node("talk", node).add_edge(START, "talk").compile()
    agraph = StateGraph(MessagesState).add_node("talk", anode).add_edge(START, "talk").compile()
    client, aclient = httpx.Client(timeout=60), httpx.AsyncClient(timeout=60)
    turn = {"messages": [("user", h.PROMPT)]}

    async def astream() -> None:
        async for chunk in model.astream(h.PROMPT):
            heard(chunk)

    async def agraph_stream() -> None:
        async for chunk, _meta in agraph.astream(turn, stream_mode="messages"):
            heard(chunk)

    loop = asyncio.new_event_loop()
    consumers: dict[str, Callable[[], Any]] = {
        "floor (sync)": lambda: floor_invoke(client, endpoint, hdrs, body, on_first_piece=stamp),
        "invoke + AudioCallbackHandler": lambda: model.invoke(h.PROMPT, {"callbacks": [Ear()]}),
        "stream()": lambda: [heard(c) for c in model.stream(h.PROMPT)],
        "LangGraph stream_mode=messages (sync)": lambda: [
            heard(c) for c, _ in graph.stream(turn, stream_mode="messages")
        ],
        "floor (async)": lambda: loop.run_until_complete(
            afloor_invoke(aclient, endpoint, hdrs, body, on_first_piece=stamp)
        ),
        "ainvoke + AsyncAudioCallbackHandler": lambda: loop.run_until_complete(
            model.ainvoke(h.PROMPT, {"callbacks": [AsyncEar()]})
        ),
        "astream()": lambda: loop.run_until_complete(astream()),
        "LangGraph astream stream_mode=messages": lambda: loop.run_until_complete(agraph_stream()),
    }
    latency: dict[str, list[float]] = {k: [] for k in consumers}

    def once(name: str) -> Callable[[], None]:
        def run() -> None:
            seen.clear()
            consumers[name]()
            assert seen, f"{name}: no audio seen"
            latency[name].append(seen[0] - server.marks[-1])

        return run

    h.paired({name: once(name) for name in consumers}, 5 if ctx["quick"] else 15)
    loop.run_until_complete(aclient.aclose())
    loop.close()
    rows = []
    for name, xs in latency.items():
        xs = xs[1:]  # the warm-up
        floor = h.med(
            latency["floor (async)" if "async" in name or "astream" in name else "floor (sync)"][1:]
        )
        rows.append(
            {
                "consumer": name,
                "median": h.med(xs),
                "p90": sorted(xs)[int(0.9 * (len(xs) - 1))],
                "above the floor (median)": None if "floor" in name else h.med(xs) - floor,
                "n": len(xs),
            }
        )
    return rows


def concurrency(url: str, cfg: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    """N concurrent `ainvoke` of one model vs N floors on one pooled AsyncClient."""
    endpoint, pcm = f"{url}/chat/completions", h.pcm_of(cfg["conc_s"])
    wav = wav_header(len(pcm)) + pcm
    rows, ok = [], {"client": True, "floor": True}

    async def run() -> None:
        model = ChatOpenRouterAudio(api_key=h.KEY, base_url=url, model=h.MODEL)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        client = httpx.AsyncClient(timeout=60, limits=limits)  # the client's own pool limits
        for n in cfg["concurrency"]:
            ok.update(client=True, floor=True)

            async def ours(n: int = n) -> None:
                msgs = await asyncio.gather(*(model.ainvoke(h.PROMPT) for _ in range(n)))
                ok["client"] &= all(audio_ok(m, pcm) for m in msgs)

            async def floor(n: int = n, close: bool = False) -> None:
                hdrs = {**h.headers(), "Connection": "close"} if close else h.headers()
                outs = await asyncio.gather(
                    *(afloor_invoke(client, endpoint, hdrs, body) for _ in range(n))
                )
                ok["floor"] &= all(w == wav for w, _ in outs)

            async def floor_new_conn(n: int = n) -> None:
                await floor(n, close=True)

            # The first rounds run slow on both sides (fresh pools): discarded.
            await h.apaired({"floor": floor, "client": ours}, 2)
            fns = {"floor": floor, "floor new conn": floor_new_conn, "client": ours}
            t = await h.apaired(fns, cfg["rounds"], warm=False)
            rows.append(
                {
                    "concurrent": n,
                    "speech each": f"{cfg['conc_s']} s",
                    "floor": h.med(t["floor"]),
                    "floor, new connection each": h.med(t["floor new conn"]),
                    "client": h.med(t["client"]),
                    "client / floor": h.ratio(t, "client", "floor"),
                    "client / floor (new conn.)": h.ratio(t, "client", "floor new conn"),
                    "all correct": ok["client"] and ok["floor"],
                }
            )
        await client.aclose()

    asyncio.run(run())
    return rows


def peer_status() -> dict[str, str]:
    """Each peer and call once against the real test server: can it talk to it at all?"""
    replies, msgs, status = peer_replies(), question(), {}
    names = ("ChatOpenRouterAudio", *installed_peers())
    with OpenRouterTestServer(api_key=h.KEY) as server:
        for peer, kind, op in product(names, ("text", "tool"), ("stream", "invoke")):
            server.enqueue(replies[kind])
            model = make(peer, server.base_url, tools=kind == "tool")
            try:
                msg = model.invoke(msgs) if op == "invoke" else reduce(add, model.stream(msgs))
                text_ok = kind == "text" and msg.text == replies["text"].text
                ok = text_ok or (kind == "tool" and msg.tool_calls[0]["args"]["days"] == 7)
                status[f"{peer}, {kind}, {op}"] = "ok" if ok else "wrong result"
            except Exception as err:
                status[f"{peer}, {kind}, {op}"] = f"{type(err).__name__}: {err}"[:300]
            server.reset()
    return status


def _working(status: dict[str, str], kind: str, op: str) -> list[str]:
    names = ("ChatOpenRouterAudio", *PEERS)
    return [p for p in names if status.get(f"{p}, {kind}, {op}") == "ok"]


def peers(url: Callable[[str], str], pairs: int, status: dict[str, str]) -> list[dict[str, Any]]:
    msgs, rows = question(), []
    for kind in ("text", "tool"):
        for op in ("stream", "invoke"):
            names = _working(status, kind, op)
            models = {name: make(name, url(kind), tools=kind == "tool") for name in names}
            if op == "stream":
                fns = {k: (lambda m=m: list(m.stream(msgs))) for k, m in models.items()}
            else:
                fns = {k: (lambda m=m: m.invoke(msgs)) for k, m in models.items()}
            t = h.paired(fns, pairs)
            row: dict[str, Any] = {"reply": kind, "call": op, "ours": h.med(t[names[0]])}
            for peer in names[1:]:
                row[peer] = h.med(t[peer])
                row[f"ours / {peer}"] = h.ratio(t, names[0], peer)
            rows.append({**row, "pairs": pairs})
    return rows


def construction(rounds: int, peers: list[str]) -> list[dict[str, Any]]:
    """Time per construction; each class is built in batches that take about 0.1 s."""
    url, loop = "http://127.0.0.1:9/api/v1", asyncio.new_event_loop()

    async def with_clients(n: int) -> None:
        # Ours builds its httpx clients on first use, the peers in their constructors.
        for _ in range(n):
            m = make("ChatOpenRouterAudio", url)
            if hasattr(type(m), "transport"):  # older trees: `transport`, both properties
                _ = m.transport.client, m.transport.async_client
                continue
            _ = m.client.client
            _ = await m.client.async_client()

    def batch(name: str, n: int) -> Callable[[], Any]:
        if name == "ChatOpenRouterAudio + its httpx clients":
            return lambda: loop.run_until_complete(with_clients(n))
        return lambda: [make(name, url) for _ in range(n)]

    names = ["ChatOpenRouterAudio", "ChatOpenRouterAudio + its httpx clients", *peers]
    sizes = {}
    for name in names:
        batch(name, 1)()  # imports, caches
        t = time.perf_counter()
        batch(name, 1)()
        sizes[name] = max(1, min(500, int(0.1 / max(time.perf_counter() - t, 1e-6))))
    t = h.paired({k: batch(k, sizes[k]) for k in names}, rounds)
    loop.run_until_complete(loop.shutdown_asyncgens())  # closes each model's async client
    loop.close()
    per = {k: [x / sizes[k] for x in v] for k, v in t.items()}
    return [
        {
            "class": k,
            "per construction": h.med(per[k]),
            "ours / it": h.ratio(per, "ChatOpenRouterAudio", k) if k in peers else None,
            "batch": sizes[k],
        }
        for k in names
    ]


def first_call(url: str, rounds: int, status: dict[str, str]) -> list[dict[str, Any]]:
    """What an app that builds its model per request pays on every request."""
    msgs, names = question(), _working(status, "text", "stream")
    t = h.paired({n: (lambda n=n: list(make(n, url).stream(msgs))) for n in names}, rounds)
    return [
        {
            "class": n,
            "construct + first stream()": h.med(t[n]),
            "ours / it": h.ratio(t, names[0], n) if n != names[0] else None,
        }
        for n in names
    ]


def _profile_invoke60(ctx: dict[str, Any], floor: bool) -> Callable[[], None]:
    payload = h.replay_url(ctx["replay"], "speech60")
    model = ChatOpenRouterAudio(api_key=h.KEY, base_url=payload, model=h.MODEL)
    client, body = httpx.Client(timeout=60), ctx["body"].encode()

    def one() -> Any:
        if floor:
            endpoint = f"{payload}/chat/completions"
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
