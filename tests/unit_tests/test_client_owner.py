"""The models that own a pooled client keep langchain-core's own set-up.

`ClientOwner` holds private attributes; pydantic then gives it a `model_post_init` of its
own, which, left undeclared, hides langchain-core's: the one that records the package
versions every trace carries (`metadata["lc_versions"]`). Checked on real runs.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.version import VERSION

from langchain_openrouter_audio import OpenRouterSpeech
from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_reply, tone_pcm16
from tests._helpers import make_llm


class _RunMetadata(BaseCallbackHandler):
    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.metadata.append(dict(kwargs.get("metadata") or {}))


def test_chat_model_runs_carry_the_langchain_versions(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue(speech_reply(tone_pcm16(0.2, 440.0), "Hi."))
    llm = make_llm(openrouter_server, metadata={"team": "voice"})
    seen = _RunMetadata()
    assert llm.invoke("hi", config={"callbacks": [seen]}).text == "Hi."
    llm.close()
    (metadata,) = seen.metadata
    assert metadata["team"] == "voice"  # the user's metadata is kept beside it
    assert metadata["lc_versions"]["langchain-core"] == VERSION


def test_speech_runs_carry_the_langchain_versions(
    openrouter_server: OpenRouterTestServer,
) -> None:
    tts = OpenRouterSpeech(
        base_url=openrouter_server.base_url, api_key=openrouter_server.api_key, timeout=10
    )
    seen = _RunMetadata()
    reply = tts.invoke("Your table is booked.", config={"callbacks": [seen]})
    tts.close()
    assert reply.text == "Your table is booked."
    (metadata,) = seen.metadata
    assert metadata["lc_versions"]["langchain-core"] == VERSION
