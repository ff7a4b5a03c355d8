"""What the user said (audio or text), waiting for its turn, and the question it becomes."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import HumanMessage

from langchain_openrouter_audio.audio import audio_block_from_bytes, pcm16_to_wav

__all__ = ["Utterance"]


@dataclass
class Utterance:
    """What the user said (audio or text), waiting for its turn."""

    pcm: bytes | None
    text: str | None
    endpoint_delay_s: float
    ended_at: float  # perf_counter
    ended_sample: int  # position on the input timeline
    interrupts: bool  # starts at once, cutting a reply that is playing

    def question(self, rate: int) -> HumanMessage:
        """The user's turn as the agent gets it: the audio (at `rate`) as a WAV, or the text."""
        if self.pcm is not None:
            wav = pcm16_to_wav(self.pcm, sample_rate=rate)
            return HumanMessage(content=[dict(audio_block_from_bytes(wav, "audio/wav"))])
        return HumanMessage(content=self.text or "")
