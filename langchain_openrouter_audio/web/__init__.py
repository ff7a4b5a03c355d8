"""A voice agent on a web page: `voice_app(agent)` is an ASGI app with a page and a WebSocket.

Needs ``pip install 'langchain-openrouter-audio[web]'`` (Starlette and uvicorn).

```python
import uvicorn
from langchain_openrouter_audio import ChatOpenRouterAudio
from langchain_openrouter_audio.web import voice_app

uvicorn.run(voice_app(ChatOpenRouterAudio()), port=8000)
```

WebSocket protocol at ``/ws`` (text frames are JSON objects with a ``type``):

- page -> server: ``{"type": "hello", "sample_rate": 16000}`` first (with a `RemoteGraph`
  agent, ``"conversation": id`` from an earlier ``ready`` resumes it); then binary frames of
  microphone audio, raw PCM16 little-endian mono at that rate (the page sends 20 ms frames);
  ``{"type": "ptt_start"}`` / ``{"type": "ptt_end"}`` around push-to-talk speech (bypasses
  endpointing); ``{"type": "played", "turn": n, "seconds": s, "done": bool}`` playback
  progress; ``{"type": "stopped", "turn": n, "seconds": s}`` after a ``stop``;
  ``{"type": "text", "text": "..."}`` typed text, answered like an utterance.
- server -> page: ``ready`` (``session``; with a `RemoteGraph` agent ``conversation`` and
  ``resumed``); ``speech_start`` (the user started talking); ``utterance``
  (an utterance ended: turn ``n`` starts); ``transcript`` pieces; ``tool_call`` and
  ``tool_result`` (the tool's ``name``; ``args`` and ``output`` only with
  ``voice_app(tool_details=True)``); ``audio_start`` with the reply's ``sample_rate``,
  followed by binary frames of reply speech (PCM16 little-endian mono, whole samples);
  ``reply_end`` with ``audio_bytes``, ``session_cost`` and latency (``endpoint_delay_s``,
  ``first_audio_s``, ``first_played_s``); ``stop`` (barge-in: stop playing turn ``n`` now and answer
  ``stopped``); ``error``.

Each connection is a `langchain_openrouter_audio.voice.TurnEngine` over a
`langchain_openrouter_audio.voice.transports.browser.BrowserTransport`.
"""

try:
    import starlette  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "langchain_openrouter_audio.web needs Starlette and uvicorn: "
        "pip install 'langchain-openrouter-audio[web]'"
    ) from err

from langchain_openrouter_audio.web._app import voice_app

__all__ = ["voice_app"]
