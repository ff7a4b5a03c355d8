"""`voice_app` over real sockets: uvicorn, a WebSocket client speaking the page's protocol,
the local OpenRouter server answering with the shipped spoken clips."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
websockets = pytest.importorskip("websockets", reason="the websockets client is not installed")

import uvicorn  # noqa: E402
from langchain.agents import create_agent  # noqa: E402

from langchain_openrouter_audio import ChatOpenRouterAudio  # noqa: E402
from langchain_openrouter_audio.testing import (  # noqa: E402
    OpenRouterTestServer,
    RecordedRequest,
    Reply,
    speech_reply,
    tone_pcm16,
    tool_call_reply,
)
from langchain_openrouter_audio.voice import resample_pcm16  # noqa: E402
from langchain_openrouter_audio.web import voice_app  # noqa: E402
from tests._helpers import CLIP_WORDS, bound_socket, clip_pcm, make_llm  # noqa: E402

RATE = 16_000


ANSWER_PCM = clip_pcm("weather_answer")
QUESTION = resample_pcm16(clip_pcm("question"), 24_000, RATE)


def silence(seconds: float) -> bytes:
    return bytes(2 * round(RATE * seconds))


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


def weather_responder(**speech: Any) -> Callable[[RecordedRequest], Reply]:
    def answer(request: RecordedRequest) -> Reply:
        messages = request.json["messages"]
        if request.json.get("tools") and messages[-1]["role"] != "tool":
            return tool_call_reply("get_weather", {"city": "Paris"})
        return speech_reply(ANSWER_PCM, CLIP_WORDS["weather_answer"], **speech)

    return answer


@pytest.fixture
def openrouter() -> Iterator[OpenRouterTestServer]:
    with OpenRouterTestServer(api_key="test-key") as server:
        server.responder = weather_responder()
        yield server


@pytest.fixture
def llm(openrouter: OpenRouterTestServer) -> Iterator[ChatOpenRouterAudio]:
    model = make_llm(openrouter, timeout=20)
    yield model
    model.close()


class Served:
    """`app` under uvicorn in a thread; `llm`'s async client for that loop is closed with it."""

    def __init__(self, app: Any, llm: ChatOpenRouterAudio) -> None:
        # uvicorn listens on a socket bound here: no other process can take the port
        # between choosing it and listening on it.
        self.socket = bound_socket()
        port = self.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)

        async def run() -> None:
            try:
                await self.server.serve(sockets=[self.socket])
            finally:
                await llm.aclose()  # the model's client of this event loop

        self.thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if not self.thread.is_alive():  # uvicorn closed it already, unless it never started
            self.socket.close()


@pytest.fixture
def app_url(llm: ChatOpenRouterAudio) -> Iterator[Callable[[Any], str]]:
    served: list[Served] = []

    def start(app: Any) -> str:
        served.append(Served(app, llm))
        return served[-1].url

    yield start
    for one in served:
        one.stop()


class Page:
    """A WebSocket client speaking the voice page's protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio: dict[int, bytearray] = {}
        self._audio_turn = 0

    async def hello(self) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "hello", "sample_rate": RATE}))
        return await self.until("ready")

    async def speak(self, pcm: bytes) -> None:
        for start in range(0, len(pcm), 640):  # 20 ms frames, as the page sends
            await self.ws.send(pcm[start : start + 640])

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def until(self, kind: str, **match: Any) -> dict[str, Any]:
        """Read frames until a `kind` event matching `match` (audio is collected per turn)."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), 20)
            if isinstance(frame, bytes):
                self.audio.setdefault(self._audio_turn, bytearray()).extend(frame)
                if kind == "audio":
                    return {"type": "audio", "turn": self._audio_turn}
                continue
            event = json.loads(frame)
            self.events.append(event)
            if event["type"] == "audio_start":
                self._audio_turn = event["turn"]
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[str], Any]]:
    opened: list[Any] = []

    async def open_page(url: str) -> Page:
        origin = "http://" + url.split("/")[2]  # the page's own, as a browser sends it
        ws = await websockets.connect(url, max_size=None, origin=origin)
        opened.append(ws)
        return Page(ws)

    yield open_page
    for ws in opened:
        await ws.close()


