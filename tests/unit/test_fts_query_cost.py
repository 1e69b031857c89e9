"""What a query pays for, and what it may skip (issue 23's query speed; docs/api.md "Search").

A query reuses what the view of the index opened before, but only what is provably the same
(a segment's head, under the same header, key and size); it stats every session file, so a
session changed since the index recorded it is always found from its text; and a page's
snippets decrypt at most a budget of session text, smallest sessions first, saying what was
left without one. None of this depends on the machine's speed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import KeychainProvider, Vault, _fts
from sessionseal._fts import HeadCache, SegmentReader
from sessionseal._fts._tokens import is_wordlike
from sessionseal._vault import _search
from sessionseal._vault._listing import stamps_of
from sessionseal._vault._search import SNIPPET_TEXT
from sessionseal.errors import IntegrityError

VAULT = uuid.UUID(int=7)


def _segment(path: Path, sid: uuid.UUID, key: bytes, words: str) -> None:
    doc = _fts.analyze(_fts.Doc(uuid.UUID(int=1), 1, [(_fts.USER, words)]))
    path.write_bytes(_fts.build_segment(VAULT, sid, key, [doc]))


def _hits(reader: SegmentReader, term: str) -> list[int]:
    return [ordinal for ordinal, _p in reader.postings(term)]


# -- a segment's head, kept between views ------------------------------------------------------


def test_a_kept_head_is_used_only_for_the_same_sealed_file(tmp_path: Path) -> None:
    seg, sid, key = tmp_path / "a.seg", uuid.uuid4(), os.urandom(32)
    _segment(seg, sid, key, "walrus narwhal")
    heads = HeadCache()
    with SegmentReader(seg, VAULT, sid, key, heads=heads) as first:
        assert _hits(first, "walrus") == [0] and len(heads) == 1
    with SegmentReader(seg, VAULT, sid, key, heads=heads) as again:
        assert again.head is first.head and _hits(again, "narwhal") == [0]  # not decoded again
    # The same id and key sealed anew (another data key, another header): read from the file.
    _segment(seg, sid, key, "heron")
    with SegmentReader(seg, VAULT, sid, key, heads=heads) as other:
        assert other.head is not first.head and _hits(other, "heron") == [0] and _hits(other, "walrus") == []
    # Another key for the same id never takes the kept head (nor opens the file).
    with pytest.raises(IntegrityError):
        SegmentReader(seg, VAULT, sid, os.urandom(32), heads=heads)


def test_a_file_changed_under_a_kept_head_still_fails_its_frames(tmp_path: Path) -> None:
    seg, sid, key = tmp_path / "a.seg", uuid.uuid4(), os.urandom(32)
    _segment(seg, sid, key, "walrus narwhal")
    heads = HeadCache()
    with SegmentReader(seg, VAULT, sid, key, heads=heads) as r:
        kept = r.head
        at = r._base + r.head.buckets[0][0] + 40  # within the first term bucket
    data = bytearray(seg.read_bytes())
    data[at] ^= 1  # same header, same size: the head is taken from the cache, the bucket is not
    seg.write_bytes(bytes(data))
    with SegmentReader(seg, VAULT, sid, key, heads=heads) as r:
        assert r.head is kept
        with pytest.raises(IntegrityError):
            r.verify()  # every frame authenticated: the flipped byte's fails


def test_only_the_segments_still_named_are_kept(tmp_path: Path) -> None:
    heads = HeadCache()
    ids = [uuid.uuid4() for _ in range(3)]
    for n, sid in enumerate(ids):
        key = os.urandom(32)
        _segment(tmp_path / f"{n}.seg", sid, key, "ibis")
        SegmentReader(tmp_path / f"{n}.seg", VAULT, sid, key, heads=heads).close()
    heads.retain(ids[1:])
    assert len(heads) == 2
    heads.retain([])
    assert len(heads) == 0


def test_a_vault_query_after_a_compaction_uses_the_new_segments(vault: Vault) -> None:
    a = vault.save({"title": "t", "messages": [{"role": "user", "content": "kestrel"}]})
    assert [h.id for h in vault.search("kestrel", snippets=False)] == [str(a)]
    vault.reindex()  # new segments under new keys; the old ones are retired
    b = vault.save({"title": "u", "messages": [{"role": "user", "content": "kestrel osprey"}]})
    assert {h.id for h in vault.search("kestrel", snippets=False)} == {str(a), str(b)}
    vault.delete(a)
    assert [h.id for h in vault.search("kestrel", snippets=False)] == [str(b)]


# -- the listing's stat: every file, at C speed, a vanished one skipped -------------------------


def test_stamps_of_every_file_and_none_for_one_gone(tmp_path: Path) -> None:
    for n in ("a", "b", "c"):
        (tmp_path / n).write_bytes(n.encode() * 3)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = stamps_of(fd, ["a", "gone", "c"])
        assert got[1] is None and got[0] is not None and got[2] is not None
        st = os.stat(tmp_path / "c")
        assert got[2] == (st.st_ino, st.st_size, st.st_mtime_ns)
        assert stamps_of(fd, ["a", "b"]) == [
            (s.st_ino, s.st_size, s.st_mtime_ns) for s in map(os.stat, (tmp_path / "a", tmp_path / "b"))
        ]
    finally:
        os.close(fd)


def test_a_session_changed_after_the_index_is_searched_from_its_text(vault: Vault, provider: KeychainProvider) -> None:
    a = vault.save({"title": "t", "messages": [{"role": "user", "content": "walrus"}]})
    assert vault.search("walrus", snippets=False).stale == 0
    os.environ["SESSIONSEAL_BENCH_NO_FTS"] = "1"
    try:
        with Vault.open(vault.path, key_provider=provider) as other:  # its index writes are off
            other.append(a, [{"role": "assistant", "content": "narwhal"}])
    finally:
        del os.environ["SESSIONSEAL_BENCH_NO_FTS"]
    for _ in range(2):  # the second query reuses the first one's view: still stale
        hits = vault.search("narwhal", snippets=False)
        assert [h.id for h in hits] == [str(a)] and hits.stale == 1


# -- snippets within a budget ----------------------------------------------------------------------


def test_a_page_s_snippets_are_cut_from_the_smallest_sessions_within_the_budget(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SNIPPET_TEXT >= 1_000_000  # a page of ordinary sessions always gets its snippets
    small = [vault.save({"title": f"s{i}", "messages": [{"role": "user", "content": "puffin"}]}) for i in range(3)]
    big = vault.save(
        {"title": "big", "messages": [{"role": "tool", "content": f"puffin gannet {'x' * 60} {n}"} for n in range(300)]}
    )
    sizes = {s.id: s.size_original for s in vault.list()}
    monkeypatch.setattr(_search, "SNIPPET_TEXT", sum(sizes[s] for s in small) + 10)  # the small ones fit
    hits = vault.search("puffin")
    by_id = {h.id: h for h in hits}
    assert set(by_id) == {str(s) for s in [*small, big]}
    assert all(by_id[str(s)].snippet and "puffin" in by_id[str(s)].snippet for s in small)
    assert by_id[str(big)].snippet == "" and by_id[str(big)].offset is None and by_id[str(big)].score > 0
    assert len(hits.warnings) == 1 and hits.warnings[0].startswith("1 hit(s) shown without a snippet")
    assert [r for r in vault.audit_records() if r["action"] == "search"][-1]["detail"]["scanned"] == 3
    # A phrase is confirmed in the text whatever its size: its snippet comes with it.
    [hit] = vault.search('"puffin gannet"')
    assert hit.id == str(big) and "puffin" in hit.snippet
    # Within the budget, nothing is left out and nothing is said.
    monkeypatch.setattr(_search, "SNIPPET_TEXT", sum(sizes.values()))
    hits = vault.search("puffin")
    assert all(h.snippet for h in hits) and not hits.warnings


# -- a page's documents, parsed once ---------------------------------------------------------------

_PIECES = st.text('ab puffinGANNET\u00e9\u00df\u212a\u017f\n"\\', max_size=40)
_BLOCK = st.one_of(
    _PIECES,
    st.lists(st.builds(lambda t: {"type": "text", "text": t}, _PIECES), min_size=1, max_size=3),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.lists(st.tuples(st.sampled_from(["user", "assistant"]), _BLOCK), max_size=3),  # saved
            st.lists(
                st.lists(st.tuples(st.sampled_from(["user", "assistant"]), _BLOCK), min_size=1, max_size=3), max_size=3
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_page_reads_an_appended_session_s_document_as_its_bytes_parse(
    vault: Vault, sessions: list[tuple[list[tuple[str, object]], list[list[tuple[str, object]]]]]
) -> None:
    # Appending to a session stores groups that a read applies to the saved document; the page's
    # confirmation takes that document as the read made it, not the bytes made from it parsed
    # again. The same document, so the same hits, places and snippets as the bytes parsed.
    store = vault._store
    for saved, groups in sessions:
        sid = vault.save({"title": "puffin", "messages": [{"role": r, "content": c} for r, c in saved]})
        for group in groups:
            vault.append(sid, [{"role": r, "content": c} for r, c in group])
    plain = _search.Search(lambda sid: (store.document(store.open(sid)), None), vault._listing._search._fulltext)
    for s in vault.list():
        log = store.open(s.id)
        body, doc = store.document_parsed(log)
        assert body == store.document(log)
        assert (doc is None) == (not log.events) and (doc is None or doc == orjson.loads(body))
    for q in ("puf*", "gannet", "puffin OR ss", "assistant:gan*"):
        mine = vault._listing._search
        try:
            vault._listing._search = plain
            want = vault.search(q)
        finally:
            vault._listing._search = mine
        got = vault.search(q)
        assert [(h.id, h.score, h.field, h.snippet, h.offset) for h in got] == [
            (h.id, h.score, h.field, h.snippet, h.offset) for h in want
        ]


# -- a prefix's terms: the sorted run of its prefix bucket --------------------------------------

_LETTERS = "abcdeéßøжλ中\U0001d49c"  # the last: outside the BMP


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(_LETTERS, min_size=3, max_size=8), min_size=1, max_size=60),
    st.text(_LETTERS, min_size=3, max_size=4),
)
def test_a_prefix_expands_to_every_term_that_starts_with_it(tmp_path: Path, words: list[str], prefix: str) -> None:
    seg, sid, key = tmp_path / "p.seg", uuid.uuid4(), os.urandom(32)
    docs = [
        _fts.analyze(_fts.Doc(uuid.UUID(int=n + 1), 1, [(_fts.USER, " ".join(words[n::3]))]))
        for n in range(min(3, len(words)))
    ]
    seg.write_bytes(_fts.build_segment(VAULT, sid, key, docs))
    with SegmentReader(seg, VAULT, sid, key) as r:
        df: dict[str, int] = {}
        for a in r.read_all():
            for t in a.terms:
                df[t] = df.get(t, 0) + 1
        stem = _fts.words(prefix)[0][:3] if _fts.words(prefix) else prefix
        want = sorted((t, n) for t, n in df.items() if t.startswith(stem) and is_wordlike(t))
        assert sorted(r.expand(stem)) == want
