"""Client-overhead benchmarks for `ChatOpenRouterAudio`: ratios to the floor and to peers.

    python benchmarks/run.py            # full run (a few minutes on 2 cores)
    python benchmarks/run.py --quick    # fewer repetitions, shorter replies

Every case is timed on this machine in this run against a local server, as
medians over repeated pairs run alternately (A B, B A, ...), and reported as
ratios. Replies are scripted with `langchain_openrouter_audio.testing`; see
`replay.py` for why the timed requests are served from a recording of
`OpenRouterTestServer`'s bytes in a subprocess (case 2 is also run directly
against `OpenRouterTestServer` for comparison).

Results go to stdout (markdown); with `--out FILE`, also to FILE (JSON) and FILE
with a `.md` suffix (the tables). Nothing is written over tracked files by default.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import gc
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import afloor_invoke, floor_invoke, wav_header
from replay import Payload, ReplayProcess, ReplayServer, split_events

from langchain_openrouter_audio import (
    AsyncAudioCallbackHandler,
    AudioCallbackHandler,
    ChatOpenRouterAudio,
    audio_pcm,
)
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    speech_reply,
    text_reply,
    tone_pcm16,
    tool_call_reply,
)

HERE = Path(__file__).resolve().parent
KEY = "test-key"
MODEL = "openai/gpt-audio-mini"
PROMPT = "Read me the long story."
SAMPLE_RATE = 24_000
BYTES_PER_SECOND = SAMPLE_RATE * 2
_ONE_SECOND = tone_pcm16(1.0)


def pcm_of(seconds: int) -> bytes:
    return _ONE_SECOND * seconds


def transcript_of(seconds: int) -> str:
    # About 2.5 words a second, like speech; 4-character transcript pieces.
    return ("The quick brown fox jumps. " * seconds)[: seconds * 14]


def speech(seconds: int) -> Reply:
    return speech_reply(pcm_of(seconds), transcript_of(seconds), audio_piece_bytes=4800)


def audio_input_message(text: str) -> HumanMessage:
    """A user turn with a short WAV: the test server wants audio in or out for text replies."""
    pcm = tone_pcm16(0.5)
    wav = base64.b64encode(wav_header(len(pcm)) + pcm).decode("ascii")
    return HumanMessage(
        content=[
            {"type": "text", "text": text},
            {"type": "audio", "base64": wav, "mime_type": "audio/wav"},
        ]
    )


# -- statistics ----------------------------------------------------------------


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def paired(fns: dict[str, Callable[[], Any]], pairs: int) -> dict[str, list[float]]:
    """Time each fn `pairs` times, alternating the order every round; one warm-up each."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(pairs):
        for name in names if i % 2 == 0 else names[::-1]:
            gc.collect()
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) in the same round."""
    return med([x / y for x, y in zip(times[a], times[b], strict=True)])


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x >= 0.001 else f"{x * 1e6:.0f} µs"


# -- recording -------------------------------------------------------------------


def headers_for(stream: bool) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }


def record(server: OpenRouterTestServer, reply: Reply, body: bytes) -> tuple[bytes, bool]:
    """The body `OpenRouterTestServer` sends for `reply` to request `body`."""
    stream = json.loads(body).get("stream") is True
    server.enqueue(reply)
    with httpx.Client(timeout=60) as client:
        request = client.build_request(
            "POST", f"{server.base_url}/chat/completions", content=body, headers=headers_for(stream)
        )
        response = client.send(request, stream=True)
        data = b"".join(response.iter_raw())
        response.close()
    assert response.status_code == 200, data[:300]
    return data, stream


def client_body(server: OpenRouterTestServer, call: Callable[[], Any], reply: Reply) -> bytes:
    """Run `call` (our client) against the test server; return the body it sent."""
    server.enqueue(reply)
    before = len(server.requests)
    call()
    assert len(server.requests) == before + 1
    return server.requests[-1].body


def expected_wav_b64(seconds: int) -> str:
    """The floor's WAV (44-byte header) of `seconds` of the scripted speech, as base64."""
    pcm = pcm_of(seconds)
    return base64.b64encode(wav_header(len(pcm)) + pcm).decode("ascii")


def audio_b64(message: AIMessage) -> str:
    blocks = [b for b in message.content if isinstance(b, dict) and b.get("type") == "audio"]
    assert len(blocks) == 1, message.content
    return str(blocks[0]["base64"])


