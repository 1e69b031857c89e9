"""A phrase confirmed by regular expressions (``_fts._phrase``; docs/spec/fts-v1.md, "Queries")
says exactly what the tokenizer says, and the raw bytes' check never drops a document that holds
the phrase; the snippet search that skips messages finds the same place as the walk of every
piece. Generated text mixes what the tokenizer's rules treat apart: case, case folding that
changes letters (``ß``, the Kelvin sign, the long s), NFKC (full-width forms, ligatures, combining
marks), identifiers (``_`` joins words), words too long to be terms, and JSON's escapes."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import errors
from sessionseal._fts import parse, words
from sessionseal._fts._phrase import FOLDS_TO_ASCII, Phrase, folds_to_ascii
from sessionseal._vault._search import DocText, _snippet, doc_pieces, positive

FRAGMENTS = [
    "violet",
    "Violet",
    "VIOLET",
    "\uff56\uff49\uff4f\uff4c\uff45\uff54",  # full-width: NFKC makes it "violet"
    "harbor",
    "HarBor",
    "protocol",
    "straße",
    "STRASSE",
    "strasse",
    "\u212aelvin",  # the Kelvin sign folds to "k"
    "kelvin",
    "\u017ftop",  # the long s folds to "s"
    "stop",
    "\ufb01le",  # a ligature: NFKC makes it "file"
    "file",
    "foo_bar",
    "FooBar",
    "v2",
    "déjà",
    "DÉJÀ",
    "e\u0301",
    "İstanbul",
    "x" * 65,  # longer than a term: dropped, its neighbours become adjacent
    "x" * 64,
    "é" * 40,  # 80 bytes: dropped
    "ab" + "é" * 31,
    "toolu_01ABCdefGHIjklMNO",
]
SEPARATORS = [
    " ",
    "  ",
    ".",
    "\n",
    "\t",
    "-",
    "—",
    "/",
    "\\",
    '"',
    "\x00",
    "\x1b",
    "\u0301",
    "\u00a0",
    "\u3000",
    ":",
    "",
    "_",
]


def reference(text: str, terms: tuple[str, ...]) -> bool:
    seq, n = words(text), len(terms)
    return any(tuple(seq[i : i + n]) == terms for i in range(len(seq) - n + 1))


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)),
            max_size=12,
        )
    )
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(parts), max_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps, strict=True))


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    text = draw(texts())
    seq = words(text)
    if len(seq) >= 2 and draw(st.booleans()):
        i = draw(st.integers(0, len(seq) - 2))
        n = draw(st.integers(2, min(4, len(seq) - i)))
        terms = tuple(seq[i : i + n])  # in the text, often
    else:
        terms = tuple(words(" ".join(draw(st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=3)))))
    if len(terms) < 2:
        terms = ("violet", "harbor")
    return text, terms


@settings(max_examples=150, deadline=None)
@given(cases())
def test_a_phrase_in_a_text_is_what_the_tokenizer_says(case: tuple[str, tuple[str, ...]]) -> None:
    text, terms = case
    assert Phrase(terms).in_text(text) == reference(text, terms)


def _bodies(doc: dict[str, Any]) -> list[bytes]:
    # As the vault writes them (orjson), and as other writers may: every non-ASCII character
    # escaped, or none.
    return [
        orjson.dumps(doc),
        json.dumps(doc, ensure_ascii=True).encode(),
        json.dumps(doc, ensure_ascii=False).encode(),
    ]


@settings(max_examples=100, deadline=None)
@given(cases(), texts())
def test_the_raw_bytes_never_drop_a_document_that_holds_the_phrase(
    case: tuple[str, tuple[str, ...]], other: str
) -> None:
    text, terms = case
    phrase = Phrase(terms)
    doc = {"title": other, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
    if reference(text, terms) or reference(other, terms):
        assert all(phrase.may_be_in(body) for body in _bodies(doc))


def test_the_raw_bytes_drop_a_document_with_the_words_apart() -> None:
    phrase = Phrase(("violet", "harbor"))
    apart = orjson.dumps({"messages": [{"role": "user", "content": "violet, then a harbor\nViolet\\nharbor"}]})
    assert not phrase.may_be_in(apart)
    for together in ("VIOLET\n\tHarbor", 'violet "harbor"', "violet\\harbor", "violet " + "y" * 70 + " harbor"):
        assert phrase.may_be_in(orjson.dumps({"messages": [{"role": "user", "content": together}]}))
    # Unsure: a non-ASCII document, or an escape that may stand for a letter.
    assert phrase.may_be_in(orjson.dumps({"messages": [{"role": "user", "content": "violet, then a harbor é"}]}))
    assert phrase.may_be_in(b'{"messages": [{"role": "user", "content": "\\u0076iolet harbor"}]}')


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    def content() -> Any:
        kind = draw(st.sampled_from(["str", "blocks"]))
        if kind == "str":
            return draw(texts())
        blocks: list[Any] = []
        for _ in range(draw(st.integers(0, 3))):
            block = draw(st.sampled_from(["text", "thinking", "tool_call", "tool_result", "image", "junk"]))
            if block == "tool_call":
                blocks.append({"type": "tool_call", "name": draw(texts()), "arguments": {"cmd": draw(texts())}})
            elif block == "tool_result":
                blocks.append(
                    {
                        "type": "tool_result",
                        "content": draw(st.sampled_from([draw(texts()), [{"text": draw(texts())}]])),
                    }
                )
            elif block == "junk":
                blocks.append(draw(st.sampled_from([None, 3, "loose"])))
            else:
                blocks.append({"type": block, "text": draw(texts())})
        return blocks

    messages = [
        {"role": draw(st.sampled_from(["user", "assistant", "tool", "system"])), "content": content()}
        for _ in range(draw(st.integers(0, 5)))
    ]
    return {"title": draw(texts()), "description": draw(texts()), "messages": messages}


def _old_snippet(doc: dict[str, Any], query: str) -> Any:
    """The snippet search before this change: every piece of the document, in order."""
    from sessionseal._vault._search import _cut, _find

    wanted = list(positive(parse(query).root))
    for bit, place, piece in doc_pieces(doc):
        folded = piece.casefold() if len(piece.casefold()) == len(piece) else piece.lower()
        for node in wanted:
            leaves = [node.term] if node.term is not None else [c.term for c in node.children if c.term is not None]
            if not leaves or not bit & leaves[0].fields:
                continue
            at = _find(folded, leaves[0].text, prefix=leaves[0].prefix)
            if at is not None:
                return place, _cut(piece, at, len(leaves[0].text)), at
    return None


QUERY_SHAPES = ["{a}", "{a}*", '"{a} {b}"', "{a} OR {b}", "assistant:{a}", "tool:{a}*", "-{b} {a}", 'user:"{a} {b}"']


@settings(max_examples=50, deadline=None)
@given(documents(), st.sampled_from(QUERY_SHAPES), st.sampled_from(FRAGMENTS), st.sampled_from(FRAGMENTS))
def test_the_snippet_is_where_every_piece_walked_in_order_finds_it(
    doc: dict[str, Any], shape: str, a: str, b: str
) -> None:
    query = shape.format(a=a, b=b)
    try:
        q = parse(query)
    except errors.InvalidInput:  # a shape that is no query for these words (too short a prefix)
        return
    assert _snippet(DocText(doc), q.root) == _old_snippet(doc, query)


def test_the_characters_that_fold_to_ascii_are_this_pythons() -> None:
    # The table is a constant (computing it takes 0.3 s): a Python with a newer Unicode
    # database must not leave out a character that a non-ASCII text's check relies on.
    assert list(FOLDS_TO_ASCII) == folds_to_ascii()
