"""The full-text index's core (docs/spec/fts-v1.md): terms, queries, tamper, delete, merge.

The property tests compare the index with a brute-force evaluation of the same parsed query over
each session's tokenized text: for random small corpora split between a segment and a delta log,
the result sets are equal.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import _fts
from sessionseal._fts import _query
from sessionseal._fts._format import DeltaRecord, Posting
from sessionseal._fts._tokens import is_wordlike
from sessionseal.errors import IntegrityError, InvalidInput

VAULT = UUID("11111111-2222-3333-4444-555555555555")
FIELDS = (_fts.TITLE, _fts.USER, _fts.ASSISTANT, _fts.TOOL)


def sid(n: int) -> UUID:
    return UUID(int=n + 1)


def write_segment(tmp: Path, docs: Sequence[_fts.Analyzed], name: str = "s") -> _fts.SegmentReader:
    seg_id, key = UUID(int=0xF00 + len(name)), os.urandom(32)
    path = tmp / f"{name}.seg"
    path.write_bytes(_fts.build_segment(VAULT, seg_id, key, docs))
    return _fts.SegmentReader(path, VAULT, seg_id, key)


# -- terms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", {"hello", "world"}),
        ("refresh_token", {"refresh_token", "refresh", "token"}),
        ("__init__", {"__init__", "init"}),
        ("ValueError", {"valueerror", "value", "error"}),
        ("HTTPServer", {"httpserver", "http", "server"}),
        ("getElementById", {"getelementbyid", "get", "element", "by", "id"}),
        ("utf8Decode 01CjV73pciRh", {"utf8decode", "01cjv73pcirh"}),
        ("toolu_01LmSLb2L8ZpZj msg_0a1B", {"toolu_01lmslb2l8zpzj", "toolu", "msg_0a1b", "msg", "0a1b"}),
        ("/usr/lib/python3.12/json/decoder.py", {"usr", "lib", "python3", "12", "json", "decoder", "py"}),
        ("Straße ﬁle", {"strasse", "file"}),
        ("\uff21\uff22\uff23 déjà", {"abc", "déjà"}),
        ("a" * 65 + " ok", {"ok"}),
    ],
)
def test_terms_follow_the_spec_rules(text: str, expected: set[str]) -> None:
    counts, _length = _fts.count_terms(text)
    assert set(counts) == expected


def test_a_part_counts_as_often_as_its_word_and_length_counts_words() -> None:
    counts, length = _fts.count_terms("ValueError valueerror value")
    assert counts == {"valueerror": 2, "value": 2, "error": 1}
    assert length == 3


def reference_terms(text: str) -> tuple[Counter[str], int]:
    """docs/spec/fts-v1.md's rules 1 to 5, written plainly (the tokenizer takes shortcuts)."""
    words: list[str] = []
    for run in re.split(r"[\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]+", text):
        if run:
            words += [run] if run.isascii() else re.findall(r"\w+", unicodedata.normalize("NFKC", run))
    counts: Counter[str] = Counter()
    for word in words:
        whole = word.casefold()
        parts: set[str] = set()
        for piece in [p for p in word.split("_") if p]:
            if not any(c.isdigit() for c in piece):
                parts |= {piece.casefold()}
                parts |= {p.casefold() for p in re.split(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", piece)}
            elif len(piece) <= 12:
                parts.add(piece.casefold())
        parts.discard(whole)
        for term in {whole} | parts:
            if len(term.encode()) <= 64:
                counts[term] += 1
    return counts, len(words)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aBcXyZ09_ .-/:é ßﬁＡ—中\u0301\n"), max_size=80))
def test_the_tokenizer_follows_the_rules_as_written(text: str) -> None:
    counts, length = _fts.count_terms(text)
    assert (Counter(counts), length) == reference_terms(text)


# -- queries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "AND", "(foo", "foo)", "ab*", "NOT", "title:", "***", "foo OR"])
def test_a_malformed_query_is_invalid_input_without_its_text(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _fts.parse(bad)
    assert (bad not in str(info.value)) or bad in ("", "AND", "NOT")


def test_phrases_are_and_of_their_words_and_reported_for_confirmation(tmp_path: Path) -> None:
    q = _fts.parse('"hello world" title:"x y"')
    assert q.phrases == (("hello", "world"), ("x", "y"))


# -- brute force ---------------------------------------------------------------------------------


def brute(query: _fts.Query, docs: dict[UUID, _fts.Analyzed]) -> set[UUID]:
    def has(terms: dict[str, Posting], leaf: _query.Term) -> bool:
        if leaf.prefix:
            return any(t.startswith(leaf.text) and is_wordlike(t) and p.mask & leaf.fields for t, p in terms.items())
        p = terms.get(leaf.text)
        return p is not None and bool(p.mask & leaf.fields)

    def ev(node: _query.Node, terms: dict[str, Posting]) -> bool:
        if node.term is not None:
            return has(terms, node.term)
        if node.op == "not":
            return not ev(node.children[0], terms)
        results = [ev(c, terms) for c in node.children]
        return all(results) if node.op == "and" else any(results)

    return {s for s, a in docs.items() if ev(query.root, a.terms)}


VOCAB = ["alpha", "alpine", "alps", "beta", "Betamax", "gamma", "ValueError", "value", "snake_case", "déjà", "x1", "42"]
words_st = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=6).map(" ".join)
piece_st = st.tuples(st.sampled_from(FIELDS), words_st)
write_st = st.tuples(st.sampled_from(["append", "replace"]), st.lists(piece_st, min_size=1, max_size=3))
session_st = st.tuples(st.lists(piece_st, min_size=1, max_size=4), st.lists(write_st, max_size=3), st.integers(0, 3))


def leaf_st() -> st.SearchStrategy[str]:
    field = st.sampled_from(["", "title:", "user:", "assistant:", "tool:"])
    word = st.sampled_from([*VOCAB, "alp*", "bet*", "val*", "sna*", "absent"])
    return st.builds(lambda f, w: f + w, field, word)


query_st = st.recursive(
    leaf_st(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a, b: f"({a} {b})", inner, inner),
        st.builds(lambda a: f"NOT {a}", inner),
        st.builds(lambda a: f"-{a}" if not a.startswith("-") else a, inner),
    ),
    max_leaves=5,
)


Fields = list[tuple[int, str]]


def history(n: int, first: Fields, writes: list[tuple[str, Fields]]) -> tuple[_fts.Analyzed, list[tuple[int, Fields]]]:
    """Session *n*'s writes (a first version, then appends and replacements): what it holds
    at the end, and each write's (generation, fields)."""
    gen, fields = 1, list(first)
    out = [(gen, first)]
    for kind, pieces in writes:
        if kind == "replace":
            gen, fields = gen + 1, list(pieces)
        else:
            fields += pieces
        out.append((gen, pieces))
    return _fts.analyze(_fts.Doc(sid(n), gen, fields)), out


def scenario(
    tmp: Path, sessions: list[tuple[Fields, list[tuple[str, Fields]], int]]
) -> tuple[_fts.FtsIndex, dict[UUID, _fts.Analyzed], list[_fts.Analyzed], list[DeltaRecord]]:
    """Each session: a first version, later writes; writes before its cut go to the segment."""
    seg_records: list[DeltaRecord] = []
    delta: list[DeltaRecord] = []
    truth: dict[UUID, _fts.Analyzed] = {}
    for n, (first, writes, cut) in enumerate(sessions):
        truth[sid(n)], writes_made = history(n, first, writes)
        for i, (g, pieces) in enumerate(writes_made):
            a = _fts.analyze(_fts.Doc(sid(n), g, pieces))
            (seg_records if i < max(1, cut) else delta).append(DeltaRecord(a.entry, (0, 0, 0), a.terms))
    seg_docs = _fts.merge([], seg_records)
    reader = write_segment(tmp, seg_docs, f"seg{len(os.listdir(tmp))}")
    return _fts.FtsIndex([reader], delta), truth, seg_docs, delta


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(session_st, min_size=1, max_size=6), st.lists(query_st, min_size=1, max_size=4))
def test_the_index_answers_what_brute_force_answers(tmp_path: Path, sessions: list, queries: list[str]) -> None:  # type: ignore[type-arg]
    index, truth, _seg, _delta = scenario(tmp_path, sessions)
    for text in queries:
        q = _fts.parse(text)
        hits = index.search(q)
        assert {h.session_id for h in hits} == brute(q, truth)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(session_st, min_size=1, max_size=6), st.lists(query_st, min_size=1, max_size=3))
