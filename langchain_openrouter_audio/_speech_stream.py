"""The speech of one text, over one or more `/audio/speech` requests, as chat-style chunks.

`SpeechBatches` (and `AsyncSpeechBatches`) read the requests of a text one after the
other and hand the reply driver what a chat stream would: one chunk with the whole
text, the audio as it arrives (joined across requests by `_audio_seams`), then a
closing chunk with the summed cost. Requests are strictly sequential: the next one
is sent only when the previous one's audio has all been read and the reader asks
for more, so a consumer that stops early (a `break`, a barge-in) never pays for a
piece it did not hear. Not public API.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from langchain_openrouter_audio._audio_seams import Mp3Seam, PcmSeam, Seam
from langchain_openrouter_audio._client import CompletionsClient
from langchain_openrouter_audio._formats import MIME_TO_FORMAT
from langchain_openrouter_audio._generation_cost import CostLookup
from langchain_openrouter_audio.audio import PCM_SAMPLE_RATE, pcm_rate
from langchain_openrouter_audio.errors import (
    IncompleteStreamError,
    MalformedStreamError,
    OpenRouterError,
    StreamError,
)

__all__ = ["AsyncSpeechBatches", "SpeechBatches", "SpeechFormat", "SpeechPlan"]

logger = logging.getLogger("langchain_openrouter_audio")

SPEECH_PATH = "/audio/speech"
_PCM_TYPES = ("audio/pcm", "audio/l16", "")
_MP3_TYPES = ("audio/mpeg", "audio/mp3")


@dataclass(frozen=True)
class SpeechFormat:
    """What one speech response's `Content-Type` says its bytes are (parsed once)."""

    content_type: str
    base: str
    """The media type alone, lower-case (`audio/pcm`); "" when none was sent."""
    kind: str
    """`"pcm"`, `"mp3"`, or the media type of anything else."""
    rate: int
    """The PCM sample rate (`rate=`, else 24 kHz)."""

    @classmethod
    def of(cls, response: httpx.Response) -> SpeechFormat:
        content_type = response.headers.get("content-type", "")
        base = content_type.split(";", 1)[0].strip().lower()
        kind = "pcm" if base in _PCM_TYPES else "mp3" if base in _MP3_TYPES else base
        return cls(content_type, base, kind, pcm_rate(content_type, PCM_SAMPLE_RATE))

    @property
    def encoded(self) -> str | None:
        """The container of non-PCM speech (kept as it came: "mp3", ...); None for PCM."""
        return None if self.kind == "pcm" else MIME_TO_FORMAT.get(self.base, "mp3")

    @property
    def joins_as(self) -> tuple[str, int]:
        """What a later piece must match to be joined to this one: kind, and PCM's rate."""
        return (self.kind, self.rate if self.kind == "pcm" else 0)


@dataclass
class SpeechPlan:
    """The requests that speak one text: one body per piece, in order.

    `metadata` is the reply's metadata (the assembler's): the generation ids of the
    requests go there, and, on a failure, the text not yet spoken.
    """

    text: str
    bodies: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    generation_ids: list[str] = field(default_factory=list)
    _format: SpeechFormat | None = None

    def opening(self) -> dict[str, Any]:
        """The first chunk: the reply's identity and the whole text being spoken."""
        return {
            "id": self.generation_ids[0] if self.generation_ids else "",
            "model": self.bodies[0]["model"],
            "choices": [{"index": 0, "delta": {"audio": {"transcript": self.text}}}],
        }

    def started(self, index: int, response: httpx.Response, fmt: SpeechFormat) -> Seam:
        """Note piece `index`'s response (in format `fmt`); the seam its bytes go through.

        Raises:
            MalformedStreamError: the piece's audio cannot follow the previous ones (a
                different format or sample rate).
        """
        self.generation_ids.append(response.headers.get("x-generation-id") or "")
        self.metadata["generation_ids"] = list(self.generation_ids)
        count = len(self.bodies)
        if self._format is None:
            self._format = fmt
            if count > 1 and fmt.kind not in ("pcm", "mp3"):
                msg = f"the speech came as {fmt.base}, which cannot be joined over {count} requests"
                raise MalformedStreamError(msg)
        elif fmt.joins_as != self._format.joins_as:
            kind, rate = self._format.joins_as
            msg = (
                f"speech piece {index + 1} of {count} came as {fmt.content_type!r}, unlike the "
                f"pieces before it ({kind}, {rate or '-'} Hz)"
            )
            raise self.unspoken(index, MalformedStreamError(msg))
        if fmt.kind == "pcm":
            return PcmSeam()
        if count > 1:
            return Mp3Seam(first=index == 0, last=index == count - 1)
        return Seam()  # one MP3 file: exactly as it came

    def unspoken(self, index: int, err: StreamError) -> StreamError:
        """Note on the reply what piece `index` and the ones after it were to say."""
        if len(self.bodies) > 1:
            rest = " ".join(body["input"] for body in self.bodies[index:])
            self.metadata["unspoken_text"] = rest
        return err

    def failed_to_open(self, index: int, err: OpenRouterError) -> StreamError:
        """A later piece's request failed: the speech so far reached the caller already."""
        if isinstance(err, StreamError):
            return self.unspoken(index, err)
        msg = (
            f"speech piece {index + 1} of {len(self.bodies)} failed before any of its audio "
            f"arrived; the pieces before it were delivered: {err.message}"
        )
        new = IncompleteStreamError(
            msg, status_code=err.status_code, code=err.code, metadata=err.metadata
        )
        return self.unspoken(index, new)


