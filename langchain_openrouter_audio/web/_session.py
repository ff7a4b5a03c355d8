"""One browser connection: endpointing, a turn per utterance, streaming the reply, barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_openrouter_audio.audio import audio_block_from_bytes, pcm16_to_wav
from langchain_openrouter_audio.callbacks import AsyncAudioCallbackHandler
from langchain_openrouter_audio.cost import OpenRouterCallbackHandler

__all__ = ["EndpointerLike", "SocketSession"]

logger = logging.getLogger("langchain_openrouter_audio.web")

# How long the page may take to answer "stop" with what it played before the server assumes
# the last progress report: a page that hangs must not hang the conversation.
_STOP_ACK_TIMEOUT_S = 2.0


class EndpointerLike(Protocol):
    """What the session needs from `langchain_openrouter_audio.voice.Endpointer`."""

    speaking: bool

    def push(self, pcm: bytes) -> list[bytes]: ...

    def flush(self) -> list[bytes]: ...


Send = Callable[[dict[str, Any] | bytes], Awaitable[None]]


class _Turn:
    """One reply: what was sent to the page, and what the page says it played."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.transcript = ""
        self.pcm = bytearray()
        self.sample_rate = 24_000
        self.task: asyncio.Task[None] | None = None
        self.state_messages: list[BaseMessage] | None = None  # latest graph state seen
        self.played_s = 0.0
        self.finished_playing = False
        self.stop_sent = False
        self.settled = False
        self.committed = False  # the whole reply is in the session's history
        self.stopped: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    @property
    def generating(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def active(self) -> bool:
        """The reply is still being generated or may still be playing on the page."""
        return self.generating or not self.finished_playing

    @property
    def interrupted(self) -> bool:
        """Barge-in stopped it and the conversation does not reflect that yet."""
        return self.stop_sent and not self.settled


class _Relay(AsyncAudioCallbackHandler):
    """Forwards the reply's transcript, speech and tool calls to the page as they happen."""

    def __init__(self, session: SocketSession, turn: _Turn) -> None:
        super().__init__()
        self._session = session
        self._turn = turn
        self._announced_rate: int | None = None

    async def on_transcript_chunk(self, text: str, **kwargs: Any) -> None:
        self._turn.transcript += text
        await self._session.send({"type": "transcript", "turn": self._turn.number, "text": text})

    async def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        turn = self._turn
        if self._announced_rate != sample_rate:
            self._announced_rate = turn.sample_rate = sample_rate
            await self._session.send(
                {"type": "audio_start", "turn": turn.number, "sample_rate": sample_rate}
            )
        turn.pcm += chunk
        await self._session.send(chunk)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        args: Any = inputs if inputs is not None else input_str
        await self._session.send(
            {"type": "tool_call", "turn": self._turn.number, "name": name, "args": args}
        )

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        text = getattr(output, "content", output)
        await self._session.send(
            {"type": "tool_result", "turn": self._turn.number, "output": str(text)}
        )


class SocketSession:
    """The conversation of one WebSocket connection (see `voice_app` for the protocol)."""

    def __init__(
        self,
        agent: Runnable[Any, Any],
        send: Send,
        *,
        make_endpointer: Callable[[int], EndpointerLike],
        config: RunnableConfig | None = None,
        allowed_rates: tuple[int, ...] = (16_000, 24_000),
        max_turns: int | None = None,
        max_utterance_s: float = 30.0,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.agent = agent
        self.history: list[BaseMessage] = []
        self.cost = OpenRouterCallbackHandler()  # what this conversation cost, per OpenRouter
        self._max_turns = max_turns
        self._max_utterance_s = max_utterance_s
        self._speech_bytes = 0  # audio pushed since the endpointer heard speech start
        self._send = send
        self._send_lock = asyncio.Lock()
        self._make_endpointer = make_endpointer
        self._config = config or {}
        self._allowed_rates = allowed_rates
        self._is_chat_model = isinstance(agent, BaseChatModel)
        self._endpointer: EndpointerLike | None = None
        self._rate = 0
        self._ptt: bytearray | None = None
        self._utterances: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._turn: _Turn | None = None
        self._turns = 0
        self._conductor: asyncio.Task[None] | None = None

    @property
    def turns(self) -> int:
        """Utterances answered (or being answered) so far."""
        return self._turns

    # -- page -> server -------------------------------------------------------------

    async def on_text(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            await self.send({"type": "error", "message": "control messages must be JSON"})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "hello":
            await self._hello(message)
        elif kind == "ptt_start":
            self._ptt = bytearray()
            await self._barge_in()
        elif kind == "ptt_end":
            audio, self._ptt = self._ptt, None
            if audio:
                self._utterances.put_nowait(bytes(audio))
        elif kind in ("played", "stopped"):
            self._on_played(message, stopped=kind == "stopped")
        else:
            await self.send({"type": "error", "message": f"unknown message type {kind!r}"})

    async def on_audio(self, pcm: bytes) -> None:
        if self._endpointer is None:
            await self.send({"type": "error", "message": "send hello before audio"})
            return
        if len(pcm) % 2:
            await self.send({"type": "error", "message": "audio must be whole PCM16 samples"})
            return
        limit = round(self._max_utterance_s * self._rate) * 2
        if self._ptt is not None:
            self._ptt += pcm
            if len(self._ptt) >= limit:  # a held button must not grow memory without bound
                self._utterances.put_nowait(bytes(self._ptt))
                self._ptt = bytearray()
            return
        endpointer = self._endpointer
        was_speaking = endpointer.speaking
        utterances = endpointer.push(pcm)
        self._speech_bytes = self._speech_bytes + len(pcm) if endpointer.speaking else 0
        if self._speech_bytes >= limit:  # endless noise: end the utterance here
            utterances += endpointer.flush()
            self._speech_bytes = 0
        for utterance in utterances:
            self._utterances.put_nowait(utterance)
        if endpointer.speaking and not was_speaking:
            await self.send({"type": "speech_start"})
            await self._barge_in()

    async def _hello(self, message: dict[str, Any]) -> None:
        rate = message.get("sample_rate")
        if rate not in self._allowed_rates:
            await self.send(
                {
                    "type": "error",
                    "message": f"sample_rate must be one of {list(self._allowed_rates)}",
                }
            )
            return
        self._rate = int(rate)
        self._endpointer = self._make_endpointer(self._rate)
        if self._conductor is None:
            self._conductor = asyncio.create_task(self._conduct())
        await self.send({"type": "ready", "session": self.id, "sample_rate": self._rate})

    def _on_played(self, message: dict[str, Any], *, stopped: bool) -> None:
        turn = self._turn
        if turn is None or message.get("turn") != turn.number:
            return
        seconds = message.get("seconds")
        if isinstance(seconds, int | float) and seconds >= 0:
            turn.played_s = float(seconds)
        if message.get("done") or stopped:
            turn.finished_playing = True
        if stopped and not turn.stopped.done():
            turn.stopped.set_result(turn.played_s)

    # -- server -> page ---------------------------------------------------------------

    async def send(self, message: dict[str, Any] | bytes) -> None:
        # Relay callbacks, the reader and the conductor all send: one frame at a time.
        async with self._send_lock:
            await self._send(message)

    # -- turns ------------------------------------------------------------------------

    async def _barge_in(self) -> None:
        """The user speaks over the reply: tell the page to stop playing it at once."""
        turn = self._turn
        if turn is None or not turn.active or turn.stop_sent:
            return
        turn.stop_sent = True
        await self.send({"type": "stop", "turn": turn.number})

    async def _conduct(self) -> None:
        """Takes utterances in order; each one ends the reply before it and starts a turn."""
        while (utterance := await self._utterances.get()) is not None:
            previous = self._turn
            # The page may have answered "stop" already, so the reply is no longer active.
            if previous is not None and (previous.active or previous.interrupted):
                await self._barge_in()
                await self._settle_interrupted(previous)
            turn = self._turn = _Turn(self._turns + 1)
            self._turns += 1
            turn.task = asyncio.create_task(self._run_turn(turn, utterance))

    async def _settle_interrupted(self, turn: _Turn) -> None:
        """Stop the interrupted reply and keep only what the page played of it."""
        if turn.stop_sent:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(turn.stopped), _STOP_ACK_TIMEOUT_S)
        turn.settled = True
        heard = turn.played_s
        if turn.task is not None and not turn.task.done():
            turn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn.task
        # Whether the reply reached the history decides, not whether its task is still
        # running: it may be past that point, still sending `reply_end`.
        if turn.committed:
            if self.history and isinstance(self.history[-1], AIMessage) and turn.pcm:
                self.history[-1] = _truncate(self.history[-1], heard)
        else:
            base = turn.state_messages if turn.state_messages is not None else self.history
            partial = _partial_reply(turn, heard)
            self.history = [*_answered(base), *([partial] if partial is not None else [])]
        logger.debug("session %s: turn %d interrupted at %.2f s", self.id, turn.number, heard)

    async def _run_turn(self, turn: _Turn, utterance: bytes) -> None:
        seconds = len(utterance) / 2 / self._rate
        await self.send({"type": "utterance", "turn": turn.number, "seconds": round(seconds, 3)})
        wav = pcm16_to_wav(utterance, sample_rate=self._rate)
        question = HumanMessage(content=[dict(audio_block_from_bytes(wav, "audio/wav"))])
        self.history = _recent([*self.history, question], self._max_turns)
        config: RunnableConfig = {
            **self._config,
            "callbacks": [*_callbacks(self._config), _Relay(self, turn), self.cost],
        }
        try:
            if self._is_chat_model:
                reply = await self.agent.ainvoke(self.history, config)
                self.history = [*self.history, reply]
                turn.committed = True
            else:
                turn.state_messages = list(self.history)
                async for state in self.agent.astream(
                    {"messages": self.history}, config, stream_mode="values"
                ):
                    if isinstance(state, dict) and isinstance(state.get("messages"), list):
                        turn.state_messages = list(state["messages"])
                self.history = turn.state_messages
                turn.committed = True
        except asyncio.CancelledError:
            raise
        except Exception as err:
            logger.exception("session %s: turn %d failed", self.id, turn.number)
            await self.send({"type": "error", "turn": turn.number, "message": str(err)})
        await self.send(
            {
                "type": "reply_end",
                "turn": turn.number,
                "audio_bytes": len(turn.pcm),
                "session_cost": self.cost.total_cost,
            }
        )
        if not turn.pcm:
            turn.finished_playing = True  # nothing for the page to play

    async def close(self) -> None:
        """The connection ended: stop the reply in progress and the conductor."""
        tasks = [self._conductor, self._turn.task if self._turn is not None else None]
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is None:
                continue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _answered(messages: list[BaseMessage]) -> list[BaseMessage]:
    """Drop a trailing tool call whose results never came (the run was cancelled in the tool).

    The API refuses an assistant tool call that is not followed by every tool result.
    """
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, AIMessage) and message.tool_calls:
            wanted = {call["id"] for call in message.tool_calls}
            got = {getattr(m, "tool_call_id", None) for m in messages[i + 1 :]}
            return messages if wanted <= got else messages[:i]
        if isinstance(message, HumanMessage):
            break
    return messages


def _recent(history: list[BaseMessage], turns: int | None) -> list[BaseMessage]:
    """The last `turns` turns: each user question re-sends its audio, so old ones cost."""
    if turns is None:
        return history
    starts = [i for i, m in enumerate(history) if isinstance(m, HumanMessage)]
    return history[starts[-turns] :] if len(starts) > turns else history


def _callbacks(config: RunnableConfig) -> list[Any]:
    callbacks = config.get("callbacks")
    if callbacks is None:
        return []
    if isinstance(callbacks, list):
        return list(callbacks)
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.handlers)
    return [callbacks]  # a single handler


def _partial_reply(turn: _Turn, heard_s: float) -> AIMessage | None:
    """What the user heard of a reply cut off while it was still being generated.

    The transcript streams ahead of the speech, so the audio received so far cannot give
    the speaking rate: the words are cut at `truncate_to_heard`'s average rate instead.
    """
    if not turn.pcm and not turn.transcript:
        return None
    heard = _truncate(AIMessage(content=turn.transcript), heard_s)
    if not heard.text:
        return None  # nothing was heard: the model must not think it said anything
    content: list[str | dict[str, Any]] = [{"type": "text", "text": heard.text}]
    if turn.pcm:
        cut = bytes(turn.pcm[: round(heard_s * turn.sample_rate) * 2])
        wav = pcm16_to_wav(cut, sample_rate=turn.sample_rate)
        content.append(dict(audio_block_from_bytes(wav, "audio/wav")))
    return AIMessage(content=content, response_metadata=heard.response_metadata)


def _truncate(message: AIMessage, heard_s: float) -> AIMessage:
    from langchain_openrouter_audio.voice.truncate import truncate_to_heard

    return truncate_to_heard(message, heard_s)
