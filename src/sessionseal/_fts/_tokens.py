"""The full-text index's tokenizer: the terms of one piece of *stored, sanitized* text.

The caller passes text exactly as the vault stores it, after the sanitizer (docs/design.md,
"Sanitize, serialize, compress, encrypt, write", step 3). This module never sees a session's
input, so nothing the sanitizer removed can become a term. It never logs or raises with text.

The rules (docs/spec/fts-v1.md, "Terms"), in order:

1. The text is cut into *runs* at every ASCII character that is not a letter, digit or ``_``
   (spaces, punctuation, ``/``, ``.``, ``-``, ``:``). So a path ``src/json/decoder.py`` gives
   ``src``, ``json``, ``decoder``, ``py``, and a URL its host's labels.
2. A run holding non-ASCII characters is normalized to NFKC and cut again at every character
   that is not a word character (``\\w`` of Python's ``re``: Unicode letters, digits, ``_``),
   so ``déjà—vu`` gives ``déjà`` and ``vu``. A *word* is a run (or a piece of one) after this.
3. A word's term is its case fold (``str.casefold``; for ASCII the same as ``str.lower``).
   A term of more than 64 UTF-8 bytes is dropped: base64 blobs, hashes, minified code.
4. Identifiers also give their parts, beside the whole: a word with ``_`` gives each non-empty
   piece between underscores, except a piece of more than 12 characters holding a digit (the
   random half of ``toolu_01LmSLb2...``); and a piece holding no digit is also cut at its
   camel-case boundaries: between an ASCII lower-case letter and an upper-case one, and
   between two upper-case letters the second of which is followed by a lower-case one
   (``refresh_token`` -> ``refresh_token``, ``refresh``, ``token``; ``ValueError`` ->
   ``valueerror``, ``value``, ``error``; ``HTTPServer`` -> ``httpserver``, ``http``,
   ``server``; ``utf8Decode`` and random ids such as ``01CjV73pci`` are not cut, so their
   pieces do not flood the index). A part counts as often as its word; a part equal to the
   whole is not counted twice. A part longer than 64 bytes is dropped too.
5. A text's *length* (BM25's document length) is its number of words (rule 2), parts not counted.

Speed (docs/design.md, "Build speed"): rule 1 is ``bytes.translate`` and ``bytes.split`` over
the UTF-8 bytes, and ``collections.Counter`` counts the runs, all in C; a plain lower-case ASCII
run stays the ``Counter``'s key (:func:`count_runs`). Rules 2 to 4 run once per *distinct* run
that needs them (found by one regex over the distinct runs, cached across texts), not per
occurrence, so their Python cost follows the vocabulary, not the text. On the benchmark's text,
split + ``Counter`` is about half of the CPU time of :func:`count_runs`, the rules the rest.

The optional accelerator (``_ctok``, C, built by ``setup.py`` where a compiler is found) does
:func:`count_translated_pure`'s split, count and the rules of every ASCII run (rule 4 of
identifiers included: :func:`_parts`, the whole then its sorted parts) in one pass with the GIL
released, and hands the distinct non-ASCII runs (NFKC, ``casefold``, Unicode words) to the
same cached :func:`_terms_of_run`: the same terms, counts and length (and dict order).
:data:`NATIVE` says whether it is used; ``SESSIONSEAL_PURE_FTS=1`` in the environment forces
the pure path (tests run both).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from array import array
from collections import Counter
from typing import Final

__all__ = [
    "LINE_TABLE",
    "MAX_TERM_BYTES",
    "NATIVE",
    "TABLE",
    "count_runs",
    "count_terms",
    "count_translated",
    "count_translated_native",
    "count_translated_pure",
    "gather_terms_native",
    "invert_joined_native",
    "invert_rows_native",
    "is_wordlike",
    "pack_fields_native",
    "words",
]

#: Longer terms are dropped (rule 3).
MAX_TERM_BYTES: Final = 64

#: ASCII letters, digits and ``_`` and every non-ASCII byte stay; other ASCII bytes become spaces.
_TABLE: Final = bytes(c if (c >= 128 or chr(c).isalnum() or c == 95) else 32 for c in range(256))
#: Rule 1's table for :func:`count_translated`: the same, keeping newlines (a caller cuts lines).
TABLE: Final = _TABLE
LINE_TABLE: Final = _TABLE[:10] + b"\n" + _TABLE[11:]
_WORD: Final = re.compile(r"\w+")
#: Camel-case boundaries of rule 4.
_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGIT: Final = re.compile(r"\d")
#: The distinct runs (joined by newlines) that hold an upper-case letter, "_" or a non-ASCII
#: byte, or are longer than a term may be.
_OTHERS: Final = re.compile(rb"^(?:.*[_A-Z\x80-\xff].*|.{%d,})$" % (MAX_TERM_BYTES + 1), re.MULTILINE)
#: A piece longer than this that holds a digit is an id's random half, not a part.
_MAX_ID_PART: Final = 12
#: count_runs splits and counts a text in pieces of about this many bytes (bounded memory).
_CHUNK: Final = 1 << 20
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
            # A camel-case boundary needs an ASCII lower-case and an upper-case letter: an
            # all-lower or all-upper piece has none (the regex split is the slow step).
            if not (piece.islower() or piece.isupper()):
                parts.update(_fold(p) for p in _CAMEL.split(piece) if p)
        elif len(piece) <= _MAX_ID_PART:
            parts.add(_fold(piece))
    parts.discard(whole)
    return {p for p in parts if _fits(p)}


def _split_run(run: bytes) -> tuple[tuple[str, ...], int]:
    """The terms one run adds beyond its lowered self, and its number of words (rules 2 to 4).

    Sorted parts: a term order that does not change with the process's string hash seed (a
    build's workers).
    """
    if run.isascii():
        word = run.decode("ascii")
        return tuple(sorted(_parts(word, word.lower()))), 1
    found = _WORD.findall(unicodedata.normalize("NFKC", run.decode("utf-8", "replace")))
    terms: list[str] = []
    for word in found:
        whole = _fold(word)
        if _fits(whole):
            terms.append(whole)
        # Without "_" or a camel-case boundary a word's one piece folds to the whole (or, an id
        # of more than 12 characters, is no part): no part, and no Python step for most words
        # of non-Latin text.
        if "_" in word or _CAMEL.search(word) is not None:
            terms.extend(sorted(_parts(word, whole)))
    return tuple(terms), len(found)


def count_runs(text: str) -> tuple[dict[bytes, int], int]:
    """Every term of *text* (rules 1 to 4) as UTF-8 bytes with its count, and its length (rule 5).

    The build's form of :func:`count_terms`: a lower-case ASCII run (most of them) is its own
    term, so it stays the key :class:`~collections.Counter` gave it (no decode, no per-run
    Python step), and only the runs the regex picks out take rules 2 to 4, once per distinct
    run (cached).
    """
    return count_translated(text.encode("utf-8", "replace").translate(_TABLE))


def count_translated_pure(raw: bytes) -> tuple[dict[bytes, int], int]:
    """:func:`count_runs` of a text already encoded and put through :data:`TABLE` or
    :data:`LINE_TABLE` (ASCII whitespace cuts runs as a space does): the pure-Python path."""
    counts: Counter[bytes] = Counter()
    length = at = 0
    # In pieces of about _CHUNK bytes cut at a space (no run crosses one): the list of runs is
    # one Python object per run (about 45 bytes each), and a 20 MB session would hold 2.5
    # million of them at once. Counter.update counts each piece in C.
    while at < len(raw):
        end = raw.find(b" ", at + _CHUNK)
        end = len(raw) if end < 0 else end
        runs = raw[at:end].split()
        length += len(runs)
        counts.update(runs)
        at = end
    if not counts:
        return {}, 0
    extra: dict[bytes, int] = {}
    get, pop = extra.get, counts.pop
    # The others (an upper-case letter, "_", a non-ASCII byte, or too long), found by one regex
    # over the distinct runs, leave the counts and give their terms to *extra* (never straight to
    # *counts*: "foo_bar" may be an "other" still to pop when "Foo_bar" adds to it).
    for run in _OTHERS.findall(b"\n".join(counts)):
        n = pop(run)
        terms, more_words = _terms_of_run(run)
        if more_words:
            length += more_words * n
        for term in terms:
            extra[term] = get(term, 0) + n
    for term, n in extra.items():
        counts[term] = counts.get(term, 0) + n
    return counts, length


@functools.lru_cache(maxsize=1 << 17)
def _terms_of_run(run: bytes) -> tuple[tuple[bytes, ...], int]:
    """Every term of one run that is not plain lower-case ASCII (rules 2 to 4), as UTF-8, and
    its number of words less one.

    Cached: identifiers, JSON keys and capitalized words recur across messages and sessions
    (117,000 distinct such runs in the 0.1 GB benchmark vault: the cache holds them all). The
    compiled accelerator calls it for non-ASCII runs only (17,000 of them there).
    """
    if not run.isascii():
        terms, words_in_run = _split_run(run)
        return tuple(t.encode() for t in terms), words_in_run - 1
    whole = (run.lower(),) if len(run) <= MAX_TERM_BYTES else ()
    if b"_" not in run and (run.isupper() or run.isdigit() or run[1:].islower() or run.islower()):
        return whole, 0  # no part: ALLCAPS, Capitalized, lower case (here for its length)
    terms, _one = _split_run(run)
    return whole + tuple(t.encode() for t in terms), 0


def count_translated_native(raw: bytes) -> tuple[dict[bytes, int], int]:
    """:func:`count_translated_pure`, by the compiled accelerator (only when :data:`NATIVE`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.count_translated(raw, _terms_of_run)


def pack_fields_native(fields: list[tuple[int, bytes]]) -> tuple[bytes, bytes, bytes, tuple[int, ...]]:
    """One session's packed postings from its fields' UTF-8 (each field once; put through
    :data:`TABLE` or not: the accelerator cuts runs at rule 1's separators): the terms joined by
    newlines, their counts (native ``uint32``), their field masks, and each field's length; by
    the compiled accelerator (only when :data:`NATIVE`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.pack_fields(fields, _terms_of_run)


def invert_rows_native(
    terms: list[bytes], ords: bytes, tfs: bytes, masks: bytes
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """A segment's rows (one per (term, session), sessions in ordinal order; ``ords`` and ``tfs``
    native ``uint32``) grouped by term: the distinct terms sorted and joined by newlines, their
    dfs, and every posting's ordinal delta, tf and mask, term after term; by the compiled
    accelerator (only when :data:`NATIVE`: :meth:`~._build.SegmentBuilder.invert`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.invert_rows(terms, ords, tfs, masks)


def invert_joined_native(
    pieces: list[bytes], ords: bytes, tfs: bytes, masks: bytes
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """:func:`invert_rows_native` of the rows *pieces* hold, each a session's terms joined by
    newlines (:attr:`~._analyze.PackedDoc.terms`): no ``bytes`` object per row; by the compiled
    accelerator (only when :data:`NATIVE`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.invert_joined(pieces, ords, tfs, masks)


def gather_terms_native(
    moved: bytes, dfs: bytes, deltas: bytes, tfs: bytes, masks: bytes
) -> tuple[bytes, bytes, bytes, bytes]:
    """A segment's term columns (``dfs``) and posting columns (term after term) in the order
    *moved* gives (term indices; all ``uint32`` but *masks*), by the compiled accelerator (only
    when :data:`NATIVE`: :meth:`~._build.Inverted.build`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.gather_terms(moved, dfs, deltas, tfs, masks)


def bucket_order_native(macs: list[bytes], nb: int) -> tuple[bytes, bytes]:
    """The terms' indices in bucket order (``int.from_bytes(mac[:8], "big") % nb`` of each
    term's HMAC; UTF-8 order kept within a bucket) and each bucket's number of terms, native
    ``uint32``; by the compiled accelerator (only when :data:`NATIVE`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.bucket_order(macs, nb)


def prefix_lists_native(
    terms: bytes, dfs: bytes, wordlike: bytes, heads: bytes, head_slots: bytes, *, npf: int
) -> list[bytes]:
    """The *npf* prefix buckets' payloads (``_format.encode_prefix``'s bytes) of a segment's
    sorted terms (joined by newlines; their dfs native ``uint32``), given the word-like ones
    (joined, same order), their distinct heads (sorted, joined) and each head's bucket; by the
    compiled accelerator (only when :data:`NATIVE`)."""
    if _ctok is None:
        raise RuntimeError("the compiled tokenizer is not built")
    return _ctok.prefix_lists(terms, dfs, wordlike, heads, head_slots, npf)


try:
    from . import _ctok
except ImportError:  # no compiler at install time: the pure path gives the same terms
    _ctok = None  # type: ignore[assignment]

#: True when :func:`count_translated` is the compiled accelerator's (built, and not turned off by
#: ``SESSIONSEAL_PURE_FTS=1``).
NATIVE: Final = (
    _ctok is not None and os.environ.get("SESSIONSEAL_PURE_FTS", "") != "1" and array("I").itemsize == 4  # uint32 tfs
)
#: :func:`count_runs` of a text already encoded and put through :data:`TABLE` or
#: :data:`LINE_TABLE`: the compiled accelerator's when :data:`NATIVE`, else the pure one.
count_translated: Final = count_translated_native if NATIVE else count_translated_pure


def count_terms(text: str) -> tuple[dict[str, int], int]:
    """Every term of *text* (rules 1 to 4) with its count, and *text*'s length (rule 5)."""
    counts, length = count_runs(text)
    if not counts:
        return {}, length
    # One decode of all the terms, split at C speed: a term never holds a newline (rule 2).
    return dict(zip(b"\n".join(counts).decode().split("\n"), counts.values(), strict=True)), length
