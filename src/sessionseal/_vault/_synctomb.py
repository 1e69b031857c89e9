"""Deletes that reach every copy (issue 26; docs/sync.md, "Deletes"; docs/spec/remote-v1.md,
``tombstone`` and ``epoch`` entries).

A ``delete`` or ``cleanup`` records the sessions it erases, for every remote this vault has a
device on, in the key table's state, in the very write that erases them
(:func:`._erasure.entomb`): a delete is never inferred from a session's absence, so a damaged or
restored vault cannot erase anyone's copies.  The next push on a remote (:func:`push_tombstones`):

1. names in a ``tombstone`` entry those of them it ever sent or pulled there (its cursor's
   ``sessions``), under a **new epoch** made for it (reason ``delete``: its key wrapped for every
   enrolled device that is not revoked, read from the verified logs), as a revocation does;
2. deletes this device's own content objects of the erased sessions: those its own log names
   for them and for no other session (nothing another device wrote, nothing it cannot prove is
   theirs); a bucket that refuses deletes keeps them, counted;
3. forgets the record.

Killed anywhere, the next push finishes: the tombstone goes through the push's own crash-safe
outbox; a session it named has left the cursor's ``sessions`` in that same commit, so it is not
named twice; the objects are deleted again (a missing one is nothing to do) until the record is
forgotten.

A pull applies another device's tombstone through the vault's own delete (:mod:`._syncapply`);
the ids it erased are kept in its cursor only as :func:`dead_tag` values (no session id), so
that no later entry of another device brings an erased session back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .. import _crypto, _remote, _remotekeys, _remotelog
from .._enrolrule import standing
from .._state import StateChange
from ..errors import RemoteError
from ._context import VaultContext
from ._devices import Devices
from ._keys import Keys
from ._synccursor import Cursor
from ._syncepochs import take_up_epochs
from ._syncpull import Listing, PullCheck, check_logs, list_remote

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._fs import Dir
    from .._s3 import S3Store

__all__ = ["Tombstones", "dead_tag", "delete_objects", "objects_of", "push_tombstones"]

_DEAD: Final = b"sessionseal remote v1 tombstone"
#: (entries, outbox names, the new epoch and its key): the push's commit under a new epoch.
Commit = Callable[[list[dict[str, Any]], list[tuple[str, bytes]], tuple[int, bytes]], None]


def dead_tag(remote: uuid.UUID, session: uuid.UUID) -> bytes:
    """What a pull keeps of a session a tombstone erased: 16 bytes of SHA-256 over the remote's
    and the session's ids.  It answers "was this id erased?" for an id one already has, and
    names no session by itself (docs/spec/remote-v1.md, "The pull cursor")."""
    return hashlib.sha256(_DEAD + remote.bytes + session.bytes).digest()[:16]


def tombstone_sessions(entry: Mapping[str, Any]) -> list[uuid.UUID]:
    """The sessions a ``tombstone`` entry erases; ``TypeError``/``ValueError``/``KeyError`` if
    it is malformed (the caller refuses the entry)."""
    sessions = entry["sessions"]
    if not isinstance(sessions, list):
        raise TypeError
    return [uuid.UUID(str(sid)) for sid in sessions]


def objects_of(entries: Iterable[_remotelog.Opened], sessions: Iterable[bytes]) -> list[str]:
    """The content objects a log's *entries* name for *sessions* and for no other session."""
    wanted = {uuid.UUID(bytes=s) for s in sessions}
    mine: set[str] = set()
    others: set[str] = set()
    for opened in entries:
        for session, name in _remotelog.named_objects(opened.entry):  # a rebase names one per session
            try:
                sid = uuid.UUID(str(session))
            except ValueError:
                continue
            (mine if sid in wanted else others).add(name)
    return sorted(mine - others)


def delete_objects(s3: S3Store, prefix: str, names: Iterable[str]) -> tuple[int, int]:
    """Delete the content objects *names* under the device *prefix* (this device's own only);
    returns (deleted, kept: the bucket refused).  Deleting a name already gone is no error."""
    deleted = kept = 0
    for name in names:
        try:
            s3.delete(prefix + "o/" + name)
        except RemoteError:
            kept += 1  # no delete permission, or an object lock: docs/secure-deletion.md
            continue
        deleted += 1
    return deleted, kept


