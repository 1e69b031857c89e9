"""Erasure: deleting sessions (crypto-erase by key rotation), rekeying, retention and cleanup,
and the sweeps of what killed writers and cut-short erasures leave behind (docs/secure-deletion.md,
docs/retention.md).

Never removes data on inference: a session file goes only once its key has left the key table
(or when the table holds none and it is at its own name), a temp file only once its writer is
dead.  Lock order: the cleanup lock, then session locks, then the vault lock.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _container, _keystore
from .._audit import AUDIT_DIR
from .._container import Kind
from .._keytable import KeyTable
from ..errors import IntegrityError, InvalidInput, LockTimeout, SessionSealError
from . import _common
from ._ckpts import Checkpoints
from ._common import SUFFIX, no_session
from ._context import VaultContext
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

    def delete(self, sid: uuid.UUID) -> None:
        """Crypto-erase a session (:meth:`Vault.delete`), and record it (under its lock)."""
        name = self._keys.file_name(sid)
        self._keys.check_writable()  # a rolled-back vault erases nothing (issue 20)
        with self._ctx.session_lock(name, sid):
            has_file = self._ctx.sessions.exists(name + SUFFIX)
            # A link, device or foreign file at its names is refused before anything is erased:
            # once the key is gone, nothing would be left to say why the file stayed.
            self._ctx.sessions.check(name + SUFFIX)
            for _, fname in self._checkpoints.files(name):
                self._ctx.ckpts.check(fname)
            with self._ctx.vault_lock(), self._ctx.mutex:
                table = self._keys.keytable(fresh=True)
                if sid not in table.session_keys and not has_file:
                    raise no_session(sid)
                epoch = table.kek_epoch
                erased_key = table.session_keys.get(sid)  # for the tag of the 'delete' record only
                if sid in table.session_keys:
                    del table.session_keys[sid]
                    epoch = self._keys.rotate_or_forget(table)
            # The session is gone once the rotation is durable; overwriting is best effort, and a
            # file left behind is removed by 'verify --repair' or the next cleanup (its key is gone).
            try:
                shredded = self._ctx.sessions.shred(name + SUFFIX)
                self._checkpoints.shred_all(name)
            except SessionSealError:
                shredded = False
            # Not the number of checkpoints: it measures the erased session (docs/spec/audit-log.md).
            detail = {"epoch": epoch, "overwritten": shredded}
            # By tag only; a file without a key (an earlier delete cut short) is named by nothing.
            self._audit("delete", session=sid, session_key=erased_key, detail=detail)
            # The lock file stays: unlinking a held flock file would let a waiter on the old
            # inode and a newcomer on a new one both "hold" the lock.

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
        plan.orphans = len(self.orphans(self._keys.keytable(fresh=True)))
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
            with self._ctx.vault_lock(), self._ctx.mutex:
                table = self._keys.keytable(fresh=True)
                # Each erased session's key, for the tag of its 'delete' record only.
                gone = {d.session.id: table.session_keys.pop(d.session.id, None) for d, _ in ready}
                result.epoch = self._keys.rotate_or_forget(table)
            erased: list[tuple[uuid.UUID, bytes | None, dict[str, Any]]] = []
            for d, name in ready:
                # The session is gone once the rotation is durable; overwriting is best effort
                # and a file left behind is swept by the next cleanup (its key is gone).
                try:
                    overwritten = self._ctx.sessions.shred(name + SUFFIX)
                    self._checkpoints.shred_all(name)
                except SessionSealError:
                    overwritten = False
                    result.warnings.append(f"session {d.session.id}: its files could not be overwritten")
                result.removed.append(d.session.id)
                result.bytes_freed += d.session.size_stored
                detail = {"cleanup": True, "rule": d.rule, "epoch": result.epoch, "overwritten": overwritten}
                erased.append((d.session.id, gone.get(d.session.id), detail))
            self._audit_erasures(erased)

    def orphans(self, table: KeyTable) -> list[tuple[str, uuid.UUID]]:
        """Session files whose key is no longer in *table*: left by a delete killed between
        its rotation and its overwrite.  Only files at their own name count; anything else is
        damage for 'verify', not ours to remove."""
        out: list[tuple[str, uuid.UUID]] = []
        for fname in sorted(self._ctx.sessions.names()):
            if not fname.endswith(SUFFIX) or fname.startswith("."):
                continue
            sid = self.orphan_id(fname, table)
            if sid is not None:
                out.append((fname, sid))
        return out

    def orphan_id(self, fname: str, table: KeyTable) -> uuid.UUID | None:
        try:
            prefix, _ = self._ctx.sessions.read_prefix(fname, _container.HEADER_SIZE)
            header = _container.parse_unverified_header(prefix)
        except (IntegrityError, OSError, SessionSealError):
            return None
        sid = header.object_id
        if header.kind != Kind.SESSION or sid in table.session_keys or self._keys.file_name(sid) + SUFFIX != fname:
            return None
        return sid

    def sweep_orphans(self) -> int:
        # Under the vault lock no key is added, and a session's key is in the table before its
        # file exists: a file without a key here is a leftover, never a session being created.
        removed = 0
        with self._ctx.vault_lock(), self._ctx.mutex:
            table = self._keys.keytable(fresh=True)
            for fname, sid in self.orphans(table):
                try:
                    with self._ctx.session_lock(fname[: -len(SUFFIX)], sid, timeout=0):
                        if self.orphan_id(fname, table) != sid:
                            continue
                        overwritten = self._ctx.sessions.shred(fname)
                except SessionSealError:
                    continue
                removed += 1
                detail = {"cleanup": True, "rule": "orphan", "overwritten": overwritten}
                self._audit("delete", session=sid, detail=detail)
            removed += self.sweep_orphan_checkpoints(table)
        return removed

    def sweep_orphan_checkpoints(self, table: KeyTable) -> int:
        """Checkpoint files whose session's key is gone (a delete killed before it reached
        them): undecryptable already, overwritten and removed here.  The caller holds the
        vault lock; session locks are taken without waiting, as above."""
        removed = 0
        for fname in sorted(self._ctx.ckpts.names()):
            if not fname.endswith(_checkpoints.CKPT_SUFFIX) or fname.startswith("."):
                continue
            try:
                prefix, _ = self._ctx.ckpts.read_prefix(fname, _container.HEADER_SIZE)
                header = _container.parse_unverified_header(prefix)
            except (IntegrityError, OSError, SessionSealError):
                continue
            sid, name = header.object_id, self._keys.file_name(header.object_id)
            if header.kind != Kind.CHECKPOINT or sid in table.session_keys:
                continue
            if _checkpoints.number_of(name, fname) != header.generation:
                continue  # not at its own name: damage for 'verify', not ours to remove
            try:
                with self._ctx.session_lock(name, sid, timeout=0):
                    if self._ctx.ckpts.shred(fname):
                        removed += 1
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
        if self._ctx.root.exists(AUDIT_DIR):
            audit_dir = self._ctx.root.sub(AUDIT_DIR)
            try:
                removed += len(audit_dir.sweep_temp())
            finally:
                audit_dir.close()
        return removed