def client_audio_ok(message: AIMessage, pcm: bytes) -> bool:
    """Whether the reply's single audio block is a WAV holding exactly `pcm`.

    The client's WAV has a 54-byte header (a `JUNK` chunk pads it to a multiple
    of 3 bytes), so it is compared through `audio_pcm` and read back with
    `wave`, not against the floor's 44-byte-header bytes.
    """
    wav = base64.b64decode(audio_b64(message))
    with wave.open(io.BytesIO(wav)) as w:
        frames_ok = w.getnframes() * 2 == len(pcm) and w.getframerate() == SAMPLE_RATE
    return frames_ok and audio_pcm(message) == pcm


class Setup:
    """Everything recorded from `OpenRouterTestServer` before timing starts."""

    def __init__(self, lengths: list[int], concurrency_seconds: int) -> None:
        self.lengths = lengths
        self.conc_s = concurrency_seconds
        self.payloads: dict[str, Payload] = {}
        self.bodies: dict[str, bytes] = {}
        self.peer_status: dict[tuple[str, str, str], str] = {}

    def run(self) -> None:
        with OpenRouterTestServer(api_key=KEY) as server:
            model = ChatOpenRouterAudio(api_key=KEY, base_url=server.base_url, model=MODEL)
            for seconds in sorted({*self.lengths, self.conc_s, 2}):
                reply = speech(seconds)
                body = client_body(server, lambda: model.invoke(PROMPT), reply)
                self.bodies["speech"] = body
                data, _ = record(server, reply, body)
                self.payloads[f"speech{seconds}"] = Payload(events=split_events(data))
            # Text and tool-call replies, streamed and not.
            text_model = ChatOpenRouterAudio(
                api_key=KEY, base_url=server.base_url, model=MODEL, modalities=["text"]
            )
            msgs = [audio_input_message("What is in this clip?")]
            for name, reply in self.peer_replies().items():
                m = text_model.bind_tools([get_weather]) if name == "tool" else text_model
                sse = client_body(server, lambda m=m: list(m.stream(msgs)), reply)
                plain = client_body(server, lambda m=m: m.invoke(msgs), reply)
                events, _ = record(server, reply, sse)
                json_body, _ = record(server, reply, plain)
                self.payloads[name] = Payload(events=split_events(events), json_body=json_body)
            self.check_peers(server, msgs)
        first_audio = next(
            i
            for i, e in enumerate(self.payloads["speech2"].events or [])
            if b'"audio":{' in e and b'"data":"' in e
        )
        self.payloads["ttfa"] = Payload(
            events=self.payloads["speech2"].events, mark_event=first_audio, gap_s=0.03
        )

    @staticmethod
    def peer_replies() -> dict[str, Reply]:
        text = ("Sure. The clip is a steady 440 Hz tone, half a second long. " * 40)[:2000]
        args = {"city": "Oslo", "unit": "celsius", "days": 7, "note": "x" * 300}
        return {
            "text": text_reply(text, text_piece_chars=4),
            "tool": tool_call_reply("get_weather", args, call_id="call_1"),
        }

    def check_peers(self, server: OpenRouterTestServer, msgs: list[HumanMessage]) -> None:
        """Each peer and call once against the real test server: can it talk to it at all?"""
        replies = self.peer_replies()

        def total(chunks: list[Any]) -> Any:
            out = chunks[0]
            for c in chunks[1:]:
                out = out + c
            return out

        checks: dict[tuple[str, str], Callable[[Any], bool]] = {
            ("text", "stream"): lambda m: total(list(m.stream(msgs))).text == replies["text"].text,
            ("text", "invoke"): lambda m: m.invoke(msgs).text == replies["text"].text,
            ("tool", "stream"): lambda m: (
                total(list(m.stream(msgs))).tool_calls[0]["args"]["days"] == 7
            ),
            ("tool", "invoke"): lambda m: m.invoke(msgs).tool_calls[0]["args"]["days"] == 7,
        }
        for peer in ("ChatOpenRouterAudio", *installed_peers()):
            for (kind, op), check in checks.items():
                model = make_peer(peer, server.base_url)
                if kind == "tool":
                    model = model.bind_tools([get_weather])
                server.reset()
                server.enqueue(replies[kind])
                try:
                    ok = check(model)
                    self.peer_status[peer, kind, op] = "ok" if ok else "wrong result"
                except Exception as err:
                    self.peer_status[peer, kind, op] = f"{type(err).__name__}: {err}"[:300]
            server.reset()


