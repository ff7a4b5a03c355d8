"""`X-Twilio-Signature`: the check that a webhook or a Media Streams socket comes from Twilio.

Computes what the `twilio` package's `RequestValidator` computes (without depending on it):
the base64 HMAC of the full URL followed by every POST parameter's name and value, names
sorted (a repeated name's distinct values sorted too), keyed with the account's auth token.
Twilio's signing side is not consistent about the port in the URL, so a signature is
accepted for the URL with or without its default port, as the validator does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import ParseResult, parse_qs, urlparse

__all__ = [
    "SETTINGS_HEADER",
    "SIGNATURE_HEADER",
    "signature_algorithm",
    "twilio_signature",
    "valid_twilio_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
"""Names the algorithm when a webhook is signed with a shared key (`algorithm=HMAC_SHA256`)."""

_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def twilio_signature(
    token: str, url: str, params: Params | None = None, *, algorithm: str = "HMAC_SHA1"
) -> str:
    """The signature Twilio sends for a request to `url` with POST `params`.

    ```python
    from langchain_openrouter_audio.web._twilio_signature import twilio_signature

    sig = twilio_signature("token", "https://example.com/voice", {"CallSid": "CA1"})
    assert len(sig) == 28  # base64 of a 20-byte SHA-1
    ```
    """
    digest = _HASHES.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"unsupported signature algorithm {algorithm!r}")
    signed = url + "".join(name + value for name, value in _sorted_pairs(params or {}))
    mac = hmac.new(token.encode("utf-8"), signed.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def valid_twilio_signature(
    token: str,
    url: str,
    params: Params | None,
    signature: str | None,
    *,
    algorithm: str | None = None,
) -> bool:
    """True when `signature` is Twilio's for `url` and `params` (port or no port).

    `params` may also be a JSON body (a string): it is then checked against the URL's
    ``bodySHA256`` query parameter and the signature covers the URL alone, as Twilio signs
    JSON webhooks. An unknown `algorithm` never validates.

    ```python
    from langchain_openrouter_audio.web._twilio_signature import (
        twilio_signature, valid_twilio_signature)

    url = "wss://example.com/twilio/media"
    assert valid_twilio_signature("token", url, {}, twilio_signature("token", url))
    assert not valid_twilio_signature("other", url, {}, twilio_signature("token", url))
    ```
    """
    name = (algorithm or "HMAC_SHA1").upper()
    if name not in _HASHES or not signature:
        return False
    try:
        parsed = urlparse(url)
        variants = (_without_port(parsed), _with_port(parsed))
    except ValueError:  # a port that is not a number, or out of range
        return False
    body_ok = True
    form: Params | None = params
    query = parse_qs(parsed.query)
    if isinstance(params, str):
        form = None
        if "bodySHA256" in query:
            body_hash = hashlib.sha256(params.encode("utf-8")).hexdigest()
            body_ok = hmac.compare_digest(body_hash, query["bodySHA256"][0])
    expected = signature.encode("utf-8")
    matches = [
        hmac.compare_digest(
            twilio_signature(token, variant, form, algorithm=name).encode(), expected
        )
        for variant in variants
    ]
    return body_ok and any(matches)


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named in `X-Twilio-Webhooks-Signature-Settings`; HMAC-SHA1 without it."""
    for part in (settings_header or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "algorithm" and value.strip():
            return value.strip()
    return "HMAC_SHA1"


def _sorted_pairs(params: Params) -> list[tuple[str, str]]:
    values: dict[str, set[str]] = {}
    pairs = params.items() if isinstance(params, Mapping) else params
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    return [(name, value) for name in sorted(values) for value in sorted(values[name])]


def _without_port(uri: ParseResult) -> str:
    if not uri.port:
        return uri.geturl()
    return uri._replace(netloc=uri.netloc.split(":")[0]).geturl()


def _with_port(uri: ParseResult) -> str:
    if uri.port:
        return uri.geturl()
    port = 443 if uri.scheme == "https" else 80
    return uri._replace(netloc=f"{uri.netloc}:{port}").geturl()
