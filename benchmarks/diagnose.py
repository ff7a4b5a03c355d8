"""Re-check, one by one, the client inefficiencies listed in docs/performance.md.

    python benchmarks/diagnose.py [--seconds 60]

Nothing here changes the package. Findings 1-3 have been fixed since the first
measurement; each check measures the current code and, where the old
behaviour can still be reproduced honestly, the old way side by side:

1. connection reuse after a streamed reply: counted on the current code only
   (the old transport is gone; its figure, 10 new connections / 10 requests,
   is quoted from the first measurement);
2. per-instance httpx clients: a client with its own SSL context (what every
   instance built before) against the clients a model builds now;
3. offline breakdown of parse / assemble / final message (finding 4, still open);
4. building the reply's audio block: the old way (join the PCM, `pcm16_to_wav`,
   `b64encode`, `.decode`) against `SpeechStore` (the received base64 text joined
   behind a 54-byte WAV header) and against `SpeechStore`'s fallback for pieces
   that are not multiples of 3 bytes; time and tracemalloc peak, counting the
   store of received pieces too.
"""

from __future__ import annotations

import argparse
import asyncio
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

from floor import _State, floor_invoke
from replay import Payload, ReplayProcess, split_events
from run import KEY, MODEL, PROMPT, client_body, headers_for, pcm_of, record, speech

from langchain_openrouter_audio import ChatOpenRouterAudio, audio_pcm
from langchain_openrouter_audio._assembler import ReplyAssembler
from langchain_openrouter_audio._client import _decode_event
from langchain_openrouter_audio._encoding import SpeechStore, wav_header, wav_pad
from langchain_openrouter_audio._sse import SSEDecoder
from langchain_openrouter_audio.audio import pcm16_to_wav
from langchain_openrouter_audio.testing import OpenRouterTestServer

SAMPLE_RATE = 24_000


def best_of(fn: Callable[[], Any], n: int = 15) -> float:
    xs = []
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t)
    return statistics.median(xs)


def best_after(prepare: Callable[[], Any], fn: Callable[[Any], Any], n: int = 15) -> float:
    """Median time of `fn(prepare())`, timing `fn` only."""
    xs = []
    for _ in range(n):
        x = prepare()
        gc.collect()
        t = time.perf_counter()
        fn(x)
        xs.append(time.perf_counter() - t)
        del x
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
    print("   first measurement, before the fix: invoke 10 / 10, stream 10 / 10, floor 0 / 10")
    url = replay.base_url("s")
    model = ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL)
    client = httpx.Client(timeout=60)

    async def ainvoke10() -> None:
        for _ in range(10):
            await model.ainvoke(PROMPT)

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
        print(f"   now: {name:32s} new TCP connections: {new:2d} / 10 requests")

    async def async_case() -> int:
        await model.ainvoke(PROMPT)  # this loop's client and its first connection
        before = replay.stats()["connections"]
        await ainvoke10()
        return replay.stats()["connections"] - before - 1

    new = asyncio.run(async_case())
    name = "ChatOpenRouterAudio.ainvoke"
    print(f"   now: {name:32s} new TCP connections: {new:2d} / 10 requests")
    client.close()
    model.close()


def client_creation() -> None:
    print("\n2. Cost of the httpx clients a model builds on first use")
    url = "http://127.0.0.1:9/api/v1"

    def fresh_sync() -> None:
        ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL).client.client  # noqa: B018

    async def fresh_async(n: int) -> None:
        for _ in range(n):
            await ChatOpenRouterAudio(api_key=KEY, base_url=url, model=MODEL).client.async_client()

    loop = asyncio.new_event_loop()
    own_sync = best_of(lambda: httpx.Client(timeout=60), 10)
    own_async = best_of(lambda: httpx.AsyncClient(timeout=60), 10)
    now_sync = best_of(fresh_sync, 15)
    now_async = best_of(lambda: loop.run_until_complete(fresh_async(20)), 10) / 20
    # Each model's async client closes with its loop's async generators.
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    print("   before (each instance: httpx.Client() / AsyncClient() with its own SSL context)")
    print(f"     httpx.Client()                             {own_sync * 1000:6.2f} ms")
    print(f"     httpx.AsyncClient()                        {own_async * 1000:6.2f} ms")
    print("   now (one SSL context per process; async client per event loop)")
    print(f"     new model + transport.client               {now_sync * 1000:6.2f} ms")
    print(f"     new model + client.async_client()         {now_async * 1000:6.2f} ms")


