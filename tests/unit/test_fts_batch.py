"""A pull's batch of new sessions indexed as segments of its own (docs/spec/fts-v1.md,
"Writers"; docs/sync.md, "Pull"). Until 2026-12 the batch was one delta record per session,
always folded at once into a segment; now the segment is sealed from the sessions' packed
postings. Stated against that path: the same postings in the same segments' cut, the same
stamps, every query answered the same (scores to the bit); in a vault, the same answers as
sessions saved one by one, the delta log untouched, the index current for every session
(a later append indexes its turn alone), a full tier left for a merge, and an index that
cannot be used left alone."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import KeychainProvider, Vault, _container, _fts
from sessionseal._fs import Dir
from sessionseal._fts._format import DeltaRecord
from sessionseal._vault import _ftscompact, _ftsfiles, _fulltext
from sessionseal._vault._ftsbatch import BatchRun, batch_segments
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, Manifest, SegmentInfo, index_generation
from sessionseal._vault._ftstable import fold_stamps
from sessionseal.models import Session
from tests.memkeyring import MemoryKeyring
from tests.unit.test_fts import VAULT, query_st, sid, words_st

message_st = st.tuples(st.sampled_from(["user", "assistant", "tool", "system"]), words_st)
document_st = st.tuples(words_st, st.lists(message_st, max_size=4))
#: A batch: each session's documents, saved one after the other (a later one a new version).
batch_st = st.lists(st.lists(document_st, min_size=1, max_size=2), min_size=1, max_size=7)


def _document(n: int, title: str, messages: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": str(sid(n)),
        "title": title,
        "messages": [{"role": role, "content": text} for role, text in messages],
    }


def _saved(batch: list[list[Any]]) -> list[tuple[uuid.UUID, tuple[int, int], Any, tuple[int, int, int]]]:
    """(id, version, document, stamp) in the order saved: a session's later version after."""
    out = []
    for n, versions in enumerate(batch):
        for g, (title, messages) in enumerate(versions, start=1):
            out.append((sid(n), (g, 0), _document(n, title, messages), (n, 100 * n + g, g)))
    return out


def _opened(tmp: Path, sealed: list[tuple[Any, bytes]]) -> list[_fts.SegmentReader]:
    readers = []
    for info, data in sealed:
        path = tmp / info.name
        path.write_bytes(data)
        readers.append(_fts.SegmentReader(path, VAULT, info.id, info.key))
    return readers


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_st, st.integers(1, 40), st.lists(query_st, min_size=1, max_size=4))
def test_a_batch_s_segments_are_its_records_folded(
    tmp_path: Path, batch: list[list[Any]], max_words: int, queries: list[str]
) -> None:
    saved = _saved(batch)
    sealed, stamps = batch_segments(VAULT, saved, max_words=max_words)
    # The path before: a record of each whole document, then the fold of the log (compaction).
    records = []
    for s, version, doc, stamp in saved:
        a = _fts.analyze(_fts.Doc(s, index_generation(*version), _fts.doc_fields(doc)))
        records.append(DeltaRecord(a.entry, stamp, a.terms))
    current = fold_stamps({}, records)
    folded = _fts.merge_columns([], records, floor=current, max_words=max_words)
    assert stamps == current
    assert [info.sessions for info, _ in sealed] == [[e.session_id for e in b.entries] for b in folded]
    for info, _ in sealed:
        assert len(info.sessions) == 1 or info.words <= max_words  # a session is never split
    built = [(info, b.build(VAULT, info.id, info.key)) for (info, _), b in zip(sealed, folded, strict=True)]
    before = _opened(tmp_path, built)
    tmp_now = tmp_path / "now"
    tmp_now.mkdir(exist_ok=True)
    now = _opened(tmp_now, sealed)
    try:
        old, new = _fts.FtsIndex(before), _fts.FtsIndex(now)
        assert new.docs == old.docs
        assert {a.entry.session_id: a for a in _fts.merge(now, [])} == {
            a.entry.session_id: a for a in _fts.merge(before, [])
        }
        for text in queries:
            assert new.search(text) == old.search(text)  # the hits, their order, their scores
    finally:
        for r in [*before, *now]:
            r.close()


