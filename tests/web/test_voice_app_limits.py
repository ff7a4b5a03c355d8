# ruff: noqa: F811 - the fixtures of test_voice_app are imported and used by name
"""`voice_app` bounds each connection's time, memory and money, and a bad message or a failed
turn never leaves a dead open socket. Each test is an attack that worked on an earlier
version; all run over real sockets (uvicorn on 127.0.0.1, the OpenRouter test server)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
websockets = pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.runnables import RunnableConfig, RunnableLambda  # noqa: E402

from langchain_openrouter_audio import ChatOpenRouterAudio  # noqa: E402
from langchain_openrouter_audio.testing import (  # noqa: E402
    OpenRouterTestServer,
    speech_reply,
    tone_pcm16,
)
from langchain_openrouter_audio.voice.limits import SessionLimits  # noqa: E402
from langchain_openrouter_audio.web import voice_app  # noqa: E402
from tests.web.test_voice_app import (  # noqa: E402, F401
    ANSWER_PCM,
    QUESTION,
    RATE,
    Page,
    app_url,
    connect,
    get_weather,
    llm,
    openrouter,
    silence,
)


def sessions_open(app: Any) -> int:
    """Conversations the app holds open (`/healthz` does not tell: anyone can read it)."""
    return len(app.state.sessions)


async def closed_with(page: Page, within_s: float = 10.0) -> tuple[int | None, str]:
    """Read (keeping events) until the server closes; its close code and reason."""
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(page.ws.recv(), deadline - time.monotonic())
            if isinstance(frame, str):
                page.events.append(json.loads(frame))
    except TimeoutError:
        return None, "still open"
    except websockets.ConnectionClosed as closed:
        if closed.rcvd is None:
            return None, "no close frame"
        return closed.rcvd.code, closed.rcvd.reason
    return None, "still open"


def errors(page: Page) -> list[str]:
    return [e["message"] for e in page.events if e["type"] == "error"]


# -- floods and sizes ----------------------------------------------------------------------


async def test_a_push_to_talk_flood_is_closed_before_it_spends(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    second = silence(1.0)
    for _ in range(30):  # each press is an utterance that cuts the reply before it
        await page.send(type="ptt_start")
        await page.ws.send(second)
        await page.send(type="ptt_end")
    code, reason = await closed_with(page)
    assert (code, reason) == (1008, "too many utterances waiting for an answer")
    await asyncio.sleep(0.5)
    assert len(openrouter.requests) <= 2  # was 11 billed calls for the same flood


async def test_a_huge_frame_is_refused_before_anything_is_heard(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    app = voice_app(llm)
    page = await connect(app_url(app))
    await page.hello()
    await page.send(type="ptt_start")
    await page.ws.send(bytes(16 << 20))  # 524 s of audio in one frame
    await page.send(type="ptt_end")
    assert await closed_with(page) == (1009, "audio frame too long")
    assert openrouter.requests == []
    assert sessions_open(app) == 0


async def test_an_utterance_is_cut_inside_a_frame(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm, max_utterance_s=0.4)))
    await page.hello()
    await page.send(type="ptt_start")
    await page.ws.send(QUESTION[: RATE * 2])  # one 1 s frame (the longest accepted)
    await page.send(type="ptt_end")
    await page.until("utterance", turn=1)
    await page.until("utterance", turn=2)
    await page.until("utterance", turn=3)
    lengths = [e["seconds"] for e in page.events if e["type"] == "utterance"]
    assert lengths == [0.4, 0.4, 0.2]  # was one 1.0 s utterance


async def test_audio_per_connection_is_capped(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    page = await connect(app_url(voice_app(llm, limits=SessionLimits(max_input_s=2.0))))
    await page.hello()
    for _ in range(150):  # 3 s of silence, faster than real time
        await page.ws.send(silence(0.02))
    assert await closed_with(page) == (1009, "too much audio")
    assert openrouter.requests == []


async def test_a_huge_control_message_is_refused(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    await page.ws.send(json.dumps({"type": "text", "text": "x" * 100_000}))
    assert await closed_with(page) == (1009, "control message too long")


async def test_the_control_message_limit_counts_bytes_not_characters(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    text = "\u20ac" * 6_000  # 6,000 characters under the 16 KiB limit, 18,000 bytes of UTF-8
    await page.ws.send(json.dumps({"type": "text", "text": text}, ensure_ascii=False))
    assert await closed_with(page) == (1009, "control message too long")


# -- slots held: no hello, idle, a client that stops reading -------------------------------


async def test_a_connection_that_never_says_hello_frees_its_slot(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    limits = SessionLimits(hello_timeout_s=0.5)
    url = app_url(voice_app(llm, max_sessions=1, limits=limits))
    silent = await connect(url)
    assert await closed_with(silent) == (1008, "no hello")
    page = await connect(url)  # the slot is free again
    assert (await page.hello())["type"] == "ready"


async def test_streaming_silence_is_idle(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    app = voice_app(llm, limits=SessionLimits(idle_timeout_s=1.0))
    page = await connect(app_url(app))
    await page.hello()

    async def microphone() -> None:
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(500):  # 10 s of silence at real-time pace
                await page.ws.send(silence(0.02))
                await asyncio.sleep(0.02)

    streaming = asyncio.create_task(microphone())
    started = time.monotonic()
    assert await closed_with(page) == (1001, "idle")
    assert time.monotonic() - started < 5.0
    await streaming
    assert openrouter.requests == []
    assert sessions_open(app) == 0


class RawSocket:
    """A WebSocket client on a plain socket with a tiny receive buffer that never reads
    past the handshake (client libraries keep reading in the background)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: http://{host}:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)  # byte by byte: nothing past the handshake is read
        assert head.startswith(b"HTTP/1.1 101"), head

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def send_binary(self, data: bytes) -> None:
        self._frame(0x2, data)

    def close(self) -> None:
        self.sock.close()