def get_weather(city: str, unit: str, days: int, note: str) -> str:
    """Weather forecast for a city."""
    return "sunny"


def installed_peers() -> list[str]:
    """The peers that are installed; langchain-openrouter is not in the benchmark extra
    (its SDK would downgrade pydantic), so it is measured only when installed by hand."""
    modules = {"ChatOpenRouter": "langchain_openrouter", "ChatOpenAI": "langchain_openai"}
    return [p for p, m in modules.items() if importlib.util.find_spec(m) is not None]


def make_peer(name: str, base_url: str) -> Any:
    if name == "ChatOpenRouter":
        from langchain_openrouter import ChatOpenRouter

        return ChatOpenRouter(model=MODEL, api_key=KEY, base_url=base_url, timeout=60_000)
    if name == "ChatOpenAI":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=MODEL, api_key=KEY, base_url=base_url, timeout=60)
    if name == "ChatOpenRouterAudio":
        return ChatOpenRouterAudio(api_key=KEY, base_url=base_url, model=MODEL, modalities=["text"])
    raise ValueError(name)


# -- case 2: spoken invoke vs the floor ------------------------------------------


def case_speech(
    base_url: Callable[[int], str],
    lengths: list[int],
    pairs: dict[int, int],
    body: bytes,
    modes: tuple[str, ...] = ("sync", "async"),
) -> list[dict[str, Any]]:
    rows = []
    for seconds in lengths:
        rows += _speech_one(base_url(seconds), seconds, pairs[seconds], body, modes)
    return rows


def _speech_one(
    url: str, seconds: int, pairs: int, body: bytes, modes: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows = []
    model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
    client = httpx.Client(timeout=60)
    endpoint = f"{url}/chat/completions"
    hdrs = headers_for(True)
    expect = expected_wav_b64(seconds)
    pcm = pcm_of(seconds)
    msg = model.invoke(PROMPT)
    assert client_audio_ok(msg, pcm), "client audio differs from the PCM sent"
    wav, _ = floor_invoke(client, endpoint, hdrs, body)
    assert base64.b64encode(wav).decode() == expect, "floor audio differs"  # type: ignore[arg-type]
    del msg, wav
    times = paired(
        {
            "floor": lambda: floor_invoke(client, endpoint, hdrs, body),
            "floor+b64": lambda: floor_invoke(client, endpoint, hdrs, body, encode_block=True),
            "invoke": lambda: model.invoke(PROMPT),
        },
        pairs,
    )
    rows.append(_speech_row("sync", seconds, times, pairs))
    client.close()

    async def run_async() -> dict[str, Any]:
        amodel = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
        aclient = httpx.AsyncClient(timeout=60)
        amsg = await amodel.ainvoke(PROMPT)
        assert client_audio_ok(amsg, pcm)
        del amsg
        times = await apaired(
            {
                "floor": lambda: afloor_invoke(aclient, endpoint, hdrs, body),
                "floor+b64": lambda: afloor_invoke(
                    aclient, endpoint, hdrs, body, encode_block=True
                ),
                "invoke": lambda: amodel.ainvoke(PROMPT),
            },
            pairs,
        )
        await aclient.aclose()
        return _speech_row("async", seconds, times, pairs)

    if "async" in modes:
        rows.append(asyncio.run(run_async()))
    return rows


async def apaired(
    fns: dict[str, Callable[[], Coroutine[Any, Any, Any]]], pairs: int
) -> dict[str, list[float]]:
    for fn in fns.values():
        await fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(pairs):
        for name in names if i % 2 == 0 else names[::-1]:
            gc.collect()
            t = time.perf_counter()
            await fns[name]()
            times[name].append(time.perf_counter() - t)
    return times


def _speech_row(mode: str, seconds: int, times: dict[str, list[float]], n: int) -> dict[str, Any]:
    return {
        "mode": mode,
        "seconds": seconds,
        "pairs": n,
        "floor_s": med(times["floor"]),
        "floor_b64_s": med(times["floor+b64"]),
        "client_s": med(times["invoke"]),
        "ratio": ratio(times, "invoke", "floor"),
        "ratio_b64": ratio(times, "invoke", "floor+b64"),
    }


# -- case 3: memory ---------------------------------------------------------------


def vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def hwm_reset(hwm: int, rss_now: int) -> bool:
    """Whether the high-water mark was reset to about the current RSS."""
    return hwm - rss_now < 1_000_000


def memory_child(args: argparse.Namespace) -> None:
    """In a fresh process: one warm-up, then the measured call; prints JSON."""
    import tracemalloc

    try:
        import psutil

        def rss() -> int:
            return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover

        def rss() -> int:
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    body = Path(args.body).read_bytes()
    warm_url, url = args.warm_url, args.url
    if args.which == "client":
        model = ChatOpenRouterAudio(api_key=KEY, base_url=warm_url, model=MODEL)
        model.invoke(PROMPT)
        model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)

        def call() -> Any:
            return model.invoke(PROMPT)
    else:
        client = httpx.Client(timeout=60)
        hdrs = headers_for(True)
        floor_invoke(client, f"{warm_url}/chat/completions", hdrs, body)
        encode = args.which == "floor+b64"

        def call() -> Any:
            return floor_invoke(client, f"{url}/chat/completions", hdrs, body, encode_block=encode)

    gc.collect()
    out: dict[str, Any] = {}
    if args.mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        current, peak = tracemalloc.get_traced_memory()
        out = {"peak_bytes": peak - before, "retained_bytes": current - before}
    else:
        # ru_maxrss survives exec (it would report the parent's peak): use VmHWM,
        # reset to the current RSS through clear_refs where the kernel allows it.
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        before = rss()
        hwm_before = vm_hwm()
        result = call()
        out = {
            # Valid when the mark was reset, or when the call's peak went above it.
            "rss_growth_bytes": vm_hwm() - before,
            "hwm_reset": hwm_reset(hwm_before, before),
            "rss_after_bytes": rss() - before,
        }
    del result
    print(json.dumps(out))