def test_a_run_never_merges_a_session_it_holds_twice() -> None:
    """A session of the run saved again in a later batch: that batch is written alone (a
    segment holds each session once; its newer generation wins at query time)."""
    run = BatchRun()
    made: list[SegmentInfo] = []
    for k, n in enumerate([0, 1, 0]):  # session 0 again in the third batch, which fills the tier
        doc = _document(n, f"title {k}", [("user", "alpha")])
        alone, merged, _stamps = run.seal(VAULT, [(sid(n), (k + 1, 0), doc, (0, 0, 0))], max_words=100, fanout=3)
        assert merged is None
        gone, sealed, _current = run.pick(made, {}, alone, merged, _stamps)
        assert (gone, sealed) == ([], alone)
        made += [info for info, _ in sealed]
        run.written([info for info, _ in sealed], max_words=100)
    # Without the repeat, the third batch is the run's three as one.
    run = BatchRun()
    made = []
    for k in range(3):
        alone, merged, _stamps = run.seal(
            VAULT, [(sid(k), (1, 0), _document(k, "t", []), (0, 0, 0))], max_words=100, fanout=3
        )
        gone, sealed, _current = run.pick(made, {}, alone, merged, _stamps)
        made = [info for info in made if info not in gone] + [info for info, _ in sealed]
        run.written([info for info, _ in sealed], max_words=100)
    assert [info.sessions for info in made] == [[sid(0), sid(1), sid(2)]]


def _sessions(n: int, word: str, first: int = 0) -> list[Session]:
    return [
        Session.model_validate(
            {
                "id": str(uuid.UUID(int=0xBA7C0000 + first + i)),
                "title": f"{word} title {i}",
                "messages": [
                    {"role": "user", "content": f"{word} question {i} alpha"},
                    {"role": "assistant", "content": f"an answer {i % 3} beta {word}"},
                ],
            }
        )
        for i in range(n)
    ]


def _vault(path: Path) -> Vault:
    return Vault.init(path, key_provider=KeychainProvider(backend=MemoryKeyring()))


def _batch(v: Vault, sessions: list[Session]) -> None:
    store = v.parts.store
    store.add_keys([s.id for s in sessions])
    with store.batch([s.id for s in sessions]):
        for s in sessions:
            store.save(s, touch=False)


def _hits(v: Vault, text: str) -> list[_fts.Hit]:
    with v.parts.fulltext.view() as view:
        assert view is not None
        return view.index.search(text)


def _fts_findings(v: Vault) -> list[tuple[str, str]]:
    r = v.verify(read_data=True)
    return sorted((p.code, p.path) for p in [*r.errors, *r.warnings] if p.code.startswith("fts"))


def test_a_batch_answers_as_the_same_sessions_saved_one_by_one(tmp_path: Path) -> None:
    sessions = _sessions(12, "batchword")
    with _vault(tmp_path / "a") as a, _vault(tmp_path / "b") as b:
        a.save(_sessions(1, "before", 100)[0])  # a delta record there already: left as it is
        b.save(_sessions(1, "before", 100)[0])
        log = _log_bytes(a)
        _batch(a, sessions)
        for s in sessions:
            b.save(s)
        assert _log_bytes(a) == log  # no record, no fold: the log as it was
        for text in ("batchword", "alpha AND beta", "title:batchword", "answer -question", "bet*", "before"):
            assert _hits(a, text) == _hits(b, text)  # the hits, their order, their scores
        hits = a.search("batchword")
        assert (len(hits), hits.source, hits.stale) == (12, "fts", 0)  # every session current
        a.append(sessions[3].id, [{"role": "assistant", "content": "laterturn"}])
        assert a.search("laterturn").stale == 0
        assert _generation(a, sessions[3].id) == 1  # the turn alone: the index held it as saved
        assert _fts_findings(a) == []


def _segments(v: Vault) -> list[list[uuid.UUID]]:
    """The sessions of each segment the manifest names."""
    with v.parts.fulltext.view() as view:
        assert view is not None
    d = Dir(v.path / FTS_DIR)
    try:
        return [s.sessions for s in Manifest.load(d, v.vault_id, v.parts.keys.fresh_master()).segments]
    finally:
        d.close()


