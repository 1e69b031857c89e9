"""Two devices that make one epoch at once (issue 26; docs/spec/remote-v1.md, "Two makers of one
epoch"; src/sessionseal/_vault/_syncrace.py).

The spec: A deletes a session while B revokes C, each before it saw the other's new epoch, so
both make epoch 2 under two keys (A's wrapped for A, B and C; B's for A and B).  Every device
takes up each key it holds a stanza of once its own maker proved it, and reads every entry of
epoch 2 under the key it was sealed under: the tombstone and the revocation both arrive.  A's
key is *tainted* (wrapped for C, whom B revoked), so A, on its next push, makes epoch 3
(``rekey``) for A and B before it seals anything more; B, the race's winner (its key is clean),
makes none.  Then A and B seal under one newest epoch, and C reads nothing either writes after
that.  A key object the bucket plants at a held epoch (a fake race) is never taken up, and makes
no device change epochs.

One scenario against ``rclone serve s3`` (which ignores ``If-None-Match``: the race is possible
there); the rule itself (:func:`must_rekey`) is checked as a table.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionseal import Vault, _device_enroll, _remotekeys
from sessionseal._state import RemoteKeys, StateChange, VaultState, decode_frame, encode_change
from sessionseal._vault._syncrace import Maker, must_rekey
from sessionseal.errors import IntegrityError, RemoteError, SessionNotFound
from tests._infra import syncvaults
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)
from tests.memkeyring import MemoryKeyring

PREFIX = "team/race"
_device, _enrol, _save, _titles, _store = (
    syncvaults.device,
    syncvaults.enrol,
    syncvaults.save,
    syncvaults.titles,
    syncvaults.store,
)

A, B, C, D = (uuid.UUID(int=i) for i in (1, 2, 3, 4))


def _maker(dev: uuid.UUID, *recipients: uuid.UUID) -> Maker:
    return Maker(dev, frozenset(recipients))


@pytest.mark.parametrize(
    ("me", "writes", "makers", "revoked", "expected"),
    [
        # Two deletes at once: the maker of the lowest id wins, the other settles.
        (A, A, [(A, A, B, C), (B, A, B, C)], set(), False),
        (B, B, [(A, A, B, C), (B, A, B, C)], set(), True),
        (C, A, [(A, A, B, C), (B, A, B, C)], set(), False),  # not a maker: nothing to make
        # A deletes (its key wraps C) while B revokes C: A's key is tainted, whatever the ids.
        (A, A, [(A, A, B, C), (B, A, B)], {C}, True),
        (B, B, [(A, A, B, C), (B, A, B)], {C}, False),
        (D, A, [(A, A, B, C, D), (B, A, B, D)], {C}, True),  # writes under the tainted key
        (D, B, [(A, A, B, C, D), (B, A, B, D)], {C}, False),
        # The revoked device's own key of the epoch is tainted (it wraps for its maker).
        (A, A, [(A, A, B), (C, A, B, C)], {C}, False),
        # Two revocations at once: both keys tainted, both makers settle.
        (A, A, [(A, A, B, C), (B, A, B, D)], {C, D}, True),
        (B, B, [(A, A, B, C), (B, A, B, D)], {C, D}, True),
    ],
)
def test_who_makes_the_next_epoch(
    me: uuid.UUID,
    writes: uuid.UUID,
    makers: list[tuple[uuid.UUID, ...]],
    revoked: set[uuid.UUID],
    expected: bool,
) -> None:
    table = {m[0]: _maker(m[0], *m[1:]) for m in makers}
    assert must_rekey(me, writes, table, frozenset(revoked)) is expected


def test_the_makers_keys_are_kept_in_the_key_tables_state_only_after_a_race() -> None:
    """A raced epoch's keys by maker ride in the device's record of the state (``m``); a record
    without any is the bytes it was before, and one out of shape is refused as corrupt."""
    dev = bytes(range(16))
    plain = RemoteKeys(bytes(32), bytes(32), "2026-12-07T00:00:00+00:00", bytes(16), ((1, bytes(32)),))
    raced = RemoteKeys(
        *(plain.x25519, plain.ed25519, plain.created_at, plain.remote, plain.epochs),
        makers=((2, A.bytes, b"\x01" * 32), (2, B.bytes, b"\x02" * 32)),
    )
    assert b'"m"' not in encode_change(1, StateChange(remote_keys={dev: plain}))
    state = VaultState(tracked=True, counter=0)
    decode_frame(state, encode_change(1, StateChange(remote_keys={dev: raced})))
    assert state.remote_keys[dev].makers == raced.makers
    bad = encode_change(2, StateChange(remote_keys={dev: raced})).replace(A.hex.encode(), b"00")
    with pytest.raises(IntegrityError):
        decode_frame(state, bad)


@pytest.fixture
def kr() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def three(tmp_path: Path, server_env: S3Server, kr: MemoryKeyring) -> Iterator[tuple[Vault, Vault, Vault]]:
    """A (the remote's first device), B and C enrolled by A; each pushed a session and pulled."""
    a, b, c = (syncvaults.vault(tmp_path / n, server_env, kr, PREFIX) for n in "abc")
    try:
        _save(a, "doomed")
        _save(a, "a before")
        a.remotes.push()
        _enrol(a, b)
        _enrol(a, c)
        _save(b, "b before")
        b.remotes.push()
        for v in (a, b, c):
            v.remotes.pull()
        yield a, b, c
    finally:
        for v in (a, b, c):
            v.close()


def _newer(server: S3Server, dev: uuid.UUID, before: set[str]) -> dict[str, bytes]:
    store = _store(server)
    return {k: store.get(k) for k, _ in store.list(f"{PREFIX}/d/{dev.hex}/") if k not in before}


def _names(server: S3Server, dev: uuid.UUID) -> set[str]:
    return {k for k, _ in _store(server).list(f"{PREFIX}/d/{dev.hex}/")}


def test_a_delete_and_a_revocation_made_at_once_both_arrive_and_the_revoked_reads_nothing_after(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path, kr: MemoryKeyring
) -> None:
    a, b, c = three
    store = _store(server_env)
    doomed = next(s.id for s in a.list() if s.title == "doomed")
    # B revokes C; what it wrote is held back from the bucket's listing while A deletes, as if
    # both happened at the same moment (neither saw the other's epoch 2).
    before = _names(server_env, _device(b))
    _device_enroll.revoke(b, None, _device(c).hex)
    held_back = _newer(server_env, _device(b), before)
    assert f"{PREFIX}/d/{_device(b).hex}/keys/00000002" in held_back
    for key in held_back:
        store.delete(key)
    a.delete(doomed)
    assert a.remotes.push().epoch == 2
    for key, data in held_back.items():
        store.put(key, data)
    assert a.remotes.devices.epoch_keys("cloud")[2] != b.remotes.devices.epoch_keys("cloud")[2]

    # Each takes the other's key of epoch 2 up (proved by its own maker) and reads under it.
    pulled_b = b.remotes.pull()
    assert pulled_b.erased == 1
    with pytest.raises(SessionNotFound):
        b.load(doomed)
    a.remotes.pull()
    # A's own key is kept by maker too: it is wrapped for C, whom B's entries revoke.
    assert set(a.remotes.devices.maker_keys("cloud")[2]) == {_device(a), _device(b)}
    # B won (its key is clean): its push makes no epoch.  A's key wraps C, whom B revoked:
    # A makes epoch 3 for A and B before it seals anything more.
    _save(b, "b after")
    assert b.remotes.push().epoch == 2
    _save(a, "a after")
    assert a.remotes.push().epoch == 3
    keys3 = _remotekeys.parse_keys_object(store.get(f"{PREFIX}/d/{_device(a).hex}/keys/00000003"))
    assert {s[:16] for _, s in keys3.stanzas} == {_device(a).bytes, _device(b).bytes}
    b.remotes.pull()
    _save(b, "b later")
    assert b.remotes.push().epoch == 3
    a.remotes.pull()
    # Converged: one newest epoch, one key of it, on both; each holds what the other wrote.
    for v in (a, b):
        assert max(v.remotes.devices.epoch_keys("cloud")) == 3
        assert 3 not in v.remotes.devices.maker_keys("cloud")
        assert {"a after", "b after", "b later"} <= _titles(v) and "doomed" not in _titles(v)
    assert a.remotes.devices.epoch_keys("cloud")[3] == b.remotes.devices.epoch_keys("cloud")[3]
    assert a.remotes.push().epoch == 3 and b.remotes.push().epoch == 3  # settled: no more epochs
    # A device B enrols now gets both keys of epoch 2 (each naming its maker) and reads all.
    d = syncvaults.vault(tmp_path / "d", server_env, kr, PREFIX)
    try:
        _enrol(b, d)
        assert d.remotes.pull().check.taken == 0
        assert set(d.remotes.devices.maker_keys("cloud")[2]) == {_device(a), _device(b)}
        assert {"a after", "b after", "b later", "a before", "b before"} <= _titles(d)
    finally:
        d.close()

    # C: it is told it was revoked, and holds no key of what B sealed after revoking it, or A
    # after it learnt of it.  (A and B have rebased under epoch 3 and retired the older epochs
    # by now, deleting their key objects: a revoked device is not waited for, so C does not get
    # A's key of epoch 2 either, and with it the delete.)
    with pytest.raises(RemoteError, match="this device was revoked"):
        c.remotes.pull()
    assert 3 not in c.remotes.devices.epoch_keys("cloud")
    assert b.remotes.devices.epoch_keys("cloud")[2] not in c.remotes.devices.epoch_keys("cloud").values()
    assert not {"a after", "b after", "b later"} & _titles(c)

    # The bucket fakes a race at epoch 3: a key object under B's prefix with a stanza for A
    # wrapping a key of its choosing.  No entry of B's names it, no head of B's covers one: it
    # stays pending, A takes no key and makes no epoch, and goes on under the key it made.
    rid = a.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    x25519 = base64.b64decode(json.loads(store.get(f"{PREFIX}/d/{_device(a).hex}/device"))["x25519"])
    fake = bytes(range(32))
    stanza = _remotekeys.wrap_for_device(fake, rid, 3, _device(a), x25519)
    store.put(f"{PREFIX}/d/{_device(b).hex}/keys/00000003", _remotekeys.keys_object(rid, 3, _device(b), [stanza]))
    assert a.remotes.pull().check.epochs_pending == 1
    assert 3 not in a.remotes.devices.maker_keys("cloud")
    assert fake not in a.remotes.devices.keyring("cloud").values()
    _save(a, "a last")
    assert a.remotes.push().epoch == 3
    b.remotes.pull()
    assert "a last" in _titles(b)
