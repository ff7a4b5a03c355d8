"""The stream shapes OpenAI and Azure OpenAI really send for gpt-audio, from recorded traffic.

OpenRouter relays these providers; a client that only ever met the documented shape
breaks on them (no finish reason, chunks without ``choices``, ``expires_at`` after
the usage chunk, ...). Used by `_wire.Rendering` for ``wire="openai"`` and ``"azure"``.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from ._pieces import ReplyPieces

__all__ = ["vendor_chunks"]

_PAD_ALPHABET = string.ascii_letters + string.digits
_SAFE = {"filtered": False, "severity": "safe"}
_FILTERS = ("hate", "self_harm", "sexual", "violence")


def _padding() -> str:
    # OpenAI pads every chunk with a random string so sizes leak nothing; 0-16 characters.
    return "".join(secrets.choice(_PAD_ALPHABET) for _ in range(secrets.randbelow(17)))


def _filter_results() -> dict[str, Any]:
    return {name: dict(_SAFE) for name in _FILTERS}


def _sorted(value: Any) -> Any:
    """A copy with every object's keys in alphabetical order (Azure serialises so)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


class _Builder:
    def __init__(self, rendering: ReplyPieces) -> None:
        self.r = rendering
        self.azure = rendering.reply.wire == "azure"
        self.id = "chatcmpl-" + rendering.gen_id.rsplit("-", 1)[-1][:29]
        self.fingerprint = "fp_" + rendering.gen_id.rsplit("-", 1)[-1][:10]

    def envelope(self, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.r.created,
            "model": self.r.model.rsplit("/", 1)[-1],  # providers name it without a vendor
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
            **fields,
            "usage": fields.get("usage"),
            "obfuscation": _padding(),
        }

    def choice(self, delta: dict[str, Any], *, finish: bool | str | None = True) -> dict[str, Any]:
        """``finish=True`` adds ``"finish_reason": null``; False leaves the key out."""
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if finish is not False:
            choice["finish_reason"] = None if finish is True else finish
        if self.azure:
            content = any(k in delta for k in ("content", "audio", "tool_calls"))
            choice["content_filter_results"] = _filter_results() if content else {}
        return self.envelope(choices=[choice])

    def filler(self) -> dict[str, Any]:
        # No `choices` key at all: most chunks of a real OpenAI audio stream look like this.
        return self.envelope()


def _content_deltas(r: ReplyPieces) -> list[dict[str, Any]]:
    deltas = r.text_deltas()
    if r.sends_audio:
        seen_data = False
        for i, piece in enumerate(r.audio_pieces()):
            if i == 0:
                # The id rides on the first piece (a transcript one, as recorded).
                deltas.append({"content": None, "audio": {"id": r.audio_id, **piece}})
            elif "data" in piece and not seen_data:
                # The first data piece repeats role, content, refusal and the id.
                head = {"role": "assistant", "content": None, "refusal": None}
                deltas.append({**head, "audio": {"id": r.audio_id, **piece}})
            else:
                deltas.append({"audio": piece})
            seen_data = seen_data or "data" in piece
    return deltas + r.tool_call_deltas()


def vendor_chunks(r: ReplyPieces) -> list[dict[str, Any]]:
    """Every ``data:`` payload of an OpenAI- or Azure-shaped stream, without ``[DONE]``."""
    reply = r.reply
    b = _Builder(r)
    fillers = reply.effective_filler_chunks
    chunks: list[dict[str, Any]] = []
    if b.azure:
        prompt_filter = {"prompt_index": 0, "content_filter_results": _filter_results()}
        first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        chunks.append({**first, "prompt_filter_results": [prompt_filter]})
    role: dict[str, Any] = {"role": "assistant", "refusal": None}
    if not r.sends_audio:
        role = {"role": "assistant", "content": "", "refusal": None}
    for delta in [role, *_content_deltas(r)]:
        chunks.append(b.choice(delta))
        chunks.extend(b.filler() for _ in range(fillers))
    # Audio streams carry no finish reason at all; text and tool calls do.
    finish = reply.finish_reason
    if finish is None and (reply.tool_calls or not r.sends_audio):
        finish = reply.effective_finish_reason
    if finish is not None and not reply.omit_finish:
        chunks.append(b.choice({}, finish=finish))
    usage = b.envelope(choices=[], usage=r.usage())
    usage["obfuscation"] = ""
    expiry = [b.choice({"audio": {"expires_at": r.expires_at}}, finish=False)]
    if not r.sends_audio:
        expiry = []
    # Azure sends the expiry before the usage chunk; OpenAI after it.
    chunks += [*expiry, usage] if b.azure else [usage, *expiry]
    return [_sorted(c) for c in chunks] if b.azure else chunks