class Tombstones:
    """This device's part of the deletes on one remote."""

    def __init__(self, ctx: VaultContext, keys: Keys, devices: Devices, config: RemoteConfig, s3: S3Store) -> None:
        self._ctx, self._keys, self.devices, self.config, self.s3 = ctx, keys, devices, config, s3
        self.url = _remote.parse_url(config.url)
        self.me = config.device
        self.prefix = _remote.device_prefix(self.url, config.device)
        #: Key objects read by this pull or push, by (maker, epoch): the enrolment rule reads
        #: each revocation's for :meth:`uncounted` and again for :meth:`recipients`.
        self._key_objects: dict[tuple[uuid.UUID, int], bytes] = {}
        #: This device's log entries fetched by this push, by seq: a delete's push reads its
        #: log for the tombstone's check, then again for its rebase (:meth:`own_log`).
        self.fetched: dict[int, bytes] = {}

    def pending(self) -> frozenset[bytes]:
        """The sessions erased here that this device's next push on the remote tombstones."""
        return self._keys.state(fresh=True).erased.get(self.me.bytes, frozenset())

    def marks(self) -> Mapping[bytes, tuple[int, int]]:
        """Each session's version as the key table records it (the push compares its cursor's)."""
        return self._keys.state(fresh=True).marks

    def forget(self, done: frozenset[bytes]) -> None:
        """Drop *done* from the record (an erasure recorded meanwhile stays)."""
        with self._ctx.vault_lock():
            left = self._keys.state(fresh=True).erased.get(self.me.bytes, frozenset()) - done
            self._keys.commit(StateChange(erased={self.me.bytes: left}))

    def own_log(self, remote: uuid.UUID) -> tuple[_remotelog.Opened, ...]:
        """This device's own log on the remote, checked as every log is (what :attr:`fetched`
        holds is not fetched again: a name always holds the same bytes)."""
        listed = self.s3.list(self.prefix + "log/")
        at = len(self.prefix) + 4
        names = {int(k[at:], 16): k for k, _ in listed if len(k) == at + 16}
        objects = {seq: self.fetched[seq] if seq in self.fetched else self.s3.get(k) for seq, k in names.items()}
        self.fetched = objects
        held = self.devices.epoch_keys(self.config)
        start = _remotelog.read_start(objects, held)  # from its rebase once old epochs are retired
        return _remotelog.read_log(objects, held, remote, self.me, start=start).entries

    def recipients(self, check: PullCheck, remote: uuid.UUID, x25519_public: bytes) -> dict[uuid.UUID, bytes]:
        """Every enrolled device that is not revoked, by the verified logs, and its X25519 public
        key: as its ``device.enroll`` entry names it, or (the first device) as its ``epoch``
        entry of reason ``first`` does (a log written before that entry named it: its record)."""
        enrolled: dict[uuid.UUID, bytes | None] = {}
        revoked: set[uuid.UUID] = set()
        counted = self._counted(check)
        # Only the logs of devices whose own enrolment counts enrol or revoke anyone (_enrolrule:
        # a revoked device's forged self-enrolment gets no stanza).
        ok = standing(counted, self._key_object)
        for dev, entries in counted.items():
            if dev not in ok:
                continue
            for opened in entries:
                e, kind = opened.entry, opened.entry.get("kind")
                try:
                    if opened.seq == 1 and kind == "epoch" and e.get("reason") == "first" and e.get("epoch") == 1:
                        named = e.get("x25519")
                        enrolled.setdefault(dev, None if named is None else base64.b64decode(named, validate=True))
                    elif kind == "device.enroll":
                        enrolled[uuid.UUID(hex=str(e["device"]))] = base64.b64decode(e["x25519"], validate=True)
                    elif kind == "device.revoke":
                        revoked.add(uuid.UUID(hex=str(e["device"])))
                except (KeyError, ValueError, binascii.Error):
                    raise RemoteError(f"device {dev.hex}'s entry {opened.seq} is malformed") from None
        out = {self.me: x25519_public}
        for dev, key in sorted(enrolled.items(), key=lambda item: item[0].hex):
            if dev in revoked or dev == self.me:
                continue
            out[dev] = key if key is not None else self._record_key(dev, remote)
            if len(out[dev]) != 32:
                raise RemoteError(f"device {dev.hex}'s enrolment names a malformed key")
        return out

    def uncounted(self, check: PullCheck) -> frozenset[uuid.UUID]:
        """The devices with a log whose own enrolment does not count (:mod:`.._enrolrule`)."""
        return frozenset(check.logs) - standing(self._counted(check), self._key_object)

    @staticmethod
    def _counted(check: PullCheck) -> dict[uuid.UUID, tuple[_remotelog.Opened, ...]]:
        """The verified logs as the enrolment rule reads them: what rebases carry included,
        each cut where its writer was revoked."""
        cut = check.cutoffs
        return {
            d: tuple(o for o in _remotelog.facts(d, es) if d not in cut or o.seq <= cut[d])
            for d, es in check.logs.items()
        }

    def _key_object(self, maker: uuid.UUID, epoch: int) -> bytes | None:
        # Only an object that is there is kept: one missing is asked for again, since this
        # device may write its own meanwhile (a push's new epoch), and reading it as still
        # missing would count fewer devices.  One that is there is checked against the digest
        # its epoch entry names by every reader, so the first read is as good as a second.
        if (maker, epoch) in self._key_objects:
            return self._key_objects[maker, epoch]
        key = _remote.device_prefix(self.url, maker) + f"keys/{epoch:08x}"
        if not self.s3.exists(key):
            return None
        data = self._key_objects[maker, epoch] = self.s3.get(key)
        return data

    def _record_key(self, dev: uuid.UUID, remote: uuid.UUID) -> bytes:
        try:
            doc = json.loads(self.s3.get(_remote.device_prefix(self.url, dev) + "device"))
            if doc.get("device") != dev.hex or doc.get("remote") != remote.hex:
                raise ValueError
            return base64.b64decode(doc["x25519"], validate=True)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise RemoteError(f"device {dev.hex}'s record on the remote is malformed") from None

    def next_epoch(self, check: PullCheck, listing: Listing | None = None) -> int:
        """Above every epoch held here, sealed into any entry read, or named by any key object
        on the remote (in *listing*, the one the caller's check was made from: one LIST of the
        whole remote less; None: listed now): a new epoch never takes a number another device
        made already.  (One made after the listing is a race like one made after a LIST:
        :mod:`._syncrace` settles both.)"""
        seen = set(self.devices.epoch_keys(self.config))
        seen.update(o.epoch for entries in check.logs.values() for o in entries)
        if listing is not None:
            return max(seen | {e for objects in listing.keys.values() for e in objects}, default=0) + 1
        root = self.url.key("d") + "/"
        for key, _ in self.s3.list(root):
            _, _, rest = key[len(root) :].partition("/")
            kind, _, name = rest.partition("/")
            if kind == "keys" and len(name) == 8:
                try:
                    seen.add(int(name, 16))
                except ValueError:
                    continue
        return max(seen, default=0) + 1

    def new_epoch(
        self, check: PullCheck, remote: uuid.UUID, x25519_public: bytes, listing: Listing | None = None
    ) -> tuple[int, bytes, bytes]:
        """A delete's epoch: its number (:meth:`next_epoch`), its key, and its key object (the
        key wrapped for every enrolled device that is not revoked)."""
        epoch = self.next_epoch(check, listing)
        key = _crypto.new_key()
        stanzas = [
            _remotekeys.wrap_for_device(key, remote, epoch, dev, public)
            for dev, public in sorted(self.recipients(check, remote, x25519_public).items(), key=lambda i: i[0].hex)
        ]
        return epoch, key, _remotekeys.keys_object(remote, epoch, self.me, stanzas)


