"""Channels for the turn engine: local devices and files, a browser page (and phone lines).

Each implements `langchain_openrouter_audio.voice.transport.VoiceTransport`: it moves audio
in and out and reports what was played; the `TurnEngine` does everything else.
"""

from langchain_openrouter_audio.voice.transports.local import LocalTransport

__all__ = ["LocalTransport"]
