"""get_openrouter_callback over the local server's real sockets, every way a model is called.

Each request is billed a distinct power of two, so the summed cost says exactly which
runs were counted: a run counted twice or missed gives another number.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

from langchain_openrouter_audio import ChatOpenRouterAudio, get_openrouter_callback
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    speech_reply,
    tone_pcm16,
    tool_call_reply,
)
from tests._helpers import make_llm, summed


class Billing:
    """Answers every request with speech billed 2**-k for the k-th request."""

    def __init__(self, server: OpenRouterTestServer) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self.billed: list[float] = []
        server.responder = self

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            cost = 2.0 ** -next(self._count)
            self.billed.append(cost)
        return speech_reply(tone_pcm16(0.5), "Sure, here you go.", cost=cost)


def usage_sum(messages: list[BaseMessage], key: str, detail: str | None = None) -> int:
    total = 0
    for message in messages:
        usage: Any = getattr(message, "usage_metadata", None) or {}
        total += int((usage.get(detail) or {}).get("audio", 0) if detail else usage.get(key, 0))
    return total


def check(cb: Any, billing: Billing, replies: list[BaseMessage]) -> None:
    assert cb.successful_requests == len(billing.billed) == len(replies)
    assert cb.total_cost == sum(billing.billed)  # exact: distinct powers of two
    assert cb.prompt_tokens == usage_sum(replies, "input_tokens") > 0
    assert cb.completion_tokens == usage_sum(replies, "output_tokens") > 0
    assert cb.total_tokens == cb.prompt_tokens + cb.completion_tokens
    assert cb.completion_audio_tokens == usage_sum(replies, "", "output_token_details") > 0
    assert cb.runs_without_cost == 0


def test_invoke_stream_and_batch(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    billing = Billing(openrouter_server)
    with get_openrouter_callback() as cb:
        replies: list[BaseMessage] = [llm.invoke("one")]
        replies.append(summed(list(llm.stream("two"))))
        replies += llm.batch(["three", "four", "five"], config={"max_concurrency": 3})
    check(cb, billing, replies)
    llm.invoke("after the block")
    assert cb.successful_requests == 5


async def test_async_and_concurrent_tasks(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    billing = Billing(openrouter_server)

    async def streamed(prompt: str) -> BaseMessage:
        return summed([chunk async for chunk in llm.astream(prompt)])

    with get_openrouter_callback() as cb:
        replies = list(
            await asyncio.gather(
                *(llm.ainvoke(f"q{i}") for i in range(4)), *(streamed(f"s{i}") for i in range(4))
            )
        )
        replies += await llm.abatch(["b1", "b2"])
    check(cb, billing, replies)


def test_nested_blocks_and_tasks_in_separate_blocks(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    billing = Billing(openrouter_server)
    with get_openrouter_callback() as outer:
        first = llm.invoke("outer")
        with get_openrouter_callback() as inner:
            second = llm.invoke("inner")
    assert inner.successful_requests == 1
    assert inner.total_cost == billing.billed[1]
    check(outer, billing, [first, second])

    async def one_block(prompt: str) -> tuple[float, int]:
        with get_openrouter_callback() as cb:
            await llm.ainvoke(prompt)
            await llm.ainvoke(prompt)
        return cb.total_cost, cb.successful_requests

    async def both() -> list[tuple[float, int]]:
        try:
            return list(await asyncio.gather(one_block("a"), one_block("b")))
        finally:
            await llm.aclose()  # this loop's client, before asyncio.run closes the loop

    results = asyncio.run(both())
    # Each task's block saw only its own two calls, though they interleaved.
    assert [n for _, n in results] == [2, 2]
    assert sum(c for c, _ in results) == sum(billing.billed[2:])


def test_agent_graph_counts_each_model_call(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    from langchain.agents import create_agent

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"Sunny in {city}"

    openrouter_server.enqueue(tool_call_reply("get_weather", {"city": "Paris"}, cost=0.25))
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.5), "It is sunny.", cost=0.125))
    agent = create_agent(llm, [get_weather])
    with get_openrouter_callback() as cb:
        state = agent.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    replies = [m for m in state["messages"] if isinstance(m, AIMessage)]
    assert len(replies) == 2
    assert cb.successful_requests == 2
    assert cb.total_cost == 0.375
    assert cb.prompt_tokens == usage_sum(replies, "input_tokens")
    assert cb.completion_audio_tokens == usage_sum(replies, "", "output_token_details") > 0


def test_missing_cost_is_counted_as_such(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.2), "Hi", usage=usage))
    with get_openrouter_callback() as cb:
        llm.invoke("hi")
    assert (cb.successful_requests, cb.total_cost, cb.runs_without_cost) == (1, 0.0, 1)
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (5, 7, 12)
    assert "Successful Requests: 1" in repr(cb)


@pytest.mark.parametrize("n", [16])
def test_many_threads_share_one_handler(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer, n: int
) -> None:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    billing = Billing(openrouter_server)
    with get_openrouter_callback() as cb, ThreadPoolExecutor(8) as pool:
        # Plain threads do not inherit context vars: copy it, as LangChain's own pool does.
        futures = [
            pool.submit(contextvars.copy_context().run, llm.invoke, f"t{i}") for i in range(n)
        ]
        replies = [f.result() for f in futures]
    check(cb, billing, replies)


# -- calls cut short ------------------------------------------------------------------------


def slow_reply(cost: float, *, stall_after: int) -> Reply:
    """A long spoken reply billed `cost` in full, that pauses after `stall_after` events."""
    return speech_reply(
        tone_pcm16(3.0),
        "A long answer, piece by piece. " * 4,
        cost=cost,
        audio_piece_bytes=4800,
        stall_after=stall_after,
        stall_s=30.0,
    )


def chat_generations(server: OpenRouterTestServer) -> list[dict[str, Any]]:
    gen_ids = list(server._generations)
    records = [server.generation(gen_id) for gen_id in gen_ids]
    return [r for r in records if r is not None and r["api_type"] == "completions"]


async def cut_mid_stream(llm: ChatOpenRouterAudio) -> None:
    """Stream a long reply and cancel it while the model pauses mid-stream (a barge-in)."""
    streaming = asyncio.Event()

    async def listen() -> None:
        async for _ in llm.astream("Tell me a long story"):
            streaming.set()

    task = asyncio.create_task(listen())
    await streaming.wait()
    await asyncio.sleep(0.3)  # the reply now pauses after its first events
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_stream_is_counted_once_from_its_generation_record(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue(slow_reply(0.5, stall_after=6))
    openrouter_server.generation_misses = 2  # the record shows up a moment late
    with get_openrouter_callback() as outer, get_openrouter_callback() as cb:
        await cut_mid_stream(llm)  # while it pauses after its 6th event
        assert cb.total_cost == 0.0  # not known yet: looked up in the background
        assert cb.pending_lookups == 1
        await cb.wait_for_lookups()
    (record,) = chat_generations(openrouter_server)
    assert record["cancelled"] is True
    assert record["streamed"] is True
    billed = record["total_cost"]
    assert 0 < billed < 0.5  # 6 events of the reply's 20 or so
    assert cb.total_cost == billed
    assert (cb.cut_short_requests, cb.successful_requests, cb.runs_without_cost) == (1, 0, 0)
    assert (outer.total_cost, outer.cut_short_requests) == (billed, 1)  # counted once
    lookups = [r for r in openrouter_server.requests if r.path.startswith("/api/v1/generation")]
    assert len(lookups) >= 3  # two 404s (or more, before the server noticed), the record
    assert "Requests Cut Short: 1" in repr(cb)

    # The same generation reported again (a second cut report, or its usage after all)
    # adds nothing.
    gen_id = record["id"]
    cb.count_cut_short(gen_id, None, lookup=None, wait_s=0.0)  # type: ignore[arg-type]
    cb.count_cut_short(gen_id, 0.25, lookup=None, wait_s=0.0)  # type: ignore[arg-type]
    assert (cb.total_cost, cb.cut_short_requests, cb.pending_lookups) == (billed, 1, 0)


async def test_a_reply_left_after_its_last_chunk_counts_its_usage_once(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    """The usage came, but the caller stopped reading before the stream's end: the known
    cost counts once, with no lookup."""
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.5), "Short.", cost=0.125))
    with get_openrouter_callback() as cb:
        stream = llm.astream("hi")
        async for chunk in stream:
            if chunk.chunk_position == "last":
                break
        await stream.aclose()  # type: ignore[attr-defined]
        # The model's own stream is closed by the event loop's finalizer, a moment later.
        for _ in range(100):
            if cb.cut_short_requests:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    assert cb.total_cost == 0.125
    assert (cb.cut_short_requests, cb.successful_requests) == (1, 0)
    assert not [r for r in openrouter_server.requests if "generation" in r.path]


async def test_a_lookup_that_never_finds_the_record_counts_the_call_as_without_cost(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm = make_llm(openrouter_server, cost_wait_s=0.3)
    openrouter_server.enqueue(slow_reply(0.5, stall_after=4))
    openrouter_server.generation_misses = 1000  # never there
    streaming = asyncio.Event()

    class FirstToken(AsyncCallbackHandler):
        async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            streaming.set()

    with get_openrouter_callback() as cb:
        config: Any = {"callbacks": [FirstToken()]}
        task = asyncio.create_task(llm.ainvoke("Tell me a long story", config))
        await streaming.wait()
        await asyncio.sleep(0.3)  # streamed 4 events, now paused
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await cb.wait_for_lookups()
    assert (cb.total_cost, cb.cut_short_requests, cb.runs_without_cost) == (0.0, 1, 1)
    missing = [r for r in caplog.records if "was not available within" in r.getMessage()]
    assert len(missing) == 1  # logged once
    await llm.aclose()


def test_a_sync_stream_left_early_is_counted_from_a_worker_thread(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    import time

    openrouter_server.enqueue(slow_reply(0.5, stall_after=5))
    with get_openrouter_callback() as cb:
        stream = llm.stream("Tell me a long story")
        for count, _ in enumerate(stream, 1):
            if count == 2:
                break
        stream.close()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while cb.pending_lookups and time.monotonic() < deadline:
            time.sleep(0.05)
    (record,) = chat_generations(openrouter_server)
    assert record["cancelled"] is True
    assert 0 < cb.total_cost == record["total_cost"] < 0.5
    assert cb.cut_short_requests == 1


def test_a_failed_run_and_its_cut_report_count_its_generation_once() -> None:
    """A stream that fails after its usage came is reported as cut short (with the known
    cost) and fails with a partial reply carrying that cost: counted once."""
    from langchain_core.outputs import LLMResult

    from langchain_openrouter_audio import IncompleteStreamError
    from langchain_openrouter_audio.cost import OpenRouterCallbackHandler

    handler = OpenRouterCallbackHandler()
    error = IncompleteStreamError("cut")
    error.partial = AIMessage("Hel", response_metadata={"id": "gen-1-a", "cost": 0.25})
    handler.count_cut_short("gen-1-a", 0.25, lookup=None, wait_s=0.0)  # type: ignore[arg-type]
    handler.on_llm_error(error, run_id=None, response=LLMResult(generations=[]))  # type: ignore[arg-type]
    assert (handler.total_cost, handler.cut_short_requests) == (0.25, 1)
    # The other order too.
    other = OpenRouterCallbackHandler()
    other.on_llm_error(error, run_id=None)  # type: ignore[arg-type]
    other.count_cut_short("gen-1-a", 0.25, lookup=None, wait_s=0.0)  # type: ignore[arg-type]
    assert (other.total_cost, other.cut_short_requests) == (0.25, 0)


async def test_an_enclosing_block_waits_for_the_lookups_of_a_block_nested_in_it(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    """The cost of a call cut short inside a nested block reaches the enclosing block too:
    the enclosing block's `pending_lookups` and `wait_for_lookups()` cover it."""
    openrouter_server.enqueue(slow_reply(0.5, stall_after=6))
    openrouter_server.generation_misses = 2
    with get_openrouter_callback() as outer:
        with get_openrouter_callback() as inner:
            await cut_mid_stream(llm)
        assert (outer.pending_lookups, inner.pending_lookups) == (1, 1)
        await outer.wait_for_lookups()
        (record,) = chat_generations(openrouter_server)
        assert 0 < record["total_cost"] < 0.5
        assert (outer.total_cost, outer.cut_short_requests) == (record["total_cost"], 1)
        assert (inner.total_cost, outer.pending_lookups) == (record["total_cost"], 0)