def push_tombstones(
    tomb: Tombstones,
    cursor: Cursor,
    remote: uuid.UUID,
    x25519_public: bytes,
    *,
    dry_run: bool,
    commit: Commit,
    sync_dir: Dir | None = None,
) -> tuple[int, int, int]:
    """The tombstone step of a push (see the module's docstring): returns how many sessions the
    tombstone named, and how many of this device's objects of them were deleted and kept (with
    *dry_run*: would be deleted; nothing is written, here or there).  *sync_dir*: where the
    pull cursor is, whose verified prefixes spare an epoch proof re-reading every log whole
    while another device's key object is pending (``take_up_epochs``)."""
    erased = tomb.pending()
    if not erased:
        return 0, 0, 0
    named = sorted(uuid.UUID(bytes=s) for s in erased if s in cursor.sessions)
    if named:
        # Every epoch the others made first (a device enrolled under one is named in a log
        # written under it), then every log, checked as a pull checks it.
        listing = list_remote(tomb.s3, tomb.config)
        pickup = take_up_epochs(
            tomb.config, tomb.s3, tomb.devices, keep=not dry_run, listing=listing, sync_dir=sync_dir
        )
        check = check_logs(
            tomb.config,
            tomb.s3,
            tomb.devices,
            keys=pickup.keys,
            listing=listing,
            fetched=pickup.fetched,  # what the proof fetched is not fetched again
            partial=pickup.partial,
        )
        own, tomb.fetched = check.logs.get(tomb.me, ()), check.fetched.get(tomb.me, {})
        epoch, key, obj = tomb.new_epoch(check, remote, x25519_public, listing)
        for sid in named:
            cursor.sessions.pop(sid.bytes, None)  # committed with the tombstone: never named twice
        entries = [
            {"kind": "epoch", "epoch": epoch, "keys": hashlib.sha256(obj).hexdigest(), "reason": "delete"},
            {"kind": "tombstone", "sessions": [str(s) for s in named], "epoch": epoch},
        ]
        commit(entries, [(f"keys/{epoch:08x}", obj)], (epoch, key))
    else:
        own = tomb.own_log(remote)
    names = objects_of(own, erased)
    if dry_run:
        return len(named), len(names), 0
    deleted, kept = delete_objects(tomb.s3, tomb.prefix, names)
    tomb.forget(erased)
    return len(named), deleted, kept
