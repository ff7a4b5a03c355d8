"""Voice loop: one turn engine over transports, and its building blocks (frames, resampling,
mu-law, endpointing, barge-in, recording).

```python
from langchain_openrouter_audio.voice import VoiceSession, WavFileSink, WavFileSource

session = VoiceSession(agent, source=WavFileSource("questions.wav"), sink=WavFileSink())
summary = await session.run()
```
"""

from langchain_openrouter_audio.voice.echo import EchoCanceller
from langchain_openrouter_audio.voice.endpointer import Endpointer, TurnDetector
from langchain_openrouter_audio.voice.engine import TurnEngine
from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from langchain_openrouter_audio.voice.recording import ConversationRecorder
from langchain_openrouter_audio.voice.resample import Resampler, resample_pcm16
from langchain_openrouter_audio.voice.session import VoiceSession
from langchain_openrouter_audio.voice.sinks import AudioSink, CallbackSink, SpeakerSink, WavFileSink
from langchain_openrouter_audio.voice.smart_turn import SmartTurnDetector
from langchain_openrouter_audio.voice.sources import (
    AudioSource,
    MicrophoneSource,
    PcmSource,
    WavFileSource,
)
from langchain_openrouter_audio.voice.transport import EngineHandle, VoiceEvent, VoiceTransport
from langchain_openrouter_audio.voice.transports.local import LocalTransport
from langchain_openrouter_audio.voice.truncate import truncate_to_heard
from langchain_openrouter_audio.voice.turn import VoiceSummary, VoiceTurn

__all__ = [
    "AudioSink",
    "AudioSource",
    "CallbackSink",
    "ConversationRecorder",
    "EchoCanceller",
    "EngineHandle",
    "Endpointer",
    "FrameBuffer",
    "LocalTransport",
    "MicrophoneSource",
    "PcmSource",
    "Resampler",
    "SmartTurnDetector",
    "SpeakerSink",
    "TurnDetector",
    "TurnEngine",
    "VoiceEvent",
    "VoiceSession",
    "VoiceSummary",
    "VoiceTransport",
    "VoiceTurn",
    "WavFileSink",
    "WavFileSource",
    "mulaw_to_pcm16",
    "pcm16_to_mulaw",
    "resample_pcm16",
    "truncate_to_heard",
]
