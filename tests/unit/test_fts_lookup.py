"""A query's lookup of one term in a bucket (``_format.bucket_lookup``) against the full parse of
the bucket's directory (``bucket_view`` and ``bucket_postings``, what a merge and ``verify``
read): the same postings for every term, present or not, and on altered bytes an
:class:`IntegrityError` or, where the full parse accepts them, the same answer."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._fts import _format as F
from sessionseal.errors import IntegrityError
from tests.unit._fuzz import altered, altered_delta

_WORD = st.text(alphabet=st.sampled_from("abcdxyz_019é"), min_size=1, max_size=12)


@st.composite
def buckets(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    """An encoded bucket, its terms, and its segment's session count."""
    n_docs = draw(st.integers(1, 400))
    terms = sorted(draw(st.sets(_WORD, max_size=12)), key=str.encode)
    rows = []
    for t in terms:
        ords = sorted(draw(st.sets(st.integers(0, n_docs - 1), min_size=1, max_size=20)))
        tfs = draw(st.lists(st.integers(1, 70_000), min_size=len(ords), max_size=len(ords)))
        masks = draw(st.lists(st.integers(1, F.ALL_FIELDS), min_size=len(ords), max_size=len(ords)))
        rows.append((t, ords, tfs, masks))
    return F.encode_bucket(rows), terms, n_docs


def _full(data: bytes, term: str, n_docs: int) -> list[tuple[int, F.Posting]]:
    bv = F.bucket_view(data)
    rank = bv.index.get(term)
    return [] if rank is None else F.bucket_postings(data, bv, rank, n_docs)


@settings(max_examples=80, deadline=None)
@given(buckets(), _WORD)
def test_a_lookup_finds_what_the_full_parse_finds(bucket: tuple[bytes, list[str], int], other: str) -> None:
    data, terms, n_docs = bucket
    for term in [*terms, other, ""]:
        assert F.bucket_lookup(data, term, n_docs) == _full(data, term, n_docs)


@settings(max_examples=120, deadline=None)
@given(buckets(), st.data())
def test_altered_bytes_fail_or_answer_as_the_full_parse(
    bucket: tuple[bytes, list[str], int], data: st.DataObject
) -> None:
    raw, terms, n_docs = bucket
    changed = altered(raw, data, most=4)
    for term in [*terms[:3], "zzz"]:
        try:
            full: list[tuple[int, F.Posting]] | None = _full(changed, term, n_docs)
        except IntegrityError:
            full = None
        try:
            got = F.bucket_lookup(changed, term, n_docs)
        except IntegrityError:
            continue  # refused: never an answer from bytes that do not parse
        if full is not None:
            assert got == full


# -- a delta record's lookup of one term (``LazyDeltaRecord.posting``) --------------------------

_TERM = st.text(alphabet=st.sampled_from("abz_09é\x06\x07"), min_size=1, max_size=10)


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, dict[str, F.Posting]]:
    """An encoded delta record (terms of every length, counts whose bytes look like a length
    byte and a term), and its terms."""
    terms = draw(
        st.dictionaries(
            st.one_of(_TERM, st.text(alphabet="ab", min_size=60, max_size=64)),
            st.builds(F.Posting, st.sampled_from([1, 6, 7, 0x0661_6206, 2**32 - 1]), st.integers(1, F.ALL_FIELDS)),
            max_size=30,
        )
    )
    doc = F.DocEntry(uuid.UUID(int=3), 9, (1, 2, 3, 4))
    return F.encode_delta(F.DeltaRecord(doc, (5, 6, 7), terms)), terms


@settings(max_examples=100, deadline=None)
@given(records(), _TERM)
def test_a_record_s_lookup_finds_what_its_decoding_finds(
    record: tuple[bytes, dict[str, F.Posting]], other: str
) -> None:
    payload, terms = record
    lazy = F.LazyDeltaRecord(payload)
    for term in [*terms, other, "", "x" * 65]:
        assert lazy.posting(term) == terms.get(term)
    assert lazy._terms is None  # nothing decoded: the lookups walked the entries only


@settings(max_examples=120, deadline=None)
@given(records(), st.data())
def test_a_record_s_altered_bytes_fail_or_answer_as_its_decoding(
    record: tuple[bytes, dict[str, F.Posting]], data: st.DataObject
) -> None:
    payload, terms = record
    changed, decoded = altered_delta(payload, data)
    lazy = F.LazyDeltaRecord(changed)
    for term in [*list(terms)[:4], "ab", "zz"]:
        try:
            got = lazy.posting(term)
        except IntegrityError:
            continue  # refused: never an answer from bytes that do not parse
        if decoded is not None:
            assert got == decoded.get(term)
    for prefix in ("a", "ab0"):
        try:
            starting = lazy.starting(prefix)
        except IntegrityError:
            continue
        if decoded is not None:
            assert sorted(starting) == sorted(t for t in decoded if t.startswith(prefix))


@settings(max_examples=100, deadline=None)
@given(records(), st.sampled_from(["a", "ab", "b", "0", "ab0", "\x06", "z_", "é", "aaaaaaaaaa"]))
def test_a_record_s_prefix_finds_the_terms_its_decoding_finds(
    record: tuple[bytes, dict[str, F.Posting]], prefix: str
) -> None:
    payload, terms = record
    lazy = F.LazyDeltaRecord(payload)
    assert sorted(lazy.starting(prefix)) == sorted(t for t in terms if t.startswith(prefix))
    assert lazy._terms is None
    assert sorted(F.decode_delta(payload).starting(prefix)) == sorted(t for t in terms if t.startswith(prefix))
