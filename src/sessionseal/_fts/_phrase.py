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
from collections.abc import Sequence
from typing import Final

from ._tokens import MAX_TERM_BYTES, words

__all__ = ["Phrase"]

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


class Phrase:
    """The words of one phrase (terms, as ``_tokens.words`` gives them, two or more)."""

    def __init__(self, terms: Sequence[str]) -> None:
        if not terms:
            raise ValueError("a phrase has words")
        self.terms = tuple(terms)
        self._ascii = all(t.isascii() for t in self.terms)
        self._exact: re.Pattern[str] | None = None
        self._loose: re.Pattern[bytes] | None = None
        if self._ascii:
            # An ASCII term is a lowered ASCII word: letters, digits and "_" only (rules 1 to 3).
            inner = _GAP.join(map(re.escape, self.terms))
            self._exact = re.compile(rf"(?<![{_W}]){inner}(?![{_W}])")
            self._loose = re.compile(_BYTES_GAP.join(t.encode() for t in self.terms) + rb"(?![a-z0-9_])")

    def in_text(self, text: str) -> bool:
        """Whether ``_tokens.words(text)`` holds the terms in a row (exactly)."""
        if self._exact is not None and text.isascii():
            # ASCII text: its words are its runs of letters, digits and "_", lowered, less those
            # over 64 characters (rules 1 to 3; rule 2 leaves ASCII runs as they are).
            return self._exact.search(text.lower()) is not None
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
