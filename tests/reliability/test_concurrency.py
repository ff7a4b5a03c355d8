"""Many calls at once on one model instance: every reply reaches its own caller, intact."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    rate_limit_reply,
    speech_reply,
    tone_pcm16,
)
from tests._helpers import AsyncRecorder, Recorder, make_llm, reply_pcm

N_MAX = 200


def _last_user_text(request: RecordedRequest) -> str:
    messages = request.json["messages"]
    user = [m for m in messages if m["role"] == "user"][-1]
    content = user["content"]
    return content if isinstance(content, str) else content[0]["text"]


def _expected(i: int) -> tuple[str, bytes]:
    # A distinct transcript and tone per request; 0.05 s keeps 200 replies cheap.
    return f"reply #{i} — ünïcode ✓", tone_pcm16(0.05, 200.0 + 7.0 * i)


@pytest.fixture(scope="module")
def expected() -> dict[str, tuple[str, bytes]]:
    return {f"req-{i}": _expected(i) for i in range(N_MAX)}


def _install(server: OpenRouterTestServer, expected: dict[str, tuple[str, bytes]]) -> None:
    def respond(request: RecordedRequest) -> Reply:
        transcript, pcm = expected[_last_user_text(request)]
        return speech_reply(pcm, transcript, audio_piece_bytes=480, interleave=True)

    server.responder = respond


@pytest.mark.parametrize("n", [50, 200])
async def test_concurrent_ainvoke_none_mixed_none_lost(
    openrouter_server: OpenRouterTestServer, expected: dict[str, tuple[str, bytes]], n: int
) -> None:
    _install(openrouter_server, expected)
    llm = make_llm(openrouter_server, timeout=30)
    keys = [f"req-{i}" for i in range(n)]
    replies = await asyncio.gather(*(llm.ainvoke(k) for k in keys))
    for key, msg in zip(keys, replies, strict=True):
        transcript, pcm = expected[key]
        assert msg.text == transcript, key
        assert reply_pcm(msg) == pcm, key
    assert len(openrouter_server.requests) == n
    await llm.aclose()


async def test_concurrent_ainvoke_each_handler_hears_only_its_reply(
    openrouter_server: OpenRouterTestServer, expected: dict[str, tuple[str, bytes]]
) -> None:
    _install(openrouter_server, expected)
    llm = make_llm(openrouter_server, timeout=30)
    keys = [f"req-{i}" for i in range(50)]
    handlers = [AsyncRecorder() for _ in keys]
    replies = await asyncio.gather(
        *(llm.ainvoke(k, config={"callbacks": [h]}) for k, h in zip(keys, handlers, strict=True))
    )
    for key, handler, msg in zip(keys, handlers, replies, strict=True):
        transcript, pcm = expected[key]
        assert msg.text == transcript
        assert handler.pcm == pcm, key
        assert "".join(handler.text) == transcript, key
        assert len(handler.ends) == 1
    await llm.aclose()


async def test_concurrent_ainvoke_with_rate_limits_and_retries(
    openrouter_server: OpenRouterTestServer, expected: dict[str, tuple[str, bytes]]
) -> None:
    """Every third request is rate-limited once: retries must not cross replies."""
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def respond(request: RecordedRequest) -> Reply:
        key = _last_user_text(request)
        with lock:
            attempts[key] = attempts.get(key, 0) + 1
            first = attempts[key] == 1
        if first and int(key.split("-")[1]) % 3 == 0:
            return rate_limit_reply(0.05)
        transcript, pcm = expected[key]
        return speech_reply(pcm, transcript, audio_piece_bytes=480)

    openrouter_server.responder = respond
    llm = make_llm(openrouter_server, timeout=30)
    keys = [f"req-{i}" for i in range(60)]
    replies = await asyncio.gather(*(llm.ainvoke(k) for k in keys))
    for key, msg in zip(keys, replies, strict=True):
        transcript, pcm = expected[key]
        assert msg.text == transcript
        assert reply_pcm(msg) == pcm
    assert len(openrouter_server.requests) == 60 + 20
    assert all(attempts[k] == (2 if int(k.split("-")[1]) % 3 == 0 else 1) for k in keys)
    await llm.aclose()


def test_concurrent_invoke_from_threads(
    openrouter_server: OpenRouterTestServer, expected: dict[str, tuple[str, bytes]]
) -> None:
    _install(openrouter_server, expected)
    llm = make_llm(openrouter_server, timeout=30)
    keys = [f"req-{i}" for i in range(50)]
    handlers = {k: Recorder() for k in keys}

    def call(key: str):
        return llm.invoke(key, config={"callbacks": [handlers[key]]})

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(call, keys))
    for key, msg in zip(keys, replies, strict=True):
        transcript, pcm = expected[key]
        assert msg.text == transcript
        assert reply_pcm(msg) == pcm
        assert handlers[key].pcm == pcm
    assert len(openrouter_server.requests) == 50
    llm.close()


def test_threads_racing_to_the_first_call_share_one_client() -> None:
    llm = ChatOpenRouterAudio(api_key="k", base_url="http://127.0.0.1:9/api/v1")
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def first_use() -> None:
        barrier.wait()
        seen.append(id(llm.client.client))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    llm.close()
