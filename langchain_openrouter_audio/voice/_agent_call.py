"""One turn's call to the agent: its input, its callbacks, speech for text replies, failures.

`AgentCall` runs the call for one reply. In: the call's settings (`CallSettings`, built by
the engine for each turn from its attributes), the `ReplyOutlet`, the reply and the
utterance it answers. Out: speech and events through the outlet, what it learns into the
`Reply` (audio, runs, the user's words, an error), and its few effects on the conversation
through `CallEffects` (callables the engine hands it): the history the call leaves, the
user's words for a question, tasks to keep or wait for, and the end of the conversation
when the spending limit is reached inside the turn (`Budget`, a callback on each model
call, asks `over_budget` first).

    engine --CallSettings, outlet, reply, utterance--> AgentCall --speech, events--> outlet
                   ^                                      |
                   +------------- CallEffects ------------+
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackManager
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler
from langchain_openrouter_audio.speech import OpenRouterSpeech
from langchain_openrouter_audio.voice._outlet import ReplyOutlet
from langchain_openrouter_audio.voice._remote import is_remote_graph, run_remote_turn
from langchain_openrouter_audio.voice._reply import Reply
from langchain_openrouter_audio.voice.limits import SessionEnded
from langchain_openrouter_audio.voice.spoken_text import TextSpeaker, transcribe
from langchain_openrouter_audio.voice.transport import (
    ToolCalled,
    ToolReturned,
    TranscriptDelta,
    TurnFailed,
    UserTranscript,
    UserTurnStarted,
)

if TYPE_CHECKING:
    from langchain_openrouter_audio.voice._utterance import Utterance

__all__ = [
    "BUDGET_MESSAGE",
    "AgentCall",
    "Budget",
    "CallEffects",
    "CallSettings",
    "agent_input_key",
    "recent_turns",
]

# The engine's log: what users filter on (and configure) names the engine.
logger = logging.getLogger("langchain_openrouter_audio.voice.engine")

BUDGET_MESSAGE = "This conversation has reached its spending limit."


@dataclass(frozen=True)
class CallSettings:
    """What a turn's agent call is made with (the engine's settings as the turn starts)."""

    agent: Runnable[Any, Any]
    config: RunnableConfig
    input_key: str | None
    agent_hears: Literal["audio", "text"]  # as `agent_hearing` decided
    transcription: Runnable[Any, str] | None
    speech: OpenRouterSpeech | None
    callbacks: Sequence[Any]
    turn_timeout_s: float | None
    max_cost_usd: float | None
    session_id: str
    input_rate: int  # of the user's audio


@dataclass(frozen=True)
class CallEffects:
    """What an agent call may do to the conversation beyond its reply and the outlet."""

    set_history: Callable[[list[BaseMessage]], None]
    """The conversation is now these messages (the agent's state, or the question as text)."""
    add_transcript: Callable[[BaseMessage, str], None]
    """The user's words for `question`, made beside a call that hears the audio."""
    spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]
    """Run a task the engine keeps (cancelled when the conversation ends)."""
    keep_cost_lookups: Callable[[set[asyncio.Task[None]]], None]
    """Cost lookups of spoken sentences, to finish before the conversation's total is read."""
    end: Callable[[SessionEnded], None]
    """End the conversation (the spending limit was reached inside the turn)."""
    over_budget: Callable[[], bool]
    """The conversation's cost has reached its limit."""