async def test_a_client_that_stops_reading_frees_its_slot_and_upstream(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    # Five minutes of speech (14 MB): far more than the socket buffers hold. The reply's
    # relay waits for the socket, so the model's stream stalls with it, open, unless the
    # session ends.
    openrouter.responder = lambda request: speech_reply(tone_pcm16(300.0), "A long answer.")
    app = voice_app(llm, limits=SessionLimits(send_timeout_s=1.0))
    url = app_url(app)
    host, port = url.split("/")[2].split(":")
    sock = RawSocket(host, int(port))
    sock.send_text(json.dumps({"type": "hello", "sample_rate": RATE}))
    sock.send_text(json.dumps({"type": "ptt_start"}))
    sock.send_binary(QUESTION[: RATE * 2])
    sock.send_text(json.dumps({"type": "ptt_end"}))
    # ... and never reads again.
    deadline = time.monotonic() + 30
    while not openrouter.requests and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the turn started: the session is open
    while sessions_open(app) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    sock.close()
    assert sessions_open(app) == 0
    # The model's stream was closed, not left stalled: the server saw the client leave (and
    # billed what it had sent), and the one connection left to it is the idle one of the
    # cut call's cost lookup, back in the pool.
    assert len([r for r in openrouter.requests if r.path.endswith("/chat/completions")]) == 1
    gen_ids = list(openrouter._generations)
    while not gen_ids and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        gen_ids = list(openrouter._generations)
    (record,) = [openrouter.generation(gen_id) for gen_id in gen_ids]
    assert record is not None
    assert record["cancelled"] is True
    assert 0 < record["total_cost"] < 0.0012
    lookups = [r for r in openrouter.requests if r.path.startswith("/api/v1/generation")]
    upstream = int(openrouter.base_url.split(":")[2].split("/")[0])
    established = [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == upstream and c.status == "ESTABLISHED"
    ]
    assert len(established) <= (1 if lookups else 0)


# -- bad messages never kill a session -----------------------------------------------------


async def test_bad_numbers_and_deep_json_are_refused_and_the_session_goes_on(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    openrouter.responder = lambda request: speech_reply(ANSWER_PCM, "It is sunny.")
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    await page.speak(silence(0.3) + QUESTION + silence(1.0))
    await page.until("audio", turn=1)
    for raw in (
        '{"type": "played", "turn": 1, "seconds": Infinity}',
        '{"type": "played", "turn": 1, "seconds": NaN}',
        '{"type": "played", "turn": 1, "seconds": 1e400}',
        '{"type": "played", "turn": 1, "seconds": -1}',
        '{"type": "played", "turn": 1, "seconds": 1e12}',
        '{"type": "stopped", "turn": true, "seconds": 1}',
        '{"type": "played", "turn": 1e300, "seconds": 1}',
        "[" * 5000 + "]" * 5000,  # nested past the parser's recursion limit
        '{"type": {"nested": [1, 2]}}',
    ):
        await page.ws.send(raw)
    await page.until("reply_end", turn=1)
    # The user speaks over the reply: the barge-in (which used the bad numbers) works.
    await page.speak(QUESTION + silence(1.0))
    await page.until("stop", turn=1)
    await page.send(type="stopped", turn=1, seconds=0.5, done=True)
    await page.until("reply_end", turn=2)
    assert bytes(page.audio[2]) == ANSWER_PCM
    refused = errors(page)
    assert sum("seconds must be a number" in e for e in refused) == 5
    assert sum("turn must be a turn number" in e for e in refused) == 2
    assert "control messages must be JSON" in refused


FLOODS = {
    "unknown type": '{"type": "nope"}',
    "not JSON": "not json",
    "played": '{"type": "played", "turn": 1, "seconds": 0.1}',
    "odd audio": b"\x00" * 641,
}


@pytest.mark.parametrize("flood", FLOODS.values(), ids=FLOODS.keys())
async def test_a_message_flood_is_closed_at_the_rate_bound(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
    flood: str | bytes,
) -> None:
    app = voice_app(llm)
    page = await connect(app_url(app))
    await page.hello()
    with contextlib.suppress(websockets.ConnectionClosed):  # closed while still sending
        for _ in range(2000):  # as fast as the socket takes them
            await page.ws.send(flood)
    code, reason = await closed_with(page)
    assert (code, reason) == (1008, "too many messages")  # was: each answered, for ever
    # The burst (40) plus what the rate (20 per second) refilled meanwhile, then nothing.
    assert len(errors(page)) < 200
    assert openrouter.requests == []
    assert sessions_open(app) == 0


async def test_messages_under_the_rate_bound_keep_the_session(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    limits = SessionLimits(max_messages_per_s=20.0, message_burst=10)
    page = await connect(app_url(voice_app(llm, limits=limits)))
    await page.hello()
    # Three times the burst, at a quarter of the rate: the server may stall for 2 s (a
    # loaded machine) and read what piled up meanwhile at once, still within the burst.
    for _ in range(30):
        await page.send(type="nope")
        await asyncio.sleep(0.2)
    for _ in range(30):
        await page.until("error")
    assert errors(page) == ["unknown message type 'nope'"] * 30
    assert (await page.hello())["type"] == "ready"  # still open


# -- turns that fail, hang or cost too much ------------------------------------------------


async def test_a_failed_turn_shows_a_reference_not_the_internals(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = {"n": 0}

    async def agent(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("could not reach https://internal.example:8443/v1 (token t-123)")
        reply = await llm.ainvoke(state["messages"], config)
        return {"messages": [*state["messages"], reply]}

    page = await connect(app_url(voice_app(RunnableLambda(agent))))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    await page.until("reply_end", turn=1)
    (shown,) = errors(page)
    assert "internal.example" not in shown
    assert "t-123" not in shown
    assert "RuntimeError" not in shown
    ref = re.search(r"ref ([0-9a-f]{8})", shown)
    assert ref is not None
    assert any(ref[1] in r.getMessage() and r.exc_info for r in caplog.records)
    # The session goes on.
    await page.send(type="text", text="And now?")
    await page.until("reply_end", turn=2)
    assert bytes(page.audio[2]) == ANSWER_PCM


async def test_a_hung_tool_times_the_turn_out_and_the_session_goes_on(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    from langchain_core.tools import tool

    hung = {"first": True}

    @tool
    async def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        if hung.pop("first", False):
            await asyncio.Event().wait()  # never returns
        return f"It is 21 degrees and sunny in {city}."

    limits = SessionLimits(turn_timeout_s=1.5)
    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]), limits=limits)))
    await page.hello()
    started = time.monotonic()
    await page.send(type="text", text="What is the weather in Paris?")
    await page.until("reply_end", turn=1)
    assert time.monotonic() - started < 10
    (shown,) = errors(page)
    assert "took too long" in shown
    await page.send(type="text", text="And now?")
    await page.until("reply_end", turn=2)
    assert bytes(page.audio[2]) == ANSWER_PCM


async def test_the_spending_limit_stops_new_turns(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    # Each reply of the test server costs 0.0012 USD.
    limits = SessionLimits(max_cost_usd=0.002)
    page = await connect(app_url(voice_app(llm, limits=limits)))
    await page.hello()
    for turn in (1, 2):
        await page.send(type="text", text=f"Question {turn}")
        await page.until("reply_end", turn=turn)
        await page.send(type="played", turn=turn, seconds=9.9, done=True)
    await page.send(type="text", text="Question 3")
    assert await closed_with(page) == (1008, "spending limit reached")
    assert errors(page) == ["This conversation has reached its spending limit."]
    assert len(openrouter.requests) == 2  # the third turn never started


async def test_the_spending_limit_stops_an_agent_between_its_model_calls(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    limits = SessionLimits(max_cost_usd=0.001)  # reached by the agent's first call
    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]), limits=limits)))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    assert await closed_with(page) == (1008, "spending limit reached")
    assert errors(page) == ["This conversation has reached its spending limit."]
    assert len(openrouter.requests) == 1  # the tool ran; the model was not called again


