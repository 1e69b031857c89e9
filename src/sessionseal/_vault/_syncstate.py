"""The pull's record of what it applied, kept in the vault: the **pull cursor**
``sync/<UUIDv5(device, "pull cursor")>.sst`` (docs/spec/remote-v1.md, "The pull cursor"), and
what a pull reports (:class:`PullResult`).  :mod:`._syncapply` reads and writes it around every
write it makes; the push (:mod:`._sync`) starts from what pulls wrote before its first push.

Sealed like the push cursor (:mod:`._synccursor`), under a key derived from the newest epoch key,
and replaced atomically: it names sessions, so it becomes unreadable with that epoch.

:class:`PushResult` is here too, beside :class:`PullResult`: what a push reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _remotelog
from .._fs import Dir
from ..errors import IntegrityError
from ._synccursor import Pushed, Sealed, open_sealed, seal
from ._syncresume import Footprint

if TYPE_CHECKING:
    from ._syncpull import PullCheck

__all__ = ["Proved", "PullResult", "PullState", "PushResult", "pull_synced", "read_state", "write_state"]

VERSION: Final = 1
_BAD: Final = "the vault's sync pull cursor failed its integrity check; run 'sessionseal verify'"
#: The pull cursor's magic and key label (docs/spec/remote-v1.md, "The pull cursor").
_PULL_CURSOR: Final = Sealed(b"SSRP", b"sessionseal remote v1 pull cursor", _BAD)

#: A log's prefix an epoch proof verified (:mod:`._syncepochs`): its last entry (seq, MAC) and
#: the entries of it a proof reads (enrolments, revocations, epochs, the log's first, each rebase
#: as what it carries).
Proved = tuple[tuple[int, bytes], tuple[_remotelog.Opened, ...]]


@dataclass
class PullResult:
    """What a pull applied (or, with ``dry_run``, would apply): counts only, never a name."""

    check: PullCheck
    dry_run: bool
    entries: int = 0  # other devices' entries beyond the cursor
    put: int = 0
    appended: int = 0
    forked: int = 0
    meta: int = 0  # session.meta entries that won
    meta_older: int = 0  # ... that lost to a newer write of the field
    skipped: int = 0  # entries naming a session this vault does not have (kept in the log)
    refused: int = 0  # entries of a revoked device after its revocation, or of a device whose enrolment does not count
    erased: int = 0  # sessions a tombstone erased here
    kept: int = 0  # ... whose unpushed changes here were kept first, as a new session
    deleted: int = 0  # entries naming an erased session: not applied
    objects_deleted: int = 0  # this device's own objects of erased sessions deleted
    objects_kept: int = 0  # ... that the bucket refused to delete
    bytes: int = 0  # content objects fetched
    resumed: bool = False
    #: Old epochs' retirement after the pull (``_syncrebase.Retired.counts``) and the epochs
    #: this device holds after it.
    retire: dict[str, Any] = field(default_factory=dict)
    checkpoints: int = 0  # checkpoints added (docs/spec/remote-v1.md, "Checkpoints")
    checkpoints_deleted: int = 0  # ... and removed (only ones a pull added)
    wrapped: int = 0  # wraps this device published after the pull (``_syncwrap``)

    def counts(self) -> dict[str, Any]:
        return {
            **self.check.counts(),
            "applied": 0
            if self.dry_run
            else self.put
            + self.appended
            + self.forked
            + self.meta
            + self.erased
            + self.checkpoints
            + self.checkpoints_deleted,
            "to_apply": self.entries,
            "put": self.put,
            "appended": self.appended,
            "forked": self.forked,
            "meta": self.meta,
            "meta_older": self.meta_older,
            "skipped": self.skipped,
            "refused": self.refused,
            "erased": self.erased,
            "kept": self.kept,
            "deleted": self.deleted,
            "objects_deleted": self.objects_deleted,
            "objects_kept": self.objects_kept,
            "checkpoints": self.checkpoints,
            "checkpoints_deleted": self.checkpoints_deleted,
            "wraps_published": self.wrapped,
            "bytes": self.bytes,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            **self.retire,
        }


@dataclass
class PullState:
    """The decoded pull cursor."""

    applied: dict[uuid.UUID, tuple[int, bytes]] = field(default_factory=dict)  # device -> (seq, mac)
    #: (device, seq, kind of write, session written, its (generation, end) before, None: none;
    #: the footprint of a group it appends, :mod:`._syncresume`)
    pending: tuple[uuid.UUID, int, str, uuid.UUID, tuple[int, int] | None, Footprint | None] | None = None
    lines: dict[tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, int]] = field(default_factory=dict)
    winners: dict[tuple[uuid.UUID, str], tuple[int, uuid.UUID]] = field(default_factory=dict)
    synced: dict[bytes, Pushed] = field(default_factory=dict)  # before the first push only
    hlc: int = 0
    #: A batch of puts of sessions this vault did not have, under way: (device, seq, session).
    batch: list[tuple[uuid.UUID, int, uuid.UUID]] = field(default_factory=list)
    dead: set[bytes] = field(default_factory=set)  # dead_tag of each session a tombstone erased
    #: What epoch proofs verified of each log, by device: the next proof reads what follows.
    proof: dict[uuid.UUID, Proved] = field(default_factory=dict)


def _name(device: uuid.UUID) -> str:
    # 32 hex digits, as every file of ``sync/`` is named (what verify and snapshot know).
    return f"{uuid.uuid5(device, 'pull cursor').hex}.sst"


def _encode(s: PullState) -> bytes:
    p = s.pending
    # Each UUID's hex made once a write, looked up by its int (a C hash; ``UUID.hex`` and
    # ``UUID.__hash__`` are Python): a pull writes this cursor twice a batch, each time with
    # every session it pulled (7 winners each: 7.7 to 5.2 ms of CPU a write at 1,000 sessions).
    hexes: dict[int, str] = {}

    def hx(u: uuid.UUID) -> str:
        n = u.int
        h = hexes.get(n)
        if h is None:
            h = hexes[n] = u.hex
        return h

    doc = {
        "v": VERSION,
        "applied": {d.hex: [seq, mac.hex()] for d, (seq, mac) in sorted(s.applied.items())},
        "pending": None
        if p is None
        else [p[0].hex, p[1], p[2], p[3].hex, None if p[4] is None else list(p[4])]
        + ([] if p[5] is None else [list(p[5])]),
        # Sorted as rows: a UUID's hex orders as the UUID does, and each row's first two items
        # (the dict's key) differ, so the order is the keys' own; a UUID compared in Python code
        # (``UUID.__lt__``) made these sorts most of a pull's cursor writes (two per batch).
        "lines": sorted([[hx(d), hx(sid), hx(t), n] for (d, sid), (t, n) in s.lines.items()]),
        "winners": sorted([[hx(sid), f, h, hx(d)] for (sid, f), (h, d) in s.winners.items()]),
        "synced": {k.hex(): [p.generation, p.end, p.groups, p.ops] for k, p in sorted(s.synced.items())},
        "hlc": s.hlc,
        "batch": [[d.hex, seq, sid.hex] for d, seq, sid in s.batch],
        "dead": sorted(t.hex() for t in s.dead),
        "proof": {
            d.hex: [seq, mac.hex(), [[o.seq, o.epoch, o.prev.hex(), o.mac.hex(), o.entry] for o in kept]]
            for d, ((seq, mac), kept) in sorted(s.proof.items())
        },
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _decode(plain: bytes) -> PullState:
    u = uuid.UUID
    try:
        doc = orjson.loads(plain)
        if doc["v"] != VERSION:
            raise ValueError
        s = PullState(hlc=int(doc["hlc"]))
        s.applied = {u(hex=d): (int(seq), bytes.fromhex(mac)) for d, (seq, mac) in doc["applied"].items()}
        p = doc["pending"]
        if p is not None:
            foot = None if len(p) < 6 else (int(p[5][0]), int(p[5][1]), str(p[5][2]))
            before = None if p[4] is None else (p[4][0], p[4][1])
            s.pending = (u(hex=p[0]), int(p[1]), str(p[2]), u(hex=p[3]), before, foot)
        s.lines = {(u(hex=d), u(hex=sid)): (u(hex=t), int(n)) for d, sid, t, n in doc["lines"]}
        s.winners = {(u(hex=sid), str(f)): (int(h), u(hex=d)) for sid, f, h, d in doc["winners"]}
        s.synced = {bytes.fromhex(k): Pushed(*(int(x) for x in v)) for k, v in doc["synced"].items()}
        s.batch = [(u(hex=d), int(seq), u(hex=sid)) for d, seq, sid in doc.get("batch", ())]
        s.dead = {bytes.fromhex(t) for t in doc.get("dead", [])}  # absent: written before tombstones
        if any(len(t) != 16 for t in s.dead):
            raise ValueError
        s.proof = {u(hex=d): _proved(v) for d, v in doc.get("proof", {}).items()}  # absent: none
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
        raise IntegrityError(_BAD) from None
    return s


def _proved(v: Any) -> Proved:
    seq, mac, kept = v
    opened = tuple(
        _remotelog.Opened(int(q), int(e), bytes.fromhex(p), bytes.fromhex(m), dict(entry)) for q, e, p, m, entry in kept
    )
    return (int(seq), bytes.fromhex(mac)), opened


def read_state(d: Dir, remote: uuid.UUID, device: uuid.UUID, epoch_keys: dict[int, bytes]) -> PullState:
    """The pull cursor (an empty one when this device never pulled)."""
    plain = open_sealed(_PULL_CURSOR, d, _name(device), remote=remote, device=device, epoch_keys=epoch_keys)
    return PullState() if plain is None else _decode(plain)


def write_state(d: Dir, s: PullState, remote: uuid.UUID, device: uuid.UUID, *, epoch: int, epoch_key: bytes) -> None:
    seal(_PULL_CURSOR, d, _name(device), _encode(s), remote=remote, device=device, epoch=epoch, epoch_key=epoch_key)


def pull_synced(
    d: Dir | None, remote: uuid.UUID, device: uuid.UUID, epoch_keys: dict[int, bytes]
) -> dict[bytes, Pushed]:
    """What pulls wrote before this device's first push (the push starts from it)."""
    if d is None:
        return {}
    return dict(read_state(d, remote, device, epoch_keys).synced)


