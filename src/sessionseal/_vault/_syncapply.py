"""``sessionseal sync --pull``, the applying half: the other devices' entries, once their logs
check out (:mod:`._syncpull`), written into this vault through its own validated, sanitized,
audited write paths (docs/sync.md, "Pull"; docs/design.md, "Pull").

Entries are applied in hybrid-clock order (each device's log keeps its own order), from where
this device's **pull cursor** says it stopped: ``sync/<UUIDv5(device, "pull cursor")>.sst``, sealed like the push
cursor (:mod:`._synccursor`) under a key derived from the newest epoch key, replaced atomically.

- ``session.put``: the object (hash checked before it is decrypted, the frame's size against
  the vault's limit before it is decompressed), parsed as a session and saved with its id, as
  ``save`` does (validated, sanitized, audited ``save``).  A local session with changes this
  device has not pushed yet is kept: the remote's version becomes a linked fork.
- ``session.append``: the segment's operations appended as ``append`` does, when the local
  session holds exactly the line the entry extends (nothing unpushed here, and the operation
  count this device last pushed or pulled equals the entry's ``base``).  Otherwise the lines
  diverged: the local line stays and the remote's becomes a linked fork (``forked_from``) with
  an id every device derives alike (UUIDv5 of the session, the device and the entry's seq);
  that device's later appends to the session go to the fork.
- ``session.meta``: last writer wins per field by (hlc, device id); the winner's clock is kept
  in the pull cursor, this device's own entries included, so a later pull stays consistent.
- ``tombstone``: each named session here is erased through the vault's own delete (a
  crypto-erase, audited as ``delete``); unpushed changes of this device to it are first kept as
  a new session; this device's own objects of it are deleted (:mod:`._synctomb`).  An erased
  session is never brought back: entries naming it (of any device, before or after the
  tombstone) are not applied, nor are those of a session erased here whose tombstone this
  device has not pushed yet.

What a pull writes is marked as pushed in the push cursor (or, before this device's first push,
in the pull cursor, from which that push starts): it is never sent back as this device's own.

**Killed anywhere, a pull resumes to the same vault.**  Before each write the cursor records
the intent (the entry, the session written, its version before and the write's footprint);
after the write the push cursor, then the pull cursor (advanced past the entry) are replaced.
A pull that finds an intent looks at the session: when it holds the write (:mod:`._syncresume`),
only the bookkeeping is done again; otherwise the entry is applied, decided afresh.  Each write
is atomic (a save replaces the file, an append commits one group).
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _container, _crypto, _events, _remote, _remotelog
from .._fs import Dir
from .._gc import collector_paused
from ..errors import InvalidInput, RemoteError, SessionNotFound, SessionSealError
from ._syncckpt import KINDS as CKPT_KINDS
from ._syncckpt import CheckpointSync
from ._synccursor import Cursor, Pushed, read_cursor, write_cursor
from ._syncobjects import PullObjects
from ._syncresume import Footprint, footprint, saved, was_written
from ._syncstate import PullResult, PullState, read_state, write_state
from ._synctomb import dead_tag, delete_objects, objects_of, tombstone_sessions

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store
    from ..models import Session
    from ._auditing import Auditor
    from ._devices import Devices
    from ._store import Built, SessionStore
    from ._syncpull import PullCheck

__all__ = ["META_FIELDS", "Applier"]

#: The namespace of fork ids (docs/spec/remote-v1.md, "The pull cursor").
FORK_NAMESPACE: Final = uuid.UUID("5e55105e-a1f0-4c0d-8a5e-f0f4c0ffee26")
#: The fields a metadata-only group carries as ``session.meta`` entries (docs/spec/remote-v1.md).
META_FIELDS: Final = frozenset({"title", "description", "status", "pinned", "tags", "links", "archived_from"})
KINDS: Final = frozenset({"session.put", "session.append", "session.meta"})
#: The kinds whose entry names a content object the pull fetches.
_NAMING: Final = frozenset({"session.put", "session.append", "checkpoint.put"})
#: Erase: (sessions, the remote device whose tombstone it applies): the vault's own delete.
Erase = Callable[[list[uuid.UUID], uuid.UUID], None]
#: Progress: (entries done, entries to apply, bytes fetched so far).
Progress = Callable[[int, int, int], None]
#: Puts of sessions this vault does not have, applied under one recorded intent (the pull
#: cursor's ``batch``): two cursor replaces per batch, not two per session (docs/sync.md, "Pull").
BATCH: Final = 128
#: ... whose objects hold at most this many bytes (each is parsed before the batch is saved).
BATCH_BYTES: Final = 8 << 20


def _made(hlc: int) -> str:
    # The entry's clock, not now: every device, and a pull resumed after a kill, makes the same.
    return datetime.fromtimestamp((hlc >> 16) / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Todo:
    device: uuid.UUID
    opened: _remotelog.Opened
    hlc: int


class Applier:
    """One applying pull, under the sync lock."""

    def __init__(
        self,
        *,
        config: RemoteConfig,
        s3: S3Store,
        devices: Devices,
        store: SessionStore,
        auditor: Auditor,
        sync_dir: Dir | None,
        check: PullCheck,
        dry_run: bool,
        progress: Progress | None,
        erase: Erase,
        ckpts: CheckpointSync,
        erased_here: frozenset[bytes] = frozenset(),
    ) -> None:
        self.config, self.s3, self.store, self.auditor, self.ckpts = config, s3, store, auditor, ckpts
        self.erase, self.erased_here = erase, erased_here
        #: Sessions a tombstone among the entries to apply names: nothing before it is applied.
        self.doomed: set[uuid.UUID] = set()
        self.dir, self.dry_run, self.progress = sync_dir, dry_run, progress
        self.url = _remote.parse_url(config.url)
        self.held = devices.epoch_keys(config)
        self.ring = devices.keyring(config)  # objects of an epoch two devices made open under either key
        rid = devices.identity(config).remote_id
        assert rid is not None  # check_logs refused a device without the remote's keys
        self.rid, self.me = rid, config.device
        self.epoch, self.key = devices.current_epoch(config)
        self.result = PullResult(check, dry_run)
        self.state = PullState() if sync_dir is None else read_state(sync_dir, rid, self.me, self.held)
        self.push: Cursor | None = None
        if sync_dir is not None:
            self.push = read_cursor(sync_dir, rid, self.me, self.held)
        self.logs = check.logs
        self.objects = PullObjects(s3, self.url, self.ring, rid, self.result)
        self.deferred = False  # in a batch: the push cursor and the audit written once, at its end
        self.saved: list[tuple[uuid.UUID, int, dict[str, int]]] = []
        #: In a batch, after its flush: the (generation, end) of each file it named (a new file,
        #: no group appended), which :meth:`_version` and :meth:`_synced` take as read.
        self.named: dict[uuid.UUID, tuple[int, int]] = {}

    # -- the steps ---------------------------------------------------------------------------

    def run(self) -> PullResult:
        todo = self._todo()
        self.result.entries = sum(1 for t in todo if t.device != self.me)
        for t in todo:
            if t.opened.entry.get("kind") == "tombstone":
                self.doomed.update(self._tombstoned(t))
        if self.dry_run:
            for t in todo:
                if t.device != self.me:
                    self._count_dry(t.opened.entry)
            return self.result
        self.result.resumed = self.state.pending is not None or bool(self.state.batch)
        own = [t for t in todo if t.device == self.me]
        for t in own:  # this device's own entries first: their clocks are known before any other's
            self._own(t)
        if own:
            self._save_state()  # once: what they note is redone from the log if it is lost
        self._others([t for t in todo if t.device != self.me])
        if self.push is not None and self.push.hlc < self.state.hlc and self.dir is not None:
            # The clock moves past every clock it read: this device's next changes are later.
            self.push.hlc = self.state.hlc
            write_cursor(self.dir, self.push, self.epoch, self.key)
        return self.result

    def _others(self, others: list[_Todo]) -> None:
        """Apply the other devices' entries, in order, with progress every 2 seconds."""
        done = 0
        last = time.monotonic()
        # The objects are fetched ahead, in the order they are applied (:mod:`._syncfetch`).
        with self.objects.prefetch([p for t in others if (p := self._planned(t)) is not None]) as self.objects.fetch:
            while done < len(others):
                batch = self._fresh(others, done)
                if batch:
                    self._put_batch(batch)
                else:
                    self._one(others[done])
                done += max(len(batch), 1)
                if self.progress is not None and time.monotonic() - last >= 2.0:
                    self.progress(done, self.result.entries, self.result.bytes)
                    last = time.monotonic()
        self.objects.fetch = None
        if self.progress is not None and self.result.entries:
            self.progress(done, self.result.entries, self.result.bytes)

    def _todo(self) -> list[_Todo]:
        """The entries to apply, in clock order, once every log is checked against what this
        vault applied of it (its own floor, before anything is written): a log that no longer
        holds that entry, with its MAC, was cut, rolled back or rewritten, and is refused."""
        found: list[_Todo] = []
        for dev, (seq, _) in sorted(self.state.applied.items()):
            if seq and dev not in self.logs:  # the whole prefix gone: rolled back to nothing
                raise RemoteError(
                    f"device {dev.hex}'s log is gone from the remote, below entry {seq} this vault applied: "
                    "it was cut or rolled back; nothing was applied"
                )
        for dev, read in self.logs.items():
            seq, mac = self.state.applied.get(dev, (0, b""))
            entries = self._from_latest_rebase(dev, read) if not seq and dev != self.me else read
            if seq and seq >= self.result.check.readable_from.get(dev, 0):  # below: under retired keys
                at = [o for o in entries if o.seq == seq]
                if not at or not _crypto.constant_time_equal(at[0].mac, mac):
                    raise RemoteError(
                        f"device {dev.hex}'s log no longer holds the entry this vault applied last (entry {seq}): "
                        "it was cut, rolled back or rewritten; nothing was applied"
                    )
            cutoff = self.result.check.cutoffs.get(dev)
            if dev in self.result.check.uncounted:
                cutoff = 0  # a device whose own enrolment does not count (_enrolrule): nothing of it
            for o in entries:
                if o.seq > seq and cutoff is not None and o.seq > cutoff:
                    self.result.refused += 1  # a revoked device's after its revocation, or an uncounted one's
                elif o.seq > seq:
                    found.append(_Todo(dev, o, int(str(o.entry.get("hlc", "0")), 16)))
        return sorted(found, key=lambda t: (t.hlc, t.device.bytes, t.opened.seq))

    def _from_latest_rebase(
        self, dev: uuid.UUID, entries: tuple[_remotelog.Opened, ...]
    ) -> tuple[_remotelog.Opened, ...]:
        """A log this vault applied nothing of, from its latest ``rebase`` on (applied as puts):
        what comes before is restated there, and its objects may be gone (a device that retired
        the old epochs deletes them, while one that still holds those keys may enrol this one)."""
        at = [i for i, o in enumerate(entries) if o.entry.get("kind") == "rebase" and o.entry.get("epoch") == o.epoch]
        if not at:
            return entries
        self.result.check.rebased_from[dev] = entries[at[-1]].seq
        return entries[at[-1] :]

    def _count_dry(self, entry: dict[str, Any]) -> None:
        kind = entry.get("kind")
        if kind == "session.put":
            self.result.put += 1
        elif kind == "session.append":
            self.result.appended += 1
        elif kind == "session.meta":
            self.result.meta += 1
        elif kind == "tombstone":
            self.result.erased += sum(1 for sid in tombstone_sessions(entry) if self._version(sid) is not None)
        elif kind in CKPT_KINDS:
            self.result.checkpoints += kind == "checkpoint.put"
            self.result.checkpoints_deleted += kind == "checkpoint.delete"

    def _own(self, t: _Todo) -> None:
        """This device's own entry: nothing to write; a metadata clock to remember."""
        e = t.opened.entry
        if e.get("kind") == "tombstone":
            self.state.dead.update(dead_tag(self.rid, sid) for sid in self._tombstoned(t))
        elif e.get("kind") == "session.meta":
            self._won(uuid.UUID(e["session"]), str(e["field"]), t.hlc, t.device)
        elif e.get("kind") == "session.put":
            for f in e.get("meta") or {}:
                self._won(uuid.UUID(e["session"]), str(f), t.hlc, t.device)
        self.state.applied[t.device] = (t.opened.seq, t.opened.mac)
        self.state.hlc = max(self.state.hlc, t.hlc)

    def _won(self, sid: uuid.UUID, name: str, hlc: int, dev: uuid.UUID) -> bool:
        old = self.state.winners.get((sid, name))
        # The same clock and device is the same change: a resumed pull whose killed run recorded
        # it as the winner before its write still writes it.
        if old is not None and (old[0], old[1].bytes) > (hlc, dev.bytes):
            return False
        self.state.winners[(sid, name)] = (hlc, dev)
        return True

    def _one(self, t: _Todo) -> None:
        e, seq = t.opened.entry, t.opened.seq
        kind = e.get("kind")
        if kind == "tombstone":
            self._tombstone(t)
        elif kind == "rebase" and self.result.check.rebased_from.get(t.device) == seq:
            self._rebased(t)
        elif (kind in KINDS or kind in CKPT_KINDS) and self._dead(e.get("session")):
            self.result.deleted += 1
        elif kind in CKPT_KINDS:
            self._checkpoint(t)
        elif kind in KINDS:
            try:
                sid = uuid.UUID(str(e["session"]))
            except (KeyError, ValueError):
                raise RemoteError(f"device {t.device.hex}'s entry {seq} is malformed") from None
            pending = self.state.pending
            try:
                if pending is not None and pending[:2] == (t.device, seq) and was_written(self.store, *pending[2:]):
                    self._after(t, pending[2], sid, pending[3], written=True)  # written before a kill
                elif kind == "session.put":
                    self._put(t, sid)
                elif kind == "session.append":
                    self._append(t, sid)
                else:
                    self._meta(t, sid)
            except (KeyError, TypeError, ValueError) as exc:  # an entry that authenticates but is out of shape
                if isinstance(exc, SessionSealError):
                    raise  # the vault's own, with its own message and exit code
                raise RemoteError(f"device {t.device.hex}'s entry {seq} is malformed") from None
        self.state.applied[t.device] = (seq, t.opened.mac)
        self.state.pending = None
        self.state.hlc = max(self.state.hlc, t.hlc)
        self._save_state()

    def _checkpoint(self, t: _Todo) -> None:
        """Through the vault's checkpoint write, idempotent by the checkpoint's id (:mod:`._syncckpt`)."""
        e = t.opened.entry
        try:
            payload = functools.partial(self.objects.payload, t.device, e)
            self.ckpts.apply(t.device, e, payload=payload, log=self.logs.get(t.device, ()), result=self.result)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SessionSealError):
                raise
            raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} is malformed") from None

    def _fresh(self, others: list[_Todo], start: int) -> list[tuple[_Todo, uuid.UUID]]:
        """The batch from *start*: the ``session.put`` entries that follow in order, of distinct
        sessions this vault does not have (or that a killed batch recorded), up to :data:`BATCH`.
        Each is then a save of a new session, whatever the others of the batch do."""
        found: list[tuple[_Todo, uuid.UUID]] = []
        recorded, pending = set(self.state.batch), self.state.pending
        size = 0
        for t in others[start : start + BATCH]:
            e = t.opened.entry
            if e.get("kind") != "session.put" or (pending is not None and pending[:2] == (t.device, t.opened.seq)):
                break
            size += e["size"] if isinstance(e.get("size"), int) else BATCH_BYTES
            if found and size > BATCH_BYTES:  # the batch's documents are held until it is saved
                break
            try:
                sid = uuid.UUID(str(e["session"]))
            except (KeyError, ValueError):
                break
            if any(sid == other for _, other in found) or self._dead(sid):
                break  # an erased session's put is not applied (its object may be gone): _one counts it
            if self._version(sid) is not None and (t.device, t.opened.seq, sid) not in recorded:
                break
            found.append((t, sid))
        return found

    def _put_batch(self, batch: list[tuple[_Todo, uuid.UUID]]) -> None:
        """Apply *batch* (:meth:`_fresh`) under one intent: the cursor records every entry of it
        (each session absent before) first; after the saves, the push cursor once, then the pull
        cursor advanced past them all.  Killed between, the next pull finds each session either
        saved (only the bookkeeping is redone: :meth:`_saves`) or absent (it is saved)."""
        recorded = set(self.state.batch)
        mine = [(t.device, t.opened.seq, sid) for t, sid in batch]
        self.state.batch = list(dict.fromkeys([*self.state.batch, *mine]))
        self._save_state()
        self.deferred = True
        try:  # the collector paused: a batch's documents are many objects and no cycle (_gc)
            with collector_paused():
                self._saves(batch, recorded)
        finally:
            self.deferred = False
            saved, self.saved = self.saved, []
            # What was saved is recorded, whatever stopped the batch: a save whose file a failed
            # flush did not name is not there, and is not recorded.
            self.auditor.saves([s for s in saved if self._version(s[0]) is not None])
            self.named = {}
        if self.push is not None and self.dir is not None:
            write_cursor(self.dir, self.push, self.epoch, self.key)
        done = set(mine)
        self.state.batch = [b for b in self.state.batch if b not in done]
        self._save_state()

    def _saves(self, batch: list[tuple[_Todo, uuid.UUID]], recorded: set[tuple[uuid.UUID, int, uuid.UUID]]) -> None:
        """The saves of a batch: every object fetched and checked first (one that fails leaves
        the vault as it was: no key added for a session that is not saved), then their keys added
        at once, the files written, fsynced and named at once, their indexing flushed at once
        (:meth:`.SessionStore.batch`).  A session a killed batch saved is there but, if the kill
        came before its audit record (which makes its mark durable), unmarked: its indexing and
        its ``save`` record are made now, not its file (docs/sync.md, "Pull")."""
        docs: dict[uuid.UUID, dict[str, Any]] = {}
        settle: set[uuid.UUID] = set()
        for t, sid in batch:
            present = (t.device, t.opened.seq, sid) in recorded and self._version(sid) is not None
            if present and self.store.marked(sid):
                continue  # saved and recorded before a kill
            try:
                docs[sid] = self.objects.document(t.device, t.opened.entry)
            except (KeyError, TypeError, ValueError) as exc:  # authenticates, but out of shape
                if isinstance(exc, SessionSealError):
                    raise
                raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} is malformed") from None
            if present:
                settle.add(sid)
        self.store.add_keys([sid for sid in docs if sid not in settle])
        with self.store.batch([sid for sid in docs if sid not in settle]) as named:
            for _, sid in batch:
                if sid in docs:
                    self._save(docs.pop(sid), sid, settle=sid in settle)
        self.named = named  # their versions as written: not read back from the files (_version)
        for t, sid in batch:  # once the batch's files have their names
            self._after(t, "put", sid, sid, written=True)
            self.state.applied[t.device] = (t.opened.seq, t.opened.mac)
            self.state.hlc = max(self.state.hlc, t.hlc)

    # -- the kinds ---------------------------------------------------------------------------

    def _put(self, t: _Todo, sid: uuid.UUID) -> None:
        doc = self.objects.document(t.device, t.opened.entry)
        if self._clean(sid) or self._version(sid) is None:
            # Built before the intent: its footprint is the BODY's hash (what a resume looks for).
            built = self.store.build(self._model(doc, sid), touch=False)
            self._write(t, "put", sid, lambda: self._save(doc, sid, built), foot=saved(built.body))
            self._after(t, "put", sid, sid)
        else:  # this device changed it and has not pushed that yet: both are kept
            self._fork(t, sid, doc)

    def _rebased(self, t: _Todo) -> None:
        """A log read from its rebase (this device holds no key of its entry 1): each session
        the rebase restates, as that device's ``session.put``, its line at the rebase's
        ``events`` (docs/spec/remote-v1.md, "Rebase and retirement").  Killed, all are put again."""
        pending = self.state.pending
        try:
            for record in t.opened.entry["sessions"]:
                if self._dead(record["session"]):
                    continue
                sid, events = uuid.UUID(str(record["session"])), int(record["events"])
                put = _Todo(t.device, dataclasses.replace(t.opened, entry={**record, "kind": "session.put"}), t.hlc)
                # The one a kill came after (those before it were recorded by its intent's save).
                at = (t.device, t.opened.seq, "put", sid)
                if pending is not None and pending[:4] == at and was_written(self.store, *pending[2:]):
                    self._after(put, "put", sid, sid, written=True)
                    continue
                self._put(put, sid)
                if self.state.lines.get((t.device, sid)) == (sid, 0):
                    self.state.lines[(t.device, sid)] = (sid, events)
                    self._synced(sid, events)
            log, payload = self.logs.get(t.device, ()), functools.partial(self.objects.payload, t.device)
            self.ckpts.restate(t.device, t.opened.entry, payload=payload, log=log, result=self.result, dead=self._dead)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SessionSealError):
                raise
            raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} is a malformed rebase") from None

    def _append(self, t: _Todo, sid: uuid.UUID) -> None:
        e = t.opened.entry
        ops = self._ops(t, self.objects.segment(t.device, e))
        line = self.state.lines.get((t.device, sid))
        if line is not None and line[0] != sid and self._version(line[0]) is not None:
            target = line[0]  # that device's line of this session is a fork here
            self._write(t, "append", target, lambda: self._append_ops(target, ops), ops)
            self._after(t, "append", sid, target)
            return
        version = self._version(sid)
        if version is None:
            self.result.skipped += 1  # a session this vault never had (a later put brings it)
            return
        if self._clean(sid) and self._pushed(sid).ops == int(e.get("base", -1)):
            self._write(t, "append", sid, lambda: self._append_ops(sid, ops), ops)
            self._after(t, "append", sid, sid)
            return
        self._fork(t, sid, self.objects.line(self.logs[t.device], t.device, t.opened.seq, sid, ops, store=self.store))

    def _meta(self, t: _Todo, sid: uuid.UUID) -> None:
        e = t.opened.entry
        name = str(e.get("field"))
        if name not in META_FIELDS:
            raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} is malformed")
        if self._version(sid) is None:
            self.result.skipped += 1
            return
        if name in self._unpushed_fields(sid) or not self._won(sid, name, t.hlc, t.device):
            # A change of this device not pushed yet is the later one: its push gives it a
            # clock past every clock read here.
            self.result.meta_older += 1
            return
        ops = self._ops(t, [{"op": "set", "value": {name: e.get("value")}}])
        self._write(t, "meta", sid, lambda: self._append_ops(sid, ops), ops)
        self._after(t, "meta", sid, sid)

    def _tombstone(self, t: _Todo) -> None:
        """Erase the sessions *t* names (docs/sync.md, "Deletes").  Each step can be done again:
        a pull killed midway finds what it did and goes on."""
        sids = self._tombstoned(t)
        self.state.dead.update(dead_tag(self.rid, sid) for sid in sids)
        present = [sid for sid in sids if self._version(sid) is not None]
        for sid in present:
            if not self._clean(sid):
                self._keep(t, sid)
        if present:  # one master-key rotation for them all (per batch), as a cleanup does
            self._write(t, "erase", present[0], functools.partial(self.erase, present, self.me))
            self.result.erased += len(present)
        for sid in sids:
            self._forget(sid)
        names = objects_of(self.logs.get(self.me, ()), {sid.bytes for sid in sids})
        deleted, kept = delete_objects(self.s3, _remote.device_prefix(self.url, self.me), names)
        self.result.objects_deleted += deleted
        self.result.objects_kept += kept

    def _keep(self, t: _Todo, sid: uuid.UUID) -> None:
        """This device changed *sid* and has not pushed that yet: nothing silently lost, its
        version is kept as a new session (unlinked: the erased one is gone), which the next
        push sends.  Its id and content come from the entry and the session: a pull resumed
        after a kill (the session not erased yet) saves the same copy again, which also records
        its mark if the kill came before the save's record (the push finds sessions by mark)."""
        keep_id = uuid.uuid5(FORK_NAMESPACE, f"{sid}/{t.device}/{t.opened.seq}/kept")
        source = orjson.loads(self.store.document(self.store.open(sid)))
        doc = _checkpoints.fork_document(source, keep_id, _made(t.hlc), title=None, continuation=False)
        doc["links"] = {**doc["links"], "forked_from": None}
        self._write(t, "keep", keep_id, lambda: self._save(doc, keep_id))
        self.result.kept += 1

    def _forget(self, sid: uuid.UUID) -> None:
        """Drop what the cursors hold of an erased session: never pushed again, no line or
        winner left (a fork made from it stays: a session of its own)."""
        s = self.state
        s.lines = {k: v for k, v in s.lines.items() if k[1] != sid}
        s.winners = {k: v for k, v in s.winners.items() if k[0] != sid}
        s.synced.pop(sid.bytes, None)
        if self.push is not None and self.push.sessions.pop(sid.bytes, None) is not None:
            assert self.dir is not None
            write_cursor(self.dir, self.push, self.epoch, self.key)

    def _tombstoned(self, t: _Todo) -> list[uuid.UUID]:
        try:
            return tombstone_sessions(t.opened.entry)
        except (KeyError, TypeError, ValueError):
            raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} is malformed") from None

    def _dead(self, value: Any) -> bool:
        """*value* (an entry's ``session``) names a session erased: by a tombstone applied or
        about to be, or here, its tombstone not pushed yet."""
        try:
            sid = uuid.UUID(str(value))
        except ValueError:
            return False  # malformed: refused where the entry is applied
        return sid in self.doomed or sid.bytes in self.erased_here or dead_tag(self.rid, sid) in self.state.dead

    def _fork(self, t: _Todo, sid: uuid.UUID, source: dict[str, Any]) -> None:
        fork_id = uuid.uuid5(FORK_NAMESPACE, f"{sid}/{t.device}/{t.opened.seq}")
        doc = _checkpoints.fork_document(source, fork_id, _made(t.hlc), title=None, continuation=False)
        doc["links"] = {**doc["links"], "forked_from": str(sid)}
        if self._version(fork_id) is None:
            self._write(t, "fork", fork_id, lambda: self._save(doc, fork_id))
        self._after(t, "fork", sid, fork_id)

    @staticmethod
    def _ops(t: _Todo, raw: Any) -> list[dict[str, Any]]:
        try:
            return _events.check_ops(raw)
        except InvalidInput:
            raise RemoteError(f"device {t.device.hex}'s entry {t.opened.seq} holds invalid operations") from None

    # -- writes and their bookkeeping ---------------------------------------------------------

    def _write(
        self,
        t: _Todo,
        kind: str,
        target: uuid.UUID,
        write: Callable[[], None],
        ops: list[Any] | None = None,
        *,
        foot: Footprint | None = None,
    ) -> None:
        version, foot = (self._version(target), foot) if ops is None else footprint(self.store, target, ops)
        self.state.pending = (t.device, t.opened.seq, kind, target, version, foot)
        self._save_state()
        write()

    def _after(self, t: _Todo, kind: str, sid: uuid.UUID, target: uuid.UUID, *, written: bool = False) -> None:
        """What follows a write: the counts, the line's place, the push cursor."""
        e = t.opened.entry
        if kind == "put":
            self.result.put += 1
            self.state.lines[(t.device, sid)] = (sid, 0)
            for f in e.get("meta") or {}:
                self._won(sid, str(f), t.hlc, t.device)
            self._synced(sid, 0)
        elif kind == "append":
            self.result.appended += 1
            self.state.lines[(t.device, sid)] = (target, int(e["events"]))
            self._synced(target, int(e["events"]) if target == sid else None)
        elif kind == "fork":
            self.result.forked += 1
            self.state.lines[(t.device, sid)] = (target, int(e.get("events", 0)))
            self._synced(target, None)
        else:
            self.result.meta += 1
            if written:
                self._won(sid, str(e["field"]), t.hlc, t.device)
            if self._clean_after_meta(sid):
                self._synced(sid, None)

    def _synced(self, sid: uuid.UUID, ops: int | None) -> None:
        """Mark *sid* as it is now as pushed (*ops*: its line's count; None: as it was)."""
        before = self._pushed(sid)
        if sid in self.named:  # a batch's new file, as written: no group appended
            now = Pushed(*self.named[sid], 0, before.ops if ops is None else ops)
        else:
            try:
                log = self.store.open(sid)
            except SessionNotFound:
                return
            now = Pushed(log.header.generation, log.end, len(log.events), before.ops if ops is None else ops)
        if self.push is not None:
            self.push.sessions[sid.bytes] = now
            self.push.hlc = max(self.push.hlc, self.state.hlc)
            assert self.dir is not None
            if not self.deferred:
                write_cursor(self.dir, self.push, self.epoch, self.key)
        else:
            self.state.synced[sid.bytes] = now

    def _pushed(self, sid: uuid.UUID) -> Pushed:
        got = (self.push.sessions if self.push is not None else self.state.synced).get(sid.bytes)
        return got if got is not None else Pushed(-1, -1, 0, 0)

    def _clean(self, sid: uuid.UUID) -> bool:
        """*sid* holds nothing this device has not pushed (or pulled)."""
        p = self._pushed(sid)
        return self._version(sid) == (p.generation, p.end)

    def _clean_after_meta(self, sid: uuid.UUID) -> bool:
        """Before the meta group just appended, *sid* was as pushed: one group more now."""
        p = self._pushed(sid)
        try:
            log = self.store.open(sid)
        except SessionNotFound:
            return False
        return log.header.generation == p.generation and len(log.events) == p.groups + 1

    def _unpushed_fields(self, sid: uuid.UUID) -> set[str]:
        """The metadata fields this device changed in *sid* and has not pushed yet (every
        field when the session was rewritten since)."""
        if self._clean(sid):
            return set()
        p = self._pushed(sid)
        log = self.store.open(sid)
        if log.header.generation != p.generation or len(log.events) < p.groups:
            return set(META_FIELDS)
        fields: set[str] = set()
        for payload in log.events[p.groups :]:
            for op in _events.check_ops(orjson.loads(_container.decode_payload(payload)).get("ops")):
                if op.get("op") == "set" and isinstance(op.get("value"), dict):
                    fields.update(op["value"])
        return fields

    def _version(self, sid: uuid.UUID) -> tuple[int, int] | None:
        if sid in self.named:
            return self.named[sid]
        try:
            log = self.store.open(sid)
        except SessionNotFound:
            return None
        return log.header.generation, log.end

    def _model(self, doc: dict[str, Any], sid: uuid.UUID) -> Session:
        from ..models import parse_session

        if str(doc.get("id")) != str(sid):
            raise RemoteError("a pulled session's object names another session")
        try:  # orjson.dumps refuses a document nested past 255 levels, which loads accepted
            model = parse_session(orjson.dumps(doc))
        except (InvalidInput, orjson.JSONEncodeError):
            raise RemoteError("a pulled session is not a valid session document") from None
        return model

    def _save(self, doc: dict[str, Any], sid: uuid.UUID, built: Built | None = None, *, settle: bool = False) -> None:
        """Save *doc* as *sid* (*built*: sanitized and serialized already, a put's footprint
        being its BODY: written as ``SessionStore.save`` does); *settle*: it is saved already,
        only its bookkeeping is missing (:meth:`_saves`), its record's counts made as its save
        made them."""
        if settle:
            built = self.store.build(self._model(doc, sid), touch=False)
            self.store.settle(sid)
            nbytes, counts = len(built.body), built.counts
        elif built is None:
            nbytes, counts = self.store.save(self._model(doc, sid), touch=False)
        else:
            self.store.write(sid, built.meta, built.body, doc=built.doc)
            nbytes, counts = len(built.body), built.counts
        if self.deferred:
            self.saved.append((sid, nbytes, counts))
        else:
            self.auditor.record("save", session=sid, nbytes=nbytes, redactions=counts)

    def _append_ops(self, sid: uuid.UUID, ops: list[dict[str, Any]]) -> None:
        nbytes, counts = self.store.append(sid, ops, touch=False)
        self.auditor.record("append", session=sid, nbytes=nbytes, redactions=counts, private={"events": len(ops)})

    # -- reading objects ---------------------------------------------------------------------

    def _planned(self, t: _Todo) -> tuple[str, int] | None:
        """The object *t* reads (key, size named), for the prefetch."""
        e = t.opened.entry
        if e.get("kind") not in _NAMING or "object" not in e or self._dead(e.get("session")):
            return None
        return self.objects.planned(t.device, e)

    def _save_state(self) -> None:
        if self.dir is not None and not self.dry_run:
            write_state(self.dir, self.state, self.rid, self.me, epoch=self.epoch, epoch_key=self.key)
