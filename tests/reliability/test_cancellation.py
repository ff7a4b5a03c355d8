"""Leaving early: breaking out of a stream or cancelling a call closes the connection now.

The server side is observed directly: the test server tracks its open connections, and
a handler writing to a closed client gets a broken pipe and drops the connection.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Iterator

import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16
from tests._helpers import make_llm, reply_pcm

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

SHORT_PCM = tone_pcm16(0.2, 660.0)
SHORT_TEXT = "Next call works."


def _long_reply():
    # ~300 events 50 ms apart: 15 s if nobody hangs up.
    return speech_reply(
        tone_pcm16(1.0, 440.0),
        "x" * 200,
        audio_piece_bytes=480,
        text_piece_chars=2,
        event_delay_s=0.05,
    )


def _open_connections(server: OpenRouterTestServer) -> int:
    httpd = server._httpd
    assert httpd is not None
    with httpd._connections_lock:
        return len(httpd._connections)


def _wait_closed(server: OpenRouterTestServer, *, within: float = 5.0) -> bool:
    """True once the server holds no open connection (it would hold one for ~15 s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _open_connections(server) == 0:
            return True
        time.sleep(0.02)
    return False


async def _await_closed(server: OpenRouterTestServer, *, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _open_connections(server) == 0:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
def resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """ResourceWarnings raised during the test (unclosed sockets, transports, files)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield caught
        gc.collect()
    found = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not found, [str(w.message) for w in found]


def _check_next_call(llm: ChatOpenRouterAudio, server: OpenRouterTestServer) -> None:
    server.enqueue(speech_reply(SHORT_PCM, SHORT_TEXT))
    msg = llm.invoke("again")
    assert msg.text == SHORT_TEXT
    assert reply_pcm(msg) == SHORT_PCM


async def _acheck_next_call(llm: ChatOpenRouterAudio, server: OpenRouterTestServer) -> None:
    server.enqueue(speech_reply(SHORT_PCM, SHORT_TEXT))
    msg = await llm.ainvoke("again")
    assert msg.text == SHORT_TEXT
    assert reply_pcm(msg) == SHORT_PCM


async def _aclose(llm: ChatOpenRouterAudio) -> None:
    # Pooled keep-alive connections belong to this test's event loop: close them here.
    await llm.aclose()


@pytest.mark.usefixtures("resource_warnings")
def test_break_out_of_sync_stream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    for seen, _chunk in enumerate(llm.stream("talk for a while"), start=1):
        if seen == 3:
            break
    gc.collect()
    assert _wait_closed(openrouter_server)
    assert len(openrouter_server.requests) == 1
    _check_next_call(llm, openrouter_server)
    assert len(openrouter_server.requests) == 2
    llm.close()


@pytest.mark.usefixtures("resource_warnings")
async def test_break_out_of_astream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    seen = 0
    stream = llm.astream("talk for a while")
    async for _chunk in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()  # what `async with aclosing(...)` does
    assert await _await_closed(openrouter_server)
    await _acheck_next_call(llm, openrouter_server)
    assert len(openrouter_server.requests) == 2
    await _aclose(llm)


@pytest.mark.usefixtures("resource_warnings")
async def test_break_out_of_astream_without_aclose(
    openrouter_server: OpenRouterTestServer,
) -> None:
    """Plain `break`: the generator is finalized by the loop's asyncgen hooks."""
    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    seen = 0
    async for _chunk in llm.astream("talk for a while"):
        seen += 1
        if seen == 3:
            break
    gc.collect()
    assert await _await_closed(openrouter_server)
    await _acheck_next_call(llm, openrouter_server)
    await _aclose(llm)


@pytest.mark.usefixtures("resource_warnings")
async def test_cancel_ainvoke_task(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    task = asyncio.create_task(llm.ainvoke("talk for a while"))
    # Wait until the stream is flowing.
    for _ in range(250):
        if openrouter_server.requests:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _await_closed(openrouter_server)
    await _acheck_next_call(llm, openrouter_server)
    assert len(openrouter_server.requests) == 2
    await _aclose(llm)


@pytest.mark.usefixtures("resource_warnings")
async def test_cancel_ainvoke_task_with_handler(openrouter_server: OpenRouterTestServer) -> None:
    from tests._helpers import AsyncRecorder

    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    handler = AsyncRecorder()
    task = asyncio.create_task(llm.ainvoke("talk", config={"callbacks": [handler]}))
    for _ in range(250):
        if handler.text:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _await_closed(openrouter_server)
    heard = len(handler.text)
    await asyncio.sleep(0.2)
    assert len(handler.text) == heard  # nothing more arrives after the cancel
    await _acheck_next_call(llm, openrouter_server)
    await _aclose(llm)


@pytest.mark.usefixtures("resource_warnings")
async def test_wait_for_timeout_cancels_the_stream(openrouter_server: OpenRouterTestServer) -> None:
    openrouter_server.enqueue(_long_reply())
    llm = make_llm(openrouter_server, max_retries=0)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.ainvoke("talk for a while"), timeout=0.5)
    assert await _await_closed(openrouter_server)
    await _acheck_next_call(llm, openrouter_server)
    await _aclose(llm)


@pytest.mark.usefixtures("resource_warnings")
def test_many_early_breaks_leak_nothing(openrouter_server: OpenRouterTestServer) -> None:
    llm = make_llm(openrouter_server, max_retries=0)
    for _ in range(5):
        openrouter_server.enqueue(_long_reply())
        for _chunk in llm.stream("talk"):
            break
        gc.collect()
        assert _wait_closed(openrouter_server)
    _check_next_call(llm, openrouter_server)
    assert len(openrouter_server.requests) == 6
    llm.close()