class AgentCall:
    """The agent's call for `reply`, answering `utterance`; its speech goes out as it streams."""

    def __init__(
        self,
        settings: CallSettings,
        outlet: ReplyOutlet,
        effects: CallEffects,
        reply: Reply,
        utterance: Utterance,
    ) -> None:
        self.settings = settings
        self.outlet = outlet
        self.effects = effects
        self.reply = reply
        self.utterance = utterance

    async def run(self) -> None:
        """Call the agent; the history becomes the conversation it returns.

        A failure ends the turn (the user is told); a cancellation is raised.
        """
        settings, effects = self.settings, self.effects
        reply, utterance = self.reply, self.utterance
        heard_text = utterance.text
        speaker = self._speaker() if settings.speech is not None else None
        callbacks: list[Any] = [TurnCallbacks(self.outlet, reply), *settings.callbacks]
        callbacks += [speaker] if speaker is not None else []
        if settings.max_cost_usd is not None:
            callbacks.append(Budget(effects.over_budget))
        callbacks += _config_callbacks(settings.config)
        config: RunnableConfig = {**settings.config, "callbacks": callbacks}
        try:
            if settings.transcription is not None and utterance.pcm is not None:
                if settings.agent_hears == "text":
                    # The agent reads text: it gets what the user said, not the recording.
                    heard_text = await transcribe(
                        settings.transcription, utterance.pcm, settings.input_rate
                    )
                    reply.base[-1] = HumanMessage(content=heard_text)
                    effects.set_history(list(reply.base))
                else:  # it hears the recording: the words come beside its call
                    reply.transcribing = effects.spawn(self._transcribe_aside())
            await self.outlet.event(
                UserTurnStarted(reply.index, round(reply.user_audio_s, 3), heard_text)
            )
            if heard_text is not None:
                reply.user_text = heard_text
                await self.outlet.event(UserTranscript(reply.index, heard_text))
            key = settings.input_key
            agent_input: Any = list(reply.base) if key is None else {key: list(reply.base)}
            call = (
                run_remote_turn(
                    self.outlet,
                    reply,
                    settings.agent,
                    agent_input,
                    config,
                    session_id=settings.session_id,
                    input_key=key,
                )
                if is_remote_graph(settings.agent)
                else settings.agent.ainvoke(agent_input, config)
            )
            result = await asyncio.wait_for(call, settings.turn_timeout_s)
            if speaker is not None:
                await speaker.finish()  # the last sentences are still being spoken
        except (asyncio.CancelledError, Exception) as err:
            if speaker is not None:  # sentences already spoken are billed: their costs count
                await speaker.cancel()
                effects.keep_cost_lookups(speaker.pending_costs)
            if isinstance(err, asyncio.CancelledError):
                raise
            await self._failed(err)
        else:
            if key is not None and isinstance(result, dict):
                messages = result.get(key)
                if isinstance(messages, list):
                    effects.set_history(list(messages))
            elif isinstance(result, BaseMessage):
                effects.set_history([*reply.base, result])

    async def _transcribe_aside(self) -> None:
        """What the user said, for the UI and the record, while the agent hears the audio."""
        settings, reply = self.settings, self.reply
        assert settings.transcription is not None
        pcm = self.utterance.pcm or b""
        try:
            text = await transcribe(settings.transcription, pcm, settings.input_rate)
        except Exception as err:  # the turn goes on without the words
            turn = reply.index
            logger.warning("session %s: turn %d: no transcript: %s", settings.session_id, turn, err)
            return
        reply.user_text = text
        self.effects.add_transcript(reply.base[-1], text)
        await self.outlet.event(UserTranscript(reply.index, text))

    def _speaker(self) -> TextSpeaker:
        """Speaks the agent's text replies with `speech`, sentence by sentence."""
        assert self.settings.speech is not None
        reply, outlet = self.reply, self.outlet

        async def on_audio(run_id: UUID, pcm: bytes, rate: int) -> None:
            await outlet.audio(reply, reply.add_audio(run_id, pcm, rate))

        async def on_spoken(run_id: UUID, message: AIMessage, done: bool) -> None:
            run = reply.run(run_id)
            run.message = message
            # Not over until spoken: a barge-in keeps only what was heard of it.
            run.ended = False
            if done:  # over now: send what the resampler still holds
                await outlet.audio(reply, reply.end_run(run_id, None))

        return TextSpeaker(self.settings.speech, on_audio, on_spoken)

    async def _failed(self, err: Exception) -> None:
        """Tell the user, in words that reveal nothing inside; the log has the detail."""
        session_id, reply = self.settings.session_id, self.reply
        ref = _reference()
        reply.error = f"{type(err).__name__}: {err} (ref {ref})"
        if isinstance(err, SessionEnded):  # the spending limit, reached inside the turn
            logger.warning("session %s: turn %d: %s", session_id, reply.index, err.reason)
            await self.outlet.event(TurnFailed(reply.index, BUDGET_MESSAGE))
            self.effects.end(err)
            return
        if isinstance(err, (TimeoutError, asyncio.TimeoutError)):  # distinct before 3.11
            message = f"That took too long to answer; please try again. (ref {ref})"
            logger.warning(
                "session %s: turn %d timed out after %s s (ref %s)",
                session_id,
                reply.index,
                self.settings.turn_timeout_s,
                ref,
            )
        else:
            message = f"The agent failed to answer; please try again. (ref {ref})"
            logger.error(
                "session %s: turn %d failed (ref %s)",
                session_id,
                reply.index,
                ref,
                exc_info=err,
            )
        await self.outlet.event(TurnFailed(reply.index, message))


