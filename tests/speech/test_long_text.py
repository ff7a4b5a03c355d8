"""A text over a TTS model's input cap: split at sentence ends, spoken request by request.

Against the local server over real sockets, which refuses an ``input`` over its cap
the way a provider does; each piece's speech is a distinct espeak-ng clip, so order
and seams are checked sample for sample.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import sys
import time
import wave
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
import soundfile as sf
from langchain_core.messages import AIMessage

from langchain_openrouter_audio import (
    AudioCallbackHandler,
    BadRequestError,
    IncompleteStreamError,
    MalformedStreamError,
    OpenRouterSpeech,
    audio_bytes,
    audio_pcm,
    get_openrouter_callback,
)
from langchain_openrouter_audio._text_split import split_for_speech
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    Reply,
    error_reply,
    rate_limit_reply,
    raw_reply,
    speech_pcm16,
    text_reply,
)
from langchain_openrouter_audio.testing._audio_api import mp3_from_pcm
from langchain_openrouter_audio.voice.spoken_text import TextSpeaker
from tests._helpers import HAS_ESPEAK, make_llm, summed, summed_pcm

pytestmark = pytest.mark.skipif(not HAS_ESPEAK, reason="needs espeak-ng")

LIMIT = 2000  # OpenRouterSpeech's default max_input_chars
_SUBJECTS = ("The keeper", "His old cat", "A fishing boat", "The morning tide", "Every gull")
_ENDS = (
    "climbed the stairs of the lighthouse before dawn.",
    "watched the grey water turn silver under a low and patient sky!",
    "wondered whether the storm from the west would reach the harbour tonight?",
    "counted the ships that passed, one by one, and wrote each name in a book.",
)


def story(chars: int = 10_000) -> str:
    """Plain sentences, as an agent's long answer, at least `chars` characters long."""
    sentences: list[str] = []
    i = 0
    while len(" ".join(sentences)) < chars:
        sentences.append(f"{_SUBJECTS[i % 5]} {_ENDS[i % 4]}")
        i += 1
    return " ".join(sentences)


@functools.cache
def clip(index: int) -> bytes:
    """A distinct spoken clip per piece, cut to whole 6-byte slices (3 samples)."""
    pcm = speech_pcm16(f"Piece number {index + 1}.")
    return pcm[: len(pcm) - len(pcm) % 6]


def _model(server: OpenRouterTestServer, **kw: Any) -> OpenRouterSpeech:
    return OpenRouterSpeech(base_url=server.base_url, api_key=server.api_key, timeout=10, **kw)


def _speech_requests(server: OpenRouterTestServer) -> list[Any]:
    return [r for r in server.requests if r.path == "/api/v1/audio/speech"]


def _serve_pieces(server: OpenRouterTestServer, count: int, **kw: Any) -> bytes:
    """Queue one clip per piece; the concatenation the reply must hold."""
    server.enqueue_speech(*(Reply(pcm=clip(i), audio_piece_bytes=4801, **kw) for i in range(count)))
    return b"".join(clip(i) for i in range(count))


def _pcm(chunk: Any) -> bytes:
    """The PCM a streamed message chunk carries."""
    blocks = [b for b in chunk.content if isinstance(b, dict) and b.get("type") == "audio"]
    return b"".join(base64.b64decode(b["base64"]) for b in blocks)


class _Heard(AudioCallbackHandler):
    def __init__(self, server: OpenRouterTestServer) -> None:
        super().__init__()
        self.server = server
        self.pcm = b""
        self.requests_seen: list[tuple[int, int]] = []  # (bytes heard so far, requests sent)
        self.ended = 0

    def on_audio_chunk(self, chunk: bytes, *, sample_rate: int, **kwargs: Any) -> None:
        assert len(chunk) % 2 == 0
        self.pcm += chunk
        self.requests_seen.append((len(self.pcm), len(_speech_requests(self.server))))

    def on_audio_end(self, **kwargs: Any) -> None:
        self.ended += 1


# -- the split itself -------------------------------------------------------------------------


