"""Rebasing a device's log under a new epoch, and retiring the old epochs' keys (issue 26;
docs/sync.md, "Deletes"; docs/spec/remote-v1.md, "Rebase and retirement").

A delete (or a revocation) makes a new epoch so that what it erased becomes unreadable once the
old epoch's key is gone everywhere.  Two steps get there:

1. **Rebase** (:func:`rebase_entry`, at the end of a push): once this device holds a newer epoch
   than its log's latest ``rebase`` (or its entry 1), it re-seals what its log still serves under
   the newest epoch: for each live session its log names (a ``session.put``, a
   ``session.append`` or an earlier rebase's, and no tombstone of its own since), the session's
   document as pushed, as a new content object, named in one ``rebase`` entry, which also
   carries the log's opening ``epoch`` entry and its enrolments and revocations
   (:func:`.._remotelog.facts`).  From it on, the log reads without any older key.
2. **Retirement** (:func:`retire`, after a pull): this device drops every epoch key below ``R``
   from its store once it **proves**, from the logs it verified (chains, signed heads), that
   every enrolled device that is not revoked has written a rebase at or after ``R`` (or opened
   its log there), that this device has applied each of those logs past that rebase, and that
   each of them witnesses (its newest signed head's witness vector) this device's log past
   this device's own rebase.  Nothing is inferred from an absence: a device whose log shows no
   such rebase, a log this device cannot read, or a head that does not witness it, and the keys
   stay.  Before the keys go, it deletes its own content objects that only entries under the
   retired epochs name (it needs those keys to read them), its key objects of those epochs and
   its enrolment objects (which wrap them), then drops the keys; killed anywhere, the next pull
   does it again (a delete of a name already gone is nothing).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _remotelog
from ..errors import RemoteError, SessionNotFound
from ._auditing import Auditor, audited_by
from ._syncapply import META_FIELDS
from ._synccursor import Cursor, read_cursor, write_cursor
from ._syncstate import read_state, write_state
from ._synctomb import Tombstones, delete_objects

if TYPE_CHECKING:
    from .._fs import Dir
    from .._s3 import S3Store
    from ._store import SessionStore
    from ._syncckpt import CheckpointSync
    from ._syncpull import PullCheck

_EPOCH: Final = re.compile(r"[0-9a-f]{8}")
_audited = audited_by(lambda auditor: auditor)

__all__ = ["Retired", "live_sessions", "meta_of", "rebase_entry", "rebased_at", "retire"]


def live_sessions(own: Sequence[_remotelog.Opened]) -> list[uuid.UUID]:
    """The sessions this log serves: named by a ``session.put``, ``session.append`` or
    ``rebase`` entry, and not by a later ``tombstone`` of its own."""
    live: dict[uuid.UUID, None] = {}
    for o in own:
        if o.entry.get("kind") == "tombstone":
            for s in o.entry.get("sessions") or []:
                live.pop(uuid.UUID(str(s)), None)
            continue
        for session, _ in _remotelog.named_objects(o.entry):
            try:
                live[uuid.UUID(str(session))] = None
            except ValueError:
                continue
    return sorted(live, key=lambda u: u.bytes)


def _carried(own: Sequence[_remotelog.Opened]) -> list[list[Any]]:
    """``[seq, epoch, entry]`` of the log's opening ``epoch`` entry, its enrolments and its
    revocations, in log order, with what earlier rebases carried."""
    out: list[list[Any]] = []
    for o in own:
        kind = o.entry.get("kind")
        if kind == "rebase":
            out.extend(list(c) for c in o.entry.get("carried", []) if list(c) not in out)
        elif kind in {"device.enroll", "device.revoke"} or (o.seq == 1 and kind == "epoch"):
            out.append([o.seq, o.epoch, o.entry])
    return out


def meta_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The ``meta`` of a ``session.put`` (or a rebase's session) for the document *doc*."""
    return {k: doc.get(k) for k in sorted(META_FIELDS) if k in doc}


def rebase_entry(
    tomb: Tombstones,
    cursor: Cursor,
    epoch: int,
    store: SessionStore,
    seal: Callable[[bytes], tuple[str, int]],
    *,
    ckpts: CheckpointSync | None = None,
) -> dict[str, Any] | None:
    """The ``rebase`` entry of this device's log (read whole, from *tomb*) under *epoch*, its
    objects sealed and PUT by *seal* (the push's own: before the entry is committed), with the
    checkpoints this device put of those sessions (*ckpts*), so that a device that reads the log
    from this rebase gets them too.  None when a session or a checkpoint it serves changed since
    this push sent it (another process appended meanwhile): the next push rebases."""
    own, marks = tomb.own_log(cursor.remote), tomb.marks()
    records: list[dict[str, Any]] = []
    restated: list[dict[str, Any]] = []
    for sid in live_sessions(own):
        pushed, mark = cursor.sessions.get(sid.bytes), marks.get(sid.bytes)
        if pushed is None or mark is None:
            continue  # erased here (its tombstone is this push's), or never this log's to serve
        if (pushed.generation, pushed.end) != mark:
            return None
        try:
            doc = store.document(store.open(sid))
        except SessionNotFound:
            continue
        name, size = seal(doc)
        meta = meta_of(orjson.loads(doc))
        records.append({"session": str(sid), "object": name, "size": size, "events": pushed.ops, "meta": meta})
        held = ckpts.carried(cursor, sid.bytes, seal) if ckpts is not None else []
        if held is None:
            return None
        restated += held
    entry = {"kind": "rebase", "epoch": epoch, "sessions": records, "carried": _carried(own)}
    # Only when there are any: a rebase without checkpoints is the bytes it was before them.
    return entry | ({"checkpoints": restated} if restated else {})