def test_merging_the_delta_equals_a_rebuild(tmp_path: Path, sessions: list, queries: list[str]) -> None:  # type: ignore[type-arg]
    index, truth, _seg_docs, delta = scenario(tmp_path, sessions)
    merged = write_segment(tmp_path, _fts.merge(index.segments, delta), f"m{len(os.listdir(tmp_path))}")
    rebuilt = write_segment(tmp_path, list(truth.values()), f"r{len(os.listdir(tmp_path))}")
    as_read = {a.entry.session_id: a for a in merged.read_all()}
    assert as_read == {a.entry.session_id: a for a in rebuilt.read_all()}
    assert as_read == truth
    for text in queries:
        assert _fts.FtsIndex([merged]).search(text) == _fts.FtsIndex([rebuilt]).search(text) == index.search(text)


def test_a_session_deleted_leaves_no_posting_and_the_old_key_opens_nothing(tmp_path: Path) -> None:
    docs = [_fts.analyze(_fts.Doc(sid(i), 1, [(_fts.USER, f"common word{i} zebra{i % 2}")])) for i in range(6)]
    old = write_segment(tmp_path, docs, "old")
    assert {h.session_id for h in _fts.FtsIndex([old]).search("zebra1")} == {sid(1), sid(3), sid(5)}
    seg_id, key = UUID(int=77), os.urandom(32)
    (tmp_path / "new.seg").write_bytes(
        _fts.build_segment(VAULT, seg_id, key, _fts.merge([old], [], frozenset({sid(3)})))
    )
    new = _fts.SegmentReader(tmp_path / "new.seg", VAULT, seg_id, key)
    assert sid(3) not in {a.entry.session_id for a in new.read_all()}
    assert {h.session_id for h in _fts.FtsIndex([new]).search("zebra1 OR word3 OR common")} == {
        sid(i) for i in (0, 1, 2, 4, 5)
    }
    with pytest.raises(IntegrityError):
        _fts.SegmentReader(tmp_path / "new.seg", VAULT, seg_id, os.urandom(32))


