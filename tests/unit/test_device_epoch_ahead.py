"""``device revoke`` and ``device enroll --accept`` take up a newer epoch first (issue 26; docs/sync.md
"Devices"; docs/spec/remote-v1.md "Two makers of one epoch"; src/sessionseal/_device_enroll.py).

The spec: B deletes a session and pushes, which makes epoch 2 (its key wrapped for A, B and C);
A has not pulled.  A revocation on A must not number its epoch 2 too (a second key of epoch 2,
the race the next push would have to settle): it takes B's epoch 2 up first, as a pull does, and
makes epoch 3, for A and B only.  An enrolment on A wraps epoch 2 for the new device as well, so
that it reads what B sealed under it.  A newer epoch A cannot take up (its proof is not on the
remote yet, or it holds no stanza for A) refuses either step with one line (exit 19) and writes
nothing.  Against ``rclone serve s3`` (the module's server; three devices built once).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sessionseal import Vault, _device_enroll, _remotekeys
from sessionseal.errors import RemoteError, SessionNotFound
from tests._infra import synccapture, syncvaults
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's server's fixtures)
    fixture_module_server,
    fixture_module_server_env,
    fixture_s3_server,
    fixture_server_env,
)
from tests.memkeyring import MemoryKeyring

PREFIX = "team/ahead"
_device, _save, _titles, _store = syncvaults.device, syncvaults.save, syncvaults.titles, syncvaults.store


#: A (first device), B and C (enrolled by A), all pulled; B pushed "b before".
kr, captured, three = synccapture.three_device_fixtures(PREFIX, b_pushes=True)


def _names(server: S3Server, dev: uuid.UUID) -> set[str]:
    return {k for k, _ in _store(server).list(f"{PREFIX}/d/{dev.hex}/")}


def _b_deletes(b: Vault) -> uuid.UUID:
    """B deletes its session and pushes: epoch 2, made by B; returns the erased id."""
    doomed = next(s.id for s in b.list() if s.title == "b before")
    b.delete(doomed)
    assert b.remotes.push().epoch == 2
    return doomed


def _wrapped(server: S3Server, maker: Vault, epoch: int) -> set[uuid.UUID]:
    obj = _store(server).get(f"{PREFIX}/d/{_device(maker).hex}/keys/{epoch:08x}")
    return {uuid.UUID(bytes=s[:16]) for _, s in _remotekeys.parse_keys_object(obj).stanzas}


def test_a_revocation_takes_up_a_delete_it_has_not_pulled_and_numbers_its_epoch_above_it(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, c = three
    doomed = _b_deletes(b)
    step = _device_enroll.revoke(a, None, _device(c).hex)
    # One key per epoch: B's epoch 2 (taken up), A's revocation's epoch 3 without C.
    assert step.epoch == 3
    assert f"{PREFIX}/d/{_device(a).hex}/keys/00000002" not in _names(server_env, _device(a))
    assert a.remotes.devices.epoch_keys("cloud")[2] == b.remotes.devices.epoch_keys("cloud")[2]
    assert _wrapped(server_env, a, 3) == {_device(a), _device(b)}
    assert not a.remotes.devices.maker_keys("cloud") and not b.remotes.devices.maker_keys("cloud")
    # Nothing to settle: each pushes under epoch 3, no rekey; C reads nothing after.
    assert a.remotes.pull().erased == 1
    with pytest.raises(SessionNotFound):
        a.load(doomed)
    b.remotes.pull()
    _save(b, "b after")
    assert b.remotes.push().epoch == 3
    a.remotes.pull()
    _save(a, "a after")
    assert a.remotes.push().epoch == 3
    b.remotes.pull()
    assert {"a after", "b after"} <= _titles(a) & _titles(b)
    with pytest.raises(RemoteError, match="this device was revoked"):
        c.remotes.pull()
    assert 3 not in c.remotes.devices.epoch_keys("cloud")
    assert not {"a after", "b after"} & _titles(c)


def test_a_newer_epoch_not_proved_yet_refuses_an_enrolment_and_a_revocation_numbers_above_it(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path, kr: MemoryKeyring
) -> None:
    a, b, c = three
    store = _store(server_env)
    old = _names(server_env, _device(b))
    _b_deletes(b)
    # B's heads since its epoch entry are held back (a push still uploading): not proved yet.
    heads = {k: store.get(k) for k in _names(server_env, _device(b)) - old if "/head/" in k}
    assert heads
    for key in heads:
        store.delete(key)
    before = _names(server_env, _device(a))
    d = syncvaults.vault(tmp_path / "d", server_env, kr, PREFIX)
    try:
        code = _device_enroll.request(d).pairing_code or ""
        with pytest.raises(RemoteError, match=r"made epoch 2, which this device cannot take up yet") as refused:
            _device_enroll.accept(a, None, _device(d).hex, code)
        assert refused.value.exit_code == 19 and "\n" not in str(refused.value)  # one line
        assert _names(server_env, _device(a)) == before
        assert set(a.remotes.devices.epoch_keys("cloud")) == {1}
        # A revocation is not held back (whoever writes the bucket could hold it back so): it
        # is numbered above the epoch it cannot take up yet, never a second key of epoch 2.
        assert _device_enroll.revoke(a, None, _device(c).hex).epoch == 3
        assert set(a.remotes.devices.epoch_keys("cloud")) == {1, 3}
        # Once the proof is there, A takes epoch 2 up (it has not pulled), and the enrolment
        # carries all three: D reads what B sealed under epoch 2.
        for key, data in heads.items():
            store.put(key, data)
        _device_enroll.accept(a, None, _device(d).hex, code)
        _device_enroll.finish(d)
        assert set(d.remotes.devices.epoch_keys("cloud")) == {1, 2, 3}
        d.remotes.pull()
        b.remotes.pull()
        _save(b, "b after")
        assert b.remotes.push().epoch == 3
        d.remotes.pull()
        assert "b after" in _titles(d) and "b before" not in _titles(d)
    finally:
        d.close()


def test_a_key_object_planted_above_blocks_no_revocation_and_a_revoked_device_enrols_no_one(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path, kr: MemoryKeyring
) -> None:
    a, b, c = three
    store = _store(server_env)
    # C, about to be revoked, plants epoch 2 under its prefix with a key for itself alone: to A
    # that is an epoch without a key for it.  A's revocation goes on, numbered above it.
    rid = a.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    ident = c.remotes.devices.identity("cloud")
    stanza = _remotekeys.wrap_for_device(bytes(32), rid, 2, _device(c), ident.x25519_public)
    store.put(f"{PREFIX}/d/{_device(c).hex}/keys/00000002", _remotekeys.keys_object(rid, 2, _device(c), [stanza]))
    assert _device_enroll.revoke(a, None, _device(c).hex).epoch == 3
    assert _wrapped(server_env, a, 3) == {_device(a), _device(b)}
    # B revokes A in turn; A, revoked, refuses to enrol anyone, writing nothing.
    b.remotes.pull()
    assert _device_enroll.revoke(b, None, _device(a).hex).epoch == 4
    d = syncvaults.vault(tmp_path / "d", server_env, kr, PREFIX)
    try:
        code = _device_enroll.request(d).pairing_code or ""
        before = _names(server_env, _device(a))
        with pytest.raises(RemoteError, match="made epoch 4 without a key for this device"):
            _device_enroll.accept(a, None, _device(d).hex, code)
        assert _names(server_env, _device(a)) == before
    finally:
        d.close()
