"""Whose enrolment counts (docs/spec/remote-v1.md, "Log entries", "Revoked devices"): the rule
:func:`sessionseal._enrolrule.standing` applies for every reader that computes the enrolled set.

A device's own claim (its ``first`` entry, or a ``device.enroll`` of itself) sealed under epoch
``e`` counts only when every revocation's epoch above ``e`` has a key object, as its ``epoch``
entry's hash names it, with a stanza for the device; otherwise only an enrolment by a device that
counts admits it; of two ``first`` claims the later does not count.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sessionseal import _remotekeys, _remotelog
from sessionseal._enrolrule import standing

RID = uuid.UUID(int=7)
A, R, D, E = (uuid.UUID(int=n) for n in (1, 2, 3, 4))


def _o(seq: int, sealed: int, /, **entry: Any) -> _remotelog.Opened:
    return _remotelog.Opened(seq, sealed, b"\0" * 32, os.urandom(32), dict(entry))


def _first(hlc: str = "0000000000000001") -> _remotelog.Opened:
    return _o(1, 1, kind="epoch", epoch=1, reason="first", keys="00", hlc=hlc)


def _keys_object(epoch: int, maker: uuid.UUID, for_: list[uuid.UUID]) -> bytes:
    public = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    stanzas = [_remotekeys.wrap_for_device(os.urandom(32), RID, epoch, d, public) for d in for_]
    return _remotekeys.keys_object(RID, epoch, maker, stanzas)


def _revocation(obj: bytes, seq: int, epoch: int, gone: uuid.UUID) -> list[_remotelog.Opened]:
    digest = hashlib.sha256(obj).hexdigest()
    return [
        _o(seq, epoch, kind="epoch", epoch=epoch, reason="revoke", keys=digest),
        _o(seq + 1, epoch, kind="device.revoke", device=gone.hex, epoch=epoch),
    ]


def _enrol(seq: int, epoch: int, who: uuid.UUID) -> _remotelog.Opened:
    return _o(seq, epoch, kind="device.enroll", device=who.hex, x25519="", ed25519="")


def test_a_self_enrolment_under_an_epoch_before_a_revocation_the_revoker_never_saw_does_not_count() -> None:
    obj = _keys_object(2, A, [A])  # A revoked R at epoch 2: a stanza for A only
    logs = {A: (_first(), _enrol(2, 1, R), *_revocation(obj, 3, 2, R)), D: (_enrol(1, 1, D),)}
    ok = standing(logs, lambda maker, n: obj if (maker, n) == (A, 2) else None)
    assert D not in ok and {A, R} <= ok


def test_a_forged_first_entry_does_not_count_either() -> None:
    obj = _keys_object(2, A, [A])
    logs = {A: (_first(), _enrol(2, 1, R), *_revocation(obj, 3, 2, R)), D: (_first("0000000000000000"),)}
    ok = standing(logs, lambda maker, n: obj if (maker, n) == (A, 2) else None)
    assert D not in ok and A in ok  # D's earlier hlc does not help: its claim fails the rule first


def test_a_restored_device_the_revoker_counted_still_counts() -> None:
    obj = _keys_object(3, A, [A, D])  # D restored under epoch 1, then A revoked R: A wrapped for D
    logs = {A: (_first(), _enrol(2, 1, R), *_revocation(obj, 3, 3, R)), D: (_enrol(1, 1, D),)}
    assert standing(logs, lambda maker, n: obj if (maker, n) == (A, 3) else None) == {A, R, D}


def test_a_missing_or_swapped_key_object_counts_as_no_stanza() -> None:
    obj = _keys_object(2, A, [A, D])
    other = _keys_object(2, A, [A, D])
    logs = {A: (_first(), *_revocation(obj, 2, 2, R)), D: (_enrol(1, 1, D),)}
    assert D not in standing(logs, lambda maker, n: None)
    assert D not in standing(logs, lambda maker, n: other)  # not the object the entry's hash names
    assert D in standing(logs, lambda maker, n: obj)


def test_a_device_that_does_not_count_enrols_no_one_and_one_that_does_enrols_a_chain() -> None:
    obj = _keys_object(2, A, [A])
    logs = {
        A: (_first(), _enrol(2, 1, R), *_revocation(obj, 3, 2, R)),
        D: (_enrol(1, 1, D), _enrol(2, 1, E)),  # forged D enrols E
    }
    assert standing(logs, lambda maker, n: obj) == {A, R}
    logs = {A: (_first(), _enrol(2, 1, R)), R: (_enrol(1, 1, D),), D: (_enrol(1, 1, E),)}
    assert standing(logs, lambda maker, n: None) == {A, R, D, E}


def test_of_two_first_devices_the_later_one_does_not_count() -> None:
    logs = {A: (_first("0000000000000001"),), D: (_first("0000000000000002"),)}
    assert standing(logs, lambda maker, n: None) == {A}
    logs = {A: (_first("0000000000000003"),), D: (_first("0000000000000002"),)}
    assert standing(logs, lambda maker, n: None) == {D}
