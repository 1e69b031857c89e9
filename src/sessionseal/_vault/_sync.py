"""``sessionseal sync --push``: this device's sessions into its log on a remote (issue 26;
docs/sync.md, "Push"; docs/spec/remote-v1.md).

A push sends what changed since the last one, found by comparing each session's mark in the key
table's state (its container generation and committed size) with what the cursor says was
pushed (:mod:`._synccursor`):

- a session new to the remote, or rewritten since (a save, a compaction, a rewrite): its whole
  stored document as a content object and a ``session.put`` entry;
- a session grown by appends: only the new groups' operations, as a segment object and a
  ``session.append`` entry naming the operation count it extends, so a push after one turn
  sends O(turn) bytes whatever the session's size; a group of metadata only (a rename, a tag,
  a pin) becomes ``session.meta`` entries, one per field, each with the writer's clock.

Order, so that a push killed anywhere loses nothing and writes nothing twice: content objects
are PUT first (named by their hash: a retry or an abandoned one never collides); then a batch's
entries are sealed and committed to the cursor's outbox, with the sessions they cover and the
signed head after them, in one atomic replace of the cursor; then the outbox is sent and
cleared.  A push starts by sending a killed one's outbox again (the same bytes under the same
names), then checks that the remote's log ends where the cursor says.

The first device on a remote makes the remote's id and epoch 1 (:meth:`Devices.start_remote`)
and writes its device record, the epoch's key object (K_1 wrapped for itself) and the ``epoch``
entry before anything else.  A device that finds other devices on the remote and holds no key
of it is refused: it must be enrolled first.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _compress, _container, _crypto, _events, _remote, _remotekeys, _remotelog
from .._container import FrameType, Kind
from .._fs import Dir, lock
from .._state import StateChange
from ..errors import InvalidInput, RemoteError, SessionNotFound
from ._auditing import Auditor, audited_by
from ._common import SUFFIX
from ._context import VaultContext
from ._devices import DeviceIdentity, Devices
from ._keys import Keys
from ._store import SessionStore
from ._syncapply import META_FIELDS, Applier, Erase
from ._syncckpt import CheckpointSync, Files
from ._synccursor import SYNC_DIR, Cursor, Pushed, read_cursor, write_cursor
from ._syncepochs import take_up_epochs
from ._syncfirst import epoch_one, first_entry
from ._syncprune import DEFAULT_MIN_AGE, PruneResult, prune
from ._syncpull import check_logs, list_remote
from ._syncrace import settle_epochs
from ._syncrebase import meta_of, rebase_entry, retire
from ._syncstate import PullResult, PushResult, pull_synced, read_state
from ._synctomb import Tombstones, push_tombstones
from ._syncwrapout import RACED, plan_wraps

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store

__all__ = ["Sync"]

_audited = audited_by(lambda sync: sync._auditor)

#: Sessions per committed batch: each batch is one cursor replace, one head and its entries.
BATCH_SESSIONS: Final = 64
#: ... or fewer, once the batch's objects reach this many bytes.
BATCH_BYTES: Final = 32 << 20
#: Progress: (sessions done, sessions to push, bytes sent so far).
Progress = Callable[[int, int, int], None]


class Sync:
    """The push behind ``vault.remotes.push``; ``devices``, this device's keys on each remote."""

    ckpts: CheckpointSync  # the checkpoints' entries both ways (:mod:`._syncckpt`), set by the wiring

    def __init__(
        self, ctx: VaultContext, keys: Keys, store: SessionStore, devices: Devices, auditor: Auditor, *, erase: Erase
    ) -> None:
        self._ctx = ctx
        self._erase = erase  # the vault's own delete, for the tombstones a pull applies
        self._keys = keys
        self._store = store
        self.devices = devices
        self._auditor = auditor
        #: One S3 client per remote for the life of the vault: making one costs boto3 about as
        #: much as a small push (its service model is loaded per client).
        self._stores: dict[tuple[str, str | None, str | None, str | None], S3Store] = {}

    def pick(self, name: str | None) -> RemoteConfig:
        """The remote called *name*, or the only one when *name* is None.

        :raises InvalidInput: no such remote, no remote at all, or several and none named.
        """
        if name is not None:
            return self.devices.remote(name)
        remotes = self.devices.remotes()
        if len(remotes) != 1:
            raise InvalidInput(
                "name the remote to sync with ('sessionseal remote list' shows them)"
                if remotes
                else "no remote to sync with; add one with 'sessionseal remote add NAME s3://BUCKET/PREFIX'"
            )
        return remotes[0]

    def appended_since(self, sid: uuid.UUID, before: Pushed) -> tuple[int, list[bytes]] | None:
        """The EVENTS payloads of the groups appended to *sid*'s file after *before* (its end
        then) and the new end, reading and decrypting only those bytes: O(turn) however large
        the session.  None when the file is another version than *before*'s (then the caller
        reads it whole).  The frames are bound to the header and their index (AES-GCM's
        associated data), so bytes moved, dropped or of another version fail authentication.
        """
        name = self._keys.file_name(sid) + SUFFIX
        try:
            with self._ctx.sessions.reader(name) as (read_at, size):
                header = _container.parse_unverified_header(read_at(0, _container.HEADER_SIZE))
                if header.generation != before.generation or size < before.end:
                    return None
                if header.kind != Kind.SESSION or header.vault_id != self._ctx.vault_id or header.object_id != sid:
                    return None
                dek = _crypto.unwrap_key(self._keys.key_for(sid), header.wrapped_dek, header.wrap_aad)
                tail = read_at(before.end, size - before.end)
        except FileNotFoundError:
            return None
        first = 2 + 2 * before.groups  # META, BODY, then (EVENTS, META) per group
        frames, _ = _container.open_frames_at(tail, header, dek, 0, first, torn_tail_ok=True)
        frames = frames[: len(frames) // 2 * 2]  # an EVENTS frame without its META is not committed
        if any(f.type != (FrameType.EVENTS, FrameType.META)[i % 2] for i, f in enumerate(frames)):
            return None
        end = before.end + sum(_container.frame_size(len(f.data)) for f in frames)
        return end, [f.data for f in frames[::2]]

    @_audited("sync.push")
    def push(
        self, remote: str | None = None, *, dry_run: bool = False, progress: Progress | None = None, auto: bool = False
    ) -> PushResult:
        """Send what changed since the last push to *remote* (the only one when None); with
        *dry_run*, say what would be sent and write nothing, here or there.  Audited
        (``sync.push``, counts and bytes only; ``auto`` when the automatic push ran it).

        :raises InvalidInput: no such remote, or a vault to migrate first.
        :raises RemoteError: the remote cannot be reached or refuses; this device's log there
            is not where the vault left it; other devices are there and this one is not enrolled.
        :raises MissingExtra: boto3 is not installed.
        :raises LockTimeout: another push of this vault is running.
        """
        config = self.pick(remote)
        s3 = self._store_of(config)
        # Outermost: before any session or vault lock (docs/design.md, "Locks").
        with lock(self._ctx.locks.path / "sync.lock", timeout=self._ctx.lock_timeout, what="a sync of this vault"):
            sync_dir = self._sync_dir(create=not dry_run)
            try:
                result = _Push(self, config, s3, sync_dir=sync_dir, dry_run=dry_run, progress=progress).run()
            finally:
                if sync_dir is not None:
                    sync_dir.close()
        self._auditor.record("sync.push", detail=result.counts() | ({"auto": True} if auto else {}))
        return result

    def commit_entries(
        self,
        config: RemoteConfig,
        entries: list[dict[str, Any]],
        objects: list[tuple[str, bytes]],
        *,
        new_epoch: tuple[int, bytes] | None = None,
    ) -> PushResult:
        """Seal *entries* after this device's log on *config* under its current epoch, with
        *objects* (names under its prefix, e.g. ``enroll/<device>``), through the push's own
        crash-safe path: a killed push's outbox sent first, the log checked to end where the
        cursor says, then entries, objects and head committed to the cursor's outbox in one
        atomic replace and sent.  No session is pushed.  For ``device enroll`` and ``device
        revoke``; not audited here (the caller is).  With *new_epoch* (a revocation's), its key
        is kept and the entries sealed under it only once the remote was reached and checked, so
        a remote that fails leaves no epoch held that no entry announces.

        :raises RemoteError: as :meth:`push`.
        :raises LockTimeout: a push of this vault is running.
        """
        s3 = self._store_of(config)
        with lock(self._ctx.locks.path / "sync.lock", timeout=self._ctx.lock_timeout, what="a sync of this vault"):
            sync_dir = self._sync_dir(create=True)
            assert sync_dir is not None
            try:
                push = _Push(self, config, s3, sync_dir=sync_dir, dry_run=False, progress=None)
                return push.run(extra=(entries, objects, new_epoch))
            finally:
                sync_dir.close()

    @_audited("sync.pull")
    def pull(self, remote: str | None = None, *, dry_run: bool = False, progress: Progress | None = None) -> PullResult:
        """Read every device's log on *remote* (the only one when None), check it (records,
        signed heads, chains, floors: :mod:`._syncpull`), then apply the other devices' entries
        this vault has not applied yet (:mod:`._syncapply`); with *dry_run*, count them and
        write nothing.  Audited (``sync.pull``, counts and bytes only).

        :raises InvalidInput: no such remote, none, or several and none named.
        :raises RemoteError: the remote cannot be reached, this device holds none of its keys,
            or a log or an object fails its check.
        :raises MissingExtra: boto3 is not installed.
        :raises LockTimeout: another sync of this vault is running.
        """
        config = self.pick(remote)
        s3 = self._store_of(config)
        with lock(self._ctx.locks.path / "sync.lock", timeout=self._ctx.lock_timeout, what="a sync of this vault"):
            listing = list_remote(s3, config)
            sync_dir = self._sync_dir(create=not dry_run)
            try:
                pickup = take_up_epochs(config, s3, self.devices, keep=not dry_run, listing=listing, sync_dir=sync_dir)
                check = check_logs(
                    config,
                    s3,
                    self.devices,
                    keys=pickup.keys,
                    listing=listing,
                    withheld=pickup.withheld,
                    fetched=pickup.fetched,
                    partial=pickup.partial,
                )
                check.taken, check.epochs_pending = len(pickup.taken), pickup.pending
                check.wraps_taken, check.wrap_refusals = pickup.wraps_taken, pickup.wrap_refusals
                tomb = Tombstones(self._ctx, self._keys, self.devices, config, s3)
                check.uncounted = tomb.uncounted(check) - {config.device}
                result = Applier(
                    config=config,
                    s3=s3,
                    devices=self.devices,
                    store=self._store,
                    auditor=self._auditor,
                    sync_dir=sync_dir,
                    check=check,
                    dry_run=dry_run,
                    progress=progress,
                    erase=self._erase,
                    ckpts=self.ckpts,
                    erased_here=self._keys.state(fresh=True).erased.get(config.device.bytes, frozenset()),
                ).run()
                if sync_dir is not None and not dry_run and check.revoked is None:
                    result.retire = retire(self._auditor, tomb, check, sync_dir)
                wraps = plan_wraps(tomb, check, pickup, listing, result)
            finally:
                if sync_dir is not None:
                    sync_dir.close()
        if wraps is not None:  # through the push's own path, which takes the sync lock itself
            self.commit_entries(config, *wraps)
            result.wrapped = len(wraps[0])
        if check.revoked is not None:  # what it could read is applied; the rest is not for it
            raise RemoteError(
                f"this device was revoked on the remote: device {check.revoked[1].hex} made epoch "
                f"{check.revoked[0]} without a key for it; what was written before is applied, nothing after "
                "can be read here" + RACED + "".join(f"; {r}" for r in check.wrap_refusals)
            )
        self._auditor.record("sync.pull", detail=result.counts())
        return result

    @_audited("sync.prune")
    def prune(
        self, remote: str | None = None, *, min_age: float = DEFAULT_MIN_AGE, dry_run: bool = False
    ) -> PruneResult:
        """Delete this device's content objects on *remote* that no entry of its log names and
        that are older than *min_age* seconds, under the sync lock (:mod:`._syncprune` says why
        that is safe); with *dry_run*, count them.  Audited (``sync.prune``, counts only).

        :raises RemoteError: unreachable; this device never pushed there; its log fails its check.
        :raises LockTimeout: another sync of this vault is running.
        """
        config = self.pick(remote)
        s3 = self._store_of(config)
        with lock(self._ctx.locks.path / "sync.lock", timeout=self._ctx.lock_timeout, what="a sync of this vault"):
            sync_dir = self._sync_dir(create=False)
            try:
                result = prune(config, s3, self.devices, sync_dir, min_age=min_age, dry_run=dry_run)
            finally:
                if sync_dir is not None:
                    sync_dir.close()
        self._auditor.record("sync.prune", detail=result.counts())
        return result

    def drop_erased(self, device: uuid.UUID) -> None:
        """Forget the erasures recorded for the next push of *device* (its remote was removed:
        none will come), so that no erased session's id stays in the key table for it."""
        with self._ctx.vault_lock():
            if self._keys.state(fresh=True).erased.get(device.bytes):
                self._keys.commit(StateChange(erased={device.bytes: frozenset()}))

    def witness(self, config: RemoteConfig) -> dict[uuid.UUID, tuple[int, bytes]]:
        """What this device applied of every other device's log on *config* (its pull cursor's
        ``applied``): the witness vector its heads and enrolments carry (docs/spec/remote-v1.md,
        "Heads"); empty before its first pull."""
        held = self.devices.epoch_keys(config)
        rid = self.devices.identity(config).remote_id if held else None
        sync_dir = self._sync_dir(create=False)
        if rid is None or sync_dir is None:
            return {}
        try:
            applied = read_state(sync_dir, rid, config.device, held).applied
        finally:
            sync_dir.close()
        return {dev: at for dev, at in applied.items() if dev != config.device}

    def _store_of(self, config: RemoteConfig) -> S3Store:
        from .. import _s3

        where = (config.url, config.endpoint, config.profile, config.region)
        s3 = self._stores.get(where)
        if s3 is None:
            url = _remote.parse_url(config.url)
            s3 = _s3.open_store(url, endpoint=config.endpoint, profile=config.profile, region=config.region)
            self._stores[where] = s3
        return s3

    def _sync_dir(self, *, create: bool) -> Dir | None:
        """``sync/``, where the cursors are (made by the first push; a dry run makes nothing)."""
        if not create and not self._ctx.root.exists(SYNC_DIR):
            return None
        return self._ctx.root.sub(SYNC_DIR, create=create)


@dataclass
class _Batch:
    entries: list[dict[str, Any]] = field(default_factory=list)
    pushed: dict[bytes, Pushed] = field(default_factory=dict)
    nbytes: int = 0


class _Push:
    """One push, under the sync lock."""

    def __init__(
        self,
        sync: Sync,
        config: RemoteConfig,
        s3: S3Store,
        *,
        sync_dir: Dir | None,
        dry_run: bool,
        progress: Progress | None,
    ) -> None:
        self.sync, self.config, self.s3 = sync, config, s3
        self.url = url = _remote.parse_url(config.url)
        self.dir, self.dry_run, self.progress = sync_dir, dry_run, progress
        self.devices = sync.devices
        self.prefix = _remote.device_prefix(url, config.device)
        self.result = PushResult(config.name, config.device, dry_run)
        self.epoch, self.key = 0, b""
        #: Set before anything is sealed: the remote's id and this device's keys on it.
        self.rid = uuid.UUID(int=0)
        self.dkeys = _remotekeys.DeviceKeys(b"", b"")
        self.cursor = Cursor(uuid.UUID(int=0), config.device)
        #: What this device applied of the others' logs: its heads' witness vector.
        self.witnessed: dict[uuid.UUID, tuple[int, bytes]] | None = None
        self.tomb: Tombstones | None = None  # the tombstone step's, for the rebase: its log read

    # -- the steps ---------------------------------------------------------------------------

    def run(
        self,
        extra: tuple[list[dict[str, Any]], list[tuple[str, bytes]], tuple[int, bytes] | None] | None = None,
    ) -> PushResult:
        """The push; with *extra* (entries, objects, a new epoch), those are committed in place
        of sessions (:meth:`Sync.commit_entries`)."""
        held = self.devices.epoch_keys(self.config)
        ident = None if self.dry_run and not held else self.devices.identity(self.config)
        cursor = None
        if ident is not None and ident.remote_id is not None and held and self.dir is not None:
            cursor = read_cursor(self.dir, ident.remote_id, self.config.device, held)
        if cursor is None:
            self._first(ident, held)
        else:
            assert ident is not None  # a cursor is read with this device's keys only
            self.rid, self.dkeys, self.cursor = cursor.remote, ident.keys, cursor
            self.epoch, self.key = self.devices.current_epoch(self.config)
            if self.dry_run:  # what a killed push left is counted, not sent
                self._check_remote(cursor.confirmed, {k for k, _ in cursor.outbox})
            self._flush()
            if not self.dry_run:
                self._check_remote(cursor.seq, set())
        if extra is not None:
            self._commit_epoch(extra[0], list(extra[1]), extra[2])
        else:
            self._tombstones()
            self._sessions()
            self._rebase()
        self.result.seq, self.result.epoch = self.cursor.seq, self.cursor.epoch or self.epoch
        return self.result

    def _first(self, ident: DeviceIdentity | None, held: dict[int, bytes]) -> None:
        """A first push from this device: nothing of its log may be on the remote yet."""
        if self.s3.list(self.prefix + "log/"):
            raise RemoteError(
                "this device's log on the remote is ahead of the vault's record of it: the vault's sync "
                "state is missing or older (restored from a backup?), or another copy of this vault pushes "
                "as this device; nothing was sent"
            )
        others = [
            k
            for k, _ in self.s3.list(self.url.key("d") + "/")
            if k.endswith("/device") and not k.startswith(self.prefix)
        ]
        make_epoch = not others and (not held or set(held) == {1})
        if not held and others:
            raise RemoteError(
                "the remote holds other devices' logs and this device holds none of its keys: enrol it "
                "from a device already there before it pushes (docs/sync.md); nothing was sent"
            )
        if ident is None:  # a dry run before any key exists: sizes are the same under any key
            keys = _remotekeys.DeviceKeys.generate()
            ident = DeviceIdentity(self.config.device, keys.x25519, keys.ed25519, "", uuid.uuid4())
            self.epoch, self.key = 1, _crypto.new_key()
        else:
            rid = ident.remote_id if held else self.devices.start_remote(self.config)
            ident = self.devices.identity(self.config)
            if rid is None or ident.remote_id != rid:
                raise RemoteError("this device's keys name no remote id: enrol it again (docs/sync.md)")
            self.epoch, self.key = self.devices.current_epoch(self.config)
        if ident.remote_id is None:
            raise RemoteError("this device's keys name no remote id: enrol it again (docs/sync.md)")
        self.rid, self.dkeys = ident.remote_id, ident.keys
        self.cursor = Cursor(ident.remote_id, self.config.device)
        if held:  # what pulls wrote before this first push is not this device's to send
            self.cursor.sessions.update(pull_synced(self.dir, ident.remote_id, self.config.device, held))
        self.result.first = make_epoch
        outbox: list[tuple[str, bytes]] = []
        if make_epoch or not self.s3.exists(self.prefix + "device"):
            outbox.append(("device", ident.record()))
        entries = []
        if make_epoch:
            made = epoch_one(self.s3, self.prefix, self.rid, self.key, ident, dry_run=self.dry_run)
            if made.new:
                outbox.append((f"keys/{1:08x}", made.data))
            entries.append(first_entry(ident, made.data))
        self._commit(entries, {}, outbox)

    def _commit_epoch(
        self, entries: list[dict[str, Any]], outbox: list[tuple[str, bytes]], new_epoch: tuple[int, bytes] | None
    ) -> None:
        """Commit *entries* and *outbox*, sealed under *new_epoch* when given (kept first, once
        the remote was reached and checked; a dry run keeps nothing)."""
        if new_epoch is not None:
            if not self.dry_run:
                self.devices.add_epoch_key(self.config, *new_epoch)
            self.epoch, self.key = new_epoch
        self._commit(entries, {}, outbox)

    def _tombstones(self) -> None:
        """Sessions erased here since the last push: a tombstone under a new epoch, then this
        device's own objects of them deleted (docs/sync.md, "Deletes"; :mod:`._synctomb`)."""
        if self.dry_run and self.dir is None:
            return  # never pushed: nothing of this vault is on the remote to tombstone
        tomb = self.tomb = Tombstones(self.sync._ctx, self.sync._keys, self.devices, self.config, self.s3)
        # A raced newest epoch is settled first; then seal under the newest held (maybe just taken up).
        dry, commit, here = self.dry_run, self._commit_epoch, self.dir
        if not settle_epochs(tomb, self.rid, self.dkeys.x25519_public, dry_run=dry, commit=commit, sync_dir=here):
            self.epoch, self.key = self.devices.current_epoch(self.config)
        named, deleted, kept = push_tombstones(
            tomb, self.cursor, self.rid, self.dkeys.x25519_public, dry_run=dry, commit=commit, sync_dir=here
        )
        self.result.tombstoned, self.result.objects_deleted, self.result.objects_kept = named, deleted, kept

    def _rebase(self) -> None:
        """Once this device holds a newer epoch than its log's last rebase: a ``rebase`` entry."""
        if not self.dry_run and max(self.cursor.rebased, 1) < self.epoch:  # epoch 1 is no one's to rebase
            tomb = self.tomb or Tombstones(self.sync._ctx, self.sync._keys, self.devices, self.config, self.s3)
            batch = _Batch()
            seal, store = (lambda d: self._object(d, batch)), self.sync._store
            entry = rebase_entry(tomb, self.cursor, self.epoch, store, seal, ckpts=self.sync.ckpts)
            if entry is not None:
                self.cursor.rebased, self.result.rebased = self.epoch, len(entry["sessions"])
                self._commit([entry], {}, [])

    def _check_remote(self, seq: int, pending: set[str]) -> None:
        """The remote's log ends at entry *seq* (the cursor's last, once the outbox went out),
        but for the *pending* names of the outbox."""
        after = self.s3.list(self.prefix + "log/", start_after=self.prefix + _log(seq) if seq else None)
        if any(key[len(self.prefix) :] not in pending for key, _ in after):
            raise RemoteError(
                "this device's log on the remote is ahead of the vault's record of it: the vault's sync "
                "state is older (restored from a backup?), or another copy of this vault pushes as this "
                "device; nothing was sent"
            )
        if seq and not self.s3.exists(self.prefix + _log(seq)):
            raise RemoteError(
                f"entry {seq} of this device's log, which this device sent, is missing from the remote: "
                "the bucket was cut or rolled back; nothing was sent"
            )

    def _sessions(self) -> None:
        marks, pushed, stamp = self.sync._keys.state(fresh=True).marks, self.cursor.sessions, self.cursor.ckpts_dir
        ckpts = self.sync.ckpts.changed(self.cursor, marks)
        todo = sorted(
            {s for s, m in marks.items() if (p := pushed.get(s)) is None or (p.generation, p.end) != m} | set(ckpts)
        )
        done = 0
        batch = _Batch()
        for sid in todo:
            self._session(sid, marks[sid], batch)
            done += 1
            if len(batch.pushed) >= BATCH_SESSIONS or batch.nbytes >= BATCH_BYTES:
                self._commit(self._ckpts(batch, ckpts), batch.pushed, [])
                batch = _Batch()
                if self.progress is not None:
                    self.progress(done, len(todo), self.result.bytes)
        if batch.pushed:
            self._commit(self._ckpts(batch, ckpts), batch.pushed, [])
        if self.progress is not None and todo:
            self.progress(done, len(todo), self.result.bytes)
        if not todo and self.cursor.ckpts_dir != stamp:
            self._save()  # the checkpoints' stamp: the next push reads no header (``_syncckpt``)

    def _ckpts(self, batch: _Batch, ckpts: dict[bytes, Files]) -> list[dict[str, Any]]:
        """*batch*'s entries, then its sessions' checkpoint entries after them all (:mod:`._syncckpt`)."""
        put = lambda body: self._object(body, batch)  # noqa: E731
        self.sync.ckpts.push(self.cursor, batch.pushed, ckpts, entries=batch.entries, put=put, result=self.result)
        return batch.entries

    def _session(self, sid: bytes, mark: tuple[int, int], batch: _Batch) -> None:
        session_id = uuid.UUID(bytes=sid)
        before = self.cursor.sessions.get(sid)
        if before is not None and mark[0] == before.generation:
            recent = self.sync.appended_since(session_id, before)
            if recent is not None:  # the same version, grown by appends: read only what it grew by
                end, payloads = recent
                now = Pushed(before.generation, end, before.groups + len(payloads), 0)
                self._appended(session_id, before, now, payloads, batch)
                return
        try:
            log = self.sync._store.open(session_id)
        except SessionNotFound:
            return  # erased since the marks were read: a tombstone's business (docs/sync.md)
        generation, end, groups = log.header.generation, log.end, len(log.events)
        if before is None or before.generation != generation or groups < before.groups:
            doc = self.sync._store.document(log)
            name, size = self._object(doc, batch)
            meta = meta_of(orjson.loads(doc))
            batch.entries.append(
                {
                    "kind": "session.put",
                    "session": str(session_id),
                    "object": name,
                    "size": size,
                    "events": 0,
                    "meta": meta,
                }
            )
            batch.pushed[sid] = Pushed(generation, end, groups, 0)
            self.result.put += 1
            self.result.sessions += 1
            return
        self._appended(session_id, before, Pushed(generation, end, groups, 0), log.events[before.groups :], batch)

    def _appended(
        self, session_id: uuid.UUID, before: Pushed, now: Pushed, payloads: list[bytes], batch: _Batch
    ) -> None:
        """The groups appended since *before* (their EVENTS payloads): segments and metadata."""
        ops_total, segment = before.ops, list[dict[str, Any]]()
        for payload in payloads:
            ops = _events.check_ops(orjson.loads(_container.decode_payload(payload)).get("ops"))
            if _meta_only(ops):
                ops_total = self._segment(session_id, ops_total, segment, batch)
                segment = []
                for op in ops:
                    for key, value in op["value"].items():
                        batch.entries.append(
                            {"kind": "session.meta", "session": str(session_id), "field": key, "value": value}
                        )
                        self.result.meta += 1
            else:
                segment.extend(ops)
        ops_total = self._segment(session_id, ops_total, segment, batch)
        batch.pushed[session_id.bytes] = dataclasses.replace(now, ops=ops_total)
        if payloads:
            self.result.sessions += 1

    def _segment(self, session_id: uuid.UUID, base: int, ops: list[dict[str, Any]], batch: _Batch) -> int:
        """A ``session.append`` of *ops* (none: nothing); returns the line's operation count after it."""
        if not ops:
            return base
        name, size = self._object(b"\n".join(orjson.dumps(op) for op in ops) + b"\n", batch)
        batch.entries.append(
            {
                "kind": "session.append",
                "session": str(session_id),
                "base": base,
                "object": name,
                "size": size,
                "events": base + len(ops),
            }
        )
        self.result.appended += 1
        return base + len(ops)

    # -- writing ---------------------------------------------------------------------------------

    def _object(self, payload: bytes, batch: _Batch) -> tuple[str, int]:
        """Seal and PUT a content object (before any entry names it); its name and size."""
        frame = _compress.compress(payload)[1:]  # a bare zstd frame (docs/spec/remote-v1.md)
        name, data = _remotelog.seal_object(self.key, self.rid, self.config.device, self.epoch, frame)
        self._put(f"o/{name}", data)
        self.result.objects += 1
        batch.nbytes += len(data)
        return name, len(data)

    def _put(self, key: str, data: bytes) -> None:
        if not self.dry_run:
            self.s3.put(self.prefix + key, data, taken=_remote.taken_refusal(key))
        self.result.bytes += len(data)

    def _commit(
        self, entries: Iterable[dict[str, Any]], pushed: dict[bytes, Pushed], outbox: list[tuple[str, bytes]]
    ) -> None:
        """Seal *entries* after the log's end, commit them with their head, *pushed* and
        *outbox* to the cursor in one atomic replace, then send the outbox."""
        c, rid, dev = self.cursor, self.rid, self.config.device
        sealed = 0
        for entry in entries:
            c.hlc = _remotelog.hlc_next(c.hlc, time.time_ns() // 1_000_000)
            data, mac = _remotelog.seal_entry(
                self.key, rid, dev, epoch=self.epoch, seq=c.seq + 1, prev=c.mac, entry={**entry, "hlc": f"{c.hlc:016x}"}
            )
            c.seq, c.mac, c.epoch, c.rebased = c.seq + 1, mac, self.epoch, c.rebased if c.seq else self.epoch
            outbox.append((_log(c.seq), data))
            sealed += 1
        if sealed:
            if self.witnessed is None:  # read once: no pull runs under the sync lock meanwhile
                self.witnessed = {} if self.dry_run else self.sync.witness(self.config)
            head = _remotelog.sign_head(
                self.dkeys, rid, dev, epoch=c.epoch, seq=c.seq, mac=c.mac, hlc=c.hlc, witness=self.witnessed
            )
            outbox.append((f"head/{c.seq:016x}", head))
        self.result.entries += sealed
        c.sessions.update(pushed)
        if not outbox:
            if pushed:
                self._save()  # only versions moved (nothing to send): remembered all the same
            return
        c.outbox.extend(outbox)
        c.pending += sealed
        self._save()
        self._flush(resent=False)

    def _flush(self, *, resent: bool = True) -> None:
        """Send the outbox, in order, then clear it in the cursor."""
        c = self.cursor
        if not c.outbox:
            return
        for key, data in c.outbox:
            self._put(key, data)
            if resent:
                self.result.resent += 1
        c.outbox, c.pending = [], 0
        self._save()

    def _save(self) -> None:
        if self.dir is not None and not self.dry_run:
            write_cursor(self.dir, self.cursor, self.epoch, self.key)


def _log(seq: int) -> str:
    return f"log/{seq:016x}"


def _meta_only(ops: list[dict[str, Any]]) -> bool:
    return bool(ops) and all(
        op.get("op") == "set" and isinstance(op.get("value"), dict) and op["value"] and set(op["value"]) <= META_FIELDS
        for op in ops
    )
