"""Erasure: deleting sessions (crypto-erase by key rotation), rekeying, retention and cleanup,
and the sweeps of what killed writers and cut-short erasures leave behind (docs/secure-deletion.md,
docs/retention.md).

Never removes data on inference: a session or checkpoint file goes when the erasure that takes
its key out of the key table overwrites it, or later only if that erasure recorded its tomb
(:func:`entomb`; docs/reliability.md, "Erasure is explicit"), a temp file only once its writer
is dead.  A keyless file without a tomb is reported, never removed.  Lock order: the cleanup
lock, then session locks, then the vault lock.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _keystore
from .._audit import AUDIT_DIR
from .._container import Kind
from .._fs import Dir
from .._keytable import KeyTable
from .._state import StateChange, tomb_of
from ..errors import InvalidInput, LockTimeout, SessionSealError
from . import _common
from ._ckpts import Checkpoints
from ._common import SUFFIX, no_session
from ._context import VaultContext
from ._ftsfiles import FTS_DIR
from ._keys import Keys
from ._results import CleanupResult
from ._store import SessionStore

if TYPE_CHECKING:
    from .._config import VaultConfig
    from .._retention import CleanupPlan, Decision, RetentionConfig
    from ..models import SessionSummary

#: Sessions erased per key rotation by cleanup: bounds the session locks held at once.
CLEANUP_BATCH: Final = 128
#: When the next automatic cleanup is due (only with retention.auto_interval).
AUTO_FILE: Final = "autoclean.json"


class Erasure:
    """Deletes, rekeys and cleans up one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        store: SessionStore,
        checkpoints: Checkpoints,
        *,
        audit: Callable[..., None],
        audit_erasures: Callable[[Sequence[tuple[uuid.UUID, bytes | None, dict[str, Any]]]], None],
        audit_failure: Callable[[str, SessionSealError], None],
        read_config: Callable[[], VaultConfig],
        summaries: Callable[[], tuple[list[SessionSummary], list[str]]],
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._store = store
        self._checkpoints = checkpoints
        self._audit = audit
        self._audit_erasures = audit_erasures
        self._audit_failure = audit_failure
        self._read_config = read_config
        self._summaries = summaries

    def delete(self, sid: uuid.UUID, *, spare: uuid.UUID | None = None) -> None:
        """Crypto-erase a session (:meth:`Vault.delete`), and record it (under its lock); with
        *spare* (a pull applying a tombstone from that remote device), no tombstone of this
        device's own is recorded for that remote (docs/sync.md, "Deletes")."""
        name = self._keys.file_name(sid)
        self._keys.check_writable()  # a rolled-back vault erases nothing (issue 20)
        with self._ctx.session_lock(name, sid):
            has_file = self._ctx.sessions.exists(name + SUFFIX)
            # A link, device or foreign file at its names is refused before anything is erased:
            # once the key is gone, nothing would be left to say why the file stayed.
            self._ctx.sessions.check(name + SUFFIX)
            for _, fname in self._checkpoints.files(name):
                self._ctx.ckpts.check(fname)
            files = self.files_of(name)
            with self._ctx.vault_lock(), self._ctx.mutex:
                table = self._keys.keytable(fresh=True)
                if sid not in table.session_keys and not has_file:
                    raise no_session(sid)
                epoch = table.kek_epoch
                erased_key = table.session_keys.get(sid)  # for the tag of the 'delete' record only
                if sid in table.session_keys:
                    del table.session_keys[sid]
                    entomb(table, {sid: files}, spare=spare)
                    epoch = self._keys.rotate_or_forget(table)
            # The session is gone once the rotation is durable; overwriting is best effort, and a
            # file left behind is removed by 'verify --repair' or the next cleanup (its tomb is
            # in the rotated table).  The files of a session whose key was gone already (an
            # earlier delete cut short, or a key table put back) go too: their owner named them.
            shredded = self.shred_files(files)
            # Not the number of checkpoints: it measures the erased session (docs/spec/audit-log.md).
            detail = {"epoch": epoch, "overwritten": shredded}
            # By tag only; a file without a key (an earlier delete cut short) is named by nothing.
            self._audit("delete", session=sid, session_key=erased_key, detail=detail)
            # The lock file stays: unlinking a held flock file would let a waiter on the old
            # inode and a newcomer on a new one both "hold" the lock.

    def delete_many(self, sids: Sequence[uuid.UUID], *, spare: uuid.UUID | None = None) -> int:
        """Crypto-erase *sids*, as :meth:`delete` does, with one rotation per batch of up to
        :data:`CLEANUP_BATCH` (a tombstone applied by a pull names many sessions at once, as a
        cleanup erases many); a session whose key is gone already is left as it is.  Each is
        audited as ``delete``; *spare* as in :meth:`delete`.  Returns how many were erased."""
        self._keys.check_writable()  # a rolled-back vault erases nothing (issue 20)
        erased = 0
        for start in range(0, len(sids), CLEANUP_BATCH):
            erased += self._delete_batch(sids[start : start + CLEANUP_BATCH], spare)
        return erased

    def _delete_batch(self, sids: Sequence[uuid.UUID], spare: uuid.UUID | None) -> int:
        with contextlib.ExitStack() as stack:
            ready: list[tuple[uuid.UUID, str]] = []
            # Session locks in one order (by file name), then the vault lock, as everywhere.
            for sid in sorted(sids, key=self._keys.file_name):
                name = self._keys.file_name(sid)
                stack.enter_context(self._ctx.session_lock(name, sid))
                # Refused before anything is erased, as in delete: a link, device or foreign file.
                self._ctx.sessions.check(name + SUFFIX)
                for _, fname in self._checkpoints.files(name):
                    self._ctx.ckpts.check(fname)
                ready.append((sid, name))
            files = {sid: self.files_of(name) for sid, name in ready}
            with self._ctx.vault_lock(), self._ctx.mutex:
                table = self._keys.keytable(fresh=True)
                gone = {sid: table.session_keys.pop(sid, None) for sid, _ in ready}
                erasing = {sid: files[sid] for sid, key in gone.items() if key is not None}
                if not erasing:
                    return 0
                entomb(table, erasing, spare=spare)
                epoch = self._keys.rotate_or_forget(table)
            erased: list[tuple[uuid.UUID, bytes | None, dict[str, Any]]] = []
            for sid, its_files in erasing.items():
                # Gone once the rotation is durable; overwriting is best effort (tombs recorded).
                overwritten = self.shred_files(its_files)
                erased.append((sid, gone[sid], {"epoch": epoch, "overwritten": overwritten}))
            self._audit_erasures(erased)
        return len(erased)

    def files_of(self, name: str) -> list[tuple[Dir, str, bytes | None]]:
        """A session's files (its session file, then its checkpoints) with the tomb of each (None:
        not a container: nothing later could tell it from damage).  The caller holds the session's
        lock, so they stay as they are until they are overwritten."""
        out: list[tuple[Dir, str, bytes | None]] = []
        places = [(self._ctx.sessions, name + SUFFIX)] + [
            (self._ctx.ckpts, f) for _, f in self._checkpoints.files(name)
        ]
        for d, fname in places:
            if not d.exists(fname):
                continue
            header = _common.read_header(d, fname)
            out.append((d, fname, None if header is None else tomb_of(header.raw)))
        return out

    def shred_files(self, files: Sequence[tuple[Dir, str, bytes | None]]) -> bool:
        """Overwrite and unlink an erased session's *files* (best effort), and note the tombs of
        those that went (committed with the operation's audit record).  Returns whether the
        session file was overwritten."""
        overwritten, untombs = False, set()
        for d, fname, tomb in files:
            try:
                done = d.shred(fname)
            except SessionSealError:
                continue
            overwritten |= done and d is self._ctx.sessions
            if tomb is not None:
                untombs.add(tomb)
        if untombs:
            self._keys.note(StateChange(untombs=untombs))
        return overwritten

    def rekey(self, *, from_keyring_file: bool) -> tuple[int, int, int]:
        """Rotate the master key (:meth:`Vault.rekey`); returns the old and new epochs and how
        many keyrings.alt copies were removed."""
        with self._ctx.vault_lock(), self._ctx.mutex:
            copies = self._keys.adopt_file_key() if from_keyring_file else []
            table = self._keys.keytable(fresh=True)
            old = table.kek_epoch
            epoch = self._keys.rotate(table)
            # The keychain now holds only the new key (read back by store): the files' copies
            # are of keys that open no current table.  Removed only now, never before.
            removed = sum(_keystore.remove_file_copy(c, self._ctx.vault_id) for c in copies)
        return old, epoch, removed

    def cleanup(
        self,
        policy: RetentionConfig | Mapping[str, Any] | None,
        *,
        plan: CleanupPlan | None,
        now: datetime | None,
        progress: Callable[[int, int], None] | None,
    ) -> CleanupResult:
        """Carry out *plan*, or plan *policy* (default: the config's), under the cleanup lock."""
        with self._ctx.cleanup_lock():
            return self.cleanup_locked(plan or self.plan(self.policy(policy), now), progress, auto=False)

    def policy(self, policy: RetentionConfig | Mapping[str, Any] | None) -> RetentionConfig:
        from .._retention import RetentionConfig
        from ..models import parse_model

        if policy is None:
            return self._read_config().retention
        return parse_model(RetentionConfig, policy, "retention policy")

    def plan(self, policy: RetentionConfig, now: datetime | None) -> CleanupPlan:
        from .._retention import plan_retention

        if not policy.has_rules():
            raise InvalidInput(
                "no retention policy: set 'retention' in the vault config, or pass rules such as "
                "--max-age 90d or --keep-last 20"
            )
        summaries, problems = self._summaries()
        plan = plan_retention(summaries, policy, now or _common.now())
        table = self._keys.keytable(fresh=True)
        orphans, others = self.orphans(table)
        orphan_ckpts, other_ckpts = self.orphan_checkpoints(table)
        plan.orphans = len(orphans) + len(orphan_ckpts)
        plan.keyless = others + other_ckpts
        if plan.keyless:
            plan.warnings.append(
                f"{plan.keyless} file(s) have no key in the key table and no record of an erasure (missing-key); "
                "they were left alone: run 'sessionseal verify'"
            )
        if problems:
            plan.warnings.append(f"{len(problems)} unreadable session file(s) were left alone; run 'sessionseal list'")
        return plan

    def cleanup_locked(
        self, plan: CleanupPlan, progress: Callable[[int, int], None] | None, *, auto: bool
    ) -> CleanupResult:
        self._keys.check_writable()  # a rolled-back vault erases nothing (issue 20)
        result = CleanupResult(plan=plan)
        todo = plan.remove
        for start in range(0, len(todo), CLEANUP_BATCH):
            self.erase_batch(todo[start : start + CLEANUP_BATCH], result)
            if progress is not None:
                progress(min(start + CLEANUP_BATCH, len(todo)), len(todo))
        result.orphans_removed = self.sweep_orphans()
        result.temp_removed = self.sweep_temp_files()
        # A run of the config's own policy restarts the automatic interval.  The erasures are
        # done: a config that cannot be read now must not turn them into a failure.
        with contextlib.suppress(SessionSealError):
            if plan.policy == self._read_config().retention:
                self.schedule_auto(plan.policy.auto_interval)
        self._audit(
            "cleanup",
            detail={
                "auto": auto,
                "removed": len(result.removed),
                "skipped": len(result.skipped),
                "kept": len(plan.keep),
                "orphans": result.orphans_removed,
                "temp_files": result.temp_removed,
                "epoch": result.epoch,
            },
        )
        return result

    def erase_batch(self, batch: Sequence[Decision], result: CleanupResult) -> None:
        """Crypto-erase a batch with one rotation, then overwrite its files.

        Each session's lock is taken without waiting (one being written is in use: skipped)
        and its stored version compared with the planned one (saved since: skipped).  Lock
        order is kept: session locks, then the vault lock.
        """
        with contextlib.ExitStack() as stack:
            ready: list[tuple[Decision, str]] = []
            for d in batch:
                sid = d.session.id
                name = self._keys.file_name(sid)
                try:
                    stack.enter_context(self._ctx.session_lock(name, sid, timeout=0))
                except LockTimeout:
                    result.skipped.append((sid, "in use"))
                    continue
                generation = self._store.stored_generation(name + SUFFIX)
                if generation != d.session.generation:
                    result.skipped.append((sid, "gone" if generation is None else "saved since it was planned"))
                    continue
                ready.append((d, name))
            if not ready:
                return
            # Each file's tomb, read under the session locks: what the rotation records as left
            # to overwrite (the only keyless files a later sweep may remove).
            files = {d.session.id: self.files_of(name) for d, name in ready}
            with self._ctx.vault_lock(), self._ctx.mutex:
                table = self._keys.keytable(fresh=True)
                # Each erased session's key, for the tag of its 'delete' record only.
                gone = {d.session.id: table.session_keys.pop(d.session.id, None) for d, _ in ready}
                # A session whose key went meanwhile (another process erased it) is not ours to
                # overwrite: its eraser recorded what it left, or nothing proves it erased.
                entomb(table, {sid: files[sid] for sid, key in gone.items() if key is not None})
                result.epoch = self._keys.rotate_or_forget(table)
            erased: list[tuple[uuid.UUID, bytes | None, dict[str, Any]]] = []
            for d, _ in ready:
                sid = d.session.id
                if gone[sid] is None:
                    result.skipped.append((sid, "gone"))
                    continue
                # The session is gone once the rotation is durable; overwriting is best effort
                # and a file left behind is swept by the next cleanup (its tomb is recorded).
                overwritten = self.shred_files(files[sid])
                if any(d_.exists(f) for d_, f, _ in files[sid]):
                    result.warnings.append(f"session {sid}: its files could not be overwritten")
                result.removed.append(sid)
                result.bytes_freed += d.session.size_stored
                detail = {"cleanup": True, "rule": d.rule, "epoch": result.epoch, "overwritten": overwritten}
                erased.append((sid, gone[sid], detail))
            self._audit_erasures(erased)

    def orphans(self, table: KeyTable) -> tuple[list[tuple[str, uuid.UUID]], int]:
        """Session files whose key is not in *table*, at their own name: those whose tomb is in
        the state (left by a delete killed between its rotation and its overwrite), and how many
        others there are.  Only the former are ever removed: a keyless file without a tomb may
        be a session whose key a key table put back from an older backup lacks (``missing-key``
        for 'verify'), and a file at another name is damage; neither is ours to remove."""
        out: list[tuple[str, uuid.UUID]] = []
        others = 0
        for fname in sorted(self._ctx.sessions.names()):
            if not fname.endswith(SUFFIX) or fname.startswith("."):
                continue
            found = self.keyless(fname, table)
            if found is None:
                continue
            sid, tomb = found
            if tomb is not None:
                out.append((fname, sid))
            else:
                others += 1
        return out, others

    def keyless(self, fname: str, table: KeyTable) -> tuple[uuid.UUID, bytes | None] | None:
        """A session file at its own name whose key is not in *table*: its id, and its tomb if
        the state holds it (else None); None for anything else."""
        header = _common.read_header(self._ctx.sessions, fname)
        if header is None:
            return None
        sid = header.object_id
        if header.kind != Kind.SESSION or sid in table.session_keys or self._keys.file_name(sid) + SUFFIX != fname:
            return None
        return sid, tomb_of(header.raw) if self._keys.tombed(header.raw) else None

    def sweep_orphans(self) -> int:
        # Under the vault lock no key is added, and a session's key is in the table before its
        # file exists: a file without a key here is a leftover, never a session being created.
        removed = 0
        with self._ctx.vault_lock(), self._ctx.mutex:
            table = self._keys.keytable(fresh=True)
            orphans, _ = self.orphans(table)
            for fname, sid in orphans:
                try:
                    with self._ctx.session_lock(fname[: -len(SUFFIX)], sid, timeout=0):
                        found = self.keyless(fname, table)  # again, under its lock
                        if found is None or found[0] != sid or found[1] is None:
                            continue
                        overwritten = self._ctx.sessions.shred(fname)
                except SessionSealError:
                    continue
                removed += 1
                self._keys.note(StateChange(untombs={found[1]}))
                detail = {"cleanup": True, "rule": "orphan", "overwritten": overwritten}
                self._audit("delete", session=sid, detail=detail)
            removed += self.sweep_orphan_checkpoints(table)
        self._keys.commit()  # the tombs of what went (the records above committed most already)
        return removed

    def orphan_checkpoints(self, table: KeyTable) -> tuple[list[tuple[str, uuid.UUID, str, bytes]], int]:
        """Checkpoint files whose session's key is not in *table*, at their own name: those whose
        tomb is in the state (file, session id, session file stem, tomb), and how many others."""
        out: list[tuple[str, uuid.UUID, str, bytes]] = []
        others = 0
        for fname in sorted(self._ctx.ckpts.names()):
            if not fname.endswith(_checkpoints.CKPT_SUFFIX) or fname.startswith("."):
                continue
            header = _common.read_header(self._ctx.ckpts, fname)
            if header is None:
                continue
            sid, name = header.object_id, self._keys.file_name(header.object_id)
            if header.kind != Kind.CHECKPOINT or sid in table.session_keys:
                continue
            if _checkpoints.number_of(name, fname) != header.generation:
                continue  # not at its own name: damage for 'verify', not ours to remove
            if self._keys.tombed(header.raw):
                out.append((fname, sid, name, tomb_of(header.raw)))
            else:
                others += 1
        return out, others

    def sweep_orphan_checkpoints(self, table: KeyTable) -> int:
        """Checkpoint files an erasure left to overwrite (a delete killed before it reached
        them): undecryptable already, overwritten and removed here.  The caller holds the
        vault lock; session locks are taken without waiting, as above."""
        removed = 0
        orphans, _ = self.orphan_checkpoints(table)
        for fname, sid, name, tomb in orphans:
            try:
                with self._ctx.session_lock(name, sid, timeout=0):
                    header = _common.read_header(self._ctx.ckpts, fname)
                    if header is None or tomb_of(header.raw) != tomb:
                        continue  # replaced since it was listed
                    if self._ctx.ckpts.shred(fname):
                        removed += 1
                        self._keys.note(StateChange(untombs={tomb}))
            except SessionSealError:
                continue
        return removed

    # Automatic cleanup: 'autoclean.json' holds only the time the next run is due, so that
    # opening a vault learns whether one is due without its key.  It is not a secret; deleting
    # it only delays the next automatic run until the config is set again or cleanup runs.

    def schedule_auto(self, interval: int | None) -> None:
        if interval is None:
            self._ctx.root.unlink(AUTO_FILE)
            return
        due = _common.now() + timedelta(seconds=interval)
        self._ctx.root.write_atomic(AUTO_FILE, orjson.dumps({"next_run": due.isoformat()}) + b"\n")

    def auto_cleanup_due(self) -> bool:
        try:
            raw = self._ctx.root.read(AUTO_FILE, max_size=4096)
        except (FileNotFoundError, SessionSealError):
            return False
        try:
            return _common.now() >= datetime.fromisoformat(orjson.loads(raw)["next_run"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return True  # unreadable: the config decides

    def maybe_auto_cleanup(self) -> CleanupResult | None:
        """Run the config's policy if its interval has passed.  Never fails the open: another
        cleanup running or a lock held means "next time"; errors are audited."""
        if not self.auto_cleanup_due():
            return None
        try:
            with self._ctx.cleanup_lock(timeout=0):
                if not self.auto_cleanup_due():
                    return None
                policy = self._read_config().retention
                if policy.auto_interval is None or not policy.has_rules():
                    self.schedule_auto(None)
                    return None
                return self.cleanup_locked(self.plan(policy, None), None, auto=True)
        except SessionSealError as exc:
            self._audit_failure("cleanup", exc)
        return None

    def sweep_temp(self) -> None:
        """At open: remove the temp files of killed writers if the vault lock is free now
        (never waiting: the next open does it)."""
        with contextlib.suppress(SessionSealError), self._ctx.vault_lock(timeout=0):
            self.sweep_temp_files()

    def sweep_temp_files(self) -> int:
        """Overwrite and remove the temp files of writers that have exited, in every directory
        of the vault; returns how many.  Only a dead process's files are touched, so a live
        writer's file is safe whatever locks it holds; each is overwritten first (a key file
        being rewritten holds master keys)."""
        removed = sum(len(d.sweep_temp()) for d in (self._ctx.root, self._ctx.sessions, self._ctx.ckpts))
        for sub in (AUDIT_DIR, FTS_DIR):  # the full-text index's: a segment being written, a file shredded
            if self._ctx.root.exists(sub):
                try:
                    d = self._ctx.root.sub(sub)
                except SessionSealError:
                    if sub == AUDIT_DIR:
                        raise
                    continue  # an unsafe fts/ is never opened: verify reports it, search streams
                try:
                    removed += len(d.sweep_temp())
                finally:
                    d.close()
        return removed


def entomb(
    table: KeyTable,
    erased: Mapping[uuid.UUID, Sequence[tuple[Dir, str, bytes | None]]],
    *,
    spare: uuid.UUID | None = None,
) -> None:
    """Record in *table*'s state, before the rotation that erases the sessions writes it, a tomb
    for each file they leave to overwrite, and drop their marks: the rotation and the record of
    what it left are one atomic write.  An untracked table records nothing (docs/secure-deletion.md).

    The erased sessions are also recorded for every remote this vault has a device on (but
    *spare*), in the same write: the next push there tombstones those it ever sent or pulled
    (docs/sync.md, "Deletes").  A delete is never inferred from a session's absence."""
    tombs = {t for files in erased.values() for _, _, t in files if t is not None}
    sids = frozenset(sid.bytes for sid in erased)
    state = table.state
    remote = {
        dev: state.erased.get(dev, frozenset()) | sids
        for dev in state.remote_keys
        if spare is None or dev != spare.bytes
    }
    state.apply(StateChange(tombs=tombs, unmarks=set(sids), erased=remote if sids else {}))
