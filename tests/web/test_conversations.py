"""Thread ids of resumable conversations: keyed, bound to the user, stable across workers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import SecretStr

pytest.importorskip("starlette", reason="the [web] extra is not installed")

from langchain_openrouter_audio.web._conversations import (
    Conversations,
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
