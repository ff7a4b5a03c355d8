"""Offline testing for OpenRouter audio clients: a local server speaking OpenRouter's protocol.

`OpenRouterTestServer` listens on 127.0.0.1, applies the gateway's checks, and answers each
``POST /api/v1/chat/completions`` with a scripted `Reply` (text, speech, tool calls,
errors, and stream faults such as mid-stream errors, cut connections and stalls).

Streams take the shapes live servers really send (``Reply(wire=...)``: ``"openrouter"``
by default, ``"openai"`` with no finish reason and chunks without ``choices``,
``"azure"``, or the documented ``"tidy"`` one). `recorded_reply` replays a recorded SSE
body byte for byte and `raw_reply` sends any status, headers and bytes, for testing
against broken or hostile servers.

Examples:
    >>> from langchain_openrouter_audio.testing import (
    ...     OpenRouterTestServer, raw_reply, speech_reply, tone_pcm16)
    >>> with OpenRouterTestServer(api_key="test-key") as server:
    ...     server.enqueue(speech_reply(tone_pcm16(0.5), "Hello there!"))
    ...     server.enqueue(speech_reply(tone_pcm16(0.5), "Hi", wire="openai"))
    ...     server.enqueue(raw_reply(b'{"error": {"code": 503}}', status=503))
    ...     # point the client at server.base_url with api_key="test-key"

`answer_like_a_model` answers like a patient model with the spoken clips shipped with the
package (`clip_wav`, `clip_pcm16`, `clip_transcript`); ``python -m
langchain_openrouter_audio.testing`` serves it and prints the environment variables that
point `ChatOpenRouterAudio()` at it. `TwilioSimulator` plays Twilio's part in phone calls
to a ``voice_app`` (signed webhook and Media Streams socket, real-time mu-law audio,
``mark`` echoes and ``clear``). For pytest, the ``openrouter_server`` fixture lives in
``langchain_openrouter_audio.testing.pytest_plugin``.
"""

from ._answers import CLIPS, answer_like_a_model, clip_pcm16, clip_transcript, clip_wav
from ._raw import raw_reply, recorded_reply
from ._replies import (
    WIRES,
    Reply,
    Wire,
    error_reply,
    rate_limit_reply,
    speech_reply,
    text_reply,
    tool_call_reply,
)
from ._request import RecordedRequest
from ._server import OpenRouterTestServer
from ._speech import SAMPLE_RATE, speech_pcm16, tone_pcm16
from ._twilio import PlayedSpan, SimulatedCall, TwilioCallRefused, TwilioSimulator

__all__ = [
    "CLIPS",
    "OpenRouterTestServer",
    "PlayedSpan",
    "RecordedRequest",
    "Reply",
    "SAMPLE_RATE",
    "SimulatedCall",
    "WIRES",
    "answer_like_a_model",
    "clip_pcm16",
    "clip_transcript",
    "clip_wav",
    "Wire",
    "error_reply",
    "rate_limit_reply",
    "raw_reply",
    "recorded_reply",
    "speech_pcm16",
    "speech_reply",
    "text_reply",
    "tone_pcm16",
    "tool_call_reply",
    "TwilioCallRefused",
    "TwilioSimulator",
]
