"""A pull's content objects (docs/spec/remote-v1.md, "Content objects"): each fetched (from the
prefetch when one runs, :mod:`._syncfetch`), checked against the size its entry names and its
hash, opened under the keyring held (an epoch two devices made opens under either key),
decompressed within :data:`MAX_OBJECT`, and parsed as a session document or a segment.

Kept apart from the applying pull (:mod:`._syncapply`) so that what decides *whether* to apply
an entry and what turns an entry into bytes each read as one concern.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _compress, _events, _remote, _remotelog
from ..errors import IntegrityError, InvalidInput, RemoteError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._s3 import S3Store
    from ._store import SessionStore
    from ._syncfetch import Prefetch
    from ._syncstate import PullResult

__all__ = ["MAX_OBJECT", "PullObjects"]

#: A content object's payload at most (docs/spec/remote-v1.md, "Content objects").
MAX_OBJECT: Final = 512 << 20


class PullObjects:
    """The content objects one pull reads; the bytes fetched are counted in *result*."""

    def __init__(
        self, s3: S3Store, url: _remote.RemoteUrl, ring: _remotelog.Keyring, rid: uuid.UUID, result: PullResult
    ) -> None:
        self.s3, self.url, self.ring, self.rid, self.result = s3, url, ring, rid, result
        #: The prefetch of the pull's objects while one runs (None: each object fetched alone).
        self.fetch: Prefetch | None = None

    def key(self, dev: uuid.UUID, entry: dict[str, Any]) -> str:
        return _remote.device_prefix(self.url, dev) + "o/" + str(entry.get("object"))

    def payload(self, dev: uuid.UUID, entry: dict[str, Any]) -> bytes:
        """The object *entry* names, checked and opened.

        :raises RemoteError: not the size named, or it does not open (modified or misplaced).
        """
        name, size, key = str(entry.get("object")), entry.get("size"), self.key(dev, entry)
        data = self.s3.get(key) if self.fetch is None else self.fetch.take(key)
        if type(size) is not int or len(data) != size:
            raise RemoteError(f"device {dev.hex}'s content object is not the size its entry names")
        self.result.bytes += len(data)
        try:
            frame = _remotelog.open_object(name, data, self.ring, self.rid, dev)
            return _compress.decompress_bounded(bytes([1]) + frame, MAX_OBJECT)
        except (IntegrityError, InvalidInput):
            raise RemoteError(f"device {dev.hex}'s content object does not open (modified or misplaced)") from None

    def document(self, dev: uuid.UUID, entry: dict[str, Any]) -> dict[str, Any]:
        """A session document (a ``session.put``'s object)."""
        try:
            doc = orjson.loads(self.payload(dev, entry))
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            raise RemoteError(f"device {dev.hex}'s content object is not a session document")
        return doc

    def segment(self, dev: uuid.UUID, entry: dict[str, Any]) -> list[Any]:
        """An appended segment's groups of operations (a ``session.append``'s object)."""
        try:
            return [orjson.loads(line) for line in self.payload(dev, entry).splitlines() if line]
        except orjson.JSONDecodeError:
            raise RemoteError(f"device {dev.hex}'s content object is not a segment") from None

    def line(
        self,
        log: Sequence[_remotelog.Opened],
        dev: uuid.UUID,
        seq: int,
        sid: uuid.UUID,
        ops: list[dict[str, Any]],
        *,
        store: SessionStore,
    ) -> dict[str, Any]:
        """The session *sid* as device *dev* holds it once its entry *seq* of *log* (an append
        of *ops*) is applied: its last ``session.put`` of it and its appends
        since; or, when its log holds no put of it (its line started from a pull), this vault's
        version with the segment applied: nothing of either is dropped."""
        entries = [o for o in log if o.seq < seq and o.entry.get("session") == str(sid)]
        puts = [i for i, o in enumerate(entries) if o.entry.get("kind") == "session.put"]
        if puts:
            doc = self.document(dev, entries[puts[-1]].entry)
            for o in entries[puts[-1] + 1 :]:
                if o.entry.get("kind") == "session.append":
                    _events.apply(doc, _events.check_ops(self.segment(dev, o.entry)))
        else:
            doc = orjson.loads(store.document(store.open(sid)))
        _events.apply(doc, ops)
        return doc