def breakdown(body: bytes, replay: ReplayProcess, seconds: int) -> None:
    print(f"\n3. Offline breakdown, {seconds} s reply (no network; same byte chunks httpx yields)")
    client = httpx.Client(timeout=60)
    with client.stream(
        "POST", f"{replay.base_url('s')}/chat/completions", content=body, headers=headers_for(True)
    ) as r:
        chunks = list(r.iter_bytes())
    client.close()

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

    msg = assemble().finish()
    assert audio_pcm(msg) == pcm_of(seconds), "client PCM differs from the PCM sent"
    rows = {
        "floor: split + json + b64decode": floor_parse,
        "client: SSEDecoder + _decode_event": client_decode,
        "client: ReplyAssembler.feed": assemble,
    }
    t = {k: best_of(v) for k, v in rows.items()}
    # The final step alone, each time on freshly parsed / fed state.
    t["floor: join + header + b64 block"] = best_after(floor_parse, lambda s: s.result(True))
    t["client: ReplyAssembler.finish()"] = best_after(assemble, lambda a: a.finish())
    for k, v in t.items():
        print(f"   {k:40s} {v * 1000:7.2f} ms")
    n = len(decoded)
    extra = (
        t["client: SSEDecoder + _decode_event"]
        + t["client: ReplyAssembler.feed"]
        - t["floor: split + json + b64decode"]
    )
    print(f"   parse + assemble beyond the floor: {extra * 1000:.2f} ms over {n} events")
    print(f"   = {extra / n * 1e6:.1f} µs per event (finding 4)")


def block_build(seconds: int, piece: int) -> None:
    pcm = pcm_of(seconds)
    odd = piece + 2  # even (whole samples), not a multiple of 3: forces the fallback
    pieces = [pcm[i : i + piece] for i in range(0, len(pcm), piece)]
    odd_pieces = [pcm[i : i + odd] for i in range(0, len(pcm), odd)]
    head = wav_header(len(pcm), sample_rate=SAMPLE_RATE, junk=2)
    tail = wav_pad(len(pcm))
    assert len(head) == 54

    def before() -> str:
        # The first measured `audio_block`: each piece decoded and kept as bytes,
        # then `self.pcm` (join, kept), `pcm16_to_wav` (a copy), b64encode, decode.
        parts = []
        for p in pieces:
            text = base64.b64encode(p).decode("ascii")  # the str json.loads hands over
            parts.append(base64.b64decode(text))
        joined = b"".join(parts)
        parts = [joined]
        # As it was: the WAV stays referenced until the block is built.
        data = pcm16_to_wav(joined, sample_rate=SAMPLE_RATE)
        return base64.b64encode(data).decode("ascii")

    def now(src: list[bytes]) -> Callable[[], str]:
        def run() -> str:
            # `ReplyAssembler._take_audio` + `audio_block`: the store keeps the
            # received text (or, for odd pieces, the decoded bytes).
            speech = SpeechStore()
            for p in src:
                text = base64.b64encode(p).decode("ascii")
                speech.add(base64.b64decode(text), text)
            return speech.encode(head=head, tail=tail)

        return run

    cases = {
        "before (decode, join, pcm16_to_wav, b64encode)": before,
        "now: received base64 joined (54-byte header)": now(pieces),
        f"now: fallback, {odd}-byte pieces (re-encode)": now(odd_pieces),
    }
    assert base64.b64decode(cases["before (decode, join, pcm16_to_wav, b64encode)"]())[44:] == pcm
    for name in list(cases)[1:]:
        wav = base64.b64decode(cases[name]())
        assert wav[:54] == head, name
        assert wav[54:] == pcm + tail, name
    print(
        f"\n4. Storing {len(pieces)} pieces and building the audio block "
        f"({len(pcm) / 1e6:.2f} MB PCM): time and tracemalloc peak (store + block)"
    )
    for name, fn in cases.items():
        took = best_of(fn, 7)
        gc.collect()
        tracemalloc.start()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del out
        mb, x = peak / 1e6, peak / len(pcm)
        print(f"   {name:48s} {took * 1000:7.2f} ms  peak {mb:6.1f} MB = {x:.2f}x PCM")
    print("   (the result alone, a str of the base64 WAV, is 1.33x PCM)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    seconds = args.seconds
    body, data = recorded(seconds)
    with ReplayProcess({"s": Payload(events=split_events(data))}) as replay:
        connection_reuse(replay, body)
        client_creation()
        breakdown(body, replay, seconds)
    block_build(seconds, 4800)


if __name__ == "__main__":
    main()