def texts(events: list[dict[str, Any]], kind: str, turn: int) -> list[Any]:
    return [e for e in events if e["type"] == kind and e.get("turn") == turn]


def spoken_history(request: RecordedRequest) -> list[str]:
    """The assistant turns the model was sent back, as text (none in a cost lookup)."""
    out = []
    for message in (request.json or {}).get("messages", []):
        if message["role"] != "assistant" or message.get("tool_calls"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(content)
    return out


async def test_a_turn_streams_transcript_speech_and_tool_calls(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    agent = create_agent(llm, [get_weather])
    page = await connect(app_url(voice_app(agent, tool_details=True)))
    ready = await page.hello()
    assert ready["sample_rate"] == RATE
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    end = await page.until("reply_end", turn=1)

    utterance = texts(page.events, "utterance", 1)[0]
    assert abs(utterance["seconds"] - len(QUESTION) / 2 / RATE) < 0.5  # speech plus padding
    assert texts(page.events, "tool_call", 1) == [
        {"type": "tool_call", "turn": 1, "name": "get_weather", "args": {"city": "Paris"}}
    ]
    assert texts(page.events, "tool_result", 1) == [
        {"type": "tool_result", "turn": 1, "name": "get_weather", "output": get_weather("Paris")}
    ]
    transcript = "".join(e["text"] for e in texts(page.events, "transcript", 1))
    assert transcript == CLIP_WORDS["weather_answer"]
    assert texts(page.events, "audio_start", 1)[0]["sample_rate"] == 24_000
    assert bytes(page.audio[1]) == ANSWER_PCM  # every byte, in order
    assert end["audio_bytes"] == len(ANSWER_PCM)
    assert not texts(page.events, "error", 1)

    # The second turn sends the first answer back as text.
    await page.send(type="played", turn=1, seconds=len(ANSWER_PCM) / 48_000, done=True)
    await page.speak(QUESTION + silence(1.0))
    await page.until("reply_end", turn=2)
    assert bytes(page.audio[2]) == ANSWER_PCM
    assert spoken_history(openrouter.requests[-2]) == [CLIP_WORDS["weather_answer"]]


async def test_the_page_learns_which_tool_ran_but_not_its_args_or_output(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        return f"row r4711x of weather_internal: {city}, 21 C, station id wx-7f3a"

    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]))))
    await page.hello()
    frames: list[str] = []
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    while True:  # every text frame of the turn, as the page gets it
        frame = await asyncio.wait_for(page.ws.recv(), 20)
        if isinstance(frame, str):
            frames.append(frame)
            if json.loads(frame)["type"] == "reply_end":
                break
    events = [json.loads(f) for f in frames]
    assert texts(events, "tool_call", 1) == [
        {"type": "tool_call", "turn": 1, "name": "get_weather"}
    ]
    assert texts(events, "tool_result", 1) == [
        {"type": "tool_result", "turn": 1, "name": "get_weather"}
    ]
    # Markers hold letters: a bare number could turn up inside a timing figure.
    for leaked in ("wx-7f3a", "r4711x", "weather_internal", '"city"', '"args"', '"output"'):
        assert not [f for f in frames if leaked in f], leaked
    # The agent itself got the tool's output: only the page does not.
    tool_message = openrouter.requests[-1].json["messages"][-1]
    assert tool_message["role"] == "tool"
    assert "wx-7f3a" in tool_message["content"]


