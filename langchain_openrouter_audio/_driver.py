"""The stream driver: one reply's whole life, from raw chunks to LangChain output.

`ReplyDriver` feeds the HTTP client's batches of chunks to the assembler,
decides when the reply is complete, attaches the partial reply to a failure,
flushes what is held back, and emits what LangChain wants: `SpeechChunk`s
(for `stream()`, the callbacks and LangGraph's messages mode), content-block
protocol events (`stream_events(version="v3")`), and the final `AIMessage`.
`steps()` and `asteps()` are its sync and async faces; the chat model's hooks
only iterate them.

Each network read becomes at most one chunk, so a burst of events costs one
chunk, not one per event, and no latency is added. Each PCM byte is decoded
once; a chunk's base64 is the text it arrived as whenever that text falls on
a whole 6-byte boundary, else the re-cut bytes are encoded once, and handlers
get the bytes from the chunk itself.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils._merge import merge_dicts
from pydantic import PrivateAttr

from langchain_openrouter_audio._assembler import Delta, ReplyAssembler
from langchain_openrouter_audio._client import AsyncChunkStream, ChunkStream
from langchain_openrouter_audio.chunks import join_chunks
from langchain_openrouter_audio.errors import IncompleteStreamError, OpenRouterError, StreamError

__all__ = ["ReplyDriver", "SpeechChunk", "Step"]

logger = logging.getLogger("langchain_openrouter_audio")

# 6 = lcm(3, 2): a multiple of 3 bytes makes unpadded base64 that concatenates
# cleanly, and a multiple of 2 keeps every chunk whole 16-bit samples.
_SLICE = 6
_TEXT_INDEX = 0
_AUDIO_INDEX = 1
# Above this much speech, building the final message leaves the event loop.
_THREAD_BYTES = 2 * 1024 * 1024


class SpeechChunk(ChatGenerationChunk):
    """A streamed chunk that also carries its speech as PCM bytes.

    Handlers read `pcm` instead of decoding the block's base64 again.
    Adding a list of chunks (what langchain-core does once a stream ends, to
    tell `on_llm_end` the whole reply) costs no per-chunk work when the list
    is exactly what the driver emitted: the driver kept the running sum.
    """

    _pcm: bytes = PrivateAttr(default=b"")
    _sum: _RunningSum | None = PrivateAttr(default=None)

    @property
    def pcm(self) -> bytes:
        """The chunk's speech: raw PCM16 mono, whole samples."""
        return self._pcm

    def __add__(self, other: Any) -> ChatGenerationChunk:
        if isinstance(other, list) and all(isinstance(o, ChatGenerationChunk) for o in other):
            chunks = [self, *other]
            messages = [c.message for c in chunks]
            if all(isinstance(m, AIMessageChunk) for m in messages):
                infos = [o.generation_info for o in other if o.generation_info]
                info = merge_dicts(self.generation_info or {}, *infos)
                if self._sum is not None and self._sum.covers(chunks):
                    message = self._sum.message()
                    self._sum.release()  # once is all core asks; drop the references
                else:
                    message = join_chunks(messages)
                return ChatGenerationChunk(message=message, generation_info=info or None)
        return super().__add__(other)


