"""Whose enrolment counts (issue 26, "Keys"; docs/spec/remote-v1.md, "Log entries", "Revoked
devices"; docs/design.md, "Keys"): the rule every reader that computes the enrolled set applies
(who a new epoch is wrapped for, who may make an epoch, ``device list``, who a revocation's key
goes to).

**Why a verified log is not enough.**  A log entry proves only that its writer held the key of
the epoch it is sealed under.  A revoked device keeps the keys of every epoch before its
revocation, so it can make a new device record D' and write D''s log, sealed under such an old
epoch, opening with the self-enrolment ``remote restore`` writes (a ``device.enroll`` naming D'
itself) or with an ``epoch`` entry of reason ``first``.  Counted as enrolled, D' would get a
stanza in the next epoch's key object: the revoked device would read again.

**The rule** (:func:`standing`): a device's own claim (its ``first`` entry, or a
``device.enroll`` in its own log naming itself) sealed under epoch ``e`` counts only when every
epoch a revocation made above ``e`` (an ``epoch`` entry of reason ``revoke``, sealed under the
epoch it names, in a verified log) has its key object, as that entry's hash names it, holding a
stanza for the device: its revoker counted it as enrolled.  A legitimately restored device
passes (every later revocation was made by a device that read its enrolment); a forged one
under an epoch before a revocation fails (the revoker never saw it).  Otherwise a device counts
when a ``device.enroll`` in the log of a device that counts names it.  Entries of a device that
does not count enrol no one.  Of several ``first`` claims that pass, only the earliest (by its
``hlc``, then device id) counts: a remote has one first device.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence

from . import _remotekeys, _remotelog
from .errors import IntegrityError

__all__ = ["KeyObject", "standing"]

#: Fetches ``P/d/<maker>/keys/<epoch>``: None when it is not there; RemoteError when the bucket
#: refuses (never taken as "no stanza": a passing outage must not drop a device from an epoch).
KeyObject = Callable[[uuid.UUID, int], bytes | None]


def standing(logs: Mapping[uuid.UUID, Sequence[_remotelog.Opened]], key_object: KeyObject) -> frozenset[uuid.UUID]:
    """The devices whose enrolment counts, by *logs* (each verified, and cut where its writer
    was revoked, as the caller reads them); see the module's docstring.

    :raises RemoteError: *key_object* could not read a revocation's key object.
    """
    claims: dict[uuid.UUID, list[tuple[int, bool, str]]] = {}  # (epoch sealed under, first?, hlc)
    named_by: dict[uuid.UUID, set[uuid.UUID]] = {}
    revocations: dict[int, set[tuple[uuid.UUID, str]]] = {}
    for dev, entries in logs.items():
        for opened in entries:
            e = opened.entry
            kind = e.get("kind")
            if opened.seq == 1 and kind == "epoch" and e.get("reason") == "first" and e.get("epoch") == 1:
                claims.setdefault(dev, []).append((opened.epoch, True, str(e.get("hlc", ""))))
            elif kind == "device.enroll":
                who = str(e.get("device", ""))
                if who == dev.hex:
                    claims.setdefault(dev, []).append((opened.epoch, False, ""))
                else:
                    try:
                        named_by.setdefault(uuid.UUID(hex=who), set()).add(dev)
                    except ValueError:
                        continue  # the callers refuse a malformed enrolment themselves
            elif kind == "epoch" and e.get("reason") == "revoke" and e.get("epoch") == opened.epoch:
                revocations.setdefault(opened.epoch, set()).add((dev, str(e.get("keys", ""))))
    holders = {n: _holders(made, n, key_object) for n, made in revocations.items()}

    def passes(dev: uuid.UUID, sealed: int) -> bool:
        return all(dev in held for n, held in holders.items() if n > sealed)

    firsts = sorted(
        (hlc, dev.hex, dev) for dev, cs in claims.items() for sealed, first, hlc in cs if first and passes(dev, sealed)
    )
    out = {firsts[0][2]} if firsts else set()
    out.update(dev for dev, cs in claims.items() for sealed, first, _ in cs if not first and passes(dev, sealed))
    grew = True
    while grew:  # enrolled by a device that counts: to a fixed point (a chain of enrolments)
        grew = False
        for dev, writers in named_by.items():
            if dev not in out and writers & out:
                out.add(dev)
                grew = True
    return frozenset(out)


def _holders(made: set[tuple[uuid.UUID, str]], epoch: int, key_object: KeyObject) -> frozenset[uuid.UUID]:
    """The devices every key object of a revocation's *epoch* (as its ``epoch`` entries name
    it) holds a stanza for; none when one is missing or not the object named (fail closed)."""
    out: frozenset[uuid.UUID] | None = None
    for maker, digest in made:
        obj = key_object(maker, epoch)  # a bucket that refuses the read refuses the reading (RemoteError)
        if obj is None or hashlib.sha256(obj).hexdigest() != digest:
            return frozenset()
        try:
            parsed = _remotekeys.parse_keys_object(obj)
        except IntegrityError:
            return frozenset()
        devices = frozenset(uuid.UUID(bytes=s[:16]) for t, s in parsed.stanzas if t == _remotekeys.STANZA_DEVICE)
        out = devices if out is None else out & devices
    return out or frozenset()
