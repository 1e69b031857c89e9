"""Checkpoints through a remote: ``checkpoint.put`` and ``checkpoint.delete`` (issue 26;
docs/spec/remote-v1.md, "Checkpoints"; docs/sync.md, "Push" and "Pull").

**Push.**  A checkpoint creates no new version of its session, so the session's mark does not
say one was made: the push compares each live session's checkpoint files with what its cursor
saw of them (:attr:`Cursor.ckpts`: per local number, a tag of the file's header and the id it
went out as).  The tag is there because a local number is reused once the highest checkpoint
is deleted: number 3 deleted and made again is another checkpoint, and its header (a fresh
wrapped key) says so.  A new one goes out as its document (a content object) and its entry,
after the session's own entries in the same batch, so the cursor replace that commits the
entries commits what it saw too; one gone goes out as ``checkpoint.delete``.  One that a pull
added (its META names its ``remote`` id) is noted and never sent: it is another device's.

**Pull.**  A ``checkpoint.put`` adds a checkpoint through the vault's own checkpoint write
(the document parsed and sanitized as ``save`` does, the name as ``checkpoint create`` does,
audited ``checkpoint.create``), with its remote id in its META.  That id makes it idempotent
without a recorded intent: before writing, the session's checkpoints are read for it, so a
pull killed after the write and before its cursor moved finds it and writes nothing.  A
``checkpoint.delete`` removes only a checkpoint whose META names that id (a local one names
none) and only when the id is one of a ``checkpoint.put`` of the same device's log.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _container, _events, _remotelog
from ..errors import InvalidInput, RemoteError, SessionNotFound
from ._ckpts import Checkpoints
from ._context import VaultContext
from ._edits import clean_text
from ._keys import Keys
from ._store import SessionStore

if TYPE_CHECKING:
    from .._sanitize import Sanitizer
    from ._auditing import Auditor
    from ._synccursor import Cursor
    from ._syncstate import PullResult, PushResult

__all__ = ["KINDS", "CheckpointSync", "Files", "checkpoint_id"]

#: The entries of this module.
KINDS: Final = frozenset({"checkpoint.put", "checkpoint.delete"})
#: The namespace of remote ids (docs/spec/remote-v1.md: the one of fork ids).
NAMESPACE: Final = uuid.UUID("5e55105e-a1f0-4c0d-8a5e-f0f4c0ffee26")
_REASONS: Final = frozenset({"manual", "before-restore"})
#: Held of a session's checkpoints: local number -> (header tag, remote id or None).
Held = dict[int, tuple[bytes, uuid.UUID | None]]
#: A session's checkpoint files now: local number -> (file name, header tag).
Files = dict[int, tuple[str, bytes]]
#: Seal and PUT a content object: its name and size.
PutObject = Callable[[bytes], tuple[str, int]]
#: How old ``checkpoints/``'s times must be for a push to keep them as its stamp (:func:`_stamp`):
#: well above any file system's timestamp granularity (two seconds on FAT).
SETTLED_NS: Final = 3_000_000_000


def checkpoint_id(session: uuid.UUID, device: uuid.UUID, seq: int) -> uuid.UUID:
    """A checkpoint's id on the remote: every device derives the same from its first put."""
    return uuid.uuid5(NAMESPACE, f"{session}/checkpoint/{device}/{seq}")