class _RunningSum:
    """The sum of the chunks a driver emitted, kept as they go out.

    Equal to adding the chunks with `+` (one block per index, growing strings
    joined, tool-call fragments merged by index), built in O(1) per chunk so
    that the end of a long stream does not hold the event loop.
    """

    def __init__(self) -> None:
        # Parallel lists, not a list of tuples: one tracked container fewer per chunk.
        self._chunks: list[SpeechChunk] = []
        self._messages: list[AIMessageChunk] = []
        self._contents: list[Any] = []
        self._text: list[str] = []
        self._blocks: dict[int, dict[str, Any]] = {}
        self._grown: dict[tuple[int, str], list[str]] = {}
        self._calls: dict[int, dict[str, Any]] = {}
        self._args: dict[int, list[str]] = {}
        self._last: AIMessageChunk | None = None
        self._list_content = False

    def add(self, chunk: SpeechChunk) -> None:
        message = chunk.message
        assert isinstance(message, AIMessageChunk)
        self._list_content = isinstance(message.content, list)
        self._chunks.append(chunk)
        self._messages.append(message)
        self._contents.append(message.content)
        chunk._sum = self
        if isinstance(message.content, str):
            self._text.append(message.content)
        else:
            for block in message.content:
                assert isinstance(block, dict)
                index = block["index"]
                known = self._blocks.setdefault(index, {})
                for key, value in block.items():
                    if key in ("text", "base64"):
                        self._grown.setdefault((index, key), []).append(value)
                    else:
                        known.setdefault(key, value)
        for fragment in message.tool_call_chunks:
            index = fragment["index"]
            assert isinstance(index, int)
            call = self._calls.setdefault(index, {"name": None, "id": None})
            call["name"] = call["name"] or fragment["name"]
            call["id"] = call["id"] or fragment["id"]
            self._args.setdefault(index, []).append(fragment["args"] or "")
        if message.chunk_position == "last":
            self._last = message

    def release(self) -> None:
        for chunk in self._chunks:
            chunk._sum = None
        self._chunks, self._messages, self._contents = [], [], []

    def covers(self, chunks: list[ChatGenerationChunk]) -> bool:
        """Whether `chunks` are exactly the emitted ones, unchanged since."""
        return len(chunks) == len(self._chunks) and all(
            chunk is own and chunk.message is message and message.content is content
            for chunk, own, message, content in zip(
                chunks, self._chunks, self._messages, self._contents, strict=True
            )
        )

    def message(self) -> AIMessageChunk:
        content: str | list[dict[str, Any]]
        if self._list_content:
            content = []
            for index, block in self._blocks.items():
                grown = {k: "".join(v) for (i, k), v in self._grown.items() if i == index}
                content.append({**block, **grown})
        else:
            content = "".join(self._text)
        last = self._last
        first = self._messages[0]
        return AIMessageChunk(
            content=content,  # type: ignore[arg-type]
            id=first.id,
            tool_call_chunks=[
                tool_call_chunk(
                    name=call["name"], args="".join(self._args[i]), id=call["id"], index=i
                )
                for i, call in self._calls.items()
            ],
            usage_metadata=last.usage_metadata if last else None,
            response_metadata=last.response_metadata if last else {},
            chunk_position="last" if last else None,
        )


class Step(NamedTuple):
    """What one network read (or the end of the reply) produced."""

    chunk: SpeechChunk | None
    events: list[dict[str, Any]]


class _PcmSlicer:
    """Cuts a PCM byte stream on 6-byte boundaries, carrying the remainder."""

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def take(self, pcm: bytes, b64: str | None) -> tuple[bytes, str]:
        """The whole slices now available, with their base64 (reused when it can be)."""
        # Reused only when unpadded: a relay's superfluous `=` would sit mid-stream once joined.
        if not self._carry and b64 is not None and len(pcm) % _SLICE == 0 and b64[-1:] != "=":
            return pcm, b64
        data = self._carry + pcm if self._carry else pcm
        cut = len(data) - len(data) % _SLICE
        self._carry = data[cut:]
        return data[:cut], base64.b64encode(data[:cut]).decode("ascii") if cut else ""

    def flush(self) -> tuple[bytes, str]:
        rest, self._carry = self._carry, b""
        return rest, base64.b64encode(rest).decode("ascii") if rest else ""


