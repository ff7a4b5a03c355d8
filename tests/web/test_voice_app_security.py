# ruff: noqa: F811 - the fixtures of test_voice_app are imported and used by name
"""`voice_app` refuses strangers before any audio is read or any money spent: foreign
origins, programs without an Origin, failed authentication. Page responses carry headers
that keep other sites from framing or scripting the page. Real sockets throughout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
websockets = pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.callbacks import AsyncCallbackHandler  # noqa: E402
from langchain_core.runnables import RunnableConfig  # noqa: E402
from starlette.requests import HTTPConnection  # noqa: E402

from langchain_openrouter_audio import ChatOpenRouterAudio  # noqa: E402
from langchain_openrouter_audio.testing import OpenRouterTestServer  # noqa: E402
from langchain_openrouter_audio.web import voice_app  # noqa: E402
from tests.web.test_voice_app import (  # noqa: E402, F401
    QUESTION,
    RATE,
    Page,
    app_url,
    llm,
    openrouter,
    silence,
)

EVIL = "https://evil.example"


def own_origin(url: str) -> str:
    return "http://" + url.split("/")[2]


async def open_socket(url: str, **kwargs: Any) -> Any:
    return await websockets.connect(url, max_size=None, **kwargs)


async def close_code(ws: Any) -> int | None:
    """Say hello and speak a whole question, as an attacking page would; the close code."""
    try:
        await ws.send(json.dumps({"type": "hello", "sample_rate": RATE}))
        pcm = silence(0.3) + QUESTION + silence(1.0)
        for start in range(0, len(pcm), 640):
            await ws.send(pcm[start : start + 640])
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except TimeoutError:
        return None  # still open
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_a_page_of_another_site_is_refused_and_costs_nothing(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    url = app_url(voice_app(llm))
    ws = await open_socket(url, origin=EVIL)
    code = await close_code(ws)
    await asyncio.sleep(0.5)
    assert openrouter.requests == []  # no upstream request, nothing billed
    assert code == 1008
    assert ws.close_reason == "origin not allowed"

    # The page's own origin gets an answer from the same app.
    page = Page(await open_socket(url, origin=own_origin(url)))
    await page.hello()
    await page.speak(silence(0.3) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)
    assert len(openrouter.requests) == 1
    await page.ws.close()


@pytest.mark.parametrize(
    "origin",
    ["null", "http://127.0.0.1.evil.example", "https://127.0.0.1", "not a url", "file://"],
)
async def test_lookalike_origins_are_refused(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    origin: str,
) -> None:
    ws = await open_socket(app_url(voice_app(llm)), origin=origin)
    assert await close_code(ws) == 1008
    assert openrouter.requests == []


async def test_allowed_origins_widen_the_check(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    url = app_url(voice_app(llm, allowed_origins=["https://app.example.com"]))
    page = Page(await open_socket(url, origin="https://app.example.com"))
    assert (await page.hello())["type"] == "ready"
    await page.ws.close()
    ws = await open_socket(url, origin="https://other.example.com")
    assert await close_code(ws) == 1008


async def test_a_client_without_origin_needs_a_flag_or_authentication(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    ws = await open_socket(app_url(voice_app(llm)))  # a program: no Origin header
    assert await close_code(ws) == 1008
    assert openrouter.requests == []

    page = Page(await open_socket(app_url(voice_app(llm, allow_missing_origin=True))))
    assert (await page.hello())["type"] == "ready"
    await page.ws.close()


async def user_from_token(connection: HTTPConnection) -> str | None:
    """A test `authenticate`: a bearer token in the query or a session cookie."""
    token = connection.query_params.get("token") or connection.cookies.get("session")
    return {"t-alice": "alice", "t-bob": "bob"}.get(token or "")


class Metadata(AsyncCallbackHandler):
    """Records the metadata each chat model run was started with."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.seen.append(dict(kwargs.get("metadata") or {}))


