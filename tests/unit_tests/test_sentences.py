"""Sentence ends, one definition: a streamed reply and a long text are cut at the same places.

`SentenceSplitter` (the voice loop: an agent's reply as it streams, sentence by sentence)
and `split_for_speech` (`OpenRouterSpeech`'s long text) both cut Chinese and Japanese at
their full stops, and English exactly as before.
"""

from __future__ import annotations

import re

import pytest

from langchain_openrouter_audio._text_split import split_for_speech
from langchain_openrouter_audio.voice.spoken_text import SentenceSplitter

CHINESE = ["今天北京天气晴朗。", "气温二十一度！", "你要带伞吗？", "不用带。"]
JAPANESE = ["「今日は晴れです。」", "傘はいりません！", "また明日。"]
# A stop inside quotes ends the sentence after them, as "Really?" she asked. does in English.
QUOTED = ["他说：“好的。”", "我们走吧（现在。）", "“真的吗？”", "她问。"]
MIXED = ["The table is booked.", "预订好了。", "See you at eight!", "八点见。"]


def streamed(text: str, size: int) -> list[str]:
    """The sentences a `SentenceSplitter` gives for `text` arriving `size` characters at a time."""
    splitter = SentenceSplitter()
    out = [s for i in range(0, len(text), size) for s in splitter.push(text[i : i + size])]
    if rest := splitter.flush():
        out.append(rest)
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize(
    ("sentences", "joiner"),
    [
        (CHINESE, ""),
        (JAPANESE, ""),
        (QUOTED, ""),
        (MIXED, " "),
        (CHINESE, "\n"),
        (JAPANESE, " "),
    ],
)
def test_a_streamed_reply_in_any_script_is_cut_at_each_sentence_end(
    sentences: list[str], joiner: str, size: int
) -> None:
    assert streamed(joiner.join(sentences), size) == sentences


def test_a_latin_stop_needs_a_space_even_before_chinese() -> None:
    # "booked.预订" is no boundary, as "example.com" is none; the full stops after it are.
    text = "".join(MIXED)
    assert streamed(text, 1) == ["The table is booked.预订好了。", "See you at eight!八点见。"]


def test_a_sentence_is_cut_as_soon_as_the_next_one_begins() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("今天北京天气晴朗。") == []  # a closing 」 may still follow
    assert splitter.push("气") == ["今天北京天气晴朗。"]
    assert splitter.push("温二十一度！！") == []
    assert splitter.push("」") == []
    assert splitter.push(" 你") == ["气温二十一度！！」"]  # the run and its closer stay whole
    assert splitter.flush() == "你"


def test_a_long_chinese_sentence_is_cut_at_its_clause_marks() -> None:
    clause = "我们先去博物馆看看古代的青铜器和瓷器，"
    text = clause * 20 + "然后回家。"
    out = streamed(text, 5)
    assert "".join(out) == text
    assert len(out) > 1
    assert all(s.endswith(("，", "。")) for s in out)


def test_a_long_chinese_text_is_split_at_its_full_stops() -> None:
    text = "".join(CHINESE) * 10
    pieces = split_for_speech(text, 40)
    assert "".join(pieces) == text
    assert all(len(p) <= 40 and p.endswith(("。", "！", "？")) for p in pieces)
    mixed = " ".join(MIXED) * 3
    assert all(p.endswith((".", "!", "。")) for p in split_for_speech(mixed, 30))


@pytest.mark.parametrize(
    "text",
    [
        "".join(CHINESE),
        "".join(JAPANESE) * 3,
        "".join(QUOTED) * 2,
        " ".join(MIXED),
        "Dr. Smith paid $3.50 (e.g. cash). Then he left!\nWas it 5 p.m.? Yes... “Fine.” Bye.",
    ],
    ids=["chinese", "japanese", "quoted", "mixed", "english"],
)
def test_the_stream_and_the_long_text_split_agree_on_sentence_ends(text: str) -> None:
    sentences = streamed(text, 1)
    # With room for the longest sentence, a long text's pieces are whole sentences, packed:
    # each piece is the streamed sentences, in order, and no piece ends inside one.
    queue = list(sentences)
    for piece in split_for_speech(text, max(map(len, sentences))):
        rest = piece
        while rest:
            sentence = queue.pop(0)
            assert rest.startswith(sentence)
            rest = rest[len(sentence) :].lstrip()
    assert not queue


# The voice loop's pattern before sentence ends were shared: English must cut as it did.
_ENGLISH_BEFORE = re.compile(r"[.!?\u2026]+[\"')\]\u201d\u2019]*\s+")

ENGLISH = [
    "It is twenty one degrees and sunny in Paris. Take your sunglasses with you. "
    "The evening will stay warm and clear, with a light wind from the west.",
    'He said "stop!" Then (quietly) he left... Really? Yes!! Version 3.11 is out; see '
    "example.com for e.g. the notes. “Quoted.” ‘Single.’ [Bracketed.] Done",
    "No end at all, just a clause: and another one; and a dash \u2014 and on",
]


def _streamed_before(text: str, size: int) -> list[str]:
    out, buf = [], ""
    for i in range(0, len(text), size):
        buf += text[i : i + size]
        while match := _ENGLISH_BEFORE.search(buf):
            out.append(buf[: match.end()].strip())
            buf = buf[match.end() :]
    return [*out, buf.strip()] if buf.strip() else out


@pytest.mark.parametrize("size", [1, 4, 1000])
@pytest.mark.parametrize("text", ENGLISH)
def test_english_is_cut_exactly_as_before(text: str, size: int) -> None:
    assert streamed(text, size) == _streamed_before(text, size)


@pytest.mark.parametrize("size", [1, 2, 1000])
@pytest.mark.parametrize(
    "sentences",
    [
        ["真的吗？!", "我不信。"],  # a full-width stop with a Latin one after it
        ["太好了！!!", "对吧？?", "好。"],
        ["等一下。...", "好的。"],
    ],
)
def test_a_run_of_full_width_and_latin_stops_stays_whole(sentences: list[str], size: int) -> None:
    # Chinese replies mix the widths ("？!"): the Latin stop is no sentence of its own.
    assert streamed("".join(sentences), size) == sentences


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_a_japanese_quote_before_its_particle_is_one_sentence(size: int) -> None:
    # 「はい。」と言った: the quotative と (って) goes on with the sentence the quote is in.
    sentences = ["彼は「はい。」と言った。", "「行くよ。」って聞いた。"]
    sentences += ["「また明日。」", "雨です。"]  # a quote that ends its sentence still cuts
    assert streamed("".join(sentences), size) == sentences
