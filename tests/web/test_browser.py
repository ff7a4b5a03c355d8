# ruff: noqa: F811 - fixtures of another test module are imported and used by name
"""The web voice agent example in headless Chromium with a fake microphone.

The microphone plays a WAV of the shipped spoken question (with silence around it) in a
loop, so the page hears the question, the agent answers in speech, and the loop asks again
for the second turn. Needs Debian's `chromium` (`apt-get install chromium`) and the
`playwright` package (its driver only: no `playwright install`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_openrouter_audio.voice import resample_pcm16
from tests._helpers import CLIP_WORDS, ROOT, clip_pcm
from tests.web._proc import serving
from tests.web.test_voice_worker_restart import deployment, upstream, worker  # noqa: F401 - fixtures

CHROMIUM = next(
    (p for p in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium") if p and Path(p).exists()),
    shutil.which("chromium") or shutil.which("chromium-browser"),
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (Debian: apt-get install chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

FAKE_MIC_RATE = 48_000
ANSWER = CLIP_WORDS["weather_answer"]
SCREENSHOT = os.environ.get("WEB_VOICE_SCREENSHOT")  # set to save the page for the docs


def fake_mic_wav(path: Path, pause_s: float) -> Path:
    """The question at 48 kHz: 0.5 s of silence before it, `pause_s` after (then it loops)."""
    question = resample_pcm16(clip_pcm("question"), 24_000, FAKE_MIC_RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FAKE_MIC_RATE)
        w.writeframes(silence(0.5) + question + silence(pause_s))
    return path


def silence(seconds: float) -> bytes:
    return bytes(2 * round(FAKE_MIC_RATE * seconds))


def launch_args(mic_wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]


def stats(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => ({...window.voiceStats})")
    return result


def wait_for_turn(page: Any, turns: int) -> dict[str, Any]:
    page.wait_for_function(
        f"() => window.voiceStats.turns >= {turns} && window.voiceStats.state === 'idle'",
        timeout=60_000,
    )
    return stats(page)


@pytest.fixture(scope="module")
def example_url() -> Iterator[str]:
    """examples/web_voice_agent.py served offline, as a user would start it."""
    cmd = [sys.executable, "examples/web_voice_agent.py", "--port", "{port}"]
    with serving(cmd, "/healthz", cwd=ROOT) as port:
        yield f"http://127.0.0.1:{port}/"


@contextlib.contextmanager
def browser_page(profile: Path, mic_wav: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium whose microphone plays `mic_wav` in a loop."""
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=launch_args(mic_wav),
        )
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            context.close()


def test_spoken_question_gets_a_spoken_transcribed_answer(example_url: str, tmp_path: Path) -> None:
    # The question comes round again 8 s after it ended: the 2.6 s answer has played by
    # then even when a loaded machine answers seconds late (else it would be cut).
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=8.0)
    with browser_page(tmp_path / "profile", mic) as page:
        script_errors: list[Any] = []
        page.on("pageerror", lambda error: script_errors.append(error))
        page.goto(example_url)
        assert stats(page)["state"] == "idle"
        page.click("#talk")

        first = wait_for_turn(page, 1)
        assert first["transcript"] == ANSWER
        assert first["receivedAudioBytes"] == len(clip_pcm("weather_answer"))
        reply_seconds = first["receivedAudioBytes"] / 2 / 24_000
        assert first["playedSeconds"] == pytest.approx(reply_seconds, abs=0.05)  # all of it
        # Only the tool's name reaches the page by default, and the page shows it.
        assert first["toolCalls"][0] == {"name": "get_weather"}
        tools = page.locator("#log li.tool span").all_inner_texts()
        assert tools[:2] == ["get_weather…", "get_weather done"]
        assert script_errors == []
        assert page.locator("#log li.agent span").first.inner_text() == ANSWER

        second = wait_for_turn(page, 2)  # the fake microphone asks again
        assert second["transcript"] == ANSWER
        assert second["receivedAudioBytes"] == 2 * first["receivedAudioBytes"]
        assert second["playedSeconds"] == pytest.approx(2 * reply_seconds, abs=0.1)
        assert second["error"] is None
        assert page.locator("#log li.user").count() >= 2
        assert page.locator("#log li.agent.cut").count() == 0
        if SCREENSHOT:
            page.screenshot(path=SCREENSHOT)
        # The hint follows the button: no "Press Start talking" while it reads "Hang up".
        assert page.inner_text("#talk") == "Hang up"
        assert "Start talking" not in page.inner_text("#hint")
        page.click("#talk")
        assert page.inner_text("#talk") == "Start talking"
        assert "Start talking" in page.inner_text("#hint")


