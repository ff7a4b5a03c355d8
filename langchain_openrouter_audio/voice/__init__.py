"""Voice loop building blocks: frames, resampling, mu-law, endpointing, barge-in, sessions."""

from langchain_openrouter_audio.voice.endpointer import Endpointer
from langchain_openrouter_audio.voice.frames import FrameBuffer
from langchain_openrouter_audio.voice.mulaw import mulaw_to_pcm16, pcm16_to_mulaw
from langchain_openrouter_audio.voice.resample import Resampler, resample_pcm16

__all__ = [
    "Endpointer",
    "FrameBuffer",
    "Resampler",
    "mulaw_to_pcm16",
    "pcm16_to_mulaw",
    "resample_pcm16",
]
