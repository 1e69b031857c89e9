"""Rule 4 of ASCII runs in the compiled accelerator (docs/spec/fts-v1.md, "Terms"; docs/design.md,
"Build speed"): identifiers (``_``, camel case) give exactly the terms, counts, lengths and term
order of the pure-Python path and of tests/unit/_fts_reference.py, for every identifier-shaped
input; only non-ASCII runs still reach the Python rules."""

from __future__ import annotations

import importlib
from uuid import UUID

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _analyze, _tokens

from . import _fts_reference as ref

native = pytest.mark.skipif(
    importlib.util.find_spec("sessionseal._fts._ctok") is None, reason="the accelerator is not built here"
)

#: The pieces of an identifier at every edge of rule 4: lower, Capitalized, ALLCAPS (a run of
#: capitals before a Capitalized word is cut before its last capital), digits alone and inside,
#: 12 and 13 characters with a digit (a part, then not), 64 and 65 bytes (a part, then dropped),
#: and the punctuation an untranslated run keeps.
SEGMENTS = st.one_of(
    st.sampled_from(
        [
            "a",
            "Z",
            "get",
            "Value",
            "HTTP",
            "HTTPServer",
            "XMLHttpRequest",
            "iOS",
            "aB",
            "ABc",
            "utf8",
            "Utf8Decode",
            "9",
            "01CjV73pci",
            "abcdefghijk1",  # 12 characters with a digit: a part
            "abcdefghijkl1",  # 13: not
            "ABCDEFGHIJK1",
            "x" * 64,
            "y" * 65,
            "Q" * 64,
            "R" * 65,
            "m" * 63 + "N",
            "s" * 64 + "Tu",
            ".",
            "-",
            "$",
        ]
    ),
    st.text(alphabet="abcXYZ019", min_size=1, max_size=14),
)
#: Identifier-shaped runs: segments joined by nothing or by one or more underscores, with
#: leading and trailing underscores.
IDENTS = st.lists(st.tuples(st.sampled_from(["", "", "_", "__"]), SEGMENTS), min_size=1, max_size=6).map(
    lambda pairs: "".join(sep + seg for sep, seg in pairs)
) | st.from_regex(r"_*[A-Za-z0-9]{0,20}(_+[A-Za-z0-9]{0,20}){0,4}_*", fullmatch=True)
#: Texts of identifiers among words, separators and a non-ASCII word (which still takes the
#: Python rules in the same call).
TEXTS = st.lists(
    st.one_of(IDENTS, st.sampled_from([" ", "\n", ". ", "plain", "Word", "ALL", "déjà_Vu"])), max_size=12
).map(" ".join)


def _same_as_pure(raw: bytes) -> None:
    pure, fast = _tokens.count_translated_pure(raw), _tokens.count_translated_native(raw)
    assert fast == pure
    assert list(fast[0]) == list(pure[0])  # the whole, then the sorted parts: the pure order


@native
@settings(max_examples=1000, deadline=None)
@given(IDENTS)
@example("refresh_token")
@example("HTTPServer_ValueError")
@example("toolu_01LmSLb2L8ZpZj")
@example("foo_foo_Foo")
@example("_")
@example("a_" + "b" * 65 + "_cD")
@example("x" * 40 + "_" + "y" * 40)
@example("AbcDef" * 12)
@example("a.B-c$D")
def test_an_identifier_gives_the_pure_terms_in_the_pure_order(ident: str) -> None:
    raw = ident.encode()
    _same_as_pure(raw)
    _same_as_pure(raw.translate(_tokens.TABLE))
    _same_as_pure((ident + " " + ident.upper() + " " + ident.lower() + " " + ident).encode())


@native
@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_texts_of_identifiers_give_the_reference_terms(text: str) -> None:
    counts, length = _tokens.count_translated_native(text.encode("utf-8", "replace").translate(_tokens.TABLE))
    assert ({k.decode(): n for k, n in counts.items()}, length) == ref.count_terms(text)


FIELDS = (_fts.TITLE, _fts.USER, _fts.ASSISTANT, _fts.TOOL)


@native
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), TEXTS), max_size=6))
def test_a_session_of_identifiers_packs_the_reference_postings(fields: list[tuple[int, str]]) -> None:
    doc = _fts.Doc(UUID(int=3), 2, fields)
    fast = _analyze._pack_native(doc)
    entry, terms = ref.analyze(doc)  # type: ignore[no-untyped-call]
    assert fast.entry == entry
    assert fast.analyzed().terms == terms
    assert len(set(fast.term_list())) == len(fast.term_list())


@native
def test_only_non_ascii_runs_reach_the_python_rules() -> None:
    from sessionseal._fts import _ctok

    seen: list[bytes] = []

    def rules(run: bytes) -> tuple[tuple[bytes, ...], int]:
        seen.append(run)
        return _tokens._terms_of_run(run)

    text = b"refresh_token HTTPServer utf8Decode getHTTPResponse toolu_01LmSLb2L8ZpZj d\xc3\xa9j\xc3\xa0_Vu"
    terms, _tfs, _masks, lengths = _ctok.pack_fields([(_fts.TOOL, text)], rules)
    assert seen == ["déjà_Vu".encode()]
    assert lengths == (6,)
    got = set(terms.split(b"\n"))
    assert {b"refresh_token", b"refresh", b"token", b"httpserver", b"http", b"server", b"utf8decode"} <= got
    assert {b"gethttpresponse", b"get", b"response", b"toolu"} <= got and b"01lmslb2l8zpzj" not in got


@native
def test_a_megabyte_identifier_is_cut_without_a_term_too_long() -> None:
    """Parts far past the first sizes of the parts list (it grows), none over 64 bytes."""
    run = "_".join(f"part{i % 5000}Name{'X' * (i % 70)}" for i in range(60_000)).encode()
    _same_as_pure(run)
    terms, _tfs, _masks, lengths = _tokens.pack_fields_native([(_fts.USER, run)])
    assert lengths == (1,)
    assert max(map(len, terms.split(b"\n"))) <= _tokens.MAX_TERM_BYTES


@native
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | TEXTS, st.sampled_from(FIELDS))
@example("a.b-c/d:e\x00f\x1cg\x7fh?i", _fts.USER)
def test_a_field_packs_the_same_with_or_without_rule_1s_table(text: str, field: int) -> None:
    """pack_fields cuts runs at rule 1's separators itself: the table's copy is not needed."""
    raw = text.encode("utf-8", "replace")
    assert _tokens.pack_fields_native([(field, raw)]) == _tokens.pack_fields_native(
        [(field, raw.translate(_tokens.TABLE))]
    )
