"""A turn of a graph served elsewhere (LangGraph Server through `RemoteGraph`).

Callbacks do not cross the network: the remote run's speech reaches the engine as message
chunks of its ``messages`` stream, each holding transcript text and base64 PCM blocks, and
its final state as the last ``values`` event (plain dicts, made messages here).

The conversation lives in a server thread (one per conversation, unless the config names
one): each run's input replaces the thread's messages with the conversation as the engine
knows it, so what a barge-in cut (the unheard rest of a reply, an unanswered tool call) is
cut on the server too. Each run is started with ``multitask_strategy="interrupt"``: a run
still going on that thread (the server finishes a run whose stream was closed) is stopped
instead of making the new turn wait behind it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    RemoveMessage,
    convert_to_messages,
)
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.voice.transport import TranscriptDelta

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice._outlet import ReplyOutlet
    from langchain_openrouter_audio.voice._reply import Reply

__all__ = ["is_remote_graph", "remote_thread_id", "run_remote_turn"]

_RATE = re.compile(r"rate=(\d+)")
# What the remote run may claim its speech is at (the peer's text, so checked).
_PLAYABLE_RATES = frozenset({8_000, 16_000, 22_050, 24_000, 44_100, 48_000})
# What LangGraph Server does with a run already going on the thread when a turn starts.
MULTITASK_STRATEGY = "interrupt"
# The message id that makes LangGraph's `add_messages` drop every message before it.
_REMOVE_ALL = "__remove_all__"


def remote_thread_id(session_id: str) -> str:
    """The server thread of the conversation `session_id` (LangGraph wants a UUID)."""
    return str(uuid5(NAMESPACE_URL, f"langchain-openrouter-audio:session:{session_id}"))


def is_remote_graph(agent: Runnable[Any, Any]) -> bool:
    """`agent` runs in another process (a `langgraph.pregel.remote.RemoteGraph`)."""
    try:
        from langgraph.pregel.remote import RemoteGraph
    except ImportError:  # pragma: no cover - langgraph is optional
        return False
    return isinstance(agent, RemoteGraph)


async def run_remote_turn(
    outlet: ReplyOutlet,
    reply: Reply,
    agent: Runnable[Any, Any],
    agent_input: Any,
    config: RunnableConfig,
    *,
    session_id: str,
    input_key: str | None,
) -> Any:
    """Stream one remote run: its speech and transcript go out through `outlet` as they
    arrive; returns the run's final state with its messages as LangChain messages."""
    configurable = {"thread_id": remote_thread_id(session_id)}
    configurable.update(config.get("configurable", {}))
    config = {**config, "configurable": configurable}
    if isinstance(agent_input, dict) and isinstance(agent_input.get(input_key), list):
        messages = agent_input[input_key]
        agent_input = {input_key: [RemoveMessage(id=_REMOVE_ALL), *messages]}
    state: Any = None
    calls: dict[UUID, AIMessageChunk] = {}  # each model call's tool calls, as they stream
    current: UUID | None = None
    unplayable: set[UUID] = set()  # calls whose speech named a rate we cannot play
    # A run still going on the thread (a reply the user cut short, whose stream was closed,
    # or a run from a connection that another has taken over) is interrupted, not waited
    # for: this run's input is the whole conversation as heard, so nothing of it is lost.
    stream = agent.astream(
        agent_input,
        config,
        stream_mode=["messages", "values"],
        multitask_strategy=MULTITASK_STRATEGY,
    )
    async for part in stream:
        # A stream part (the SDK's, with `event` and `data`) or a (mode, data) pair.
        mode, data = (part.event, part.data) if hasattr(part, "event") else part[:2]
        if mode == "values":
            state = data
            continue
        message = data[0] if isinstance(data, tuple | list) and data else None
        if not isinstance(message, dict):
            continue
        if message.get("type") == "tool":  # a tool's result, whole: its call is over
            await _end(outlet, reply, current, calls)
            current = None
            reply.items.extend(convert_to_messages([message]))
            continue
        if message.get("type") != "AIMessageChunk":
            continue
        run_id = uuid5(NAMESPACE_URL, str(message.get("id")))
        if run_id != current:
            await _end(outlet, reply, current, calls)
            current = run_id
            reply.run(run_id)  # its place in the reply, spoken or not
            calls[run_id] = AIMessageChunk(content="", id=str(message.get("id")))
        if pieces := message.get("tool_call_chunks"):
            calls[run_id] += AIMessageChunk(content="", tool_call_chunks=pieces)
        content = message.get("content")
        if isinstance(content, str) and content:
            await _transcript(outlet, reply, run_id, content)
            continue
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                await _transcript(outlet, reply, run_id, block["text"])
            elif block.get("type") == "audio" and isinstance(block.get("base64"), str):
                try:
                    pcm = base64.b64decode(block["base64"], validate=True)
                except (binascii.Error, ValueError):
                    continue  # not speech we can play; the final state still has the reply
                # Only a call's first audio chunk names its format (summed chunks would
                # repeat it): the rest are at the rate its speech is at so far.
                rate: int | None = None
                if match := _RATE.search(str(block.get("mime_type") or "")):
                    rate = int(match[1]) if len(match[1]) <= 6 else 0
                    if rate in _PLAYABLE_RATES:
                        unplayable.discard(run_id)
                    else:
                        unplayable.add(run_id)
                if run_id in unplayable:
                    continue  # a rate no speech model streams: not audio we can play
                await outlet.audio(reply, reply.add_audio(run_id, pcm, rate))
    await _end(outlet, reply, current, calls)
    if isinstance(state, dict) and isinstance(state.get("messages"), list):
        return {**state, "messages": convert_to_messages(state["messages"])}
    return state


async def _end(
    outlet: ReplyOutlet, reply: Reply, run_id: UUID | None, calls: dict[UUID, AIMessageChunk]
) -> None:
    """A model call of the remote run is over: its last speech goes out, and a call that
    asked for tools is kept as that message (a barge-in keeps it if its results came)."""
    if run_id is None:
        return
    chunk = calls.pop(run_id)
    message = None
    if chunk.tool_calls:
        text = reply.run(run_id).text
        message = AIMessage(content=text, tool_calls=chunk.tool_calls, id=chunk.id)
    await outlet.audio(reply, reply.end_run(run_id, message))


async def _transcript(outlet: ReplyOutlet, reply: Reply, run_id: UUID, text: str) -> None:
    reply.run(run_id).text += text
    if not reply.interrupted:
        await outlet.event(TranscriptDelta(reply.index, text))
