"""Channels for the turn engine: local devices and files, a browser page, a phone line.

Each implements `langchain_openrouter_audio.voice.transport.VoiceTransport`: it moves audio
in and out and reports what was played; the `TurnEngine` does everything else.
"""

from langchain_openrouter_audio.voice.transports.local import LocalTransport
from langchain_openrouter_audio.voice.transports.twilio import TwilioCall, TwilioTransport

__all__ = ["LocalTransport", "TwilioCall", "TwilioTransport"]
