"""The Twilio routes over real sockets: TwiML for a signed webhook, 403 for anything unsigned.

The call itself is a stand-in here (it accepts and reads the stream); calls through the
engine are in test_phone_calls.py.
"""

from __future__ import annotations

import asyncio
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from langchain_openrouter_audio.testing import TwilioCallRefused, TwilioSimulator
from langchain_openrouter_audio.web._twilio import twilio_routes
from langchain_openrouter_audio.web._twilio_signature import twilio_signature
from tests.phone.conftest import AUTH_TOKEN

RequestValidator = pytest.importorskip("twilio.request_validator").RequestValidator

FORM = {"CallSid": "CA" + "1" * 32, "From": "+14155550100", "To": "+15005550006"}


def stand_in_app(public_url: str | None = None) -> tuple[Starlette, list[dict[str, Any]]]:
    """The Twilio routes with a call handler that records the messages it gets."""
    calls: list[dict[str, Any]] = []

    async def run_call(websocket: WebSocket) -> None:
        await websocket.accept()
        call: dict[str, Any] = {"messages": [], "ended": threading.Event()}
        calls.append(call)
        try:
            while True:
                call["messages"].append(await websocket.receive_json())
        except WebSocketDisconnect:
            pass
        finally:
            call["ended"].set()  # the test's loop is another thread's

    routes = twilio_routes(
        auth_token=SecretStr(AUTH_TOKEN), public_url=public_url, run_call=run_call
    )
    return Starlette(routes=routes), calls


def stream_of(twiml: str) -> ET.Element:
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return stream


async def test_a_signed_webhook_gets_twiml_connecting_the_call_to_the_stream(
    serve: Callable[..., str],
) -> None:
    app, _ = stand_in_app()
    base = serve(app)
    url = f"{base}/twilio/voice"
    # Signed by Twilio's own validator code, not ours.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, FORM)
    async with httpx.AsyncClient() as client:
        response = await client.post(url, data=FORM, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    stream = stream_of(response.text)
    assert stream.get("url") == f"wss://{base.removeprefix('http://')}/twilio/media"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters == {"From": "+14155550100", "To": "+15005550006", "CallSid": FORM["CallSid"]}


async def test_a_call_reaches_the_handler_with_twilios_messages(
    serve: Callable[..., str],
) -> None:
    app, calls = stand_in_app()
    twilio = TwilioSimulator(serve(app), auth_token=AUTH_TOKEN)
    async with twilio.call(from_="+33612345678") as call:
        await call.press("7")
        await call.wait(0.2)
    # The handler has read the stream to its end (the app runs in another thread, late on a
    # loaded machine).
    assert await asyncio.to_thread(calls[0]["ended"].wait, 10)
    messages = calls[0]["messages"]
    kinds = [m["event"] for m in messages]
    assert kinds[:2] == ["connected", "start"]
    assert kinds[-1] == "stop"
    assert "dtmf" in kinds
    assert kinds.count("media") >= 5
    start = messages[1]["start"]
    assert start["customParameters"]["From"] == "+33612345678"
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert all(m["streamSid"] == call.stream_sid for m in messages[1:])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": "garbage"},
        {"X-Twilio-Signature": twilio_signature("another-token", "http://x/twilio/voice", FORM)},
    ],
    ids=["unsigned", "empty", "garbage", "other-token"],
)
async def test_a_webhook_without_twilios_signature_is_refused(
    serve: Callable[..., str], headers: dict[str, str]
) -> None:
    app, calls = stand_in_app()
    base = serve(app)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base}/twilio/voice", data=FORM, headers=headers)
    assert response.status_code == 403
    assert "Stream" not in response.text
    assert calls == []


async def test_a_signature_for_other_params_or_another_url_is_refused(
    serve: Callable[..., str],
) -> None:
    app, _ = stand_in_app()
    base = serve(app)
    url = f"{base}/twilio/voice"
    validator = RequestValidator(AUTH_TOKEN)
    tampered = {**FORM, "From": "+19999999999"}
    async with httpx.AsyncClient() as client:
        for signed_url, signed_form in [(url, FORM), (url + "?x=1", tampered)]:
            signature = validator.compute_signature(signed_url, signed_form)
            response = await client.post(
                url, data=tampered, headers={"X-Twilio-Signature": signature}
            )
            assert response.status_code == 403


