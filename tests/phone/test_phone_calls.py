"""Phone calls end to end: the simulated Twilio calls `voice_app` (uvicorn on 127.0.0.1), the
`TurnEngine` answers through `TwilioTransport`, the local OpenRouter server speaks the shipped
clips. Everything runs in real time over real sockets."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import re
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from pydantic import SecretStr
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.testing import (
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    TwilioCallRefused,
    TwilioSimulator,
    speech_reply,
    tool_call_reply,
)
from langchain_openrouter_audio.voice import TurnEngine, VoiceTurn, mulaw_to_pcm16, resample_pcm16
from langchain_openrouter_audio.voice.limits import SessionLimits
from langchain_openrouter_audio.voice.transports import TwilioTransport
from langchain_openrouter_audio.web import voice_app
from langchain_openrouter_audio.web._twilio import run_phone_call, twilio_routes
from langchain_openrouter_audio.web._twilio_signature import twilio_signature
from tests._helpers import CLIP_WORDS, clip_pcm, make_llm
from tests.phone.conftest import AUTH_TOKEN

QUESTION = clip_pcm("question")  # 24 kHz, as the shipped clips are
ANSWER = clip_pcm("weather_answer")
# A long answer, so that the caller can talk over it.
LONG_ANSWER = clip_pcm("story") + clip_pcm("weather_answer") + clip_pcm("hello")
LONG_WORDS = " ".join(CLIP_WORDS[n] for n in ("story", "weather_answer", "hello"))


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def answering(pcm: bytes, words: str) -> Callable[[RecordedRequest], Reply]:
    """Calls the weather tool when it is bound and has not run yet, then speaks `pcm`."""

    def answer(request: RecordedRequest) -> Reply:
        messages = request.json["messages"]
        if request.json.get("tools") and messages[-1]["role"] != "tool":
            return tool_call_reply("get_weather", {"city": "Paris"})
        return speech_reply(pcm, words)

    return answer


@pytest.fixture
def openrouter() -> Iterator[OpenRouterTestServer]:
    with OpenRouterTestServer(api_key="test-key") as server:
        server.responder = answering(ANSWER, CLIP_WORDS["weather_answer"])
        yield server


@pytest.fixture
def llm(openrouter: OpenRouterTestServer) -> Iterator[ChatOpenRouterAudio]:
    model = make_llm(openrouter, timeout=20)
    yield model
    model.close()


@pytest.fixture
def phone(serve: Callable[..., str], llm: ChatOpenRouterAudio) -> Callable[[Any], TwilioSimulator]:
    """Serve an app; returns the simulated Twilio that calls it."""

    def start(app: Any) -> TwilioSimulator:
        return TwilioSimulator(serve(app, llm.aclose), auth_token=AUTH_TOKEN)

    return start


def user_texts(request: RecordedRequest) -> list[str]:
    out = []
    for message in request.json["messages"]:
        if message["role"] == "user" and isinstance(message["content"], str):
            out.append(message["content"])
    return out


def assistant_texts(request: RecordedRequest) -> list[str]:
    out = []
    for message in request.json["messages"]:
        if message["role"] != "assistant" or message.get("tool_calls"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(content)
    return out


def heard_pcm(call: Any) -> bytes:
    return b"".join(mulaw_to_pcm16(bytes(span.mulaw)) for span in call.played)


def rms(pcm: bytes) -> float:
    samples = memoryview(pcm).cast("h")
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


async def test_a_spoken_question_gets_the_whole_spoken_reply_on_the_call(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
) -> None:
    twilio = phone(voice_app(create_agent(llm, [get_weather]), twilio_auth_token=AUTH_TOKEN))
    async with twilio.call() as call:
        await call.wait(0.3)
        await call.say(QUESTION, sample_rate=24_000)
        await call.until_reply_played(timeout_s=30)
    assert call.problems == []
    assert call.clears == []
    # The caller heard the reply once, whole, in real time, on the call's stream (the rest is
    # the engine's resampling to 8 kHz: a sample or two short; a loaded machine may starve
    # the playout for a moment, splitting it in two spans).
    spans = [(s.start, s.end, s.seconds) for s in call.played]
    assert 1 <= len(spans) <= 2, spans
    expected = len(ANSWER) / 2 / 24_000
    assert call.played_seconds == pytest.approx(expected, abs=0.01)
    assert call.played[-1].end - call.played[0].start == pytest.approx(expected, abs=0.4), spans
    # What played is the answer (mu-law is lossy: compare levels, 100 ms at a time).
    reference = resample_pcm16(ANSWER, 24_000, 8000)
    heard = heard_pcm(call)
    for start in range(0, min(len(heard), len(reference)) - 1600, 1600):
        want, got = rms(reference[start : start + 1600]), rms(heard[start : start + 1600])
        assert got == pytest.approx(want, rel=0.15, abs=60)
    # The model heard the caller: one question, as 8 kHz WAV audio.
    first = openrouter.requests[0].json["messages"][-1]
    (block,) = [p for p in first["content"] if p.get("type") == "input_audio"]
    assert block["input_audio"]["format"] == "wav"


async def test_talking_over_the_reply_clears_it_and_keeps_only_the_heard_words(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    serve: Callable[..., str],
) -> None:
    openrouter.responder = answering(LONG_ANSWER, LONG_WORDS)
    turns: list[VoiceTurn] = []

    def engine_for(transport: TwilioTransport) -> TurnEngine:
        return TurnEngine(llm, transport, on_turn=turns.append)

    run_call = functools.partial(
        run_phone_call, engine_for=engine_for, sessions=set(), max_sessions=None
    )
    routes = twilio_routes(auth_token=SecretStr(AUTH_TOKEN), public_url=None, run_call=run_call)
    twilio = TwilioSimulator(serve(Starlette(routes=routes), llm.aclose), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        await call.say(QUESTION, sample_rate=24_000)
        await call.until_playing(timeout_s=30)
        await call.wait(1.5)
        interrupted_at, _ = await call.say(QUESTION, sample_rate=24_000)
        await call.until_reply_played(timeout_s=30)
    assert call.problems == []
    # The reply stopped well within a second of the caller starting to talk.
    (clear_at,) = call.clears
    assert 0 < clear_at - interrupted_at < 1.0
    # The first reply played until the clear and not after; the second played whole. (A
    # loaded machine may starve the playout for a moment, splitting a reply in two spans.)
    before = [s for s in call.played if s.start < clear_at]
    after = [s for s in call.played if s.start >= clear_at]
    assert all(s.end <= clear_at + 0.05 for s in before)
    first_heard = sum(s.seconds for s in before)
    assert sum(s.seconds for s in after) == pytest.approx(len(LONG_ANSWER) / 48_000, abs=0.01)
    # The engine kept what the caller heard: never more than played, a mark or so less.
    assert turns[0].interrupted
    assert first_heard - 0.5 <= turns[0].heard_s <= first_heard + 1e-6
    # The second question went to the model with only the heard words of the first answer.
    (second,) = [r for r in openrouter.requests if assistant_texts(r)]
    (kept,) = assistant_texts(second)
    words = LONG_WORDS.split()
    assert 0 < len(kept.split()) < len(words) / 2
    assert LONG_WORDS.startswith(kept)


async def test_keypad_digits_reach_the_agent_as_one_text_turn(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
) -> None:
    twilio = phone(voice_app(llm, twilio_auth_token=AUTH_TOKEN))
    async with twilio.call() as call:
        for key in "42#":
            await call.press(key)
        await call.until_reply_played(timeout_s=30)
    assert call.problems == []
    (request,) = openrouter.requests
    assert user_texts(request) == ["[The caller pressed 42# on the keypad]"]
    assert call.played_seconds == pytest.approx(len(ANSWER) / 2 / 24_000, abs=0.01)


async def test_a_call_ends_at_the_apps_max_session_s(
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
) -> None:
    twilio = phone(
        voice_app(llm, twilio_auth_token=AUTH_TOKEN, limits=SessionLimits(max_session_s=1.0))
    )
    async with twilio.call() as call:
        await call.until_closed(timeout_s=15)
    assert call.problems == []


async def test_a_call_reports_latency_per_turn_and_is_recorded(
    llm: ChatOpenRouterAudio, serve: Callable[..., str], tmp_path: Path
) -> None:
    turns: list[VoiceTurn] = []

    def engine_for(transport: TwilioTransport) -> TurnEngine:
        return TurnEngine(llm, transport, on_turn=turns.append, record=tmp_path / "call.wav")

    run_call = functools.partial(
        run_phone_call, engine_for=engine_for, sessions=set(), max_sessions=None
    )
    routes = twilio_routes(auth_token=SecretStr(AUTH_TOKEN), public_url=None, run_call=run_call)
    twilio = TwilioSimulator(serve(Starlette(routes=routes), llm.aclose), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        _, said_end = await call.say(QUESTION, sample_rate=24_000)
        await call.until_reply_played(timeout_s=30)
        await call.wait(0.3)
    (turn,) = turns
    assert not turn.interrupted
    assert turn.heard_s == pytest.approx(len(ANSWER) / 2 / 24_000, abs=0.01)
    # Latency from the engine agrees with what the caller experienced.
    assert turn.first_played_s is not None
    assert turn.latency_s is not None
    # The engine learns of the first audio played from the echo of the mark after its
    # first piece: a round trip later, which grows with the machine's load (+0.09 s was
    # measured with 4 runnable processes on 2 cores): 0.6 s of margin either way.
    experienced = call.played[0].start - said_end
    assert 0 < turn.latency_s < experienced + 0.6
    assert turn.latency_s > experienced - 0.6
    # The recording: the caller left, the agent as played right, at the line's 8 kHz.
    with wave.open(io.BytesIO((tmp_path / "call.wav").read_bytes())) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        frames = memoryview(w.readframes(w.getnframes())).cast("h")
    left, right = frames[0::2], frames[1::2]
    assert len(left) / 8000 == pytest.approx(call.sent_frames * 0.02, abs=0.1)
    assert max(abs(s) for s in left) > 3000
    assert max(abs(s) for s in right) > 3000


async def test_unsigned_calls_never_reach_the_agent(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
) -> None:
    signed = phone(voice_app(llm, twilio_auth_token=AUTH_TOKEN))
    stranger = TwilioSimulator(signed.base_url, auth_token="a-guess")
    with pytest.raises(TwilioCallRefused) as refused:
        async with stranger.call():
            pass
    assert refused.value.status == 403
    # The webhook answered for a signed caller, but the stream is opened by a stranger.
    stream_url, _ = await signed.answer("CA1", "+14155550100", "+15005550006")
    host = stream_url.removeprefix("wss://")
    for headers in ({}, {"X-Twilio-Signature": twilio_signature("a-guess", stream_url)}):
        with pytest.raises(InvalidStatus) as handshake:
            async with connect(f"ws://{host}", additional_headers=headers):
                pass
        assert handshake.value.response.status_code == 403
    assert openrouter.requests == []


async def test_two_calls_at_once_each_hear_their_own_reply_and_the_limit_holds(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
) -> None:
    twilio = phone(voice_app(llm, twilio_auth_token=AUTH_TOKEN, max_sessions=2))
    in_progress: list[Any] = []
    both_in_progress = asyncio.Event()

    async def ask() -> Any:
        async with twilio.call() as call:
            in_progress.append(call)
            if len(in_progress) == 2:
                both_in_progress.set()
            await call.say(QUESTION, sample_rate=24_000)
            await call.until_reply_played(timeout_s=40)
        return call

    async def third_caller() -> int | None:
        # Both streams are accepted (each holds a slot until its reply has played): a
        # fixed sleep instead would let a slow start on a loaded machine take the slot.
        await asyncio.wait_for(both_in_progress.wait(), 30)
        try:
            async with twilio.call():
                return None
        except TwilioCallRefused as refused:
            return refused.status

    first, second, refused = await asyncio.gather(ask(), ask(), third_caller())
    assert refused == 403  # over max_sessions: the handshake is refused before accept
    for call in (first, second):
        assert call.problems == []
        assert call.played_seconds == pytest.approx(len(ANSWER) / 2 / 24_000, abs=0.01)
    assert first.stream_sid != second.stream_sid
    assert len(openrouter.requests) == 2


async def test_calls_arriving_together_never_take_more_than_max_sessions(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    serve: Callable[..., str],
) -> None:
    # Each stream passes the limit check, then waits for its accept to go out; a slow
    # accept (a loaded server, a far network) widens that moment so the calls overlap in
    # it. Without a second check after the accept, every one of them took a slot.
    class SlowAccept:
        def __init__(self, websocket: Any) -> None:
            self._websocket = websocket

        def __getattr__(self, name: str) -> Any:
            return getattr(self._websocket, name)

        async def accept(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0.5)
            await self._websocket.accept(*args, **kwargs)

    sessions: set[Any] = set()

    async def run_call(websocket: Any) -> None:
        await run_phone_call(
            SlowAccept(websocket),
            engine_for=lambda transport: TurnEngine(llm, transport),
            sessions=sessions,
            max_sessions=1,
        )

    routes = twilio_routes(auth_token=SecretStr(AUTH_TOKEN), public_url=None, run_call=run_call)
    twilio = TwilioSimulator(serve(Starlette(routes=routes), llm.aclose), auth_token=AUTH_TOKEN)

    async def caller() -> str:
        try:
            async with twilio.call() as call:
                await call.say(QUESTION, sample_rate=24_000)
                await call.until_reply_played(timeout_s=40)
                return "answered"
        except TwilioCallRefused:
            return "refused"  # at the handshake
        except (ConnectionError, ConnectionClosed):
            return "closed"  # accepted, then closed: the slot was taken meanwhile

    outcomes = await asyncio.gather(*(caller() for _ in range(4)))
    assert outcomes.count("answered") == 1, outcomes
    chats = [r for r in openrouter.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1


async def test_a_yeah_over_the_reply_is_no_turn_and_the_reply_plays_on(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    serve: Callable[..., str],
) -> None:
    """Twilio cannot pause: the engine clears the line and sends the rest from the heard
    position (the last echoed mark), so the caller hears all of it, a moment repeated."""
    from langchain_openrouter_audio.testing import speech_pcm16
    from tests._helpers import HAS_ESPEAK

    if not HAS_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    yeah = speech_pcm16("Yeah.", sample_rate=8000)
    openrouter.responder = answering(LONG_ANSWER, LONG_WORDS)
    turns: list[VoiceTurn] = []
    engines: list[TurnEngine] = []

    def engine_for(transport: TwilioTransport) -> TurnEngine:
        engines.append(TurnEngine(llm, transport, on_turn=turns.append))
        return engines[-1]

    run_call = functools.partial(
        run_phone_call, engine_for=engine_for, sessions=set(), max_sessions=None
    )
    routes = twilio_routes(auth_token=SecretStr(AUTH_TOKEN), public_url=None, run_call=run_call)
    twilio = TwilioSimulator(serve(Starlette(routes=routes), llm.aclose), auth_token=AUTH_TOKEN)
    async with twilio.call() as call:
        await call.say(QUESTION, sample_rate=24_000)
        await call.until_playing(timeout_s=30)
        await call.wait(1.5)
        await call.say(yeah, sample_rate=8000)
        await call.until_reply_played(timeout_s=60, idle_s=2.0)
    assert call.problems == []
    assert len(openrouter.requests) == 1  # the "yeah" asked the model nothing
    assert len(call.clears) == 1  # stopped for it a moment (the pause)...
    reply_s = len(LONG_ANSWER) / 48_000
    played_s = sum(s.seconds for s in call.played)
    assert reply_s - 0.05 <= played_s <= reply_s + 0.5  # ...then all of it played
    (turn,) = turns
    assert not turn.interrupted
    assert turn.transcript == LONG_WORDS
    assert engines[0].false_interruptions == 1


@pytest.mark.parametrize("failure", ["key-at-once", "key-after-a-pause", "unwritable-recording"])
async def test_a_failure_during_a_call_is_logged_once_and_frees_the_line(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    phone: Callable[[Any], TwilioSimulator],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    failure: str,
) -> None:
    # Failures outside any turn: the app's keypad handler raises (in the stream's reader
    # for "#", in the pause timer for "1"), or the call's recording cannot be opened. The
    # call must end cleanly, not print a bare traceback.
    def broken_menu(digits: str) -> str:
        raise RuntimeError("menu lookup failed: postgres://voice:hunter2@db/menu")

    options: dict[str, Any] = {"on_dtmf": broken_menu}
    if failure == "unwritable-recording":
        (tmp_path / "calls").write_text("a file where the recordings' folder should be")
        options = {"record": tmp_path / "calls" / "{session}.wav"}
    app = voice_app(llm, twilio_auth_token=AUTH_TOKEN, max_sessions=1, **options)
    twilio = phone(app)
    server_errors = ListHandler()
    logging.getLogger("uvicorn.error").addHandler(server_errors)
    try:
        with caplog.at_level(logging.INFO, logger="langchain_openrouter_audio.web"):
            async with twilio.call() as call:
                if failure != "unwritable-recording":
                    await call.press("#" if failure == "key-at-once" else "1")
                await call.until_closed(timeout_s=10)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_errors)

    assert call.close_code == 1011
    match = re.fullmatch(r"internal error \(ref ([0-9a-f]{8})\)", call.close_reason or "")
    assert match is not None, call.close_reason
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1  # logged once, with the reference and the traceback
    assert match.group(1) in failures[0].getMessage()
    assert failures[0].exc_info is not None
    expected = "menu lookup failed" if failure.startswith("key") else "calls"
    assert expected in str(failures[0].exc_info[1])
    assert server_errors.records == []  # nothing escaped to the server's own error log
    assert "postgres" not in "".join(json.dumps(m) for _, m in call.received)
    assert not app.state.sessions
    assert openrouter.requests == []

    # The slot is free again: with max_sessions=1 the next call is taken and answered.
    if failure == "unwritable-recording":
        (tmp_path / "calls").unlink()  # the folder can be made now
    async with twilio.call() as second:
        await second.say(QUESTION, sample_rate=24_000)
        await second.until_reply_played(timeout_s=30)
    assert second.problems == []
    assert second.played_seconds == pytest.approx(len(ANSWER) / 2 / 24_000, abs=0.01)


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
