"""This device's keys on a remote (issue 26; docs/sync.md, "Keys"): a keypair per vault per
remote, made once and kept in the key table's state (sealed under the master key, in a keychain
vault and a passphrase vault alike), the remote's id and epoch 1's key made by the first device,
epoch keys added and refused; nothing of them on disk in the clear, and they follow the master
key through a rotation and a compaction of the key table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault, _crypto, _remotekeys, _state
from sessionseal.errors import InvalidInput, RemoteError
from sessionseal.models import Session

Opener = Callable[[], Vault]


def _every_byte(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


@pytest.fixture(params=["keychain", "passphrase"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def opener(kind: str, vault_path: Path, provider: KeychainProvider) -> Opener:
    def open_vault() -> Vault:
        if kind == "keychain":
            return Vault.open(vault_path, key_provider=provider)
        return Vault.open(vault_path, passphrase="device keys test")

    if kind == "keychain":
        Vault.init(vault_path, key_provider=provider).close()
    else:
        Vault.init(vault_path, key_provider="passphrase", passphrase="device keys test").close()
    with open_vault() as v:
        v.remotes.add("cloud", "s3://bucket/me", endpoint="http://127.0.0.1:9", check=False)
    return open_vault


def test_the_identity_is_made_once_kept_sealed_and_the_same_after_reopening(opener: Opener, vault_path: Path) -> None:
    with opener() as v:
        ident = v.parts.devices.identity("cloud")
        assert ident.device_id == v.parts.devices.remote("cloud").device
        assert ident.remote_id is None and v.parts.devices.epoch_keys("cloud") == {}
        again = v.parts.devices.identity("cloud")
    assert (again.x25519, again.ed25519) == (ident.x25519, ident.ed25519)
    assert "x25519=" not in repr(ident) and ident.x25519.hex() not in repr(ident)
    with opener() as v:
        reopened = v.parts.devices.identity("cloud")
    assert (reopened.x25519, reopened.ed25519, reopened.created_at) == (ident.x25519, ident.ed25519, ident.created_at)
    disk = _every_byte(vault_path)
    for secret in (ident.x25519, ident.ed25519):
        assert secret not in disk and secret.hex().encode() not in disk
    # The public halves are derived from the private ones (the device record names them).
    assert ident.keys.x25519_public == ident.x25519_public == _crypto.x25519_public(ident.x25519)


def test_the_first_device_makes_the_remote_id_and_epoch_1_once(opener: Opener, vault_path: Path) -> None:
    with opener() as v:
        devices = v.parts.devices
        rid = devices.start_remote("cloud")
        assert devices.start_remote("cloud") == rid
        key = devices.epoch_key("cloud", 1)
        assert devices.current_epoch("cloud") == (1, key) and len(key) == 32
        ident = devices.identity("cloud")
        assert ident.remote_id == rid
        # Wrapped for itself (a type-1 stanza), the key unwraps with the device's own keys.
        stanza = _remotekeys.wrap_for_device(key, rid, 1, ident.device_id, ident.x25519_public)
        assert _remotekeys.unwrap_device(stanza[1:], rid, 1, ident.device_id, ident.keys) == key
        record = ident.record()
        assert b'"format":"sessionseal-remote-device"' in record and rid.hex.encode() in record
        assert ident.record() == record  # the same bytes every time: a retried PUT is the same
        assert len(ident.pairing_code()) == 16
    assert key not in _every_byte(vault_path)
    with opener() as v:
        assert v.parts.devices.epoch_keys("cloud") == {1: key}


def test_epoch_keys_added_kept_in_order_and_conflicts_refused(opener: Opener) -> None:
    rid, other = uuid.uuid4(), uuid.uuid4()
    k2, k3 = _crypto.new_key(), _crypto.new_key()
    with opener() as v:
        devices = v.parts.devices
        with pytest.raises(RemoteError, match="holds no key"):
            devices.current_epoch("cloud")
        with pytest.raises(RemoteError, match="epoch 3"):
            devices.epoch_key("cloud", 3)
        devices.add_epoch_key("cloud", 3, k3, remote_id=rid)
        devices.add_epoch_key("cloud", 2, k2)
        devices.add_epoch_key("cloud", 2, k2)  # the same again: nothing to do
        assert devices.epoch_keys("cloud") == {2: k2, 3: k3} and devices.current_epoch("cloud") == (3, k3)
        assert devices.identity("cloud").remote_id == rid
        assert devices.start_remote("cloud") == rid  # an enrolled device makes no epoch 1
        with pytest.raises(InvalidInput, match="another key of epoch 2"):
            devices.add_epoch_key("cloud", 2, k3)
        with pytest.raises(InvalidInput, match="another remote"):
            devices.add_epoch_key("cloud", 4, k3, remote_id=other)
        for bad in ((0, k2), (5, b"short")):
            with pytest.raises(InvalidInput, match="32 bytes"):
                devices.add_epoch_key("cloud", *bad)
        with pytest.raises(InvalidInput, match="no remote of that name"):
            devices.identity("nope")
    with opener() as v:
        assert v.parts.devices.epoch_keys("cloud") == {2: k2, 3: k3}


def test_the_keys_follow_the_master_key_through_a_rotation_and_a_compaction(opener: Opener) -> None:
    with opener() as v:
        rid = v.parts.devices.start_remote("cloud")
        ident = v.parts.devices.identity("cloud")
        key = v.parts.devices.epoch_key("cloud", 1)
        v.save(Session(title="kept"))
        v.rekey()  # rewrites the key table under a fresh master key: the state goes with it
        table = v.parts.keys.keytable(fresh=True)
        table.write(v.parts.ctx.root, v.parts.keys.kek(table.kek_epoch), table.kek_epoch)
    with opener() as v:
        again = v.parts.devices.identity("cloud")
        assert (again.x25519, again.remote_id) == (ident.x25519, rid)
        assert v.parts.devices.epoch_keys("cloud") == {1: key}


def test_a_state_frame_with_remote_keys_round_trips_and_refuses_bad_shapes() -> None:
    keys = _state.RemoteKeys(bytes(range(32)), bytes(32), "2026-12-06T00:00:00+00:00", bytes(16), ((1, bytes(32)),))
    device = uuid.uuid4().bytes
    full = _state.VaultState(tracked=True, counter=4, remote_keys={device: keys})
    back = _state.VaultState()
    _state.decode_frame(back, _state.encode_full(full))
    assert back.remote_keys == {device: keys}
    delta = _state.encode_change(5, _state.StateChange(remote_keys={device: keys}))
    _state.decode_frame(back, delta)
    assert back.counter == 5 and back.remote_keys[device] == keys
    # A table without remotes is written as before them (an older build reads it unchanged).
    assert b"remote_keys" not in _state.encode_full(_state.VaultState(tracked=True))
    bad = _state.encode_change(6, _state.StateChange(remote_keys={device: keys})).replace(b'"r":"', b'"r":"ab')
    with pytest.raises(Exception, match="key table failed its integrity check"):
        _state.decode_frame(back, bad)
