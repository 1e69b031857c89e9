"""The accelerator's inversion of sessions' joined terms (docs/design.md, "Build speed"):
``invert_joined`` gives ``invert_rows``' columns for the same rows without a ``bytes`` object
per row, refuses bad pieces with the documented errors, and a segment builder that mixes packed
sessions, analyzed ones and merged rows inverts to the pure path's columns."""

from __future__ import annotations

import importlib.util
from array import array
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal import _fts

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sessionseal._fts._ctok") is None, reason="the accelerator is not built here"
)

#: Terms at the edges: 1 and 64 bytes, multi-byte UTF-8, shared 8-byte heads, a NUL.
TERMS = st.sampled_from(
    [b"a", b"b", b"ab", b"abcdefgh", b"abcdefghi", b"abcdefgh\x00", b"x" * 64, "d\u00e9j\u00e0".encode(), b"\x00"]
) | st.binary(min_size=1, max_size=64).filter(lambda t: b"\n" not in t)


def u32(*values: int) -> bytes:
    return array("I", values).tobytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(TERMS, max_size=12, unique=True), max_size=8))
def test_joined_pieces_invert_as_their_rows(sessions: list[list[bytes]]) -> None:
    from sessionseal._fts import _ctok

    rows = [t for s in sessions for t in s]
    ords = u32(*(i for i, s in enumerate(sessions) for _t in s))
    tfs = u32(*range(1, len(rows) + 1))
    masks = bytes((i % 15) + 1 for i in range(len(rows)))
    pieces = [b"\n".join(s) for s in sessions]
    assert _ctok.invert_joined(pieces, ords, tfs, masks) == _ctok.invert_rows(rows, ords, tfs, masks)


def test_invert_joined_refuses_bad_pieces_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    good = ([b"b\na", b"", b"b"], u32(0, 0, 2), u32(1, 2, 3), bytes([1, 2, 4]))
    assert _ctok.invert_joined(*good) == _ctok.invert_rows([b"b", b"a", b"b"], *good[1:])
    assert _ctok.invert_joined([], b"", b"", b"") == (b"", b"", b"", b"", b"")
    for pieces in ([b"b\n\na", b"b"], [b"b\na\n", b"b"], [b"x" * 65 + b"\na", b"b"]):
        with pytest.raises(ValueError, match="1 to 64"):
            _ctok.invert_joined(pieces, *good[1:])
    for pieces in ([b"b\na"], [b"b\na", b"b\nc"]):  # fewer or more rows than the columns
        with pytest.raises(TypeError, match="differ"):
            _ctok.invert_joined(pieces, *good[1:])
    with pytest.raises(TypeError, match="list of bytes"):
        _ctok.invert_joined([b"b\na", "b"], *good[1:])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="differ"):
        _ctok.invert_joined(good[0], u32(0, 1), *good[2:])
    with pytest.raises(ValueError, match="ordinal order"):
        _ctok.invert_joined([b"a", b"a"], u32(1, 0), u32(1, 1), b"\x01\x01")


def _doc(i: int, text: str) -> _fts.Doc:
    return _fts.Doc(UUID(int=i + 1), 1, [(_fts.USER, text), (_fts.TOOL, f"tool_{i} HTTPServer w{i}")])


def test_a_builder_mixing_packed_analyzed_and_empty_sessions_inverts_as_the_pure_path() -> None:
    docs = [_doc(0, "alpha beta"), _fts.Doc(UUID(int=50), 1, [(_fts.USER, "")]), _doc(1, "beta gamma")]
    docs.append(_doc(2, "gamma alpha d\u00e9j\u00e0"))
    builder = _fts.SegmentBuilder()
    builder.add(_fts.pack(docs[0]))
    builder.add(_fts.pack(docs[1]))  # no terms
    builder.add(_fts.analyze(docs[2]))  # the joined terms are split from here
    builder.add(_fts.pack(docs[3]))
    assert builder.postings == sum(len(_fts.analyze(d).terms) for d in docs)
    assert builder._invert_native() == builder._invert_pure()


def test_merged_rows_after_packed_sessions_invert_as_the_pure_path() -> None:
    packed = _fts.SegmentBuilder()
    for i in range(3):
        packed.add(_fts.pack(_doc(i, f"shared word{i}")))
    inv = packed.invert()
    merged = _fts.SegmentBuilder()
    merged.add(_fts.pack(_doc(10, "shared other")))
    merged.add_entries(inv.entries)
    terms = [t for t, df in zip(inv.terms.split(b"\n"), inv.dfs, strict=True) for _ in range(df)]
    ords = [1 + o for o in _ordinals(inv)]
    merged.add_rows(terms, ords, list(inv.tfs), inv.masks)
    assert merged.invert() == merged._invert_pure()
    assert merged.postings == len(inv.deltas) + len(_fts.analyze(_doc(10, "shared other")).terms)


def _ordinals(inv: _fts.Inverted) -> list[int]:
    out, at = [], 0
    for df in inv.dfs:
        prev = 0
        for d in inv.deltas[at : at + df]:
            prev += d
            out.append(prev)
        at += df
    return out
