"""The full-text index's tokenizer: the terms of one piece of *stored, sanitized* text.

The caller passes text exactly as the vault stores it, after the sanitizer (docs/design.md,
"Sanitize, serialize, compress, encrypt, write", step 3). This module never sees a session's
input, so nothing the sanitizer removed can become a term. It never logs or raises with text.

The rules (docs/spec/fts-v1.md, "Terms"), in order:

1. Text that is not pure ASCII is normalized to NFKC (ASCII text is already NFKC).
2. A *word* is a maximal run of word characters: Unicode letters, digits and ``_`` (``\\w`` of
   Python's ``re`` for ``str``). Everything else separates words: spaces, punctuation, ``/``,
   ``.``, ``-``, ``:``. So a path ``src/json/decoder.py`` gives ``src``, ``json``, ``decoder``,
   ``py`` and a URL its host's labels.
3. A word's term is its case fold (``str.casefold``; ``str.lower`` for ASCII, the same thing).
   A term of more than 64 UTF-8 bytes is dropped: base64 blobs, hashes, minified code.
4. Identifiers also give their parts, beside the whole: a word with ``_`` gives each non-empty
   part between underscores (``refresh_token`` -> ``refresh_token``, ``refresh``, ``token``;
   ``__init__`` -> ``__init__``, ``init``), and an ASCII word in mixed case gives its camel-case
   parts (``ValueError`` -> ``valueerror``, ``value``, ``error``; ``HTTPServer`` ->
   ``httpserver``, ``http``, ``server``; ``utf8Decode`` -> ``utf8decode``, ``utf8``,
   ``decode``). A part counts as often as its word, and a part equal to the whole is not
   counted twice.
5. A text's *length* (BM25's document length) is its number of words (rule 2), parts not counted.

Speed: ASCII text (nearly all of an agent's transcript) is split by ``bytes.translate`` and
``bytes.split`` at C speed and counted by ``collections.Counter`` (C); the Python work of rule 4
runs once per *distinct* word, not per word. Other text takes ``re.findall`` (about 4x slower).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Final

__all__ = ["MAX_TERM_BYTES", "count_terms", "is_wordlike", "words"]

#: Longer terms are dropped (rule 3).
MAX_TERM_BYTES: Final = 64

#: ASCII word bytes (letters, digits, ``_``) stay; every other byte becomes a space.
_ASCII_TABLE: Final = bytes(c if (c < 128 and (chr(c).isalnum() or c == 95)) else 32 for c in range(256))
_WORD: Final = re.compile(r"\w+")
#: Camel-case parts of an ASCII word: an upper-case run before a capitalized part
#: (``HTTP``Server), a capitalized or lower-case run, or a run of digits glued to letters before it.
_CAMEL: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
#: Terms a prefix query can reach: a letter, then letters, digits or ``_``; 3 to 32 characters.
_WORDLIKE: Final = re.compile(r"[^\W\d_]\w{2,31}")


def is_wordlike(term: str) -> bool:
    """True for the terms a prefix query can expand to (docs/spec/fts-v1.md, "Prefix buckets")."""
    return _WORDLIKE.fullmatch(term) is not None


def _raw_words(text: str) -> list[str]:
    """Rule 1 and 2: the words of *text*, in their original case."""
    if text.isascii():
        # bytes.translate + split: ~10x re.findall on one core (benchmarks/proto_index).
        return text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split()
    return _WORD.findall(unicodedata.normalize("NFKC", text))


def _fold(word: str) -> str:
    return word.lower() if word.isascii() else word.casefold()


def _fits(term: str) -> bool:
    return len(term) <= MAX_TERM_BYTES and (term.isascii() or len(term.encode()) <= MAX_TERM_BYTES)


def words(text: str) -> list[str]:
    """The terms of *text*'s words in order (rules 1 to 3, without the parts of rule 4).

    A query word goes through this: ``foo.bar`` is two words, searched as both.
    """
    return [t for t in map(_fold, _raw_words(text)) if _fits(t)]


def _parts(word: str, whole: str) -> set[str]:
    """Rule 4: the parts of one word (its original case), without the whole."""
    parts: set[str] = set()
    if "_" in word:
        parts.update(_fold(p) for p in word.split("_") if p)
    if word.isascii() and not word.islower() and not word.isupper():
        for chunk in word.split("_"):
            found = _CAMEL.findall(chunk)
            if len(found) > 1:
                parts.update(p.lower() for p in found)
    parts.discard(whole)
    return {p for p in parts if _fits(p)}


def count_terms(text: str) -> tuple[dict[str, int], int]:
    """Every term of *text* (rules 1 to 4) with its count, and *text*'s length (rule 5)."""
    raw = _raw_words(text)
    counts: dict[str, int] = {}
    for word, n in Counter(raw).items():
        whole = _fold(word)
        if _fits(whole):
            counts[whole] = counts.get(whole, 0) + n
        if "_" in word or not (word.islower() or word.isupper() or word.isdigit()):
            for part in _parts(word, whole):
                counts[part] = counts.get(part, 0) + n
    return counts, len(raw)
