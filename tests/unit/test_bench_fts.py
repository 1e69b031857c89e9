"""benchmarks/bench_fts.py drives the index's core over a vault as it says (a smoke test of the
harness on a few small sessions, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

from sessionseal import Vault

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_fts as bf  # the benchmarks directory is not a package
import bench_search as bs
from _transcripts_text import _stdlib_sources


def test_the_harness_indexes_a_vault_in_segments_and_finds_the_planted_words(vault: Vault, tmp_path: Path) -> None:
    zipf, sources = bs.Zipf(2_000), _stdlib_sources()
    ids = {i: str(vault.save(bs.session_doc(i, 12_000, zipf, sources))) for i in (7, 57, 8)}
    built, figures = bf.build(vault, tmp_path, segment_bytes=10_000)
    assert len(built.segments) == 3 and figures["text_bytes"] > 30_000
    assert {str(h.session_id) for h in built.query(bs.RARE)} == {ids[7]}
    assert {str(h.session_id) for h in built.query(bf.QUERIES["phrase (AND of its words)"])} >= {ids[7], ids[57]}
    assert bf.appends(built, [ids[8]], n=2) > 0
    assert {str(h.session_id) for h in built.query("parser AND retry")} == {ids[8]}