async def test_tool_details_are_cut_to_a_bound(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    from langchain_openrouter_audio.voice.transports.browser import TOOL_DETAIL_BYTES

    def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        return "é" * 10_000  # 20 kB of UTF-8: cut on a character, not inside one

    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]), tool_details=True)))
    await page.hello()
    await page.speak(silence(0.5) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)
    (call,) = texts(page.events, "tool_call", 1)
    assert call["args"] == {"city": "Paris"}
    assert "truncated" not in call
    (result,) = texts(page.events, "tool_result", 1)
    assert result["truncated"] is True
    assert result["output"] == "é" * (TOOL_DETAIL_BYTES // 2) + "…"
    assert TOOL_DETAIL_BYTES == 2048


def test_tool_args_the_browser_cannot_parse_go_as_text() -> None:
    from langchain_openrouter_audio.voice.transport import ToolCalled
    from langchain_openrouter_audio.voice.transports.browser import _as_message

    event = ToolCalled(turn=1, name="thermostat", args={"target": float("nan"), "room": "hall"})
    message = _as_message(event, tool_details=True)
    assert message is not None
    frame = json.dumps(message, allow_nan=False)  # what JSON.parse accepts: no bare NaN
    assert json.loads(frame)["args"] == "{'target': nan, 'room': 'hall'}"


@pytest.mark.parametrize("still_generating", [False, True], ids=["played", "generating"])
async def test_barge_in_keeps_only_what_was_heard(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
    still_generating: bool,
) -> None:
    # Slow speech keeps the model generating while the user interrupts.
    slow = {"event_delay_s": 0.1, "audio_piece_bytes": 4800} if still_generating else {}
    openrouter.responder = weather_responder(**slow)
    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]))))
    await page.hello()
    await page.speak(silence(0.3) + QUESTION + silence(1.0))
    heard = 1.0  # the page plays one second of the answer before the user speaks
    if still_generating:
        while len(page.audio.get(1, b"")) < heard * 48_000:
            await page.until("audio")
        assert not texts(page.events, "reply_end", 1)
    else:
        await page.until("reply_end", turn=1)

    await page.speak(QUESTION[:RATE])  # the user talks over the reply
    stop = await page.until("stop")
    assert stop["turn"] == 1
    await page.send(type="stopped", turn=1, seconds=heard, done=True)
    await page.speak(QUESTION[RATE:] + silence(1.0))
    await page.until("reply_end", turn=2)

    # The second question's first request carries the first answer as it was heard.
    second = next(r for r in openrouter.requests if len(spoken_history(r)) == 1)
    words = CLIP_WORDS["weather_answer"].split()
    heard_words = int(heard / (len(ANSWER_PCM) / 48_000) * len(words))  # 3 of 9 words
    (kept,) = spoken_history(second)
    if still_generating:
        # Speech had not all arrived: the words are cut at an average speaking rate.
        assert 0 < len(kept.split()) <= heard_words
        assert CLIP_WORDS["weather_answer"].startswith(kept)
    else:
        assert kept == " ".join(words[:heard_words])
    assert bytes(page.audio[2]) == ANSWER_PCM


async def test_push_to_talk_is_one_utterance_without_endpointing(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm)))  # the chat model itself as the agent
    await page.hello()
    await page.send(type="ptt_start")
    await page.speak(QUESTION)  # no trailing silence: the button ends the utterance
    await page.send(type="ptt_end")
    utterance = await page.until("utterance")
    assert utterance["seconds"] == pytest.approx(len(QUESTION) / 2 / RATE, abs=0.001)
    await page.until("reply_end", turn=1)
    transcript = "".join(e["text"] for e in texts(page.events, "transcript", 1))
    assert transcript == CLIP_WORDS["weather_answer"]
    assert bytes(page.audio[1]) == ANSWER_PCM


async def test_connections_hold_separate_conversations(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    url = app_url(voice_app(create_agent(llm, [get_weather])))
    pages = [await connect(url) for _ in range(6)]
    sessions = {(await page.hello())["session"] for page in pages}
    assert len(sessions) == len(pages)

    async def turn(page: Page) -> bytes:
        await page.speak(silence(0.3) + QUESTION + silence(1.0))
        await page.until("reply_end", turn=1)
        return bytes(page.audio[1])

    replies = await asyncio.gather(*(turn(page) for page in pages))
    assert all(reply == ANSWER_PCM for reply in replies)


async def test_sessions_over_the_limit_are_refused(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    url = app_url(voice_app(llm, max_sessions=1))
    first = await connect(url)
    await first.hello()
    second = await connect(url)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await second.hello()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013


async def test_protocol_errors_are_reported(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm)))
    await page.ws.send(silence(0.02))  # audio before hello
    assert "hello" in (await page.until("error"))["message"]
    await page.ws.send(json.dumps({"type": "hello", "sample_rate": 44_100}))
    assert "16000" in (await page.until("error"))["message"]
    await page.ws.send("not json")
    assert "JSON" in (await page.until("error"))["message"]
    await page.hello()
    await page.ws.send(b"\x00\x01\x02")
    assert "whole PCM16 samples" in (await page.until("error"))["message"]


