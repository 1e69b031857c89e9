#!/usr/bin/env python3
"""The full-text index's core (src/sessionseal/_fts) on bench_search.py's realistic vault.

Builds the index of a vault (``--cache DIR`` reuses bench_search.py's cached vault, or builds
one of ``--gb`` GB) into a temp directory of sealed segments (about ``--segment-mb`` MB of
original text each) and an empty delta log, then measures, in the same process:

* the build: every session read through the store (decrypted on 2 threads, at most 4 sessions
  ahead, as a reindex reads), tokenized, inverted, sealed and written; MB/s of original text;
  and the tokenizer alone over the same text. ``--mode analyzed`` builds from ``analyze``'s
  dicts (the form before the packed build), ``packed`` (the default) from ``pack`` into
  ``SegmentBuilder`` s, ``workers`` with ``segments`` on ``--workers`` processes;
* cold queries (every segment reopened and the delta log re-read per query, as a CLI process
  would; the vault's unlock not counted), medians of ``--repeat`` rounds interleaved with the
  full streaming scan of the same vault, whose ratio each query reports;
* the index's size against the stored (compressed, sealed) sessions;
* one appended turn (about 4 KB of text) as a delta record, ``fsync`` included;
* the peak RSS of the process (and of the largest worker process).

``--build-only`` measures the build alone against ``verify --read-data`` (the issue's target),
``--repeat`` rounds interleaved, medians of wall and of CPU time (``time.process_time``: every
thread of this process, not the worker processes). ``--mode reindex`` measures the vault's own
rebuild, ``Vault.reindex`` (it writes the vault's ``fts/``: give a ``--cache`` of your own), on
the worker processes it chooses or on ``--workers N`` (0: in the process). ``--mode rebuild``
runs the same builder (``_ftsbuild.build_segments``: reading threads that tokenize, a thread
that seals, on ``--workers N`` processes if given) into a temp directory, without the commit,
so it leaves the cached vault as it was.

The index is not wired into the vault yet: this drives the package directly. A phrase is
answered as the AND of its words (the confirming pass over the decrypted text is the caller's,
with the snippets). The list filters (the tag form) are the caller's too, and not measured.

    python benchmarks/bench_fts.py --gb 0.1 --cache /tmp/fts-0.1 [--repeat 5] [--json out.json]
    python benchmarks/bench_fts.py --gb 1 --cache /tmp/fts-1 --build-only --mode workers --workers 2
    python benchmarks/bench_fts.py --gb 0.1 --cache /tmp/fts-0.1 --build-only --mode reindex --repeat 3
    python benchmarks/bench_fts.py --cache /tmp/fts-0.1 --build-only --mode rebuild --repeat 5
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_search as bs
import orjson

from sessionseal import ListQuery, Vault, _fts
from sessionseal._fs import Dir
from sessionseal._fswrite import write_private_file
from sessionseal._vault import _ftsbuild
from sessionseal._vault._fulltext import index_generation

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

    def write(self, docs: list[_fts.Analyzed] | _fts.SegmentBuilder | _fts.Inverted) -> None:
        seg_id, key = uuid.uuid4(), os.urandom(32)
        if isinstance(docs, list):
            data = _fts.build_segment(VAULT_ID, seg_id, key, docs)
        else:
            data = docs.build(VAULT_ID, seg_id, key)
        write_private_file(self.root / f"{seg_id}.seg", data)
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


def read_documents(v: Vault, threads: int = 2, window: int = 4) -> Iterator[tuple[str, bytes]]:
    """(id, stored JSON) of every session, decrypted on *threads* threads with at most *window*
    sessions read ahead: what a reindex reads, in bounded memory (bench_search's ``documents``
    decrypts the whole vault ahead when the consumer is slower)."""
    store = v._store  # a benchmark's look inside: the same read path as the streaming search
    ids = [s.id for s in v.list(ListQuery(limit=None))]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        pending: collections.deque[tuple[str, concurrent.futures.Future[bytes]]] = collections.deque()
        for sid in ids:
            pending.append((str(sid), pool.submit(lambda s: store.document(store.open(s)), sid)))
            if len(pending) >= window:
                got_id, fut = pending.popleft()
                yield got_id, fut.result()
        while pending:
            got_id, fut = pending.popleft()
            yield got_id, fut.result()


class _Source:
    """The vault's sessions as index documents, counting their text."""

    def __init__(self, v: Vault, built: Built) -> None:
        self.v, self.built, self.text = v, built, 0

    def __iter__(self) -> Iterator[_fts.Doc]:
        for sid, body in read_documents(self.v):
            doc, n = doc_of(sid, body)
            self.text += n
            yield doc

    def report(self) -> None:
        print(f"  {self.text / 1e6:.0f} MB indexed, {len(self.built.segments)} segments", file=sys.stderr)