def case_memory(replay: ReplayProcess, seconds: int, body: bytes) -> dict[str, Any]:
    body_file = HERE / ".memory_body.json"
    body_file.write_bytes(body)
    results: dict[str, Any] = {"seconds": seconds, "pcm_bytes": seconds * BYTES_PER_SECOND}
    try:
        for which in ("client", "floor", "floor+b64"):
            for mode in ("tracemalloc", "rss"):
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--memory-child",
                    "--which",
                    which,
                    "--mode",
                    mode,
                    "--url",
                    replay.base_url(f"speech{seconds}"),
                    "--warm-url",
                    replay.base_url("speech2"),
                    "--body",
                    str(body_file),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr[-2000:])
                results[f"{which}:{mode}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        body_file.unlink(missing_ok=True)
    return results


# -- case 4: time to first audio --------------------------------------------------


def case_ttfa(repeats: int, body: bytes) -> dict[str, dict[str, float]]:
    from langgraph.graph import START, MessagesState, StateGraph

    server = ReplayServer(SETUP.payloads).start()
    url = server.base_url("ttfa")
    endpoint = f"{url}/chat/completions"
    hdrs = headers_for(True)
    model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
    seen: list[float] = []

    def stamp(*_: Any) -> None:
        if not seen:
            seen.append(time.perf_counter())

    class Ear(AudioCallbackHandler):
        def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    class AsyncEar(AsyncAudioCallbackHandler):
        async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
            stamp()

    def has_audio(chunk: Any) -> bool:
        content = getattr(chunk, "content", None)
        return isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "audio" and (b.get("base64") or b.get("data"))
            for b in content
        )

    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def anode(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("talk", node).add_edge(START, "talk").compile()
    agraph = StateGraph(MessagesState).add_node("talk", anode).add_edge(START, "talk").compile()
    client = httpx.Client(timeout=60)
    aclient = httpx.AsyncClient(timeout=60)

    def sync_stream() -> None:
        for chunk in model.stream(PROMPT):
            if has_audio(chunk):
                stamp()

    def sync_graph() -> None:
        for chunk, _meta in graph.stream({"messages": [("user", PROMPT)]}, stream_mode="messages"):
            if isinstance(chunk, AIMessageChunk) and has_audio(chunk):
                stamp()

    async def astream() -> None:
        async for chunk in model.astream(PROMPT):
            if has_audio(chunk):
                stamp()

    async def agraph_stream() -> None:
        async for chunk, _meta in agraph.astream(
            {"messages": [("user", PROMPT)]}, stream_mode="messages"
        ):
            if isinstance(chunk, AIMessageChunk) and has_audio(chunk):
                stamp()

    variants: dict[str, Callable[[], Any]] = {
        "floor (sync)": lambda: floor_invoke(client, endpoint, hdrs, body, on_first_piece=stamp),
        "invoke + AudioCallbackHandler": lambda: model.invoke(
            PROMPT, config={"callbacks": [Ear()]}
        ),
        "stream()": sync_stream,
        "LangGraph stream_mode=messages (sync)": sync_graph,
    }
    avariants: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
        "floor (async)": lambda: afloor_invoke(aclient, endpoint, hdrs, body, on_first_piece=stamp),
        "ainvoke + AsyncAudioCallbackHandler": lambda: model.ainvoke(
            PROMPT, config={"callbacks": [AsyncEar()]}
        ),
        "astream()": astream,
        "LangGraph astream stream_mode=messages": agraph_stream,
    }
    lat: dict[str, list[float]] = {k: [] for k in [*variants, *avariants]}
    loop = asyncio.new_event_loop()

    def once(name: str, fn: Callable[[], Any], is_async: bool) -> None:
        seen.clear()
        n = len(server.marks)
        gc.collect()
        loop.run_until_complete(fn()) if is_async else fn()
        assert seen, f"{name}: no audio seen"
        assert len(server.marks) == n + 1
        lat[name].append(seen[0] - server.marks[-1])

    all_variants = [(k, v, False) for k, v in variants.items()]
    all_variants += [(k, v, True) for k, v in avariants.items()]
    for name, fn, is_async in all_variants:  # warm-up
        once(name, fn, is_async)
        lat[name].clear()
    for i in range(repeats):
        order = all_variants if i % 2 == 0 else all_variants[::-1]
        for name, fn, is_async in order:
            once(name, fn, is_async)
    loop.run_until_complete(aclient.aclose())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    client.close()
    server.stop()
    return {
        k: {"median_s": med(v), "p90_s": sorted(v)[int(0.9 * (len(v) - 1))], "n": len(v)}
        for k, v in lat.items()
    }


