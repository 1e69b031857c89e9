"""The index build's optional accelerator (docs/design.md, "Build speed"): the compiled
tokenizer gives exactly what the pure-Python one gives (terms, counts, length, and the dict's
order), for every input; a segment built on either path is the same bytes; CI builds it."""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys
from array import array
from uuid import UUID

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _analyze, _tokens

native = pytest.mark.skipif(
    importlib.util.find_spec("sessionseal._fts._ctok") is None, reason="the accelerator is not built here"
)

#: Pieces at every edge of the classes: plain, lower-cased (ALLCAPS, Capitalized, digits), the
#: 64/65-byte limit, "_" and camel case, non-ASCII (valid, and replaced), separators, NUL.
PIECES = (
    "a",
    "Value",
    "Error",
    "HTTP",
    "HTTPServer",
    "utf8Decode",
    "aB",
    "A",
    "Ab9",
    "9Ab",
    "01CjV73pci",
    "_",
    "__x",
    "refresh_token",
    "Foo_Bar",
    "toolu_01LmSLb2L8ZpZj",
    "123",
    "é",
    "É",
    "ß",
    "ﬁ",
    "中",
    "\u0301",
    "İ",
    "\ufffd",
    " ",
    ".",
    "\n",
    "\t",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x00",
    "a" * 63,
    "b" * 64,
    "c" * 65,
    "D" * 64,
    "E" * 65,
    "F" + "g" * 64,
    "7" * 65,
    "h_" * 33,
    "é" * 32,
    "é" * 33,
)
texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    st.text(max_size=300),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=300),
)


def both(raw: bytes) -> tuple[tuple[dict[bytes, int], int], tuple[dict[bytes, int], int]]:
    return _tokens.count_translated_pure(raw), _tokens.count_translated_native(raw)


def same(raw: bytes) -> None:
    pure, fast = both(raw)
    assert fast == pure
    assert list(fast[0]) == list(pure[0])  # the same order too: a session's term list


@native
@settings(max_examples=1500, deadline=None)
@given(texts)
@example("")
@example("   \n\t  ")
@example("\x00\x00 \x00")
@example(" ".join(["x" * 64, "x" * 65, "X" * 64, "X" * 65, "Xx" * 33, "x_" * 40]))
@example("FOO foo Foo fOO foo_bar Foo_bar FOO_BAR")
@example("caf\udce9 déjà—vu")
def test_the_native_tokenizer_equals_the_pure_one_on_text(text: str) -> None:
    raw = text.encode("utf-8", "replace")
    same(raw.translate(_tokens.TABLE))
    same(raw.translate(_tokens.LINE_TABLE))


@native
@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
@example(b"\xff\xfe\x80 abc")
@example(b"a.b A.b .A a-B")
def test_the_native_tokenizer_equals_the_pure_one_on_any_bytes(raw: bytes) -> None:
    """Untranslated bytes too (punctuation inside runs, invalid UTF-8): the same classes."""
    same(raw)


@native
@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8), st.integers(1, 3000))
def test_long_texts_of_repeated_runs_count_the_same(pieces: list[str], times: int) -> None:
    """Past the pure path's chunks and the hash table's first sizes (it grows)."""
    raw = (" ".join(pieces) + " ").encode("utf-8", "replace").translate(_tokens.TABLE) * times
    distinct = b" ".join(b"w%d" % i for i in range(times * 3))
    same(raw + distinct)


@native
@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=12), min_size=1, max_size=40), st.integers(1, 400))
def test_keys_alike_in_their_first_eight_bytes_count_apart(tails: list[bytes], times: int) -> None:
    """The hash table compares a key's first 8 bytes as a word and the rest as bytes: keys of one
    head and length that differ past it, of 1 to 7 bytes with NULs, and 8/9-byte edges."""
    keys = [b"abcdefgh" + t for t in tails] + [t.replace(b" ", b"") for t in tails] + [b"abcdefg", b"abcdefgh\x00"]
    raw = b" ".join(k for k in keys if k) * times
    same(raw)
    same(raw.translate(_tokens.TABLE))


@native
def test_a_many_megabyte_text_counts_the_same() -> None:
    words = [b"alpha", b"Beta", b"GAMMA", b"delta_eps", b"\xc3\xa9t\xc3\xa9", b"x" * 70]
    raw = b" ".join(words[i % 6] + b"%d" % (i % 50_000) for i in range(400_000))
    same(raw)


