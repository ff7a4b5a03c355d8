"""Offline testing for OpenRouter audio clients: a local server speaking OpenRouter's protocol.

`OpenRouterTestServer` listens on 127.0.0.1, applies the gateway's checks, and answers each
``POST /api/v1/chat/completions`` with a scripted `Reply` (text, speech, tool calls,
errors, and stream faults such as mid-stream errors, cut connections and stalls).

Example:
    >>> from langchain_openrouter_audio.testing import (
    ...     OpenRouterTestServer, speech_reply, tone_pcm16)
    >>> with OpenRouterTestServer(api_key="test-key") as server:
    ...     server.enqueue(speech_reply(tone_pcm16(0.5), "Hello there!"))
    ...     # point the client at server.base_url with api_key="test-key"

For pytest, the ``openrouter_server`` fixture lives in
``langchain_openrouter_audio.testing.pytest_plugin``.
"""

from ._replies import (
    Reply,
    error_reply,
    rate_limit_reply,
    speech_reply,
    text_reply,
    tool_call_reply,
)
from ._request import RecordedRequest
from ._server import OpenRouterTestServer
from ._speech import SAMPLE_RATE, speech_pcm16, tone_pcm16

__all__ = [
    "OpenRouterTestServer",
    "RecordedRequest",
    "Reply",
    "SAMPLE_RATE",
    "error_reply",
    "rate_limit_reply",
    "speech_pcm16",
    "speech_reply",
    "text_reply",
    "tone_pcm16",
    "tool_call_reply",
]
