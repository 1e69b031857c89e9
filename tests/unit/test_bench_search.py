"""benchmarks/bench_search.py builds the corpus it says, and its streaming forms find what it
plants (a smoke test of the harness: a few small sessions, no timing)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sessionseal import Session, Vault

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_search as bs  # the benchmarks directory is not a package
from _transcripts_text import _stdlib_sources


def test_sizes_are_many_small_and_some_large() -> None:
    sizes = bs.session_sizes(200_000_000)
    small = [s for s in sizes if s < 1_000_000]
    large = [s for s in sizes if s >= 1_000_000]
    assert sum(sizes) >= 200_000_000
    assert all(10_000 <= s <= 100_000 for s in small)
    assert all(1_000_000 <= s <= 20_000_000 for s in large)
    assert len(small) > 10 * len(large) > 0


def test_documents_are_sessions_with_the_planted_words(vault: Vault) -> None:
    zipf, sources = bs.Zipf(2_000), _stdlib_sources()
    docs = {i: bs.session_doc(i, 12_000, zipf, sources) for i in (7, 57, 8)}
    for doc in docs.values():
        Session.model_validate(doc)
    ids = {i: vault.save(doc) for i, doc in docs.items()}
    with_rare = {h.id for h in vault.search(bs.RARE)}
    assert with_rare == {str(ids[7])}
    assert {h.id for h in vault.search(bs.PHRASE)} == {str(ids[7]), str(ids[57])}
    found = set(bs.streaming_bool(vault, *bs.QUERIES["OR"][1]))
    assert found == {str(ids[7])}
    assert {sid for sid, _body in bs.documents(vault)} == {str(x) for x in ids.values()}


def test_the_index_it_measures_answers_as_the_vaults_own(vault: Vault, tmp_path: Path) -> None:
    zipf, sources = bs.Zipf(2_000), _stdlib_sources()
    ids = {i: vault.save(bs.session_doc(i, 12_000, zipf, sources)) for i in (7, 57, 8)}
    how, size = bs.with_index(vault, tmp_path)
    assert how.startswith("the vault's own") and size > 0
    own = {n: [h.id for h in vault.search(q, f)] for n, (q, f) in bs.FTS_QUERIES.items()}
    assert own["rare word"] == [str(ids[7])] and set(own["phrase"]) == {str(ids[7]), str(ids[57])}
    # A vault without one (made before the index): rebuilt by reindex, or built by the benchmark.
    shutil.rmtree(vault.path / "fts")
    how, size = bs.with_index(vault, tmp_path)
    assert how.startswith("the vault's own, rebuilt by Vault.reindex") and size > 0
    assert {n: [h.id for h in vault.search(q, f)] for n, (q, f) in bs.FTS_QUERIES.items()} == own
    shutil.rmtree(vault.path / "fts")
    how, size = bs.with_index(vault, tmp_path, own=False)
    assert how.startswith("built by the benchmark") and size > 0
    assert {n: [h.id for h in vault.search(q, f)] for n, (q, f) in bs.FTS_QUERIES.items()} == own
    assert vault.search(bs.RARE).source == "fts"