def test_an_enclosing_block_sees_the_lookup_threads_of_a_block_nested_in_it(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    openrouter_server.enqueue(slow_reply(0.5, stall_after=5))
    openrouter_server.generation_misses = 3  # the record shows up after a few looks
    with get_openrouter_callback() as outer:
        with get_openrouter_callback() as inner:
            stream = llm.stream("Tell me a long story")
            for count, _ in enumerate(stream, 1):
                if count == 2:
                    break
            stream.close()  # type: ignore[attr-defined]
        assert outer.pending_lookups == inner.pending_lookups == 1
        for thread in list(inner._threads):
            thread.join(10)
        assert outer.pending_lookups == 0
    (record,) = chat_generations(openrouter_server)
    assert outer.total_cost == inner.total_cost == record["total_cost"] > 0


def test_a_lookup_under_way_when_its_event_loop_ends_ends_with_it(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    """`asyncio.run` returns while a stream is still playing: the stream is cancelled as the
    loop shuts down, and the lookup it starts then ends with the loop (the call counted
    without cost) instead of being left pending on a closed loop, with its request started
    after the loop closed its async generators."""
    import warnings

    openrouter_server.enqueue(slow_reply(0.5, stall_after=6))
    openrouter_server.generation_misses = 1000  # the lookup would poll for cost_wait_s

    async def main() -> None:
        streaming = asyncio.Event()

        async def listen() -> None:
            async for _ in llm.astream("Tell me a long story"):
                streaming.set()

        asyncio.create_task(listen())  # noqa: RUF006 - asyncio.run cancels it at the end
        await streaming.wait()
        await asyncio.sleep(0.3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with get_openrouter_callback() as cb:
            asyncio.run(main())
    assert cb.pending_lookups == 0
    assert (cb.cut_short_requests, cb.runs_without_cost, cb.total_cost) == (1, 1, 0.0)
    late = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not late, [str(w.message) for w in late]


async def test_a_lookup_whose_client_was_closed_counts_the_call_without_cost(
    openrouter_server: OpenRouterTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The app closes its own injected client while a lookup polls for the record: the
    call still counts (as without cost), and the failure is logged, not left in a task."""
    import httpx

    looked = asyncio.Event()

    async def on_response(response: httpx.Response) -> None:
        if "generation" in response.request.url.path:
            looked.set()

    http = httpx.AsyncClient(event_hooks={"response": [on_response]})
    llm = make_llm(openrouter_server, http_async_client=http)
    openrouter_server.enqueue(slow_reply(0.5, stall_after=4))
    openrouter_server.generation_misses = 1000
    with get_openrouter_callback() as cb:
        await cut_mid_stream(llm)
        # Closed between two looks: the first one answered 404, the next comes 0.1 s later.
        await looked.wait()
        await asyncio.sleep(0.03)
        await http.aclose()
        await cb.wait_for_lookups()
    assert (cb.cut_short_requests, cb.runs_without_cost, cb.pending_lookups) == (1, 1, 0)
    assert [r for r in caplog.records if "could not look up the cost" in r.getMessage()]


def test_a_lookup_thread_whose_client_was_closed_counts_the_call_without_cost(
    openrouter_server: OpenRouterTestServer,
) -> None:
    import httpx

    http = httpx.Client()
    llm = make_llm(openrouter_server, http_client=http)
    openrouter_server.enqueue(slow_reply(0.5, stall_after=5))
    openrouter_server.generation_misses = 1000
    with get_openrouter_callback() as cb:
        stream = llm.stream("Tell me a long story")
        for count, _ in enumerate(stream, 1):
            if count == 2:
                break
        http.close()  # the app closes its own client: the lookup cannot be sent
        stream.close()  # type: ignore[attr-defined]
        for thread in list(cb._threads):
            thread.join(10)
    assert (cb.cut_short_requests, cb.runs_without_cost, cb.pending_lookups) == (1, 1, 0)


async def test_pending_lookups_can_be_read_from_another_thread_while_lookups_come_and_go() -> None:
    """A status page in another thread reads `pending_lookups` while the event loop starts
    and ends lookups: no "Set changed size during iteration"."""
    import time

    from langchain_openrouter_audio.cost import OpenRouterCallbackHandler

    class Quick:
        async def aget(self, gen_id: str) -> float:
            await asyncio.sleep(0)
            return 0.001

    handler = OpenRouterCallbackHandler()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                _ = handler.pending_lookups
            except RuntimeError as err:
                errors.append(err)
                return

    reader = threading.Thread(target=read)
    reader.start()
    count = 0
    deadline = time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline and not errors:
            for _ in range(200):
                count += 1
                handler.count_cut_short(f"gen-{count}", None, Quick(), 0.0)  # type: ignore[arg-type]
            await asyncio.sleep(0)
        await handler.wait_for_lookups()
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert handler.cut_short_requests == count
    assert handler.total_cost == pytest.approx(count * 0.001)


def test_a_stream_left_open_when_its_event_loop_ends_starts_no_lookup(
    llm: ChatOpenRouterAudio, openrouter_server: OpenRouterTestServer
) -> None:
    """An `astream` left open (not closed, still referenced) when `asyncio.run` returns is
    closed by the loop's `shutdown_asyncgens()`: a lookup started then would outlive the
    loop, so the call counts at once, without cost."""
    import warnings

    openrouter_server.enqueue(slow_reply(0.5, stall_after=6))
    openrouter_server.generation_misses = 1000
    left_open: list[Any] = []

    async def main() -> None:
        stream = llm.astream("Tell me a long story")
        async for _ in stream:
            break
        left_open.append(stream)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with get_openrouter_callback() as cb:
            asyncio.run(main())
    left_open.clear()
    assert cb.pending_lookups == 0
    assert (cb.cut_short_requests, cb.runs_without_cost, cb.total_cost) == (1, 1, 0.0)
    late = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not late, [str(w.message) for w in late]
    assert not [r for r in openrouter_server.requests if "generation" in r.path]
