"""Collect a streamed reply in linear time.

Summing chunks with `+` makes langchain-core concatenate each audio block's
base64 text pairwise, so a long spoken reply costs time quadratic in its
length (a 10-minute reply is ~6,000 chunks and 38 MB of base64).
`join_chunks` gives the same message in one pass:

```python
from langchain_openrouter_audio import ChatOpenRouterAudio, join_chunks, save_audio

llm = ChatOpenRouterAudio()
chunks = []
for chunk in llm.stream("Tell me a long story"):
    chunks.append(chunk)  # play chunk's audio here as it arrives
reply = join_chunks(chunks)
save_audio(reply, "story.wav")
```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessageChunk

__all__ = ["join_chunks"]

# Block fields whose strings grow with the reply; core concatenates them pairwise.
_GROWING = ("base64", "text")


def join_chunks(chunks: Iterable[AIMessageChunk]) -> AIMessageChunk:
    """Add streamed chunks together, in time linear in their total size.

    The result equals `chunks[0] + chunks[1] + ...` (one text block, one audio
    block, merged tool calls, summed usage), so `audio_pcm`, `save_audio` and
    `.text` work on it as on any summed stream.

    ```python
    reply = join_chunks(llm.stream("Say hello"))
    reply.text  # the transcript
    ```

    Raises:
        ValueError: `chunks` is empty.
    """
    items = list(chunks)
    if not items:
        raise ValueError("join_chunks() needs at least one chunk")
    pieces: dict[tuple[int, str], list[str]] = {}
    ids: dict[int, str] = {}
    light: list[AIMessageChunk] = []
    for chunk in items:
        content = chunk.content
        if isinstance(content, list):
            stripped: list[Any] = []
            for block in content:
                if isinstance(block, dict) and isinstance(index := block.get("index"), int):
                    if (block_id := block.get("id")) and ids.setdefault(
                        index, block_id
                    ) != block_id:
                        # Blocks that core would keep apart: let core do all the work.
                        return _plain_sum(items)
                    grown = {k: v for k in _GROWING if isinstance(v := block.get(k), str)}
                    for key, value in grown.items():
                        pieces.setdefault((index, key), []).append(value)
                    # A copy even when nothing grows: the joined blocks are written to below.
                    block = {**block, **dict.fromkeys(grown, "")}
                stripped.append(block)
            chunk = chunk.model_copy(update={"content": stripped})
        light.append(chunk)
    joined = light[0] + light[1:] if len(light) > 1 else light[0].model_copy()
    if isinstance(joined.content, list):
        for block in joined.content:
            if isinstance(block, dict) and isinstance(index := block.get("index"), int):
                for key in _GROWING:
                    if (index, key) in pieces:
                        block[key] = "".join(pieces[(index, key)])
    return joined


def _plain_sum(items: list[AIMessageChunk]) -> AIMessageChunk:
    return items[0] + items[1:] if len(items) > 1 else items[0]
