"""A prefix query's answer and its snippets, held to the plain way of computing them (issue 23:
the prefix's speed at 1 GB; docs/design.md "Query speed at 1 GB").

- The expansion reads each segment's prefix run (``_format.prefix_run``, the bucket's other
  terms not decoded) and each delta record's matching entries once, with their postings (``FtsIndex._expansion``, ``LazyDeltaRecord.prefixed``), and looks
  a term up only in the segments whose prefix run lists it. The plain way: the expansion's
  terms, then every term looked up in every segment and every record. Same postings, same
  hits, same scores, same order.
- A snippet's search for a term starts with the term's literal (``_search._finder``). The plain
  way: the look-behind first. Same place on every text.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _format as F
from sessionseal._fts._query import Term
from sessionseal._fts._tokens import is_wordlike
from sessionseal._vault import _search
from sessionseal.errors import IntegrityError
from tests.unit._fuzz import altered, altered_delta

VAULT = uuid.UUID(int=23)
#: Words that share prefixes ("ser", "seri", "serial"), words too long to be word-like (over
#: 32 characters: never in a prefix bucket, never an expansion), digits and non-ASCII.
_WORDS = st.sampled_from(
    [
        "serial",
        "serialize",
        "serializer",
        "serialized",
        "serializing",
        "series",
        "sermon",
        "seré",
        "serß",
        "ser_x",
        "ser9",
        "serialize" + "z" * 30,
        "other",
        "words",
        "s3rial",
    ]
)
_FIELDS = st.sampled_from([_fts.TITLE, _fts.USER, _fts.ASSISTANT, _fts.TOOL])


def _text(draw: st.DrawFn) -> list[tuple[int, str]]:
    return draw(st.lists(st.tuples(_FIELDS, st.lists(_WORDS, max_size=12).map(" ".join)), min_size=1, max_size=4))


@st.composite
def indexes(draw: st.DrawFn) -> tuple[list[list[_fts.Analyzed]], list[_fts.Analyzed]]:
    """Segments of sessions (generation 1), and delta records: of a session a segment holds
    (an append at its generation, or a new generation that replaces it) or of a new one."""
    n = draw(st.integers(1, 8))
    segs: list[list[_fts.Analyzed]] = [[] for _ in range(draw(st.integers(1, 3)))]
    for i in range(n):
        segs[draw(st.integers(0, len(segs) - 1))].append(_fts.analyze(_fts.Doc(uuid.UUID(int=i + 1), 1, _text(draw))))
    recs = [
        _fts.analyze(_fts.Doc(uuid.UUID(int=draw(st.integers(1, n + 2))), draw(st.integers(1, 2)), _text(draw)))
        for _ in range(draw(st.integers(0, 4)))
    ]
    return segs, recs


def _plain_expansion(index: _fts.FtsIndex, prefix: str) -> list[str]:
    """The expansion, from every segment's run (its most frequent) and the current records,
    decoded whole."""
    found: set[str] = set()
    for seg in index.segments:
        rows = sorted(seg.expand(prefix), key=lambda r: (-r[1], r[0]))
        found.update(t for t, _df in rows[: _fts.MAX_EXPANSION])
    for rec in index._records:
        assert isinstance(rec, F.LazyDeltaRecord)
        terms = F.decode_delta(rec._payload).terms
        found.update(t for t in terms if t.startswith(prefix) and is_wordlike(t))
    return sorted(found)


@settings(max_examples=60, deadline=None)
@given(indexes(), st.sampled_from(["ser", "seri", "serial", "serialize", "ser9", "oth", "zzz"]), _FIELDS)
def test_a_prefix_s_postings_are_every_term_looked_up_everywhere(
    built: tuple[list[list[_fts.Analyzed]], list[_fts.Analyzed]], prefix: str, field: int
) -> None:
    segs, recs = built
    lazy = [F.LazyDeltaRecord(F.encode_delta(F.DeltaRecord(a.entry, (1, 2, 3), a.terms))) for a in recs]
    with tempfile.TemporaryDirectory() as tmp:
        readers = []
        try:
            for i, docs in enumerate(d for d in segs if d):
                seg_id, key = uuid.UUID(int=100 + i), os.urandom(32)
                path = Path(tmp) / f"{i}.seg"
                path.write_bytes(_fts.build_segment(VAULT, seg_id, key, docs))
                readers.append(_fts.SegmentReader(path, VAULT, seg_id, key))
            index = _fts.FtsIndex(readers, lazy)
            terms = _plain_expansion(index, prefix)
            assert index._expand(prefix) == terms
            for fields in (_fts.ALL_FIELDS, field):
                leaf = Term(prefix, True, fields)
                plain = {t: {s: p for s, p in index._raw(t).items() if p.mask & fields} for t in terms}
                assert index._leaf(leaf) == {t: ps for t, ps in plain.items() if ps}
            # The whole query: the same hits, scores (to the bit) and order as a query that ORs
            # the expansion's terms, each looked up in every segment and record.
            got = index.search(f"{prefix}*")
            if terms:
                assert got == index.search(" OR ".join(terms))
            else:
                assert got == []
        finally:
            for r in readers:
                r.close()


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=st.sampled_from("ab_9é\x06\x07"), min_size=1, max_size=10),
        st.builds(F.Posting, st.sampled_from([1, 6, 7, 0x0661_6206, 2**32 - 1]), st.integers(1, F.ALL_FIELDS)),
        max_size=30,
    ),
    st.sampled_from(["a", "ab", "b", "9", "ab9", "\x06", "a_", "é", "aaaaaaaaaa"]),
    st.data(),
)
def test_a_record_s_prefixed_terms_and_postings_are_its_decoding_s(
    terms: dict[str, F.Posting], prefix: str, data: st.DataObject
) -> None:
    doc = F.DocEntry(uuid.UUID(int=3), 9, (1, 2, 3, 4))
    payload = F.encode_delta(F.DeltaRecord(doc, (5, 6, 7), terms))
    want = {t: p for t, p in terms.items() if t.startswith(prefix)}
    lazy = F.LazyDeltaRecord(payload)
    assert lazy.prefixed(prefix) == want and lazy._terms is None  # nothing decoded
    assert F.decode_delta(payload).prefixed(prefix) == want
    # Altered bytes: refused, or the decoding's answer (never another answer).
    changed, decoded = altered_delta(payload, data)
    try:
        got = F.LazyDeltaRecord(changed).prefixed(prefix)
    except IntegrityError:
        return
    if decoded is not None:
        assert got == {t: p for t, p in decoded.items() if t.startswith(prefix)}


def test_a_record_cut_inside_the_prefix_s_entry_is_refused() -> None:
    doc = F.DocEntry(uuid.UUID(int=3), 9, (1, 2, 3, 4))
    payload = F.encode_delta(F.DeltaRecord(doc, (5, 6, 7), {"aa": F.Posting(1, 1), "serial": F.Posting(2, 2)}))
    cut = payload[: payload.index(b"serial") + 8]  # the term's bytes whole, its count cut
    for how, what in (("prefixed", "ser"), ("posting", "serial"), ("posting", "aa")):
        try:
            getattr(F.LazyDeltaRecord(cut), how)(what)
        except IntegrityError:
            continue
        raise AssertionError("a record cut short answered")


# -- a segment's prefix bucket: the run of the prefix's terms, the others not decoded ----------

_STEMS = st.sampled_from(["ser", "seri", "serial", "seré", "serß", "sfx", "ab", "z"])


@st.composite
def prefix_buckets(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, int]]]:
    terms = draw(st.sets(st.tuples(_STEMS, st.text(alphabet="aéz_9ß", max_size=4)).map("".join), max_size=40))
    rows = [(t, draw(st.integers(1, 2**32 - 1))) for t in sorted(terms, key=str.encode)]
    return F.encode_prefix(rows), rows


@settings(max_examples=150, deadline=None)
@given(prefix_buckets(), _STEMS, st.data())
def test_a_prefix_run_is_what_the_decoded_bucket_holds(
    bucket: tuple[bytes, list[tuple[str, int]]], prefix: str, data: st.DataObject
) -> None:
    raw, rows = bucket
    assert F.decode_prefix(raw) == rows
    assert F.prefix_run(raw, prefix) == [(t, df) for t, df in rows if t.startswith(prefix)]
    # Altered bytes: refused, or the decoded bucket's answer.
    changed = altered(raw, data, most=4)
    try:
        decoded: list[tuple[str, int]] | None = F.decode_prefix(changed)
    except IntegrityError:
        decoded = None
    try:
        got = F.prefix_run(changed, prefix)
    except IntegrityError:
        return
    if decoded is not None and [t for t, _df in decoded] == sorted((t for t, _df in decoded), key=str.encode):
        assert got == [(t, df) for t, df in decoded if t.startswith(prefix)]


# -- a snippet's search -----------------------------------------------------------------------


def _plain_find(folded: str, term: str, prefix: bool) -> int | None:
    """The search before: the look-behind first."""
    m = re.search(r"(?<![^\W_])" + re.escape(term) + ("" if prefix else r"(?![^\W_])"), folded)
    if m is None:
        at = folded.find(term)
        return None if at < 0 else at
    return m.start()


_PIECE = st.text(alphabet=st.sampled_from("serializ_9 .-(\néßžЖ٣\u0301K"), max_size=60)


@settings(max_examples=400, deadline=None)
@given(_PIECE, st.sampled_from(["serializ", "ser", "s", "e9", "é", "ß", "ж", "z_", "a.b", "(x"]), st.booleans())
def test_a_snippet_s_search_finds_the_place_the_look_behind_first_found(text: str, term: str, prefix: bool) -> None:
    folded = _search._folded(text)
    assert _search._find(folded, term, prefix=prefix) == _plain_find(folded, term, prefix)


def test_a_prefix_s_snippet_is_at_the_word_that_starts_with_it() -> None:
    doc = {
        "title": "notes",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "nothing here"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "deserialize, then Serializer.dump(x)"}]},
        ],
    }
    root = _fts.parse("serializ*").root
    place, snippet, offset = _search._snippet(_search.DocText(doc), root) or ("", "", None)
    assert (place, offset) == ("messages[1].content[0].text", 18)
    assert snippet == "deserialize, then Serializer.dump(x)"
    # Only inside a word: the last resort, as before.
    inside = {"messages": [{"role": "user", "content": [{"type": "text", "text": "deserialize it"}]}]}
    assert _search._snippet(_search.DocText(inside), root) == ("messages[0].content[0].text", "deserialize it", 2)