class CheckpointSync:
    """The checkpoints' part of a push and of a pull."""

    def __init__(
        self,
        ctx: VaultContext,
        keys: Keys,
        store: SessionStore,
        checkpoints: Checkpoints,
        auditor: Auditor,
        *,
        sanitizer: Callable[[], Sanitizer],
    ) -> None:
        self._ctx, self._keys, self._store, self._ckpts = ctx, keys, store, checkpoints
        self._auditor, self._sanitizer = auditor, sanitizer

    # -- push ------------------------------------------------------------------------------

    def changed(self, cursor: Cursor, live: Iterable[bytes]) -> dict[bytes, Files]:
        """The live sessions whose checkpoint files differ from what *cursor* saw, each with
        its files now.  What the cursor holds of a session no longer live is dropped: an erased
        session sends no checkpoint entry (its tombstone covers them).

        Only the highest checkpoint's header is read when a session has the numbers it had: a
        new checkpoint takes one more than the highest present, so a number *k* made again was
        the highest then, every number above it gone; were the numbers the same now, the
        highest is *k* itself or was made again after it, and its header tells.

        Nothing is read when ``checkpoints/`` is as the last push that found nothing new saw
        it (:attr:`Cursor.ckpts_dir`, see :func:`_stamp`): a push with no checkpoint made or
        deleted since costs one ``fstat``, however many sessions have checkpoints."""
        live = set(live)
        for sid in [s for s in cursor.ckpts if s not in live]:
            del cursor.ckpts[sid]
        stamp = _stamp(self._ctx.ckpts.fd)  # before the listing: a change after it moves it
        if stamp is not None and stamp[0] == cursor.ckpts_dir:
            return {}
        cursor.ckpts_dir = None
        out = self._changed(cursor, live)
        if not out and stamp is not None and stamp[1]:
            cursor.ckpts_dir = stamp[0]  # the cursor holds every file as of the stamp
        return out

    def _changed(self, cursor: Cursor, live: set[bytes]) -> dict[bytes, Files]:
        by_stem: dict[str, list[tuple[int, str]]] = {}
        for name in self._ctx.ckpts.names():  # one listing for every session
            stem = name.rpartition("-")[0]
            if (number := _checkpoints.number_of(stem, name)) is not None:
                by_stem.setdefault(stem, []).append((number, name))
        if not by_stem and not cursor.ckpts:
            return {}
        out: dict[bytes, Files] = {}
        for sid in live:
            stem = self._keys.file_name(uuid.UUID(bytes=sid))
            if stem not in by_stem and sid not in cursor.ckpts:
                continue
            files, seen = sorted(by_stem.get(stem, ())), cursor.ckpts.get(sid, {})
            if files and {n for n, _ in files} == set(seen) and self._tag(files[-1][1]) == seen[files[-1][0]][0]:
                continue  # the same numbers, the highest the same file: none replaced (see below)
            now = {n: (f, tag) for n, f in files if (tag := self._tag(f)) is not None}
            if {n: t for n, (_, t) in now.items()} != {n: t for n, (t, _) in seen.items()}:
                out[sid] = now
        return out

    def push(
        self,
        cursor: Cursor,
        sessions: Iterable[bytes],
        changed: dict[bytes, Files],
        *,
        entries: list[dict[str, Any]],
        put: PutObject,
        result: PushResult,
    ) -> None:
        """Append the checkpoint entries of those of *sessions* that *changed* names to
        *entries*, the batch that the next commit seals in order after *cursor*'s last entry
        (after the sessions' own entries, and after every put of the batch: a pull's run of new
        sessions stays one; so the seq each id names is known here), and note them in *cursor*,
        which that commit writes with them."""
        for sid in sessions:
            if sid in changed:
                self._session(cursor, sid, changed[sid], entries, put, result)

    def _session(  # noqa: PLR0917 - the batch's parts, passed through
        self,
        cursor: Cursor,
        sid: bytes,
        files: Files,
        entries: list[dict[str, Any]],
        put: PutObject,
        result: PushResult,
    ) -> None:
        session = uuid.UUID(bytes=sid)
        held: Held = dict(cursor.ckpts.get(sid, {}))
        for number, (tag, cid) in sorted(held.items()):
            if number not in files or files[number][1] != tag:  # gone, or its number reused
                del held[number]
                if cid is not None:
                    entries.append({"kind": "checkpoint.delete", "session": str(session), "checkpoint": str(cid)})
                    result.checkpoints_deleted += 1
        for number, (fname, tag) in sorted(files.items()):
            if number in held:
                continue
            try:
                meta, body = self._ckpts.read(session, number, fname, meta_only=True)
                if "remote" in meta:
                    held[number] = (tag, None)  # a pull added it: another device's
                    continue
                meta, body = self._ckpts.read(session, number, fname, meta_only=False)
            except FileNotFoundError:
                continue  # deleted meanwhile: the next push sees it gone
            assert body is not None
            name, size = put(body)
            cid = checkpoint_id(session, cursor.device, cursor.seq + len(entries) + 1)
            entries.append(
                {
                    "kind": "checkpoint.put",
                    "session": str(session),
                    "checkpoint": str(cid),
                    **_fields(meta),
                    "object": name,
                    "size": size,
                }
            )
            held[number] = (tag, cid)
            result.checkpoints += 1
        cursor.ckpts[sid] = held

    def carried(self, cursor: Cursor, sid: bytes, put: PutObject) -> list[dict[str, Any]] | None:
        """The checkpoints of session *sid* this device put and has not deleted, as its log's
        ``rebase`` restates them (docs/spec/remote-v1.md, "Rebase and retirement"): each its
        ``checkpoint.put``'s fields, the same id, with its document sealed again by *put* (under
        the rebase's epoch: the old epoch's object goes at retirement).  None when one changed
        since the push sent it: the rebase is put off to the next push, as for a session."""
        session = uuid.UUID(bytes=sid)
        files = dict(self._ckpts.files(self._keys.file_name(session)))
        out: list[dict[str, Any]] = []
        for number, (tag, cid) in sorted(cursor.ckpts.get(sid, {}).items()):
            if cid is None:
                continue  # another device's (a pull added it): that device restates it
            fname = files.get(number)
            try:
                if fname is None or self._tag(fname) != tag:
                    return None
                meta, body = self._ckpts.read(session, number, fname, meta_only=False)
            except FileNotFoundError:
                return None
            if body is None or self._tag(fname) != tag:  # replaced while it was read
                return None
            name, size = put(body)
            out.append({"session": str(session), "checkpoint": str(cid), **_fields(meta), "object": name, "size": size})
        return out

    def _tag(self, fname: str) -> bytes | None:
        """A tag of a checkpoint file's header (its wrapped key is fresh per file); None: gone."""
        try:
            with self._ctx.ckpts.reader(fname) as (read_at, _):
                return hashlib.sha256(read_at(0, _container.HEADER_SIZE)).digest()[:16]
        except FileNotFoundError:
            return None

    # -- pull ------------------------------------------------------------------------------

    def apply(
        self,
        device: uuid.UUID,
        entry: dict[str, Any],
        *,
        payload: Callable[[], bytes],
        log: Sequence[_remotelog.Opened],
        result: PullResult,
    ) -> None:
        """Apply one checkpoint entry of *device*'s log (*log*: that log as read).

        :raises KeyError, TypeError, ValueError: the entry is out of shape (the caller says so).
        """
        sid = uuid.UUID(str(entry["session"]))
        cid = uuid.UUID(str(entry["checkpoint"]))
        try:
            log_of_session = self._store.open(sid)
        except SessionNotFound:
            result.skipped += 1  # a session this vault does not hold
            return
        if entry["kind"] == "checkpoint.delete":
            self._delete(device, sid, cid, log, result)
            return
        name, reason, created_at = str(entry["name"]), str(entry["reason"]), str(entry["created_at"])
        if reason not in _REASONS or len(created_at) > 64:
            raise ValueError(reason)
        datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        fname = self._keys.file_name(sid)
        if self._find(fname, sid, cid) is None:
            label, counts = self._label(name)
            body, summary, more = self._document(sid, payload())
            with self._ctx.session_lock(fname, sid):
                if self._find(fname, sid, cid) is None:  # under the lock: the write decides
                    log_of_session = self._store.open(sid)
                    taken = {c.name for c in self._ckpts.list(sid, self._ckpts.files(fname))}
                    free = next(x for i in itertools.count(1) if (x := f"{label}.{i}" if i > 1 else label) not in taken)
                    cp = self._ckpts.write_locked(
                        fname, sid, log_of_session, body, free, reason=reason, pulled=(cid, created_at, summary)
                    )
                    self._auditor.record(
                        "checkpoint.create",
                        session=sid,
                        nbytes=len(body),
                        redactions={k: counts.get(k, 0) + more.get(k, 0) for k in {*counts, *more}},
                        private={"number": cp.number},
                    )
        result.checkpoints += 1

    def restate(
        self,
        device: uuid.UUID,
        rebase: dict[str, Any],
        *,
        payload: Callable[[dict[str, Any]], bytes],
        log: Sequence[_remotelog.Opened],
        result: PullResult,
        dead: Callable[[Any], bool],
    ) -> None:
        """A log read from its ``rebase``: the checkpoints it restates, each applied as its
        ``checkpoint.put`` (idempotent by its id: a rebase applied again adds none twice); none
        of a session a tombstone erased.  A rebase written before it carried them restates none.

        :raises KeyError, TypeError, ValueError: out of shape (the caller says so).
        """
        for record in rebase.get("checkpoints", []):
            put = {**record, "kind": "checkpoint.put"}
            if dead(put["session"]):
                result.deleted += 1
                continue
            self.apply(device, put, payload=functools.partial(payload, put), log=log, result=result)

    def _delete(
        self, device: uuid.UUID, sid: uuid.UUID, cid: uuid.UUID, log: Sequence[_remotelog.Opened], result: PullResult
    ) -> None:
        if not _was_put(log, sid, cid):  # names no checkpoint that device put: nothing of this vault is its to delete
            result.skipped += 1
            return
        fname = self._keys.file_name(sid)
        with self._ctx.session_lock(fname, sid):
            number = self._find(fname, sid, cid)
            if number is None:
                return  # never added here, deleted here already, or by a pull killed after it
            overwritten = self._ctx.ckpts.shred(_checkpoints.file_name(fname, number))
        self._auditor.record(
            "checkpoint.delete", session=sid, private={"number": number}, detail={"overwritten": overwritten}
        )
        result.checkpoints_deleted += 1

    def _find(self, fname: str, sid: uuid.UUID, cid: uuid.UUID) -> int | None:
        """The local number of the checkpoint a pull added as *cid*, if there is one."""
        for number, f in self._ckpts.files(fname):
            try:
                meta, _ = self._ckpts.read(sid, number, f, meta_only=True)
            except FileNotFoundError:
                continue
            if meta.get("remote") == str(cid):
                return number
        return None

    def _label(self, name: str) -> tuple[str, dict[str, int]]:
        """The checkpoint's name, checked and sanitized as ``checkpoint create`` does."""
        try:
            return clean_text(self._sanitizer(), _checkpoints.check_label(name), "checkpoint name")
        except InvalidInput:
            raise ValueError(name) from None

    def _document(self, sid: uuid.UUID, payload: bytes) -> tuple[bytes, dict[str, Any], dict[str, int]]:
        """The checkpoint's document validated and sanitized as ``save`` does: the body, its
        summary, the redactions made here."""
        from ..models import parse_session

        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or str(doc.get("id")) != str(sid):
            raise RemoteError("a pulled checkpoint's object is not a document of its session")
        try:
            built = self._store.build(parse_session(payload), touch=False)
        except InvalidInput:
            raise RemoteError("a pulled checkpoint is not a valid session document") from None
        return built.body, _events.summary_of(built.doc, len(built.body)), built.counts