def test_a_delta_log_rewritten_without_a_session_holds_none_of_its_records(tmp_path: Path) -> None:
    path, key, recs = delta_log(tmp_path)
    new_key = os.urandom(32)
    new = _fts.rewrite_delta(path.read_bytes(), VAULT, key, new_key=new_key, generation=2, drop=frozenset({sid(1)}))
    assert _fts.read_delta(new, VAULT, new_key) == [recs[0], recs[2]]
    with pytest.raises(IntegrityError):
        _fts.read_delta(new, VAULT, key)


def test_a_newer_generation_replaces_and_an_append_adds(tmp_path: Path) -> None:
    v1 = _fts.analyze(_fts.Doc(sid(0), 1, [(_fts.USER, "old words")]))
    seg = write_segment(tmp_path, [v1])
    app = _fts.analyze(_fts.Doc(sid(0), 1, [(_fts.ASSISTANT, "appended")]))
    v2 = _fts.analyze(_fts.Doc(sid(0), 2, [(_fts.USER, "new words")]))
    index = _fts.FtsIndex([seg], [DeltaRecord(app.entry, (0, 0, 0), app.terms)])
    assert [h.fields for h in index.search("appended OR old")] == [_fts.USER | _fts.ASSISTANT]
    index = _fts.FtsIndex([seg], [DeltaRecord(a.entry, (0, 0, 0), a.terms) for a in (app, v2)])
    assert index.search("old OR appended") == []
    assert [h.session_id for h in index.search("new")] == [sid(0)]


def test_prefix_expansion_is_capped_most_frequent_first(tmp_path: Path) -> None:
    text = " ".join(f"pre{i:03d} " * (1 + (i % 3)) for i in range(_fts.MAX_EXPANSION + 10))
    seg = write_segment(tmp_path, [_fts.analyze(_fts.Doc(sid(0), 1, [(_fts.USER, text)]))])
    assert len(seg.expand("pre")) == _fts.MAX_EXPANSION + 10
    assert len(_fts.FtsIndex([seg])._expand("pre")) == _fts.MAX_EXPANSION