def build(
    v: Vault, root: Path, segment_bytes: int, mode: str = "packed", workers: int = 0
) -> tuple[Built, dict[str, float]]:
    """Index *v* into *root*. *mode*: ``analyzed`` (``analyze`` then ``build_segment``: the dict
    form, as before the packed build), ``packed`` (``pack`` into ``SegmentBuilder`` s in this
    process) or ``workers`` (``segments`` on *workers* processes: tokenizing is not timed apart)."""
    built = Built(root)
    src = _Source(v, built)
    t0 = time.perf_counter()
    tok_s = float("nan")
    if mode == "workers":
        for builder in _fts.segments(src, workers=workers, max_text=segment_bytes):
            built.write(builder)
            src.report()
    elif mode == "analyzed":
        tok_s = _build_analyzed(src, segment_bytes)
    else:
        tok_s = _build_packed(src, segment_bytes)
    return built, {"build_s": time.perf_counter() - t0, "analyze_s": tok_s, "text_bytes": src.text}


def _build_analyzed(src: _Source, segment_bytes: int) -> float:
    tok_s, pending = 0.0, []
    for doc in src:
        t = time.perf_counter()
        pending.append(_fts.analyze(doc))
        tok_s += time.perf_counter() - t
        if src.text >= segment_bytes * (len(src.built.segments) + 1):
            src.built.write(pending)
            pending = []
            src.report()
    if pending:
        src.built.write(pending)
    return tok_s


def _build_packed(src: _Source, segment_bytes: int) -> float:
    tok_s, builder = 0.0, _fts.SegmentBuilder()
    for doc in src:
        t = time.perf_counter()
        packed = _fts.pack(doc)
        tok_s += time.perf_counter() - t
        if len(builder) and builder.size + packed.size > segment_bytes:
            src.built.write(builder)
            builder = _fts.SegmentBuilder()
            src.report()
        builder.add(packed)
    if len(builder):
        src.built.write(builder)
    return tok_s


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


