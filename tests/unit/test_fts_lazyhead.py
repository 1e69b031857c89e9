"""A cold query's view: the doc tables decoded lazily answer exactly as the eager fold (issue 23).

Opening the index makes no object per session (``_format.DocTable``, ``FtsIndex``'s raw-id
dicts): these properties pin that it is the same index, sessions spread over several segments
at several generations, plus delta records.
"""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _format as F
from sessionseal._fts._format import DeltaRecord, DocEntry
from sessionseal.errors import IntegrityError

VAULT = UUID(int=7)
WORDS = ("alpha", "beta", "gamma", "delta", "violet", "timeout", "serialize", "serializer")
QUERIES = ("alpha", "beta OR gamma", "violet AND timeout", "seria*", "NOT alpha", "alpha -beta", "title:gamma")


def eager(segments: list[_fts.SegmentReader], records: list[DeltaRecord]) -> dict[UUID, DocEntry]:
    """The fold as written before the lazy view: every entry decoded, newest generation wins,
    records of the same generation add their lengths."""
    out: dict[UUID, DocEntry] = {}
    entries = [(d, False) for s in segments for d in F.decode_head(F.encode_head(s.head)).docs]
    for d, add in entries + [(r.doc, True) for r in records]:
        have = out.get(d.session_id)
        if have is None or d.generation > have.generation:
            out[d.session_id] = d
        elif add and d.generation == have.generation:
            lengths = tuple(a + b for a, b in zip(have.lengths, d.lengths, strict=True))
            out[d.session_id] = DocEntry(d.session_id, d.generation, lengths)  # type: ignore[arg-type]
    return out


def doc(n: int, gen: int, words: list[str], field: int) -> _fts.Analyzed:
    return _fts.analyze(_fts.Doc(UUID(int=n + 1), gen, [(field, " ".join(words))]))


piece = st.tuples(
    st.integers(0, 5),  # session
    st.integers(1, 9),  # generation
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
    st.sampled_from([_fts.TITLE, _fts.USER, _fts.TOOL]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(piece, max_size=5), min_size=1, max_size=3), st.lists(piece, max_size=4))
def test_the_lazy_view_is_the_eager_index(tmp_path: Path, segs: list, recs: list) -> None:  # type: ignore[type-arg]
    readers = []
    for n, pieces in enumerate(segs):
        # A segment holds a session at most once; two segments, at different generations.
        once = {p[0]: (p[0], 10 * n + p[1], *p[2:]) for p in pieces}.values()
        key, seg_id = os.urandom(32), UUID(bytes=os.urandom(16))
        path = tmp_path / f"{seg_id.hex}.seg"
        path.write_bytes(_fts.build_segment(VAULT, seg_id, key, [doc(*p) for p in once]))
        readers.append(_fts.SegmentReader(path, VAULT, seg_id, key))
    records = [DeltaRecord((a := doc(*p)).entry, (0, 0, 0), a.terms) for p in recs]
    try:
        index = _fts.FtsIndex(readers, records)
        assert index.docs == eager(readers, records)
        assert len(index) == len(index.docs)
        for r in readers:  # the lazy table reads as the eager decode
            assert list(r.docs) == [r.docs[i] for i in range(len(r.docs))] == r.head.docs
            assert [d.session_id.bytes for d in r.docs] == list(r.docs.ids)
        merged = _fts.merge(readers, records)
        key, seg_id = os.urandom(32), UUID(bytes=os.urandom(16))
        path = tmp_path / f"{seg_id.hex}.seg"
        path.write_bytes(_fts.build_segment(VAULT, seg_id, key, merged))
        with _fts.SegmentReader(path, VAULT, seg_id, key) as one:
            rebuilt = _fts.FtsIndex([one])
            for q in QUERIES:
                assert index.search(q) == rebuilt.search(q), q
                assert index.overlaid([]).search(q) == index.search(q), q
    finally:
        for r in readers:
            r.close()


def test_a_segment_with_a_byte_added_or_cut_does_not_open(tmp_path: Path) -> None:
    # The layout check (frames tile the file exactly) runs at open, for every query.
    key, seg_id = os.urandom(32), UUID(bytes=os.urandom(16))
    good = _fts.build_segment(VAULT, seg_id, key, [doc(n, 1, ["alpha", WORDS[n]], _fts.USER) for n in range(5)])
    path = tmp_path / "s.seg"
    path.write_bytes(good)
    with _fts.SegmentReader(path, VAULT, seg_id, key) as ok:
        assert len(ok.docs) == 5
    for bad in (good + b"\0", good[:-1]):
        path.write_bytes(bad)
        with pytest.raises(IntegrityError):
            _fts.SegmentReader(path, VAULT, seg_id, key)
