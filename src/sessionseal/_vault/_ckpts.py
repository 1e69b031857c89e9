"""Checkpoints and forks (docs/spec/container-v1.md, "Checkpoints"; _checkpoints.py).

A checkpoint is its own container in ``checkpoints/<hex>-<n>.ckp``, under a fresh data key
wrapped by its session's key: erasing the session crypto-erases its checkpoints.  Every
method that writes takes the session's lock, or is called under it (the ``*_locked`` ones,
and those documented so).
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import uuid
from collections.abc import Iterable
from typing import Any, Final

import orjson

from .. import _checkpoints, _container, _events
from .._checkpoints import Checkpoint
from .._container import FrameType, Kind
from ..errors import IntegrityError, InvalidInput, SessionNotFound, SessionSealError
from ._common import INTEGRITY, MAX_CONTAINER, SUFFIX, merge_counts, no_session, stored_shape, timestamp
from ._context import VaultContext
from ._keys import Keys
from ._store import SessionStore

#: Largest checkpoint META frame read when listing (a name, a title, a few numbers).
MAX_CKPT_META: Final = 1 << 20


def no_checkpoint(sid: uuid.UUID) -> SessionNotFound:
    return SessionNotFound(f"session {sid} has no such checkpoint; see 'sessionseal checkpoint list {sid}'")


class Checkpoints:
    """The checkpoints of one open vault's sessions, and forks of sessions."""

    def __init__(self, ctx: VaultContext, keys: Keys, store: SessionStore) -> None:
        self._ctx = ctx
        self._keys = keys
        self._store = store

    def create(self, sid: uuid.UUID, label: str | None) -> Checkpoint:
        """Checkpoint a session as it is now (appends included), under its lock."""
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            log = self._store.open(sid)
            return self.write_locked(name, sid, log, self._store.document(log), label, reason="manual")

    def of_session(self, sid: uuid.UUID) -> builtins.list[Checkpoint]:
        """A session's checkpoints, oldest first.

        :raises SessionNotFound: no such session.
        """
        self._keys.key_for(sid)
        if not self._store.exists(sid):
            raise no_session(sid)
        return self.list(sid, self.files(self._keys.file_name(sid)))

    def restore(self, sid: uuid.UUID, ref: str | int) -> tuple[Checkpoint, Checkpoint, int]:
        """Put a session's content back as it was at checkpoint *ref*, after checkpointing it as
        it is now.  Returns the checkpoint restored, the one saved, and the bytes written."""
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            cp, old = self.body(name, sid, ref)
            log = self._store.open(sid)
            current = self._store.document(log)
            numbers = {n for n, _ in self.files(name)}
            try:
                saved = self.write_locked(name, sid, log, current, None, reason="before-restore")
                now = timestamp()
                with stored_shape():
                    doc = _checkpoints.restored_document(orjson.loads(old), orjson.loads(current), now)
                    body = orjson.dumps(doc)
                    meta = orjson.dumps(_events.summary_of(doc, len(body)))
                self._store.write_locked(name, sid, meta, body)
            except BaseException:
                self.drop_unused(name, sid, log.header.generation, numbers)
                raise
        return cp, saved, len(body)

    def delete(self, sid: uuid.UUID, ref: str | int) -> tuple[Checkpoint, bool]:
        """Overwrite and unlink a checkpoint; returns it and whether it was overwritten."""
        name = self._keys.file_name(sid)
        with self._ctx.session_lock(name, sid):
            cp, cfname = self.find(name, sid, ref)
            return cp, self._ctx.ckpts.shred(cfname)

    def fork(
        self,
        sid: uuid.UUID,
        new_id: uuid.UUID,
        ref: str | int | None,
        *,
        title: str | None,
        counts: dict[str, int],
        continuation: bool,
    ) -> tuple[int | None, int]:
        """Store *new_id* as a fork of *sid* (as it was at checkpoint *ref*, if given).

        :returns: the checkpoint's number (None: the session as it is) and the bytes written.
        """
        name = self._keys.file_name(sid)
        number = None
        with self._ctx.session_lock(name, sid):
            if ref is None:
                source = self._store.document(self._store.open(sid))
            else:
                cp, source = self.body(name, sid, ref)
                number = cp.number
        now = timestamp()
        with stored_shape():
            doc = _checkpoints.fork_document(orjson.loads(source), new_id, now, title=title, continuation=continuation)
            if counts:
                doc["redactions"] = merge_counts(doc.get("redactions"), counts)
            body = orjson.dumps(doc)
            meta = orjson.dumps(_events.summary_of(doc, len(body)))
        self._store.write(new_id, meta, body)
        return number, len(body)

    def files(self, name: str) -> builtins.list[tuple[int, str]]:
        """A session's checkpoint files by number, oldest first (*name*: its file name stem)."""
        found = ((_checkpoints.number_of(name, f), f) for f in self._ctx.ckpts.names())
        return sorted((n, f) for n, f in found if n is not None)

    def read(self, sid: uuid.UUID, number: int, fname: str, *, meta_only: bool) -> tuple[dict[str, Any], bytes | None]:
        """Authenticate a checkpoint: its META document, and its session document unless
        *meta_only* (which reads the header and the META frame alone).

        :raises FileNotFoundError: the file is gone (callers map it).
        """
        key = self._keys.key_for(sid)
        if meta_only:
            with self._ctx.ckpts.reader(fname) as (read_at, _):
                # The META frame's length is read unauthenticated: bounded before it is used.
                head = read_at(0, _container.HEADER_SIZE + 4)
                if len(head) < _container.HEADER_SIZE + 4:
                    raise IntegrityError(INTEGRITY)
                length = int.from_bytes(head[_container.HEADER_SIZE :], "big")
                if length > MAX_CKPT_META:
                    raise IntegrityError(INTEGRITY)
                data = read_at(0, _container.HEADER_SIZE + 4 + length)
        else:
            data = self._ctx.ckpts.read(fname, max_size=MAX_CONTAINER)
        meta_p, body_p = _container.open_checkpoint(data, self._ctx.vault_id, sid, number, key, meta_only=meta_only)
        try:
            meta = orjson.loads(_container.decode_payload(meta_p))
        except orjson.JSONDecodeError:
            raise IntegrityError(INTEGRITY) from None
        if not isinstance(meta, dict):
            raise IntegrityError(INTEGRITY)
        return meta, None if body_p is None else _container.decode_payload(body_p)

    def list(self, sid: uuid.UUID, files: Iterable[tuple[int, str]]) -> builtins.list[Checkpoint]:
        """The checkpoints among *files*, authenticated (their META frames only)."""
        out = []
        for number, fname in files:
            try:
                meta, _ = self.read(sid, number, fname, meta_only=True)
            except FileNotFoundError:
                continue  # deleted since the directory was listed
            out.append(Checkpoint.from_meta(sid, number, meta))
        return out

    def find(self, name: str, sid: uuid.UUID, ref: str | int) -> tuple[Checkpoint, str]:
        """A checkpoint by number (``3``, ``"3"`` or ``"#3"``) or by name."""
        files = self.files(name)
        text = str(ref).strip()
        if text.lstrip("#").isdigit():
            wanted = int(text.lstrip("#"))
            files = [(n, f) for n, f in files if n == wanted]
            found = self.list(sid, files)
        else:
            found = [c for c in self.list(sid, files) if c.name == text]
        if not found:
            self._keys.key_for(sid)  # a missing session is reported as such
            raise no_checkpoint(sid)
        cp = found[0]
        return cp, _checkpoints.file_name(name, cp.number)

    def body(self, name: str, sid: uuid.UUID, ref: str | int) -> tuple[Checkpoint, bytes]:
        """A checkpoint and the session document it holds; the caller holds the session lock."""
        cp, fname = self.find(name, sid, ref)
        try:
            _, body = self.read(sid, cp.number, fname, meta_only=False)
        except FileNotFoundError:
            raise no_checkpoint(sid) from None
        assert body is not None
        return cp, body

    def write_locked(
        self,
        name: str,
        sid: uuid.UUID,
        log: _container.SessionLog,
        body: bytes,
        label: str | None,
        *,
        reason: str,
        pulled: tuple[uuid.UUID, str, dict[str, Any]] | None = None,
    ) -> Checkpoint:
        """Write a checkpoint of *body* (the document of *log*); the caller holds the session lock.

        *pulled*: one a sync pull adds (its id on the remote, its time there, the summary of
        *body*), kept in its META as ``remote`` so that the pull finds it again and no push of
        this device sends it as its own (docs/spec/remote-v1.md, "Checkpoints")."""
        self._keys.check_writable()  # a rolled-back vault is read-only (issue 20)
        files = self.files(name)
        number = files[-1][0] + 1 if files else 1
        taken = {c.name for c in self.list(sid, files)}
        if label is None:
            base = f"{reason if reason != 'manual' else 'checkpoint'}-{number}"
            label = base
            for i in itertools.count(2):
                if label not in taken:
                    break
                label = f"{base}.{i}"
        elif label in taken:
            raise InvalidInput(f"session {sid} has a checkpoint of that name already; pick another name")
        with stored_shape():
            summary = orjson.loads(_container.decode_payload(log.meta)) if pulled is None else pulled[2]
            meta = {
                "number": number,
                "name": label,
                "created_at": timestamp() if pulled is None else pulled[1],
                "reason": reason,
                "title": str(summary.get("title") or ""),
                "message_count": int(summary.get("message_count") or 0),
                "size_original": len(body),
                "session_generation": log.header.generation,
            }
            if pulled is not None:
                meta["remote"] = str(pulled[0])
        data = _container.seal(
            kind=Kind.CHECKPOINT,
            vault_id=self._ctx.vault_id,
            object_id=sid,
            generation=number,
            kek=self._keys.key_for(sid),
            kek_epoch=0,
            frames=[
                (FrameType.META, _container.encode_payload(orjson.dumps(meta), compress=False)),
                (FrameType.BODY, _container.encode_payload(body, compress=True)),
            ],
        )
        self._ctx.ckpts.write_atomic(_checkpoints.file_name(name, number), data)
        return Checkpoint.from_meta(sid, number, meta)

    def drop_unused(
        self, name: str, sid: uuid.UUID, generation: int, numbers: set[int], label: str | None = None
    ) -> None:
        """After a restore or a replacing import failed: remove the checkpoint it made (one not
        in *numbers*, named *label* if given) if the session is still at *generation*: it holds
        what the session still holds, and a failure is to change nothing.  Best effort; the
        caller holds the session lock."""
        with contextlib.suppress(SessionSealError):
            if self._store.stored_generation(name + SUFFIX) != generation:
                return  # replaced after all: the checkpoint holds what it replaced
            made = [(n, f) for n, f in self.files(name) if n not in numbers]
            for cp in self.list(sid, made):
                if label is None or cp.name == label:
                    self._ctx.ckpts.shred(_checkpoints.file_name(name, cp.number))

    def shred_all(self, name: str) -> int:
        """Overwrite and unlink a session's checkpoint files (after its key is gone, or with
        it going); returns how many.  The caller holds the session's lock."""
        files = self.files(name)
        for _, fname in files:
            self._ctx.ckpts.shred(fname)
        return len(files)