def rebased_at(entries: Sequence[_remotelog.Opened]) -> tuple[int, int]:
    """(epoch, seq) of a log's latest ``rebase`` entry sealed under the epoch it names, or of
    its entry 1 (a log that opens under an epoch holds nothing older); (0, 0): neither read."""
    best = (0, 0)
    for o in entries:
        if (o.entry.get("kind") == "rebase" and o.entry.get("epoch") == o.epoch) or o.seq == 1:
            best = max(best, (o.epoch, o.seq))
    return best


@dataclass
class Retired:
    """What :func:`retire` did: counts and epoch numbers only."""

    below: int = 0  # the epochs below this one were retired (0: none)
    epochs: int = 0  # keys dropped from this device's store
    objects_deleted: int = 0
    objects_kept: int = 0  # the bucket refused the delete
    #: What held retirement back, by device id hex: "rebase" (no rebase read at the epoch),
    #: "applied" (this device has not applied that log past its rebase), "witness" (its head
    #: does not witness this device's rebase).  Empty when nothing waits.
    waiting: dict[str, str] | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "retired_below": self.below,
            "epochs_retired": self.epochs,
            "retired_objects_deleted": self.objects_deleted,
            "retired_objects_kept": self.objects_kept,
            "retire_waiting": dict(sorted((self.waiting or {}).items())),
        }


@_audited("sync.retire")
def retire(auditor: Auditor, tomb: Tombstones, check: PullCheck, sync_dir: Dir) -> dict[str, Any]:
    """Retire the epochs every device has rebased past, when that is proved (the module's
    docstring); call after a pull applied *check*'s logs, under the sync lock.  Audited
    ``sync.retire`` when it dropped or deleted anything.  Returns the counts for ``--json``,
    with the epochs held after it."""
    ident = tomb.devices.identity(tomb.config)
    assert ident.remote_id is not None
    done = _retire(tomb, check, sync_dir, ident.remote_id, ident.x25519_public)
    counts = done.counts()
    if done.epochs or done.objects_deleted:
        auditor.record("sync.retire", detail={k: v for k, v in counts.items() if k != "retire_waiting"})
    return counts | {"epochs_held": sorted(tomb.devices.epoch_keys(tomb.config))}


def _retire(tomb: Tombstones, check: PullCheck, sync_dir: Dir, rid: uuid.UUID, x25519_public: bytes) -> Retired:
    out = Retired(waiting={})
    assert out.waiting is not None
    devices, config, me = tomb.devices, tomb.config, tomb.me
    held = devices.epoch_keys(config)
    enrolled = tomb.recipients(check, rid, x25519_public)
    at = {dev: rebased_at(check.logs.get(dev, ())) for dev in enrolled}
    for dev, (epoch, _) in at.items():
        if epoch < max(held):
            out.waiting[dev.hex] = "rebase"
    # Every device rebased at or after it; the newest epoch held is never retired.
    floor = min([epoch for epoch, _ in at.values()] + [max(held)])
    if floor <= min(held):
        return out
    cursor = read_cursor(sync_dir, rid, me, held)
    if cursor is None or cursor.outbox:
        out.waiting[me.hex] = "rebase"  # its own entries not all sent yet
        return out
    state = read_state(sync_dir, rid, me, held)
    blocked = False
    for dev, (_, seq) in at.items():
        if dev == me:
            continue
        if state.applied.get(dev, (0, b""))[0] < seq:
            out.waiting[dev.hex], blocked = "applied", True
        elif check.witnesses.get(dev, {}).get(me, (0, b""))[0] < at[me][1]:
            out.waiting[dev.hex], blocked = "witness", True
    if blocked:
        return out
    out.below = floor
    own = check.logs.get(me, ())
    old = {name for o in own if o.epoch < floor for _, name in _remotelog.named_objects(o.entry)}
    new = {name for o in own if o.epoch >= floor for _, name in _remotelog.named_objects(o.entry)}
    out.objects_deleted, out.objects_kept = delete_objects(tomb.s3, tomb.prefix, sorted(old - new))
    out.objects_kept += _delete_keys(tomb.s3, tomb.prefix, floor)
    # The cursors are sealed under the newest key already; written again so that none is left
    # under a key about to go (a cursor written before this version's first rebase).
    epoch, key = devices.current_epoch(config)
    write_cursor(sync_dir, cursor, epoch, key)
    write_state(sync_dir, state, rid, me, epoch=epoch, epoch_key=key)
    out.epochs = devices.drop_epoch_keys(config, below=floor)
    return out


def _delete_keys(s3: S3Store, prefix: str, below: int) -> int:
    """Delete this device's key objects and wraps of the epochs below *below*, and its enrolment
    objects (each wraps every epoch its writer held, the retired ones too); returns how many the bucket
    refused to delete (kept: docs/secure-deletion.md says what that leaves)."""
    doomed = [
        key
        for key, _ in s3.list(prefix + "keys/")
        if _EPOCH.fullmatch(name := key[len(prefix) + 5 :]) and int(name, 16) < below
    ]
    doomed += [key for key, _ in s3.list(prefix + "enroll/")]
    # A wrap of a retired epoch (``_syncwrap``): one key object's worth, named by its epoch.
    doomed += [
        key
        for key, _ in s3.list(prefix + "wrap/")
        if _EPOCH.fullmatch(name := key.rpartition("/")[2][:8]) and int(name, 16) < below
    ]
    kept = 0
    for key in doomed:
        try:
            s3.delete(key)
        except RemoteError:
            kept += 1
    return kept