def test_the_page_and_its_scripts_are_served(llm: ChatOpenRouterAudio) -> None:
    from starlette.testclient import TestClient

    with TestClient(voice_app(llm, title="Ask <me>")) as client:
        page = client.get("/").text
        assert "<title>Ask &lt;me&gt;</title>" in page
        assert 'id="talk"' in page
        for script in ("voice.js", "capture-worklet.js", "voice.css"):
            assert client.get(f"/static/{script}").status_code == 200
        assert "window.voiceStats" in client.get("/static/voice.js").text
        assert client.get("/healthz").json() == {"status": "ok"}


async def test_max_turns_limits_the_history_and_cost_is_reported(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    page = await connect(app_url(voice_app(llm, max_turns=2)))  # the chat model: one request
    await page.hello()
    costs = []
    for turn in (1, 2, 3):
        await page.speak(silence(0.3) + QUESTION + silence(1.0))
        end = await page.until("reply_end", turn=turn)
        costs.append(end["session_cost"])
        await page.send(type="played", turn=turn, seconds=9.9, done=True)

    def questions(request: RecordedRequest) -> int:
        return sum(m["role"] == "user" for m in request.json["messages"])

    assert [questions(r) for r in openrouter.requests] == [1, 2, 2]
    assert costs[0] > 0  # OpenRouter's usage.cost of each reply, summed per connection
    assert costs == pytest.approx([costs[0], 2 * costs[0], 3 * costs[0]])


async def test_an_endless_utterance_is_cut(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any
) -> None:
    page = await connect(app_url(voice_app(llm, max_utterance_s=1.0)))
    await page.hello()
    await page.send(type="ptt_start")
    await page.speak(QUESTION)  # 2.3 s while the button is held
    first = await page.until("utterance")
    assert first["seconds"] == pytest.approx(1.0, abs=0.02)


async def test_barge_in_during_a_tool_leaves_no_dangling_tool_call(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    from langchain_core.tools import tool

    calls: list[str] = []

    @tool
    async def get_weather(city: str) -> str:
        """Return the current weather in a city."""
        calls.append(city)
        if len(calls) == 1:
            await asyncio.sleep(30)  # the user interrupts while this runs
        return f"It is 21 degrees and sunny in {city}."

    page = await connect(app_url(voice_app(create_agent(llm, [get_weather]))))
    await page.hello()
    await page.speak(silence(0.3) + QUESTION + silence(1.0))
    await page.until("tool_call", turn=1)
    await page.speak(QUESTION[:RATE])
    await page.until("stop", turn=1)
    await page.send(type="stopped", turn=1, seconds=0.0, done=True)
    await page.speak(QUESTION[RATE:] + silence(1.0))
    await page.until("reply_end", turn=2)

    # Turn 1 was cut in its tool: its call (never answered) is gone; the question stays.
    roles = [[m["role"] for m in r.json["messages"]] for r in openrouter.requests]
    assert roles == [["user"], ["user", "user"], ["user", "user", "assistant", "tool"]]
    assert bytes(page.audio[2]) == ANSWER_PCM


class _NoEndpointer:
    speaking = False

    def push(self, pcm: bytes) -> list[bytes]:
        return []

    def flush(self) -> list[bytes]:
        return []


@pytest.mark.parametrize(("heard", "kept"), [(0.2, "one"), (1.2, "one two three four five six")])
async def test_barge_in_while_the_reply_end_is_still_sending_keeps_one_reply(
    openrouter: OpenRouterTestServer, heard: float, kept: str
) -> None:
    # The agent has returned (the reply is in the history) but the page is slow to take
    # `reply_end`: the interruption must cut that reply, not add a second, partial one.
    from langchain_core.messages import AIMessage, HumanMessage

    from langchain_openrouter_audio.voice import TurnEngine
    from langchain_openrouter_audio.voice.transports.browser import BrowserTransport

    reply_end_sending = asyncio.Event()
    sent: list[Any] = []
    inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    async def send(message: Any) -> None:
        sent.append(message)
        if isinstance(message, dict) and message.get("type") == "reply_end":
            reply_end_sending.set()
            await asyncio.sleep(1.0)  # a congested socket

    def page(**message: Any) -> None:
        inbox.put_nowait(json.dumps(message))

    llm = make_llm(openrouter)
    transport = BrowserTransport(send, inbox.get, sample_rate=RATE)
    engine = TurnEngine(llm, transport, endpointer=_NoEndpointer())
    openrouter.enqueue(
        speech_reply(tone_pcm16(1.0), "one two three four five six"),
        speech_reply(tone_pcm16(0.3), "second answer"),
    )
    run = asyncio.create_task(engine.run())
    page(type="hello", sample_rate=RATE)
    page(type="ptt_start")
    inbox.put_nowait(silence(0.5))
    page(type="ptt_end")  # turn 1
    await asyncio.wait_for(reply_end_sending.wait(), 20)
    page(type="ptt_start")  # the user speaks over it: the page is told to stop
    inbox.put_nowait(silence(0.5))
    page(type="ptt_end")  # turn 2
    # The page acknowledges the stop only once turn 1's reply is in the history and its
    # `reply_end` is on the way: the turn is not over yet.
    page(type="stopped", turn=1, seconds=heard)
    deadline = time.monotonic() + 20  # the engine settles turn 1, then starts turn 2
    while engine.turn_count < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert {"type": "stop", "turn": 1} in sent
    questions = [i for i, m in enumerate(engine.history) if isinstance(m, HumanMessage)]
    turn_one = engine.history[: questions[1]] if len(questions) > 1 else engine.history
    replies = [m for m in turn_one if isinstance(m, AIMessage)]
    assert [(m.text, m.response_metadata.get("interrupted")) for m in replies] == [(kept, True)]
    inbox.put_nowait(None)  # the page disconnects
    await asyncio.wait_for(run, 20)
    await llm.aclose()


async def test_reply_end_reports_latency_and_each_connection_is_recorded(
    llm: ChatOpenRouterAudio, app_url: Callable[[Any], str], connect: Any, tmp_path: Any
) -> None:
    import wave
    from array import array

    app = voice_app(llm, record=str(tmp_path / "calls" / "{session}.wav"))
    page = await connect(app_url(app))
    session = (await page.hello())["session"]
    asked = silence(0.5) + QUESTION + silence(1.0)
    await page.speak(asked)
    await page.until("audio", turn=1)
    await page.send(type="played", turn=1, seconds=0.5, done=False)  # playing for 0.5 s
    end = await page.until("reply_end", turn=1)
    assert end["endpoint_delay_s"] >= 0.5  # the endpointer's silence_ms
    assert end["first_audio_s"] > 0
    assert "first_played_s" in end  # None until the page's first report is in
    listening = silence(4.0)  # the microphone goes on while the answer plays
    await page.speak(listening)
    await page.send(type="played", turn=1, seconds=len(ANSWER_PCM) / 48_000, done=True)
    await page.ws.close()
    for _ in range(500):
        if not app.state.sessions:
            break
        await asyncio.sleep(0.02)
    assert not app.state.sessions

    with wave.open(str(tmp_path / "calls" / f"{session}.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        assert w.getnframes() == (len(asked) + len(listening)) // 2  # the user's timeline
        frames = array("h", w.readframes(w.getnframes()))
    left, right = frames[0::2].tobytes(), frames[1::2].tobytes()
    assert left == asked + listening
    # The answer, whole, as the page played it: from 0.5 s before the page's first report
    # (the question was sent in a burst, so the utterance's end may come later: not before).
    answer = resample_pcm16(ANSWER_PCM, 24_000, RATE)
    start = right.find(answer) / 2 / RATE
    assert start == pytest.approx(len(asked) / 2 / RATE - 0.5, abs=0.05)
    assert set(right[2 * round(start * RATE) + len(answer) :]) == {0}
    assert set(right[: len(asked) - RATE]) == {0}


async def test_typed_text_is_a_turn_and_agent_errors_stay_private(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    from langchain_openrouter_audio.testing import error_reply

    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    await page.send(type="text", text="What is the weather in Paris?")
    utterance = await page.until("utterance", turn=1)
    assert utterance["seconds"] == 0
    await page.until("reply_end", turn=1)
    assert bytes(page.audio[1]) == ANSWER_PCM
    sent = openrouter.requests[-1].json["messages"]
    assert sent == [{"role": "user", "content": "What is the weather in Paris?"}]

    # The model fails: the page hears that the turn failed, not the upstream's details.
    openrouter.responder = None
    openrouter.enqueue(error_reply(400, "internal detail: key sk-or-123 at host db-7"))
    await page.send(type="played", turn=1, seconds=9.9, done=True)
    await page.send(type="text", text="And tomorrow?")
    error = await page.until("error", turn=2)
    assert "failed" in error["message"]
    assert "sk-or" not in error["message"]
    assert "db-7" not in error["message"]
    end = await page.until("reply_end", turn=2)
    assert end["audio_bytes"] == 0


async def test_a_yeah_over_the_reply_pauses_it_and_the_rest_plays_on(
    openrouter: OpenRouterTestServer,
    llm: ChatOpenRouterAudio,
    app_url: Callable[[Any], str],
    connect: Any,
) -> None:
    """The page cannot pause: the engine stops it and sends the rest of the reply again."""
    from langchain_openrouter_audio.testing import speech_pcm16
    from tests._helpers import HAS_ESPEAK

    if not HAS_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    yeah = speech_pcm16("Yeah.", sample_rate=RATE)
    assert len(yeah) / 2 / RATE < 0.6  # with its silences; under 0.5 s of speech
    openrouter.enqueue(speech_reply(ANSWER_PCM, CLIP_WORDS["weather_answer"]))
    page = await connect(app_url(voice_app(llm)))
    await page.hello()
    await page.speak(silence(0.3) + QUESTION + silence(1.0))
    await page.until("reply_end", turn=1)
    assert bytes(page.audio[1]) == ANSWER_PCM
    heard = 1.0
    await page.send(type="played", turn=1, seconds=heard, done=False)

    await page.speak(silence(0.2) + yeah)  # "yeah" over the reply: the page is told to stop
    await page.until("stop", turn=1)
    await page.send(type="stopped", turn=1, seconds=heard, done=True)
    page.audio.clear()
    await page.speak(silence(1.0))  # nothing more: the reply plays on where it stopped
    restart = await page.until("audio_start", turn=1)
    assert restart["sample_rate"] == 24_000
    rest = ANSWER_PCM[round(heard * 24_000) * 2 :]
    while len(page.audio.get(1, b"")) < len(rest):
        await page.until("audio")
    assert bytes(page.audio[1]) == rest  # from the heard position, to the end, once
    await page.send(type="played", turn=1, seconds=len(rest) / 48_000, done=True)
    await page.speak(silence(0.5))
    await asyncio.sleep(0.3)

    assert len(openrouter.requests) == 1  # the "yeah" asked the model nothing
    assert not [e for e in page.events if e["type"] == "utterance" and e["turn"] != 1]
    # A question after it still carries the whole answer as heard.
    openrouter.enqueue(speech_reply(ANSWER_PCM, CLIP_WORDS["weather_answer"]))
    await page.speak(QUESTION + silence(1.0))
    await page.until("reply_end", turn=2)
    assert spoken_history(openrouter.requests[1]) == [CLIP_WORDS["weather_answer"]]
