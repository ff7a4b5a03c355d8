"""Where a sentence (or, in a long one, a clause) ends: one definition for the whole package.

Both the long-text split of `OpenRouterSpeech` (`_text_split`) and the voice loop's
sentence-by-sentence speech of a streamed reply (`voice.spoken_text`) cut text here,
so the two agree on every script. Not public API.

Latin-script stops (`.` `!` `?` `...`, with closing quotes or brackets after them) end
a sentence only before whitespace: "3.14" and "example.com" do not (an abbreviation
before a space does: "e.g. this" is cut after "e.g."). Full-width stops (Chinese,
Japanese: `。` `！` `？`, with any stops of either width after them) end one with or
without a space after them, except a quote closed on one before its Japanese particle
(彼は「はい。」と言った。 is one sentence).
Each pattern takes the whitespace after the boundary too, so the units of a text join
back into exactly that text, and it waits for the next character before it matches: in
text that is still streaming, `"ok."` may become `"ok.5"` and `"好。"` may be followed
by its closing `」`, so a boundary at the very end of the text is no boundary yet.
"""

from __future__ import annotations

import re

__all__ = ["CLAUSE_END", "SENTENCE_END"]

# Latin-script sentence stops, and what may close a sentence after them.
_STOPS = ".!?\u2026"  # . ! ? …
_CLOSERS = "\"')\\]\u201d\u2019"  # " ' ) ] ” ’
# Full-width sentence stops (。 ！ ？, and the half-width ｡), and the brackets that may
# close after them. Not the full-width ．, which also sits inside full-width numbers.
_WIDE_STOPS = "\u3002\uff01\uff1f\uff61"
_WIDE_CLOSERS = "\u300d\u300f\uff09\u3011"  # 」 』 ） 】
# Clause marks: Latin before a space (, ; : – —), full-width with or without one (，；：、).
_CLAUSES = ",;:\u2013\u2014"
_WIDE_CLAUSES = "\uff0c\uff1b\uff1a\u3001"
# After a full-width mark: its whitespace, or the next character already there (one that
# cannot extend the mark's run: "！！", "？!" and "。」" stay whole however the text arrives).
_WIDE_MARKS = _WIDE_STOPS + _STOPS + _WIDE_CLOSERS + _CLOSERS + _WIDE_CLAUSES
_WIDE_AFTER = rf"(?:\s+|(?=[^\s{_WIDE_MARKS}]))"
# After a quote closed on a stop, Japanese goes on with its quotative particle (と, って):
# 彼は「はい。」と言った。 is one sentence.
_AFTER_QUOTE = rf"(?:\s+|(?=[^\s{_WIDE_MARKS}\u3068\u3063]))"

SENTENCE_END = re.compile(
    rf"[{_STOPS}]+[{_CLOSERS}]*\s+"
    # A full-width stop, then any stops of either width ("真的？!" is one sentence), then
    # Chinese quotes with the curly “ ” of Latin script: 他说：“好。”然后 ends after ”.
    rf"|[{_WIDE_STOPS}][{_WIDE_STOPS}{_STOPS}]*"
    rf"(?:[{_WIDE_CLOSERS}{_CLOSERS}]+{_AFTER_QUOTE}|{_WIDE_AFTER})"
)
"""The end of a sentence, the whitespace after it included."""

CLAUSE_END = re.compile(rf"[{_CLAUSES}]\s+|[{_WIDE_CLAUSES}]{_WIDE_AFTER}")
"""The end of a clause (for a sentence too long to wait for its end), whitespace included."""