def _stamp(fd: int) -> tuple[tuple[int, int, int], bool] | None:
    """``checkpoints/``'s inode, mtime and ctime (ns), and whether they are settled: older than
    :data:`SETTLED_NS`.  Every checkpoint made, replaced or deleted is a name created, renamed
    or unlinked in the directory, which moves both times; but a file system's timestamps are
    coarse (a jiffy, a second, two on FAT), so a change made in the same tick as the stamp's
    listing would leave it as it was.  A stamp is kept only once settled (git's "racily clean"
    index entries, the same rule): any later change then stamps a later tick.  None: no
    ``fstat`` (every file is looked at, as before)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    settled = max(st.st_mtime_ns, st.st_ctime_ns) < time.time_ns() - SETTLED_NS
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns), settled


def _fields(meta: dict[str, Any]) -> dict[str, str]:
    """A ``checkpoint.put``'s fields of the checkpoint's own (its META): name, reason, time."""
    return {
        "name": str(meta.get("name", "")),
        "reason": str(meta.get("reason", "manual")),
        "created_at": str(meta.get("created_at", "")),
    }


def _was_put(log: Sequence[_remotelog.Opened], sid: uuid.UUID, cid: uuid.UUID) -> bool:
    """Whether *log* put checkpoint *cid* of session *sid*: a ``checkpoint.put`` of it, or a
    ``rebase`` restating it (a reader enrolled after the rebase reads the log from it: the put
    before it is not read, and once the old epoch is retired, not readable)."""
    for o in log:
        kind = o.entry.get("kind")
        puts = [o.entry] if kind == "checkpoint.put" else o.entry.get("checkpoints", []) if kind == "rebase" else []
        for put in puts if isinstance(puts, list) else ():
            if isinstance(put, dict) and put.get("checkpoint") == str(cid) and put.get("session") == str(sid):
                return True
    return False