async def test_repeated_form_fields_are_all_signed(serve: Callable[..., str]) -> None:
    class MultiDict(dict[str, list[str]]):
        def getall(self, key: str) -> list[str]:
            return self[key]

    app, _ = stand_in_app()
    base = serve(app)
    url = f"{base}/twilio/voice"
    fields = [("CallSid", "CA1"), ("Tag", "b"), ("Tag", "a")]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        url, MultiDict(CallSid=["CA1"], Tag=["b", "a"])
    )
    headers = {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with httpx.AsyncClient() as client:
        ok = await client.post(url, content=urlencode(fields), headers=headers)
        dropped = await client.post(url, content=urlencode(fields[:2]), headers=headers)
    assert ok.status_code == 200
    assert dropped.status_code == 403


async def test_the_simulator_with_a_wrong_token_is_refused(serve: Callable[..., str]) -> None:
    app, calls = stand_in_app()
    twilio = TwilioSimulator(serve(app), auth_token="not-the-token")
    with pytest.raises(TwilioCallRefused) as refused:
        async with twilio.call():
            pass
    assert refused.value.status == 403
    assert calls == []


@pytest.mark.parametrize("signed_for", ["nothing", "other-token", "other-path", "ws-scheme"])
async def test_a_media_socket_without_twilios_signature_is_refused_before_accept(
    serve: Callable[..., str], signed_for: str
) -> None:
    app, calls = stand_in_app()
    base = serve(app)
    host = base.removeprefix("http://")
    signed = {
        "nothing": None,
        "other-token": twilio_signature("other", f"wss://{host}/twilio/media"),
        "other-path": twilio_signature(AUTH_TOKEN, f"wss://{host}/twilio/other"),
        "ws-scheme": twilio_signature(AUTH_TOKEN, f"ws://{host}/twilio/media"),
    }[signed_for]
    headers = {} if signed is None else {"X-Twilio-Signature": signed}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://{host}/twilio/media", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403
    assert calls == []


@pytest.mark.parametrize("signed_as", ["url", "params"])
async def test_a_stream_url_with_a_query_is_checked_as_twilio_signs_it(
    serve: Callable[..., str], signed_as: str
) -> None:
    app, calls = stand_in_app()
    host = serve(app).removeprefix("http://")
    url = f"wss://{host}/twilio/media"
    validator = RequestValidator(AUTH_TOKEN)
    signature = (
        validator.compute_signature(f"{url}?room=7", {})
        if signed_as == "url"
        else validator.compute_signature(url, {"room": "7"})
    )
    headers = {"X-Twilio-Signature": signature}
    async with connect(f"ws://{host}/twilio/media?room=7", additional_headers=headers) as ws:
        await ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    with pytest.raises(InvalidStatus):
        async with connect(f"ws://{host}/twilio/media?room=8", additional_headers=headers):
            pass
    await asyncio.sleep(0.2)
    assert len(calls) == 1


async def test_behind_a_proxy_the_public_url_is_what_is_signed_and_streamed_to(
    serve: Callable[..., str],
) -> None:
    public = "https://voice.example.com/agent"
    app, calls = stand_in_app(public_url=public)
    base = serve(app)
    validator = RequestValidator(AUTH_TOKEN)
    async with httpx.AsyncClient() as client:
        # Signed for the address Twilio knows, not the one the app listens on.
        signature = validator.compute_signature(f"{public}/twilio/voice", FORM)
        response = await client.post(
            f"{base}/twilio/voice", data=FORM, headers={"X-Twilio-Signature": signature}
        )
        assert response.status_code == 200
        stream_url = stream_of(response.text).get("url")
        assert stream_url == "wss://voice.example.com/agent/twilio/media"
        local = validator.compute_signature(f"{base}/twilio/voice", FORM)
        response = await client.post(
            f"{base}/twilio/voice", data=FORM, headers={"X-Twilio-Signature": local}
        )
        assert response.status_code == 403
    headers = {"X-Twilio-Signature": validator.compute_signature(stream_url, {})}
    async with connect(
        f"ws://{base.removeprefix('http://')}/twilio/media", additional_headers=headers
    ) as ws:
        await ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    await asyncio.sleep(0.2)
    assert len(calls) == 1


async def test_an_oversized_webhook_is_refused_unread(serve: Callable[..., str]) -> None:
    app, _ = stand_in_app()
    base = serve(app)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base}/twilio/voice", data={"x": "y" * 100_000})
    assert response.status_code == 413


def test_a_public_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="public_url"):
        twilio_routes(
            auth_token=SecretStr("t"),
            public_url="voice.example.com",
            run_call=lambda ws: None,  # type: ignore[arg-type,return-value]
        )


def test_voice_app_has_phone_routes_only_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openrouter_audio.web import voice_app

    def paths(app: Starlette) -> set[str]:
        return {getattr(route, "path", "") for route in app.routes}

    agent: Any = object()
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    assert "/twilio/voice" not in paths(voice_app(agent))
    assert {"/twilio/voice", "/twilio/media"} <= paths(voice_app(agent, twilio_auth_token="t"))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-env")
    assert {"/twilio/voice", "/twilio/media"} <= paths(voice_app(agent))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "")
    assert "/twilio/voice" not in paths(voice_app(agent))
    with pytest.raises(ValueError, match="twilio_auth_token"):
        voice_app(agent, twilio_auth_token=" ")
