"""What a conversation's turns were: `VoiceTurn` per exchange, `VoiceSummary` for a session."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, BaseMessage

from langchain_openrouter_audio.cost import OpenRouterCallbackHandler

__all__ = ["VoiceSummary", "VoiceTurn"]


@dataclass
class VoiceTurn:
    """One exchange: what the user said, what the agent said and the user heard, how fast.

    Latency, in seconds: `endpoint_delay_s` is the silence the endpointer waited for after
    the user stopped; `response_s` (also `first_audio_s`) runs from the utterance handed to
    the agent to its first reply audio received; `first_played_s` from the utterance handed
    over to the first reply audio the transport reported played (None if none was).
    `latency_s` is end of user speech -> first audio played where the transport reported
    it, else -> first audio received. `user_text` is what the user said, in words: the
    transcript (with `transcription=` set) or the typed text; None when neither is known.
    `heard_s` is how much reply audio was played;
    `cancelled` says a barge-in cut the agent's call mid-stream (such a call reports no
    cost: OpenRouter sends `usage.cost` at the end of a stream).
    """

    index: int
    user_audio_s: float
    reply: AIMessage | None
    transcript: str
    interrupted: bool
    heard_s: float
    endpoint_delay_s: float
    response_s: float | None
    cost: float
    cancelled: bool = False
    error: str | None = None
    first_played_s: float | None = None
    user_text: str | None = None

    @property
    def first_audio_s(self) -> float | None:
        """Utterance handed to the agent -> first reply audio received (= `response_s`)."""
        return self.response_s

    @property
    def latency_s(self) -> float | None:
        """End of user speech -> first reply audio played (or received, if not reported)."""
        first = self.first_played_s if self.first_played_s is not None else self.response_s
        if first is None:
            return None
        return self.endpoint_delay_s + first


@dataclass
class VoiceSummary:
    """All turns of a session and what they cost (OpenRouter's `usage.cost`)."""

    turns: list[VoiceTurn]
    usage: OpenRouterCallbackHandler
    messages: list[BaseMessage] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return self.usage.total_cost

    @property
    def latencies_s(self) -> list[float]:
        return [t.latency_s for t in self.turns if t.latency_s is not None]

    def __str__(self) -> str:
        lines = []
        for t in self.turns:
            latency = f"{t.latency_s:.3f} s" if t.latency_s is not None else "-"
            cut = f" (interrupted after {t.heard_s:.2f} s)" if t.interrupted else ""
            said = f"{t.user_text!r} -> " if t.user_text is not None else ""
            lines.append(f"turn {t.index}: latency {latency}{cut}: {said}{t.transcript!r}")
        if self.latencies_s:
            lines.append(
                f"latency: median {statistics.median(self.latencies_s):.3f} s, "
                f"max {max(self.latencies_s):.3f} s"
            )
        lines.append(
            f"cost: ${self.total_cost:.6f} over {self.usage.successful_requests} requests "
            f"({self.usage.prompt_audio_tokens} audio tokens in, "
            f"{self.usage.completion_audio_tokens} out)"
        )
        return "\n".join(lines)
