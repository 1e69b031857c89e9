"""The full-text manifest's bytes, format 2 (docs/spec/fts-v1.md, "Manifest"): fixed-width
binary columns that a process decodes on demand.

Format 1 was JSON: a fresh process parsed every session's id and stamp (1.16 MB at 10,000
sessions, 40-86 ms) before it could answer a query or append a turn, both of which need a few
sessions at most. Format 2 keeps the per-session columns as the bytes they are: a session's
stamp is found by its id's 16 bytes, and a segment's sessions become ``UUID`` s only when a
compaction or a rotation asks for them.
"""

from __future__ import annotations

import struct
import sys
import uuid
from array import array
from collections.abc import ItemsView, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .._fts import DeltaRecord, LazyDeltaRecord

__all__ = [
    "FORMAT_BINARY",
    "FoldedStamps",
    "ManifestParts",
    "StampTable",
    "fold_stamps",
    "pack_manifest",
    "unpack_manifest",
]

#: The first byte of a format-2 payload (format 1, JSON, starts with ``{``).
FORMAT_BINARY: Final = 2
ID: Final = 16
KEY: Final = 32
TOMB: Final = 16
_U32: Final = struct.Struct(">I")
_HEAD: Final = struct.Struct(">B16s32sQ")  # format, delta id, delta key, retire_after
_SEG: Final = struct.Struct(">16s32sQQI")  # id, key, words, size, sessions
_SWAP: Final = sys.byteorder == "little"
#: Lookups by searching the id column before an index of it is worth building.
_SCANS: Final = 16

Stamp4 = tuple[int, int, int, int]
#: (delta id, delta key, retire_after, retired, segments as (id, key, words, size, session
#: ids' bytes), stamps).
ManifestParts = tuple[
    uuid.UUID, bytes, int, dict[str, bytes], list[tuple[uuid.UUID, bytes, int, int, bytes]], "StampTable"
]


class StampTable(Mapping[uuid.UUID, Stamp4]):
    """Per session, ``(generation, inode, size, mtime_ns)``, as two columns: the sessions' ids
    (16 bytes each) and their stamps (four u64 each). Nothing is decoded until looked up."""

    __slots__ = ("_ids", "_pos", "_scans", "_vals")

    def __init__(self, ids: bytes, vals: array[int]) -> None:
        if len(ids) % ID or len(vals) != len(ids) // ID * 4:
            raise ValueError("columns of different lengths")
        self._ids, self._vals = ids, vals
        self._pos: dict[bytes, int] | None = None
        self._scans = 0

    @classmethod
    def of(cls, stamps: Mapping[uuid.UUID, Stamp4]) -> StampTable:
        if isinstance(stamps, StampTable):
            return stamps
        vals = array("Q")
        for st in stamps.values():
            vals.extend(st)
        return cls(b"".join(sid.bytes for sid in stamps), vals)

    def _find(self, key: bytes) -> int:
        if self._pos is None and self._scans < _SCANS:
            self._scans += 1
            at = self._ids.find(key)
            while at >= 0 and at % ID:  # an id's bytes across two ids: keep looking
                at = self._ids.find(key, at + 1)
            return -1 if at < 0 else at // ID
        if self._pos is None:
            ids = self._ids
            self._pos = {ids[i : i + ID]: i // ID for i in range(0, len(ids), ID)}
        return self._pos.get(key, -1)

    def __getitem__(self, sid: uuid.UUID) -> Stamp4:
        i = self._find(sid.bytes) if isinstance(sid, uuid.UUID) else -1
        if i < 0:
            raise KeyError(sid)
        v = self._vals
        return v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]

    def __contains__(self, sid: object) -> bool:
        return isinstance(sid, uuid.UUID) and self._find(sid.bytes) >= 0

    def __iter__(self) -> Iterator[uuid.UUID]:
        ids = self._ids
        return (uuid.UUID(bytes=ids[i : i + ID]) for i in range(0, len(ids), ID))

    def __len__(self) -> int:
        return len(self._ids) // ID

    def columns(self) -> tuple[bytes, array[int]]:
        return self._ids, self._vals

    def items(self) -> ItemsView[uuid.UUID, Stamp4]:
        return _TableItems(self)

    def pairs(self) -> Iterator[tuple[uuid.UUID, Stamp4]]:
        """Every ``(session, stamp)``, read off the columns in order."""
        ids, v = self._ids, self._vals
        for i in range(len(ids) // ID):
            yield uuid.UUID(bytes=ids[i * ID : i * ID + ID]), (v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3])


class _TableItems(ItemsView[uuid.UUID, Stamp4]):
    """A table's items, iterated off its columns (not a lookup per id)."""

    def __init__(self, table: StampTable) -> None:
        super().__init__(table)
        self._table = table

    def __iter__(self) -> Iterator[tuple[uuid.UUID, Stamp4]]:
        return self._table.pairs()