@dataclass
class PushResult:
    """What a push sent (or, with ``dry_run``, would send); counts only, never a name."""

    remote: str
    device: uuid.UUID
    dry_run: bool
    first: bool = False  # this push made the remote's epoch 1
    sessions: int = 0  # sessions with something sent
    put: int = 0
    appended: int = 0
    meta: int = 0  # session.meta entries
    entries: int = 0
    objects: int = 0
    bytes: int = 0  # every byte PUT: objects, entries, heads, records
    resent: int = 0  # names a killed push left in the outbox, sent again
    seq: int = 0  # the log's last entry after the push
    epoch: int = 0
    tombstoned: int = 0  # sessions erased here that a tombstone named (docs/sync.md, "Deletes")
    objects_deleted: int = 0  # this device's content objects of erased sessions deleted
    objects_kept: int = 0  # ... that the bucket refused to delete
    rebased: int = 0  # sessions a ``rebase`` entry re-sealed under the newest epoch
    checkpoints: int = 0  # checkpoint.put entries (docs/spec/remote-v1.md, "Checkpoints")
    checkpoints_deleted: int = 0  # checkpoint.delete entries

    def counts(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "rebased": self.rebased,
            "sessions": self.sessions,
            "put": self.put,
            "appended": self.appended,
            "meta": self.meta,
            "entries": self.entries,
            "objects": self.objects,
            "bytes": self.bytes,
            "resent": self.resent,
            "seq": self.seq,
            "epoch": self.epoch,
            "tombstoned": self.tombstoned,
            "objects_deleted": self.objects_deleted,
            "objects_kept": self.objects_kept,
            "checkpoints": self.checkpoints,
            "checkpoints_deleted": self.checkpoints_deleted,
            "dry_run": self.dry_run,
        }