def test_the_split_ends_pieces_at_sentence_ends_and_keeps_every_word() -> None:
    text = story()
    pieces = split_for_speech(text, LIMIT)
    assert len(text) >= 10_000
    assert len(pieces) >= 5
    assert all(len(p) <= LIMIT and p[-1] in ".!?" for p in pieces)
    assert " ".join(pieces) == text
    # A sentence over the limit: clause ends, then between words; never inside a word.
    long_sentence = ", ".join(["and the tide came in slowly"] * 120) + "."
    cut = split_for_speech(long_sentence, 500)
    assert all(len(p) <= 500 and p.endswith((",", ".")) for p in cut)
    assert " ".join(cut) == long_sentence
    no_commas = " ".join(["seaweed"] * 400)
    cut = split_for_speech(no_commas, 300)
    assert all(len(p) <= 300 and set(p.split()) == {"seaweed"} for p in cut)
    # Only a single "word" over the limit is ever cut inside.
    assert split_for_speech("x" * 25 + " end.", 10) == ["x" * 10, "x" * 10, "xxxxx end."]
    # Paragraph ends are preferred to sentence ends when both fit.
    paragraphs = "First idea. Still first.\n\nSecond idea here. More of it."
    assert split_for_speech(paragraphs, 40) == [
        "First idea. Still first.",
        "Second idea here. More of it.",
    ]


# -- invoke --------------------------------------------------------------------------------------


