"""PROTOTYPE (not shipped): candidate (d), our own sealed segment format, in plain Python.

Postings are per session (doc), not per position: ``term -> [(doc, tf)]``.  A segment covers a
run of sessions (about ``SEGMENT_BYTES`` of original text) and holds:

* a sealed header: the segment's docs (session id, length in words, tag), its bucket table
  (offset, length of each sealed bucket), and its prefix buckets' table;
* term buckets: the terms whose ``HMAC(index key, term) mod n`` is the bucket, with their
  postings; orjson + zstd, then AES-256-GCM with associated data naming the segment and bucket;
* prefix buckets: the word-like terms (letters and ``_``) grouped by ``HMAC(key, first 3 chars)``
  so a prefix query opens one small bucket per segment;
* a delta log beside the segments: sealed records of appended postings, merged on compaction.

A phrase is answered as the AND of its words, then checked in the candidate sessions' text
(decrypted), best first, until ``limit`` are confirmed: positions would double the index.

What a real implementation would do better: a packed varint/bitpacked postings encoding
instead of orjson lists; the header and buckets read with one pread each (here: whole reads);
segment headers cached per process; the build on two threads.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math
import os
import re
import struct
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import zstandard
from _corpus import Doc, words, words_fast
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEGMENT_BYTES = 64_000_000
PREFIX = 3
#: About this many terms per bucket: a query decodes whole buckets, so small ones (a few KB) are cheap.
TERMS_PER_BUCKET = int(os.environ.get("PROTO_TERMS_PER_BUCKET", "250"))
WORDLIKE = re.compile(r"[a-z_]{3,32}")
K1, B = 1.2, 0.75


def _seal(key: bytes, ad: bytes, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, ad)


def _open(key: bytes, ad: bytes, blob: bytes) -> bytes:
    return AESGCM(key).decrypt(blob[:12], blob[12:], ad)


@dataclass
class _Builder:
    docs: list[tuple[str, int, str]] = field(default_factory=list)
    postings: dict[bytes, list[int]] = field(default_factory=lambda: defaultdict(list))
    nbytes: int = 0

    def add(self, doc: Doc) -> None:
        d = len(self.docs)
        counts: Counter[bytes] = Counter()
        for _role, text in doc.fields:
            counts.update(words_fast(text))
            self.nbytes += len(text)
        self.docs.append((doc.sid, sum(counts.values()), doc.tag))
        for term, tf in counts.items():
            p = self.postings[term]
            p.append(d)
            p.append(tf)


class SegmentIndex:
    """A directory of sealed segments and a sealed delta log, under one index key (prototype:
    one key; the design gives each segment its own key in the key table)."""

    def __init__(self, root: Path, key: bytes | None = None, seg_keys: dict[int, bytes] | None = None) -> None:
        self.root = root
        self.key = key or os.urandom(32)
        self.seg_keys = seg_keys if seg_keys is not None else {}  # segments resealed under their own key
        self.mac_key = hashlib.sha256(b"terms" + self.key).digest()  # prototype; design: HKDF
        self._zd = zstandard.ZstdDecompressor()

    # -- hashing -------------------------------------------------------------
    def _slot(self, text: str, n: int) -> int:
        return int.from_bytes(hmac.digest(self.mac_key, text.encode(), "sha256")[:8], "big") % n

    # -- build ---------------------------------------------------------------
    def build(self, docs: Iterable[Doc]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        b = _Builder()
        seg = 0
        for doc in docs:
            b.add(doc)
            if b.nbytes >= SEGMENT_BYTES:
                self._write_segment(seg, b)
                seg, b = seg + 1, _Builder()
        if b.docs:
            self._write_segment(seg, b)

    def _write_segment(self, seg: int, b: _Builder) -> None:
        zc = zstandard.ZstdCompressor(level=3)
        nb = 1 << max(4, math.ceil(math.log2(max(1, len(b.postings)) / TERMS_PER_BUCKET)))
        buckets: list[list[Any]] = [[] for _ in range(nb)]
        for raw, p in b.postings.items():
            if len(raw) > 64:
                continue  # base64 blobs and the like: no one searches for them
            term = raw.decode(errors="replace")
            docs, tfs = p[0::2], p[1::2]
            deltas = [docs[0]] + [y - x for x, y in itertools.pairwise(docs)]
            buckets[self._slot(term, nb)].append([term, deltas, tfs])
        npb = max(16, nb // 8)
        prefixes: list[list[str]] = [[] for _ in range(npb)]
        for raw in b.postings:
            term = raw.decode(errors="replace")
            if WORDLIKE.fullmatch(term):
                prefixes[self._slot(term[:PREFIX], npb)].append(term)
        tmp = self.root / f"seg{seg:05d}.tmp"
        table: list[list[int]] = []
        ptable: list[list[int]] = []
        with tmp.open("wb") as f:
            f.write(b"\0" * 8)  # the header's offset, written last
            for i, bucket in enumerate(buckets):
                blob = _seal(self._key(seg), b"seg%d/b%d" % (seg, i), zc.compress(orjson.dumps(bucket)))
                table.append([f.tell(), len(blob)])
                f.write(blob)
            for i, terms in enumerate(prefixes):
                blob = _seal(self._key(seg), b"seg%d/p%d" % (seg, i), zc.compress(orjson.dumps(sorted(terms))))
                ptable.append([f.tell(), len(blob)])
                f.write(blob)
            head = orjson.dumps({"docs": b.docs, "buckets": table, "prefixes": ptable})
            at = f.tell()
            f.write(_seal(self._key(seg), b"seg%d/head" % seg, zc.compress(head)))
            f.seek(0)
            f.write(struct.pack(">Q", at))
            f.flush()
            os.fsync(f.fileno())
        tmp.rename(self.root / f"seg{seg:05d}.idx")

    # -- read ----------------------------------------------------------------
    def segments(self) -> list[Path]:
        return sorted(self.root.glob("seg*.idx"))

    def _head(self, path: Path, f: Any) -> dict[str, Any]:
        seg = int(path.stem[3:])
        (at,) = struct.unpack(">Q", f.read(8))
        f.seek(at)
        head: dict[str, Any] = orjson.loads(self._zd.decompress(_open(self._key(seg), b"seg%d/head" % seg, f.read())))
        return head

    def _blob(self, f: Any, seg: int, kind: bytes, i: int, where: list[int]) -> Any:
        f.seek(where[0])
        return orjson.loads(
            self._zd.decompress(_open(self._key(seg), b"seg%d/%s%d" % (seg, kind, i), f.read(where[1])))
        )

    def _key(self, seg: int) -> bytes:
        return self.seg_keys.get(seg, self.key)

    def lookup(
        self, terms: list[str], prefix: str | None = None
    ) -> tuple[dict[str, dict[str, int]], dict[str, int], dict[str, str]]:
        """For each term (and each term with *prefix*): {session id: tf}; with the doc lengths and tags."""
        out: dict[str, dict[str, int]] = {t: {} for t in terms}
        lengths: dict[str, int] = {}
        tags: dict[str, str] = {}
        for path in self.segments():
            seg = int(path.stem[3:])
            with path.open("rb") as f:
                head = self._head(path, f)
                docs = head["docs"]
                for sid, n, tag in docs:
                    lengths[sid] = lengths.get(sid, 0) + n
                    tags[sid] = tag
                want = list(terms)
                if prefix is not None:
                    npb = len(head["prefixes"])
                    i = self._slot(prefix[:PREFIX], npb)
                    want += [t for t in self._blob(f, seg, b"p", i, head["prefixes"][i]) if t.startswith(prefix)]
                nb = len(head["buckets"])
                by_bucket: dict[int, list[str]] = defaultdict(list)
                for t in want:
                    by_bucket[self._slot(t, nb)].append(t)
                for i, ts in by_bucket.items():
                    bucket = {row[0]: row for row in self._blob(f, seg, b"b", i, head["buckets"][i])}
                    for t in ts:
                        row = bucket.get(t)
                        if row is None:
                            continue
                        d = 0
                        p = out.setdefault(t, {})
                        for delta, tf in zip(row[1], row[2], strict=True):
                            d += delta
                            sid = docs[d][0]
                            p[sid] = p.get(sid, 0) + tf
        for t, p in self._delta().items():
            if t in out or (prefix is not None and t.startswith(prefix)):
                q = out.setdefault(t, {})
                for sid, tf in p.items():
                    q[sid] = q.get(sid, 0) + tf
        return out, lengths, tags

    # -- delta log -------------------------------------------------------------
    def append(self, sid: str, text: str) -> int:
        """Seal the postings of one appended turn as a delta record; return its size."""
        counts = Counter(words(text))
        rec = orjson.dumps({"sid": sid, "n": sum(counts.values()), "p": counts})
        blob = _seal(self.key, b"delta", rec)
        with (self.root / "delta.log").open("ab") as f:
            f.write(struct.pack(">I", len(blob)) + blob)
            f.flush()
            os.fsync(f.fileno())
        return len(blob) + 4

    def _delta(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(dict)
        try:
            raw = (self.root / "delta.log").read_bytes()
        except FileNotFoundError:
            return out
        at = 0
        while at < len(raw):
            (n,) = struct.unpack(">I", raw[at : at + 4])
            rec = orjson.loads(_open(self.key, b"delta", raw[at + 4 : at + 4 + n]))
            at += 4 + n
            for t, tf in rec["p"].items():
                out[t][rec["sid"]] = out[t].get(rec["sid"], 0) + tf
        return out

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir())

    # -- erase ---------------------------------------------------------------
    def rewrite_segment(self, path: Path, drop: str) -> float:
        """Reseal one segment without session *drop*, under a fresh key (what an erase costs)."""
        import time

        t = time.perf_counter()
        seg = int(path.stem[3:])
        b = _Builder()
        with path.open("rb") as f:
            head = self._head(path, f)
            docs = head["docs"]
            keep = {i for i, (sid, _n, _tag) in enumerate(docs) if sid != drop}
            remap = {old: new for new, old in enumerate(sorted(keep))}
            b.docs = [docs[i] for i in sorted(keep)]
            for i, where in enumerate(head["buckets"]):
                for term, deltas, tfs in self._blob(f, seg, b"b", i, where):
                    d = 0
                    for delta, tf in zip(deltas, tfs, strict=True):
                        d += delta
                        if d in remap:
                            b.postings[term.encode()] += [remap[d], tf]
        self.seg_keys[seg] = os.urandom(32)  # the fresh key of the rewritten segment
        self._write_segment(seg, b)
        return time.perf_counter() - t


def bm25(
    hits: dict[str, dict[str, int]], lengths: dict[str, int], keep: Callable[[str], bool], limit: int = 20
) -> list[tuple[str, float]]:
    n = max(1, len(lengths))
    avg = sum(lengths.values()) / n
    score: dict[str, float] = defaultdict(float)
    for p in hits.values():
        idf = math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
        for sid, tf in p.items():
            if keep(sid):
                score[sid] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths.get(sid, 1) / avg))
    return sorted(score.items(), key=lambda x: -x[1])[:limit]
