#!/usr/bin/env python3
"""The full-text index's core (src/sessionseal/_fts) on bench_search.py's realistic vault.

Builds the index of a vault (``--cache DIR`` reuses bench_search.py's cached vault, or builds
one of ``--gb`` GB) into a temp directory of sealed segments (about ``--segment-mb`` MB of
original text each) and an empty delta log, then measures, in the same process:

* the build: every session read through the store (decrypted on 4 threads, as bench_search's
  ``documents`` and the streaming search do), tokenized, inverted, sealed and written; MB/s of
  original text; and the tokenizer alone over the same text;
* cold queries (every segment reopened and the delta log re-read per query, as a CLI process
  would; the vault's unlock not counted), medians of ``--repeat`` rounds interleaved with the
  full streaming scan of the same vault, whose ratio each query reports;
* the index's size against the stored (compressed, sealed) sessions;
* one appended turn (about 4 KB of text) as a delta record, ``fsync`` included;
* the peak RSS of the process.

The index is not wired into the vault yet: this drives the package directly. A phrase is
answered as the AND of its words (the confirming pass over the decrypted text is the caller's,
with the snippets). The list filters (the tag form) are the caller's too, and not measured.

    python benchmarks/bench_fts.py --gb 0.1 --cache /tmp/fts-0.1 [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_search as bs
import orjson

from sessionseal import ListQuery, Vault, _fts
from sessionseal._fswrite import write_private_file

FIELD = {"user": _fts.USER, "assistant": _fts.ASSISTANT, "tool": _fts.TOOL}
QUERIES: dict[str, str] = {
    "rare word": bs.RARE,
    "common word": "error",
    "phrase (AND of its words)": f'"{bs.PHRASE}"',
    "prefix": "serializ*",
    "AND": "timeout AND violet",
    "OR": f"{bs.RARE} OR {bs.RARE2}",
    "NOT": "violet NOT timeout",
}
VAULT_ID = uuid.UUID(int=0)  # the segments' vault binding: any fixed id serves a benchmark


def doc_of(sid: str, body: bytes) -> tuple[_fts.Doc, int]:
    """The stored (sanitized) session as the index's fields, and its text's size in bytes."""
    d = orjson.loads(body)
    fields = [(_fts.TITLE, d.get("title") or "")]
    fields += [(FIELD.get(m.get("role"), _fts.ASSISTANT), bs.text_of(m.get("content"))) for m in d.get("messages", [])]
    return _fts.Doc(uuid.UUID(sid), 1, fields), sum(len(t) for _f, t in fields)


class Built:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.segments: list[tuple[uuid.UUID, bytes]] = []
        self.delta_key = os.urandom(32)
        self.delta = root / "delta.sst"
        write_private_file(self.delta, _fts.new_delta(VAULT_ID, self.delta_key, 1))

    def write(self, docs: list[_fts.Analyzed]) -> None:
        seg_id, key = uuid.uuid4(), os.urandom(32)
        write_private_file(self.root / f"{seg_id}.seg", _fts.build_segment(VAULT_ID, seg_id, key, docs))
        self.segments.append((seg_id, key))

    def open(self) -> _fts.FtsIndex:
        readers = [_fts.SegmentReader(self.root / f"{s}.seg", VAULT_ID, s, k) for s, k in self.segments]
        records = _fts.read_delta(self.delta.read_bytes(), VAULT_ID, self.delta_key, torn_tail_ok=True)
        return _fts.FtsIndex(readers, records)

    def query(self, q: str) -> list[_fts.Hit]:
        index = self.open()
        try:
            return index.search(q, limit=20)
        finally:
            for r in index.segments:
                r.close()

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir())


def build(v: Vault, root: Path, segment_bytes: int) -> tuple[Built, dict[str, float]]:
    built = Built(root)
    t0 = time.perf_counter()
    tok_s = 0.0
    text = 0
    pending: list[_fts.Analyzed] = []
    pending_bytes = 0
    for sid, body in bs.documents(v):
        doc, n = doc_of(sid, body)
        t = time.perf_counter()
        pending.append(_fts.analyze(doc))
        tok_s += time.perf_counter() - t
        pending_bytes += n
        text += n
        if pending_bytes >= segment_bytes:
            built.write(pending)
            pending, pending_bytes = [], 0
            print(f"  {text / 1e6:.0f} MB indexed, {len(built.segments)} segments", file=sys.stderr)
    if pending:
        built.write(pending)
    return built, {"build_s": time.perf_counter() - t0, "analyze_s": tok_s, "text_bytes": text}


def appends(built: Built, sids: list[str], n: int = 20) -> float:
    """Median seconds of one appended turn (~4 KB) as a delta record, fsync included."""
    rng = random.Random(5)
    times = []
    for i in range(n):
        turn = " ".join(
            rng.choice(("retry", "the", "timeout", "parser", "ValueError", "src/app.py")) for _ in range(600)
        )
        t = time.perf_counter()
        a = _fts.analyze(_fts.Doc(uuid.UUID(sids[i % len(sids)]), 1, [(_fts.USER, turn)]))
        _fts.append_delta(built.delta, VAULT_ID, built.delta_key, _fts.DeltaRecord(a.entry, (0, 0, 0), a.terms))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    return bs.interleaved_medians(fns, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=0.1)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--segment-mb", type=float, default=64)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    path, manifest, tmp = bs.open_or_build(a.cache, a.gb)
    root = Path(tempfile.mkdtemp(prefix="bench-fts-"))
    try:
        with bs.open_vault(path) as v:
            built, b = build(v, root, int(a.segment_mb * 1e6))
            sids = [s.id for s in v.list(ListQuery(limit=50))]
            append_s = appends(built, [str(s) for s in sids])
            found = {n: len(built.query(q)) for n, q in QUERIES.items()}
            streaming_rare = len(v.search(bs.RARE, ListQuery(limit=100_000), mode="literal"))
            fns: dict[str, Callable[[], object]] = {n: functools.partial(built.query, q) for n, q in QUERIES.items()}
            fns["full streaming scan"] = lambda: v.search("absent-word-xyz", ListQuery(limit=100_000), mode="literal")
            medians = interleaved(fns, a.repeat)
        mb = manifest["original_bytes"] / 1e6
        scan = medians.pop("full streaming scan")
        size = built.size()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load = os.getloadavg()[0]
        print(
            f"{mb:.0f} MB original in {manifest['sessions']} sessions ({manifest['large']} large), "
            f"{manifest['stored_bytes'] / 1e6:.0f} MB stored; load average {load:.1f} on {os.cpu_count()} "
            f"CPUs (a shared, busy machine); medians of {a.repeat}, cold, interleaved with the scan"
        )
        print(
            f"build: {b['build_s']:.1f} s ({mb / b['build_s']:.1f} MB/s of original text; "
            f"analyze alone {b['text_bytes'] / 1e6 / b['analyze_s']:.1f} MB/s of message text), "
            f"{len(built.segments)} segments"
        )
        print(f"size: {size / 1e6:.1f} MB = {100 * size / manifest['stored_bytes']:.1f} % of the stored sessions")
        print(f"append one turn (~4 KB, fsync): {append_s * 1000:.1f} ms median; peak RSS {rss:.0f} MB")
        print(f"rare word: {found['rare word']} sessions (streaming: {streaming_rare})")
        print(f"{'query':<30}{'median':>10}{'vs scan':>10}{'hits':>6}")
        for name, s in medians.items():
            print(f"{name:<30}{s * 1000:>8.1f} ms{'1/' + str(round(scan / s)):>10}{found[name]:>6}")
        print(f"{'full streaming scan':<30}{scan * 1000:>8.0f} ms")
        if a.json:
            out = {"manifest": manifest, "load": load, "build": b, "size": size, "append_s": append_s}
            out |= {"rss_mb": rss, "scan_s": scan, "medians_s": medians, "found": found}
            a.json.write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
