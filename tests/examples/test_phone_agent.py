"""examples/phone_agent.py as a user runs it: served offline, called by the simulated Twilio."""

from __future__ import annotations

import re
import sys

import pytest

pytest.importorskip("starlette", reason="the [web] extra is not installed")
pytest.importorskip("websockets", reason="the websockets client is not installed")

from langchain_openrouter_audio.testing import TwilioCallRefused, TwilioSimulator
from tests._helpers import ROOT, clip_pcm, free_port, run_offline
from tests.web._proc import serving

TOKEN = "example-test-twilio-token"
ANSWER_S = len(clip_pcm("weather_answer")) / 2 / 24_000


async def test_a_call_to_the_served_example_hears_the_spoken_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)  # the served process inherits it
    cmd = [sys.executable, "examples/phone_agent.py", "--port", "{port}"]
    with serving(cmd, "/healthz", cwd=ROOT) as port:
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(TwilioCallRefused):  # the example checks Twilio's signature
            async with TwilioSimulator(base, auth_token="not-" + TOKEN).call():
                pass
        async with TwilioSimulator(base, auth_token=TOKEN).call() as call:
            await call.say(clip_pcm("question"), sample_rate=24_000)
            await call.until_reply_played(timeout_s=60)
    assert call.problems == []
    assert call.played_seconds == pytest.approx(ANSWER_S, abs=0.01)


def test_the_example_places_a_simulated_call_itself() -> None:
    port = free_port()
    result = run_offline(["examples/phone_agent.py", "--port", str(port), "--call"], ROOT)
    assert result.returncode == 0, result.stderr
    heard = re.search(r"The caller heard ([0-9.]+) s of answer", result.stdout)
    assert heard is not None, result.stdout
    assert float(heard[1]) == pytest.approx(ANSWER_S, abs=0.02)
