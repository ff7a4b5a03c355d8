"""Render a `Reply` as OpenRouter chat-completion JSON: stream chunks or one body."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ._pieces import ReplyPieces
from ._vendors import vendor_chunks

__all__ = ["Rendering", "new_generation_id"]


def new_generation_id() -> str:
    """An id shaped like OpenRouter's ``gen-<unix time>-<random>``."""
    return f"gen-{int(time.time())}-{secrets.token_hex(10)}"


@dataclass(frozen=True)
class Rendering(ReplyPieces):
    """One `Reply` answering one request ``body``, with a fixed generation id and time.

    Examples:
        >>> from langchain_openrouter_audio.testing import text_reply
        >>> body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        >>> r = Rendering(text_reply("Hello"), body, gen_id="gen-1-ab", created=1)
        >>> [c["choices"][0]["delta"] for c in r.stream_chunks()[:2]]
        [{'role': 'assistant', 'content': 'Hell', 'refusal': None}, {'content': 'o'}]
    """

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

    def billed(self, fraction: float = 1.0) -> tuple[float, dict[str, Any]]:
        """What OpenRouter's generation record holds once ``fraction`` of the reply went out
        (1.0: all of it): the cost and the completion tokens prorated, deterministically.

        Examples:
            >>> from langchain_openrouter_audio.testing import text_reply
            >>> body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            >>> r = Rendering(text_reply("Hello", cost=0.5), body, gen_id="gen-1-ab", created=1)
            >>> r.billed(0.25)[0], r.billed()[1]["finish_reason"]
            (0.125, 'stop')
        """
        usage = self.usage()
        cost = usage.get("cost")
        if not isinstance(cost, (int, float)) or isinstance(cost, bool):
            cost = self.reply.cost  # a vendor's wire carries no cost: bill the scripted one
        completion = int(usage.get("completion_tokens") or 0)
        whole = fraction >= 1.0
        finish = self.reply.effective_finish_reason if whole else None
        counts = {
            "tokens_prompt": usage.get("prompt_tokens"),
            "tokens_completion": completion if whole else int(completion * fraction),
            "native_tokens_prompt": usage.get("prompt_tokens"),
            "native_tokens_completion": completion if whole else int(completion * fraction),
            "native_tokens_reasoning": 0,
            "finish_reason": finish,
            "native_finish_reason": finish,
        }
        return (float(cost) if whole else round(float(cost) * fraction, 12)), counts

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