# -- tamper --------------------------------------------------------------------------------------


def small_segment(tmp_path: Path) -> tuple[bytes, UUID, bytes, list[_fts.Analyzed]]:
    docs = [_fts.analyze(_fts.Doc(sid(i), 1, [(_fts.TITLE, f"t{i}"), (_fts.USER, "alpha beta" * i)])) for i in range(3)]
    seg_id, key = UUID(int=5), bytes(range(32))
    return _fts.build_segment(VAULT, seg_id, key, docs, compress=False), seg_id, key, docs


def query_then_verify(path: Path, seg_id: UUID, key: bytes, expected: dict[str, list[_fts.Hit]]) -> None:
    """Queries read only some buckets: each answers right or raises; then every frame is checked."""
    with _fts.SegmentReader(path, VAULT, seg_id, key) as seg:
        for q, hits in expected.items():
            assert _fts.FtsIndex([seg]).search(q) == hits
        seg.verify()


def test_every_flipped_byte_of_a_segment_is_an_integrity_error_never_a_wrong_answer(tmp_path: Path) -> None:
    data, seg_id, key, _docs = small_segment(tmp_path)
    path = tmp_path / "t.seg"
    path.write_bytes(data)
    with _fts.SegmentReader(path, VAULT, seg_id, key) as good:
        expected = {q: _fts.FtsIndex([good]).search(q) for q in ("alpha", "t1 OR t2", "alp*", "NOT beta")}
    for i in range(len(data)):
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
        with pytest.raises(IntegrityError):
            query_then_verify(path, seg_id, key, expected)
    for cut in (data[:-1], data + b"\0", data[:200]):
        path.write_bytes(cut)
        with pytest.raises(IntegrityError):
            query_then_verify(path, seg_id, key, {})


def test_a_segment_opened_as_another_segment_or_vault_fails(tmp_path: Path) -> None:
    data, seg_id, key, _docs = small_segment(tmp_path)
    path = tmp_path / "t.seg"
    path.write_bytes(data)
    for vault, seg in ((VAULT, UUID(int=6)), (UUID(int=9), seg_id)):
        with pytest.raises(IntegrityError):
            _fts.SegmentReader(path, vault, seg, key)


def delta_log(tmp_path: Path) -> tuple[Path, bytes, list[DeltaRecord]]:
    key = bytes(range(32, 64))
    path = tmp_path / "delta.sst"
    path.write_bytes(_fts.new_delta(VAULT, key, 1))
    recs = []
    for i in range(3):
        a = _fts.analyze(_fts.Doc(sid(i), 1, [(_fts.USER, f"turn {i} words")]))
        recs.append(DeltaRecord(a.entry, (i, 10 * i, 100 * i), a.terms))
        _fts.append_delta(path, VAULT, key, recs[-1], compress=False)
    return path, key, recs


def test_every_flipped_byte_of_a_delta_log_is_an_integrity_error(tmp_path: Path) -> None:
    path, key, recs = delta_log(tmp_path)
    data = path.read_bytes()
    assert _fts.read_delta(data, VAULT, key) == recs
    for i in range(len(data)):
        bad = data[:i] + bytes([data[i] ^ 0x80]) + data[i + 1 :]
        with pytest.raises(IntegrityError):
            _fts.read_delta(bad, VAULT, key)
        # A query's reader forgives a frame that reads as torn (a damaged length field reads so):
        # it returns the records before it, never a changed one; their sessions are then behind
        # their files' stamps, which the caller checks (docs/spec/fts-v1.md, "Delta log").
        try:
            got = _fts.read_delta(bad, VAULT, key, torn_tail_ok=True)
        except IntegrityError:
            continue
        assert got == recs[: len(got)] and len(got) < len(recs)


def test_a_torn_last_delta_record_is_ignored_by_queries_and_cut_by_the_next_append(tmp_path: Path) -> None:
    path, key, recs = delta_log(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(IntegrityError):
        _fts.read_delta(path.read_bytes(), VAULT, key)
    assert _fts.read_delta(path.read_bytes(), VAULT, key, torn_tail_ok=True) == recs[:2]
    _fts.append_delta(path, VAULT, key, recs[2])
    assert _fts.read_delta(path.read_bytes(), VAULT, key) == recs
