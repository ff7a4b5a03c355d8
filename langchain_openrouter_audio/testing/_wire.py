"""Render a `Reply` as OpenRouter chat-completion JSON: stream chunks or one body."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ._gateway import wants_audio
from ._replies import Reply
from ._usage import compute_usage
from ._vendors import usage_for_wire, vendor_chunks

__all__ = ["Rendering", "new_generation_id"]

_ARGUMENT_PIECE_CHARS = 8


def new_generation_id() -> str:
    """An id shaped like OpenRouter's ``gen-<unix time>-<random>``."""
    return f"gen-{int(time.time())}-{secrets.token_hex(10)}"


def _cut(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _interleave(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for i in range(max(len(first), len(second))):
        merged.extend(first[i : i + 1])
        merged.extend(second[i : i + 1])
    return merged


@dataclass(frozen=True)
class Rendering:
    """One `Reply` answering one request ``body``, with a fixed generation id and time.

    Examples:
        >>> from langchain_openrouter_audio.testing import text_reply
        >>> body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        >>> r = Rendering(text_reply("Hello"), body, gen_id="gen-1-ab", created=1)
        >>> [c["choices"][0]["delta"] for c in r.stream_chunks()[:2]]
        [{'role': 'assistant', 'content': 'Hell', 'refusal': None}, {'content': 'o'}]
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

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.gen_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "provider": self.reply.provider,
            "system_fingerprint": None,
            **extra,
            "choices": choices,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        content = delta.get("content")
        choice = {
            "index": 0,
            "delta": delta,
            "finish_reason": finish_reason,
            "native_finish_reason": finish_reason,
            "logprobs": self.logprobs([content] if isinstance(content, str) and content else []),
        }
        return self._envelope([choice])

    def logprobs(self, tokens: list[str]) -> dict[str, Any] | None:
        """``logprobs`` for these text pieces (one token each), when the request asked.

        Deterministic: a piece of n characters gets ``-0.05 * n``; ``top_logprobs=k``
        lists the token itself and k - 1 made-up alternatives, each one less likely.
        """
        body = self.body if isinstance(self.body, dict) else {}
        if body.get("logprobs") is not True or not tokens:
            return None
        top = body.get("top_logprobs")
        top = top if isinstance(top, int) and not isinstance(top, bool) else 0
        content = []
        for token in tokens:
            logprob = round(-0.05 * len(token), 4)
            alternatives = [(token, logprob)]
            alternatives += [(f"{token}~{k}", round(logprob - k, 4)) for k in range(1, top)]
            content.append(
                {
                    "token": token,
                    "logprob": logprob,
                    "bytes": list(token.encode("utf-8")),
                    "top_logprobs": [
                        {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                        for t, lp in alternatives[:top]
                    ],
                }
            )
        return {"content": content, "refusal": None}

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

    def stream_chunks(self) -> list[dict[str, Any]]:
        """Every ``data:`` payload of a successful stream, in order, without ``[DONE]``."""
        if self.reply.wire in ("openai", "azure"):
            return vendor_chunks(self)
        reply = self.reply
        deltas = self.text_deltas()
        if self.sends_audio:
            deltas += self._audio_deltas()
        deltas += self.tool_call_deltas()
        if not deltas:
            deltas = [{"content": ""}]
        if reply.wire == "openrouter":
            # Relayed OpenAI deltas: `refusal` always, `content: null` beside audio.
            first = deltas[0]
            head = {"role": "assistant", "content": first.get("content"), "refusal": None}
            deltas[0] = {**head, **{k: v for k, v in first.items() if k != "content"}}
        else:
            deltas[0] = {"role": "assistant", **deltas[0]}
        chunks = [self._chunk(d) for d in deltas]
        finish = reply.effective_finish_reason
        if not reply.omit_finish:
            chunks.append(self._chunk({}, finish))
        if reply.wire == "openrouter" and not reply.omit_finish:
            # OpenRouter repeats the finish reason on the chunk that carries the usage.
            usage_chunk = self._chunk({}, finish)
            usage_chunk["usage"] = self.usage()
        else:
            usage_chunk = self._envelope([])
            usage_chunk["usage"] = self.usage()
        chunks.append(usage_chunk)
        return chunks

    def error_chunk(self) -> dict[str, Any]:
        """OpenRouter's mid-stream error event: top-level ``error`` plus a terminating choice."""
        choice = {
            "index": 0,
            "delta": {"content": ""},
            "finish_reason": "error",
            "native_finish_reason": "error",
        }
        return self._envelope([choice], error=self.reply.stream_error)

    def completion_body(self) -> dict[str, Any]:
        """The JSON body of a non-streamed ``chat.completion``."""
        reply = self.reply
        finish = reply.effective_finish_reason
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or reply.transcript or None,
            "refusal": None,
        }
        if self.sends_audio:
            # The shape OpenAI (and a relay) sends for a whole spoken reply.
            message["content"] = reply.text or None
            message["audio"] = {
                "id": self.audio_id,
                "data": base64.b64encode(reply.pcm).decode("ascii"),
                "expires_at": self.expires_at,
                "transcript": reply.transcript,
            }
            message["annotations"] = []
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": self.gen_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "provider": reply.provider,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "native_finish_reason": finish,
                    "logprobs": self.logprobs([d["content"] for d in self.text_deltas()]),
                    "message": message,
                }
            ],
            "usage": self.usage(),
        }
