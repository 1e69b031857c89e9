"""The accelerator's keyed-free steps of a segment's placement (docs/design.md, "Build speed"):
the terms put in bucket order from their HMACs (``bucket_order``) and the prefix buckets built
from the word-like terms (``prefix_lists``) are exactly the pure path's and the reference's
bytes, for any terms, keys and bucket counts; bad columns get documented errors, never text."""

from __future__ import annotations

import importlib
from array import array
from collections import Counter
from uuid import UUID

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sessionseal._fts import _build, _tokens
from sessionseal._fts import _format as F
from sessionseal._fts._analyze import Analyzed

from . import _fts_reference as ref

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sessionseal._fts._ctok") is None, reason="the accelerator is not built here"
)


def u32(*values: int) -> bytes:
    return array("I", values).tobytes()


#: Terms at the edges of is_wordlike and of the three-character head: ASCII, digits and "_",
#: 2/3/32/33 characters, multi-byte letters (heads of 3 characters, 3 to 12 bytes), marks, CJK.
WORDS = st.one_of(
    st.text(alphabet="abcxyz019_", min_size=1, max_size=40),
    st.text(alphabet="aé中ßİ\u0301_9ꙮ", min_size=1, max_size=16),
    st.sampled_from(["abc", "abcd", "ab", "a" * 32, "a" * 33, "é" * 32, "中文字", "中文字字", "_ab", "9ab", "aé"]),
).filter(lambda t: 0 < len(t.encode()) <= 64)


def inverted_of(terms: set[str], seed: int) -> _build.Inverted:
    """An inverted segment with *terms* (each in one or two sessions)."""
    by_utf8 = sorted(t.encode() for t in terms)
    dfs = array("I", (1 + (seed + i) % 2 for i in range(len(by_utf8))))
    n = sum(dfs)
    return _build.Inverted([], 0, b"\n".join(by_utf8), dfs, array("I", [0] * n), array("I", [1] * n), bytes([1]) * n)


@settings(max_examples=400, deadline=None)
@given(st.sets(WORDS, max_size=200), st.sampled_from([1, 8, 16, 64, 1024]), st.binary(min_size=32, max_size=32))
@example(set(), 8, bytes(32))
@example({"abc", "abd", "abé", "ab"}, 64, bytes(32))
def test_native_prefix_buckets_are_the_pure_ones(terms: set[str], nb: int, key: bytes) -> None:
    inv = inverted_of(terms, len(key))
    keys = F.SubKeys.of(key)
    by_utf8 = inv.terms.split(b"\n") if inv.terms else []
    native = _build._prefix_payloads_native(keys, inv.terms, inv.dfs, nb)
    assert native == _build._prefix_payloads(keys, by_utf8, inv.dfs, nb)
    assert len(native) == max(1, nb // 8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=32), max_size=300), st.integers(1, 5000))
def test_bucket_order_is_the_stable_sort_by_slot(macs: list[bytes], nb: int) -> None:
    slots = [int.from_bytes(m[:8], "big") % nb for m in macs]
    moved, counts = _tokens.bucket_order_native(macs, nb)
    assert moved == u32(*sorted(range(len(macs)), key=slots.__getitem__))
    assert counts == u32(*map(Counter(slots).__getitem__, range(nb)))


@pytest.mark.skipif(not _tokens.NATIVE, reason="SESSIONSEAL_PURE_FTS=1: the build takes the pure path")
@settings(max_examples=100, deadline=None)
@given(st.sets(WORDS, min_size=1, max_size=120), st.binary(min_size=32, max_size=32))
def test_a_native_placement_is_the_reference_one(terms: set[str], key: bytes) -> None:
    """Inverted._payloads on the native path (bucket order, gather, prefix lists) against the
    plain reference of docs/spec/fts-v1.md, the whole buckets and prefix buckets."""
    docs = [Analyzed(F.DocEntry(UUID(int=1), 1, (0, 0, 0, 0)), {t: F.Posting(1, 1) for t in terms})]
    builder = _build.SegmentBuilder()
    for d in docs:
        builder.add(d)
    inv = builder.invert()
    assert inv._payloads(F.SubKeys.of(key)) == ref._bucket_payloads(ref._invert(docs), F.SubKeys.of(key))


def test_bucket_order_refuses_bad_arguments_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    assert _ctok.bucket_order([], 1) == (b"", u32(0))
    assert _ctok.bucket_order([bytes(7) + b"\x05", bytes(8)], 4) == (u32(1, 0), u32(1, 1, 0, 0))
    for macs, nb, error in (
        ([b"short"], 4, TypeError),
        (["a" * 32], 4, TypeError),
        ((bytes(32),), 4, TypeError),
        ([bytes(32)], 0, ValueError),
        ([bytes(32)], 1 << 32, ValueError),
        ([bytes(32)], 1 << 70, OverflowError),
    ):
        with pytest.raises(error):
            _ctok.bucket_order(macs, nb)  # type: ignore[arg-type]


def test_prefix_lists_refuses_bad_columns_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    terms, dfs = b"abc\nabd\nsecret", u32(3, 1, 2)
    good = (terms, dfs, b"abc\nsecret", b"abc\nsec", u32(1, 0), 2)
    assert _ctok.prefix_lists(*good) == [
        F.encode_prefix([("secret", 2)]),
        F.encode_prefix([("abc", 3)]),
    ]
    assert _ctok.prefix_lists(b"", b"", b"", b"", b"", 3) == [F.encode_prefix([])] * 3
    bad = (
        (terms, dfs, b"abd\nabc", b"abc", u32(0), 2),  # not in the terms' order
        (terms, dfs, b"abc\nzzz", b"abc\nzzz", u32(0, 0), 2),  # not one of the terms
        (terms, dfs, b"abc\nsecret", b"abc", u32(0), 2),  # a head missing
        (terms, dfs, b"abc\nsecret", b"abc\nsec", u32(0, 2), 2),  # a bucket out of range
        (terms, dfs, b"abc\n\nsecret", b"abc\nsec", u32(0, 1), 2),  # an empty term
        (b"x" * 65, u32(1), b"x" * 65, b"xxx", u32(0), 1),  # too long
        (terms, u32(3, 1), *good[2:]),  # dfs short
        (*good[:4], u32(1), 2),  # slots short
        (*good[:5], 0),
        (*good[:5], 1 << 32),
        (terms, dfs, bytearray(b"abc"), *good[3:]),
        (*good[:5], "2"),
    )
    for args in bad:
        with pytest.raises((TypeError, ValueError)) as err:
            _ctok.prefix_lists(*args)
        assert "secret" not in str(err.value)
