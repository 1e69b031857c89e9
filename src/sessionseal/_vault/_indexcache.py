"""The index cache: ``index.sst``, every session's summary under the master key (docs/design.md,
"Index").  A verified cache: a lost or damaged index is rebuilt from the session files, so every
write here is best effort, under the vault lock (taken after a session lock, never before).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence

from .._index import INDEX_FILE, Entry, Index, OtherFormat, Stamp
from .._keystore import MasterKeys
from .._keytable import KeyTable
from .._state import StateChange
from ..errors import IntegrityError, SessionSealError
from ._common import parse_id, timestamp
from ._context import VaultContext
from ._keys import AuditFn, Keys


class IndexCache:
    """The index of one open vault, as last read or written (under the context's mutex)."""

    def __init__(self, ctx: VaultContext, keys: Keys, *, audit: AuditFn) -> None:
        self._ctx = ctx
        self._keys = keys
        self._audit = audit
        #: The index as last read or written; None: read it again.
        self.cached: Index | None = None

    def current(self, *, parse: bool = True) -> tuple[Index | None, str | None]:
        """The index if it is readable, else why not ("missing" or "damaged").

        :param parse: False when only appending: a cached or freshly opened index need not
            have its entries decoded.
        """
        ctx = self._ctx
        with ctx.mutex:
            cached = self.cached
            if cached is not None and (cached.parsed or not parse) and cached.is_current(ctx.root):
                return cached, None
            try:
                self.cached = self.load(self._keys.master(), parse=parse)
            except FileNotFoundError:
                return None, "missing"
            except OtherFormat:
                return None, "format"  # written by another version of sessionseal
            except (IntegrityError, SessionSealError):
                return None, "damaged"
            if self.cached.generation < self.anchored():
                # Older than the last index this vault wrote: a backup put back.  Only a cache
                # (the marks hold the sessions' versions), rebuilt like a missing one.
                self.cached = None
                return None, "rolled-back"
            return self.cached, None

    def load(self, master: MasterKeys, *, parse: bool = True) -> Index:
        ctx = self._ctx
        try:
            return Index.load(ctx.root, ctx.vault_id, master, parse=parse)
        except OtherFormat:
            raise
        except IntegrityError:
            # Sealed under an epoch our cached master keys lack: another process rotated.
            reload = getattr(self._keys.provider, "reload", None)
            if reload is None:
                raise
            return Index.load(ctx.root, ctx.vault_id, reload(ctx.vault_id), parse=parse)

    def refresh(self, puts: Sequence[tuple[str, Entry, Stamp]], drops: Sequence[str], reason: str | None) -> None:
        """Bring the index up to date, if the vault lock is free right now (a reader never waits;
        the next one does the same work).  Best effort: the index is a verified cache.

        With a *reason* ("missing", "damaged") the index is rebuilt from *puts*, which then
        hold every readable session, and the rebuild is audited.
        """
        ctx = self._ctx
        try:
            with ctx.vault_lock(timeout=0), ctx.mutex:
                if reason is not None:
                    self.rebuild(puts)
                else:
                    current, _ = self.current()
                    if current is None:
                        return
                    for n, doc, s in puts:
                        current.put(ctx.root, n, doc, s)
                    for n in drops:
                        current.drop(ctx.root, n)
                    if current.needs_compaction:
                        self.write(current)
        except SessionSealError:
            return
        if reason is not None:
            self._audit("reindex", detail={"reason": reason, "sessions": len(puts)})

    def rebuild(self, entries: Iterable[tuple[str, Entry, Stamp]]) -> Index:
        """Write a new index of *entries*; the caller holds the vault lock and the mutex."""
        self._keys.keytable(fresh=True)  # the generation other processes anchored, too
        # Numbered above every index this vault wrote: a rebuilt index is no rollback.
        generation = max(self.cached.generation if self.cached else 0, self.anchored())
        index = Index(vault_id=self._ctx.vault_id, generation=generation)
        for n, doc, s in entries:
            index.entries[n], index.stamps[n] = doc, s
        self.write(index)
        return index

    def write(self, index: Index) -> None:
        # Under the vault lock: sealed under the key table's master key epoch.
        table = self._keys.keytable(fresh=True)
        index.write(self._ctx.root, self._keys.kek(table.kek_epoch), table.kek_epoch)
        self.cached = index
        # Anchored under the same hold of the vault lock (issue 20): an older index put back is
        # then seen ('index-rollback'), and the next rewrite, by any process, numbers above it.
        self._keys.commit(StateChange(index=index.generation))

    def anchored(self) -> int:
        """The generation of the last index rewrite the vault anchored (0: untracked, or the key
        table not read yet: it is never read from here, under the mutex, which its first read
        would take the vault lock after)."""
        table = self._keys.table
        return table.state.index if table is not None and table.state.tracked else 0

    def put(self, fname: str, doc: Entry, stamp: Stamp) -> None:
        """Record a session write; best effort (a lost update is found and mended by the next listing)."""
        ctx = self._ctx
        # After a session write, under its session lock; the vault lock is taken after it (lock order).
        with contextlib.suppress(SessionSealError), ctx.vault_lock(), ctx.mutex:
            index, _ = self.current(parse=False)
            if index is None:
                return  # the next listing rebuilds it
            index.put(ctx.root, fname, doc, stamp)  # not appended to a torn file: compacted below
            if index.needs_compaction:

                def redo(full: Index) -> None:
                    full.entries[fname], full.stamps[fname] = doc, stamp

                self._compact(index, redo)

    def put_many(self, puts: list[tuple[str, Entry, Stamp]]) -> None:
        """:meth:`put` of many session writes under one hold of the vault lock (a batch's flush)."""
        ctx = self._ctx
        with contextlib.suppress(SessionSealError), ctx.vault_lock(), ctx.mutex:
            index, _ = self.current(parse=False)
            if index is None:
                return
            for fname, doc, stamp in puts:
                index.put(ctx.root, fname, doc, stamp)
            if index.needs_compaction:

                def redo(full: Index) -> None:
                    for fname, doc, stamp in puts:
                        full.entries[fname], full.stamps[fname] = doc, stamp

                self._compact(index, redo)

    def touch(self, fname: str) -> None:
        """Record a read (its time); never waits for the vault lock."""
        # A read is recorded in the index only (retention by access, 'list --sort accessed').
        # Best effort and never waiting: a busy vault lock loses this one access time.
        at, ctx = timestamp(), self._ctx
        with contextlib.suppress(SessionSealError), ctx.vault_lock(timeout=0), ctx.mutex:
            index, _ = self.current(parse=False)
            if index is None:
                return
            index.touch(ctx.root, fname, at)  # not appended to a torn file: compacted below
            if index.needs_compaction:

                def redo(full: Index) -> None:
                    entry = full.entries.get(fname)
                    if entry is not None:
                        entry.last_accessed_at = at

                self._compact(index, redo)

    def _compact(self, index: Index, redo: Callable[[Index], None]) -> None:
        """Under the vault lock: rewrite the index as one snapshot.  One opened for appending
        only is read in full first, and *redo* applies to it the change its last delta made
        (which a torn file did not take)."""
        if not index.parsed:
            full, _ = self.current()
            if full is None:
                return
            redo(full)
            index = full
        self.write(index)

    def reseal(self, master: MasterKeys, table: KeyTable) -> None:
        """Re-encrypt the index under the table's epoch, without the sessions the table no longer
        keys (a rotation's erasures).  Called under the vault lock while the key store still
        holds both epochs.  An index that cannot be read is shredded: the next listing rebuilds it."""
        ctx = self._ctx
        with ctx.mutex:
            cached = self.cached
            try:
                if cached is not None and cached.parsed and cached.is_current(ctx.root):
                    index: Index | None = cached  # its entries are what is on disk: no second read
                else:
                    index = Index.load(ctx.root, ctx.vault_id, master)
            except FileNotFoundError:
                self.cached = None
                return
            except (IntegrityError, SessionSealError):
                index = None
            if index is None:
                with contextlib.suppress(SessionSealError):
                    ctx.root.shred(INDEX_FILE)
                self.cached = None
                return
            for name, entry in list(index.entries.items()):
                if parse_id(entry.id) not in table.session_keys:
                    index.entries.pop(name)
                    index.stamps.pop(name, None)
            index.write(ctx.root, master.keys[table.kek_epoch], table.kek_epoch)
            self.cached = index
            self._keys.note(StateChange(index=index.generation))  # anchored with the rotation's record