async def test_authenticate_refuses_strangers_and_names_the_user_to_the_agent(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    users: list[str] = []

    def get_weather(city: str, config: RunnableConfig) -> str:
        """Return the current weather in a city."""
        users.append(config["configurable"]["user_id"])
        return f"It is 21 degrees and sunny in {city}."

    traced = Metadata()
    app = voice_app(
        create_agent(llm, [get_weather]),
        authenticate=user_from_token,
        config={"callbacks": [traced], "metadata": {"app": "test"}},
    )
    url = app_url(app)

    for attempt in ({}, {"additional_headers": {"Cookie": "session=t-mallory"}}):
        ws = await open_socket(url, origin=own_origin(url), **attempt)
        assert await close_code(ws) == 1008
        assert ws.close_reason == "not authorized"
    ws = await open_socket(url + "?token=t-alice", origin=EVIL)  # a good token, wrong site
    assert await close_code(ws) == 1008
    await asyncio.sleep(0.5)
    assert openrouter.requests == []

    # A program with a token needs no Origin; a browser sends its cookie.
    for user, attempt in (
        ("alice", {"url": url + "?token=t-alice"}),
        ("bob", {"url": url, "additional_headers": {"Cookie": "session=t-bob"}}),
    ):
        page = Page(await open_socket(**attempt))
        await page.hello()
        await page.speak(silence(0.3) + QUESTION + silence(1.0))
        await page.until("reply_end", turn=1)
        await page.ws.close()
        assert users[-1] == user
        assert {m.get("user_id") for m in traced.seen[-2:]} == {user}
        assert traced.seen[-1]["app"] == "test"


async def test_authenticate_that_raises_refuses(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(connection: HTTPConnection) -> str | None:
        raise RuntimeError("session store down at redis://10.0.0.7")

    url = app_url(voice_app(llm, authenticate=broken))
    ws = await open_socket(url, origin=own_origin(url))
    assert await close_code(ws) == 1008
    assert ws.close_reason == "not authorized"  # the detail stays in the log
    assert "authenticate raised" in caplog.text
    assert openrouter.requests == []


async def test_page_responses_forbid_framing_and_foreign_code(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    base = app_url(voice_app(llm)).replace("ws://", "http://").removesuffix("ws")
    async with httpx.AsyncClient(base_url=base) as client:
        for path in ("/", "/static/voice.js", "/static/capture-worklet.js", "/healthz"):
            response = await client.get(path)
            assert response.status_code == 200, path
            headers = response.headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp
            assert "default-src 'none'" in csp
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["permissions-policy"].startswith("microphone=(self)")
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.content.startswith(b"<svg")
        # The page uses no inline script or style (the CSP would block it).
        page = (await client.get("/")).text
        assert "<script>" not in page
        assert "<style" not in page
        assert " style=" not in page


def handshake(url: str, host: str) -> bytes:
    """A WebSocket handshake to `url`'s server naming `host` (as DNS rebinding would)."""
    import base64
    import os
    import socket

    address, port = url.split("/")[2].split(":")
    with socket.create_connection((address, int(port)), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        return sock.recv(200)


async def test_allowed_hosts_stop_dns_rebinding(
    openrouter: OpenRouterTestServer, llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    # A page of evil.example whose name now resolves to this server: its Host and Origin
    # agree, so only the Host check can tell.
    rebound = "evil.example:8000"
    open_url = app_url(voice_app(llm))
    assert (await asyncio.to_thread(handshake, open_url, rebound)).startswith(b"HTTP/1.1 101")
    url = app_url(voice_app(llm, allowed_hosts=["127.0.0.1"]))
    assert (await asyncio.to_thread(handshake, url, rebound)).startswith(b"HTTP/1.1 400")
    base = url.replace("ws://", "http://").removesuffix("ws")
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/", headers={"Host": rebound})).status_code == 400
        assert (await client.get("/")).status_code == 200
    page = Page(await open_socket(url, origin=own_origin(url)))
    assert (await page.hello())["type"] == "ready"
    await page.ws.close()
    assert openrouter.requests == []


async def test_healthz_says_the_app_is_up_and_nothing_about_its_load(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str]
) -> None:
    app = voice_app(llm)
    url = app_url(app)
    health = url.replace("ws://", "http://").removesuffix("/ws") + "/healthz"
    async with httpx.AsyncClient() as client:
        idle = await client.get(health)
        page = Page(await open_socket(url, origin=own_origin(url)))
        await page.hello()
        busy = await client.get(health)
        open_while_busy = len(app.state.sessions)
    await page.ws.close()
    assert open_while_busy == 1  # the app knows its conversations; it keeps them to itself
    for response in (idle, busy):
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}  # the same with 0 and 1 open
