"""The client's internals, one step at a time, where `invoke` spends more than the floor.

Connection reuse: new TCP connections for 10 sequential calls (the replay server counts
them; a streamed reply not read to its end cannot go back to the pool). The httpx clients
a model builds on first use, against a client with its own SSL context (what every
instance used to build). Parse and assemble offline, on the bytes httpx yields, against
the floor's parse. The reply's audio block built the old way (decode, join, WAV, encode)
against `SpeechStore` (the received base64 joined behind a 54-byte header) and its
fallback for odd-sized pieces.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks import harness as h
from benchmarks.floor import FloorParser, floor_invoke
from langchain_openrouter_audio import audio_pcm


def _seconds(ctx: dict[str, Any]) -> int:
    return 20 if ctx["quick"] else 60


def servers(ctx: dict[str, Any]) -> contextlib.AbstractContextManager[dict[str, Any]]:
    return h.replaying(ctx, {"s": h.speech(_seconds(ctx))})


def timed(fn: Callable[..., Any], n: int = 15, prepare: Callable[[], Any] | None = None) -> float:
    """Median time of `fn()`, or of `fn(prepare())` timing `fn` only."""
    xs = []
    for _ in range(n):
        args = [prepare()] if prepare else []
        gc.collect()
        start = time.perf_counter()
        fn(*args)
        xs.append(time.perf_counter() - start)
    return h.med(xs)


def measure(ctx: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    seconds, url = _seconds(ctx), h.replay_url(ctx["replay"], "s")
    return {
        "New TCP connections for 10 sequential calls": connections(ctx["replay"], url),
        "The httpx clients a model builds on first use": client_creation(),
        f"Parse and assemble offline, {seconds} s reply": breakdown(url, seconds),
        f"Store the pieces and build the audio block, {seconds} s reply": block_build(seconds),
    }


def connections(replay: str, url: str) -> list[dict[str, Any]]:
    model, client = h.model(url), httpx.Client(timeout=60)
    endpoint = f"{url}/chat/completions"

    def opened() -> int:
        return int(httpx.get(f"{replay}/stats").json()["connections"])

    def new_for_ten(call: Callable[[], Any]) -> int:
        call()  # the pool's first connection
        before = opened()
        for _ in range(10):
            call()
        return opened() - before - 1  # -1: the stats request's own connection

    with h.event_loop() as loop:
        cases: dict[str, Callable[[], Any]] = {
            "ChatOpenRouterAudio.invoke": lambda: model.invoke(h.PROMPT),
            "ChatOpenRouterAudio.stream": lambda: list(model.stream(h.PROMPT)),
            "floor (reads to EOF)": lambda: floor_invoke(
                client, endpoint, h.headers(), h.request_body()
            ),
            "ChatOpenRouterAudio.ainvoke": lambda: loop.run_until_complete(model.ainvoke(h.PROMPT)),
        }
        rows = [
            {"call": k, "new connections": new_for_ten(fn), "requests": 10}
            for k, fn in cases.items()
        ]
    client.close()
    return rows


def client_creation() -> list[dict[str, Any]]:
    def new_model() -> Any:
        return h.model("http://127.0.0.1:9/api/v1")

    async def twenty_async_clients() -> None:
        for _ in range(20):
            await new_model().client.async_client()

    with h.event_loop() as loop:
        rows = {
            "httpx.Client() with its own SSL context (each instance, before)": timed(
                lambda: httpx.Client(timeout=60), 10
            ),
            "httpx.AsyncClient() with its own SSL context (before)": timed(
                lambda: httpx.AsyncClient(timeout=60), 10
            ),
            "new model + its sync client (now)": timed(lambda: new_model().client.client),
            "new model + its async client (now)": timed(
                lambda: loop.run_until_complete(twenty_async_clients()), 10
            )
            / 20,
        }
    return [{"what": k, "time": v} for k, v in rows.items()]


def breakdown(url: str, seconds: int) -> list[dict[str, Any]]:
    """The floor's parse and the client's, on the same byte chunks httpx yields, no network."""
    from langchain_openrouter_audio._assembler import ReplyAssembler
    from langchain_openrouter_audio._client import _decode_event
    from langchain_openrouter_audio._sse import SSEDecoder

    with httpx.Client(timeout=60) as client:
        endpoint = f"{url}/chat/completions"
        with client.stream("POST", endpoint, content=h.request_body(), headers=h.headers()) as r:
            chunks = list(r.iter_bytes())

    def floor_parse() -> FloorParser:
        state = FloorParser(None)
        for chunk in chunks:
            state.feed(chunk)
        return state

    def client_decode() -> list[Any]:
        decoder, out = SSEDecoder(), []
        for chunk in chunks:
            for event, payload in decoder.feed(chunk):
                if payload == b"[DONE]":
                    return out
                if (x := _decode_event(event, payload)) is not None:
                    out.append(x)
        return out

    decoded = client_decode()

    def assemble() -> Any:
        assembler = ReplyAssembler()
        for x in decoded:
            assembler.feed(x)
        return assembler

    assert audio_pcm(assemble().finish()) == h.pcm_of(seconds), "client PCM differs from the sent"
    t = {
        "floor: split + json + b64decode": timed(floor_parse),
        "client: SSEDecoder + _decode_event": timed(client_decode),
        "client: ReplyAssembler.feed": timed(assemble),
        "floor: join + header + b64 block": timed(lambda s: s.result(True), prepare=floor_parse),
        "client: ReplyAssembler.finish()": timed(lambda a: a.finish(), prepare=assemble),
    }
    extra = sum(list(t.values())[1:3]) - t["floor: split + json + b64decode"]
    rows = [{"step": k, "time": v} for k, v in t.items()]
    rows.append(
        {"step": f"parse + assemble beyond the floor ({len(decoded)} events)", "time": extra}
    )
    return [*rows, {"step": "the same, per event", "time": extra / len(decoded)}]


def block_build(seconds: int, piece: int = 4800) -> list[dict[str, Any]]:
    from langchain_openrouter_audio._encoding import SpeechStore, wav_header, wav_pad
    from langchain_openrouter_audio.audio import pcm16_to_wav

    pcm = h.pcm_of(seconds)
    odd = piece + 2  # whole samples, not a multiple of 3 bytes: forces the fallback
    pieces = [pcm[i : i + piece] for i in range(0, len(pcm), piece)]
    odd_pieces = [pcm[i : i + odd] for i in range(0, len(pcm), odd)]
    head, tail = wav_header(len(pcm), sample_rate=24_000, junk=2), wav_pad(len(pcm))

    def before() -> str:
        # The first measured way: decode each piece (from the str json.loads hands over),
        # join, `pcm16_to_wav` (a copy, kept until the block is built), b64encode, decode.
        parts = [base64.b64decode(base64.b64encode(p).decode("ascii")) for p in pieces]
        joined = b"".join(parts)
        return base64.b64encode(pcm16_to_wav(joined, sample_rate=24_000)).decode("ascii")

    def now(src: list[bytes]) -> Callable[[], str]:
        def run() -> str:
            store = SpeechStore()
            for p in src:
                text = base64.b64encode(p).decode("ascii")
                store.add(base64.b64decode(text), text)
            return store.encode(head=head, tail=tail)

        return run

    cases = {
        "before: decode, join, pcm16_to_wav, b64encode": before,
        "now: received base64 joined (54-byte header)": now(pieces),
        f"now: fallback, {odd}-byte pieces (re-encode)": now(odd_pieces),
    }
    assert base64.b64decode(before())[44:] == pcm
    for fn in list(cases.values())[1:]:
        assert base64.b64decode(fn()) == head + pcm + tail
    rows = []
    for name, fn in cases.items():
        took = timed(fn, 7)
        peak, _held = h.traced(fn)
        rows.append(
            {"way": name, "time": took, "peak MB": peak / 1e6, "peak x PCM": peak / len(pcm)}
        )
    return rows
