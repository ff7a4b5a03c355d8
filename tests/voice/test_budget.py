"""The spending limit over real sockets, with espeak-ng speech: calls cut short count.

A user who keeps interrupting never lets a reply finish, so no call reports its cost in
its stream; OpenRouter bills what each one generated all the same. The test server bills
a cut stream for the share of its events it sent, and records it for `GET /generation`,
where the cost handler looks it up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from langchain_openrouter_audio.testing import OpenRouterTestServer, speech_pcm16, speech_reply
from langchain_openrouter_audio.testing._wire import Rendering
from langchain_openrouter_audio.voice import PcmSource, VoiceSession
from tests._helpers import HAS_ESPEAK, Line, make_llm

from .conftest import silence

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")

RATE = 16000
LONG = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west, "
    "and it will stay that way until the evening, when clouds come in from the sea."
)
QUESTIONS = (
    "What is the weather in Paris?",
    "Wait, what about tomorrow?",
    "And the day after that?",
    "Thank you, that is all.",
)
FULL_COST = 1.0  # what a reply that plays out would cost
STREAMED = 12  # events each reply streams before it pauses (until the user cuts in)


def long_reply(pcm: bytes) -> Any:
    # Transcript and speech interleaved, 100 ms of speech an event; after STREAMED events
    # the model "thinks" for 30 s, long past the user's interruption.
    return speech_reply(
        pcm,
        LONG,
        cost=FULL_COST,
        interleave=True,
        text_piece_chars=30,
        audio_piece_bytes=4800,
        event_delay_s=0.05,
        stall_after=STREAMED,
        stall_s=30.0,
    )


async def test_a_user_who_keeps_interrupting_reaches_the_spending_limit(
    openrouter_server: OpenRouterTestServer,
) -> None:
    reply_pcm = speech_pcm16(LONG)
    spoken = {"model": "m", "modalities": ["text", "audio"]}
    events = len(Rendering(long_reply(reply_pcm), spoken, "gen-1-a", 1).stream_chunks())
    cut_cost = FULL_COST * STREAMED / events  # what each interrupted call is billed
    # One interrupted call stays under the limit; the second one reaches it.
    limit = 1.5 * cut_cost
    for _ in QUESTIONS:
        openrouter_server.enqueue(long_reply(reply_pcm))
    stream = silence(500)
    for question in QUESTIONS:  # each one 2.5 s after the last: over the paused reply
        stream += speech_pcm16(question, sample_rate=RATE) + silence(2500)
    line = Line(stream)

    async def paced() -> AsyncIterator[bytes]:
        async for chunk in line._chunks():
            await asyncio.sleep(0.02)
            yield chunk

    session = VoiceSession(
        make_llm(openrouter_server),
        source=PcmSource(paced(), sample_rate=RATE, realtime=True),
        sink=line.sink(),
        max_cost_usd=limit,
    )
    summary = await session.run()

    assert session.ended is not None
    assert session.ended.reason == "spending limit reached"
    chats = [r for r in openrouter_server.requests if r.path.endswith("/chat/completions")]
    # Two questions were answered until the user cut in; the third was refused.
    assert len(chats) == 2
    assert [t.interrupted for t in summary.turns] == [True, True]
    records = [openrouter_server.generation(g) for g in list(openrouter_server._generations)]
    assert [(r["cancelled"], r["total_cost"]) for r in records if r] == [
        (True, pytest.approx(cut_cost)),
        (True, pytest.approx(cut_cost)),
    ]
    usage = summary.usage
    assert usage.successful_requests == 0  # no reply ever reported its cost in its stream
    assert usage.cut_short_requests == 2
    assert summary.total_cost == pytest.approx(2 * cut_cost)
    assert summary.total_cost >= limit