def _reference() -> str:
    """A short id that ties what the user is shown to the log line with the detail."""
    return uuid.uuid4().hex[:8]


class Budget(AsyncCallbackHandler):
    """Refuses to start a model call once the conversation's cost has reached the limit."""

    raise_error = True  # the refusal must stop the agent, not be logged and ignored

    def __init__(self, over_budget: Callable[[], bool]) -> None:
        self.over_budget = over_budget

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        if self.over_budget():
            raise SessionEnded("spending limit reached")


class TurnCallbacks(AsyncAudioCallbackHandler):
    """Feeds a turn's speech to the channel and its events to the UI as the agent streams."""

    def __init__(self, outlet: ReplyOutlet, reply: Reply) -> None:
        super().__init__()
        self.outlet = outlet
        self.reply = reply
        self._tool_names: dict[Any, str] = {}  # run id -> the tool's name, for its result

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        pcm = self.reply.add_audio(kwargs["run_id"], chunk, sample_rate)
        await self.outlet.audio(self.reply, pcm)

    async def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        self.reply.run(kwargs["run_id"]).text += text
        if not self.reply.interrupted:
            await self.outlet.event(TranscriptDelta(self.reply.index, text))

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        generations = response.generations[0] if response.generations else []
        message = getattr(generations[0], "message", None) if generations else None
        await self.outlet.audio(self.reply, self.reply.end_run(run_id, message))
        await super().on_llm_end(response, run_id=run_id, **kwargs)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.reply.end_run(run_id, None)
        await super().on_llm_error(error, run_id=run_id, **kwargs)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self._tool_names[kwargs.get("run_id")] = name
        self.reply.tools_called = True
        args: Any = inputs if inputs is not None else input_str
        await self.outlet.event(ToolCalled(self.reply.index, name, args))

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        if isinstance(output, ToolMessage):
            self.reply.items.append(output)
        text = getattr(output, "content", output)
        name = self._tool_names.pop(kwargs.get("run_id"), None) or getattr(output, "name", None)
        await self.outlet.event(ToolReturned(self.reply.index, str(text), name or "tool"))


def recent_turns(history: list[BaseMessage], turns: int | None) -> list[BaseMessage]:
    """The last `turns` turns: each user question re-sends its audio, so old ones cost."""
    if turns is None:
        return history
    starts = [i for i, m in enumerate(history) if isinstance(m, HumanMessage)]
    return history[starts[-turns] :] if len(starts) > turns else history


def _config_callbacks(config: RunnableConfig) -> list[Any]:
    callbacks = config.get("callbacks")
    if callbacks is None:
        return []
    if isinstance(callbacks, list):
        return list(callbacks)
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.handlers)
    return [callbacks]  # a single handler


def agent_input_key(agent: Runnable[Any, Any], input_key: str | None) -> str | None:
    """Where the agent takes the conversation: None (the message list) or a state key.

    `"auto"`: a chat model, also one with tools bound (a `RunnableBinding`), takes the
    list; anything else (a graph) takes `{"messages": [...]}`.
    """
    if input_key != "auto":
        return input_key
    model = getattr(agent, "bound", agent)
    return None if isinstance(model, BaseLanguageModel) else "messages"
