"""Conversations that outlive a connection: each one is a thread of the LangGraph deployment.

A page gets a conversation id in ``ready`` and sends it back in the ``hello`` of a later
connection (to this voice worker or another); the engine then starts from the thread's
messages, read from the deployment. Nothing of the conversation is kept in the worker.

The thread id is never sent to the page: it is an HMAC, keyed by a server secret, of the
conversation id and the authenticated user, so an id that leaked to another user opens an
empty thread of theirs, and thread ids cannot be derived without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from langchain_openrouter_audio.voice.limits import SessionEnded

__all__ = ["Conversation", "Conversations", "ThreadPer", "conversation_secret"]

logger = logging.getLogger("langchain_openrouter_audio.web")

ThreadPer = Literal["conversation", "user"]
"""One deployment thread per conversation (resumed with its id) or per authenticated user."""

SECRET_ENV = "VOICE_CONVERSATION_SECRET"
_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


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

    def thread_id(self, conversation: str | None, user: str | None) -> str:
        """The deployment thread of `conversation` for `user` (a UUID, as LangGraph wants)."""
        owner = "anonymous" if user is None else f"user:{user}"
        subject = owner if self.per == "user" else f"{owner}\0conversation:{conversation}"
        digest = hmac.new(self._key, subject.encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    async def open(self, requested: Any, user: str | None) -> Conversation:
        """The conversation `requested` (an id from an earlier ``ready``) if its thread has
        messages, else a new one. A deployment that cannot be read ends the connection:
        starting empty would replace the thread's messages on the next turn."""
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
        messages = await self._messages(thread_id) if resuming else []
        if not messages and conversation is not None and conversation == requested:
            conversation = uuid.uuid4().hex  # nothing to resume: a fresh id, a fresh thread
            thread_id = self.thread_id(conversation, user)
        return Conversation(conversation, thread_id, messages, resumed=bool(messages))

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


def _status(err: BaseException) -> int | None:
    """The HTTP status of an SDK or httpx error, if it has one."""
    status = getattr(err, "status_code", None)
    if status is None:
        status = getattr(getattr(err, "response", None), "status_code", None)
    return status if isinstance(status, int) else None
