"""What a conversation cost, summed from OpenRouter's own `usage.cost` of each reply.

```python
from langchain_openrouter_audio import ChatOpenRouterAudio, get_openrouter_callback

with get_openrouter_callback() as cb:
    ChatOpenRouterAudio().invoke("Say hi")
print(cb.total_cost, cb.completion_audio_tokens)
```
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

__all__ = ["OpenRouterCallbackHandler", "get_openrouter_callback"]


class OpenRouterCallbackHandler(BaseCallbackHandler):
    """Sums tokens and OpenRouter's billed cost over every model run it sees.

    Cost comes only from `response_metadata["cost"]` (OpenRouter's `usage.cost`, in
    credits/USD): no price table that could go stale; a run that fails after it was billed
    adds the cost its error's partial reply carries. A run counts once, when it ends, so
    streamed, async, batched, concurrent and agent-graph calls all add up; a lock makes the
    sums safe across threads (sync callbacks of async runs run in worker threads).
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

    def __repr__(self) -> str:
        return (
            f"Tokens Used: {self.total_tokens}\n"
            f"\tPrompt Tokens: {self.prompt_tokens} (audio: {self.prompt_audio_tokens})\n"
            f"\tCompletion Tokens: {self.completion_tokens} "
            f"(audio: {self.completion_audio_tokens})\n"
            f"Successful Requests: {self.successful_requests}\n"
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
        input_details = usage.get("input_token_details") or {}
        output_details = usage.get("output_token_details") or {}
        self._add(
            cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            int(usage.get("total_tokens") or 0),
            int(input_details.get("audio") or 0),
            int(output_details.get("audio") or 0),
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A run that failed after it was billed still costs: a stream cut midway, or a long
        text whose later piece failed, carries what it was billed for in its `partial`
        (`response_metadata["cost"]`). It is added to `total_cost`, not to the requests."""
        partial = getattr(error, "partial", None)
        cost = (getattr(partial, "response_metadata", None) or {}).get("cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
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
    `successful_requests`. An enclosing block also counts the calls of blocks nested in it.

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
