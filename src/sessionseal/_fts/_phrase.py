"""A phrase's words in a row in stored text, as the tokenizer's rules say, without tokenizing it.

The index keeps no positions (docs/spec/fts-v1.md, "Queries"): a phrase is the AND of its words
there, and the vault's search confirms each candidate in its decrypted text. Tokenizing whole
sessions for that (rules 1 to 3 of ``_tokens``, a Python step per word) was most of a phrase
query's time at 1 GB (docs/design.md, "Query speed at 1 GB"). This module answers the same
question with regular expressions at C speed, and falls back to the tokenizer wherever a regular
expression could not be sure:

- :meth:`Phrase.in_text`: exactly ``words`` in a row in ``_tokens.words(text)``. For ASCII words
  and ASCII text the rules reduce to a regular expression (below); otherwise the tokenizer runs.
- :meth:`Phrase.may_be_in`: False only if no string of a stored JSON document can hold the
  phrase, decided on its raw bytes without parsing them (a candidate that holds the words apart
  is dropped at the cost of one search of its bytes). True when unsure.

``tests/unit/test_fts_phrase.py`` compares both with the tokenizer on generated text (Unicode,
case folding, NFKC, identifiers, long words, JSON escapes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from ._tokens import MAX_TERM_BYTES, words

__all__ = ["FOLDS_TO_ASCII", "Phrase", "folds_to_ascii"]

#: A word character of ASCII text, lowered: rule 1 cuts runs at every other ASCII character.
_W: Final = "a-z0-9_"
#: Between two words of an ASCII text in a row: separators, and any words rule 3 drops (longer
#: than a term may be), each with separators after it.
_GAP: Final = rf"[^{_W}]+(?:[{_W}]{{{MAX_TERM_BYTES + 1},}}[^{_W}]+)*"
#: The same in the bytes of a JSON string (lowered): a separator is a byte that is no word
#: character, or an escape (``\\n``, ``\\"``, ``\\u001b``: a letter or digit of an escape is not
#: one of the text's); a dropped word is written as it is.
_BYTES_GAP: Final = rb"(?:[^a-z0-9_\\]|\\[^u]|\\u[0-9a-f]{4}|[a-z0-9_]{%d,})+" % (MAX_TERM_BYTES + 1)
#: An escape that may stand for a word character (``\\u0061``, ``\\u00e9``): JSON may write any
#: character so; orjson, which writes the vault's documents, escapes only control characters.
#: Lowered bytes: a backslash that an odd run of backslashes ends, then ``u``, then anything
#: but ``00`` and ``0``/``1`` (U+0000 to U+001F, separators all).
_WORDY_ESCAPE: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u(?!00[01])")
#: Between two words of a non-ASCII text (lowered) free of :data:`FOLDS_TO_ASCII`: separators
#: (ASCII or not), and dropped words: long ASCII ones, or ones holding a non-ASCII character.
_WIDE_GAP: Final = rf"(?:[^{_W}]|[{_W}]{{{MAX_TERM_BYTES + 1},}}|[{_W}]+(?=[^\x00-\x7f])|(?<=[^\x00-\x7f])[{_W}]+)+"
#: The non-ASCII characters whose lower case, case fold or NFKC (or its case fold) holds an ASCII
#: letter, digit or "_" (``ß``, the Kelvin sign, full-width forms, ligatures, superscripts):
#: only through them can a word of non-ASCII text be an ASCII term without being written so.
#: Made by :func:`folds_to_ascii` (for this Python's Unicode database; a test compares them).
FOLDS_TO_ASCII: Final = (
    (0xAA, 0xAA),
    (0xB2, 0xB3),
    (0xB9, 0xBA),
    (0xBC, 0xBE),
    (0xDF, 0xDF),
    (0x130, 0x130),
    (0x132, 0x133),
    (0x13F, 0x140),
    (0x149, 0x149),
    (0x17F, 0x17F),
    (0x1C4, 0x1CC),
    (0x1F0, 0x1F3),
    (0x2B0, 0x2B0),
    (0x2B2, 0x2B3),
    (0x2B7, 0x2B8),
    (0x2E1, 0x2E3),
    (0x1D2C, 0x1D2C),
    (0x1D2E, 0x1D2E),
    (0x1D30, 0x1D31),
    (0x1D33, 0x1D3A),
    (0x1D3C, 0x1D3C),
    (0x1D3E, 0x1D43),
    (0x1D47, 0x1D49),
    (0x1D4D, 0x1D4D),
    (0x1D4F, 0x1D50),
    (0x1D52, 0x1D52),
    (0x1D56, 0x1D58),
    (0x1D5B, 0x1D5B),
    (0x1D62, 0x1D65),
    (0x1D9C, 0x1D9C),
    (0x1DA0, 0x1DA0),
    (0x1DBB, 0x1DBB),
    (0x1E96, 0x1E9A),
    (0x1E9E, 0x1E9E),
    (0x2070, 0x2071),
    (0x2074, 0x2079),
    (0x207F, 0x2089),
    (0x2090, 0x2093),
    (0x2095, 0x209C),
    (0x20A8, 0x20A8),
    (0x2100, 0x2103),
    (0x2105, 0x2106),
    (0x2109, 0x210E),
    (0x2110, 0x2113),
    (0x2115, 0x2116),
    (0x2119, 0x211D),
    (0x2120, 0x2122),
    (0x2124, 0x2124),
    (0x2128, 0x2128),
    (0x212A, 0x212A),
    (0x212C, 0x212D),
    (0x212F, 0x2131),
    (0x2133, 0x2134),
    (0x2139, 0x2139),
    (0x213B, 0x213B),
    (0x2145, 0x2149),
    (0x2150, 0x217F),
    (0x2189, 0x2189),
    (0x2460, 0x24EA),
    (0x2C7C, 0x2C7D),
    (0x3250, 0x325F),
    (0x32B1, 0x32CF),
    (0x3358, 0x337A),
    (0x3380, 0x33FF),
    (0xA7F2, 0xA7F4),
    (0xFB00, 0xFB06),
    (0xFE33, 0xFE34),
    (0xFE4D, 0xFE4F),
    (0xFF10, 0xFF19),
    (0xFF21, 0xFF3A),
    (0xFF3F, 0xFF3F),
    (0xFF41, 0xFF5A),
    (0x107A5, 0x107A5),
    (0x1D400, 0x1D454),
    (0x1D456, 0x1D49C),
    (0x1D49E, 0x1D49F),
    (0x1D4A2, 0x1D4A2),
    (0x1D4A5, 0x1D4A6),
    (0x1D4A9, 0x1D4AC),
    (0x1D4AE, 0x1D4B9),
    (0x1D4BB, 0x1D4BB),
    (0x1D4BD, 0x1D4C3),
    (0x1D4C5, 0x1D505),
    (0x1D507, 0x1D50A),
    (0x1D50D, 0x1D514),
    (0x1D516, 0x1D51C),
    (0x1D51E, 0x1D539),
    (0x1D53B, 0x1D53E),
    (0x1D540, 0x1D544),
    (0x1D546, 0x1D546),
    (0x1D54A, 0x1D550),
    (0x1D552, 0x1D6A3),
    (0x1D7CE, 0x1D7FF),
    (0x1F100, 0x1F10A),
    (0x1F110, 0x1F12E),
    (0x1F130, 0x1F14F),
    (0x1F16A, 0x1F16C),
    (0x1F190, 0x1F190),
    (0x1FBF0, 0x1FBF9),
)
_FOLDS: Final = frozenset(chr(c) for lo, hi in FOLDS_TO_ASCII for c in range(lo, hi + 1))
_ASCII_BYTES: Final = bytes(range(128))


class Phrase:
    """The words of one phrase (terms, as ``_tokens.words`` gives them, two or more)."""

    def __init__(self, terms: Sequence[str]) -> None:
        if not terms:
            raise ValueError("a phrase has words")
        self.terms = tuple(terms)
        self._ascii = all(t.isascii() for t in self.terms)
        self._exact: re.Pattern[str] | None = None
        self._loose: re.Pattern[bytes] | None = None
        self._wide: re.Pattern[str] | None = None
        if self._ascii:
            # An ASCII term is a lowered ASCII word: letters, digits and "_" only (rules 1 to 3).
            # The first term first, its boundary after it: a pattern that starts with a literal is
            # searched at C speed (a look-behind first made every position a try: 30x slower).
            first, rest = re.escape(self.terms[0]), "".join(_GAP + re.escape(t) for t in self.terms[1:])
            self._exact = re.compile(rf"{first}(?<![{_W}]{first}){rest}(?![{_W}])")
            self._wide = re.compile(_WIDE_GAP.join(map(re.escape, self.terms)) + rf"(?![{_W}])")
            self._loose = re.compile(_BYTES_GAP.join(t.encode() for t in self.terms) + rb"(?![a-z0-9_])")

    def in_text(self, text: str) -> bool:
        """Whether ``_tokens.words(text)`` holds the terms in a row (exactly)."""
        if self._exact is not None and text.isascii():
            # ASCII text: its words are its runs of letters, digits and "_", lowered, less those
            # over 64 characters (rules 1 to 3; rule 2 leaves ASCII runs as they are).
            return self._exact.search(text.lower()) is not None
        if self._wide is not None and self._wide.search(text.lower()) is None and _folds_none(text):
            # Without a character that folds to ASCII, each ASCII word of the text is written
            # in it as it is (in any case), and what lies between two is a separator or a word
            # rule 3 drops: a text the wide pattern misses cannot hold the phrase.
            return False
        seq, terms, n = words(text), list(self.terms), len(self.terms)
        return any(seq[i] == terms[0] and seq[i : i + n] == terms for i in range(len(seq) - n + 1))

    def may_be_in(self, body: bytes) -> bool:
        """False only when no string value of the JSON document *body* (UTF-8, as stored) holds
        the phrase by :meth:`in_text`.

        Sure only of an ASCII document whose escapes stand for control characters only: every
        string of it is then ASCII text, written byte for byte but for its separators, so its
        words are in the bytes as they are in the text (a non-ASCII character may fold or
        normalize to ASCII letters: ``ß``, the Kelvin sign, full-width forms, ligatures).
        """
        if self._loose is None or not body.isascii():
            return True
        low = body.lower()
        if b"\\u" in low and _WORDY_ESCAPE.search(low) is not None:
            return True
        return self._loose.search(low) is not None


def _folds_none(text: str) -> bool:
    """Whether *text* holds no character of :data:`FOLDS_TO_ASCII` (its ASCII bytes dropped
    at C speed first: most of a text is ASCII)."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return _FOLDS.isdisjoint(rest.decode("utf-8", "surrogatepass"))


def folds_to_ascii() -> list[tuple[int, int]]:
    """:data:`FOLDS_TO_ASCII` computed from this Python's Unicode database (about 0.3 s)."""
    word = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    out: list[tuple[int, int]] = []
    for i in range(0x80, 0x110000):
        c = chr(i)
        low, fold = c.lower(), c.casefold()
        if low == c and fold == c and not unicodedata.decomposition(c):
            continue
        nfkc = unicodedata.normalize("NFKC", c)
        if not word.isdisjoint(low + fold + nfkc + nfkc.casefold() + nfkc.lower()):
            if out and out[-1][1] == i - 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
    return out
