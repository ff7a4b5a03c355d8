"""Thread ids of resumable conversations: keyed, bound to the user, stable across workers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

pytest.importorskip("starlette", reason="the [web] extra is not installed")

from langchain_openrouter_audio.web._conversations import (
    Conversations,
    PageConversation,
    conversation_secret,
)

SECRET = SecretStr("sixteen or more characters")


def conversations(secret: SecretStr = SECRET, per: Any = "conversation") -> Conversations:
    return Conversations(object(), secret=secret, per=per)  # type: ignore[arg-type]


def test_a_thread_id_is_a_uuid_the_same_on_every_worker() -> None:
    conversation = uuid.uuid4().hex
    one = conversations().thread_id(conversation, "alice")
    assert uuid.UUID(one).version == 4
    assert conversations().thread_id(conversation, "alice") == one  # another process


def test_a_thread_id_depends_on_user_conversation_and_secret() -> None:
    conversation = uuid.uuid4().hex
    ids = {
        conversations().thread_id(conversation, "alice"),
        conversations().thread_id(conversation, "bob"),
        conversations().thread_id(conversation, None),
        conversations().thread_id(uuid.uuid4().hex, "alice"),
        conversations(SecretStr("another secret of 16+ chars")).thread_id(conversation, "alice"),
    }
    assert len(ids) == 5
    assert conversation not in "".join(ids).replace("-", "")


def test_one_thread_per_user_ignores_the_conversation() -> None:
    per_user = conversations(per="user")
    assert per_user.thread_id("a" * 32, "alice") == per_user.thread_id("b" * 32, "alice")
    assert per_user.thread_id(None, "alice") != per_user.thread_id(None, "bob")


def test_the_secret_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICE_CONVERSATION_SECRET", "from the environment!")
    assert conversation_secret(None).get_secret_value() == "from the environment!"
    assert conversation_secret("given as an argument").get_secret_value() == (
        "given as an argument"
    )
    with pytest.raises(ValueError, match="at least 16"):
        conversation_secret("short")
    monkeypatch.delenv("VOICE_CONVERSATION_SECRET")
    made = conversation_secret(None)  # random, for this process only
    assert len(made.get_secret_value()) == 64
    assert made.get_secret_value() != conversation_secret(None).get_secret_value()
    assert "from" not in repr(conversation_secret("from the argument, secret"))


def test_thread_per_must_be_known() -> None:
    with pytest.raises(ValueError, match="thread_per"):
        conversations(per="connection")


class Tab:
    """A connection holding a conversation: what it knew, and how often it was ended."""

    def __init__(self, history: list[Any]) -> None:
        self.history = history
        self.handed_over = 0

    async def hand_over(self) -> list[Any]:
        self.handed_over += 1
        return self.history


async def test_the_newest_connection_on_a_thread_holds_it() -> None:
    from types import SimpleNamespace

    from langchain_core.messages import AIMessage, HumanMessage

    class Deployment:  # a thread with one turn in it
        async def aget_state(self, config: Any) -> Any:
            said = [{"type": "human", "content": "hi"}, {"type": "ai", "content": "hello"}]
            return SimpleNamespace(values={"messages": said})

    held = Conversations(Deployment(), secret=SECRET)  # type: ignore[arg-type]
    asked = uuid.uuid4().hex
    a = Tab([HumanMessage("hi"), AIMessage("hello"), HumanMessage("and?")])
    b, c = Tab([]), Tab([])
    first = await held.open(asked, None, a)  # read from the deployment
    assert [m.text for m in first.messages] == ["hi", "hello"]
    second = await held.open(asked, None, b)  # a second tab: the first is ended
    assert a.handed_over == 1
    assert second.thread_id == first.thread_id
    assert second.messages == a.history  # what the first knew, not the thread's copy
    assert second.id == asked
    held.release(first.thread_id, a)  # the first tab ends late: b keeps the thread
    await held.open(asked, None, c)
    assert b.handed_over == 1  # the newest wins again
    held.release(first.thread_id, c)
    await held.open(asked, None, Tab([]))  # a free thread again: nobody to end
    assert (a.handed_over, b.handed_over, c.handed_over) == (1, 1, 0)


class Line:
    """A tab's socket, as `BrowserTransport` ends it: what its hello awaits is cancelled at
    once, and the socket is closed (the hold let go) `closes_after_s` later."""

    def __init__(self, closes_after_s: float = 0.01) -> None:
        self.closes_after_s = closes_after_s
        self.held: PageConversation | None = None
        self.hello: asyncio.Task[Any] | None = None

    def end(self, ended: Any) -> None:
        if self.hello is not None:
            self.hello.cancel()
        assert self.held is not None
        asyncio.get_running_loop().call_later(self.closes_after_s, self.held.close)


class SlowDeployment:
    """A thread with one turn in it, read once `reachable` is set."""

    def __init__(self) -> None:
        self.reachable = asyncio.Event()
        self.reachable.set()

    async def aget_state(self, config: Any) -> Any:
        from types import SimpleNamespace

        await self.reachable.wait()
        said = [{"type": "human", "content": "hi"}, {"type": "ai", "content": "hello"}]
        return SimpleNamespace(values={"messages": said})


def tab(held: Conversations, line: Line) -> PageConversation:
    from types import SimpleNamespace

    page = PageConversation(held, user=None, session_id="tab")
    page.engine = SimpleNamespace(config={}, history=[], transport=line)  # type: ignore[assignment]
    line.held = page
    return page


def say_hello(page: PageConversation, line: Line, asked: str) -> asyncio.Task[Any]:
    line.hello = asyncio.ensure_future(page.open({"conversation": asked}))
    return line.hello


async def test_a_tab_taking_over_one_still_reading_the_thread_starts_from_the_thread() -> None:
    deployment = SlowDeployment()
    deployment.reachable.clear()
    held = Conversations(deployment, secret=SECRET)  # type: ignore[arg-type]
    asked = uuid.uuid4().hex
    first_line, second_line = Line(), Line()
    first, second = tab(held, first_line), tab(held, second_line)
    opening = say_hello(first, first_line, asked)
    await asyncio.sleep(0.01)  # the first tab is reading the thread
    taking = say_hello(second, second_line, asked)
    await asyncio.sleep(0.01)
    deployment.reachable.set()
    ready = await taking
    assert opening.cancelled()
    assert ready == {"conversation": asked, "resumed": True}
    assert second.engine is not None
    assert [m.text for m in second.engine.history] == ["hi", "hello"]  # not an empty thread


async def test_a_tab_taking_over_one_still_taking_over_starts_from_the_oldest() -> None:
    from langchain_core.messages import HumanMessage

    held = Conversations(SlowDeployment(), secret=SECRET)  # type: ignore[arg-type]
    asked = uuid.uuid4().hex
    lines = [Line(closes_after_s=0.2), Line(), Line()]
    first, second, third = (tab(held, line) for line in lines)
    await say_hello(first, lines[0], asked)
    assert first.engine is not None
    first.engine.history.append(HumanMessage("and tomorrow?"))  # a turn on the first tab
    second_hello = say_hello(second, lines[1], asked)
    await asyncio.sleep(0.05)  # the second waits for the first to end
    await say_hello(third, lines[2], asked)
    assert second_hello.cancelled()
    assert third.engine is not None
    assert [m.text for m in third.engine.history] == ["hi", "hello", "and tomorrow?"]


async def test_a_tab_ended_while_taking_over_lets_the_thread_go() -> None:
    held = Conversations(SlowDeployment(), secret=SECRET)  # type: ignore[arg-type]
    asked = uuid.uuid4().hex
    lines = [Line(closes_after_s=0.2), Line(), Line()]
    first, second, third = (tab(held, line) for line in lines)
    await say_hello(first, lines[0], asked)
    second_hello = say_hello(second, lines[1], asked)
    await asyncio.sleep(0.05)
    second_hello.cancel()  # the second tab's own limit ends it while it waits
    second.close()
    await asyncio.sleep(0.3)  # the first tab is over too
    await say_hello(third, lines[2], asked)
    assert third.engine is not None
    assert [m.text for m in third.engine.history] == ["hi", "hello"]  # read, not []