def test_a_long_text_is_one_wav_spoken_over_several_requests(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story()
    pieces = split_for_speech(text, LIMIT)
    expected = _serve_pieces(openrouter_server, len(pieces))
    openrouter_server.speech_input_limit = 4096  # the provider refuses more
    tts = _model(openrouter_server, instructions="Calm.", voice="nova")
    try:
        with get_openrouter_callback() as cb:
            reply = tts.invoke(text)
    finally:
        tts.close()

    sent = _speech_requests(openrouter_server)
    assert [r.json["input"] for r in sent] == pieces
    assert len(sent) >= 3
    for request in sent:
        assert len(request.json["input"]) <= LIMIT
        assert re.search(r"[.!?]$", request.json["input"])
        body = {k: v for k, v in request.json.items() if k != "input"}
        assert body == {
            "model": "openai/gpt-4o-mini-tts-2025-12-15",
            "response_format": "pcm",
            "voice": "nova",
            "provider": {"options": {"openai": {"instructions": "Calm."}}},
        }
    assert reply.text == text
    # One WAV: one header, its sizes right, the pieces' samples back to back.
    (block,) = [b for b in reply.content if isinstance(b, dict) and b["type"] == "audio"]
    assert block["mime_type"] == "audio/wav"
    wav = base64.b64decode(block["base64"])
    assert wav.count(b"RIFF") == 1
    assert wav.count(b"WAVE") == 1
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() == len(expected) // 2
        assert w.readframes(w.getnframes()) == expected
    data, rate = sf.read(io.BytesIO(wav), dtype="int16")
    assert (rate, len(data)) == (24000, len(expected) // 2)
    assert data.tobytes() == expected
    assert audio_pcm(reply) == expected
    # Cost: every request's, summed, counted once for the one run.
    ids = reply.response_metadata["generation_ids"]
    assert len(ids) == len(pieces)
    assert reply.response_metadata["id"] == ids[0]
    records = [openrouter_server.generation(gen_id) for gen_id in ids]
    total = sum(r["total_cost"] for r in records if r is not None)
    assert len(records) == len(pieces)
    assert total > 0
    assert reply.response_metadata["cost"] == pytest.approx(total)
    assert cb.total_cost == pytest.approx(total)
    assert cb.successful_requests == 1


def test_a_long_mp3_is_one_stream_decoders_play_whole(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    pieces = split_for_speech(text, LIMIT)
    mp3s = [mp3_from_pcm(clip(i)) for i in range(len(pieces))]
    openrouter_server.enqueue_speech(*(Reply(pcm=m, audio_piece_bytes=1000) for m in mp3s))
    tts = _model(openrouter_server, response_format="mp3")
    try:
        reply = tts.invoke(text)
    finally:
        tts.close()
    assert len(_speech_requests(openrouter_server)) == len(pieces) >= 3
    mp3 = audio_bytes(reply)
    assert reply.content_blocks[-1]["mime_type"] == "audio/mpeg"
    # One ID3 tag in front, no Info frame stating one piece's length, no tag mid-stream.
    assert mp3[:3] == b"ID3"
    assert mp3.count(b"ID3") == 1
    assert b"Info" not in mp3
    assert b"Xing" not in mp3
    samples = sum(len(clip(i)) // 2 for i in range(len(pieces)))
    data, rate = sf.read(io.BytesIO(mp3), dtype="int16")
    assert rate == 24000
    # Each piece keeps its encoder delay and padding (under 0.1 s), nothing is lost.
    assert samples <= len(data) <= samples + len(pieces) * 2400
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(mp3)) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == len(data)


# -- streaming ------------------------------------------------------------------------------------


def test_the_pieces_stream_in_order_one_request_at_a_time(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story()
    pieces = split_for_speech(text, LIMIT)
    expected = _serve_pieces(openrouter_server, len(pieces))
    heard = _Heard(openrouter_server)
    tts = _model(openrouter_server)
    try:
        with get_openrouter_callback() as cb:
            chunks = list(tts.stream(text, config={"callbacks": [heard]}))
    finally:
        tts.close()
    assert chunks[0].text == text
    assert [c.chunk_position for c in chunks].count("last") == 1
    assert chunks[-1].chunk_position == "last"
    total = summed(chunks)
    assert total.text == text
    assert summed_pcm(total) == expected == heard.pcm
    assert heard.ended == 1
    # Sequential: while a piece's audio arrives, no request for a later piece is out.
    ends = [sum(len(clip(i)) for i in range(k + 1)) for k in range(len(pieces))]
    for heard_bytes, requests in heard.requests_seen:
        piece = next(k for k, end in enumerate(ends) if heard_bytes <= end)
        assert requests == piece + 1
    ids = chunks[-1].response_metadata["generation_ids"]
    assert len(ids) == len(pieces)
    total_cost = sum(openrouter_server.generation(i)["total_cost"] for i in ids)  # type: ignore[index]
    assert total_cost > 0
    assert chunks[-1].response_metadata["cost"] == pytest.approx(total_cost)
    assert cb.total_cost == pytest.approx(total_cost)


def test_stopping_early_sends_no_further_request(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    _serve_pieces(openrouter_server, len(split_for_speech(text, LIMIT)))
    tts = _model(openrouter_server)
    try:
        got = b""
        for chunk in tts.stream(text):
            got += _pcm(chunk)
            if len(got) >= len(clip(0)):  # the first piece is all heard: stop
                break
    finally:
        tts.close()
    assert got == clip(0)
    assert len(_speech_requests(openrouter_server)) == 1


async def test_async_stopping_early_sends_no_further_request(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    pieces = split_for_speech(text, LIMIT)
    expected = _serve_pieces(openrouter_server, len(pieces))
    tts = _model(openrouter_server)
    try:
        stream = tts.astream(text)
        async for chunk in stream:
            if _pcm(chunk):
                break
        await stream.aclose()  # type: ignore[attr-defined]
        assert len(_speech_requests(openrouter_server)) == 1
        openrouter_server.reset()
        expected = _serve_pieces(openrouter_server, len(pieces))
        reply = await tts.ainvoke(text)
        assert audio_pcm(reply) == expected
    finally:
        tts.close()
        await tts.aclose()


# -- failures ---------------------------------------------------------------------------------


def test_a_failed_second_piece_raises_with_the_first_pieces_audio(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    pieces = split_for_speech(text, LIMIT)
    openrouter_server.enqueue_speech(
        Reply(pcm=clip(0)), error_reply(400, "Provider returned error")
    )
    tts = _model(openrouter_server)
    try:
        with pytest.raises(IncompleteStreamError, match="piece 2 of") as err:
            list(tts.stream(text))
    finally:
        tts.close()
    assert err.value.status_code == 400
    assert isinstance(err.value.__cause__, BadRequestError)
    partial = err.value.partial
    assert partial is not None
    assert audio_pcm(partial) == clip(0)
    assert partial.response_metadata["unspoken_text"] == " ".join(pieces[1:])
    assert len(_speech_requests(openrouter_server)) == 2  # no third piece after the failure
    # The first piece was billed: its generation id is there to look its cost up.
    assert partial.response_metadata["generation_ids"][0].startswith("gen-")


async def test_a_cut_second_piece_keeps_what_arrived_and_is_not_repeated(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    openrouter_server.enqueue_speech(
        Reply(pcm=clip(0)), Reply(pcm=clip(1), audio_piece_bytes=4800, cut_after=1)
    )
    tts = _model(openrouter_server)
    try:
        with pytest.raises(IncompleteStreamError) as err:
            await tts.ainvoke(text)
    finally:
        tts.close()
        await tts.aclose()
    partial = err.value.partial
    assert partial is not None
    assert audio_pcm(partial) == clip(0) + clip(1)[:4800]
    # A piece that delivered audio is never sent again: no audio twice.
    assert len(_speech_requests(openrouter_server)) == 2


def _looked_up(server: OpenRouterTestServer) -> list[str]:
    """The generation ids whose cost was asked for, in order (repeats included)."""
    return [
        parse_qs(urlsplit(r.path).query)["id"][0]
        for r in server.requests
        if r.path.startswith("/api/v1/generation?")
    ]


def test_a_failed_later_piece_reports_what_the_pieces_before_it_cost(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    assert len(split_for_speech(text, LIMIT)) == 3
    openrouter_server.enqueue_speech(
        Reply(pcm=clip(0), cost=0.0011),
        Reply(pcm=clip(1), cost=0.0013),
        error_reply(400, "Provider returned error"),
    )
    tts = _model(openrouter_server)
    try:
        with get_openrouter_callback() as cb, pytest.raises(IncompleteStreamError) as err:
            list(tts.stream(text))
    finally:
        tts.close()
    partial = err.value.partial
    assert partial is not None
    assert audio_pcm(partial) == clip(0) + clip(1)
    ids = partial.response_metadata["generation_ids"]
    assert len(ids) == 2  # the refused piece has none
    assert sorted(_looked_up(openrouter_server)) == sorted(ids)
    # Billed, so reported as a complete reply's cost is: on the reply, and to the handler.
    assert partial.response_metadata["cost"] == pytest.approx(0.0011 + 0.0013)
    assert cb.total_cost == pytest.approx(0.0011 + 0.0013)
    assert cb.successful_requests == 0


async def test_a_cut_later_piece_reports_its_own_cost_too(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # The cut piece answered and streamed part of its audio: it was billed as well.
    openrouter_server.enqueue_speech(
        Reply(pcm=clip(0), cost=0.0011),
        Reply(pcm=clip(1), audio_piece_bytes=4800, cut_after=1, cost=0.0007),
    )
    tts = _model(openrouter_server, fetch_cost=True)
    try:
        with pytest.raises(IncompleteStreamError) as err:
            await tts.ainvoke(story(5000))
        partial = err.value.partial
        assert partial is not None
        assert audio_pcm(partial) == clip(0) + clip(1)[:4800]
        assert partial.response_metadata["cost"] == pytest.approx(0.0011 + 0.0007)
        # The same through astream, with a cost handler listening instead of fetch_cost.
        openrouter_server.reset()
        openrouter_server.enqueue_speech(
            Reply(pcm=clip(0), cost=0.0011),
            Reply(pcm=clip(1), audio_piece_bytes=4800, cut_after=1, cost=0.0007),
        )
        tts.fetch_cost = None
        got = b""
        with get_openrouter_callback() as cb, pytest.raises(IncompleteStreamError) as err:
            async for chunk in tts.astream(story(5000)):
                got += _pcm(chunk)
    finally:
        tts.close()
        await tts.aclose()
    assert got == clip(0) + clip(1)[:4800]
    assert err.value.partial is not None
    assert err.value.partial.response_metadata["cost"] == pytest.approx(0.0018)
    assert cb.total_cost == pytest.approx(0.0018)
    assert len(_looked_up(openrouter_server)) == 2


def test_a_failure_looks_up_no_cost_nobody_asked_for(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.enqueue_speech(Reply(pcm=clip(0)), error_reply(400, "Provider error"))
    tts = _model(openrouter_server)  # fetch_cost=None and no cost handler
    try:
        with pytest.raises(IncompleteStreamError) as err:
            tts.invoke(story(5000))
    finally:
        tts.close()
    assert err.value.partial is not None
    assert "cost" not in err.value.partial.response_metadata
    assert _looked_up(openrouter_server) == []


def test_a_piece_at_another_rate_is_never_joined(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # A later request served at 16 kHz (another provider, say) would play at the wrong
    # speed inside a 24 kHz reply: it stops there, with what came before it.
    other = raw_reply(
        speech_pcm16("Slower.", sample_rate=16000), content_type="audio/pcm;rate=16000"
    )
    openrouter_server.enqueue_speech(Reply(pcm=clip(0)), other)
    tts = _model(openrouter_server)
    try:
        with pytest.raises(MalformedStreamError, match=r"piece 2 of .* unlike") as err:
            tts.invoke(story(5000))
    finally:
        tts.close()
    assert err.value.partial is not None
    assert audio_pcm(err.value.partial) == clip(0)
    assert len(_speech_requests(openrouter_server)) == 2


def test_a_refused_piece_is_retried_before_any_of_its_audio(
    openrouter_server: OpenRouterTestServer,
) -> None:
    text = story(5000)
    pieces = split_for_speech(text, LIMIT)
    openrouter_server.enqueue_speech(Reply(pcm=clip(0)), rate_limit_reply(0))
    openrouter_server.enqueue_speech(*(Reply(pcm=clip(i)) for i in range(1, len(pieces))))
    tts = _model(openrouter_server)
    try:
        reply = tts.invoke(text)
    finally:
        tts.close()
    assert audio_pcm(reply) == b"".join(clip(i) for i in range(len(pieces)))
    inputs = [r.json["input"] for r in _speech_requests(openrouter_server)]
    assert inputs == [pieces[0], pieces[1], *pieces[1:]]  # only the refused one again


def test_unsplit_text_over_the_providers_cap_is_a_typed_error(
    openrouter_server: OpenRouterTestServer,
) -> None:
    openrouter_server.speech_input_limit = 4096
    text = story(5000)
    tts = _model(openrouter_server, max_input_chars=None)
    try:
        with pytest.raises(BadRequestError, match="maximum length 4096") as err:
            tts.invoke(text)
    finally:
        tts.close()
    assert err.value.status_code == 400
    assert err.value.metadata["provider_name"] == "OpenAI"
    (request,) = _speech_requests(openrouter_server)
    assert request.json["input"] == text
    # Split (the default), the same text goes through.
    openrouter_server.reset()
    openrouter_server.speech_input_limit = 4096
    _serve_pieces(openrouter_server, len(split_for_speech(text, LIMIT)))
    tts = _model(openrouter_server)
    try:
        assert tts.invoke(text).text == text
    finally:
        tts.close()
    assert all(len(r.json["input"]) <= LIMIT for r in _speech_requests(openrouter_server))


def test_the_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="max_input_chars"):
        OpenRouterSpeech(api_key="k", max_input_chars=0)
    assert OpenRouterSpeech(api_key="k").max_input_chars == LIMIT


# -- the voice loop: a text agent's reply, spoken sentence by sentence ------------------------


async def test_a_long_single_sentence_reply_is_spoken_whole_in_the_voice_loop(
    openrouter_server: OpenRouterTestServer,
) -> None:
    # The voice loop speaks each sentence on its own; a sentence with no clause mark
    # over the speech model's cap reaches it whole, and only it is split further.
    long_sentence = " ".join(["the tide kept rising over the old stone quay"] * 100) + "."
    answer = f"Here is the story. {long_sentence} That is all."
    pieces = split_for_speech(long_sentence, LIMIT)
    spoken = ["Here is the story.", *pieces, "That is all."]
    assert len(long_sentence) > 2 * LIMIT
    openrouter_server.enqueue(text_reply(answer, text_piece_chars=40))
    expected = _serve_pieces(openrouter_server, len(spoken))
    openrouter_server.speech_input_limit = 4096
    tts = _model(openrouter_server)
    agent = make_llm(openrouter_server, model="openai/gpt-4o")
    heard: list[bytes] = []
    done: list[AIMessage] = []

    async def on_audio(run_id: UUID, pcm: bytes, rate: int) -> None:
        assert rate == 24000
        heard.append(pcm)

    async def on_spoken(run_id: UUID, message: AIMessage, finished: bool) -> None:
        if finished:
            done.append(message)

    speaker = TextSpeaker(tts, on_audio, on_spoken)
    try:
        reply = await agent.ainvoke("Tell me a story.", config={"callbacks": [speaker]})
        await speaker.finish()
    finally:
        for model in (tts, agent):
            model.close()
            await model.aclose()
    assert reply.text == answer
    inputs = [r.json["input"] for r in _speech_requests(openrouter_server)]
    assert inputs == spoken  # one request per sentence; the long one in pieces, no more
    assert all(len(text) <= LIMIT for text in inputs)
    assert b"".join(heard) == expected
    (message,) = done
    assert message.text == answer
    assert audio_pcm(message) == expected


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The cost lookup's pauses, recorded instead of slept; every other sleep (the
    server's pacing) happens as it would."""
    pauses: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals["__name__"] == "langchain_openrouter_audio._generation_cost":
            pauses.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return pauses


def test_the_cost_wait_bounds_the_whole_lookup_not_each_piece(
    openrouter_server: OpenRouterTestServer, slept: list[float]
) -> None:
    # No generation record ever shows up: the lookup gives up after `cost_wait_s` in all,
    # however many requests the text took.
    text = story()
    pieces = split_for_speech(text, LIMIT)
    expected = _serve_pieces(openrouter_server, len(pieces))
    openrouter_server.generation_misses = 1_000
    tts = _model(openrouter_server, fetch_cost=True, cost_wait_s=1.0)
    try:
        reply = tts.invoke(text)
    finally:
        tts.close()
    assert audio_pcm(reply) == expected
    assert "cost" not in reply.response_metadata
    assert len(pieces) >= 5
    assert sum(slept) == pytest.approx(1.0)  # not 1.0 per piece
    looked_up = {
        parse_qs(urlsplit(r.path).query)["id"][0]
        for r in openrouter_server.requests
        if r.path.startswith("/api/v1/generation?")
    }
    assert looked_up == set(reply.response_metadata["generation_ids"])  # every piece's


def test_a_failures_cost_lookup_waits_no_longer_than_a_complete_replys(
    openrouter_server: OpenRouterTestServer, slept: list[float]
) -> None:
    # As for a complete reply: the records never show up, and the lookup of both pieces
    # gives up after `cost_wait_s` in all before the error is raised, with no cost.
    openrouter_server.generation_misses = 1_000
    openrouter_server.enqueue_speech(
        Reply(pcm=clip(0)), Reply(pcm=clip(1)), error_reply(400, "Provider returned error")
    )
    tts = _model(openrouter_server, fetch_cost=True, cost_wait_s=1.0)
    try:
        with pytest.raises(IncompleteStreamError) as err:
            tts.invoke(story(5000))
    finally:
        tts.close()
    assert err.value.partial is not None
    assert "cost" not in err.value.partial.response_metadata
    assert sum(slept) == pytest.approx(1.0)
    assert set(_looked_up(openrouter_server)) == set(
        err.value.partial.response_metadata["generation_ids"]
    )
