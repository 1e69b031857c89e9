"""A session's postings spread over several segments and the delta log (docs/spec/fts-v1.md,
"Generations", "Compaction"): a compaction folds the log into segments of its own and pulls no
segment for the sessions it names, so a session's pieces at its current generation may sit in
several segments. They add up at query time exactly as a segment and delta records do: every
query form answers what a rebuild answers, scores to the bit (BM25's N and average length count
a session once); a tier merge sums them; an erasure removes every piece; ``verify`` finds it sound.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import ListQuery, Vault, _fts, errors
from sessionseal._fts._format import DeltaRecord
from sessionseal._vault import _fulltext
from sessionseal._vault._ftscompact import fold as fold_segments
from sessionseal._vault._ftscompact import full_tier
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, SegmentInfo
from tests._infra import ftscrash
from tests.unit.test_fts import VAULT, history, query_st, session_st, sid
from tests.unit.test_fts_lifecycle import manifest_of

# -- the core: pieces in any segment or the log --------------------------------------------------

#: Where each write of a session goes: one of three segments, or the delta log (3).
PLACES = 4


def spread(
    tmp: Path,
    sessions: list[Any],
    places: list[int],
) -> tuple[list[_fts.SegmentReader], list[DeltaRecord], dict[uuid.UUID, _fts.Analyzed]]:
    """Each session's writes (a first version, then appends and replacements, as
    test_fts.scenario) placed in the segment or the log *places* says, in turn."""
    buckets: list[list[DeltaRecord]] = [[] for _ in range(PLACES)]
    truth: dict[uuid.UUID, _fts.Analyzed] = {}
    k = 0
    for n, (first, writes, _cut) in enumerate(sessions):
        truth[sid(n)], writes_made = history(n, first, writes)
        for g, pieces in writes_made:
            a = _fts.analyze(_fts.Doc(sid(n), g, pieces))
            buckets[places[k % len(places)]].append(DeltaRecord(a.entry, (0, 0, 0), a.terms))
            k += 1
    readers = []
    for records in buckets[:-1]:
        seg_id, key = uuid.uuid4(), os.urandom(32)
        path = tmp / f"{seg_id.hex}.seg"
        path.write_bytes(_fts.build_segment(VAULT, seg_id, key, _fts.merge([], records)))
        readers.append(_fts.SegmentReader(path, VAULT, seg_id, key))
    return readers, buckets[-1], truth


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(session_st, min_size=1, max_size=6),
    st.lists(st.integers(0, PLACES - 1), min_size=1, max_size=12),
    st.lists(query_st, min_size=1, max_size=4),
)
def test_pieces_spread_over_segments_answer_as_a_rebuild(
    tmp_path: Path,
    sessions: list[Any],
    places: list[int],
    queries: list[str],
) -> None:
    segments, delta, truth = spread(tmp_path, sessions, places)
    index = _fts.FtsIndex(segments, delta)
    rebuilt_path = tmp_path / f"r{uuid.uuid4().hex}.seg"
    seg_id, key = uuid.uuid4(), os.urandom(32)
    rebuilt_path.write_bytes(_fts.build_segment(VAULT, seg_id, key, list(truth.values())))
    with _fts.SegmentReader(rebuilt_path, VAULT, seg_id, key) as r:
        rebuilt = _fts.FtsIndex([r])
        assert len(index) == len(rebuilt) == len(truth)
        assert index.docs == rebuilt.docs == {s: a.entry for s, a in truth.items()}
        for text in queries:
            assert index.search(text) == rebuilt.search(text)  # the hits, their order, their scores
    # A tier merge of the pieces (and the log) sums them: the rebuild's postings.
    merged = {a.entry.session_id: a for a in _fts.merge(segments, delta)}
    assert merged == truth
    for s in segments:
        s.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(session_st, min_size=1, max_size=6),
    st.lists(st.integers(0, PLACES - 1), min_size=1, max_size=12),
    st.tuples(st.sets(st.integers(0, 5)), st.dictionaries(st.integers(0, 5), st.integers(1, 4)), st.integers(1, 40)),
)
def test_a_merge_by_columns_equals_the_merge(
    tmp_path: Path, sessions: list[Any], places: list[int], cut: tuple[set[int], dict[int, int], int]
) -> None:
    """What compaction and erasure write (``merge_columns``: a session's pieces summed at C
    speed) is ``merge``'s answer, less the sessions dropped or below their floor, cut into
    segments of at most *max_words* (a session never split)."""
    dropped, floors, max_words = cut
    segments, delta, _truth = spread(tmp_path, sessions, places)
    drop = frozenset(sid(n) for n in dropped)
    floor = {sid(n): (g, 0, 0, 0) for n, g in floors.items()}
    expected = {
        a.entry.session_id: a
        for a in _fts.merge(segments, delta, drop)
        if a.entry.generation >= floor.get(a.entry.session_id, (0,))[0]
    }
    builders = _fts.merge_columns(segments, delta, drop=drop, floor=floor, max_words=max_words)
    got: dict[uuid.UUID, _fts.Analyzed] = {}
    for b in builders:
        assert len(b.entries) == 1 or sum(sum(e.lengths) for e in b.entries) <= max_words
        seg_id, key = uuid.uuid4(), os.urandom(32)
        path = tmp_path / f"{seg_id.hex}.seg"
        path.write_bytes(b.build(VAULT, seg_id, key))
        with _fts.SegmentReader(path, VAULT, seg_id, key) as r:
            for a in r.read_all():
                assert a.entry.session_id not in got
                got[a.entry.session_id] = a
    assert got == expected
    for s in segments:
        s.close()


# -- the vault: appends and compactions against a reindex -----------------------------------------


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compaction at every third record; no tier merge (the pieces stay spread)."""
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 3)
    monkeypatch.setattr(_fulltext, "COMPACT_BYTES", 1 << 30)
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 1 << 20)


