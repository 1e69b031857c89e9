"""The vault's keys: master keys in the key store, the key table, rotation, and the keys derived
from the vault secret (docs/design.md, "Keys").

The only component that reads or writes ``keytable.sst`` or calls the key provider.  Rotation
takes the index with it (the index names sessions): the facade hands down the index's reseal.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, cast

from .. import _crypto, _keystore
from .._keystore import KeychainProvider, KeyProvider, MasterKeys
from .._keytable import KeyTable
from .._state import StateChange, VaultState
from ..errors import InvalidInput, KeyNotFound, KeyStoreError, SessionSealError
from ._common import no_session
from ._context import VaultContext

LABEL_NAMES: Final = b"sessionseal v1 file names"
LABEL_FINGERPRINT: Final = b"sessionseal v1 redaction fingerprints"
LABEL_CONFIG: Final = b"sessionseal v1 config"


class AuditFn(Protocol):
    """Writes one audit record (:meth:`Auditor.record`)."""

    def __call__(self, action: str, *, detail: Mapping[str, Any] | None = None) -> None: ...


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
    ) -> None:
        self._ctx = ctx
        self.provider = provider
        self._audit = audit
        self._audit_unkeyed = audit_unkeyed
        self._reseal_index = reseal_index
        #: The key table as last read or written (None: not read yet, or not to be trusted).
        self.table: KeyTable | None = None
        self._held_epochs: frozenset[int] = frozenset()  # what the key store held when the table was read
        self._names_key: bytes | None = None
        #: State changes of the operation in progress, committed with its audit record.
        self._pending = StateChange()

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
                with contextlib.suppress(Exception):
                    self._audit_unkeyed(exc)
                raise
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
        epoch = max(master.keys) + 1  # above any epoch a killed rotation may have left behind
        key = _crypto.new_key()
        # Only the table's key and the new one: the key store never holds more than two.
        table_epoch, old_key = table.kek_epoch, master.keys[table.kek_epoch]
        self.provider.store(vault_id, MasterKeys({table_epoch: old_key, epoch: key}))
        table.write(root, key, epoch)
        # The index names sessions (titles, tags): it follows the table to the new key, without
        # the erased ones, before the old key goes.
        self._reseal_index(MasterKeys({table_epoch: old_key, epoch: key}), table)
        self.provider.store(vault_id, MasterKeys({epoch: key}))
        self._held_epochs = frozenset({epoch})
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
        self._reseal_index(master, table)  # a rotation killed between the table and the index
        self.provider.store(self._ctx.vault_id, MasterKeys({table.kek_epoch: master.keys[table.kek_epoch]}))
        self._held_epochs = frozenset({table.kek_epoch})
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
                table.commit(ctx.root, pending)
                if table.needs_compaction:
                    table.write(ctx.root, self.kek(table.kek_epoch), table.kek_epoch)
        except BaseException:
            with ctx.mutex:
                pending.update(self._pending)
                self._pending = pending  # kept for the next commit: marks are lower bounds
            raise

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
