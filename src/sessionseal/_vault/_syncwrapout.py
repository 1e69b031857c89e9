"""The wraps a device owes after a pull (issue 26; docs/spec/remote-v1.md, "Wraps"): the writing
side of :mod:`._syncwrap`, whose docstring says why they exist and what makes them safe.  Kept
apart from it because it reads the enrolled set as a delete's epoch does (:mod:`._synctomb`),
which sits above the epochs' take-up that reads wraps."""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any, Final

from .. import _remotekeys, _remotelog
from ..errors import IntegrityError
from ._syncwrap import KIND, wrap_name, wrapped_for

if TYPE_CHECKING:
    from ._syncepochs import EpochPickup
    from ._syncpull import Listing, PullCheck
    from ._syncstate import PullResult
    from ._synctomb import Tombstones

__all__ = ["RACED", "plan_wraps"]

#: What a pull that reads as revoked adds: the same look as an enrolment raced by a new epoch,
#: which the next pull of a device holding that epoch repairs.
RACED: Final = (
    " (unless this device was enrolled at the moment that epoch was made: then the next pull of a device that"
    " holds it wraps its key for this one, and a pull here after that reads on)"
)


def plan_wraps(
    tomb: Tombstones, check: PullCheck, pickup: EpochPickup, listing: Listing, result: PullResult
) -> tuple[list[dict[str, Any]], list[tuple[str, bytes]]] | None:
    """The wraps this device owes after the pull *result* that read *check* (see the module's
    docstring): the ``device.wrap`` entries and the objects they name, for
    :meth:`Sync.commit_entries`; None when it owes none.  Looked for only after a pull that read
    new entries of other devices or took an epoch up (what can make a wrap owed: an enrolment,
    an epoch), never in a dry run; then it reads the key objects of the epochs it holds above
    some device's enrolment (one GET each): a pull with nothing new costs nothing more."""
    devices, config, me, s3 = tomb.devices, tomb.config, tomb.me, tomb.s3
    held = devices.epoch_keys(config)
    ident = devices.identity(config)
    rid = ident.remote_id if held else None
    if (
        result.dry_run
        or not (result.entries or pickup.taken)
        or rid is None
        or me not in listing.logs  # only a device that pushes (its log is there) publishes
        or check.revoked is not None
        # A key object it cannot read yet (pending, withheld, newer) may be a revocation in flight.
        or pickup.pending
        or pickup.partial
        or pickup.withheld
        or any(e > max(held) for objects in listing.keys.values() for e in objects)
    ):
        return None
    floors = _enrolled_at(check)
    if not floors:
        return None
    entries: list[dict[str, Any]] = []
    objects: list[tuple[str, bytes]] = []
    recipients: dict[uuid.UUID, bytes] | None = None
    for (epoch, maker), key in sorted(_keys_by_maker(tomb, listing).items(), key=lambda i: (i[0][0], i[0][1].hex)):
        # A revoked device is never owed one: left out before any read (recipients() says it too).
        owed = {dev for dev, floor in floors.items() if floor < epoch and dev != me and dev not in check.cutoffs}
        if not owed:
            continue
        try:
            parsed = _remotekeys.parse_keys_object(s3.get(listing.keys[maker][epoch]))
        except IntegrityError:
            continue  # proved when taken up, so never the case; nothing to give from it
        owed -= {uuid.UUID(bytes=s[:16]) for t, s in parsed.stanzas if t == _remotekeys.STANZA_DEVICE}
        owed -= {to for names in listing.wraps.values() for (to, e, m) in names if (e, m) == (epoch, maker)}
        owed -= wrapped_for(check.logs, check.cutoffs, epoch, maker)  # a wrap its bucket lost is not redone
        if not owed:
            continue
        if recipients is None:  # enrolled and not revoked, by the verified logs; never before needed
            recipients = tomb.recipients(check, rid, ident.x25519_public)
        for dev in sorted(owed & set(recipients), key=lambda d: d.hex):
            obj = _remotekeys.keys_object(
                rid, epoch, maker, [_remotekeys.wrap_for_device(key, rid, epoch, dev, recipients[dev])]
            )
            objects.append((wrap_name(dev, epoch, maker), obj))
            digest = hashlib.sha256(obj).hexdigest()
            entries.append({"kind": KIND, "device": dev.hex, "epoch": epoch, "maker": maker.hex, "keys": digest})
    return (entries, objects) if entries else None


def _enrolled_at(check: PullCheck) -> dict[uuid.UUID, int]:
    """For each device a verified ``device.enroll`` entry names, the newest epoch its
    enrolments carry: the epoch the entry is sealed under (the enroller's newest when it
    accepted; its enrolment object wraps every epoch up to it).  A revoked writer's entries
    after its cutoff enrol no one."""
    out: dict[uuid.UUID, int] = {}
    for dev, entries in check.logs.items():
        cut = check.cutoffs.get(dev)
        for o in _remotelog.facts(dev, entries):
            if o.entry.get("kind") != "device.enroll" or (cut is not None and o.seq > cut):
                continue
            try:
                who = uuid.UUID(hex=str(o.entry.get("device", "")))
            except ValueError:
                continue
            out[who] = max(out.get(who, 0), o.epoch)
    return out


def _keys_by_maker(tomb: Tombstones, listing: Listing) -> dict[tuple[int, uuid.UUID], bytes]:
    """The keys this device holds by (epoch, maker), for the key objects listed: an epoch's key
    by the one device that lists its key object, or by maker when several made it."""
    devices, config = tomb.devices, tomb.config
    by_maker = devices.maker_keys(config)
    out: dict[tuple[int, uuid.UUID], bytes] = {}
    for epoch, key in devices.epoch_keys(config).items():
        makers = {m for m, objects in listing.keys.items() if epoch in objects}
        if epoch in by_maker:
            out.update(((epoch, m), k) for m, k in by_maker[epoch].items() if m in makers)
            if tomb.me in makers and tomb.me not in by_maker[epoch]:
                out[epoch, tomb.me] = key
        elif len(makers) == 1:
            out[epoch, makers.pop()] = key
    return out