class ReplyDriver:
    """Drives one reply: raw chunks in; chunks, events, callbacks and the message out.

    Args:
        assembler: keeps the reply's parts.
        message_id: the id every chunk, event and the final message carry
            (one id per run, or LangGraph shows a reply twice).
        chunks: build `SpeechChunk`s (for `stream()` and handlers).
        summed: keep the running sum of the chunks (for `stream()`, whose
            chunks core adds up when the stream ends).
        events: build content-block protocol events.
        redact: removes the API key from an error's server-sent text.
        on_cut: told, when the reply ends before its last step went out (cancelled,
            or failed mid-stream), the generation id and the cost (`usage.cost`,
            None when the usage chunk never came), so a cut call is still counted.
    """

    def __init__(
        self,
        assembler: ReplyAssembler,
        *,
        message_id: str | None = None,
        chunks: bool = False,
        summed: bool = False,
        events: bool = False,
        redact: Callable[[OpenRouterError], Any] = lambda err: err,
        on_cut: Callable[[str | None, float | None], None] | None = None,
    ) -> None:
        self.asm = assembler
        self._on_cut = on_cut
        self._message_id = message_id
        self._chunks = chunks
        self._events = events
        self._redact = redact
        self._slicer = _PcmSlicer()
        self._audio_started = False
        self._sum = _RunningSum() if summed else None
        # Content-block protocol state.
        self._started = False
        self._next_index = 0
        self._text_index: int | None = None
        self._audio_index: int | None = None
        self._tool_index: dict[int, int] = {}

    # -- the two faces -------------------------------------------------------

    def steps(
        self, stream: ChunkStream, run_manager: CallbackManagerForLLMRun | None = None
    ) -> Iterator[Step]:
        """Drive a sync stream to its end, notifying `run_manager` of each chunk."""
        delivered = False
        try:
            try:
                try:
                    for batch in stream:
                        step, error = self._feed(batch)
                        if step is not None:
                            yield _notify(step, run_manager)
                        if error is not None:
                            raise error
                except IncompleteStreamError as err:
                    self._unless_finished(err)
                last = self._end(stream.done)
            except StreamError as err:
                self._fail(err)
                if (rest := self._rest()) is not None:
                    yield _notify(rest, run_manager)
                raise
            yield _notify(last, run_manager)
            delivered = True
        finally:
            try:
                stream.close()
            finally:
                if not delivered:
                    self._cut()

    async def asteps(
        self, stream: AsyncChunkStream, run_manager: AsyncCallbackManagerForLLMRun | None = None
    ) -> AsyncIterator[Step]:
        """Async `steps`."""
        delivered = False
        try:
            try:
                try:
                    async for batch in stream:
                        step, error = self._feed(batch)
                        if step is not None:
                            yield await _anotify(step, run_manager)
                        if error is not None:
                            raise error
                except IncompleteStreamError as err:
                    self._unless_finished(err)
                if self._events and (stream.done or self.asm.complete):
                    await self.amessage()  # built once, off the loop; the finish events reuse it
                last = self._end(stream.done)
            except StreamError as err:
                await self._in_worker(self._fail, err)
                if (rest := self._rest()) is not None:
                    yield await _anotify(rest, run_manager)
                raise
            yield await _anotify(last, run_manager)
            delivered = True
        finally:
            try:
                await stream.aclose()
            finally:
                if not delivered:
                    self._cut()

    def whole(self, reply: dict[str, Any]) -> AIMessage:
        """The message of a non-streamed reply."""
        try:
            self.asm.feed(reply)
        except StreamError as err:
            self._fail(err)
            raise
        self.asm.done = True
        return self.message()

    def message(self) -> AIMessage:
        """The final reply (built once)."""
        message: AIMessage = self.asm.finish()
        if self._message_id is not None:
            message.id = self._message_id
        return message

    async def amessage(self) -> AIMessage:
        """`message()`, built off the event loop when the reply is long."""
        message: AIMessage = await self._in_worker(self.message)
        return message

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Tens of MB of base64 take tens of ms: too long to hold the event loop.
        if self.asm.speech.size > _THREAD_BYTES:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    # -- the protocol --------------------------------------------------------

    def _feed(self, batch: list[dict[str, Any]]) -> tuple[Step | None, StreamError | None]:
        """Feed one network read's chunks; a failure keeps what came before it."""
        delta = Delta()
        error: StreamError | None = None
        for raw in batch:
            try:
                self.asm.feed(raw, delta)
            except StreamError as err:
                error = err
                break
        return self._step(delta), error

    def _cut(self) -> None:
        """The reply ended before its last step went out: report what it cost, if known."""
        if self._on_cut is None:
            return
        gen_id = self.asm.metadata.get("id")
        cost = (self.asm.usage or {}).get("cost")
        known = cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        try:
            self._on_cut(gen_id if isinstance(gen_id, str) else None, known)
        except Exception:  # counting must never turn a cancellation into another error
            logger.exception("could not count the cost of a call cut short")

    def _unless_finished(self, err: IncompleteStreamError) -> None:
        """Re-raise a broken connection, unless the reply had already said it was finished."""
        if type(err) is not IncompleteStreamError or self.asm.finish_reason is None:
            raise err
        # A finish reason ends a reply as complete; only the usage chunk may be missing.
        logger.warning("the connection broke after the reply finished; keeping it (%s)", err)

    def _end(self, done: bool) -> Step:
        """The closing step, or `IncompleteStreamError` if the reply was cut."""
        self.asm.done = self.asm.done or done
        if not self.asm.complete:
            msg = "the stream ended without [DONE] or a finish reason; the reply is incomplete"
            raise IncompleteStreamError(msg)
        tail = Delta(text=self.asm.end_text())
        pcm, b64 = self._slicer.flush()
        return self._last(tail, pcm, b64)

    def _fail(self, err: StreamError) -> None:
        if err.partial is None:
            err.partial = self.message()
        self._redact(err)

    def _rest(self) -> Step | None:
        """What was held back (PCM for alignment), delivered before a failure is raised."""
        pcm, b64 = self._slicer.flush()
        return self._emit(Delta(), pcm, b64) if pcm else None

    def _step(self, delta: Delta) -> Step | None:
        if not (self._chunks or self._events):
            return None
        pcm, b64 = self._slicer.take(delta.pcm, delta.b64) if delta.pcm else (b"", "")
        if not (delta.text or pcm or delta.tool_calls):
            return None
        return self._emit(delta, pcm, b64)

    def _emit(self, delta: Delta, pcm: bytes, b64: str) -> Step:
        chunk = self._chunk(delta, pcm, b64) if self._chunks else None
        return Step(chunk, self._block_events(delta, b64) if self._events else [])

    def _last(self, delta: Delta, pcm: bytes, b64: str) -> Step:
        chunk: SpeechChunk | None = None
        if self._chunks:
            chunk = self._chunk(delta, pcm, b64, last=True)
        events: list[dict[str, Any]] = []
        if self._events:
            events = self._block_events(delta, b64)
            events.extend(self._finish_events())
        return Step(chunk, events)

    # -- chunks --------------------------------------------------------------

    def _chunk(self, delta: Delta, pcm: bytes, b64: str, *, last: bool = False) -> SpeechChunk:
        asm = self.asm
        content: str | list[dict[str, Any]] = delta.text
        if asm.list_content:
            content = []
            if delta.text:
                content.append({"type": "text", "text": delta.text, "index": _TEXT_INDEX})
            if pcm:
                block: dict[str, Any] = {"type": "audio", "base64": b64, "index": _AUDIO_INDEX}
                if not self._audio_started:
                    # Only once: chunk `+` concatenates strings, so a repeated
                    # mime_type or id would come out doubled.
                    self._audio_started = True
                    block["mime_type"] = asm.stream_mime_type
                    if asm.audio_id:
                        block["id"] = asm.audio_id
                content.append(block)
        closing: dict[str, Any] = {}
        if last:
            closing = {
                "usage_metadata": asm.usage_metadata(),
                "response_metadata": asm.response_metadata(),
                "chunk_position": "last",
            }
        message = AIMessageChunk(
            content=content,  # type: ignore[arg-type]
            id=self._message_id,
            tool_call_chunks=[
                tool_call_chunk(name=t["name"], args=t["args"], id=t["id"], index=t["index"])
                for t in delta.tool_calls
            ],
            **closing,
        )
        chunk = SpeechChunk(message=message)
        # Handlers hear PCM only: MP3 (or any container) is not samples to play.
        chunk._pcm = pcm if asm.encoded is None else b""
        if self._sum is not None:
            self._sum.add(chunk)
        return chunk

    # -- content-block protocol events ----------------------------------------

    def _claim(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _block_events(self, delta: Delta, b64: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            meta = {"provider": "openrouter"}
            if model := self.asm.metadata.get("model_name"):
                meta["model"] = model
            start = {"event": "message-start", "role": "ai", "id": self._message_id or ""}
            out.append({**start, "metadata": meta})
        if delta.text:
            if self._text_index is None:
                self._text_index = self._claim()
                out.append(_block_start(self._text_index, {"type": "text", "text": ""}))
            out.append(_block_delta(self._text_index, {"type": "text-delta", "text": delta.text}))
        if b64:
            if self._audio_index is None:
                self._audio_index = self._claim()
                skeleton: dict[str, Any] = {"type": "audio", "mime_type": self.asm.stream_mime_type}
                if self.asm.audio_id:
                    skeleton["id"] = self.asm.audio_id
                out.append(_block_start(self._audio_index, skeleton))
            data = {"type": "data-delta", "data": b64, "encoding": "base64"}
            out.append(_block_delta(self._audio_index, data))
        for fragment in delta.tool_calls:
            index = self._tool_index.get(fragment["index"])
            if index is None:
                index = self._tool_index[fragment["index"]] = self._claim()
                skeleton = {
                    "type": "tool_call_chunk",
                    "id": fragment["id"],
                    "name": fragment["name"],
                    "args": "",
                    "index": fragment["index"],
                }
                out.append(_block_start(index, skeleton))
            if args := fragment["args"]:
                out.append(_block_delta(index, {"type": "tool-call-delta", "args": args}))
        return out

    def _finish_events(self) -> list[dict[str, Any]]:
        """Finalize every block, then close the message."""
        asm = self.asm
        message = self.message()
        out = []
        if self._text_index is not None:
            out.append(_block_finish(self._text_index, {"type": "text", "text": asm.text}))
        if self._audio_index is not None:
            audio = [b for b in message.content if isinstance(b, dict) and b["type"] == "audio"]
            out.extend(_block_finish(self._audio_index, block) for block in audio)
        calls = asm.finalized_tool_calls()
        for stream_index, wire_index in self._tool_index.items():
            if (call := calls.get(stream_index)) is not None:
                out.append(_block_finish(wire_index, call))
        finish: dict[str, Any] = {"event": "message-finish", "metadata": message.response_metadata}
        if message.usage_metadata:
            finish["usage"] = dict(message.usage_metadata)
        out.append(finish)
        return out


def _notify(step: Step, run_manager: CallbackManagerForLLMRun | None) -> Step:
    """Hand a step's chunk to the run's callbacks (audio handlers, LangGraph)."""
    if run_manager is not None and step.chunk is not None:
        run_manager.on_llm_new_token(step.chunk.message.text, chunk=step.chunk)
    return step


async def _anotify(step: Step, run_manager: AsyncCallbackManagerForLLMRun | None) -> Step:
    if run_manager is not None and step.chunk is not None:
        await run_manager.on_llm_new_token(step.chunk.message.text, chunk=step.chunk)
    return step


def _block_start(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-start", "index": index, "content": content}


def _block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-delta", "index": index, "delta": delta}


def _block_finish(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"event": "content-block-finish", "index": index, "content": content}
