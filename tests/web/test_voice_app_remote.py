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
