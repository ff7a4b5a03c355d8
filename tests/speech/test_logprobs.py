"""`logprobs=True` and `top_logprobs=N` come back in `response_metadata["logprobs"]`."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage

from langchain_openrouter_audio.testing import OpenRouterTestServer, text_reply
from tests._helpers import make_llm, summed

TEXT = "The capital of France is Paris."


def _check(logprobs: dict[str, Any], top: int) -> None:
    content = logprobs["content"]
    assert "".join(entry["token"] for entry in content) == TEXT
    for entry in content:
        assert entry["logprob"] < 0
        assert bytes(entry["bytes"]).decode() == entry["token"]
        assert len(entry["top_logprobs"]) == top
        assert entry["top_logprobs"][0]["token"] == entry["token"]


@pytest.mark.parametrize("streaming", [False, True])
def test_invoke(openrouter_server: OpenRouterTestServer, streaming: bool) -> None:
    llm = make_llm(
        openrouter_server,
        model="openai/gpt-4o",
        logprobs=True,
        top_logprobs=3,
        streaming=streaming,
    )
    openrouter_server.enqueue(text_reply(TEXT))
    reply = llm.invoke("Capital of France?")
    _check(reply.response_metadata["logprobs"], 3)
    body = openrouter_server.requests[-1].json
    assert (body["logprobs"], body["top_logprobs"], body["stream"]) == (True, 3, streaming)


async def test_summed_stream_chunks(openrouter_server: OpenRouterTestServer) -> None:
    llm = make_llm(openrouter_server, model="openai/gpt-4o", logprobs=True, top_logprobs=2)
    openrouter_server.enqueue(text_reply(TEXT), text_reply(TEXT))
    chunks = list(llm.stream("Capital of France?"))
    total = summed(chunks)
    _check(total.response_metadata["logprobs"], 2)  # each token once, not twice
    achunks = [c async for c in llm.astream("Capital of France?")]
    assert summed(achunks).response_metadata["logprobs"] == total.response_metadata["logprobs"]


def test_no_logprobs_unless_asked(openrouter_server: OpenRouterTestServer) -> None:
    llm = make_llm(openrouter_server, model="openai/gpt-4o")
    openrouter_server.enqueue(text_reply(TEXT))
    reply = llm.invoke("Capital of France?")
    assert isinstance(reply, AIMessage)
    assert "logprobs" not in reply.response_metadata