def pack_manifest(
    delta_id: uuid.UUID,
    delta_key: bytes,
    *,
    retire_after: int,
    retired: Mapping[str, bytes],
    segments: Sequence[tuple[uuid.UUID, bytes, int, int, bytes]],
    stamps: Mapping[uuid.UUID, Stamp4],
) -> bytes:
    """The payload of format 2 (before the container's encoding byte)."""
    out = [_HEAD.pack(FORMAT_BINARY, delta_id.bytes, delta_key, retire_after), _U32.pack(len(retired))]
    for name, tomb in sorted(retired.items()):
        raw = name.encode("ascii")
        if len(tomb) != TOMB or not 0 < len(raw) < 256:
            raise ValueError("a retired file's name or tomb")
        out += [bytes((len(raw),)), raw, tomb]
    out.append(_U32.pack(len(segments)))
    out += [_SEG.pack(sid.bytes, key, words, size, len(sessions) // ID) for sid, key, words, size, sessions in segments]
    column = b"".join(s[4] for s in segments)
    out += [_U32.pack(len(column) // ID), column]
    ids, vals = StampTable.of(stamps).columns()
    if _SWAP:
        vals = array("Q", vals)
        vals.byteswap()
    out += [_U32.pack(len(ids) // ID), ids, vals.tobytes()]
    return b"".join(out)


def unpack_manifest(raw: bytes) -> ManifestParts:
    """Parse a format-2 payload. :raises ValueError: anything out of place (the caller reports
    it as the manifest's integrity failure)."""
    view = memoryview(raw)
    fmt, delta_id, delta_key, retire_after = _HEAD.unpack_from(view, 0)
    if fmt != FORMAT_BINARY:
        raise ValueError("format")
    at = _HEAD.size
    (r,) = _U32.unpack_from(view, at)
    at += 4
    retired: dict[str, bytes] = {}
    for _ in range(r):
        n = view[at]
        name = bytes(view[at + 1 : at + 1 + n]).decode("ascii")
        tomb = bytes(view[at + 1 + n : at + 1 + n + TOMB])
        if len(tomb) != TOMB or name in retired:
            raise ValueError("retired")
        retired[name] = tomb
        at += 1 + n + TOMB
    (s,) = _U32.unpack_from(view, at)
    at += 4
    heads = [_SEG.unpack_from(view, at + i * _SEG.size) for i in range(s)]
    at += s * _SEG.size
    (m,) = _U32.unpack_from(view, at)
    at += 4
    if sum(h[4] for h in heads) != m:
        raise ValueError("segment sessions")
    segments = []
    for sid, key, words, size, count in heads:
        segments.append((uuid.UUID(bytes=sid), key, words, size, bytes(view[at : at + count * ID])))
        at += count * ID
    (n,) = _U32.unpack_from(view, at)
    at += 4
    ids = bytes(view[at : at + n * ID])
    vals = array("Q")
    vals.frombytes(view[at + n * ID : at + n * (ID + 32)])
    if _SWAP:
        vals.byteswap()
    if at + n * (ID + 32) != len(raw):
        raise ValueError("length")
    return uuid.UUID(bytes=delta_id), delta_key, retire_after, retired, segments, StampTable(ids, vals)


class FoldedStamps(Mapping[uuid.UUID, tuple[int, int, int]]):
    """The view's stamps (``FtsView.stamps``): per session, ``(inode, size, mtime_ns)`` of the
    last write the index holds: the manifest's, replaced by each delta record's at or above its
    generation (*folded*: the few sessions the log holds). The manifest's are read on demand."""

    __slots__ = ("_base", "_over")

    def __init__(self, base: Mapping[uuid.UUID, Stamp4], folded: dict[uuid.UUID, Stamp4]) -> None:
        self._base, self._over = base, folded

    def __getitem__(self, sid: uuid.UUID) -> tuple[int, int, int]:
        st = self._over.get(sid)
        if st is None:
            st = self._base[sid]
        return st[1], st[2], st[3]

    def __contains__(self, sid: object) -> bool:
        return sid in self._over or sid in self._base

    def __iter__(self) -> Iterator[uuid.UUID]:
        yield from self._over
        for sid in self._base:
            if sid not in self._over:
                yield sid

    def __len__(self) -> int:
        return len(self._base) + sum(1 for sid in self._over if sid not in self._base)

    def items(self) -> ItemsView[uuid.UUID, tuple[int, int, int]]:
        return _FoldedItems(self)

    def pairs(self) -> Iterator[tuple[uuid.UUID, tuple[int, int, int]]]:
        """Every ``(session, stamp)``: the log's, then the manifest's others, off its columns."""
        over = self._over
        for sid, st in over.items():
            yield sid, (st[1], st[2], st[3])
        base = self._base.pairs() if isinstance(self._base, StampTable) else iter(self._base.items())
        for sid, st in base:
            if sid not in over:
                yield sid, (st[1], st[2], st[3])


class _FoldedItems(ItemsView[uuid.UUID, tuple[int, int, int]]):
    def __init__(self, folded: FoldedStamps) -> None:
        super().__init__(folded)
        self._folded = folded

    def __iter__(self) -> Iterator[tuple[uuid.UUID, tuple[int, int, int]]]:
        return self._folded.pairs()


def fold_stamps(
    stamps: Mapping[uuid.UUID, tuple[int, int, int, int]], records: Sequence[DeltaRecord | LazyDeltaRecord]
) -> dict[uuid.UUID, tuple[int, int, int, int]]:
    """Per session, ``(generation, inode, size, mtime_ns)`` of the last write the index holds:
    the segments' (the manifest's), then each delta record in order at or above it."""
    out = dict(stamps)
    for r in records:
        have = out.get(r.doc.session_id)
        if have is None or r.doc.generation >= have[0]:
            out[r.doc.session_id] = (r.doc.generation, *r.stamp)
    return out