@native
def test_bad_arguments_raise_documented_errors_without_text() -> None:
    from sessionseal._fts import _ctok

    with pytest.raises(TypeError, match="bytes"):
        _ctok.count_translated(bytearray(b"secret words"), lambda run: ((), 0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        _ctok.count_translated(b"secret", None)  # type: ignore[arg-type]
    # A non-ASCII run goes to the rules' function (ASCII ones take rule 4 in C).
    with pytest.raises(TypeError) as bad:
        _ctok.count_translated("Secret_Wörd".encode(), lambda run: [run])  # type: ignore[arg-type, return-value]
    assert "ecret" not in str(bad.value)
    with pytest.raises(ZeroDivisionError):  # an error of the rules' function propagates
        _ctok.count_translated("Secret_Wörd".encode(), lambda run: (1 // 0, 0))  # type: ignore[arg-type, return-value]


@native
def test_the_pure_rules_see_each_distinct_other_run_once() -> None:
    from sessionseal._fts import _ctok

    seen: list[bytes] = []

    def rules(run: bytes) -> tuple[tuple[bytes, ...], int]:
        seen.append(run)
        return (run.lower(),), 0

    counts, length = _ctok.count_translated(b"foo_bar Foo_bar foo_bar FOO Foo plain \xc3\xa9 \xc3\xa9", rules)
    assert seen == [b"\xc3\xa9"]  # identifiers (rule 4 of ASCII), FOO, Foo and plain: in C
    # The plain runs first, then each other run's terms as it first appears: the whole, then
    # its sorted parts (the pure path's order).
    assert list(counts.items()) == [(b"plain", 1), (b"foo_bar", 3), (b"bar", 3), (b"foo", 5), (b"\xc3\xa9", 2)]
    assert length == 8


FIELDS = (_fts.TITLE, _fts.USER, _fts.ASSISTANT, _fts.TOOL)
docs = st.lists(st.tuples(st.sampled_from(FIELDS), texts), max_size=8)


@native
@settings(max_examples=800, deadline=None)
@given(docs)
@example([])
@example([(_fts.USER, "Foo foo FOO"), (_fts.TOOL, "foo_bar Foo"), (_fts.USER, "\u00d7 \u00d7")])
def test_a_natively_packed_session_has_the_pure_postings(fields: list[tuple[int, str]]) -> None:
    """One call for all the fields: the same terms, counts, masks, lengths and size (the terms
    in another order: a segment and a delta record sort them)."""
    doc = _fts.Doc(UUID(int=5), 3, fields)
    fast, pure = _analyze._pack_native(doc), _analyze._pack_pure(doc)
    assert fast.analyzed() == pure.analyzed()
    assert (fast.entry, fast.size, len(fast.tfs), len(fast.masks)) == (
        pure.entry,
        pure.size,
        len(pure.tfs),
        len(pure.masks),
    )
    assert len(set(fast.term_list())) == len(fast.term_list())


@native
def test_pack_fields_refuses_bad_fields_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    def rules(run: bytes) -> tuple[tuple[bytes, ...], int]:
        return (), 0

    for bad in ([(1, b"a")] * 5, [(1, "text")], [(3, b"a")], [(1, b"a"), (1, b"b")], ((1, b"a"),), [(1 << 70, b"a")]):
        with pytest.raises((TypeError, ValueError, OverflowError)) as err:
            _ctok.pack_fields(bad, rules)  # type: ignore[arg-type]
        assert "text" not in str(err.value)
    assert _ctok.pack_fields([], rules) == (b"", b"", b"", ())
    terms, tfs, masks, lengths = _ctok.pack_fields([(8, b"b a"), (2, b"a c")], rules)
    assert (terms.split(b"\n"), tfs, masks, lengths) == (
        [b"b", b"a", b"c"],
        array("I", [1, 2, 1]).tobytes(),
        bytes([8, 10, 2]),
        (2, 2),
    )


@native
@settings(max_examples=300, deadline=None)
@given(st.lists(docs, min_size=1, max_size=6))
def test_a_natively_inverted_segment_has_the_pure_columns(sessions: list[list[tuple[int, str]]]) -> None:
    builder = _fts.SegmentBuilder()
    for i, fields in enumerate(sessions):
        builder.add(_fts.pack(_fts.Doc(UUID(int=i + 1), 1, fields)))
    assert builder._invert_native() == builder._invert_pure()


@native
def test_invert_rows_refuses_bad_rows_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    def u32(*values: int) -> bytes:
        return array("I", values).tobytes()

    good = ([b"b", b"a", b"b"], u32(0, 1, 1), u32(1, 2, 3), bytes([1, 2, 4]))
    assert _ctok.invert_rows(*good) == (b"a\nb", u32(1, 2), u32(1, 0, 1), u32(2, 1, 3), bytes([2, 1, 4]))
    assert _ctok.invert_rows([], b"", b"", b"") == (b"", b"", b"", b"", b"")
    for terms, error in (([b"x" * 65, b"a", b"b"], ValueError), ([b"", b"a", b"b"], ValueError)):
        with pytest.raises(error, match="1 to 64"):
            _ctok.invert_rows(terms, *good[1:])
    with pytest.raises(ValueError, match="1 to 64"):
        _ctok.invert_rows([b"secret\nword", b"a", b"b"], *good[1:])
    with pytest.raises(TypeError, match="list of bytes"):
        _ctok.invert_rows([b"a", "b", b"c"], *good[1:])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="differ"):
        _ctok.invert_rows(good[0], u32(0, 1), *good[2:])
    with pytest.raises(TypeError, match="differ"):
        _ctok.invert_rows(*good[:3], b"\x01")
    with pytest.raises(ValueError, match="ordinal order"):
        _ctok.invert_rows([b"a", b"a"], u32(1, 0), u32(1, 1), b"\x01\x01")


@native
@settings(max_examples=200, deadline=None)
@given(st.lists(docs, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_natively_gathered_terms_are_the_pure_columns(
    sessions: list[list[tuple[int, str]]], rng: random.Random
) -> None:
    """Inverted._payloads' move of the postings into the buckets' order (any order of the terms)."""
    builder = _fts.SegmentBuilder()
    for i, fields in enumerate(sessions):
        builder.add(_fts.pack(_fts.Doc(UUID(int=i + 1), 1, fields)))
    inverted = builder.invert()
    moved = list(range(len(inverted.dfs)))
    rng.shuffle(moved)
    assert inverted._gathered_native(array("I", moved).tobytes()) == inverted._gathered(moved)


@native
def test_gather_terms_refuses_bad_columns_with_documented_errors() -> None:
    from sessionseal._fts import _ctok

    def u32(*values: int) -> bytes:
        return array("I", values).tobytes()

    good = (u32(1, 0), u32(2, 1), u32(1, 2, 5), u32(7, 8, 9), b"\x01\x02\x04")
    assert _ctok.gather_terms(*good) == (u32(1, 2), u32(5, 1, 2), u32(9, 7, 8), b"\x04\x01\x02")
    with pytest.raises(ValueError, match="out of range"):
        _ctok.gather_terms(u32(2, 0), *good[1:])
    with pytest.raises(ValueError, match="add up"):
        _ctok.gather_terms(good[0], u32(2, 2), *good[2:])
    with pytest.raises(ValueError, match="add up"):
        _ctok.gather_terms(good[0], u32(0xFFFFFFFF, 1), *good[2:])
    with pytest.raises(TypeError, match="differ"):
        _ctok.gather_terms(u32(1), *good[1:])
    with pytest.raises(TypeError, match="differ"):
        _ctok.gather_terms(*good[:3], u32(7, 8), good[4])
    with pytest.raises(TypeError, match="bytes"):
        _ctok.gather_terms(*good[:4], bytearray(good[4]))  # type: ignore[arg-type]


BUILD = """
import sys
from uuid import UUID
from sessionseal import _fts
from sessionseal._fts import _tokens
docs = [_fts.Doc(UUID(int=i + 1), 1, [(_fts.TITLE, "Fix the HTTPServer"), (_fts.USER, "why does refresh_token fail? " * (i + 1)),
        (_fts.TOOL, "Traceback: ValueError in src/app.py line %d\\nTraceback: ValueError in src/app.py\\n" % i * 5 + "déjà vu ﬁle Straße ÉTÉ " + "z" * (60 + i))])
        for i in range(40)]
builder = _fts.SegmentBuilder()
for doc in docs:
    builder.add(_fts.pack(doc))
sealed = builder.build(UUID(int=7), UUID(int=9), bytes(32), dek=bytes(32), nonces=(i.to_bytes(12, "big") for i in range(10**6)))
sys.stdout.write(repr(_tokens.NATIVE) + " " + sealed.hex())
"""


def _build(pure: bool) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SESSIONSEAL_PURE_FTS"}
    if pure:
        env["SESSIONSEAL_PURE_FTS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    flag, sealed = out.stdout.split(" ")
    return flag, sealed


@native
def test_a_segment_built_on_either_path_is_the_same_bytes() -> None:
    """Two real processes, one forced to the pure path by SESSIONSEAL_PURE_FTS=1."""
    fast, pure = _build(pure=False), _build(pure=True)
    assert (fast[0], pure[0]) == ("True", "False")
    assert fast[1] == pure[1]


def test_the_pure_path_is_used_when_asked_or_when_not_built() -> None:
    forced = os.environ.get("SESSIONSEAL_PURE_FTS") == "1"
    built = importlib.util.find_spec("sessionseal._fts._ctok") is not None
    assert (built and not forced) == _tokens.NATIVE
    expected = _tokens.count_translated_native if _tokens.NATIVE else _tokens.count_translated_pure
    assert _tokens.count_translated is expected
    assert _fts.count_runs("Hello hello") == ({b"hello": 2}, 2)


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI must test the accelerator, not only the fallback")
def test_ci_builds_the_accelerator() -> None:
    """.ci/run installs a compiler and the Python headers: a CI run that silently fell back to the
    pure path would leave the native code untested."""
    from sessionseal._fts import _ctok

    assert callable(_ctok.count_translated)
    assert importlib.util.find_spec("sessionseal._fts._ctok") is not None