def build_only(a: argparse.Namespace, path: Path, manifest: dict[str, Any]) -> None:
    """The build alone, *a.repeat* times interleaved with ``verify --read-data`` (its target)."""
    mb = float(manifest["original_bytes"]) / 1e6
    figures: dict[str, list[float]] = {"verify --read-data": [], "build": [], "analyze": []}
    cpu: dict[str, list[float]] = {"verify --read-data": [], "build": []}
    segments = 0
    with bs.open_vault(path) as v:
        for _ in range(a.repeat):
            c, t = time.process_time(), time.perf_counter()
            v.verify(read_data=True)
            figures["verify --read-data"].append(time.perf_counter() - t)
            cpu["verify --read-data"].append(time.process_time() - c)
            c = time.process_time()
            if a.mode in ("reindex", "rebuild"):
                figures["build"].append(reindex(v, a.workers) if a.mode == "reindex" else rebuild(v, a.workers))
                figures["analyze"].append(float("nan"))
                cpu["build"].append(time.process_time() - c)
                continue
            root = Path(tempfile.mkdtemp(prefix="bench-fts-"))
            try:
                built, b = build(v, root, int(a.segment_mb * 1e6), a.mode, a.workers or 0)
                segments = len(built.segments)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            cpu["build"].append(time.process_time() - c)
            figures["build"].append(b["build_s"])
            figures["analyze"].append(b["text_bytes"] / 1e6 / b["analyze_s"])
    verify_s, build_s = statistics.median(figures["verify --read-data"]), statistics.median(figures["build"])
    verify_c, build_c = statistics.median(cpu["verify --read-data"]), statistics.median(cpu["build"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker
    print(
        f"{mb:.0f} MB original in {manifest['sessions']} sessions; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (a shared, busy machine: other helpers run); medians of {a.repeat}, interleaved"
    )
    print(f"verify --read-data: {verify_s:.1f} s ({mb / verify_s:.1f} MB/s), {verify_c:.2f} s of CPU")
    how = {
        "workers": f"{a.workers} worker processes",
        "reindex": f"Vault.reindex, workers {'auto' if a.workers is None else a.workers}",
        "rebuild": f"build_segments, workers {a.workers or 0}",
    }
    print(
        f"build ({how.get(a.mode, a.mode)}): {build_s:.1f} s ({mb / build_s:.1f} MB/s, "
        f"{verify_s / build_s:.2f}x verify's speed; tokenizing alone "
        f"{statistics.median(figures['analyze']):.1f} MB/s), {segments} segments; peak RSS {rss:.0f} MB "
        f"(largest worker process: {child_rss:.0f} MB)"
    )
    print(
        f"build CPU: {build_c:.2f} s ({verify_c / build_c:.2f}x verify's CPU; this process's, worker processes not counted)"
    )
    if a.json:
        out = {"manifest": manifest, "mode": a.mode, "workers": a.workers, "verify_s": verify_s, "build_s": build_s}
        out |= {"verify_cpu_s": verify_c, "build_cpu_s": build_c, "cpu_rounds": cpu}
        out |= {"rss_mb": rss, "worker_rss_mb": child_rss, "load": os.getloadavg()[0], "rounds": figures}
        a.json.write_text(json.dumps(out, indent=2))


def rebuild(v: Vault, workers: int | None) -> float:
    """Seconds of the vault's reindex builder (``_ftsbuild.build_segments``) into a temp
    directory: the sessions read, tokenized, inverted, sealed and written, nothing committed."""
    root = Path(tempfile.mkdtemp(prefix="bench-fts-"))
    fts = Dir(root)
    ctx = v.parts.ctx
    try:
        t = time.perf_counter()
        _ftsbuild.build_segments(
            ctx,
            fts,
            sorted(ctx.session_files()),
            v._store.read_file,  # a benchmark's look inside: reindex's own reader
            None,
            generation=index_generation,
            workers=workers or 0,
        )
        return time.perf_counter() - t
    finally:
        fts.close()
        shutil.rmtree(root, ignore_errors=True)


def reindex(v: Vault, workers: int | None) -> float:
    """Seconds of ``v.reindex()`` on *workers* worker processes (None: the vault's choice)."""
    choose = _ftsbuild.workers_for
    if workers is not None:
        _ftsbuild.workers_for = lambda ctx, names: workers
    try:
        t = time.perf_counter()
        v.reindex()
        return time.perf_counter() - t
    finally:
        _ftsbuild.workers_for = choose


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=0.1)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--segment-mb", type=float, default=64)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--mode", choices=("analyzed", "packed", "workers", "reindex", "rebuild"), default="packed")
    ap.add_argument(
        "--workers", type=int, help="worker processes of --mode workers (default 2) or reindex (default: its choice)"
    )
    ap.add_argument("--build-only", action="store_true", help="the build against verify --read-data only")
    a = ap.parse_args()
    if a.workers is None and a.mode == "workers":
        a.workers = 2
    path, manifest, tmp = bs.open_or_build(a.cache, a.gb)
    if a.build_only:
        try:
            build_only(a, path, manifest)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    else:
        everything(a, path, manifest, tmp)


def everything(a: argparse.Namespace, path: Path, manifest: dict[str, Any], tmp: Path | None) -> None:
    """The build, then the queries against the streaming scan, the size, an append."""
    root = Path(tempfile.mkdtemp(prefix="bench-fts-"))
    try:
        with bs.open_vault(path) as v:
            built, b = build(v, root, int(a.segment_mb * 1e6), a.mode, a.workers or 0)
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