def _fts_problems(vault: Vault) -> set[str]:
    return {p.code for p in vault.verify(read_data=True).problems if p.code.startswith("fts-")}


WORDS = ["alpha", "alpine", "beta", "betamax", "gamma", "walrus", "value_error", "delta"]
QUERIES = [
    "alpha",
    "walrus",
    "title:gamma",
    "user:beta",
    "assistant:alpha",
    "tool:walrus",
    "alp*",
    "bet*",
    "user:bet*",
    '"alpha beta"',
    "alpha beta",
    "alpha OR walrus",
    "(gamma OR delta) -beta",
    "NOT alpha",
    "value_error",
    "error",
]


def _answers(vault: Vault) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for q in QUERIES:
        hits = vault.search(q, ListQuery(limit=1000))
        assert hits.source == "fts"
        out[q] = [(h.id, h.score) for h in hits]
    return out


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_appends_and_compactions_answer_every_query_as_a_reindex(vault: Vault, small: None, seed: int) -> None:
    rng = random.Random(seed)
    ids = [vault.save({"title": _text(rng), "messages": [{"role": "user", "content": _text(rng)}]}) for _ in range(4)]
    for _ in range(30):
        sid_ = rng.choice(ids)
        roll = rng.random()
        if roll < 0.1:
            vault.rename(sid_, _text(rng))  # a new text revision: replaces the older pieces
        elif roll < 0.15:
            ids.append(vault.save({"title": _text(rng), "messages": [{"role": "user", "content": _text(rng)}]}))
        else:
            role = rng.choice(["user", "assistant", "tool"])
            vault.append(sid_, [{"role": role, "content": _text(rng)}])
    man = manifest_of(vault)
    assert len(man.segments) >= 3  # compacted, and the pieces spread
    held = [s for s in ids if sum(s in seg.sessions for seg in man.segments) >= 2]
    assert held  # some session has pieces in two segments or more
    before = _answers(vault)
    assert not _fts_problems(vault)
    vault.reindex()
    assert len(manifest_of(vault).segments) == 1
    assert _answers(vault) == before


def test_a_compaction_pulls_no_segment_for_the_sessions_it_folds(vault: Vault, small: None) -> None:
    ids = [vault.save({"title": "t", "messages": [{"role": "user", "content": f"w{i}"}]}) for i in range(4)]
    vault.reindex()
    first = {s.name for s in manifest_of(vault).segments}
    for i, sid_ in enumerate(ids * 2):
        vault.append(sid_, [{"role": "assistant", "content": f"more{i} walrus"}])
    man = manifest_of(vault)
    names = {s.name for s in man.segments}
    assert first < names and len(names) == 1 + 8 // 3  # the reindexed one, and one per fold
    on_disk = {p.name for p in (vault.parts.ctx.path / FTS_DIR).iterdir()}
    assert on_disk == man.names() | {MANIFEST}
    hits = vault.search("walrus", ListQuery(limit=10))
    assert {h.id for h in hits} == {str(s) for s in ids}