# -- case 5: concurrency -----------------------------------------------------------


def case_concurrency(
    replay: ReplayProcess, seconds: int, counts: list[int], pairs: int, body: bytes
) -> list[dict[str, Any]]:
    url = replay.base_url(f"speech{seconds}")
    endpoint = f"{url}/chat/completions"
    hdrs = headers_for(True)
    pcm = pcm_of(seconds)
    expect_wav = base64.b64decode(expected_wav_b64(seconds))
    rows = []
    ok = {"client": True, "floor": True}

    async def run() -> None:
        model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
        # The same pool limits the client's transport uses.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        client = httpx.AsyncClient(timeout=60, limits=limits)
        for n in counts:
            ok["client"] = ok["floor"] = True

            async def ours(n: int = n) -> None:
                msgs = await asyncio.gather(*(model.ainvoke(PROMPT) for _ in range(n)))
                ok["client"] &= all(client_audio_ok(m, pcm) for m in msgs) and len(msgs) == n

            async def floor(n: int = n, h: dict[str, str] = hdrs) -> None:
                outs = await asyncio.gather(
                    *(afloor_invoke(client, endpoint, h, body) for _ in range(n))
                )
                ok["floor"] &= all(w == expect_wav for w, _ in outs) and len(outs) == n

            async def floor_new_conn(n: int = n) -> None:
                # Like the client before connections were pooled after `[DONE]`:
                # a new connection for every request.
                await floor(n, {**hdrs, "Connection": "close"})

            if n == counts[0]:
                # A first block of rounds runs slow on both sides (fresh pools, server
                # start-up); discard it.
                await apaired({"floor": floor, "client": ours}, 2)
            fns = {"floor": floor, "floor_new_conn": floor_new_conn, "client": ours}
            times = await apaired(fns, pairs)
            rows.append(
                {
                    "concurrency": n,
                    "seconds": seconds,
                    "pairs": pairs,
                    "floor_s": med(times["floor"]),
                    "client_s": med(times["client"]),
                    "ratio": ratio(times, "client", "floor"),
                    "floor_new_conn_s": med(times["floor_new_conn"]),
                    "ratio_new_conn": ratio(times, "client", "floor_new_conn"),
                    "all_correct": ok["client"] and ok["floor"],
                }
            )
        await client.aclose()

    asyncio.run(run())
    return rows


# -- case 6: peers ---------------------------------------------------------------


