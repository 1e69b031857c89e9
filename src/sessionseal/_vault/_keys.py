"""The vault's keys: master keys in the key store, the key table, rotation, and the keys derived
from the vault secret (docs/design.md, "Keys").

The only component that reads or writes ``keytable.sst`` or calls the key provider.  Rotation
takes the index with it (the index names sessions): the facade hands down the index's reseal.

It also keeps **the vault's head outside the vault** (issue 20; docs/keychain.md): a key store
outside the vault (the keychain: ``keeps_head``) holds, beside the master key, the state counter
of the last head write; the state records each write as ``head = (counter, time)``.  A table
whose recorded head is below the key store's is older than one the vault has had: the vault (or
its key table) was rolled back.  The head is written after the state delta that records it, so
a crash between the two leaves the key store *behind* the table (not a rollback: the next write
catches up), never ahead of it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, cast

from .. import _crypto, _keystore
from .._keystore import KeychainProvider, KeyProvider, MasterKeys
from .._keytable import KeyTable
from .._state import StateChange, VaultState, tomb_of
from ..errors import InvalidInput, KeyNotFound, KeyStoreError, SessionSealError, VaultRolledBack
from ._common import no_session
from ._context import VaultContext
from ._results import HeadStatus

LABEL_NAMES: Final = b"sessionseal v1 file names"
LABEL_FINGERPRINT: Final = b"sessionseal v1 redaction fingerprints"
LABEL_CONFIG: Final = b"sessionseal v1 config"
#: Seconds between two head writes to the key store (0: at every commit); every rotation writes one.
HEAD_INTERVAL_ENV: Final = "SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL"
DEFAULT_HEAD_INTERVAL: Final = 60.0


def head_interval() -> float:
    """``SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL`` seconds, or 60 (unset, unparsable or negative)."""
    try:
        value = float(os.environ.get(HEAD_INTERVAL_ENV, ""))
    except ValueError:
        return DEFAULT_HEAD_INTERVAL
    return value if math.isfinite(value) and value >= 0 else DEFAULT_HEAD_INTERVAL


class AuditFn(Protocol):
    """Writes one audit record (:meth:`Auditor.record`)."""

    def __call__(self, action: str, *, detail: Mapping[str, Any] | None = None) -> None: ...


class KeptHeads(Protocol):
    """The kept head of a vault (:class:`~._auditing.Auditor`): a record of its audit history."""

    def kept_head(self, table: KeyTable) -> str: ...

    def descent(self, table: KeyTable, kept: str) -> str | None: ...


class Keys:
    """Master keys and the key table of one open vault; caches the table (under the mutex)."""

    def __init__(
        self,
        ctx: VaultContext,
        provider: KeyProvider,
        *,
        audit: AuditFn,
        audit_unkeyed: Callable[[SessionSealError], None],
        reseal_index: Callable[[MasterKeys, KeyTable], None],
        after_rotation: Callable[[], None] = lambda: None,
    ) -> None:
        self._ctx = ctx
        self.provider = provider
        self._audit = audit
        self._audit_unkeyed = audit_unkeyed
        self._reseal_index = reseal_index
        #: Once the key store holds the new epoch only: what waited for the old one to go.
        self._after_rotation = after_rotation
        #: The key table as last read or written (None: not read yet, or not to be trusted).
        self.table: KeyTable | None = None
        self._held_epochs: frozenset[int] = frozenset()  # what the key store held when the table was read
        self._names_key: bytes | None = None
        #: State changes of the operation in progress, committed with its audit record.
        self._pending = StateChange()
        #: The key store's head when the table was found older than it (0: not found so).
        self._behind = 0
        self._refusal_recorded = False

    def master(self) -> MasterKeys:
        return self.provider.load(self._ctx.vault_id)

    def keytable(self, *, fresh: bool = False) -> KeyTable:
        """The key table; the first read of an open vault is recorded as its ``open``.

        :param fresh: reread it if another process changed it since it was cached.
        """
        if self.table is None:
            try:
                table = self.load_keytable(fresh=fresh)
            except SessionSealError as exc:
                # One refusal per failure to get the key, not one per read that retries it (the
                # failed operation's own record reads again): recorded until a read succeeds.
                if not self._refusal_recorded:
                    self._refusal_recorded = True
                    with contextlib.suppress(Exception):
                        self._audit_unkeyed(exc)
                raise
            self._refusal_recorded = False
            self._audit("open", detail={"key_provider": self.provider.name})
            self.try_finish_rotation()
            return table
        return self.load_keytable(fresh=fresh)

    def fresh_master(self) -> MasterKeys:
        # Under the vault lock: what the key store holds now, not this process's cached copy.
        reload = getattr(self.provider, "reload", None)
        return cast(MasterKeys, reload(self._ctx.vault_id)) if reload is not None else self.master()

    def rotate(self, table: KeyTable) -> int:
        """Re-encrypt the key table under a fresh master key and drop every other one.

        The caller holds the vault lock.  This is what makes deletion a crypto-erase: a key
        that left the table is then in no file the current master key can open, and the
        master key that opens old copies of the table is gone from the key store.

        Crash-safe order: (1) the key store holds the old keys and the new one; (2) the
        table is replaced atomically under the new key; (3) the key store keeps only the
        new key.  A crash before (2) leaves the old table and its key; after (2), the next
        rotation or open finishes (3) (:meth:`finish_rotation`).
        """
        root, vault_id = self._ctx.root, self._ctx.vault_id
        # A key file a killed rotation was writing may still hold old master keys: shred it.
        root.sweep_temp()
        master = self.fresh_master()
        self._judge_head(master, table, raise_behind=True)
        epoch = max(master.keys) + 1  # above any epoch a killed rotation may have left behind
        key = _crypto.new_key()
        # Only the table's key and the new one: the key store never holds more than two.
        table_epoch, old_key = table.kek_epoch, master.keys[table.kek_epoch]
        self.provider.store(vault_id, MasterKeys({table_epoch: old_key, epoch: key}, master.head))
        state, head = table.state, master.head
        recorded = state.head
        if self._keeps_head(table):
            # Every rotation writes the head: the new table records it, then the key store keeps it.
            head = state.counter + 1  # the counter of the full state frame the rewrite appends
            state.head = (head, int(time.time()))
        if state.tracked:
            # The audit log's MAC key follows the master key (docs/spec/audit-log.md, "Keys"): a
            # fresh one per epoch, so an older master key (a key-store backup, an erased epoch)
            # cannot MAC records of this epoch or later.
            state.audit_keys[epoch] = _crypto.new_key()
        try:
            table.write(root, key, epoch)
        except BaseException:
            state.head = recorded
            if state.tracked and table.kek_epoch != epoch:
                state.audit_keys.pop(epoch, None)  # not on disk: no record may use it
            raise
        # The index names sessions (titles, tags): it follows the table to the new key, without
        # the erased ones, before the old key goes.
        self._reseal_index(MasterKeys({table_epoch: old_key, epoch: key}), table)
        self.provider.store(vault_id, MasterKeys({epoch: key}, head))
        self._held_epochs = frozenset({epoch})
        self._after_rotation()
        return epoch

    def rotate_or_forget(self, table: KeyTable) -> int:
        """:meth:`rotate`, and on failure forget the cached table: the keys that were taken out
        of it are still on disk, so it is reread rather than trusted."""
        try:
            return self.rotate(table)
        except BaseException:
            self.table = None
            raise

    def finish_rotation(self) -> bool:
        """Drop master keys other than the table's (left by a rotation killed after step 2).

        The caller holds the vault lock.  Returns whether anything was dropped.
        """
        master = self.fresh_master()
        table = self.load_keytable(fresh=True)
        if set(master.keys) == {table.kek_epoch}:
            return False
        # A rolled-back table may be of an older epoch than the key store's newest: dropping
        # the others would lose the key of the vault as it was.  Left for 'head accept'.
        if not self._judge_head(master, table):
            return False
        head = max(master.head, table.state.head[0]) if self._keeps_head(table) else master.head
        self._reseal_index(master, table)  # a rotation killed between the table and the index
        self.provider.store(self._ctx.vault_id, MasterKeys({table.kek_epoch: master.keys[table.kek_epoch]}, head))
        self._held_epochs = frozenset({table.kek_epoch})
        self._after_rotation()
        return True

    def try_finish_rotation(self) -> None:
        # At first use: only if the vault lock is free right now (never wait, never nest).
        with contextlib.suppress(SessionSealError):
            # The epochs the table was just opened with: no second read of the key store.
            if self.table is None or self._held_epochs == {self.table.kek_epoch}:
                return
            with self._ctx.vault_lock(timeout=0), self._ctx.mutex:
                if self.finish_rotation():
                    self._audit("rekey.finish", detail={"epoch": self.table.kek_epoch})

    # -- the anchored state (issue 20; :mod:`.._state`) ---------------------------------------

    def state(self, *, fresh: bool = False) -> VaultState:
        """The vault's anchored state, as the key table holds it."""
        return self.keytable(fresh=fresh).state

    def tombed(self, header_raw: bytes) -> bool:
        """Whether the container file whose header is *header_raw* was left to overwrite by an
        erasure (its tomb is in the state): the only keyless files ever removed.  An untracked
        vault recorded no erasure: none of its files is."""
        state = self.keytable().state
        return state.tracked and tomb_of(header_raw) in state.tombs

    def note(self, change: StateChange) -> None:
        """Hold *change* until the operation commits (:meth:`commit`): a mark written with the
        operation's audit record costs no append of its own."""
        with self._ctx.mutex:
            self._pending.update(change)

    def commit(self, change: StateChange | None = None) -> None:
        """Append what was noted, and *change*, to the state in the key table: durable on
        return.  Takes the vault lock (re-entrant); the table is brought up to date first by
        reading only what other processes appended since."""
        ctx = self._ctx
        with ctx.mutex:
            pending, self._pending = self._pending, StateChange()
        if change is not None:
            pending.update(change)
        if not pending:
            return
        try:
            with ctx.vault_lock(), ctx.mutex:
                table = self.keytable(fresh=True)
                master = self._head_due(table)
                if master is not None:
                    pending.head = (table.state.counter + 1, int(time.time()))
                table.commit(ctx.root, pending)
                if master is not None:
                    self._store_head(master, table.state.head[0])
                if table.needs_compaction:
                    table.write(ctx.root, self.kek(table.kek_epoch), table.kek_epoch)
        except BaseException:
            with ctx.mutex:
                pending.update(self._pending)
                self._pending = pending  # kept for the next commit: marks are lower bounds
            raise

    # -- the vault's head outside the vault (issue 20; docs/keychain.md) -------------------------

    def _keeps_head(self, table: KeyTable) -> bool:
        return bool(getattr(self.provider, "keeps_head", False)) and table.state.tracked

    def _judge_head(self, master: MasterKeys, table: KeyTable, *, raise_behind: bool = False) -> bool:
        """Record whether *table* is older than the key store's head (*master* read before the
        table, or both under the vault lock); returns whether they agree."""
        self._behind = master.head if master.head > table.state.head[0] else 0
        if self._behind and raise_behind:
            raise self._rolled_back(table)
        return not self._behind

    def _rolled_back(self, table: KeyTable) -> VaultRolledBack:
        return VaultRolledBack(
            f"the vault is older than its head in the key store (the key table records head "
            f"{table.state.head[0]}, the keychain {self._behind}): it, or its key table, was rolled back or "
            "restored from a backup. Reads work; writes are refused. Check it with 'sessionseal verify'; "
            "if the restore was deliberate, 'sessionseal head accept' makes this the vault's state"
        )

    def rollback_problem(self) -> str | None:
        """What a listing of a rolled-back vault must say (None when the table is not older)."""
        if not self._behind:
            return None
        return (
            "the vault is older than its head in the OS keychain (rolled back, or restored from a backup): "
            "sessions saved or changed since that copy are missing or older here; writes are refused"
        )

    def check_writable(self) -> None:
        """:raises VaultRolledBack: the key table is older than the key store's head."""
        table = self.keytable()
        if self._behind:
            raise self._rolled_back(table)

    def _head_due(self, table: KeyTable) -> MasterKeys | None:
        """Under the vault lock: the key store's keys, when a head write is due with this commit
        (the interval has passed since the last) and the table is not older than the key store."""
        if not self._keeps_head(table):
            return None
        at, now = table.state.head[1], time.time()
        if at <= now < at + head_interval():
            return None
        master = self.fresh_master()
        return master if self._judge_head(master, table) else None

    def _store_head(self, master: MasterKeys, counter: int) -> None:
        """Write the head beside the master keys.  A failure is not the operation's: the state
        already records the write, so the key store is merely behind until the next one."""
        with contextlib.suppress(KeyStoreError):
            self.provider.store(self._ctx.vault_id, MasterKeys(master.keys, counter))

    def head_status(self, *, accept: bool = False, kept: KeptHeads | None = None) -> HeadStatus:
        """Compare the key table with the key store's head, reading both afresh; with *accept*,
        first accept the table as it is (:meth:`accept_head`, audited as ``head.accept``).

        :param kept: makes the head to keep outside the vault and checks one kept earlier (the
            auditor: the kept head names a record of the audit log); None: no kept head.
        """
        accepted = False
        if accept:
            before, after = self.accept_head()
            accepted = before != after
            self._audit("head.accept", detail={"from": before, "to": after, "changed": accepted})
        # The first read of the table records the 'open', whose commit anchors the audit head
        # and may write the key store's head: done before the key store is read, or it would
        # show the head as it was before this very command.
        self.keytable()
        master = self.fresh_master()  # before the table: see load_keytable
        table = self.keytable(fresh=True)
        self._judge_head(master, table)
        outside = bool(getattr(self.provider, "keeps_head", False))
        state = table.state
        key_store = master.head if outside else None
        if kept is None:
            return HeadStatus(outside, state.tracked, state.counter, state.head, key_store, "", accepted)
        return HeadStatus(
            outside,
            state.tracked,
            state.counter,
            state.head,
            key_store,
            kept.kept_head(table),
            accepted,
            functools.partial(kept.descent, table),
        )

    def accept_head(self) -> tuple[int, int]:
        """Make the key table as it is the vault's state (a deliberate restore): under the vault
        lock, rewrite it with a counter above every head the key store has held, and write that
        head.  Returns (the key store's head before, the new head)."""
        ctx = self._ctx
        with ctx.vault_lock(), ctx.mutex:
            master = self.fresh_master()
            table = self.load_keytable(fresh=True)
            if self._judge_head(master, table):
                return master.head, table.state.head[0]
            before = master.head
            if not table.state.tracked:
                # A table from before the vault's state was recorded: it records no head.
                self.provider.store(ctx.vault_id, MasterKeys(master.keys, 0))
                self._behind = 0
                return before, 0
            state = table.state
            # Above the key store's head: a table of the abandoned line (counters up to it) now
            # reads as older than the key store's head, as it is.
            state.counter = max(state.counter, before)
            state.head = (state.counter + 1, int(time.time()))
            table.write(ctx.root, master.keys[table.kek_epoch], table.kek_epoch)
            self.provider.store(ctx.vault_id, MasterKeys(master.keys, state.head[0]))
            self._behind = 0
            return before, state.head[0]

    def load_keytable(self, *, fresh: bool = False) -> KeyTable:
        ctx = self._ctx
        with ctx.mutex:
            if self.table is None or (fresh and not self.table.refresh(ctx.root)):
                master = self.master()
                try:
                    self.table = KeyTable.load(ctx.root, ctx.vault_id, master)
                except KeyStoreError:
                    # Another process may have rotated the master key since we cached it.
                    reload = getattr(self.provider, "reload", None)
                    if reload is None:
                        raise
                    master = reload(ctx.vault_id)
                    self.table = KeyTable.load(ctx.root, ctx.vault_id, master)
                self._held_epochs = frozenset(master.keys)
                # The key store was read before the table: its head can only be behind the
                # table's (a head is written after the state that records it), unless the
                # table is older than one the vault has had.
                self._judge_head(master, self.table)
            return self.table

    def kek(self, epoch: int) -> bytes:
        # Under the vault lock: the master key of *epoch*, rereading the key store if our copy lacks it.
        master = self.master()
        if epoch not in master.keys:
            master = self.fresh_master()
        return master.keys[epoch]

    def derive(self, label: bytes) -> bytes:
        """A key derived from the vault secret for one purpose (*label*)."""
        return _crypto.derive_key(self.keytable().vault_secret, label)

    def file_name(self, session_id: uuid.UUID) -> str:
        """The file name stem of a session: HMAC(file-name key, id), so names reveal no id."""
        if self._names_key is None:
            self._names_key = self.derive(LABEL_NAMES)
        return _crypto.hmac_sha256(self._names_key, session_id.bytes)[:16].hex()

    def session_key(self, session_id: uuid.UUID, *, create: bool) -> bytes | None:
        """A session's key; with *create*, one is added to the table (durably) if it has none.

        With *create* (a write, under the session's lock, which ``delete`` takes too) the table
        on disk is consulted, not the copy cached at open: another process may have erased the
        session since, and a version written under its erased key would report success and be
        unreadable by anyone (issue 20, item 4).  The session then gets a fresh key: it is
        stored anew, as a new session with that id.  The check costs one read of the table's
        header; the table is read again only when it changed.
        """
        key = self.keytable(fresh=create).session_keys.get(session_id)
        if key is not None or not create:
            if key is None:
                key = self.keytable(fresh=True).session_keys.get(session_id)
            return key
        ctx = self._ctx
        with ctx.vault_lock(), ctx.mutex:
            table = self.keytable(fresh=True)
            key = table.session_keys.get(session_id)
            if key is None:
                key = table.add(ctx.root, session_id)
                if session_id.bytes in table.state.marks or session_id.bytes in self._pending.marks:
                    # A new key is a new session: a mark left by an erased one with this id
                    # would call its first version a rollback.
                    self._pending.marks.pop(session_id.bytes, None)
                    table.commit(ctx.root, StateChange(unmarks={session_id.bytes}))
                if table.needs_compaction:
                    # Thousands of deltas cost a decrypt each at every open: rewrite as one snapshot.
                    table.write(ctx.root, self.kek(table.kek_epoch), table.kek_epoch)
            return key

    def add_session_keys(self, session_ids: list[uuid.UUID]) -> None:
        """A key for each of *session_ids* that has none, added with one durable append (the
        saves of a pull's batch of new sessions then find them): :meth:`session_key`'s
        *create*, for many.  A key whose save never comes is ``unused-key`` to verify, as one a
        save killed after its key leaves."""
        ctx = self._ctx
        with ctx.vault_lock(), ctx.mutex:
            table = self.keytable(fresh=True)
            new = [sid for sid in dict.fromkeys(session_ids) if sid not in table.session_keys]
            if not new:
                return
            table.add_many(ctx.root, new)
            marked = {sid.bytes for sid in new} & (set(table.state.marks) | set(self._pending.marks))
            if marked:
                # As session_key: a new key is a new session, whatever an erased one left.
                for sid in marked:
                    self._pending.marks.pop(sid, None)
                table.commit(ctx.root, StateChange(unmarks=marked))
            if table.needs_compaction:
                table.write(ctx.root, self.kek(table.kek_epoch), table.kek_epoch)

    def key_for(self, sid: uuid.UUID) -> bytes:
        """The key of a stored session.

        :raises SessionNotFound: the table holds none (deleted, or never saved).
        """
        key = self.session_key(sid, create=False)
        if key is None:
            # A container whose key is gone was deleted (a crash between the two steps).
            raise no_session(sid)
        return key

    def adopt_file_key(self) -> list[_keystore.FileCopy]:
        """Put the key of a keyrings.alt file into the OS keychain, unless it holds one already."""
        provider, vault_id = self.provider, self._ctx.vault_id
        if not isinstance(provider, KeychainProvider):
            raise InvalidInput("--from-keyring-file is for vaults whose key provider is the keychain")
        copies = _keystore.file_copies(vault_id)
        if not copies:
            raise InvalidInput(
                f"no keyrings.alt file holds a key for vault {vault_id}; "
                "nothing to move ('sessionseal rekey' alone rotates the key)"
            )
        try:
            provider.reload(vault_id)
        except KeyNotFound:
            plain = [c for c in copies if c.plaintext] or copies
            provider.store(vault_id, _keystore.read_file_copy(plain[0], vault_id))
        return copies
