"""Conversations that outlive a connection: each one is a thread of the LangGraph deployment.

A page gets a conversation id in ``ready`` and sends it back in the ``hello`` of a later
connection (to this voice worker or another); the engine then starts from the thread's
messages, read from the deployment. Nothing of the conversation is kept in the worker.

The thread id is never sent to the page: it is an HMAC, keyed by a server secret, of the
conversation id and the authenticated user, so an id that leaked to another user opens an
empty thread of theirs, and thread ids cannot be derived without the secret.

One conversation, one connection: a second connection to a thread this process already
serves (a second tab resuming the same id, or a user's second tab with one thread per
user) takes it over. The older connection is ended first and its conversation, as it knew
it, is where the newer one starts; two connections never write one thread in turns.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from langchain_openrouter_audio.voice.limits import SessionEnded

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice.engine import TurnEngine
    from langchain_openrouter_audio.voice.transports.browser import BrowserTransport

__all__ = [
    "CLOSE_TAKEN_OVER",
    "TAKEN_OVER",
    "Conversation",
    "Conversations",
    "Holder",
    "PageConversation",
    "ThreadPer",
    "conversation_secret",
]

logger = logging.getLogger("langchain_openrouter_audio.web")

ThreadPer = Literal["conversation", "user"]
"""One deployment thread per conversation (resumed with its id) or per authenticated user."""

SECRET_ENV = "VOICE_CONVERSATION_SECRET"
# A private close code (the 4000s), after HTTP's 409 Conflict: a newer connection took the
# conversation over. The page shows the reason.
CLOSE_TAKEN_OVER = 4409
TAKEN_OVER = "This conversation continued in another tab."
# How long a newer connection waits for the older one to end before it goes on anyway.
HAND_OVER_WAIT_S = 5.0
_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


class Holder(Protocol):
    """A connection holding a conversation in this process."""

    async def hand_over(self) -> list[BaseMessage]:
        """End the connection (its conversation continues elsewhere); once it is over, the
        conversation as it knew it."""
        ...


@dataclass(frozen=True)
class Conversation:
    """An opened conversation: its id for the page, its thread, and what was said so far."""

    id: str | None  # None with one thread per user: the page needs no id
    thread_id: str
    messages: list[BaseMessage]
    resumed: bool


def conversation_secret(secret: str | SecretStr | None) -> SecretStr:
    """`secret`, else ``VOICE_CONVERSATION_SECRET``, else a random one for this process only
    (a conversation then resumes only on the worker that started it)."""
    if isinstance(secret, SecretStr):
        value = secret.get_secret_value()
    else:
        value = secret or os.environ.get(SECRET_ENV, "")
    if value:
        if len(value) < 16:
            raise ValueError("conversation_secret must be at least 16 characters")
        return SecretStr(value)
    logger.warning(
        "no conversation_secret and no %s: conversations resume only on this worker",
        SECRET_ENV,
    )
    return SecretStr(secrets.token_hex(32))


class Conversations:
    """Opens the conversation a page asks for in its ``hello`` on a remote graph.

    ```python
    conversations = Conversations(graph, secret="a server secret of 16+ chars")
    conversation = await conversations.open(hello.get("conversation"), user=None)
    engine.history = conversation.messages
    ```
    """

    def __init__(
        self,
        agent: Runnable[Any, Any],
        *,
        secret: SecretStr,
        per: ThreadPer = "conversation",
        input_key: str = "messages",
    ) -> None:
        if per not in ("conversation", "user"):
            raise ValueError('thread_per must be "conversation" or "user"')
        self.agent = agent
        self.per = per
        self.input_key = input_key
        self._key = secret.get_secret_value().encode()
        self._holders: dict[str, Holder] = {}  # thread id -> the connection serving it
        # thread id -> what its holder starts from, while that is still being read or handed
        # over (a newer holder taking over then waits for it, not for the holder's history)
        self._starts: dict[str, asyncio.Future[list[BaseMessage]]] = {}

    def thread_id(self, conversation: str | None, user: str | None) -> str:
        """The deployment thread of `conversation` for `user` (a UUID, as LangGraph wants)."""
        owner = "anonymous" if user is None else f"user:{user}"
        subject = owner if self.per == "user" else f"{owner}\0conversation:{conversation}"
        digest = hmac.new(self._key, subject.encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    async def open(
        self, requested: Any, user: str | None, holder: Holder | None = None
    ) -> Conversation:
        """The conversation `requested` (an id from an earlier ``ready``) if its thread has
        messages, else a new one. A deployment that cannot be read ends the connection:
        starting empty would replace the thread's messages on the next turn.

        With `holder` (the connection asking), a thread another holder of this process
        serves is taken over: that holder is ended and its conversation is the one
        returned. Call `release` when the connection ends."""
        if self.per == "user":
            if user is None:
                raise SessionEnded("thread_per='user' needs an authenticated user")
            conversation = None
        elif isinstance(requested, str) and _CONVERSATION_ID.fullmatch(requested):
            conversation = requested
        else:
            conversation = uuid.uuid4().hex
        thread_id = self.thread_id(conversation, user)
        resuming = conversation is None or conversation == requested
        taken_over = False
        try:
            if resuming and holder is not None:
                messages, taken_over = await self._start(thread_id, holder)
            else:
                messages = await self._messages(thread_id) if resuming else []
        except BaseException:
            if holder is not None:
                self.release(thread_id, holder)
            raise
        if taken_over:
            return Conversation(conversation, thread_id, messages, resumed=bool(messages))
        if not messages and conversation is not None and conversation == requested:
            if holder is not None:
                self.release(thread_id, holder)
            conversation = uuid.uuid4().hex  # nothing to resume: a fresh id, a fresh thread
            thread_id = self.thread_id(conversation, user)
        if holder is not None:
            self._holders.setdefault(thread_id, holder)  # not over a newer one that took it
        return Conversation(conversation, thread_id, messages, resumed=bool(messages))

    async def _start(self, thread_id: str, holder: Holder) -> tuple[list[BaseMessage], bool]:
        """What `holder` starts `thread_id` from, and whether it took the thread over.

        The thread is claimed before anything is awaited: of two connections at once, the
        newer wins. What a holder starts from is read (or handed over) in a task of its own
        that outlives the holder: a holder ended while it was still starting knew nothing
        of the conversation yet, so a newer one waits for what it was to start from."""
        previous = self._holders.get(thread_id)
        self._holders[thread_id] = holder
        if previous is None or previous is holder:
            start, taking_over = self._messages(thread_id), False
        else:
            start, taking_over = _handed_over(previous, self._starts.get(thread_id)), True
        task = asyncio.ensure_future(start)
        task.add_done_callback(_retrieve)  # its failure is its awaiter's, if any is left
        self._starts[thread_id] = task
        try:
            return await asyncio.shield(task), taking_over
        finally:
            if self._starts.get(thread_id) is task:
                del self._starts[thread_id]

    def release(self, thread_id: str, holder: Holder) -> None:
        """`holder`'s connection ended: its thread is free (unless taken over already)."""
        if self._holders.get(thread_id) is holder:
            del self._holders[thread_id]

    async def _messages(self, thread_id: str) -> list[BaseMessage]:
        try:
            state = await self.agent.aget_state(  # type: ignore[attr-defined]
                {"configurable": {"thread_id": thread_id}}
            )
        except Exception as err:
            if _status(err) == 404:
                return []
            logger.warning("conversation thread %s unreadable: %r", thread_id, err)
            raise SessionEnded("conversation unavailable, try again", code=1011) from err
        values = getattr(state, "values", None)
        messages = values.get(self.input_key) if isinstance(values, dict) else None
        return convert_to_messages(messages) if isinstance(messages, list) else []


