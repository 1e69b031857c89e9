"""Wraps: an epoch's key given to a device its maker did not know (issue 26, "Keys";
docs/spec/remote-v1.md, "Wraps"; docs/design.md, "Keys").

**The race.**  ``device enroll --accept`` on A wraps the epochs A holds for the new device N.
If B makes a new epoch at that same moment (a delete, a revocation of someone else), B wraps it
for every device B knows of, which does not include N yet; A's listing did not show B's epoch,
so A's enrolment does not carry it either.  N then finds no stanza for it in B's key object and
reads as revoked, and no later enrolment by A may fix it (a device is enrolled once by a given
enroller).  No listing can see this race without compare-and-swap, so it is repaired after.

**The repair** (:func:`._syncwrapout.plan_wraps`, at the end of a pull, published through the push's own
outbox): a device that holds epoch ``e``'s key made by ``M`` and reads, in the verified logs, a
device N that counts as enrolled and is not revoked (:mod:`.._enrolrule`), whose enrolment
(the ``device.enroll`` entry naming it, sealed under the enroller's newest epoch ``f``: the
enrolment object carries the epochs up to ``f``) is below ``e``, and to which neither ``M``'s
key object nor any wrap gives ``M``'s key of ``e``, writes ``P/d/<self>/wrap/<N>/<e>-<M>`` (an
epoch key object naming ``M`` as its maker, one stanza for N) and a ``device.wrap`` entry naming
N, ``e``, ``M`` and that object's hash, MAC-chained in its own log like every entry.

**Fail closed, for the revoked.**  The wrapper wraps for no device its verified reading revokes,
and wraps nothing while the listing shows a key object it cannot take up (pending, withheld, an
epoch above its newest): a revocation in flight is such an object first.  A wrap that still
races a revocation no listing could show is recorded in the wrapper's log, so every device that
reads both counts N among that key's recipients: the key is *tainted* (:mod:`._syncrace`), and
no device seals under it once it has read the revocation, as for a maker's own stanza that raced
one.  The revoked device gets at most a key it would have had without the race.

**Fail closed, for the recipient** (:mod:`._syncepochs`): a wrap is a key object whose stanza
says nothing of who wrapped it, so N keeps the key only once (1) its wrapper is enrolled and not
revoked as read under the keys N holds, (2) the key is proved to be ``M``'s by ``M``'s own log
and signed head, exactly as a key from ``M``'s own key object is, and (3) the wrapper's log,
read under it, holds the ``device.wrap`` entry naming N, ``e``, ``M`` and the object's hash.
Anything else is *refused*, reported by device and reason, and nothing is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .. import _remotelog

__all__ = ["KIND", "is_wrap", "wrap_name", "wrapped_for"]

#: The log entry that names a wrap (docs/spec/remote-v1.md, "Log entries").
KIND: Final = "device.wrap"


def wrap_name(recipient: uuid.UUID, epoch: int, maker: uuid.UUID) -> str:
    """A wrap's name under its writer's prefix: one per recipient, epoch and maker, so a
    writer never writes one name twice."""
    return f"wrap/{recipient.hex}/{epoch:08x}-{maker.hex}"


def is_wrap(entry: Mapping[str, Any], recipient: uuid.UUID, epoch: int, maker: uuid.UUID, digest: str) -> bool:
    """Whether *entry* is the ``device.wrap`` entry naming exactly that wrap."""
    want = {"kind": KIND, "device": recipient.hex, "epoch": epoch, "maker": maker.hex, "keys": digest}
    return all(entry.get(k) == v for k, v in want.items())


def wrapped_for(
    logs: Mapping[uuid.UUID, Sequence[_remotelog.Opened]],
    cutoffs: Mapping[uuid.UUID, int],
    epoch: int,
    maker: uuid.UUID,
) -> frozenset[uuid.UUID]:
    """The devices a ``device.wrap`` entry in *logs* gives *maker*'s key of *epoch* to: its
    recipients beside its key object's (a revoked writer's entries after its cutoff do not
    count: they cannot taint a key)."""
    out: set[uuid.UUID] = set()
    for dev, entries in logs.items():
        for o in entries:
            e = o.entry
            if e.get("kind") != KIND or (dev in cutoffs and o.seq > cutoffs[dev]):
                continue
            if e.get("epoch") == epoch and e.get("maker") == maker.hex:
                try:
                    out.add(uuid.UUID(hex=str(e.get("device", ""))))
                except ValueError:
                    continue  # names no device: gives no one anything
    return frozenset(out)
