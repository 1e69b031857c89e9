"""The session store: the only reader and writer of session files (``sessions/<hex>.sst``).

Saves (a new version under a fresh data key), appends (one EVENTS + META group at the end of
what is committed), compaction, metadata edits and reads (docs/spec/container-v1.md; write
ordering: docs/design.md).  Every write takes the session's lock (or is called under it, the
``*_locked`` methods), and records the new version in the index cache after it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from .. import _container, _events, _fts
from .._container import FrameType, Kind
from .._gc import collector_paused
from .._index import entry_of, stamp_of
from .._state import StateChange, tomb_of
from ..errors import IntegrityError, InvalidInput, SessionSealError
from ._common import (
    INTEGRITY,
    MAX_CONTAINER,
    MAX_SESSION_BYTES,
    SUFFIX,
    merge_counts,
    no_session,
    read_header,
    stored_shape,
    timestamp,
    unstorable,
)
from ._context import VaultContext
from ._fulltext import FullText
from ._indexcache import IndexCache
from ._keys import Keys
from ._storeparts import Built, Later, Pending, fit_tags

if TYPE_CHECKING:
    from .._sanitize import Sanitizer
    from ..models import Session

# Built is _storeparts', named here too for the applying pull (_syncapply).
__all__ = ["BATCH_BYTES", "COMPACT_APPENDS", "EDITABLE", "MAX_GROUPS", "Built", "SessionStore"]

#: The document fields a metadata edit may change.
EDITABLE: Final = ("title", "description", "tags", "status", "archived_from", "pinned", "links", "redactions")
#: A session is rewritten as one version once its appended groups outgrow what they were
#: appended to (and this floor), or number MAX_GROUPS: a full read costs a decrypt and a
#: parse per group.  Rewriting is O(session), so it stays amortized O(appended bytes).
COMPACT_APPENDS: Final = 4 << 20
MAX_GROUPS: Final = 1024


#: A batch's documents held for the index, at most (their serialized bytes): then it is flushed.
BATCH_BYTES: Final = 8 << 20


class SessionStore:
    """The session files of one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        index: IndexCache,
        *,
        sanitizer: Callable[[], Sanitizer],
        fulltext: FullText | None = None,
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._index = index
        #: The full-text index: told of every write after the index cache (best effort).
        self._fulltext = fulltext
        self._sanitizer = sanitizer
        #: The batch of this thread (:meth:`batch`): another thread's saves are never held in it.
        self._batches = threading.local()

    # -- reads -------------------------------------------------------------------------

    def exists(self, sid: uuid.UUID) -> bool:
        """Whether the vault has a file for *sid* (its key may be gone: see :meth:`open`)."""
        return self._ctx.sessions.exists(self._keys.file_name(sid) + SUFFIX)

    def stored_generation(self, fname: str) -> int | None:
        """The stored container's version counter; None when there is no file.

        A damaged header reads as 0: it is replaced, and the counter only has to move forward.
        """
        try:
            prefix, _ = self._ctx.sessions.read_prefix(fname, _container.HEADER_SIZE)
            return _container.parse_unverified_header(prefix).generation
        except FileNotFoundError:
            return None
        except IntegrityError:
            return 0

    def open(self, session_id: uuid.UUID) -> _container.SessionLog:
        """A session's container, authenticated.

        :raises SessionNotFound: no file, or its key is gone.
        """
        name = self._keys.file_name(session_id) + SUFFIX
        try:
            raw = self._ctx.sessions.read(name, max_size=MAX_CONTAINER)
        except FileNotFoundError:
            raise no_session(session_id) from None
        return _container.open_session(raw, self._ctx.vault_id, session_id, self._keys.key_for)

    def document(self, log: _container.SessionLog) -> bytes:
        """The session document a log holds: its BODY with every appended group applied."""
        return self.document_parsed(log)[0]

    def document_parsed(self, log: _container.SessionLog) -> tuple[bytes, Any]:
        """:meth:`document`, and the document it serializes if applying appended groups parsed
        it (None: saved whole; a search's page would parse the bytes made from it again)."""
        body = _container.decode_payload(log.body)
        if not log.events:
            return body, None
        with stored_shape():
            doc = orjson.loads(body)
            for payload in log.events:
                _events.apply(doc, _ops_of(payload))
            return orjson.dumps(doc), doc

    def recent_ops(self, sid: uuid.UUID, enough: Callable[[list[dict[str, Any]]], bool]) -> tuple[bool, int]:
        """Give the operations of a session's appended groups to *enough*, the last group
        first, until it says they suffice; never decrypting the session's first version
        (:func:`._container.open_session_recent`).  Returns whether *enough* was satisfied
        (False: the caller reads the whole session) and the bytes decrypted (decompressed).

        :raises SessionNotFound: no file, or its key is gone.
        """
        nbytes = 0

        def given(payload: bytes) -> bool:
            nonlocal nbytes
            data = _container.decode_payload(payload)
            nbytes += len(data)
            return enough(_ops_of_json(data))

        try:
            with self._ctx.sessions.reader(self._keys.file_name(sid) + SUFFIX) as (read_at, size):
                done = _container.open_session_recent(
                    read_at, size, self._ctx.vault_id, sid, key_for=self._keys.key_for, enough=given
                )
        except FileNotFoundError:
            raise no_session(sid) from None
        return done, nbytes

    def read_file(self, fname: str) -> tuple[uuid.UUID, tuple[int, int], bytes, tuple[int, int, int]]:
        """A session file's id, version (container generation, text revision: ``_n.rev`` of its
        last META), stored document and the stamp it had before it was read (a reindex).

        :raises FileNotFoundError, SessionSealError: gone, or not readable."""
        st = os.stat(fname, dir_fd=self._ctx.sessions.fd, follow_symlinks=False)
        header = read_header(self._ctx.sessions, fname)
        if header is None or header.kind != Kind.SESSION or self._keys.file_name(header.object_id) + SUFFIX != fname:
            raise IntegrityError(INTEGRITY)
        log = self.open(header.object_id)
        with stored_shape():
            revision = int((orjson.loads(_container.decode_payload(log.meta)).get("_n") or {}).get("rev") or 0)
        return header.object_id, (log.header.generation, revision), self.document(log), stamp_of(st)

    def read_meta(self, fname: str) -> tuple[_container.SessionTail, bytes]:
        """A session file's tail and its last committed META document (JSON, not validated)."""
        # The last committed META frame only: the frames before it are skipped by their lengths.
        with self._ctx.sessions.reader(fname) as (read_at, size):
            tail = _container.open_session_tail(read_at, size, self._ctx.vault_id, self._keys.key_for)
        return tail, _container.decode_payload(tail.meta)

    def summary(self, sid: uuid.UUID) -> dict[str, Any]:
        """A session's summary (:meth:`read_summary`) by its id.

        :raises FileNotFoundError: no file.
        """
        return self.read_summary(self._keys.file_name(sid) + SUFFIX)

    def read_summary(self, fname: str) -> dict[str, Any]:
        """A session file's summary: its last committed META frame, validated."""
        return self._summary_of(*self.read_meta(fname))

    def _summary_of(self, tail: _container.SessionTail, meta: bytes) -> dict[str, Any]:
        header = tail.header
        from pydantic import ValidationError

        from ..models import SessionSummary

        try:
            doc = orjson.loads(meta)
            # Validated here, where it is read from a session file; the index stores it as is.
            SessionSummary.model_validate(doc)
        except (orjson.JSONDecodeError, ValidationError):
            raise IntegrityError(INTEGRITY) from None
        if not isinstance(doc, dict):
            raise IntegrityError(INTEGRITY)
        # What is committed: a torn append after it (cut off by the next append) is not stored.
        doc["size_stored"], doc["generation"] = tail.end, header.generation
        return doc

    # -- writes ------------------------------------------------------------------------

    def save(self, model: Session, *, touch: bool) -> tuple[int, dict[str, int]]:
        """Sanitize, serialize and write a validated session as a new version.

        :returns: the bytes written (serialized) and the redaction counts.
        """
        b = self.build(model, touch=touch)
        pool: ThreadPoolExecutor | None = getattr(self._batches, "pool", None)
        if pool is None:
            self.write(model.id, b.meta, b.body, doc=b.doc)
        else:
            # In a batch, its BODY is compressed by a thread (zstd lets go of the GIL) while the
            # caller readies the next session; it is written at the next save or the flush,
            # in the order saved.  A write that fails there is that save's, or the flush's, error.
            body = pool.submit(_container.encode_payload, b.body, compress=True)
            self._write_pending()
            self._batches.pending = Pending(model.id, b, body)
        return len(b.body), b.counts

    def _write_pending(self) -> None:
        pending: Pending | None = getattr(self._batches, "pending", None)
        if pending is not None:
            self._batches.pending = None
            b = pending.built
            self.write(pending.sid, b.meta, b.body, doc=b.doc, body_payload=pending.body.result())

    @contextlib.contextmanager
    def batch(self, ahead: Sequence[uuid.UUID] = ()) -> Iterator[dict[uuid.UUID, tuple[int, int]]]:
        """Saves of many sessions under one flush (a pull's batch of new sessions).  A new
        session's file is written to its temp file and left open, its session lock held; at the
        flush every temp file is fsynced at once (:meth:`.._fs.Dir.fsync_all`: one journal
        commit for many files, not one each), renamed, the directory fsynced once, and only
        then are the versions indexed (the listing index with one hold of the vault lock, the
        full-text index with one segment of their own: ``_ftsbatch``) and their marks noted; then
        the session locks are released.  The marks become durable with the caller's audit
        record, after the flush, as a save's do.  Killed before the flush, a session's file is
        absent (its temp file is swept, rule 8); killed after a rename, it may be there
        unindexed and unmarked (the listing reads it, search streams it).

        Yields what the flush named, filled as it goes: each session's (generation, end) as
        written (a new file's end is its size), so the caller need not read the files back.
        *ahead*: the sessions it will save, whose lock files a thread makes meanwhile
        (:meth:`.VaultContext.session_locks_ahead`)."""
        self._batches.later = []
        self._batches.locks = contextlib.ExitStack()
        self._batches.held = set()
        named: dict[uuid.UUID, tuple[int, int]] = {}
        self._batches.named = named
        self._batches.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessionseal-compress")
        try:
            with self._ctx.session_locks_ahead([self._keys.file_name(sid) for sid in ahead]):
                yield named
        finally:
            try:
                try:
                    self._write_pending()  # the last save, whatever ended the block (as before it)
                finally:
                    self._flush()
            finally:
                self._batches.pool.shutdown(wait=True)
                self._batches.pool = self._batches.pending = None
                self._batches.later = None
                self._batches.locks.close()
                self._batches.held = None
                self._batches.named = None

    def _flush(self) -> None:
        later: list[Later] | None = getattr(self._batches, "later", None)
        if not later:
            return
        self._batches.later = []
        sessions = self._ctx.sessions
        named = 0  # later[:named] have their names
        try:
            sessions.fsync_all([it.fd for it in later if it.fd >= 0])
            for it in later:
                if it.tmp:
                    sessions.rename_in(it.tmp, it.fname)
                named += 1
        finally:
            for i, it in enumerate(later):
                # The descriptor closed; a temp file not named (a failed fsync or rename) removed.
                sessions.drop_temp(it.tmp if i >= named else "", it.fd)
            try:
                if named:
                    self._settle(later[:named])
            finally:
                # The files are named, durable and indexed: other writers may take them now.
                self._batches.locks.close()
                self._batches.locks = contextlib.ExitStack()
                self._batches.held = set()

    def _settle(self, named: list[Later]) -> None:
        """What follows the renames of a batch: the directory fsync, the indexes, the marks."""
        self._ctx.sessions.fsync()  # the renames durable before any index or mark names them
        self._index.put_many([(it.fname, entry_of(it.summary), it.stamp) for it in named])
        if self._fulltext is not None:
            self._fulltext.saved_many([(it.sid, (it.generation, 0), it.doc, it.stamp) for it in named])
        self._keys.note(StateChange(marks={it.sid.bytes: (it.generation, it.size) for it in named}))
        versions: dict[uuid.UUID, tuple[int, int]] | None = getattr(self._batches, "named", None)
        if versions is not None:
            versions.update((it.sid, (it.generation, it.size)) for it in named)

    def marked(self, sid: uuid.UUID) -> bool:
        """Whether the vault's anchored state holds a mark of *sid* (a write recorded durably)."""
        return self._keys.state(fresh=True).mark(sid.bytes) is not None

    def settle(self, sid: uuid.UUID) -> None:
        """What a batch's flush does after a file is named (indexed, full-text indexed, its
        mark noted), for a session whose flush a kill cut short (a resumed pull)."""
        name = self._keys.file_name(sid)
        fname = name + SUFFIX
        with self._ctx.session_lock(name, sid):
            try:
                _, version, body, stamp = self.read_file(fname)
                summary = self.read_summary(fname)
            except FileNotFoundError:
                raise no_session(sid) from None
            self._index.put(fname, entry_of(summary), stamp)
            # Not twice: a kill after the batch's flush indexed it (its postings counted double).
            if self._fulltext is not None and not self._fulltext.holds(sid, stamp):
                self._fulltext.saved(sid, version, lambda: body, stamp)
            self._keys.note(StateChange(marks={sid.bytes: (version[0], summary["size_stored"])}))

    def add_keys(self, session_ids: list[uuid.UUID]) -> None:
        """Keys for sessions about to be saved, added with one durable append (a pull's batch
        of new sessions: one key table fsync, not one per save, :meth:`Keys.add_session_keys`)."""
        self._keys.add_session_keys(session_ids)

    def build(self, model: Session, *, touch: bool) -> Built:
        """A validated session sanitized and serialized (:class:`Built`)."""
        with collector_paused():
            # The model accepts any JSON in fields it does not know; not all of it can be stored.
            try:
                doc: dict[str, Any] = model.model_dump(mode="json")
            except ValueError:  # pydantic: nested past about 255 levels
                raise unstorable("session") from None
            if touch:
                doc["updated_at"] = timestamp()  # as pydantic writes it
            clean, counts = self._sanitizer().sanitize_tree(doc)
            assert isinstance(clean, dict)
            if counts:
                fit_tags(clean)
            redactions: Any = merge_counts(doc.get("redactions"), counts)
            clean["redactions"] = redactions
            try:
                body = orjson.dumps(clean)
                meta = orjson.dumps(_events.summary_of(clean, len(body)))
            except orjson.JSONEncodeError:  # an integer past 64 bits, a lone surrogate, 255 levels
                raise unstorable("session") from None
        if len(body) > MAX_SESSION_BYTES:
            raise InvalidInput(f"the session is over {MAX_SESSION_BYTES >> 20} MiB when serialized; split it")
        return Built(meta, body, dict(counts), clean)

    def write(
        self,
        session_id: uuid.UUID,
        meta: bytes,
        body: bytes,
        *,
        doc: dict[str, Any] | None = None,
        body_payload: bytes | None = None,
    ) -> None:
        """Write a new version of a session, under its lock (*body_payload*: BODY encoded already)."""
        name = self._keys.file_name(session_id)
        held: set[str] | None = getattr(self._batches, "held", None)
        if held is None:
            with self._ctx.session_lock(name, session_id):
                self.write_locked(name, session_id, meta, body, doc=doc, body_payload=body_payload)
            return
        self._write_pending()  # a batch's saves are written in the order made
        if name in held:
            self._flush()  # a second save of it in the batch: the first one named first
        # In a batch the lock is held until the flush has named the file (:meth:`batch`).
        self._batches.locks.enter_context(self._ctx.session_lock(name, session_id))
        self._batches.held.add(name)
        self.write_locked(name, session_id, meta, body, doc=doc, body_payload=body_payload)

    def write_locked(
        self,
        name: str,
        session_id: uuid.UUID,
        meta: bytes,
        body: bytes,
        *,
        doc: dict[str, Any] | None = None,
        body_payload: bytes | None = None,
    ) -> None:
        """Write a new version (META, BODY) under a fresh data key; the caller holds the session's lock.

        *doc*: the document BODY serializes, if the caller has it (the index then reads it
        instead of parsing BODY again); *body_payload*: ``encode_payload(body, compress=True)``,
        if the caller made it.
        """
        encoded = _container.encode_payload(body, compress=True) if body_payload is None else body_payload
        frames = [(FrameType.META, _container.encode_payload(meta, compress=True)), (FrameType.BODY, encoded)]
        self._keys.check_writable()  # a rolled-back vault is read-only (issue 20)
        header = read_header(self._ctx.sessions, name + SUFFIX)
        if (
            header is not None
            and header.kind == Kind.SESSION
            and header.object_id == session_id
            and session_id not in self._keys.keytable(fresh=True).session_keys
        ):
            self.replace_keyless(name + SUFFIX, session_id, header)
            header = None
        # The header is read once; without one (no file, a damaged header) stored_generation decides.
        stored = header.generation if header is not None else (self.stored_generation(name + SUFFIX) or 0)
        key = self._keys.session_key(session_id, create=True)  # the table (and its marks) read afresh
        assert key is not None  # create=True always returns a key
        # Above the file's version and the session's mark: a new version of a session whose file
        # is missing or rolled back is not itself taken for a rollback (issue 20).
        mark = self._keys.state().mark(session_id.bytes)
        generation = max(stored, mark[0] if mark else 0) + 1
        data = _container.seal(
            kind=Kind.SESSION,
            vault_id=self._ctx.vault_id,
            object_id=session_id,
            generation=generation,
            kek=key,
            kek_epoch=0,
            frames=frames,
        )
        sessions = self._ctx.sessions
        later: list[Later] | None = getattr(self._batches, "later", None)
        # In a batch (its session lock held to the flush), a new file is fsynced and named there.
        locked = later is not None and name in (getattr(self._batches, "held", None) or ())
        tmp, fd = sessions.write_unsynced(data) if locked and header is None else ("", -1)
        if fd < 0:
            sessions.write_atomic(name + SUFFIX, data, sync_dir=later is None)
        try:
            st = os.fstat(fd) if fd >= 0 else os.stat(name + SUFFIX, dir_fd=sessions.fd, follow_symlinks=False)
        except OSError:
            sessions.drop_temp(tmp, fd)
            raise
        summary = orjson.loads(meta)
        summary["size_stored"], summary["generation"] = st.st_size, generation
        if later is not None:  # in a batch: indexed and marked at its flush
            parsed = doc if doc is not None else orjson.loads(body)
            held = Later(
                name + SUFFIX, session_id, summary, stamp_of(st), generation, st.st_size, parsed, len(body), tmp, fd
            )
            later.append(held)
            if sum(it.nbytes for it in later) > BATCH_BYTES:
                self._flush()
            return
        self._index.put(name + SUFFIX, entry_of(summary), stamp_of(st))
        if self._fulltext is not None:
            self._fulltext.saved(session_id, (generation, 0), lambda: body, stamp_of(st), doc=doc)
        self._keys.note(StateChange(marks={session_id.bytes: (generation, st.st_size)}))

    def replace_keyless(self, fname: str, sid: uuid.UUID, header: _container.Header) -> None:
        """Before a save writes a session whose file is there but whose key is not in the table:
        a file an erasure left to overwrite (its tomb is in the state: a delete killed before
        its overwrite, or another process's delete since this one read the session) is
        overwritten now, and the session is stored anew under a fresh key.  Any other keyless
        file may be this session's newer version under a key that a key table put back from a
        backup lacks: it is never written over (``missing-key``).  The caller holds the lock."""
        if not self._keys.tombed(header.raw):
            raise IntegrityError(
                f"session {sid} has a file but its key is not in the key table, and no erasure of it is "
                "recorded (missing-key: was the key table put back from an older backup?); nothing was "
                "written; run 'sessionseal verify'"
            )
        self._ctx.sessions.shred(fname)
        self._keys.note(StateChange(untombs={tomb_of(header.raw)}))

    def append(self, sid: uuid.UUID, ops: list[dict[str, Any]], *, touch: bool) -> tuple[int, dict[str, int]]:
        """Sanitize and append operations (already validated), under the session's lock.

        :returns: the size of what was appended (serialized) and the redaction counts.
        """
        clean, counts = self._clean(ops)
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            nbytes = self.append_locked(name, sid, clean, counts=counts, touch=touch)
        return nbytes, counts

    def sanitized_ops(self, ops: list[dict[str, Any]]) -> list[Any]:
        """*ops* as :meth:`append` will store them (sanitized: a resumed pull's footprint)."""
        return self._clean(ops)[0]

    def _clean(self, ops: list[dict[str, Any]]) -> tuple[list[Any], dict[str, int]]:
        """Operations sanitized, and the redaction counts."""
        clean, counts = self._sanitizer().sanitize_tree(cast(Any, ops))
        assert isinstance(clean, list)
        if counts:
            for i, op in enumerate(clean):  # a state event may set the tags
                if isinstance(op, dict) and op.get("op") == "set" and isinstance(op.get("value"), dict):
                    # Copies: what sanitize_tree left unchanged is the caller's own objects.
                    value = dict(cast(dict[str, Any], op["value"]))
                    clean[i] = {**op, "value": value}
                    fit_tags(value)
        return clean, dict(counts)

    def upsert(
        self,
        sid: uuid.UUID,
        new: Callable[[], Session | None],
        more: Callable[[dict[str, Any], Callable[[], dict[str, Any]]], list[dict[str, Any]]],
    ) -> tuple[str, int, dict[str, int], tuple[int, int] | None]:
        """Create a session or append to it, deciding which under its lock: two processes'
        first writes never both create it, and what *more* decides from is what it appends to
        (a store adapter's append: sessionseal.integrations).

        *new* gives the session to store when there is no file (None: nothing); *more*, given
        the stored summary (with ``size_stored`` and ``generation``) and a reader of the stored
        (sanitized) document, the operations to append (none: nothing).  Returns what was done
        (``new``, ``appended`` or ``none``), the bytes written, the redaction counts, and the
        stored version after, as (generation, committed size), or None when there is none.
        """
        name = self._keys.file_name(sid)
        fname = name + SUFFIX
        action, nbytes, counts = "none", 0, dict[str, int]()
        with self._ctx.session_lock(name, sid):
            if not self._ctx.sessions.exists(fname):
                model = new()
                if model is None:
                    return action, 0, {}, None
                b = self.build(model, touch=True)
                self.write_locked(name, sid, b.meta, b.body, doc=b.doc)
                action, nbytes, counts = "new", len(b.body), b.counts
            else:
                tail, meta = self.read_meta(fname)
                ops = more(
                    self._summary_of(tail, meta),
                    lambda: cast(dict[str, Any], orjson.loads(self.document(self.open(sid)))),
                )
                if ops:
                    clean, counts = self._clean(ops)
                    # The tail just read: under the lock the file has not moved since (an
                    # append walks the frames of a session grown by many appends once, not twice).
                    nbytes = self.append_locked(name, sid, clean, counts=counts, touch=True, tail=tail)
                    action = "appended"
            # The version now stored, cheaply (a cache key for the caller, not trusted for more:
            # under the lock, the file ends where its last group does).
            size = os.stat(fname, dir_fd=self._ctx.sessions.fd, follow_symlinks=False).st_size
            return action, nbytes, counts, (self.stored_generation(fname) or 0, size)

    def rewrite(self, sid: uuid.UUID, update: Callable[[dict[str, Any]], bool]) -> bool:
        """Apply *update* to a session's stored (sanitized) document and, when it says it changed
        it, write the result as a new version under a fresh data key (not sanitized again: it
        is the stored text).  What it took out leaves the current version; the session's key
        stays (a crypto-erase is :meth:`Erasure.delete` of the whole session)."""
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            with stored_shape():
                doc = orjson.loads(self.document(self.open(sid)))
            if not update(doc):
                return False
            with stored_shape():
                body = orjson.dumps(doc)
                meta = orjson.dumps(_events.summary_of(doc, len(body)))
            self.write_locked(name, sid, meta, body)
        return True

    def append_locked(
        self,
        name: str,
        sid: uuid.UUID,
        ops: list[Any],
        *,
        counts: dict[str, int],
        touch: bool,
        tail: _container.SessionTail | None = None,
    ) -> int:
        """Append one group (EVENTS + META) of sanitized *ops*; the caller holds the session lock
        (and may pass the *tail* it read under it).

        Returns the size of the operations appended (uncompressed).
        """
        fname, sessions = name + SUFFIX, self._ctx.sessions
        self._keys.check_writable()  # a rolled-back vault is read-only (issue 20)
        try:
            if tail is None:
                with sessions.reader(fname) as (read_at, size):
                    tail = _container.open_session_tail(read_at, size, self._ctx.vault_id, self._keys.key_for)
        except FileNotFoundError:
            raise no_session(sid) from None
        self._not_behind(sid, tail.header.generation, tail.end)
        stamp: dict[str, Any] = {}
        with stored_shape():
            meta = orjson.loads(_container.decode_payload(tail.meta))
            if counts:
                stamp["redactions"] = merge_counts(meta.get("redactions"), counts)
        if touch:
            stamp["updated_at"] = timestamp()
        if stamp:
            ops = [*ops, {"op": "set", "value": stamp}]
        try:
            payload = orjson.dumps({"ops": ops})
        except orjson.JSONEncodeError:
            raise unstorable("events") from None
        with stored_shape():
            new_meta = _events.summary_after(meta, ops, len(payload))
            # A new title or description replaces words the full-text index cannot retract: the
            # session's text revision within this version goes up (fts-v1.md, "Writers").
            retitled = _fts.replaces_text(meta, ops)
            revision = int(new_meta["_n"].get("rev") or 0) + retitled
            if retitled:
                new_meta["_n"]["rev"] = revision
            meta_json = orjson.dumps(new_meta)
        if new_meta["size_original"] > MAX_SESSION_BYTES:
            raise InvalidInput(f"the session would be over {MAX_SESSION_BYTES >> 20} MiB; start a new one")
        group = _container.session_group(
            tail.dek,
            tail.header.raw,
            tail.frames,
            _container.encode_payload(payload, compress=True),
            _container.encode_payload(meta_json, compress=True),
        )
        # Written at the end of what is committed: a torn group of a killed writer is cut off.
        end = sessions.append_at(fname, tail.end, group)
        st = os.stat(fname, dir_fd=sessions.fd, follow_symlinks=False)
        new_meta["size_stored"], new_meta["generation"] = st.st_size, tail.header.generation
        self._index.put(fname, entry_of(new_meta), stamp_of(st))
        self._keys.note(StateChange(marks={sid.bytes: (tail.header.generation, end)}))
        appended, groups = end - tail.body_end, (tail.frames - 2) // 2 + 1
        if appended > max(tail.body_end, COMPACT_APPENDS) or groups >= MAX_GROUPS:
            self.compact(name, sid)  # a new version: the index takes it whole
        elif self._fulltext is not None:
            generation = (tail.header.generation, revision)
            if retitled:  # the whole text anew, at the new revision: the old title's words go
                self._fulltext.saved(sid, generation, lambda: self.document(self.open(sid)), stamp_of(st))
            elif not self._fulltext.appended(sid, generation, ops, stamp_of(st), tail.end):
                self._catch_up(name, sid)
        return len(payload)

    def _not_behind(self, sid: uuid.UUID, generation: int, end: int) -> None:
        """Refuse to append to a file below its session's mark (rolled back or cut short): the
        append would raise the mark over what was lost and hide it (issue 20).  A save, which
        writes the whole document as a new version, is still allowed."""
        mark = self._keys.state().mark(sid.bytes)
        if mark is not None and (generation, end) < mark:
            mark = self._keys.state(fresh=True).mark(sid.bytes)  # our copy may be behind another process's
        if mark is not None and (generation, end) < mark:
            raise IntegrityError(
                f"session {sid} is older or shorter than the vault recorded (restored from a backup, or cut): "
                "nothing was appended; run 'sessionseal verify'"
            )

    def _catch_up(self, name: str, sid: uuid.UUID) -> None:
        """The full-text index missed an earlier write of the session (a writer killed between
        the file and the index, a failed update; never a copy's new inodes, which the check does
        not compare): rewrite it as a new version, which the index takes whole. An atomic
        rewrite, best effort like the index: the append it follows stands either way
        (docs/reliability.md). Sync sends a new version whole (docs/sync.md, "Push")."""
        with contextlib.suppress(SessionSealError, OSError):
            self.compact(name, sid)

    def compact(self, name: str, sid: uuid.UUID) -> None:
        """Rewrite a session as one version (META, BODY) with its appends applied: a new
        generation under a fresh data key.  The caller holds the session lock."""
        body = self.document(self.open(sid))
        with stored_shape():
            meta = orjson.dumps(_events.summary_of(orjson.loads(body), len(body)))
        self.write_locked(name, sid, meta, body)

    def edit(self, sid: uuid.UUID, update: Callable[[dict[str, Any]], bool]) -> bool:
        """Apply *update* to a session's stored (sanitized) document, and append the fields it
        changed: the content is neither rewritten nor re-encrypted.

        Only metadata changes (:data:`EDITABLE`; new text is sanitized by the caller).
        ``updated_at`` stays: an edit of metadata is not an update of the content, and must
        not make a session look young to retention.  Returns whether anything changed; an
        unchanged session is not written.
        """
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            body = self.document(self.open(sid))
            with stored_shape():
                doc = orjson.loads(body)
                before = {k: orjson.dumps(doc.get(k)) for k in EDITABLE}
                update(doc)
                fields = {k: doc.get(k) for k in EDITABLE if orjson.dumps(doc.get(k)) != before[k]}
            if fields:
                self.append_locked(name, sid, [{"op": "set", "value": fields}], counts={}, touch=False)
        return bool(fields)


def _ops_of(payload: bytes) -> list[dict[str, Any]]:
    return _ops_of_json(_container.decode_payload(payload))


def _ops_of_json(data: bytes) -> list[dict[str, Any]]:
    try:
        return _events.check_ops(orjson.loads(data).get("ops"))
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        raise IntegrityError(INTEGRITY) from None