def test_a_run_of_batches_is_merged_from_memory_when_it_would_fill_a_tier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch that would make the run's segments TIER_FANOUT is written with them as one
    segment, which replaces them: the tier merge's result, no segment read back, none due."""
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 3)
    runs = [_sessions(4, f"run{k}", 10 * k) for k in range(4)]
    with _vault(tmp_path / "a") as a, _vault(tmp_path / "b") as b:
        due: list[bool] = []
        monkeypatch.setattr(a.parts.fulltext, "tier_due", lambda: due.append(True))
        read: list[Any] = []

        def opened(*args: Any, **kw: Any) -> Any:
            read.append(args)
            return _ftsfiles.open_segment(*args, **kw)

        monkeypatch.setattr(_ftscompact, "open_segment", opened)  # what a merge reads back
        _batch(a, runs[0])
        _batch(a, runs[1])
        assert _segments(a) == [[s.id for s in runs[0]], [s.id for s in runs[1]]]
        files = {p.name for p in (a.path / FTS_DIR).glob("*.seg")}
        _batch(a, runs[2])
        assert _segments(a) == [[s.id for s in runs[0] + runs[1] + runs[2]]]  # one, in their place
        assert not files & {p.name for p in (a.path / FTS_DIR).glob("*.seg")}  # the two replaced are gone
        _batch(a, runs[3])  # the run starts again
        assert _segments(a)[1:] == [[s.id for s in runs[3]]]
        assert (due, read) == ([], [])
        for s in [x for run in runs for x in run]:
            b.save(s)
        for text in ("run0", "run2 OR run3", "alpha AND beta", "title:run1", "answer -question", "bet*"):
            assert _hits(a, text) == _hits(b, text)  # the hits, their order, their scores
        assert a.search("question").stale == 0
        assert _fts_findings(a) == []


def test_a_run_whose_segment_was_replaced_meanwhile_goes_on_from_the_batch_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept segment another writer replaced (here a merge of the tier: a rotation, an
    erasure or a reindex alike) is never merged again: its sessions would count twice."""
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 3)
    runs = [_sessions(4, f"run{k}", 10 * k) for k in range(5)]
    provider = KeychainProvider(backend=MemoryKeyring())
    with Vault.init(tmp_path / "a", key_provider=provider) as a, _vault(tmp_path / "b") as b:
        _batch(a, runs[0])
        with Vault.open(a.path, key_provider=provider, auto_cleanup=False) as other:
            _batch(other, runs[1])  # another process's batch: not this run's
            _batch(other, runs[2])  # a full tier of three, merged by that process
            assert other.parts.fulltext.merge_tier()
        _batch(a, runs[3])  # the run's kept segment is gone: this batch alone
        assert sorted(map(len, _segments(a))) == [4, 12]
        _batch(a, runs[4])
        assert sorted(map(len, _segments(a))) == [4, 4, 12]  # the run is batch 3 and 4, not yet 3 segments
        for s in [x for run in runs for x in run]:
            b.save(s)
        for text in ("run0", "run3 OR run1", "alpha AND beta", "title:run4", "answer -question"):
            assert _hits(a, text) == _hits(b, text)  # no session counted twice
        assert _fts_findings(a) == []


def test_a_batch_that_fills_a_tier_with_segments_not_its_run_s_leaves_it_to_a_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 2)
    provider = KeychainProvider(backend=MemoryKeyring())
    with Vault.init(tmp_path / "v", key_provider=provider) as v:
        due: list[bool] = []
        monkeypatch.setattr(v.parts.fulltext, "tier_due", lambda: due.append(True))
        with Vault.open(v.path, key_provider=provider, auto_cleanup=False) as other:
            _batch(other, _sessions(3, "first"))
        _batch(v, _sessions(3, "second", 3))
        assert due == [True]  # never merged inside the writer's call
        assert v.parts.fulltext.tier_full()


def test_a_batch_leaves_an_index_it_cannot_use_alone(tmp_path: Path) -> None:
    with _vault(tmp_path / "v") as v:
        v.save(_sessions(1, "before", 100)[0])
        manifest = v.path / FTS_DIR / MANIFEST
        manifest.write_bytes(b"\0" * manifest.stat().st_size)  # damaged
        names = sorted(p.name for p in (v.path / FTS_DIR).iterdir())
        sessions = _sessions(4, "batchword")
        _batch(v, sessions)
        assert sorted(p.name for p in (v.path / FTS_DIR).iterdir()) == names  # nothing written there
        assert {s.id for s in v.list()} >= {s.id for s in sessions}  # the saves stand
        hits = v.search("batchword")
        assert {h.id for h in hits} == {str(s.id) for s in sessions}  # streamed


def _log_bytes(v: Vault) -> bytes:
    return b"".join(sorted(p.read_bytes() for p in (v.path / FTS_DIR).glob("*.delta")))


def _generation(v: Vault, s: uuid.UUID) -> int:
    raw = (v.path / "sessions" / (v.parts.keys.file_name(s) + ".sst")).read_bytes()
    return _container.parse_unverified_header(raw).generation