def case_peers(
    replay: ReplayProcess, pairs: int, status: dict[tuple[str, str, str], str]
) -> list[dict[str, Any]]:
    msgs = [audio_input_message("What is in this clip?")]
    rows = []
    for kind in ("text", "tool"):
        url = replay.base_url(kind)
        for op in ("stream", "invoke"):
            names = [
                p
                for p in ("ChatOpenRouterAudio", "ChatOpenRouter", "ChatOpenAI")
                if status.get((p, kind, op)) == "ok"
            ]
            models = {name: make_peer(name, url) for name in names}
            if kind == "tool":
                models = {k: m.bind_tools([get_weather]) for k, m in models.items()}
            if op == "stream":
                fns = {k: (lambda m=m: list(m.stream(msgs))) for k, m in models.items()}
            else:
                fns = {k: (lambda m=m: m.invoke(msgs)) for k, m in models.items()}
            times = paired(fns, pairs)
            row: dict[str, Any] = {"reply": kind, "op": op, "pairs": pairs}
            row["ours_s"] = med(times["ChatOpenRouterAudio"])
            for peer in names[1:]:
                row[f"{peer}_s"] = med(times[peer])
                row[f"ratio_{peer}"] = ratio(times, "ChatOpenRouterAudio", peer)
            rows.append(row)
    return rows


# -- case 7: construction -------------------------------------------------------------


def case_construction(rounds: int, peers: list[str]) -> dict[str, Any]:
    """Time per construction; each class is built in batches sized to take about 0.1 s."""
    url = "http://127.0.0.1:9/api/v1"

    async def ours_with_clients() -> None:
        # Ours builds its httpx clients on first use, the peers in their constructors.
        # The async client belongs to the running event loop: this runs inside one.
        m = make_peer("ChatOpenRouterAudio", url)
        _ = m.client.client
        _ = await m.client.async_client()

    makers: dict[str, Callable[[], Any]] = {
        name: (lambda name=name: make_peer(name, url)) for name in ["ChatOpenRouterAudio", *peers]
    }
    makers["ChatOpenRouterAudio+clients"] = ours_with_clients
    loop = asyncio.new_event_loop()

    def batch(name: str, n: int) -> Callable[[], None]:
        make = makers[name]

        def run() -> None:
            for _ in range(n):
                make()

        if name != "ChatOpenRouterAudio+clients":
            return run

        async def arun() -> None:
            for _ in range(n):
                await make()

        # One loop entry per batch, not per construction.
        return lambda: loop.run_until_complete(arun())

    sizes = {}
    for name in makers:
        once = batch(name, 1)
        once()  # first call: imports, caches
        t = time.perf_counter()
        once()
        sizes[name] = max(1, min(500, int(0.1 / max(time.perf_counter() - t, 1e-6))))

    times = paired({k: batch(k, sizes[k]) for k in makers}, rounds)
    # Each model's async client closes with its loop's async generators.
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    per = {k: [x / sizes[k] for x in v] for k, v in times.items()}
    out: dict[str, Any] = {"rounds": rounds, "batch_sizes": sizes}
    for name in makers:
        out[f"{name}_s"] = med(per[name])
    for peer in peers:
        out[f"ratio_{peer}"] = ratio(per, "ChatOpenRouterAudio", peer)
    return out


def case_first_call(
    replay: ReplayProcess, rounds: int, status: dict[tuple[str, str, str], str]
) -> dict[str, Any]:
    """A fresh instance and its first call (a streamed text reply).

    What an app that builds its model per request pays on every request.
    """
    msgs = [audio_input_message("What is in this clip?")]
    url = replay.base_url("text")
    names = [
        p
        for p in ("ChatOpenRouterAudio", "ChatOpenRouter", "ChatOpenAI")
        if status.get((p, "text", "stream")) == "ok"
    ]
    fns = {name: (lambda name=name: list(make_peer(name, url).stream(msgs))) for name in names}
    times = paired(fns, rounds)
    out: dict[str, Any] = {"rounds": rounds}
    for name in names:
        out[f"{name}_s"] = med(times[name])
    for peer in names[1:]:
        out[f"ratio_{peer}"] = ratio(times, "ChatOpenRouterAudio", peer)
    return out