def test_erasing_a_session_spread_over_segments_removes_every_piece(
    vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = vault.save({"title": "secret plan", "messages": [{"role": "user", "content": "kumquatzebra"}]})
    kept = vault.save({"title": "t", "messages": [{"role": "user", "content": "kept"}]})
    for i in range(7):
        vault.append(gone if i % 2 == 0 else kept, [{"role": "user", "content": f"kumquatzebra{i}"}])
    man = manifest_of(vault)
    assert sum(gone in s.sessions for s in man.segments) >= 2
    assert not _fts_problems(vault)

    vault.delete(gone)

    sessions, terms, _stamps = ftscrash.readable_now(vault)
    assert gone not in sessions and kept in sessions
    assert not {"secret", "kumquatzebra", "kumquatzebra0", "kumquatzebra2", "kumquatzebra4", "kumquatzebra6"} & terms
    assert not _fts_problems(vault)
    assert {h.id for h in vault.search("kumquatzebra*", ListQuery(limit=10))} == {str(kept)}


def _merging(vault: Vault, monkeypatch: pytest.MonkeyPatch, during: Any) -> list[Any]:
    """A tier of three segments merges; *during* runs while the merge builds its segment (the
    fold of segments, not of the log's records), and what it returns is collected."""
    monkeypatch.setattr(_fulltext, "TIER_FANOUT", 3)
    vault.maintenance.mode = "inline"  # the merge done when the call that made it due returns
    seen: list[Any] = []

    def fold(fts: Any, vid: Any, pulled: Any, records: Any, current: Any, **kw: Any) -> Any:
        out = fold_segments(fts, vid, pulled, records, current, **kw)
        if pulled and not seen:
            seen.append(during())
        return out

    monkeypatch.setattr(_fulltext, "fold", fold)
    return seen


def test_a_tier_merge_builds_outside_the_vault_lock(vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tier-1 merge takes seconds of CPU: another writer (another thread waits for the lock as
    # another process does) must not wait for it, only for its two short holds.
    def probe() -> str:
        got: list[str] = []

        def take() -> None:
            try:
                with vault.parts.ctx.vault_lock(timeout=0):
                    got.append("free")
            except errors.LockTimeout:
                got.append("held")

        t = threading.Thread(target=take)
        t.start()
        t.join()
        return got[0]

    seen = _merging(vault, monkeypatch, probe)
    ids = [vault.save({"title": "t", "messages": [{"role": "user", "content": f"w{i} walrus"}]}) for i in range(3)]
    for i in range(9):
        vault.append(ids[i % 3], [{"role": "assistant", "content": f"more{i} walrus"}])
    assert seen == ["free"]
    assert not _fts_problems(vault)
    before = _answers(vault)
    vault.reindex()
    assert _answers(vault) == before


def test_a_tier_merge_whose_segments_were_replaced_meanwhile_commits_nothing_and_leaves_nothing(
    vault: Vault, small: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer replaces the segments while the merge builds (here a reindex; a rotation
    # that erases a session from one, or another process's merge, alike): the merge writes
    # nothing, and the index stays the other writer's.
    seen = _merging(vault, monkeypatch, vault.reindex)
    ids = [vault.save({"title": "t", "messages": [{"role": "user", "content": f"w{i} walrus"}]}) for i in range(3)]
    for i in range(9):
        vault.append(ids[i % 3], [{"role": "assistant", "content": f"more{i} walrus"}])
    assert seen
    man = manifest_of(vault)
    on_disk = {p.name for p in (vault.parts.ctx.path / FTS_DIR).iterdir()}
    assert on_disk == man.names() | {MANIFEST}
    assert not _fts_problems(vault)
    before = _answers(vault)
    vault.reindex()
    assert _answers(vault) == before


def test_a_tier_merge_takes_the_smallest_segments_that_the_cap_holds_and_at_least_two() -> None:
    def segs(*words: int) -> list[SegmentInfo]:
        return [SegmentInfo(uuid.uuid4(), bytes(32), [], w, 0) for w in words]

    policy = {"base": 4, "fanout": 8, "cap": 100}
    small = segs(5, 6, 7, 5, 6, 7, 5, 6)  # a full tier of small ones: all merge
    assert full_tier(small, **policy) == {s.id for s in small}
    assert full_tier(small[:7], **policy) == set()  # not full yet
    big = segs(47, 40, 46, 41, 45, 42, 44, 43)  # just under half the cap: two make one
    assert full_tier(big, **policy) == {big[1].id, big[3].id}
    assert full_tier([*big, *segs(60, 90)], **policy) == {big[1].id, big[3].id}  # over half: never again