def test_the_page_reports_at_once_that_a_reply_started_playing(
    example_url: str, tmp_path: Path
) -> None:
    """The engine decides a continuation on "nothing played yet": the page must not make it
    wait for its next periodic report (250 ms) to learn that the user hears the reply."""
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=30.0)  # one question per call
    with browser_page(tmp_path / "profile", mic) as page:
        reports: list[dict[str, Any]] = []

        def on_socket(ws: Any) -> None:
            def sent(payload: Any) -> None:
                if isinstance(payload, str) and (message := json.loads(payload))["type"] in (
                    "played",
                    "stopped",
                ):
                    reports.append(message)

            ws.on("framesent", sent)

        page.on("websocket", on_socket)
        page.goto(example_url)
        page.click("#talk")
        wait_for_turn(page, 1)
    first = [r for r in reports if r["turn"] == 1]
    assert first[-1]["done"] is True
    started = next(r for r in first if r["seconds"] > 0)
    # Periodic reports alone make this the 250 ms step less the page's 80 ms lead (0.17 s
    # or more); reported at once, it is one 40 ms tick of the page's timer, plus any lag.
    assert started["seconds"] < 0.15, first[:4]


def test_with_tool_details_the_page_shows_args_and_output(tmp_path: Path) -> None:
    cmd = [sys.executable, "examples/web_voice_agent.py", "--port", "{port}", "--tool-details"]
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=30.0)
    with (
        serving(cmd, "/healthz", cwd=ROOT) as port,
        browser_page(tmp_path / "profile", mic) as page,
    ):
        script_errors: list[Any] = []
        page.on("pageerror", lambda error: script_errors.append(error))
        page.goto(f"http://127.0.0.1:{port}/")
        page.click("#talk")
        first = wait_for_turn(page, 1)
        assert first["toolCalls"][0] == {"name": "get_weather", "args": {"city": "Paris"}}
        tools = page.locator("#log li.tool span").all_inner_texts()
        assert tools == [
            'get_weather({"city":"Paris"})',
            "returned: It is 21 degrees and sunny in Paris.",
        ]
        assert first["error"] is None
        assert first["transcript"] == ANSWER
        assert script_errors == []


def test_speaking_over_the_reply_stops_it(example_url: str, tmp_path: Path) -> None:
    # The question comes round again 2.1 s after it ended: while the answer is playing.
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=1.6)
    with browser_page(tmp_path / "profile", mic) as page:
        page.goto(example_url)
        page.click("#talk")
        page.wait_for_function(
            "() => window.voiceStats.turns >= 1 && document.querySelector('#log li.agent.cut')"
        )
        cut = stats(page)
        reply_seconds = len(clip_pcm("weather_answer")) / 2 / 24_000
        assert cut["turns"] == 1
        assert cut["state"] in ("listening", "thinking")  # the user is talking, not the agent
        assert 0 < cut["playedSeconds"] < reply_seconds - 0.1  # stopped early
        assert cut["receivedAudioBytes"] > 0


