"""``sessionseal sync --prune``: delete this device's content objects that no entry of its log
names (issue 26; docs/sync.md, "Pruning unnamed objects"; docs/spec/remote-v1.md, "Content
objects").

A push PUTs a content object before the entry naming it is committed, so a push killed in
between leaves an object nothing names (its session is sent again, under a new name).  Such an
object is provably unnamed, and so safe to delete, when all of these hold, and only then:

- It is under **this device's prefix** (``d/<device>/o/``): no other device's prefix is listed.
- The run holds **the sync lock**, so no push of this vault is between an object's PUT and its
  entry's commit while it looks; the objects are listed *before* the log is read, so an object
  listed was PUT before the log was read.
- **Every entry of this device's log reads** (under the epoch keys this device holds, as one
  MAC chain), and the log ends exactly where the vault's cursor says, with an **empty
  outbox**: every entry this device ever committed is then among those read.  An entry that
  does not open, a log that ends elsewhere, an outbox not sent, or no cursor at all (a vault
  restored without it) and nothing is deleted: the result says why (``unproven``).
- A name is never written twice: every content object is sealed under a fresh nonce and
  object id, so a later push never names an object that exists now.
- It is **older than the safety age** (a day by default, by the server's clock): a guard for
  what the lock cannot see, another copy of this vault pushing as this device (a restored
  backup, a copied directory: another lock), and a server whose listing of the log lags its
  listing of objects.

Anything else under ``o/`` (a name that is not a SHA-256) is left and counted as ``foreign``.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .. import _remote, _remotelog
from .._fs import Dir
from ..errors import RemoteError
from ._devices import Devices
from ._synccursor import read_cursor

if TYPE_CHECKING:
    from .._config import RemoteConfig
    from .._s3 import S3Store

__all__ = ["DEFAULT_MIN_AGE", "PruneResult", "prune"]

#: Objects younger than this (seconds, by the server's clock) are never deleted.
DEFAULT_MIN_AGE: Final = 24 * 3600.0
_HASH: Final = re.compile(r"[0-9a-f]{64}")
_SEQ: Final = re.compile(r"[0-9a-f]{16}")


@dataclass
class PruneResult:
    """What a prune found and deleted (or, with ``dry_run``, would delete); counts only."""

    remote: str
    device: uuid.UUID
    dry_run: bool
    min_age: float
    objects: int = 0  # content objects under this device's prefix
    named: int = 0  # named by an entry of its log
    unnamed: int = 0  # named by none
    young: int = 0  # unnamed but younger than the safety age: kept
    foreign: int = 0  # names that are not a content object's: kept
    deleted: int = 0
    bytes: int = 0  # of the objects deleted
    entries: int = 0  # entries of this device's log read
    #: Why nothing was deleted although unnamed objects were found (None: it was proven).
    unproven: str | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "named": self.named,
            "unnamed": self.unnamed,
            "young": self.young,
            "foreign": self.foreign,
            "deleted": self.deleted,
            "bytes": self.bytes,
            "entries": self.entries,
            "min_age": self.min_age,
            "unproven": self.unproven is not None,
            "dry_run": self.dry_run,
        }


def prune(
    config: RemoteConfig,
    s3: S3Store,
    devices: Devices,
    sync_dir: Dir | None,
    *,
    min_age: float,
    dry_run: bool,
) -> PruneResult:
    """Delete (unless *dry_run*) this device's unnamed content objects older than *min_age*
    seconds; the caller holds the sync lock (see the module's docstring).

    :raises RemoteError: this device never pushed to the remote; its log there fails its check
        (a gap, an entry edited, moved or replayed, a rollback below the vault's record).
    """
    result = PruneResult(config.name, config.device, dry_run, min_age)
    held = devices.epoch_keys(config)
    rid = devices.identity(config).remote_id if held else None
    if rid is None:
        raise RemoteError("this device holds no key of the remote: it never pushed there, so it has nothing to prune")
    prefix = _remote.device_prefix(_remote.parse_url(config.url), config.device)
    listed = s3.list_dated(prefix + "o/")  # first: every object listed was PUT before the log is read
    now = time.time()
    result.objects = len(listed)
    cursor = None if sync_dir is None else read_cursor(sync_dir, rid, config.device, held)
    named: set[str] = set()
    if cursor is None:
        result.unproven = "this vault has no record of its pushes to the remote (restored without its sync state?)"
    elif cursor.outbox:
        result.unproven = "a push that was killed left entries not sent yet: run 'sessionseal sync --push' first"
    else:
        logs = {k.rsplit("/", 1)[1]: k for k, _ in s3.list(prefix + "log/")}
        objects = {int(n, 16): s3.get(k) for n, k in logs.items() if _SEQ.fullmatch(n)}
        read = _remotelog.read_log(
            objects,
            held,
            rid,
            config.device,
            start=_remotelog.read_start(objects, held),  # from its rebase once old epochs are retired
            floor=(cursor.seq, cursor.mac) if cursor.seq else None,
        )
        result.entries = len(read.entries)
        if read.pending or read.end[0] != cursor.seq:
            result.unproven = "this device's log on the remote does not end where the vault's record of it does"
        named = {name for o in read.entries for _, name in _remotelog.named_objects(o.entry)}
    doomed = _sort(result, [(k[len(prefix) + 2 :], k, n, m) for k, n, m in listed], named, now - min_age)
    if result.unproven is not None:
        return result  # the unnamed counted are not named by what was read: not proven unnamed
    for key, size in doomed:
        if not dry_run:
            s3.delete(key)
        result.deleted += 1
        result.bytes += size
    return result


def _sort(
    result: PruneResult, listed: list[tuple[str, str, int, float]], named: set[str], cutoff: float
) -> list[tuple[str, int]]:
    """Count *listed* (name, key, size, last modified) into *result*; the unnamed objects
    last modified before *cutoff*, as (key, size)."""
    doomed = []
    for name, key, size, modified in listed:
        if not _HASH.fullmatch(name):
            result.foreign += 1
        elif name in named:
            result.named += 1
        else:
            result.unnamed += 1
            if modified > cutoff:
                result.young += 1
            else:
                doomed.append((key, size))
    return doomed
