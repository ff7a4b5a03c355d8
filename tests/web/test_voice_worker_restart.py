# ruff: noqa: F811 - fixtures of other test modules are imported and used by name
"""A conversation outlives the voice worker: it lives in the LangGraph deployment's thread.

Two `voice_app` workers (separate uvicorn processes, one shared conversation secret) front
one real `langgraph dev`, whose agent talks to this test's local OpenRouter server. A page
talks to worker A, A is killed, the page reconnects to worker B with its conversation id,
and the model request of B's first turn holds the turns spoken on A.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("uvicorn", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")
pytest.importorskip("langgraph.pregel.remote", reason="langgraph is not installed")

from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    answer_like_a_model,
)
from tests._helpers import CLIP_WORDS
from tests.web._proc import serving
from tests.web.test_langgraph_server import EXAMPLE
from tests.web.test_voice_app import Page, connect  # noqa: F401

CLI = Path(sys.executable).with_name("langgraph")
SECRET = "a secret every voice worker shares"


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenRouterTestServer]:
    with OpenRouterTestServer(api_key="deployment-key") as server:
        server.responder = answer_like_a_model
        yield server


@pytest.fixture(scope="module")
def deployment(
    upstream: OpenRouterTestServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`langgraph dev` serving the example agent, its model pointed at `upstream`."""
    cli = str(CLI) if CLI.exists() else shutil.which("langgraph")
    if cli is None:
        pytest.skip("the langgraph CLI is not installed (pip install 'langgraph-cli[inmem]')")
    workdir = tmp_path_factory.mktemp("deployment")
    for name in ("langgraph.json", "voice_agent.py"):
        shutil.copy(EXAMPLE / name, workdir / name)
    cmd = [cli, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", "{port}"]
    env = {
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "OPENROUTER_API_KEY": upstream.api_key,
        "OPENROUTER_BASE_URL": upstream.base_url,
    }
    with serving(cmd, "/ok", cwd=workdir, env=env, timeout_s=90) as port:
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def worker(deployment: str) -> Iterator[str]:
    """A voice worker process in front of `deployment`, while the block runs: its socket URL."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "tests.web._remote_worker:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    env = {"LANGGRAPH_URL": deployment, "VOICE_CONVERSATION_SECRET": SECRET}
    with serving(cmd, "/healthz", env=env, timeout_s=60) as port:
        yield f"ws://127.0.0.1:{port}/ws"


def user_texts(request: Any) -> list[str]:
    return [m["content"] for m in request.json["messages"] if m["role"] == "user"]


async def test_a_conversation_continues_on_another_worker(
    deployment: str, upstream: OpenRouterTestServer, connect: Any
) -> None:
    with worker(deployment) as url_a:
        page: Page = await connect(url_a)
        ready = await page.hello()
        assert ready["resumed"] is False
        conversation = ready["conversation"]
        await page.send(type="text", text="What is the weather in Paris?")
        end = await page.until("reply_end", turn=1)
        assert end["audio_bytes"] > 0
        await page.send(type="played", turn=1, seconds=end["audio_bytes"] / 48_000, done=True)
    # Worker A is gone (its process group killed); the page reconnects elsewhere.
    asked_on_a = len(upstream.requests)

    with worker(deployment) as url_b:
        page = await connect(url_b)
        await page.send(type="hello", sample_rate=16_000, conversation=conversation)
        ready = await page.until("ready")
        assert ready["conversation"] == conversation
        assert ready["resumed"] is True
        await page.send(type="text", text="And in Rome?")
        await page.until("reply_end", turn=1)
        assert not [e for e in page.events if e["type"] == "error"]

    first_on_b = upstream.requests[asked_on_a]
    assert user_texts(first_on_b) == ["What is the weather in Paris?", "And in Rome?"]
    roles = [m["role"] for m in first_on_b.json["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    spoken = first_on_b.json["messages"][-2]
    assert CLIP_WORDS["weather_answer"] in str(spoken)  # A's answer, as it was heard


def thread_of(conversation: str, user: str | None = None) -> str:
    from pydantic import SecretStr

    from langchain_openrouter_audio.web._conversations import Conversations

    return Conversations(object(), secret=SecretStr(SECRET)).thread_id(conversation, user)  # type: ignore[arg-type]


def slowly(request: Any) -> Any:
    """`answer_like_a_model`, its speech streamed slowly: about 10 s for the weather clip."""
    return dataclasses.replace(
        answer_like_a_model(request), event_delay_s=0.35, audio_piece_bytes=4800
    )


async def read_until_closed(page: Page) -> tuple[int | None, str, float]:
    """Read `page` until the server closes it: the close code, reason and when it came."""
    import websockets

    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.wait_for(page.ws.recv(), 30)
    except websockets.ConnectionClosed as closed:
        received = closed.rcvd
        at = loop.time()
        return (received.code, received.reason, at) if received else (None, "", at)


async def test_a_second_tab_on_a_conversation_takes_it_over(
    deployment: str,
    upstream: OpenRouterTestServer,
    connect: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two connections on one conversation: the newer closes the older (4409, the reason the
    page shows) before its own first turn, starts from what the older one knew, and its run
    interrupts the older one's run still going on the deployment."""
    import langgraph_sdk
    from langgraph.pregel.remote import RemoteGraph

    from langchain_openrouter_audio.web import voice_app
    from tests.web.test_voice_app import Served
    from tests.web.test_voice_app_remote import ClosesClient

    graph = RemoteGraph("voice_agent", url=deployment)
    served = Served(voice_app(graph, conversation_secret=SECRET), ClosesClient(graph))  # type: ignore[arg-type]
    try:
        first: Page = await connect(served.url)
        first_ready = await first.hello()
        conversation = first_ready["conversation"]
        await first.send(type="text", text="What is the weather in Paris?")
        end = await first.until("reply_end", turn=1)
        await first.send(type="played", turn=1, seconds=end["audio_bytes"] / 48_000, done=True)
        upstream.responder = slowly  # the next answer is still streaming when tab 2 opens
        await first.send(type="text", text="And in Rome?")
        await first.until("audio", turn=2)

        second: Page = await connect(served.url)
        closing = asyncio.create_task(read_until_closed(first))
        with caplog.at_level(logging.INFO, logger="langchain_openrouter_audio.web"):
            await second.send(type="hello", sample_rate=16_000, conversation=conversation)
            ready = await second.until("ready")
            ready_at = time.time()
        code, reason, _ = await closing
        assert (code, reason) == (4409, "This conversation continued in another tab.")
        # The server had closed the first tab (its socket, then this log line) before it
        # sent the second its `ready`: no turn of the second could run beside the first.
        over = f"session {first_ready['session']} closed"
        (closed,) = [r for r in caplog.records if r.getMessage().startswith(over)]
        assert closed.created <= ready_at
        assert ready["conversation"] == conversation
        assert ready["resumed"] is True

        upstream.responder = answer_like_a_model
        await second.send(type="text", text="And in Oslo?")
        await second.until("reply_end", turn=1)
        assert not [e for e in second.events if e["type"] == "error"]
    finally:
        upstream.responder = answer_like_a_model
        served.stop()

    async with langgraph_sdk.get_client(url=deployment) as client:
        state = await client.threads.get_state(thread_of(conversation))
        runs = await client.runs.list(thread_of(conversation))
    messages = state["values"]["messages"]
    # One history: the first tab's turns as heard (Rome asked, its answer cut before any
    # of it was reported played), then the second tab's. Nothing of the cut run after it.
    assert [m["content"] for m in messages if m["type"] == "human"] == [
        "What is the weather in Paris?",
        "And in Rome?",
        "And in Oslo?",
    ]
    assert [m["type"] for m in messages][-4:] == ["human", "ai", "tool", "ai"]
    assert messages[-4]["content"] == "And in Oslo?"
    # The cut run did not finish on the deployment: the second tab's run interrupted it.
    statuses = [run["status"] for run in sorted(runs, key=lambda run: run["created_at"])]
    assert statuses == ["success", "interrupted", "success"]
