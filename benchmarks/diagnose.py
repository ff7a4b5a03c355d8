"""Reproduce, one by one, the client inefficiencies listed in docs/performance.md.

    python benchmarks/diagnose.py

Nothing here changes the package: each check measures current behaviour and,
where a fix is proposed, the same work done the proposed way, side by side.
"""

from __future__ import annotations

import base64
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import _State, floor_invoke, wav_header
from replay import Payload, ReplayProcess, split_events
from run import KEY, MODEL, PROMPT, client_body, headers_for, record, speech

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio._assembler import ReplyAssembler
from langchain_openrouter_audio._sse import SSEDecoder
from langchain_openrouter_audio._transport import _decode_event
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import OpenRouterTestServer


def best_of(fn: Callable[[], Any], n: int = 15) -> float:
    xs = []
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t)
    return statistics.median(xs)


def recorded(seconds: int) -> tuple[bytes, bytes]:
    reply = speech(seconds)
    with OpenRouterTestServer(api_key=KEY) as server:
        model = ChatOpenRouterAudio(api_key=KEY, base_url=server.base_url, model=MODEL)
        body = client_body(server, lambda: model.invoke(PROMPT), reply)
        data, _ = record(server, reply, body)
    return body, data


def connection_reuse(replay: ReplayProcess, body: bytes) -> None:
    print("\n1. Connection reuse after a streamed reply (10 sequential calls each)")
    url = replay.base_url("s")
    model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
    client = httpx.Client(timeout=60)
    cases: dict[str, Callable[[], Any]] = {
        "ChatOpenRouterAudio.invoke": lambda: model.invoke(PROMPT),
        "ChatOpenRouterAudio.stream": lambda: list(model.stream(PROMPT)),
        "floor (reads to EOF)": lambda: floor_invoke(
            client, f"{url}/chat/completions", headers_for(True), body
        ),
    }
    for name, fn in cases.items():
        fn()
        before = replay.stats()["connections"]
        for _ in range(10):
            fn()
        new = replay.stats()["connections"] - before - 1  # -1: the stats request itself
        print(f"   {name:32s} new TCP connections: {new:2d} / 10 requests")


def client_creation() -> None:
    print("\n2. Cost of the per-instance httpx clients (built on first use of each instance)")
    sync = best_of(lambda: httpx.Client(timeout=60), 10)
    asyn = best_of(lambda: httpx.AsyncClient(timeout=60), 10)
    shared_ctx = httpx.create_ssl_context()
    with_ctx = best_of(lambda: httpx.Client(timeout=60, verify=shared_ctx), 10)
    print(f"   httpx.Client()                         {sync * 1000:6.2f} ms")
    print(f"   httpx.AsyncClient()                    {asyn * 1000:6.2f} ms")
    print(f"   httpx.Client(verify=<shared context>)  {with_ctx * 1000:6.2f} ms")


def breakdown(data: bytes, body: bytes, replay: ReplayProcess, seconds: int) -> None:
    print(f"\n3. Offline breakdown, {seconds} s reply (no network; same byte chunks httpx yields)")
    client = httpx.Client(timeout=60)
    with client.stream(
        "POST", f"{replay.base_url('s')}/chat/completions", content=body, headers=headers_for(True)
    ) as r:
        chunks = list(r.iter_bytes())

    def floor_parse() -> _State:
        s = _State(None)
        for ch in chunks:
            s.feed(ch)
        return s

    def client_decode() -> list[dict[str, Any]]:
        d, out = SSEDecoder(), []
        for ch in chunks:
            for ev, payload in d.feed(ch):
                if payload == b"[DONE]":
                    return out
                if (x := _decode_event(ev, payload)) is not None:
                    out.append(x)
        return out

    decoded = client_decode()

    def assemble() -> ReplyAssembler:
        a = ReplyAssembler()
        for x in decoded:
            a.feed(x)
        return a

    rows = {
        "floor: split + json + b64decode": floor_parse,
        "client: SSEDecoder + _decode_event": client_decode,
        "client: ReplyAssembler.feed": assemble,
        "floor: join + header + b64 block": lambda: floor_parse().result(True),
        "client: ReplyAssembler.message()": lambda: assemble().message(),
    }
    t = {k: best_of(v) for k, v in rows.items()}
    t["floor: join + header + b64 block"] -= t["floor: split + json + b64decode"]
    t["client: ReplyAssembler.message()"] -= t["client: ReplyAssembler.feed"]
    for k, v in t.items():
        print(f"   {k:40s} {v * 1000:7.2f} ms")

    parts = assemble().pcm_parts

    def current() -> str:
        pcm = b"".join(parts)
        return base64.b64encode(pcm16_to_wav(pcm)).decode("ascii")

    def proposed() -> str:
        # One join straight behind the header; drop the bytes before decoding to str.
        total = sum(map(len, parts))
        wav = b"".join([wav_header(total), *parts])
        encoded = base64.b64encode(wav)
        del wav
        return encoded.decode("ascii")

    assert current() == proposed()
    pcm_len = sum(map(len, parts))
    print(f"\n4. Building the audio block ({pcm_len / 1e6:.1f} MB PCM): time and tracemalloc peak")
    for name, fn in (("current (audio_block)", current), ("proposed", proposed)):
        took = best_of(fn, 7)
        gc.collect()
        tracemalloc.start()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del out
        mb, x = peak / 1e6, peak / pcm_len
        print(f"   {name:24s} {took * 1000:7.2f} ms  peak {mb:6.1f} MB = {x:.2f}x PCM")


def main() -> None:
    seconds = 60
    body, data = recorded(seconds)
    with ReplayProcess({"s": Payload(events=split_events(data))}) as replay:
        connection_reuse(replay, body)
        client_creation()
        breakdown(data, body, replay, seconds)


if __name__ == "__main__":
    main()
