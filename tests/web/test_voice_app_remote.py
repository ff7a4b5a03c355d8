# ruff: noqa: F811 - fixtures of other test modules are imported and used by name
"""`voice_app` in front of a graph served by a real `langgraph dev` (through `RemoteGraph`):
the remote run's speech reaches the page from its `messages` stream, since callbacks do not
cross the network, and the next turn carries the remote run's final state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")
remote = pytest.importorskip("langgraph.pregel.remote", reason="langgraph is not installed")
langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="langgraph-sdk is not installed")

from pydantic import SecretStr  # noqa: E402

from langchain_openrouter_audio.web import voice_app  # noqa: E402
from langchain_openrouter_audio.web._conversations import Conversations  # noqa: E402
from tests._helpers import CLIP_WORDS  # noqa: E402
from tests.web.test_langgraph_server import clip, server_url  # noqa: E402, F401
from tests.web.test_voice_app import (  # noqa: E402, F401
    Page,
    Served,
    connect,
)

SECRET = "the voice workers' shared secret"


def thread_of(graph: Any, conversation: str | None, user: str | None = None) -> str:
    """The deployment thread `voice_app(graph, conversation_secret=SECRET)` uses."""
    return Conversations(graph, secret=SecretStr(SECRET)).thread_id(conversation, user)


def fresh(name: str) -> str:
    """A user name no other test uses: the deployment (and its per-user threads) is shared
    by the module's tests, which run in any order."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


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
    page: Page = await connect(app_url(voice_app(graph, conversation_secret=SECRET), graph))
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
    conversation = next(e["conversation"] for e in page.events if e["type"] == "ready")
    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(thread_of(graph, conversation))
    kinds = [m["type"] for m in state["values"]["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"] * 2
    assert state["values"]["messages"][4]["content"] == "What is the weather in Paris?"


async def test_a_barge_in_cuts_the_reply_in_the_server_thread(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    page: Page = await connect(app_url(voice_app(graph, conversation_secret=SECRET), graph))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    await page.until("reply_end", turn=1)
    await page.send(type="ptt_start")  # the user talks over the answer
    await page.until("stop", turn=1)
    await page.send(type="stopped", turn=1, seconds=1.0, done=True)
    await page.send(type="ptt_end")
    await page.send(type="text", text="And in Rome?")
    await page.until("reply_end", turn=2)

    conversation = next(e["conversation"] for e in page.events if e["type"] == "ready")
    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(thread_of(graph, conversation))
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


async def hello_with(page: Page, conversation: str) -> dict[str, Any]:
    await page.send(type="hello", sample_rate=16_000, conversation=conversation)
    return await page.until("ready")


async def ask(page: Page, turn: int, text: str) -> None:
    await page.send(type="text", text=text)
    end = await page.until("reply_end", turn=turn)
    await page.send(type="played", turn=turn, seconds=end["audio_bytes"] / 48_000, done=True)


async def test_a_reconnect_continues_the_conversation_from_the_server_thread(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    url = app_url(voice_app(graph, conversation_secret=SECRET), graph)
    page: Page = await connect(url)
    first = await page.hello()
    conversation = first["conversation"]
    assert len(conversation) == 32
    assert first["resumed"] is False
    await ask(page, 1, "What is the weather in Paris?")
    await page.ws.close()

    page = await connect(url)
    again = await hello_with(page, conversation)
    assert again["conversation"] == conversation
    assert again["resumed"] is True
    assert again["session"] != first["session"]  # a new connection, the same conversation
    await ask(page, 1, "And in Rome?")
    assert not [e for e in page.events if e["type"] == "error"]

    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(thread_of(graph, conversation))
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"] * 2
    assert [m["content"] for m in messages if m["type"] == "human"] == [
        "What is the weather in Paris?",
        "And in Rome?",
    ]


async def test_an_unknown_or_malformed_conversation_starts_a_new_one(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    url = app_url(voice_app(graph, conversation_secret=SECRET), graph)
    for asked in ("0" * 32, "../../threads", "x" * 5000):
        page: Page = await connect(url)
        ready = await hello_with(page, asked)
        assert ready["resumed"] is False
        assert ready["conversation"] != asked
        assert len(ready["conversation"]) == 32


async def test_another_user_cannot_join_a_conversation_by_its_id(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    async def by_query(connection: Any) -> str | None:
        return connection.query_params.get("user") or None

    graph = remote.RemoteGraph("voice_agent", url=server_url)
    app = voice_app(graph, conversation_secret=SECRET, authenticate=by_query)
    url = app_url(app, graph)
    alice: Page = await connect(url + "?user=alice")
    conversation = (await alice.hello())["conversation"]
    await ask(alice, 1, "What is the weather in Paris?")

    mallory: Page = await connect(url + "?user=mallory")
    ready = await hello_with(mallory, conversation)  # Alice's id, leaked
    assert ready["resumed"] is False
    assert ready["conversation"] != conversation
    assert thread_of(graph, conversation, "mallory") != thread_of(graph, conversation, "alice")

    back: Page = await connect(url + "?user=alice")
    ready = await hello_with(back, conversation)
    assert ready["resumed"] is True
    assert ready["conversation"] == conversation
    async with langgraph_sdk.get_client(url=server_url) as client:
        state = await client.threads.get_state(thread_of(graph, conversation, "alice"))
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]


async def test_one_thread_per_user(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    async def by_query(connection: Any) -> str | None:
        return connection.query_params.get("user") or None

    graph = remote.RemoteGraph("voice_agent", url=server_url)
    app = voice_app(graph, conversation_secret=SECRET, authenticate=by_query, thread_per="user")
    url = app_url(app, graph)
    bob, carol = fresh("bob"), fresh("carol")
    page: Page = await connect(f"{url}?user={bob}")
    ready = await page.hello()
    assert "conversation" not in ready
    assert ready["resumed"] is False
    await ask(page, 1, "What is the weather in Paris?")
    await page.ws.close()

    page = await connect(f"{url}?user={bob}")  # no id needed: the user is the conversation
    assert (await page.hello())["resumed"] is True
    other: Page = await connect(f"{url}?user={carol}")
    assert (await other.hello())["resumed"] is False


def test_thread_per_user_needs_authentication(server_url: str) -> None:
    graph = remote.RemoteGraph("voice_agent", url=server_url)
    with pytest.raises(ValueError, match="authenticate"):
        voice_app(graph, thread_per="user", conversation_secret=SECRET)


async def test_an_unreachable_deployment_ends_a_resume_instead_of_emptying_it(
    app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    import websockets

    from tests._helpers import refusing_port

    with refusing_port() as port:
        graph = remote.RemoteGraph("voice_agent", url=f"http://127.0.0.1:{port}")
        page: Page = await connect(app_url(voice_app(graph, conversation_secret=SECRET), graph))
        await page.send(type="hello", sample_rate=16_000, conversation="ab" * 16)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await page.until("ready")
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1011,
        "conversation unavailable, try again",
    )


async def test_a_users_second_tab_takes_over_their_one_thread(
    server_url: str, app_url: Callable[[Any, Any], str], connect: Any
) -> None:
    from tests.web.test_voice_worker_restart import read_until_closed

    async def by_query(connection: Any) -> str | None:
        return connection.query_params.get("user") or None

    graph = remote.RemoteGraph("voice_agent", url=server_url)
    app = voice_app(graph, conversation_secret=SECRET, authenticate=by_query, thread_per="user")
    url = app_url(app, graph)
    dave = fresh("dave")
    carol: Page = await connect(f"{url}?user={fresh('carol')}")
    await carol.hello()
    first: Page = await connect(f"{url}?user={dave}")
    await first.hello()
    await ask(first, 1, "What is the weather in Paris?")

    second: Page = await connect(f"{url}?user={dave}")
    closing = asyncio.create_task(read_until_closed(first))
    ready = await second.hello()
    code, reason, _ = await closing
    assert (code, reason) == (4409, "This conversation continued in another tab.")
    assert ready["resumed"] is True
    await ask(second, 1, "And in Rome?")
    await ask(carol, 1, "What is the weather in Oslo?")  # another user's tab is not touched

    async with langgraph_sdk.get_client(url=server_url) as client:
        per_user = Conversations(graph, secret=SecretStr(SECRET), per="user")
        state = await client.threads.get_state(per_user.thread_id(None, dave))
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"] * 2
    assert [m["content"] for m in messages if m["type"] == "human"] == [
        "What is the weather in Paris?",
        "And in Rome?",
    ]
