"""Our `X-Twilio-Signature` check agrees with the `twilio` package's own `RequestValidator`."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_openrouter_audio.web._twilio_signature import (
    signature_algorithm,
    twilio_signature,
    valid_twilio_signature,
)

twilio = pytest.importorskip("twilio.request_validator", reason="the twilio package is missing")
RequestValidator = twilio.RequestValidator

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TOKEN = "12345678901234567890123456789012"
WEBHOOK_FORM = {
    "AccountSid": "AC" + "0" * 32,
    "ApiVersion": "2010-04-01",
    "CallSid": "CA" + "1" * 32,
    "CallStatus": "ringing",
    "Called": "+15005550006",
    "Caller": "+14155551234",
    "Direction": "inbound",
    "From": "+14155551234",
    "To": "+15005550006",
    "CallerName": "",
}

URLS = [
    "https://example.com/twilio/voice",
    "https://example.com:443/twilio/voice",
    "http://example.com/twilio/voice",
    "http://127.0.0.1:8123/twilio/voice",
    "https://abc.ngrok.app/twilio/voice?lang=fr&x=%20y",
    "wss://example.com/twilio/media",
    "wss://example.com:8443/twilio/media",
    "https://user:pw@example.com/voice",
    "https://example.com/voice/",
    "https://exämple.com/vöice?ü=ß",
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", [{}, WEBHOOK_FORM, {"Digits": "1234#", "Body": "héllo ✓"}])
def test_the_signature_is_twilios(url: str, params: dict[str, str]) -> None:
    validator = RequestValidator(TOKEN)
    assert twilio_signature(TOKEN, url, params) == validator.compute_signature(url, params)
    signature = validator.compute_signature(url, params)
    assert valid_twilio_signature(TOKEN, url, params, signature)
    assert validator.validate(url, params, signature)


@pytest.mark.parametrize("url", URLS)
def test_port_variants_are_accepted_as_the_validator_accepts_them(url: str) -> None:
    validator = RequestValidator(TOKEN)
    for signed_url in (url, url.replace("example.com/", "example.com:443/")):
        signature = twilio_signature(TOKEN, signed_url, WEBHOOK_FORM)
        ours = valid_twilio_signature(TOKEN, url, WEBHOOK_FORM, signature)
        assert ours == validator.validate(url, WEBHOOK_FORM, signature)


def test_repeated_parameters_sign_each_distinct_value_in_order() -> None:
    class MultiDict(dict[str, list[str]]):
        def getall(self, key: str) -> list[str]:
            return self[key]

    pairs = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "y")]
    multi = MultiDict(b=["2"], a=["z", "y", "y"])
    url = "https://example.com/x"
    assert twilio_signature(TOKEN, url, pairs) == RequestValidator(TOKEN).compute_signature(
        url, multi
    )


def test_sha256_and_json_bodies_match_the_validator() -> None:
    validator = RequestValidator(TOKEN)
    body = '{"CallSid": "CA1"}'
    url = "https://example.com/hook?bodySHA256=" + hashlib.sha256(body.encode()).hexdigest()
    for algorithm in ("HMAC_SHA1", "HMAC_SHA256"):
        signature = validator.compute_signature(url, {}, algorithm)
        assert twilio_signature(TOKEN, url, {}, algorithm=algorithm) == signature
        assert valid_twilio_signature(TOKEN, url, body, signature, algorithm=algorithm)
        assert validator.validate(url, body, signature, algorithm)
        assert not valid_twilio_signature(TOKEN, url, body + " ", signature, algorithm=algorithm)
        assert not validator.validate(url, body + " ", signature, algorithm)
    assert not valid_twilio_signature(TOKEN, url, body, "x", algorithm="HMAC_MD5")
    assert signature_algorithm("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256") == "HMAC_SHA256"
    assert signature_algorithm(None) == signature_algorithm("key=k") == "HMAC_SHA1"


@pytest.mark.parametrize("signature", ["", None, "AAAA", "not base64 at all"])
def test_missing_or_garbage_signatures_fail(signature: str | None) -> None:
    assert not valid_twilio_signature(TOKEN, URLS[0], WEBHOOK_FORM, signature)


def test_a_bad_port_fails_instead_of_raising() -> None:
    assert not valid_twilio_signature(TOKEN, "https://example.com:99999/x", {}, "AAAA")


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
hosts = st.sampled_from(["example.com", "example.com:443", "example.com:80", "10.0.0.1:8080"])
schemes = st.sampled_from(["https", "http", "wss", "ws"])
paths = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)


@PROPERTY
@given(
    token=values,
    scheme=schemes,
    host=hosts,
    path=paths,
    params=st.dictionaries(names, values, max_size=8),
    tamper=st.booleans(),
)
def test_agrees_with_twilios_validator_on_any_request(
    token: str, scheme: str, host: str, path: str, params: dict[str, str], tamper: bool
) -> None:
    url = f"{scheme}://{host}/{path}"
    validator = RequestValidator(token)
    signature = validator.compute_signature(url, params)
    assert twilio_signature(token, url, params) == signature
    if tamper:
        signature = twilio_signature(token + "x", url, params)
    assert valid_twilio_signature(token, url, params, signature) == validator.validate(
        url, params, signature
    )
