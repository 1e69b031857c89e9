"""The session marks of the anchored state, as ``verify`` and ``reindex`` use them (issue 20,
items 1 and 2; :mod:`.._state`).

A tracked vault's key table records each session's latest generation and committed size, and the
generation of the last index rewrite.  Against them:

* a session file below its mark is a ``rollback`` (older generation) or ``truncated`` (same
  generation, shorter): whatever the index says, and whether or not it exists;
* a key whose file is gone, but whose session the marks (or the index) know was written, is
  ``missing``; a key with no such evidence is ``unused-key``, a first save killed between its
  key and its file.  Neither key is ever dropped, not even by ``verify --repair``;
* an index older than the last one written is ``index-rollback``: a warning, since the index is
  a cache checked against the files, and the marks, not the index, are the evidence.

``reindex`` accepts the files as they are: it lowers the marks of files below them.  The
rebuilds of ``verify --repair`` and ``migrate`` do not.  (Listing checks the marks itself, in
:mod:`._listing`, on its hot path.)

An untracked vault (made before issue 20, not migrated) has no marks: nothing here applies to
it, and a key without its file is ``unused-key`` as before.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .._index import Entry, Index, entry_of, stamp_of
from .._keytable import KEYTABLE, KeyTable
from .._state import StateChange, VaultState
from ..errors import IntegrityError, SessionNotFound
from ._common import SUFFIX, parse_id
from ._context import VaultContext
from ._fulltext import FullText
from ._indexcache import IndexCache
from ._keys import Keys
from ._store import SessionStore

__all__ = ["Anchored", "Finding", "accept_marks", "reindex"]

#: A verify finding: (severity, code, path, message).
Finding = tuple[Literal["error", "warning"], str, str, str]


@dataclass
class Anchored:
    """What one verify run reads of the anchored state, and what it learns of the index."""

    #: The marks as read before any session file (a writer raises a mark only after writing
    #: its file, so no file read later is below a mark of this copy by a race); None: untracked.
    marks: dict[bytes, tuple[int, int]] | None = None
    index_generation: int = 0
    #: Session file names the index has an entry for (evidence that a session was written).
    indexed: set[str] = field(default_factory=set)
    #: A missing session is known from the index alone: a rebuild would drop the evidence.
    index_evidence: bool = False

    def read(self, state: VaultState) -> None:
        if state.tracked:
            self.marks, self.index_generation = dict(state.marks), state.index

    def behind(self, files: Iterable[tuple[str, uuid.UUID, int, int]]) -> Iterator[Finding]:
        """Each authentic session file (name, id, generation, committed size) below its mark."""
        if self.marks is None:
            return
        advice = "restore it from a newer backup ('sessionseal reindex' accepts it as it is)"
        for fname, sid, generation, size in files:
            mark = self.marks.get(sid.bytes)
            if mark is None:
                continue
            if generation < mark[0]:
                yield (
                    "error",
                    "rollback",
                    "sessions/" + fname,
                    f"session {sid} is at version {generation}, older than the version {mark[0]} the vault "
                    f"recorded: the file was restored from an older backup or rolled back; {advice}",
                )
            elif generation == mark[0] and size < mark[1]:
                yield (
                    "error",
                    "truncated",
                    "sessions/" + fname,
                    f"session {sid} lost appended turns the vault recorded (the file was cut short or "
                    f"restored from a backup); {advice}",
                )

    def index_read(self, index: Index) -> Iterator[Finding]:
        """Note what *index* knows; an ``index-rollback`` if it is older than the last one written."""
        self.indexed = set(index.entries)
        if self.marks is not None and index.generation < self.index_generation:
            yield (
                "warning",
                "index-rollback",
                "index.sst",
                f"the index is at version {index.generation}, older than the version {self.index_generation} "
                "the vault wrote (restored from a backup, or rolled back); the next listing or --repair rebuilds it",
            )

    def keys_without_files(
        self, keys: Keys, table: KeyTable, present: set[str], exists: Callable[[str], bool]
    ) -> Iterator[Finding]:
        """Keys whose session file is not in *present*: ``missing`` with evidence that the
        session was written (its mark, or an index entry, in a tracked vault), else ``unused-key``."""
        for sid in list(table.session_keys):
            fname = keys.file_name(sid) + SUFFIX
            if fname in present:
                continue
            known = self.marks is not None and (sid.bytes in self.marks or fname in self.indexed)
            # Written since the directory was read (the index, read later, knows it): no finding.
            if known and not exists(fname):
                self.index_evidence |= self.marks is not None and sid.bytes not in self.marks
                yield (
                    "error",
                    "missing",
                    "sessions/" + fname,
                    f"session {sid} was written (the vault recorded it) but its file is missing: restore it "
                    "from a backup (its key is kept), or erase the session with 'sessionseal delete'",
                )
            elif not known:
                yield (
                    "warning",
                    "unused-key",
                    KEYTABLE,
                    f"a key for session {sid}, which has no file (a first save killed before writing it); "
                    "kept, as every key is: 'sessionseal delete' erases it",
                )


#: The full-text index to rebuild too, and the progress callback of its build (``reindex``).
FullTextBuild = tuple[FullText, Callable[[int, int], None] | None]


def reindex(
    ctx: VaultContext,
    keys: Keys,
    store: SessionStore,
    index_cache: IndexCache,
    *,
    accept: bool,
    fts: FullTextBuild | None = None,
) -> tuple[int, dict[str, Any]]:
    """Rebuild the index from the session files (under the vault lock); with *accept*, lower
    the marks of the files below them to the files as they are; with *fts*, then rebuild
    the full-text index (without the vault lock: :meth:`FullText.rebuild`).  Returns the number
    of sessions indexed and the audit detail."""
    with ctx.vault_lock(), ctx.mutex:
        entries = []
        for fname in sorted(ctx.session_files()):
            try:
                stamp = stamp_of(os.stat(fname, dir_fd=ctx.sessions.fd, follow_symlinks=False))
                entries.append((fname, entry_of(store.read_summary(fname)), stamp))
            except (SessionNotFound, IntegrityError, OSError):
                continue
        index = index_cache.rebuild(entries)
        accepted = accept_marks(keys, [e for _, e, _ in entries]) if accept else 0
    detail: dict[str, Any] = {"reason": "asked", "sessions": len(index.entries)}
    if accepted:
        detail["accepted"] = accepted
    if fts is not None:
        detail["fulltext"] = fts[0].rebuild(sorted(ctx.session_files()), store.read_file, fts[1])
    return len(index.entries), detail


def accept_marks(keys: Keys, entries: Iterable[Entry]) -> int:
    """Lower the marks of the sessions whose files (*entries*) are below them to the files as
    they are (the owner accepts a restore); the caller holds the vault lock.  Marks only rise
    within a change: the old ones go in one frame, the accepted ones come in the next."""
    state = keys.state(fresh=True)
    lower: dict[bytes, tuple[int, int]] = {}
    for e in entries:
        sid = parse_id(e.id).bytes
        mark = state.mark(sid)
        if mark is not None and (e.generation, e.size_stored) < mark:
            lower[sid] = (e.generation, e.size_stored)
    if lower:
        keys.commit(StateChange(unmarks=set(lower)))
        keys.commit(StateChange(marks=lower))
    return len(lower)