async def _handed_over(
    previous: Holder, starting: asyncio.Future[list[BaseMessage]] | None
) -> list[BaseMessage]:
    """The conversation `previous` knew, once it has ended; if it was still starting
    (`starting`: reading the thread, or taking it over itself), what it was to start from."""
    messages = await previous.hand_over()
    return await starting if starting is not None else messages


def _retrieve(task: asyncio.Future[list[BaseMessage]]) -> None:
    """Marks a start's failure as seen: its holder may be gone, with nobody to await it."""
    if not task.cancelled():
        task.exception()


def _status(err: BaseException) -> int | None:
    """The HTTP status of an SDK or httpx error, if it has one."""
    status = getattr(err, "status_code", None)
    if status is None:
        status = getattr(getattr(err, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class PageConversation:
    """One page connection's hold on its conversation: opens it at ``hello`` (the
    transport's `on_hello`), hands it over to a newer connection, lets go when it ends.

    ```python
    held = PageConversation(conversations, user=None, session_id="3f9c2a1b0c7d")
    transport = BrowserTransport(send, receive, on_hello=held.open)
    held.engine = engine = TurnEngine(agent, transport)
    try:
        await engine.run()
    finally:
        held.close()  # after the socket is closed
    ```
    """

    def __init__(self, conversations: Conversations, *, user: str | None, session_id: str):
        self.conversations = conversations
        self.user = user
        self.session_id = session_id
        self.engine: TurnEngine | None = None
        self.thread_id: str | None = None
        self._over = asyncio.Event()

    @property
    def transport(self) -> BrowserTransport:
        assert self.engine is not None
        return self.engine.transport  # type: ignore[return-value]

    async def open(self, hello: dict[str, Any]) -> dict[str, Any]:
        """Points the engine at the conversation the page asks for (its thread and
        messages); returns what ``ready`` tells the page about it."""
        engine = self.engine
        assert engine is not None, "set engine before the transport runs"
        conversation = await self.conversations.open(hello.get("conversation"), self.user, self)
        self.thread_id = conversation.thread_id
        configurable = {**engine.config.get("configurable", {}), "thread_id": self.thread_id}
        engine.config = {**engine.config, "configurable": configurable}
        engine.history = list(conversation.messages)
        if conversation.id is None:
            return {"resumed": conversation.resumed}
        return {"conversation": conversation.id, "resumed": conversation.resumed}

    async def hand_over(self) -> list[BaseMessage]:
        """A newer connection takes the conversation: this one is closed with
        `CLOSE_TAKEN_OVER`; once it is over (no turn of it runs any more), its history."""
        logger.info("session %s: the conversation continues on a newer connection", self.session_id)
        self.transport.end(SessionEnded(TAKEN_OVER, code=CLOSE_TAKEN_OVER))
        try:
            await asyncio.wait_for(self._over.wait(), HAND_OVER_WAIT_S)
        except TimeoutError:
            logger.warning(
                "session %s did not end within %.0f s", self.session_id, HAND_OVER_WAIT_S
            )
        return list(self.engine.history) if self.engine is not None else []

    def close(self) -> None:
        """The connection is over (its socket closed): the thread is free."""
        if self.thread_id is not None:
            self.conversations.release(self.thread_id, self)
        self._over.set()
