"""The full-text tokenizer and ``analyze`` as they were before the build was made fast (main at
34cacb0, src/sessionseal/_fts/_tokens.py and _segment.analyze), kept verbatim as the reference
that tests/unit/test_fts_build.py compares the fast paths with: the terms must stay byte-identical
for every input, or every index built before would answer differently from one built after.
"""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from typing import Final


#: Longer terms are dropped (rule 3).
MAX_TERM_BYTES: Final = 64

#: ASCII letters, digits and ``_`` and every non-ASCII byte stay; other ASCII bytes become spaces.
_TABLE: Final = bytes(c if (c >= 128 or chr(c).isalnum() or c == 95) else 32 for c in range(256))
_WORD: Final = re.compile(r"\w+")
#: Camel-case boundaries of rule 4.
_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGIT: Final = re.compile(r"\d")
#: The distinct runs (joined by newlines) that hold an upper-case letter, "_" or a non-ASCII byte.
_OTHERS: Final = re.compile(rb"^.*[_A-Z\x80-\xff].*$", re.MULTILINE)
#: A piece longer than this that holds a digit is an id's random half, not a part.
_MAX_ID_PART: Final = 12
#: Terms a prefix query can reach: a letter, then letters, digits or ``_``; 3 to 32 characters.
_WORDLIKE: Final = re.compile(r"[^\W\d_]\w{2,31}")


def is_wordlike(term: str) -> bool:
    """True for the terms a prefix query can expand to (docs/spec/fts-v1.md, "Segment")."""
    return _WORDLIKE.fullmatch(term) is not None


def _runs(text: str) -> list[bytes]:
    """Rule 1: the runs of *text* (UTF-8 bytes, in their original case)."""
    return text.encode("utf-8", "replace").translate(_TABLE).split()


def _words_of_run(run: bytes) -> list[str]:
    """Rule 2: the words of one run."""
    if run.isascii():
        return [run.decode("ascii")]
    return _WORD.findall(unicodedata.normalize("NFKC", run.decode("utf-8", "replace")))


def _fold(word: str) -> str:
    return word.lower() if word.isascii() else word.casefold()


def _fits(term: str) -> bool:
    return len(term) <= MAX_TERM_BYTES and (term.isascii() or len(term.encode()) <= MAX_TERM_BYTES)


def words(text: str) -> list[str]:
    """The terms of *text*'s words in order (rules 1 to 3, without the parts of rule 4).

    A query word goes through this: ``foo.bar`` is two words, searched as both.
    """
    return [t for run in _runs(text) for t in map(_fold, _words_of_run(run)) if _fits(t)]


def _parts(word: str, whole: str) -> set[str]:
    """Rule 4: the parts of one word (its original case), without the whole."""
    pieces = [p for p in word.split("_") if p] if "_" in word else [word]
    parts: set[str] = set()
    for piece in pieces:
        if _DIGIT.search(piece) is None:
            parts.add(_fold(piece))
            parts.update(_fold(p) for p in _CAMEL.split(piece) if p)
        elif len(piece) <= _MAX_ID_PART:
            parts.add(_fold(piece))
    parts.discard(whole)
    return {p for p in parts if _fits(p)}


@functools.lru_cache(maxsize=1 << 16)
def _split_run(run: bytes) -> tuple[tuple[str, ...], int]:
    """The terms one run adds beyond its lowered self, and its number of words (rules 2 to 4).

    Cached: identifiers and JSON keys recur across messages and sessions.
    """
    if run.isascii():
        word = run.decode("ascii")
        return tuple(_parts(word, word.lower())), 1
    found = _WORD.findall(unicodedata.normalize("NFKC", run.decode("utf-8", "replace")))
    terms: list[str] = []
    for word in found:
        whole = _fold(word)
        if _fits(whole):
            terms.append(whole)
        terms.extend(_parts(word, whole))
    return tuple(terms), len(found)