def test_a_reload_continues_the_conversation_of_a_deployment(
    deployment: str, upstream: Any, tmp_path: Path
) -> None:
    """The page keeps a LangGraph deployment's conversation id in sessionStorage: after a
    reload its next question is asked with the turns before it."""
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=30.0)  # one question per call
    stored = "() => sessionStorage.getItem('voice-conversation')"
    with worker(deployment) as ws_url, browser_page(tmp_path / "profile", mic) as page:
        page_url = ws_url.replace("ws://", "http://").removesuffix("ws")
        page.goto(page_url)
        page.click("#talk")
        first = wait_for_turn(page, 1)
        assert first["transcript"] == ANSWER
        assert first["resumed"] is False
        conversation = page.evaluate(stored)
        assert len(conversation) == 32
        page.click("#talk")  # hang up
        asked = len(upstream.requests)

        page.reload()
        page.click("#talk")
        again = wait_for_turn(page, 1)
        assert again["resumed"] is True
        assert again["transcript"] == ANSWER
        assert page.evaluate(stored) == conversation
    request = upstream.requests[asked]  # the first model call of the turn after the reload
    assert [m["role"] for m in request.json["messages"] if m["role"] != "system"] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


def test_a_second_tab_on_the_conversation_closes_the_first_with_its_reason(
    deployment: str, tmp_path: Path
) -> None:
    mic = fake_mic_wav(tmp_path / "question.wav", pause_s=30.0)  # one question per call
    with worker(deployment) as ws_url, browser_page(tmp_path / "profile", mic) as first:
        page_url = ws_url.replace("ws://", "http://").removesuffix("ws")
        script_errors: list[Any] = []
        first.on("pageerror", lambda error: script_errors.append(error))
        first.goto(page_url)
        first.click("#talk")
        wait_for_turn(first, 1)
        conversation = first.evaluate("() => sessionStorage.getItem('voice-conversation')")

        second = first.context.new_page()  # another tab, resuming the same conversation
        second.goto(page_url)
        second.evaluate(f"() => sessionStorage.setItem('voice-conversation', '{conversation}')")
        second.click("#talk")
        second.wait_for_function("() => window.voiceStats.connected")
        first.wait_for_function("() => window.voiceStats.closed !== null")
        assert stats(first)["closed"] == {
            "code": 4409,
            "reason": "This conversation continued in another tab.",
        }
        shown = first.locator("#log li.error span").all_inner_texts()
        assert shown == ["This conversation continued in another tab."]
        assert first.inner_text("#talk") == "Start talking"  # the first tab hung up
        assert stats(second)["resumed"] is True
        assert script_errors == []


def test_a_yeah_over_the_reply_pauses_it_and_it_plays_on(example_url: str, tmp_path: Path) -> None:
    """The page is stopped for the short sound, then gets the rest and plays it to the end."""
    from langchain_openrouter_audio.testing import speech_pcm16
    from tests._helpers import HAS_ESPEAK

    if not HAS_ESPEAK:
        pytest.skip("espeak-ng is not installed")
    question = resample_pcm16(clip_pcm("question"), 24_000, FAKE_MIC_RATE)
    yeah = speech_pcm16("Yeah.", sample_rate=FAKE_MIC_RATE)
    mic = tmp_path / "yeah.wav"
    with wave.open(str(mic), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FAKE_MIC_RATE)
        # The answer plays from about 0.8 s after the question; "yeah" 1.5 s after it.
        w.writeframes(silence(0.5) + question + silence(1.5) + yeah + silence(20.0))
    with browser_page(tmp_path / "profile", mic) as page:
        page.goto(example_url)
        page.click("#talk")
        first = wait_for_turn(page, 1)
        reply_bytes = len(clip_pcm("weather_answer"))
        assert first["transcript"] == ANSWER
        assert first["playedSeconds"] == pytest.approx(reply_bytes / 48_000, abs=0.1)  # all
        assert first["receivedAudioBytes"] > reply_bytes  # the rest came again after the stop
        assert page.locator("#log li.agent.cut").count() == 0
        assert page.locator("#log li.user").count() == 1  # "yeah" was no turn
        assert first["turns"] == 1
