"""An enrolment accepted at the same moment as another device makes a new epoch (issue 26;
docs/spec/remote-v1.md, "Wraps"; src/sessionseal/_vault/_syncwrap.py).

The spec: A accepts the new device N from a listing that does not show the epoch B is making
(a revocation of C), so A's enrolment object carries epoch 1 only, and B's key of epoch 2 is
wrapped for A and B, not N.  The next device that holds epoch 2 and pulls (A here) finds N enrolled, not
revoked, enrolled under epoch 1 and given no key of B's epoch 2: it writes a wrap of it for N
and a ``device.wrap`` entry naming it.  N keeps that key only once its wrapper is enrolled, its
maker's own log and signed head prove it, and the wrapper's log names the wrap; then it reads
what B sealed under epoch 2.  A device revoked before the wrap is written gets none; one revoked
while the wrap races the revocation gets at most the epoch made before it.  Wraps the bucket
moves, replays or plants are refused, each with its reason, and N keeps nothing from them.

Against ``rclone serve s3``; "at the same moment" is made deterministic by holding B's new
objects back from the bucket while A accepts, then putting them back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionseal import Vault, _device_enroll, _remotekeys
from sessionseal._remotelog import ZERO_MAC, Opened
from sessionseal._vault._syncrace import Maker, must_rekey
from sessionseal._vault._syncwrap import wrap_name, wrapped_for
from sessionseal.errors import RemoteError
from tests._infra import synccapture, syncvaults
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_module_server_env,
    fixture_s3_server,
    fixture_server_env,
)
from tests.memkeyring import MemoryKeyring

PREFIX = "team/enrolrace"
_device, _save, _titles, _store = syncvaults.device, syncvaults.save, syncvaults.titles, syncvaults.store

kr, captured, three = synccapture.three_device_fixtures(PREFIX, b_pushes=True)


def _names(server: S3Server, dev: uuid.UUID) -> set[str]:
    return {k for k, _ in _store(server).list(f"{PREFIX}/d/{dev.hex}/")}


def _held_back(server: S3Server, dev: uuid.UUID, before: set[str]) -> dict[str, bytes]:
    """What *dev* wrote since *before*, taken out of the bucket (put back by :func:`_put_back`)."""
    store = _store(server)
    out = {k: store.get(k) for k in _names(server, dev) - before}
    for key in out:
        store.delete(key)
    return out


def _put_back(server: S3Server, objects: dict[str, bytes]) -> None:
    store = _store(server)
    for key, data in objects.items():
        store.put(key, data)


def _wraps(server: S3Server) -> dict[str, bytes]:
    store = _store(server)
    return {k: store.get(k) for k, _ in store.list(f"{PREFIX}/d/") if "/wrap/" in k}


@pytest.fixture
def raced(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path, kr: MemoryKeyring
) -> Iterator[tuple[Vault, Vault, Vault, Vault]]:
    """A, B, C and N: B revoked C (epoch 2, for A and B) while A accepted N from a listing
    without it; N finished its enrolment (epoch 1 only).  Nothing has pulled since."""
    a, b, c = three
    n = syncvaults.vault(tmp_path / "n", server_env, kr, PREFIX)
    try:
        before = _names(server_env, _device(b))
        assert _device_enroll.revoke(b, None, _device(c).hex).epoch == 2
        held = _held_back(server_env, _device(b), before)
        assert f"{PREFIX}/d/{_device(b).hex}/keys/00000002" in held
        step = _device_enroll.request(n)
        assert _device_enroll.accept(a, None, _device(n).hex, step.pairing_code or "").epoch == 1
        _device_enroll.finish(n)
        _put_back(server_env, held)
        assert set(n.remotes.devices.epoch_keys("cloud")) == {1}
        yield a, b, c, n
    finally:
        n.close()


def test_the_raced_device_reads_the_new_epoch_after_one_more_round(
    raced: tuple[Vault, Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, _, n = raced
    # Before anyone repairs it, N reads as revoked there (the race's old outcome), and says why.
    with pytest.raises(RemoteError, match="this device was revoked"):
        n.remotes.pull()
    assert set(n.remotes.devices.epoch_keys("cloud")) == {1}
    # A pulls: takes B's epoch 2 up, finds N owed it, and wraps it (one wrap, one entry).
    pulled = a.remotes.pull()
    assert pulled.check.taken == 1 and pulled.wrapped == 1 and pulled.counts()["wraps_published"] == 1
    wraps = _wraps(server_env)
    assert list(wraps) == [f"{PREFIX}/d/{_device(a).hex}/{wrap_name(_device(n), 2, _device(b))}"]
    parsed = _remotekeys.parse_keys_object(next(iter(wraps.values())))
    assert (parsed.epoch, parsed.maker) == (2, _device(b))
    assert [s[:16] for _, s in parsed.stanzas] == [_device(n).bytes]
    assert a.remotes.pull().wrapped == 0  # published once: a second pull owes nothing
    # B writes under epoch 2; N, one pull later, holds B's key and reads it.
    _save(b, "b after")
    assert b.remotes.push().epoch == 2
    got = n.remotes.pull()
    assert got.check.wraps_taken == 1 and got.check.counts()["wraps_refused"] == 0
    assert n.remotes.devices.epoch_keys("cloud")[2] == b.remotes.devices.epoch_keys("cloud")[2]
    assert {"a before", "b before", "b after"} <= _titles(n)
    # N is a device like any other now: what it pushes, A and B read.
    _save(n, "n says")
    assert n.remotes.push().epoch == 2
    for v in (a, b):
        v.remotes.pull()
        assert "n says" in _titles(v)


def test_a_device_revoked_before_the_wrap_gets_none(
    raced: tuple[Vault, Vault, Vault, Vault], server_env: S3Server
) -> None:
    """B reads A's enrolment of N (``device revoke`` reads the logs; B has not pulled, so owes
    no wrap yet), and revokes N (epoch 3, for A and B).  A's pull while B's
    revocation is only half on the bucket (its key object listed, not yet provable) wraps
    nothing: an object it cannot take up may be a revocation in flight.  Once it is all there,
    A reads the revocation and still wraps nothing; N holds neither epoch 2 nor 3."""
    a, b, _, n = raced
    before = _names(server_env, _device(b))
    assert _device_enroll.revoke(b, None, _device(n).hex).epoch == 3
    held = _held_back(server_env, _device(b), before)
    keys3 = f"{PREFIX}/d/{_device(b).hex}/keys/00000003"
    _put_back(server_env, {keys3: held.pop(keys3)})
    pulled = a.remotes.pull()
    assert pulled.check.epochs_pending == 1 and pulled.wrapped == 0
    _put_back(server_env, held)
    pulled = a.remotes.pull()
    assert pulled.check.taken == 1 and pulled.wrapped == 0
    assert not _wraps(server_env)
    with pytest.raises(RemoteError, match="this device was revoked"):
        n.remotes.pull()
    assert set(n.remotes.devices.epoch_keys("cloud")) == {1}


def test_a_wrap_that_races_the_revocation_gives_only_the_epoch_made_before_it(
    raced: tuple[Vault, Vault, Vault, Vault], server_env: S3Server
) -> None:
    """The revocation held back entirely while A pulls: A cannot see it, and wraps epoch 2 (made
    before the revocation) for N.  N gets epoch 2, never epoch 3, and reads nothing sealed
    under it; A, once it reads the revocation, wraps no more."""
    a, b, _, n = raced
    before = _names(server_env, _device(b))
    _device_enroll.revoke(b, None, _device(n).hex)
    held = _held_back(server_env, _device(b), before)
    assert a.remotes.pull().wrapped == 1
    _put_back(server_env, held)
    # (3, or a rekey above it should a device's reading have raced too: never one N holds.)
    _save(b, "b after the revocation")
    assert b.remotes.push().epoch >= 3
    assert a.remotes.pull().wrapped == 0
    _save(a, "a after the revocation")
    assert a.remotes.push().epoch >= 3
    with pytest.raises(RemoteError, match="this device was revoked"):
        n.remotes.pull()
    assert set(n.remotes.devices.epoch_keys("cloud")) == {1, 2}
    assert not {"b after the revocation", "a after the revocation"} & _titles(n)
    assert set(_wraps(server_env)) == {f"{PREFIX}/d/{_device(a).hex}/{wrap_name(_device(n), 2, _device(b))}"}


def test_moved_replayed_and_planted_wraps_are_refused_and_nothing_is_kept(
    raced: tuple[Vault, Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, c, n = raced
    a.remotes.pull()
    store = _store(server_env)
    name = wrap_name(_device(n), 2, _device(b))
    genuine_at = f"{PREFIX}/d/{_device(a).hex}/{name}"
    genuine = store.get(genuine_at)
    store.delete(genuine_at)
    rid = n.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    x25519 = n.remotes.devices.identity("cloud").x25519_public
    stranger = uuid.UUID(int=77)
    planted = _remotekeys.keys_object(
        rid, 2, _device(b), [_remotekeys.wrap_for_device(bytes(range(32)), rid, 2, _device(n), x25519)]
    )
    k1 = a.remotes.devices.epoch_keys("cloud")[1]
    old = _remotekeys.keys_object(rid, 1, _device(a), [_remotekeys.wrap_for_device(k1, rid, 1, _device(n), x25519)])
    cases = {
        # The genuine wrap moved under C's prefix: C's log names no such wrap.
        f"{PREFIX}/d/{_device(c).hex}/{name}": (genuine, "its log names no such wrap"),
        # ... under a device that is not enrolled (no record, no log).
        f"{PREFIX}/d/{stranger.hex}/{name}": (genuine, "not an enrolled device"),
        # A genuine wrap of another epoch replayed under this name: its header says otherwise.
        genuine_at: (old, "not a wrap of that key"),
    }
    with pytest.raises(RemoteError, match="this device was revoked"):
        n.remotes.pull()  # what epoch 1 holds is applied; no wrap is there to refuse
    before = _titles(n)
    assert before == {"a before", "b before"}
    for key, (data, reason) in cases.items():
        store.put(key, data)
        with pytest.raises(RemoteError, match="this device was revoked") as caught:
            n.remotes.pull()
        assert reason in str(caught.value)
        assert set(n.remotes.devices.epoch_keys("cloud")) == {1} and set(_titles(n)) == before
        store.delete(key)
    # A key of the bucket's choosing wrapped for N at A's name: A is enrolled, but B's log and
    # signed head do not prove that key.
    store.put(genuine_at, planted)
    with pytest.raises(RemoteError, match="do not prove that key"):
        n.remotes.pull()
    assert set(n.remotes.devices.epoch_keys("cloud")) == {1}
    assert bytes(range(32)) not in n.remotes.devices.keyring("cloud").values()
    # The genuine one back, and a copy of it under C's prefix, which hides nothing: taken.
    store.put(genuine_at, genuine)
    store.put(f"{PREFIX}/d/{_device(c).hex}/{name}", genuine)
    assert n.remotes.pull().check.wraps_taken == 1
    assert set(n.remotes.devices.epoch_keys("cloud")) == {1, 2}


def _opened(seq: int, **entry: object) -> Opened:
    return Opened(seq, 2, ZERO_MAC, ZERO_MAC, dict(entry))


def test_a_wrap_for_a_revoked_device_taints_the_key_it_gives() -> None:
    """The same-number race: B's key of epoch 2 is wrapped by A for N while C's epoch 2 revokes
    N.  Counted with the key object's own stanzas, A's ``device.wrap`` entry makes B's key one
    wrapped for a revoked device: tainted, so no device seals under it once it read the
    revocation (:func:`must_rekey`).  A wrap entry written by a revoked device beyond its cutoff
    counts for nothing (it cannot force a new epoch on the others)."""
    a, b, c, n, r = (uuid.UUID(int=i) for i in (1, 2, 3, 4, 5))
    wrap = {"kind": "device.wrap", "device": n.hex, "epoch": 2, "maker": b.hex, "keys": "00" * 32}
    logs = {a: (_opened(7, **wrap),), r: (_opened(9, **{**wrap, "device": a.hex}),)}
    assert wrapped_for(logs, {r: 8}, 2, b) == {n}
    assert wrapped_for(logs, {}, 2, b) == {n, a}
    assert wrapped_for(logs, {}, 2, c) == frozenset() and wrapped_for(logs, {}, 3, b) == frozenset()
    makers = {b: Maker(b, frozenset({a, b}) | wrapped_for(logs, {r: 8}, 2, b)), c: Maker(c, frozenset({a, b, c}))}
    assert must_rekey(a, b, makers, frozenset({n}))  # A writes under B's key: tainted by the wrap
    assert must_rekey(b, b, makers, frozenset({n}))
    assert not must_rekey(c, c, makers, frozenset({n}))  # C's key is clean: C wins
    assert not must_rekey(a, b, {m: Maker(m, frozenset({a, b, c})) for m in (b, c)}, frozenset({n}))


def test_a_wrap_leaves_the_bucket_with_its_epoch(
    raced: tuple[Vault, Vault, Vault, Vault], server_env: S3Server
) -> None:
    """Retirement (docs/spec/remote-v1.md, "Rebase and retirement") deletes the wraps of the
    epochs it retires, as it deletes key objects: a copy left would open the old key for the
    device it was wrapped for."""
    a, b, _, n = raced
    a.remotes.pull()
    n.remotes.pull()
    assert set(_wraps(server_env)) == {f"{PREFIX}/d/{_device(a).hex}/{wrap_name(_device(n), 2, _device(b))}"}
    _save(a, "doomed")
    a.remotes.push()
    a.delete(next(s.id for s in a.list() if s.title == "doomed"))
    assert a.remotes.push().epoch == 3  # a delete: epoch 3, for A, B and N
    for _ in range(3):  # each rebases under 3, then each proves the others did
        for v in (b, n, a):
            v.remotes.pull()
            v.remotes.push()
    assert min(a.remotes.devices.epoch_keys("cloud")) == 3
    assert not _wraps(server_env)
    assert "doomed" not in _titles(n) and "a before" in _titles(n)


def test_a_wrap_of_a_key_made_at_the_revocation_taints_it_and_the_makers_move_on(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path, kr: MemoryKeyring
) -> None:
    """The race inside the race: B deletes (epoch 2, for A, B, C) while A accepts N, and C,
    which read A's enrolment, revokes N while B's epoch is not listed yet, so it makes epoch 2
    too.  A, seeing B's epoch and not yet C's, wraps B's key for N.  Once every log is read,
    A's ``device.wrap`` entry counts N among the recipients of B's key, which C revoked: B's key
    is tainted, A and B each make a ``rekey`` epoch before they seal anything more, and N, which
    holds B's key of epoch 2, reads nothing written after."""
    a, b, c = three
    n = syncvaults.vault(tmp_path / "n", server_env, kr, PREFIX)
    try:
        doomed = next(s.id for s in b.list() if s.title == "b before")
        before_b = _names(server_env, _device(b))
        b.delete(doomed)
        assert b.remotes.push().epoch == 2
        held_b = _held_back(server_env, _device(b), before_b)
        syncvaults.enrol(a, n)
        before_c = _names(server_env, _device(c))
        assert _device_enroll.revoke(c, None, _device(n).hex).epoch == 2
        held_c = _held_back(server_env, _device(c), before_c)
        _put_back(server_env, held_b)
        assert a.remotes.pull().wrapped == 1  # B's key of 2 for N: C's revocation not listed yet
        _put_back(server_env, held_c)
        for v in (a, b):
            v.remotes.pull()
            assert _device(c) in v.remotes.devices.maker_keys("cloud")[2]  # both keys of 2 held
        _save(a, "a after")
        _save(b, "b after")
        assert a.remotes.push().epoch == 3 and b.remotes.push().epoch >= 3  # B's key is tainted
        c.remotes.pull()
        _save(c, "c after")
        assert c.remotes.push().epoch >= 3
        with pytest.raises(RemoteError, match="this device was revoked"):
            n.remotes.pull()
        assert max(n.remotes.devices.epoch_keys("cloud")) == 2
        assert not {"a after", "b after", "c after"} & _titles(n)
        for v in (a, b, c):
            v.remotes.pull()
            assert {"a after", "b after", "c after"} <= _titles(v)
    finally:
        n.close()
