"""The fast FTS_DELTA codec (docs/spec/fts-v1.md, "Delta log") against the per-term codec it
replaced: the same bytes out, the same record back, the same refusals. Never timed: a test
must not depend on machine speed (the speed is benchmarks/bench_fts_write.py's)."""

from __future__ import annotations

import struct
import uuid
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._fts import _delta as F_delta
from sessionseal._fts import _format as F
from sessionseal._fts._format import DeltaRecord, DocEntry, Posting
from sessionseal.errors import IntegrityError

_HEAD = struct.Struct(">B16sQIIIIQQQI")
_ENTRY = struct.Struct(">IB")


def ref_encode(rec: DeltaRecord) -> bytes:
    """The spec's layout, one term at a time (the encoder before the fast one)."""
    d = rec.doc
    out = [_HEAD.pack(1, d.session_id.bytes, d.generation, *d.lengths, *rec.stamp, len(rec.terms))]
    for term, p in sorted(rec.terms.items(), key=lambda kv: kv[0].encode()):
        raw = term.encode()
        assert 0 < len(raw) <= 64
        out.append(bytes((len(raw),)) + raw + _ENTRY.pack(p.tf, p.mask))
    return b"".join(out)


def ref_decode(data: bytes) -> DeltaRecord:
    """The decoder before the fast one: a parse per term, every check it made."""
    try:
        version, sid, gen, l0, l1, l2, l3, ino, size, mtime, n = _HEAD.unpack_from(data, 0)
        if version != 1:
            raise IntegrityError(F.INTEGRITY)
        at = _HEAD.size
        terms: dict[str, Posting] = {}
        for _ in range(n):
            k = data[at]
            if not (0 < k <= 64 and at + 1 + k <= len(data)):
                raise IntegrityError(F.INTEGRITY)
            term = data[at + 1 : at + 1 + k].decode()
            at += 1 + k
            tf, mask = _ENTRY.unpack_from(data, at)
            at += _ENTRY.size
            if not (tf > 0 and 0 < mask <= F.ALL_FIELDS and term not in terms):
                raise IntegrityError(F.INTEGRITY)
            terms[term] = Posting(tf, mask)
        if at != len(data):
            raise IntegrityError(F.INTEGRITY)
        return DeltaRecord(DocEntry(uuid.UUID(bytes=sid), gen, (l0, l1, l2, l3)), (ino, size, mtime), terms)
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise IntegrityError(F.INTEGRITY) from exc


def _outcome(fn, data: bytes) -> object:  # type: ignore[no-untyped-def]
    try:
        return fn(data)
    except IntegrityError:
        return "refused"