def test_defaults_are_bounded() -> None:
    params = inspect.signature(voice_app).parameters
    assert params["max_turns"].default == 20
    assert params["max_sessions"].default == 100
    limits = SessionLimits()
    assert limits.max_cost_usd == 1.0
    assert limits.turn_timeout_s == 120.0
    with pytest.raises(ValueError, match="idle_timeout_s"):
        SessionLimits(idle_timeout_s=float("inf"))
    with pytest.raises(ValueError, match="max_frame_s"):
        SessionLimits(max_frame_s=0)
    assert (limits.max_messages_per_s, limits.message_burst) == (20.0, 40)
    with pytest.raises(ValueError, match="message_burst"):
        SessionLimits(message_burst=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_messages_per_s"):
        SessionLimits(max_messages_per_s=float("nan"))
    with pytest.raises(ValueError, match="message_burst"):
        SessionLimits(message_burst=True)  # a flag where a count belongs


async def test_an_engine_failure_outside_a_turn_closes_the_socket(
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenEndpointer:
        speaking = False

        def push(self, pcm: bytes) -> list[bytes]:
            raise ArithmeticError("endpointer state corrupt at 0x7f00")

        def flush(self) -> list[bytes]:
            return []

    page = await connect(app_url(voice_app(llm, make_endpointer=lambda rate: BrokenEndpointer())))
    await page.hello()
    await page.ws.send(silence(0.02))
    code, reason = await closed_with(page)
    assert code == 1011
    assert reason.startswith("internal error (ref ")
    assert "0x7f00" not in reason
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_a_session_ends_after_max_session_s(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm, limits=SessionLimits(max_session_s=1.0))))
    await page.hello()
    assert await closed_with(page) == (1001, "session too long")


async def test_a_tool_that_raises_shows_the_page_no_detail(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        raise RuntimeError("weather db down at postgres://10.0.0.7/wx")

    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]))))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    await page.until("reply_end", turn=1)
    frames = json.dumps(page.events)
    assert "10.0.0.7" not in frames
    assert "RuntimeError" not in frames
    assert "ref " in errors(page)[0]
