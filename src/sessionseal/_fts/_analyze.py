"""A session's text into postings: :func:`analyze` (a dict per session, for delta records and
queries) and :func:`pack` (the same postings in packed columns, for an index build).

The packed form exists for speed and memory: an index build handles one posting per (term,
session), about 12 million for 1 GB of text. As named tuples in dicts they cost about 150 bytes
each and a Python step each; as a joined term list, an ``array`` of counts and a ``bytes`` of
field masks they cost about 10 bytes, pickle in one piece between processes, and a segment
builder inverts them with sorts and ``map`` over C types (docs/design.md, "Build speed").
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from ._format import DocEntry, Posting
from ._tokens import LINE_TABLE, NATIVE, count_translated, pack_fields_native

__all__ = ["Analyzed", "Doc", "PackedDoc", "analyze", "count_lines", "pack"]

FIELD_INDEX: Final = {1: 0, 2: 1, 4: 2, 8: 3}  # TITLE, USER, ASSISTANT, TOOL -> DocEntry.lengths


@dataclass(frozen=True, slots=True)
class Doc:
    """A session's stored, sanitized text, as ``(field bit, text)`` pieces (one per message)."""

    session_id: UUID
    generation: int
    fields: Sequence[tuple[int, str]]


@dataclass(slots=True)
class Analyzed:
    """A session's postings: what a segment or a delta record holds for it."""

    entry: DocEntry
    terms: dict[str, Posting]


@dataclass(frozen=True, slots=True)
class PackedDoc:
    """A session's postings in columns: the same terms, counts and masks as :func:`analyze`'s.

    ``terms`` is the terms' UTF-8 joined by newlines (a term never holds one), in no particular
    order; ``tfs`` and ``masks`` are their counts and field masks in the same order. ``size`` is
    the session's text in characters (what caps a segment).
    """

    entry: DocEntry
    terms: bytes
    tfs: array[int]
    masks: bytes
    size: int

    def term_list(self) -> list[bytes]:
        return self.terms.split(b"\n") if self.terms else []

    def analyzed(self) -> Analyzed:
        terms = self.terms.decode().split("\n") if self.terms else []
        return Analyzed(self.entry, dict(zip(terms, map(Posting, self.tfs, self.masks), strict=True)))


#: A field's text is tokenized line by line when its repeated lines hold at least this share of it.
_REPEATED_SHARE: Final = 8


def count_lines(text: str) -> tuple[dict[bytes, int], int]:
    """:func:`~._tokens.count_runs` of *text*, tokenizing each distinct line once.

    A transcript repeats lines: a file read twice, a test run's output, a listing, the same
    code in an edit's old and new strings (the benchmark session's tool text is 57 % repeated
    lines). A newline ends every run (rule 1), so a line's terms and words are the same
    wherever it stands and the counts of a text are the sum of its lines': the distinct lines
    (after rule 1's table: lines that differ only in punctuation are the same) are tokenized
    once, and a line found *n* times counts *n* times (its terms multiplied: a Python step per
    term of the repeated lines only). When the repeated lines are less than
    1/:data:`_REPEATED_SHARE` of the text, the text is tokenized whole.
    """
    raw = text.encode("utf-8", "replace").translate(LINE_TABLE)
    lines = Counter(raw.split(b"\n"))
    repeated = [(line, n) for line, n in lines.items() if n > 1 and line]
    if sum(len(line) * (n - 1) for line, n in repeated) * _REPEATED_SHARE < len(raw):
        return count_translated(raw)
    del raw
    counts, length = count_translated(b"\n".join(line for line, n in lines.items() if n == 1))
    by_times: dict[int, list[bytes]] = {}
    for line, n in repeated:
        by_times.setdefault(n, []).append(line)
    get = counts.get
    for n, group in by_times.items():
        more, words = count_translated(b"\n".join(group))
        length += words * n
        for term, k in more.items():
            counts[term] = get(term, 0) + k * n
    return counts, length


def _by_field(doc: Doc) -> tuple[dict[int, list[str]], int]:
    """*doc*'s texts grouped by field (each field's in order), and the text size."""
    by_field: dict[int, list[str]] = {}
    size = 0
    for field, text in doc.fields:
        if field not in FIELD_INDEX:
            raise ValueError("a field is one of TITLE, USER, ASSISTANT, TOOL")
        by_field.setdefault(field, []).append(text)
        size += len(text)
    return by_field, size


def _counted(doc: Doc) -> tuple[list[tuple[int, dict[bytes, int]]], tuple[int, int, int, int], int]:
    """Each field's term counts (one tokenizer pass per field), the fields' lengths, the text size."""
    by_field, size = _by_field(doc)
    lengths = [0, 0, 0, 0]
    counted = []
    for field, texts in by_field.items():
        # One pass per field: a newline never joins two pieces' words (rule 1).
        counts, n = count_lines("\n".join(texts))
        lengths[FIELD_INDEX[field]] = n
        if counts:
            counted.append((field, counts))
    return counted, (lengths[0], lengths[1], lengths[2], lengths[3]), size


def pack(doc: Doc) -> PackedDoc:
    """Tokenize *doc*, one field at a time; sum the counts per term, OR-ing the fields' bits.

    With the compiled accelerator (:data:`~._tokens.NATIVE`), one call counts every field's runs
    and sums them into the columns (no dict per field, no Python step per term; the lines are
    not deduplicated first: at C speed that costs more than it saves). The same postings as the
    pure path; the terms in another order (a segment and a delta record sort them).
    """
    if NATIVE:
        return _pack_native(doc)
    return _pack_pure(doc)


def _pack_native(doc: Doc) -> PackedDoc:
    by_field, size = _by_field(doc)
    # One piece per field: a newline never joins two pieces' words (rule 1). Not put through
    # TABLE: the accelerator cuts the runs at rule 1's separators itself (a copy less).
    raws = [(f, "\n".join(texts).encode("utf-8", "replace")) for f, texts in by_field.items()]
    terms, tfs, masks, counted = pack_fields_native(raws)
    lengths = [0, 0, 0, 0]
    for (field, _raw), n in zip(raws, counted, strict=True):
        lengths[FIELD_INDEX[field]] = n
    entry = DocEntry(doc.session_id, doc.generation, (lengths[0], lengths[1], lengths[2], lengths[3]))
    counts = array("I")
    counts.frombytes(tfs)
    return PackedDoc(entry, terms, counts, masks, size)


def _pack_pure(doc: Doc) -> PackedDoc:
    counted, lengths, size = _counted(doc)
    tfs: dict[bytes, int] = {}
    masks: dict[bytes, int] = {}
    for field, counts in counted:
        if not tfs:  # the first field with terms: taken whole, at C speed
            tfs, masks = dict(counts), dict.fromkeys(counts, field)
            continue
        # A Python step per term of the later fields: measured faster than set algebra over the
        # fields' key sets (0.4 s against 0.9 s for 112 MB of text).
        for term, n in counts.items():
            if term in tfs:
                tfs[term] += n
                masks[term] |= field
            else:
                tfs[term] = n
                masks[term] = field
    entry = DocEntry(doc.session_id, doc.generation, lengths)
    return PackedDoc(entry, b"\n".join(tfs), array("I", tfs.values()), bytes(masks.values()), size)


def analyze(doc: Doc) -> Analyzed:
    """Tokenize *doc*, one field at a time, and sum the counts per term, OR-ing the fields' bits."""
    return pack(doc).analyzed()
