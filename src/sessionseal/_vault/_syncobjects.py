"""A pull's content objects (docs/spec/remote-v1.md, "Content objects"): each fetched (from the
prefetch when one runs, :mod:`._syncfetch`), checked against the size its entry names and its
hash, opened under the keyring held (an epoch two devices made opens under either key),
decompressed within :data:`MAX_OBJECT`, and parsed as a session document or a segment.

With a prefetch (:meth:`PullObjects.prefetch`), the hash check, the decryption and (for a payload
its frame declares at most :data:`OPEN_AHEAD` bytes) the decompression of each planned object run
in the worker thread that fetched it: C code that releases the GIL, which on a pull of many small
sessions otherwise took about a quarter of the applying thread's time (and, the GIL handed back
and forth with the fetching threads, longer than the work itself).  The checks are the same, in
the same order for each object; the size its entry names is checked when it is applied, before
anything of it is used, and an object that does not open is that entry's error then, as before.

Kept apart from the applying pull (:mod:`._syncapply`) so that what decides *whether* to apply
an entry and what turns an entry into bytes each read as one concern.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import orjson

from .. import _compress, _events, _remote, _remotelog
from ..errors import IntegrityError, InvalidInput, RemoteError
from ._syncfetch import Prefetch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._s3 import S3Store
    from ._store import SessionStore
    from ._syncstate import PullResult

__all__ = ["MAX_OBJECT", "OPEN_AHEAD", "PullObjects"]

#: A content object's payload at most (docs/spec/remote-v1.md, "Content objects").
MAX_OBJECT: Final = 512 << 20
#: A payload its frame declares at most this large is decompressed ahead, in the prefetch's
#: worker; a larger one when its entry is applied, so that what is held ahead stays within
#: :data:`._syncfetch.AHEAD` of these whatever the frames declare.
OPEN_AHEAD: Final = 1 << 20


class _Opened(NamedTuple):
    """A planned object as the prefetch's worker left it (:meth:`PullObjects.prefetch`)."""

    size: int  # its bytes, as fetched
    payload: bytes | None  # hash checked and decrypted (``ENCODING_ZSTD || frame``); None: error
    plain: bytes | None  # decompressed, when its frame declares at most OPEN_AHEAD bytes
    error: RemoteError | None  # it does not open: that entry's error, when it is applied


class PullObjects:
    """The content objects one pull reads; the bytes fetched are counted in *result*."""

    def __init__(
        self, s3: S3Store, url: _remote.RemoteUrl, ring: _remotelog.Keyring, rid: uuid.UUID, result: PullResult
    ) -> None:
        self.s3, self.url, self.ring, self.rid, self.result = s3, url, ring, rid, result
        #: The prefetch of the pull's objects while one runs (None: each object fetched alone).
        self.fetch: Prefetch | None = None
        #: The device and name of each object planned (:meth:`planned`), by key.
        self._plans: dict[str, tuple[uuid.UUID, str]] = {}

    def key(self, dev: uuid.UUID, entry: dict[str, Any]) -> str:
        return _remote.device_prefix(self.url, dev) + "o/" + str(entry.get("object"))

    def planned(self, dev: uuid.UUID, entry: dict[str, Any]) -> tuple[str, int]:
        """The object *entry* names as a prefetch plans it (key, the size named, or 0)."""
        key, size = self.key(dev, entry), entry.get("size")
        self._plans[key] = (dev, str(entry.get("object")))
        return key, size if type(size) is int else 0

    def prefetch(self, plan: list[tuple[str, int]]) -> Prefetch:
        """A prefetch of *plan* (of :meth:`planned`) whose workers also open each object."""
        return Prefetch(self.s3, plan, then=self._open_ahead)

    def _open_ahead(self, key: str, data: bytes) -> _Opened:
        # In a prefetch's worker: only reads (the keyring, the plans, filled before it started).
        dev, name = self._plans[key]
        try:
            payload = self._open(dev, name, data)
            size = _compress.declared_size(payload)
            if size is None or size > OPEN_AHEAD:
                return _Opened(len(data), payload, None, None)
            return _Opened(len(data), payload, self._decompress(payload), None)
        except (IntegrityError, InvalidInput):
            return _Opened(len(data), None, None, self._unopened(dev))
        except RemoteError as exc:  # sealed under an epoch whose key this device lacks
            return _Opened(len(data), None, None, exc)

    def payload(self, dev: uuid.UUID, entry: dict[str, Any]) -> bytes:
        """The object *entry* names, checked and opened.

        :raises RemoteError: not the size named, or it does not open (modified or misplaced).
        """
        name, size, key = str(entry.get("object")), entry.get("size"), self.key(dev, entry)
        got = self.s3.get(key) if self.fetch is None else self.fetch.take(key)
        ahead = got if isinstance(got, _Opened) else None
        nbytes = ahead.size if ahead is not None else len(cast("bytes", got))
        if type(size) is not int or nbytes != size:
            raise RemoteError(f"device {dev.hex}'s content object is not the size its entry names")
        self.result.bytes += nbytes
        if ahead is None:
            try:
                return self._decompress(self._open(dev, name, cast("bytes", got)))
            except (IntegrityError, InvalidInput):
                raise self._unopened(dev) from None
        if ahead.error is not None:
            raise ahead.error
        if ahead.plain is not None:
            return ahead.plain
        assert ahead.payload is not None  # opened, or its error
        try:
            return self._decompress(ahead.payload)
        except (IntegrityError, InvalidInput):
            raise self._unopened(dev) from None

    def _open(self, dev: uuid.UUID, name: str, data: bytes) -> bytes:
        """*data*'s hash checked against *name*, then decrypted: ``ENCODING_ZSTD || frame``."""
        return bytes([_compress.ENCODING_ZSTD]) + _remotelog.open_object(name, data, self.ring, self.rid, dev)

    @staticmethod
    def _decompress(payload: bytes) -> bytes:
        return _compress.decompress_bounded(payload, MAX_OBJECT)

    @staticmethod
    def _unopened(dev: uuid.UUID) -> RemoteError:
        return RemoteError(f"device {dev.hex}'s content object does not open (modified or misplaced)")

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
