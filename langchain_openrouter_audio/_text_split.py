"""Long text cut into pieces a TTS model takes in one request, at natural boundaries.

Paragraphs first, then sentences (where `_sentences` says they end: the voice loop's
streamed replies end there too); a sentence longer than the limit is cut at clause
boundaries (`,` `;` `:` dashes, their full-width forms), then between words. A single
"word" longer than the limit (a URL, a run of digits) is the only thing ever cut
mid-word. Neighbouring
units are packed together up to the limit, so a long text costs as few requests as
its boundaries allow. Not public API.
"""

from __future__ import annotations

import re

from langchain_openrouter_audio._sentences import CLAUSE_END, SENTENCE_END

__all__ = ["split_for_speech"]

# Each pattern matches the end of one unit, the whitespace after it included, so the
# units of a text join back into exactly that text.
_LEVELS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    SENTENCE_END,
    CLAUSE_END,
    re.compile(r"\s+"),  # word
)


def split_for_speech(text: str, limit: int) -> list[str]:
    """`text` as pieces of at most `limit` characters, in order, whitespace-trimmed.

    >>> split_for_speech("One. Two. Three.", 10)
    ['One. Two.', 'Three.']
    >>> split_for_speech("Short enough.", 100)
    ['Short enough.']
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 character, got {limit}")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for unit in _units(text, limit, 0):
        if len(current) + len(unit.rstrip()) <= limit:
            current += unit
            continue
        if current.strip():
            pieces.append(current.strip())
        current = unit
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _units(text: str, limit: int, level: int) -> list[str]:
    """`text` cut at `level`'s boundaries; a unit still over `limit` is cut finer."""
    if len(text.rstrip()) <= limit:
        return [text]
    if level == len(_LEVELS):
        # One "word" over the limit: nothing but a hard cut is left.
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    out: list[str] = []
    start = 0
    for match in _LEVELS[level].finditer(text):
        if match.end() > start:
            out.extend(_units(text[start : match.end()], limit, level + 1))
            start = match.end()
    if start < len(text):
        out.extend(_units(text[start:], limit, level + 1))
    return out
