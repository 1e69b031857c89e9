#!/usr/bin/env python3
"""PROTOTYPES (not shipped): measure the candidate full-text index engines on a cached
bench_search vault, each in its own process, queries interleaved with the full streaming scan.

    python benchmarks/proto_index/run.py --cache DIR --engine fts5mem|sqlcipher|tantivy|segments [--repeat 5]

``DIR`` is a ``bench_search.py --cache DIR`` (build it first).  Prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import os
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zstandard
from _corpus import docs
from bench_search import PHRASE, RARE, RARE2, open_vault
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sessionseal import ListQuery, Vault

FORMS = ("rare word", "common word", "phrase", "prefix", "AND", "OR", "NOT", "rare word, tag filter")
FTS_QUERIES = {
    "rare word": RARE,
    "common word": "error",
    "phrase": f'"{PHRASE}"',
    "prefix": "serializ*",
    "AND": "timeout AND violet",
    "OR": f"{RARE} OR {RARE2}",
    "NOT": "violet NOT timeout",
    "rare word, tag filter": RARE,
}
TURN = (
    "I ran the tests again: test_parser_roundtrip fails with KeyError 'offset' in "
    "src/ledger/_codec.py line 212 after the retry; the fixture opens the file twice. "
) * 20  # about 4 KB: one appended turn


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def rows(v: Vault) -> Iterator[tuple[str, str, str, str]]:
    """(session id, tag, role, text) per message: the FTS engines index messages (a row per
    message is what makes an appended turn one insert)."""
    for d in docs(v):
        for role, text in d.fields:
            yield d.sid, d.tag, role, text


# --------------------------------------------------------------------------- (a) and (b): FTS5

SCHEMA = "create virtual table t using fts5(sid unindexed, tag unindexed, role unindexed, body, tokenize=\"unicode61 tokenchars '_'\")"


def fts_query(con: Any, form: str) -> list[Any]:
    where = " and tag = 'small'" if "filter" in form else ""
    sql = f"select sid, min(rank) from t where t match ?{where} group by sid order by 2 limit 20"  # noqa: S608  (fixed text)
    return list(con.execute(sql, (FTS_QUERIES[form],)).fetchall())


def seal_file(path: Path, key: bytes, data: bytes) -> None:
    nonce = os.urandom(12)
    blob = nonce + AESGCM(key).encrypt(nonce, zstandard.ZstdCompressor(level=1).compress(data), b"fts5")
    with path.open("wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())


def open_file(path: Path, key: bytes) -> bytes:
    blob = path.read_bytes()
    return zstandard.ZstdDecompressor().decompress(AESGCM(key).decrypt(blob[:12], blob[12:], b"fts5"))


def engine_fts5mem(v: Vault, work: Path, out: dict[str, Any]) -> dict[str, Callable[[], object]]:
    import sqlite3

    key = os.urandom(32)
    path = work / "fts.sst"
    t = time.perf_counter()
    con = sqlite3.connect(":memory:")
    con.execute(SCHEMA)
    con.executemany("insert into t values (?,?,?,?)", rows(v))
    con.commit()
    raw = con.serialize()
    seal_file(path, key, raw)
    out["build_s"] = time.perf_counter() - t
    out["db_bytes_plain"] = len(raw)
    out["size_bytes"] = path.stat().st_size
    con.close()
    del raw
    gc.collect()

    def load() -> Any:
        c = sqlite3.connect(":memory:")
        c.deserialize(open_file(path, key))
        return c

    t = time.perf_counter()
    load().close()
    out["load_s"] = time.perf_counter() - t

    def append() -> None:
        c = load()
        c.execute("insert into t values (?,?,?,?)", ("s", "small", "user", TURN))
        c.commit()
        seal_file(path, key, c.serialize())
        c.close()

    out["append_s"] = statistics.median(_times(append, 3))
    return {f: functools.partial(lambda form: fts_query(load(), form), f) for f in FORMS}


def engine_sqlcipher(v: Vault, work: Path, out: dict[str, Any]) -> dict[str, Callable[[], object]]:
    sqlcipher3: Any = importlib.import_module("sqlcipher3")  # optional: not a dependency

    keys = [os.urandom(32).hex()]
    path = work / "fts.db"

    def connect() -> Any:
        c = sqlcipher3.connect(str(path))
        c.execute(f"pragma key = \"x'{keys[0]}'\"")
        c.execute("pragma temp_store = memory")
        return c

    t = time.perf_counter()
    con = connect()
    con.execute("pragma journal_mode = wal")
    con.execute(SCHEMA)
    con.executemany("insert into t values (?,?,?,?)", rows(v))
    con.commit()
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()
    out["build_s"] = time.perf_counter() - t
    out["size_bytes"] = dir_size(work)
    out["versions"] = connect().execute("pragma cipher_version").fetchall()
    out["fts5"] = connect().execute("select sqlite_compileoption_used('ENABLE_FTS5')").fetchall()

    def append() -> None:
        c = connect()
        c.execute("insert into t values (?,?,?,?)", ("s", "small", "user", TURN))
        c.commit()
        c.close()

    out["append_s"] = statistics.median(_times(append, 5))
    # Erase: delete a session's rows, then rekey (rewrites every page under a new key).
    t = time.perf_counter()
    c = connect()
    c.execute("delete from t where sid = (select sid from t limit 1)")
    c.commit()
    out["delete_rows_s"] = time.perf_counter() - t
    c.execute("pragma wal_checkpoint(truncate)")
    c.execute("pragma journal_mode = delete")
    new = os.urandom(32).hex()
    t = time.perf_counter()
    c.execute(f"pragma rekey = \"x'{new}'\"")
    c.close()
    out["rekey_s"] = time.perf_counter() - t
    keys[0] = new
    return {f: functools.partial(lambda form: fts_query(connect(), form), f) for f in FORMS}


def engine_tantivy(v: Vault, work: Path, out: dict[str, Any]) -> dict[str, Callable[[], object]]:
    tantivy: Any = importlib.import_module("tantivy")  # optional: not a dependency

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("sid", stored=True, tokenizer_name="raw")
    sb.add_text_field("tag", tokenizer_name="raw")
    sb.add_text_field("body", tokenizer_name="default")
    schema = sb.build()
    t = time.perf_counter()
    index = tantivy.Index(schema, path=str(work))  # a directory: there is no in-memory serialization
    w = index.writer(heap_size=200_000_000, num_threads=1)
    for sid, tag, _role, text in rows(v):
        w.add_document(tantivy.Document(sid=sid, tag=tag, body=text))
    w.commit()
    w.wait_merging_threads()
    out["build_s"] = time.perf_counter() - t
    out["size_bytes"] = dir_size(work)
    qs = {
        "rare word": RARE,
        "common word": "error",
        "phrase": f'"{PHRASE}"',
        "AND": "+timeout +violet",
        "OR": f"{RARE} {RARE2}",
        "NOT": "+violet -timeout",
        "rare word, tag filter": f"+{RARE} +tag:small",
    }

    def query(form: str) -> object:
        ix = tantivy.Index.open(str(work))  # cold, as a CLI query is
        q = (
            tantivy.Query.regex_query(ix.schema, "body", "serializ.*")
            if form == "prefix"
            else ix.parse_query(qs[form], ["body"])
        )
        return ix.searcher().search(q, 20).hits

    def append() -> None:
        ix = tantivy.Index.open(str(work))
        wr = ix.writer(heap_size=50_000_000, num_threads=1)
        wr.add_document(tantivy.Document(sid="s", tag="small", body=TURN))
        wr.commit()
        wr.wait_merging_threads()

    out["append_s"] = statistics.median(_times(append, 5))
    return {f: functools.partial(query, f) for f in FORMS}


# --------------------------------------------------------------------------- (d): own segments


def engine_segments(v: Vault, work: Path, out: dict[str, Any]) -> dict[str, Callable[[], object]]:
    from segments import SegmentIndex, bm25

    ix = SegmentIndex(work)
    t = time.perf_counter()
    ix.build(docs(v))
    out["build_s"] = time.perf_counter() - t
    out["size_bytes"] = ix.size()
    out["segments"] = len(ix.segments())
    store = v._store
    phrase_re = re.compile(r"\W+".join(map(re.escape, PHRASE.split())), re.IGNORECASE)

    def query(form: str) -> object:
        q = SegmentIndex(work, ix.key, ix.seg_keys)  # cold: nothing cached between queries
        keep: Callable[[str], bool] = lambda sid: True  # noqa: E731
        if form == "prefix":
            hits, lengths, _ = q.lookup([], prefix="serializ")
            return bm25(hits, lengths, keep)
        terms = {
            "rare word": [RARE],
            "common word": ["error"],
            "phrase": PHRASE.split(),
            "AND": ["timeout", "violet"],
            "OR": [RARE, RARE2],
            "NOT": ["violet", "timeout"],
            "rare word, tag filter": [RARE],
        }[form]
        hits, lengths, tags = q.lookup(terms)
        if form in ("AND", "phrase"):
            both = set.intersection(*(set(hits[t]) for t in terms))
            keep = both.__contains__
        elif form == "NOT":
            excluded = set(hits["timeout"])
            keep = lambda sid: sid not in excluded  # noqa: E731
            hits = {"violet": hits["violet"]}
        elif "filter" in form:
            keep = lambda sid: tags[sid] == "small"  # noqa: E731
        ranked = bm25(hits, lengths, keep, limit=10_000 if form == "phrase" else 20)
        if form != "phrase":
            return ranked
        confirmed = []  # the phrase checked in the sessions' text, best first, until 20
        for sid, score in ranked:
            body = store.document(store.open(uuid.UUID(sid)))
            if phrase_re.search(body.decode()):
                confirmed.append((sid, score))
                if len(confirmed) == 20:
                    break
        return confirmed

    out["append_s"] = statistics.median(_times(lambda: ix.append("s", TURN), 5))
    first = ix.segments()[0]
    head_docs = ix._head(first, first.open("rb"))["docs"]
    out["erase_one_segment_s"] = ix.rewrite_segment(first, head_docs[0][0])
    out["segment_bytes_median"] = statistics.median(p.stat().st_size for p in ix.segments())
    return {f: functools.partial(query, f) for f in FORMS}


# --------------------------------------------------------------------------- driver


def _times(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


ENGINES = {
    "fts5mem": engine_fts5mem,
    "sqlcipher": engine_sqlcipher,
    "tantivy": engine_tantivy,
    "segments": engine_segments,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--engine", choices=sorted(ENGINES), required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", type=Path, help="where the index goes (default: a temp dir, removed)")
    a = ap.parse_args()
    manifest = json.loads((a.cache / "manifest.json").read_text())
    work = a.work or Path(tempfile.mkdtemp(prefix=f"proto-{a.engine}-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"engine": a.engine, "original_bytes": manifest["original_bytes"]}
    out["stored_bytes"] = manifest["stored_bytes"]
    try:
        with open_vault(a.cache / "vault") as v:
            rss0 = rss_mb()
            fns = ENGINES[a.engine](v, work, out)
            out["peak_rss_mb"] = rss_mb()
            out["rss_before_mb"] = rss0
            fns["full streaming scan"] = lambda: v.search("absent-word-xyz", ListQuery(limit=100_000))
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(a.repeat):
                for k, fn in fns.items():
                    gc.collect()
                    t = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t)
            out["query_s"] = {k: statistics.median(ts) for k, ts in times.items()}
        out["size_vs_stored"] = out["size_bytes"] / out["stored_bytes"]
        out["load"] = os.getloadavg()[0]
        print(json.dumps(out))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