def _audio(piece: bytes) -> list[dict[str, Any]]:
    data = base64.b64encode(piece).decode("ascii")
    return [{"choices": [{"index": 0, "delta": {"audio": {"data": data}}}]}]


def _closing(cost: float | None) -> list[dict[str, Any]]:
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if cost is not None:
        chunk["usage"] = {"cost": cost}
    return [chunk]


class SpeechBatches:
    """A text's requests as batches of chat-style chunks, so one driver serves both paths.

    `first` is the first piece's response, opened already (its status and headers
    decide the reply's format before the driver starts), and `first_format` its format.
    """

    def __init__(
        self,
        plan: SpeechPlan,
        first: httpx.Response,
        first_format: SpeechFormat,
        client: CompletionsClient,
        cost: CostLookup | None,
    ) -> None:
        self.done = False
        self._batches = self._read(plan, first, first_format, client, cost)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        return self._batches

    def close(self) -> None:
        self._batches.close()

    def _read(
        self,
        plan: SpeechPlan,
        first: httpx.Response,
        first_format: SpeechFormat,
        client: CompletionsClient,
        cost: CostLookup | None,
    ) -> Generator[list[dict[str, Any]], None, None]:
        response = first
        try:
            seam = plan.started(0, response, first_format)
            yield [plan.opening()]
            for index, body in enumerate(plan.bodies):
                if index:
                    try:
                        response = client.open_bytes(SPEECH_PATH, body, accept="audio/*")
                    except OpenRouterError as err:
                        raise plan.failed_to_open(index, err) from err
                    seam = plan.started(index, response, SpeechFormat.of(response))
                pieces = client.iter_bytes(response)
                try:
                    for piece in pieces:
                        if out := seam.take(piece):
                            yield _audio(out)
                except StreamError as err:
                    plan.unspoken(index, err)
                    raise
                finally:
                    pieces.close()  # type: ignore[attr-defined]
                if out := seam.end():
                    yield _audio(out)
        finally:
            response.close()
        self.done = True
        yield _closing(cost.total(plan.generation_ids) if cost is not None else None)


class AsyncSpeechBatches:
    """Async `SpeechBatches`."""

    def __init__(
        self,
        plan: SpeechPlan,
        first: httpx.Response,
        first_format: SpeechFormat,
        client: CompletionsClient,
        cost: CostLookup | None,
    ) -> None:
        self.done = False
        self._batches = self._read(plan, first, first_format, client, cost)

    def __aiter__(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._batches

    async def aclose(self) -> None:
        await self._batches.aclose()

    async def _read(
        self,
        plan: SpeechPlan,
        first: httpx.Response,
        first_format: SpeechFormat,
        client: CompletionsClient,
        cost: CostLookup | None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        response = first
        try:
            seam = plan.started(0, response, first_format)
            yield [plan.opening()]
            for index, body in enumerate(plan.bodies):
                if index:
                    try:
                        response = await client.aopen_bytes(SPEECH_PATH, body, accept="audio/*")
                    except OpenRouterError as err:
                        raise plan.failed_to_open(index, err) from err
                    seam = plan.started(index, response, SpeechFormat.of(response))
                pieces = client.aiter_bytes(response)
                try:
                    async for piece in pieces:
                        if out := seam.take(piece):
                            yield _audio(out)
                except StreamError as err:
                    plan.unspoken(index, err)
                    raise
                finally:
                    await pieces.aclose()  # type: ignore[attr-defined]
                if out := seam.end():
                    yield _audio(out)
        finally:
            await response.aclose()
        self.done = True
        yield _closing(await cost.atotal(plan.generation_ids) if cost is not None else None)