# -- reporting ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pkgs = [
        "langchain-openrouter-audio",
        "langchain-core",
        "httpx",
        "langgraph",
        "langchain-openrouter",
        "openrouter",
        "langchain-openai",
        "openai",
    ]
    versions = {}
    for p in pkgs:
        try:
            versions[p] = version(p)
        except Exception:
            versions[p] = "not installed"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def markdown(r: dict[str, Any]) -> str:
    out = []
    m = r["machine"]
    out.append(
        f"Run {m['date']}, {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"{'quick' if r['quick'] else 'full'} mode, {r['wall_s']:.0f} s.\n"
    )
    out.append("### 2. Spoken reply, `invoke` vs the floor\n")
    out.append(
        "| server | API | speech | floor | floor + b64 block | client | "
        "client / floor | client / (floor + b64) | pairs |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for server, rows in (("replay", r["speech"]), ("OpenRouterTestServer", r["speech_testserver"])):
        for row in rows:
            out.append(
                f"| {server} | {row['mode']} | {row['seconds']} s | {ms(row['floor_s'])} | "
                f"{ms(row['floor_b64_s'])} | {ms(row['client_s'])} | **{row['ratio']:.2f}x** | "
                f"{row['ratio_b64']:.2f}x | {row['pairs']} |"
            )
    out.append("")
    out.append("Linear growth (median time at the longest / at 60 s):\n")
    out.append("| server | API | client | floor |")
    out.append("|---|---|---|---|")
    for server, rows in (("replay", r["speech"]), ("OpenRouterTestServer", r["speech_testserver"])):
        for mode in ("sync", "async"):
            by = {x["seconds"]: x for x in rows if x["mode"] == mode}
            if 60 in by and max(by) > 60:
                top = max(by)
                out.append(
                    f"| {server} | {mode} | {by[top]['client_s'] / by[60]['client_s']:.2f}x "
                    f"({top} s / 60 s) | {by[top]['floor_s'] / by[60]['floor_s']:.2f}x |"
                )
    mem = r["memory"]
    pcm = mem["pcm_bytes"]
    out.append(f"\n### 3. Peak memory, {mem['seconds']} s reply (PCM = {pcm / 1e6:.1f} MB)\n")
    out.append("| what | tracemalloc peak | x PCM | RSS growth | x PCM | retained (tracemalloc) |")
    out.append("|---|---|---|---|---|---|")
    for which in ("client", "floor", "floor+b64"):
        t = mem[f"{which}:tracemalloc"]
        s = mem[f"{which}:rss"]
        out.append(
            f"| {which} | {t['peak_bytes'] / 1e6:.1f} MB | **{t['peak_bytes'] / pcm:.2f}x** | "
            f"{s['rss_growth_bytes'] / 1e6:.1f} MB | {s['rss_growth_bytes'] / pcm:.2f}x | "
            f"{t['retained_bytes'] / 1e6:.1f} MB |"
        )
    out.append("\n### 4. Time to first audio (first audio event written -> consumer)\n")
    out.append("| consumer | median | p90 | above floor (median) | n |")
    out.append("|---|---|---|---|---|")
    t = r["ttfa"]
    for name, v in t.items():
        base = t["floor (async)" if ("async" in name or "astream" in name) else "floor (sync)"]
        above = v["median_s"] - base["median_s"]
        out.append(
            f"| {name} | {ms(v['median_s'])} | {ms(v['p90_s'])} | "
            f"{'-' if name.startswith('floor') else ms(above) if above > 0 else '-' + ms(-above)} "
            f"| {v['n']} |"
        )
    out.append("\n### 5. Concurrent `ainvoke` (one model) vs the floor (one AsyncClient)\n")
    out.append(
        "| concurrent | speech each | floor | floor, new connection each | client | "
        "client / floor | client / floor (new conn.) | all correct |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for row in r["concurrency"]:
        out.append(
            f"| {row['concurrency']} | {row['seconds']} s | {ms(row['floor_s'])} | "
            f"{ms(row['floor_new_conn_s'])} | {ms(row['client_s'])} | **{row['ratio']:.2f}x** | "
            f"{row['ratio_new_conn']:.2f}x | {row['all_correct']} |"
        )
    peers = r["peers"]
    out.append("\n### 6. Peers (ours / peer; < 1 means ours is faster)\n")
    out.append(
        "| reply | call | ours | " + " | ".join(f"{p} | ours / {p}" for p in peers) + " | pairs |"
    )
    out.append("|---|---|---|" + "---|---|" * len(peers) + "---|")
    for row in r["peer_cases"]:
        cells = " | ".join(
            f"{ms(row[f'{p}_s'])} | **{row[f'ratio_{p}']:.2f}x**"
            if f"{p}_s" in row
            else "n/a | n/a"
            for p in peers
        )
        out.append(
            f"| {row['reply']} | `{row['op']}` | {ms(row['ours_s'])} | {cells} | {row['pairs']} |"
        )
    for key, status in r["peer_status"].items():
        if status != "ok":
            out.append(f"\n- `{key}` could not be benchmarked: `{status.splitlines()[0]}`")
    c = r["construction"]
    out.append("\n### 7. Construction\n")
    out.append("| class | per construction | ours / it |")
    out.append("|---|---|---|")
    out.append(f"| ChatOpenRouterAudio | {ms(c['ChatOpenRouterAudio_s'])} | - |")
    with_clients = ms(c["ChatOpenRouterAudio+clients_s"])
    out.append(f"| ChatOpenRouterAudio + its httpx clients | {with_clients} | - |")
    for p in peers:
        out.append(f"| {p} | {ms(c[f'{p}_s'])} | **{c[f'ratio_{p}']:.2f}x** |")
    f = r["first_call"]
    out.append("\nA fresh instance plus its first call (streamed 2,000-character text reply):\n")
    out.append("| class | construct + first `stream` | ours / it |")
    out.append("|---|---|---|")
    out.append(f"| ChatOpenRouterAudio | {ms(f['ChatOpenRouterAudio_s'])} | - |")
    for p in peers:
        if f"{p}_s" in f:
            out.append(f"| {p} | {ms(f[f'{p}_s'])} | **{f[f'ratio_{p}']:.2f}x** |")
    return "\n".join(out)


SETUP: Setup


def main() -> None:
    global SETUP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs, 300 s longest reply")
    parser.add_argument("--out", help="write the results as JSON here (and the tables to .md)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--which", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--warm-url", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args)
        return

    quick = args.quick
    started = time.perf_counter()
    lengths = [10, 60, 300] if quick else [10, 60, 600]
    longest = lengths[-1]
    pairs = {10: 7, 60: 5, 300: 3} if quick else {10: 15, 60: 9, 600: 5}
    conc_s = 2

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    log("recording replies from OpenRouterTestServer")
    SETUP = Setup(lengths, conc_s)
    SETUP.run()
    body = SETUP.bodies["speech"]
    peers = installed_peers()
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "peers": peers}
    results["peer_status"] = {"/".join(k): v for k, v in SETUP.peer_status.items()}

    with ReplayProcess(SETUP.payloads) as replay:
        log("case 2: spoken invoke vs floor (replay server)")
        results["speech"] = case_speech(
            lambda s: replay.base_url(f"speech{s}"), lengths, pairs, body
        )
        log("case 3: memory")
        results["memory"] = case_memory(replay, longest, body)
        log("case 5: concurrency")
        results["concurrency"] = case_concurrency(
            replay, conc_s, [50, 200], 3 if quick else 5, body
        )
        log("case 6: peers")
        results["peer_cases"] = case_peers(replay, 7 if quick else 15, SETUP.peer_status)
        log("case 7: construction + first call")
        results["first_call"] = case_first_call(replay, 5 if quick else 9, SETUP.peer_status)
        results["replay_stats"] = replay.stats()

    log("case 2 again, directly against OpenRouterTestServer")
    with OpenRouterTestServer(api_key=KEY) as server:
        replies = {s: speech(s) for s in lengths}
        results["speech_testserver"] = case_speech_direct(server, replies, lengths, pairs, body)

    log("case 4: time to first audio")
    results["ttfa"] = case_ttfa(5 if quick else 15, body)
    log("case 7: construction")
    results["construction"] = case_construction(5 if quick else 9, peers)
    results["wall_s"] = time.perf_counter() - started
    table = markdown(results)
    print(table)
    if args.out:
        out = Path(args.out)
        out.write_text(json.dumps(results, indent=2))
        out.with_suffix(".md").write_text(table + "\n")
        log(f"done; wrote {out} and {out.with_suffix('.md')}")
    else:
        log("done")


def case_speech_direct(
    server: OpenRouterTestServer,
    replies: dict[int, Reply],
    lengths: list[int],
    pairs: dict[int, int],
    body: bytes,
) -> list[dict[str, Any]]:
    """Case 2 (sync only) with `OpenRouterTestServer` rendering every reply in-process."""
    rows = []
    for seconds in lengths:
        server.responder = lambda _req, r=replies[seconds]: r
        rows += case_speech(lambda _s: server.base_url, [seconds], pairs, body, modes=("sync",))
    return rows


if __name__ == "__main__":
    main()