def count_terms(text: str) -> tuple[dict[str, int], int]:
    """Every term of *text* (rules 1 to 4) with its count, and *text*'s length (rule 5)."""
    raw = text.encode("utf-8", "replace").translate(_TABLE)
    runs = raw.split()
    length = len(runs)
    by_run = Counter(runs)
    # Most runs are lower-case ASCII without "_": each is its own term, and that is all (rules
    # 3, 4). The Counter and this comprehension are the only per-run work for them.
    counts = {
        k.decode("ascii"): n
        for k, n in by_run.items()
        if len(k) <= MAX_TERM_BYTES and k.isascii() and (k.islower() or k.isdigit())
    }
    # The others (an upper-case letter, "_" or a non-ASCII byte), found by one regex over the
    # distinct runs, take rules 2 to 4 in Python.
    for run in _OTHERS.findall(b"\n".join(by_run)):
        n = by_run[run]
        if run.isascii():
            if not (run.islower() or run.isdigit()) and len(run) <= MAX_TERM_BYTES:
                whole = run.decode("ascii").lower()
                counts[whole] = counts.get(whole, 0) + n
            if b"_" not in run and (run.isupper() or run[1:].islower()):
                continue  # no part: ALLCAPS, Capitalized
        terms, words_in_run = _split_run(run)
        length += (words_in_run - 1) * n
        for term in terms:
            counts[term] = counts.get(term, 0) + n
    return counts, length


# -- _segment.analyze, verbatim ------------------------------------------------------------------

from sessionseal._fts._format import DocEntry, Posting

_FIELD_INDEX: Final = {1: 0, 2: 1, 4: 2, 8: 3}


def analyze(doc):
    """Tokenize *doc*, one field at a time, and sum the counts per term, OR-ing the fields' bits."""
    by_field: dict[int, list[str]] = {}
    for field, text in doc.fields:
        if field not in _FIELD_INDEX:
            raise ValueError("a field is one of TITLE, USER, ASSISTANT, TOOL")
        by_field.setdefault(field, []).append(text)
    lengths = [0, 0, 0, 0]
    terms: dict[str, Posting] = {}
    for field, texts in by_field.items():
        # One pass per field: a newline never joins two pieces' words (rule 1).
        counts, n = count_terms("\n".join(texts))
        lengths[_FIELD_INDEX[field]] = n
        if not terms:
            terms = {t: Posting(c, field) for t, c in counts.items()}
            continue
        for term, c in counts.items():
            p = terms.get(term)
            terms[term] = Posting(c, field) if p is None else Posting(p.tf + c, p.mask | field)
    entry = DocEntry(doc.session_id, doc.generation, (lengths[0], lengths[1], lengths[2], lengths[3]))
    return entry, terms


# -- _segment._invert and _bucket_payloads, verbatim ---------------------------------------------

from sessionseal._fts import _format as F
from sessionseal._fts._tokens import is_wordlike


def _invert(docs: Sequence[Analyzed]) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """term -> (ordinals, tfs, masks), ordinals ascending (docs are visited in order)."""
    inv: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for ordinal, doc in enumerate(docs):
        for term, p in doc.terms.items():
            row = inv.get(term)
            if row is None:
                row = inv[term] = ([], [], [])
            row[0].append(ordinal)
            row[1].append(p.tf)
            row[2].append(p.mask)
    return inv


def _bucket_payloads(
    inv: dict[str, tuple[list[int], list[int], list[int]]], keys: F.SubKeys
) -> tuple[list[bytes], list[bytes]]:
    nb = F.bucket_count(len(inv))
    npf = max(1, nb // 8)
    buckets: list[list[str]] = [[] for _ in range(nb)]
    prefixes: list[list[str]] = [[] for _ in range(npf)]
    terms = list(inv)
    for term, i in zip(terms, F.slots(keys.terms, 0, terms, nb), strict=True):
        buckets[i].append(term)
    wordlike = [t for t in terms if is_wordlike(t)]
    heads = sorted({t[: F.PREFIX_CHARS] for t in wordlike})
    where = dict(zip(heads, F.slots(keys.terms, 1, heads, npf), strict=True))
    for term in wordlike:
        prefixes[where[term[: F.PREFIX_CHARS]]].append(term)
    out_b = []
    for terms in buckets:
        terms.sort(key=str.encode)
        out_b.append(F.encode_bucket([(t, *inv[t]) for t in terms]))
    out_p = []
    for terms in prefixes:
        terms.sort(key=str.encode)
        out_p.append(F.encode_prefix([(t, len(inv[t][0])) for t in terms]))
    return out_b, out_p
