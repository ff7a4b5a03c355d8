# ruff: noqa: F811 - fixtures of other test modules are imported and used by name
"""`voice_app` in front of a graph served by a real `langgraph dev` (through `RemoteGraph`):
the remote run's speech reaches the page from its `messages` stream, since callbacks do not
cross the network, and the next turn carries the remote run's final state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")
remote = pytest.importorskip("langgraph.pregel.remote", reason="langgraph is not installed")
langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="langgraph-sdk is not installed")

from langchain_openrouter_audio.voice._remote import remote_thread_id  # noqa: E402
from langchain_openrouter_audio.web import voice_app  # noqa: E402
from tests._helpers import CLIP_WORDS  # noqa: E402
from tests.web.test_langgraph_server import clip, server_url  # noqa: E402, F401
from tests.web.test_voice_app import (  # noqa: E402, F401
    Page,
    Served,
    connect,
)


class ClosesClient:
    """Closes the remote graph's HTTP client in the server's loop, as `Served` does a model's."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph

    async def aclose(self) -> None:
        await self.graph.client.aclose()


@pytest.fixture
def app_url() -> Iterator[Callable[[Any, Any], str]]:
    served: list[Any] = []

    def start(app: Any, graph: Any) -> str:
        served.append(Served(app, ClosesClient(graph)))
        return served[-1].url

    yield start
    for one in served:
        one.stop()


async def test_speech_of_a_remote_graph_reaches_the_page(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    _, answer_pcm = clip("weather_answer")
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    page: Page = await connect(app_url(voice_app(graph), graph))
    await page.hello()
    for turn in (1, 2):
        await page.send(type="text", text="What is the weather in Paris?")
        end = await page.until("reply_end", turn=turn)
        assert not [e for e in page.events if e["type"] == "error"]
        assert bytes(page.audio[turn]) == answer_pcm  # every byte, in order
        transcript = "".join(
            e["text"] for e in page.events if e["type"] == "transcript" and e["turn"] == turn
        )
        assert transcript == CLIP_WORDS["weather_answer"]
        assert end["audio_bytes"] == len(answer_pcm)
        await page.send(type="played", turn=turn, seconds=len(answer_pcm) / 48_000, done=True)

    # The conversation is the server thread's too.
    session = next(e["session"] for e in page.events if e["type"] == "ready")
    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(remote_thread_id(session))
    kinds = [m["type"] for m in state["values"]["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"] * 2
    assert state["values"]["messages"][4]["content"] == "What is the weather in Paris?"


async def test_a_barge_in_cuts_the_reply_in_the_server_thread(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    page: Page = await connect(app_url(voice_app(graph), graph))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    await page.until("reply_end", turn=1)
    await page.send(type="ptt_start")  # the user talks over the answer
    await page.until("stop", turn=1)
    await page.send(type="stopped", turn=1, seconds=1.0, done=True)
    await page.send(type="ptt_end")
    await page.send(type="text", text="And in Rome?")
    await page.until("reply_end", turn=2)

    session = next(e["session"] for e in page.events if e["type"] == "ready")
    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(remote_thread_id(session))
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == [
        "human",
        "ai",
        "tool",
        "ai",
        "human",
        "ai",
        "tool",
        "ai",
    ]
    heard = messages[3]["content"]
    text = heard if isinstance(heard, str) else "".join(b.get("text", "") for b in heard)
    words = CLIP_WORDS["weather_answer"].split()
    assert 0 < len(text.split()) < len(words)  # cut where the user stopped hearing it
    assert CLIP_WORDS["weather_answer"].startswith(text.rstrip(".…- "))