_term = st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1, max_size=20).filter(
    lambda t: len(t.encode()) <= 64
)
_posting = st.builds(Posting, st.integers(1, 2**32 - 1), st.integers(1, F.ALL_FIELDS))
_records = st.builds(
    DeltaRecord,
    st.builds(DocEntry, st.uuids(), st.integers(0, 2**64 - 1), st.tuples(*[st.integers(0, 2**32 - 1)] * 4)),
    st.tuples(*[st.integers(0, 2**64 - 1)] * 3),
    st.dictionaries(_term, _posting, max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(_records)
def test_encoder_writes_the_per_term_encoders_bytes(rec: DeltaRecord) -> None:
    data = F.encode_delta(rec)
    assert data == ref_encode(rec)
    assert F.decode_delta(data) == rec == ref_decode(data)


@settings(max_examples=200, deadline=None)
@given(_records)
def test_column_encoder_in_any_order_is_the_same(rec: DeltaRecord) -> None:
    items = list(rec.terms.items())[::-1]
    terms = [t.encode() for t, _p in items]
    tfs = array("I", [p.tf for _t, p in items])
    got = F.encode_delta_columns(rec.doc, rec.stamp, terms, tfs, bytes(p.mask for _t, p in items))
    assert got == ref_encode(rec)


@settings(max_examples=300, deadline=None)
@given(_records, st.data())
def test_decoder_refuses_what_the_per_term_decoder_refused(rec: DeltaRecord, data: st.DataObject) -> None:
    raw = bytearray(ref_encode(rec))
    how = data.draw(st.sampled_from(["flip", "cut", "grow", "count"]))
    if how == "flip":
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "grow":
        raw += data.draw(st.binary(min_size=1, max_size=8))
    else:  # the count field: up to 2**32 - 1 entries claimed, none allocated
        raw[_HEAD.size - 4 : _HEAD.size] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    assert _outcome(F.decode_delta, bytes(raw)) == _outcome(ref_decode, bytes(raw))


def test_encoder_refuses_bad_terms() -> None:
    doc = DocEntry(uuid.UUID(int=1), 1, (0, 0, 0, 0))
    for bad in ("", "x" * 65, "é" * 33):
        with pytest.raises(ValueError, match="1 to 64"):
            F.encode_delta(DeltaRecord(doc, (1, 2, 3), {bad: Posting(1, 1)}))


def test_a_big_record_round_trips() -> None:
    terms = {f"t{i:06d}é"[: 3 + i % 8]: Posting(1 + i % 70000, 1 + i % 15) for i in range(50_000)}
    rec = DeltaRecord(DocEntry(uuid.UUID(int=7), 3, (1, 2, 3, 4)), (5, 6, 7), terms)
    data = F.encode_delta(rec)
    assert data == ref_encode(rec)
    assert F.decode_delta(data) == rec


_SIDS = [uuid.UUID(int=i) for i in range(1, 4)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_SIDS),
            st.integers(1, 4),
            st.dictionaries(st.sampled_from(["alpha", "beta", "gamma", "dé"]), _posting, max_size=4),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_current_records_answer_as_all_records(writes: list, torn: bool) -> None:  # type: ignore[type-arg]
    """read_delta_current leaves out only records the generation rule ignores: the index over
    them answers every term as the index over all records, with the same stamps; and it still
    names every record's (session, generation)."""
    from sessionseal import _crypto
    from sessionseal._container import HEADER_SIZE
    from sessionseal._fts import FtsIndex, read_delta, read_delta_current

    vault, key = uuid.UUID(int=99), bytes(range(32))
    dek = _crypto.new_key()
    data = F_delta.new_delta(vault, key, 1, dek=dek)
    header = data[:HEADER_SIZE]
    recs = [
        DeltaRecord(DocEntry(sid, gen, (1, len(t), 0, 0)), (gen, i, 7), t) for i, (sid, gen, t) in enumerate(writes)
    ]
    data += b"".join(F_delta.delta_frame(header, dek, i, r, compress=True) for i, r in enumerate(recs))
    if torn and recs:
        data = data[:-3]
        recs = recs[:-1]
    every = read_delta(data, vault, key, torn_tail_ok=True)
    assert every == recs
    current, heads = read_delta_current(data, vault, key)
    assert heads == {(r.doc.session_id, r.doc.generation) for r in every}
    top = {
        r.doc.session_id: max(q.doc.generation for q in every if q.doc.session_id == r.doc.session_id) for r in every
    }
    assert current == [r for r in every if r.doc.generation == top[r.doc.session_id]]
    lazy, _heads = read_delta_current(data, vault, key, lazy=True)
    assert [(r.doc, r.stamp) for r in lazy] == [(r.doc, r.stamp) for r in current]
    a, b, c = FtsIndex([], every), FtsIndex([], current), FtsIndex([], lazy)
    assert a.docs == b.docs == c.docs
    for term in ("alpha", "beta", "gamma", "dé", "absent", "a"):
        assert a._term(term) == b._term(term) == c._term(term)
    for q in ("alpha OR dé", "gam*", "alp* AND NOT beta", "title:beta"):
        assert a.search(q) == b.search(q) == FtsIndex([], read_delta_current(data, vault, key, lazy=True)[0]).search(q)
    assert [r.terms for r in lazy] == [r.terms for r in current]


def test_a_lazy_record_that_does_not_parse_never_answers() -> None:
    """An authentic payload whose terms do not parse (a bug or a forgery) raises at the lookup
    that may find a term in it, never answers; a lookup whose bytes it lacks needs no parse."""
    rec = DeltaRecord(DocEntry(uuid.UUID(int=5), 1, (1, 1, 0, 0)), (1, 2, 3), {"alpha": Posting(1, 2)})
    raw = bytearray(F.encode_delta(rec))
    raw[-1] = 0  # a zero field mask
    lazy = F.LazyDeltaRecord(bytes(raw))
    assert lazy.doc == rec.doc and lazy.stamp == rec.stamp
    assert lazy.posting("omega") is None
    with pytest.raises(IntegrityError):
        lazy.posting("alpha")
    with pytest.raises(IntegrityError):
        F.LazyDeltaRecord(bytes(raw[:20]))
