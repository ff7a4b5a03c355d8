"""What a conversation cost, summed from OpenRouter's own `usage.cost` of each reply.

A call cut short (cancelled by a barge-in or a timeout, or failed mid-stream) never
gets the stream's last chunk, which holds `usage.cost`, yet OpenRouter bills what it
generated until the connection closed. The chat model reports such a call to the
handler (`count_cut_short`), which looks its generation up (`GET /generation?id=`) in
the background and adds the billed `total_cost` when it arrives, a moment later.

```python
from langchain_openrouter_audio import ChatOpenRouterAudio, get_openrouter_callback

with get_openrouter_callback() as cb:
    ChatOpenRouterAudio().invoke("Say hi")
print(cb.total_cost, cb.completion_audio_tokens)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_openrouter_audio._generation_cost import CostLookup

if TYPE_CHECKING:
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun

    from langchain_openrouter_audio._client import CompletionsClient

__all__ = ["OpenRouterCallbackHandler", "get_openrouter_callback"]

logger = logging.getLogger("langchain_openrouter_audio")

# Generation ids remembered to count each generation once; old ones are forgotten.
_REMEMBERED_IDS = 4096
# A lookup's own requests are bounded by the client's timeout; this bounds the whole lookup.
_LOOKUP_GRACE_S = 5.0


class OpenRouterCallbackHandler(BaseCallbackHandler):
    """Sums tokens and OpenRouter's billed cost over every model run it sees.

    Cost comes only from `response_metadata["cost"]` (OpenRouter's `usage.cost`, in
    credits/USD): no price table that could go stale; a run that fails after it was billed
    adds the cost its error's partial reply carries. A run counts once, when it ends, so
    streamed, async, batched, concurrent and agent-graph calls all add up; a lock makes the
    sums safe across threads (sync callbacks of async runs run in worker threads).

    A call cut short after OpenRouter started it counts too, in `cut_short_requests`
    (not in `successful_requests`): its billed `total_cost` is looked up in the
    background and added when it arrives, usually within a second or two (at most the
    model's `cost_wait_s`). One that cannot be found in that time is logged and counted
    in `runs_without_cost`. `pending_lookups` says how many are still under way, and
    `await wait_for_lookups()` waits for those of the running event loop (a sync call's
    lookup runs in a thread; those of blocks nested in this one count too).
    Each generation id counts once.
    """

    # Sync handler in async runs: run in the event loop thread, no executor hop needed.
    run_inline = True

    def __init__(self, parent: OpenRouterCallbackHandler | None = None) -> None:
        super().__init__()
        self._parent = parent
        self._lock = threading.Lock()
        self.total_cost = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.total_tokens = 0
        self.prompt_audio_tokens = 0
        self.completion_audio_tokens = 0
        self.successful_requests = 0
        self.runs_without_cost = 0
        self.cut_short_requests = 0
        """Calls cut short after OpenRouter started them; their cost is looked up."""
        # Generation ids whose cost was counted, or is being looked up (oldest first).
        self._seen: OrderedDict[str, bool] = OrderedDict()
        self._lookups: set[asyncio.Task[None]] = set()
        self._threads: set[threading.Thread] = set()
        # Per event loop: ends that loop's lookups when it shuts down (see `_end_with_loop`).
        self._loop_guards: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (
            f"Tokens Used: {self.total_tokens}\n"
            f"\tPrompt Tokens: {self.prompt_tokens} (audio: {self.prompt_audio_tokens})\n"
            f"\tCompletion Tokens: {self.completion_tokens} "
            f"(audio: {self.completion_audio_tokens})\n"
            f"Successful Requests: {self.successful_requests}\n"
            f"Requests Cut Short: {self.cut_short_requests}\n"
            f"Total Cost (USD): ${self.total_cost:.6f}"
        )

    @property
    def always_verbose(self) -> bool:
        return True

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        message = _first_message(response)
        usage: dict[str, Any] = dict(getattr(message, "usage_metadata", None) or {})
        meta: dict[str, Any] = dict(getattr(message, "response_metadata", None) or {})
        cost = meta.get("cost")
        cost = cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        gen_id = meta.get("id")
        counted_already = False
        if isinstance(gen_id, str) and gen_id and cost is not None:
            with self._lock:
                counted_already = bool(self._seen.get(gen_id))  # as a call cut short
                if not counted_already:
                    self._remember(gen_id, counted=True)
        input_details = usage.get("input_token_details") or {}
        output_details = usage.get("output_token_details") or {}
        self._add(
            0.0 if counted_already else cost,
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            int(usage.get("total_tokens") or 0),
            int(input_details.get("audio") or 0),
            int(output_details.get("audio") or 0),
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A run that failed after it was billed still costs: a stream cut midway, or a long
        text whose later piece failed, carries what it was billed for in its `partial`
        (`response_metadata["cost"]`). It is added to `total_cost`, not to the requests,
        unless its generation was counted already (reported as a call cut short)."""
        partial = getattr(error, "partial", None)
        meta = getattr(partial, "response_metadata", None) or {}
        cost = meta.get("cost")
        if not isinstance(cost, (int, float)) or isinstance(cost, bool):
            return
        gen_id = meta.get("id")
        if isinstance(gen_id, str) and gen_id:
            with self._lock:
                if self._seen.get(gen_id):
                    return
                self._remember(gen_id, counted=True)
        self._add_cost(float(cost))

    def _add_cost(self, cost: float) -> None:
        with self._lock:
            self.total_cost += cost
        if self._parent is not None:
            self._parent._add_cost(cost)

    def _add(
        self,
        cost: float | None,
        prompt: int,
        completion: int,
        total: int,
        p_audio: int,
        c_audio: int,
    ) -> None:
        with self._lock:
            self.successful_requests += 1
            if cost is None:
                self.runs_without_cost += 1
            else:
                self.total_cost += float(cost)
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.total_tokens += total
            self.prompt_audio_tokens += p_audio
            self.completion_audio_tokens += c_audio
        if self._parent is not None:
            # An enclosing block counts the calls of the blocks nested in it.
            self._parent._add(cost, prompt, completion, total, p_audio, c_audio)

    # -- calls cut short ---------------------------------------------------------------

    def count_cut_short(
        self,
        gen_id: str,
        cost: float | None,
        lookup: CostLookup,
        wait_s: float,
    ) -> None:
        """Count a call that ended without its usage chunk: its cost if known, else
        OpenRouter's record of generation `gen_id`, looked up in the background with
        `lookup` (waiting up to `wait_s` for the record to appear). Never blocks."""
        with self._lock:
            if not gen_id or gen_id in self._seen:
                return
            self._remember(gen_id, counted=cost is not None)
        if cost is not None:
            self._add_cut_short(cost)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and getattr(loop, "_asyncgens_shutdown_called", False):
            # Cut as the loop closes its async generators (an `astream` left open when
            # `asyncio.run` returns): a lookup started now would outlive the loop.
            logger.warning("the cost of %s was not looked up: its event loop is ending", gen_id)
            self._looked_up(gen_id, None)
            return
        # The enclosing blocks hold the lookup too: their `pending_lookups` and
        # `wait_for_lookups()` cover the cost that will reach them.
        holders = list(self._lineage())
        if loop is not None:
            self._guard(loop)
            task = loop.create_task(self._alook_up(gen_id, lookup, wait_s))
            for holder in holders:
                holder._lookups.add(task)
                task.add_done_callback(holder._lookups.discard)
        else:
            thread = threading.Thread(
                target=self._look_up, args=(gen_id, lookup), daemon=True, name="cost-lookup"
            )
            for holder in holders:
                with holder._lock:
                    holder._threads.add(thread)
            thread.start()

    def _lineage(self) -> Iterator[OpenRouterCallbackHandler]:
        """This handler and those of the blocks around it, innermost first."""
        handler: OpenRouterCallbackHandler | None = self
        while handler is not None:
            yield handler
            handler = handler._parent

    @property
    def pending_lookups(self) -> int:
        """Costs of calls cut short that are still being looked up."""
        with self._lock:
            threads = sum(1 for thread in self._threads if thread.is_alive())
        # A copy (atomic): the loop's thread adds and drops tasks while another reads.
        return threads + sum(1 for task in self._lookups.copy() if not task.done())

    async def wait_for_lookups(self) -> None:
        """Wait until the lookups under way in this event loop have ended (each is bounded)."""
        loop = asyncio.get_running_loop()
        while pending := {t for t in self._lookups.copy() if not t.done() and t.get_loop() is loop}:
            await asyncio.wait(pending)

    def _guard(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tie this handler's lookups to `loop`'s life: a call cut short as the loop shuts
        down (`asyncio.run` cancelling what still runs) starts its lookup after the loop
        stopped cancelling tasks, and it would be left pending on a closed loop.

        The guard is an async generator started here, synchronously, so the loop knows of
        it before that: `loop.shutdown_asyncgens()` closes it, and it ends the lookups."""
        if loop in self._loop_guards:
            return
        guard = self._end_with_loop()
        with contextlib.suppress(StopIteration):  # runs to its `yield`
            guard.asend(None).send(None)  # registers it with the running loop
        self._loop_guards[loop] = guard

    async def _end_with_loop(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            loop = asyncio.get_running_loop()
            self._loop_guards.pop(loop, None)
            ending = {t for t in self._lookups.copy() if t.get_loop() is loop and not t.done()}
            for task in ending:
                task.cancel()
            if ending:
                await asyncio.wait(ending)

    async def _alook_up(self, gen_id: str, lookup: CostLookup, wait_s: float) -> None:
        try:
            cost = await asyncio.wait_for(lookup.aget(gen_id), wait_s + _LOOKUP_GRACE_S)
        except TimeoutError:
            logger.warning("the cost of %s was not available within %ss", gen_id, wait_s)
            cost = None
        except asyncio.CancelledError:
            # Its event loop is ending: the call was billed, at a cost nobody will know.
            logger.warning("the cost of %s was not looked up: its event loop ended", gen_id)
            self._looked_up(gen_id, None)
            raise
        except Exception as err:  # e.g. the app closed its own client meanwhile
            _lookup_failed(gen_id, err)
            cost = None
        self._looked_up(gen_id, cost)

    def _look_up(self, gen_id: str, lookup: CostLookup) -> None:
        try:
            try:
                cost = lookup.total([gen_id])
            except Exception as err:  # e.g. the app closed its own client meanwhile
                _lookup_failed(gen_id, err)
                cost = None
            self._looked_up(gen_id, cost)
        finally:
            for holder in self._lineage():
                with holder._lock:
                    holder._threads.discard(threading.current_thread())

    def _looked_up(self, gen_id: str, cost: float | None) -> None:
        with self._lock:
            if self._seen.get(gen_id):  # its usage arrived after all, and was counted
                return
            self._remember(gen_id, counted=True)
        self._add_cut_short(cost)

    def _remember(self, gen_id: str, *, counted: bool) -> None:
        """Note `gen_id` (under the lock); the oldest ids are forgotten past a bound."""
        self._seen[gen_id] = counted
        self._seen.move_to_end(gen_id)
        while len(self._seen) > _REMEMBERED_IDS:
            self._seen.popitem(last=False)

    def _add_cut_short(self, cost: float | None) -> None:
        with self._lock:
            self.cut_short_requests += 1
            if cost is None:
                self.runs_without_cost += 1
            else:
                self.total_cost += float(cost)
        if self._parent is not None:
            self._parent._add_cut_short(cost)


def _lookup_failed(gen_id: str, err: Exception) -> None:
    """Log a lookup that failed unexpectedly (its type only: no text that could quote a
    header); its call counts as without cost."""
    logger.warning("could not look up the cost of %s: %s", gen_id, type(err).__name__)


def listening_cost_handlers(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> list[OpenRouterCallbackHandler]:
    """The cost handlers a model run reports to: the run's own, else the handler of the
    enclosing `get_openrouter_callback()` block (langchain-core's `stream()`/`astream()`
    hand `_stream` no run manager; the block is then seen through its context variable)."""
    found = run_manager.handlers if run_manager is not None else []
    handlers = [h for h in found if isinstance(h, OpenRouterCallbackHandler)]
    if not handlers and (current := current_cost_handler()) is not None:
        handlers.append(current)
    return handlers


def report_cut_short(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    client: CompletionsClient,
    wait_s: float,
) -> Callable[[str | None, float | None], None] | None:
    """What a model calls when its call ends without the usage chunk: every cost handler
    of the run counts the generation, looked up through `client` waiting up to `wait_s`
    (None, and nothing made, when no cost handler listens: the usual call)."""
    handlers = listening_cost_handlers(run_manager)
    if not handlers:
        return None
    lookup = CostLookup(client, wait_s)

    def report(gen_id: str | None, cost: float | None) -> None:
        if gen_id:
            for handler in handlers:
                handler.count_cut_short(gen_id, cost, lookup, wait_s)

    return report


def _first_message(response: LLMResult) -> BaseMessage | None:
    # One request's usage is shared by all its generations: count it once.
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if isinstance(message, BaseMessage):
                return message
    return None


_current: ContextVar[OpenRouterCallbackHandler | None] = ContextVar(
    "openrouter_callback", default=None
)
# LangChain adds the handler in the context var to every run configured inside the block
# (threads of `batch` and tasks of `abatch`/agents copy the context, so they count too).
register_configure_hook(_current, inheritable=True)


def current_cost_handler() -> OpenRouterCallbackHandler | None:
    """The handler of the innermost `get_openrouter_callback()` block around this code."""
    return _current.get()


@contextmanager
def get_openrouter_callback() -> Iterator[OpenRouterCallbackHandler]:
    """Count tokens (audio too) and OpenRouter's cost of every model call in the block.

    Like `get_openai_callback`: `total_cost`, `prompt_tokens`, `completion_tokens`,
    `total_tokens`, `prompt_audio_tokens`, `completion_audio_tokens`,
    `successful_requests`; calls cut short (cancelled, or failed mid-stream) count in
    `cut_short_requests`, their cost added a moment later, once looked up. An enclosing
    block also counts the calls of blocks nested in it.

    ```python
    from langchain_openrouter_audio import ChatOpenRouterAudio, get_openrouter_callback

    with get_openrouter_callback() as cb:
        ChatOpenRouterAudio().invoke("Say hi")
    print(f"${cb.total_cost:.4f}, {cb.completion_audio_tokens} audio tokens")
    ```
    """
    handler = OpenRouterCallbackHandler(parent=_current.get())
    token = _current.set(handler)
    try:
        yield handler
    finally:
        _current.reset(token)
