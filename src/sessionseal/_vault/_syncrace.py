"""Two devices that make one epoch at once (issue 26; docs/spec/remote-v1.md, "Two makers of one
epoch"; docs/design.md, "Keys").

Epoch numbers are not coordinated (no compare-and-swap: rclone ignores ``If-None-Match``), so a
device that deletes while another revokes, each picking the number above every one it saw, makes
the same epoch ``e`` under another key.  Both keys are taken up, each proved by its own maker
(:mod:`._syncepochs`), and every entry or object of ``e`` opens under whichever of them it was
sealed under (:data:`.._remotelog.Keyring`): so both reasons reach everyone each key was wrapped
for (the tombstone, the revocation), and nothing is refused.

What the race must not do is undo a revocation: the delete's key ``K_a`` was wrapped for the
device ``C`` that the other maker revoked, so whatever is sealed under ``K_a`` after its writer
learnt of the revocation would be readable by ``C``.  Hence the rule this module applies at the
start of every push, before anything is sealed (:func:`settle_epochs`):

* a key is **tainted** when its maker is revoked, or its key object holds a stanza for a device
  a ``device.revoke`` entry read (and counted) names;
* the **winner** of epoch ``e`` is its untainted maker of the lowest device id;
* a device whose write key of ``e`` (its own, when it made one; else the first it took up) is
  tainted, and a maker of ``e`` that is not the winner, makes epoch ``e+1`` (``reason`` ``rekey``),
  wrapped for every enrolled device that is not revoked, and seals under it from then on.

Every device computes the same winner from the same proved keys, so an untainted race settles in
one new epoch; a new epoch made by two of them at once is a race like any other, settled the same
way.  What is left of it (the number of epochs) is bounded by the makers, never by time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .. import _crypto, _remotekeys
from ..errors import IntegrityError
from ._syncepochs import take_up_epochs
from ._syncpull import check_logs, list_remote
from ._syncwrap import wrapped_for

if TYPE_CHECKING:
    from .._fs import Dir
    from ._synctomb import Tombstones

__all__ = ["Maker", "must_rekey", "settle_epochs"]

#: The ``reason`` of the epoch that settles a race (docs/spec/remote-v1.md, "Log entries").
REKEY: Final = "rekey"

Commit = Callable[[list[dict[str, Any]], list[tuple[str, bytes]], tuple[int, bytes] | None], None]


@dataclass(frozen=True)
class Maker:
    """One proved key of a raced epoch: who made it, and the devices its key object wraps it for."""

    device: uuid.UUID
    recipients: frozenset[uuid.UUID]


def must_rekey(
    me: uuid.UUID, writes: uuid.UUID, makers: Mapping[uuid.UUID, Maker], revoked: frozenset[uuid.UUID]
) -> bool:
    """Whether this device (*me*) must make a new epoch before it seals anything under the epoch
    *makers* made (see the module's docstring): its write key, *writes*' one, is tainted by a
    revocation in *revoked*, or it made one of the keys and is not the winner."""

    def tainted(maker: Maker) -> bool:
        return maker.device in revoked or bool(maker.recipients & revoked)

    if writes in makers and tainted(makers[writes]):
        return True
    clean = sorted((m.device for m in makers.values() if not tainted(m)), key=lambda d: d.bytes)
    return me in makers and (not clean or clean[0] != me)


def settle_epochs(
    tomb: Tombstones,
    remote: uuid.UUID,
    x25519_public: bytes,
    *,
    dry_run: bool,
    commit: Commit,
    sync_dir: Dir | None = None,
) -> int:
    """Before a push seals anything: when several devices made this device's newest epoch, and
    :func:`must_rekey` says so, make the next epoch (``rekey``) and commit its ``epoch`` entry
    through *commit*, which seals under it from then on; returns its number (0: none made).
    *sync_dir*: where the pull cursor is, as for :func:`._synctomb.push_tombstones`.

    Costs nothing (no request) unless this device took up keys of its newest epoch by two makers;
    then one listing and a read of every log, as a tombstone's push does.  A dry run makes none.
    """
    devices, config, me = tomb.devices, tomb.config, tomb.me
    held = devices.epoch_keys(config)
    if dry_run or not held or max(held) not in devices.maker_keys(config):
        return 0
    listing = list_remote(tomb.s3, config)
    pickup = take_up_epochs(config, tomb.s3, devices, listing=listing, sync_dir=sync_dir)
    check = check_logs(
        config,
        tomb.s3,
        devices,
        keys=pickup.keys,
        listing=listing,
        withheld=pickup.withheld,
        fetched=pickup.fetched,
        partial=pickup.partial,
    )
    held = devices.epoch_keys(config)
    epoch = max(held)
    by_maker = dict(devices.maker_keys(config).get(epoch, {}))
    if not by_maker:
        return 0  # a newer epoch was taken up meanwhile, made by one device: nothing raced there
    if epoch in listing.keys.get(me, {}):
        by_maker[me] = held[epoch]
    writes = next((m for m, k in sorted(by_maker.items()) if _crypto.constant_time_equal(k, held[epoch])), me)
    # A wrap (_syncwrap) gives a maker's key to more devices than its key object names.
    makers = {
        m: Maker(m, _recipients(tomb.s3.get(listing.keys[m][epoch])) | wrapped_for(check.logs, check.cutoffs, epoch, m))
        for m in by_maker
        if epoch in listing.keys.get(m, {})
    }
    if not must_rekey(me, writes, makers, frozenset(check.cutoffs)):
        return 0
    new, key, obj = tomb.new_epoch(check, remote, x25519_public, listing)
    entry = {"kind": "epoch", "epoch": new, "keys": hashlib.sha256(obj).hexdigest(), "reason": REKEY}
    commit([entry], [(f"keys/{new:08x}", obj)], (new, key))
    return new


def _recipients(data: bytes) -> frozenset[uuid.UUID]:
    """The devices an epoch key object wraps its key for (every type-1 stanza's recipient)."""
    try:
        parsed = _remotekeys.parse_keys_object(data)
    except IntegrityError:
        return frozenset()  # proved already, so never the case: its hash is in its maker's log
    return frozenset(uuid.UUID(bytes=s[:16]) for t, s in parsed.stanzas if t == _remotekeys.STANZA_DEVICE)
