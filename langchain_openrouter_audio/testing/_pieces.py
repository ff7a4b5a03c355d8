"""The pieces of one scripted reply (text, audio, tool-call deltas, usage), shape-neutral."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ._gateway import wants_audio
from ._replies import Reply
from ._usage import compute_usage, usage_for_wire

__all__ = ["ReplyPieces"]

_ARGUMENT_PIECE_CHARS = 8


def _cut(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _interleave(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for i in range(max(len(first), len(second))):
        merged.extend(first[i : i + 1])
        merged.extend(second[i : i + 1])
    return merged


@dataclass(frozen=True)
class ReplyPieces:
    """One `Reply` answering one request ``body``: what any wire shape is made of.

    `_wire.Rendering` adds OpenRouter's envelopes; `_vendors` builds OpenAI's and Azure's
    from the same pieces.
    """

    reply: Reply
    body: Any
    gen_id: str
    created: int

    @property
    def model(self) -> str:
        if self.reply.model is not None:
            return self.reply.model
        requested = self.body.get("model") if isinstance(self.body, dict) else None
        return requested if isinstance(requested, str) else "openai/gpt-audio"

    @property
    def sends_audio(self) -> bool:
        """Audio goes out only when asked for; otherwise the transcript becomes text."""
        return wants_audio(self.body) and bool(self.reply.transcript or self.reply.pcm)

    @property
    def content_text(self) -> str:
        reply = self.reply
        return reply.text if self.sends_audio else (reply.text or reply.transcript)

    def usage(self) -> dict[str, Any]:
        """The reply's ``usage``, or one computed for the request in the wire's dialect."""
        reply = self.reply
        if reply.usage is not None:
            return reply.usage
        usage = compute_usage(
            self.body,
            completion_text=reply.transcript or reply.text,
            pcm_sent=len(reply.pcm) if self.sends_audio else 0,
            cost=reply.cost,
        )
        return usage if reply.wire == "tidy" else usage_for_wire(usage, reply.wire)

    @property
    def audio_id(self) -> str:
        """The audio id: the reply's, or one derived from the generation id."""
        return self.reply.audio_id or f"audio_{self.gen_id.rsplit('-', 1)[-1]}"

    @property
    def expires_at(self) -> int:
        reply = self.reply
        return reply.expires_at if reply.expires_at is not None else self.created + 3600

    def text_deltas(self) -> list[dict[str, Any]]:
        return [{"content": p} for p in _cut(self.content_text, self.reply.text_piece_chars)]

    def audio_pieces(self) -> list[dict[str, Any]]:
        """``{"transcript"}`` and ``{"data"}`` items in wire order, without id or expiry."""
        reply = self.reply
        transcript: list[dict[str, Any]] = [
            {"transcript": p} for p in _cut(reply.transcript, reply.text_piece_chars)
        ]
        step = reply.audio_piece_bytes or max(len(reply.pcm), 1)
        # Each piece is encoded on its own, as providers do, so padding shows up mid-stream.
        data: list[dict[str, Any]] = [
            {"data": base64.b64encode(reply.pcm[i : i + step]).decode("ascii")}
            for i in range(0, len(reply.pcm), step)
        ]
        return _interleave(transcript, data) if reply.interleave else transcript + data

    def _audio_deltas(self) -> list[dict[str, Any]]:
        audio = self.audio_pieces() or [{"transcript": ""}]
        audio = [{"id": self.audio_id, **audio[0]}, *audio[1:]]
        audio.append({"expires_at": self.expires_at})
        return [{"audio": a} for a in audio]

    def tool_call_deltas(self) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for index, call in enumerate(self.reply.tool_calls):
            function = {"name": call["name"], "arguments": ""}
            first = {"index": index, "id": call["id"], "type": "function", "function": function}
            deltas.append({"tool_calls": [first]})
            deltas.extend(
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in _cut(call["arguments"], _ARGUMENT_PIECE_CHARS)
            )
        return deltas
