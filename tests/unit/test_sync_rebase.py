"""Rebasing under a delete's epoch and retiring the old epoch's key (issue 26; docs/sync.md,
"Deletes"; docs/spec/remote-v1.md, "Rebase and retirement"), against a real S3 server
(``rclone serve s3`` on 127.0.0.1), each device with its own vault and key store.

The spec: after a device holds the new epoch a delete made, its next push writes a ``rebase``
entry re-sealing every live session its log serves under that epoch.  Once every enrolled,
unrevoked device has rebased, has applied the others' logs past their rebases and is witnessed
past its own, each device deletes its own objects that only old entries name, its old key
objects and enrolment objects, and drops the old key from its store: an old object the bucket
kept is then unreadable with anything any device holds.  A device that has not rebased holds
retirement back; a revoked one does not.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sessionseal import Vault, _crypto, _device_enroll, _device_list, _remotekeys, _remotelog
from sessionseal.errors import IntegrityError, RemoteError
from tests._infra.s3server import S3Server
from tests._infra.syncvaults import device, enrol, save, titles, vault
from tests.memkeyring import MemoryKeyring

pytestmark = pytest.mark.s3

SECRET = "ornithorhynchus"


def _prefix(server: S3Server, prefix: str, dev: uuid.UUID) -> Path:
    return server.root / server.bucket / prefix / "d" / dev.hex


def _names(server: S3Server, prefix: str, dev: uuid.UUID, kind: str) -> set[str]:
    base = _prefix(server, prefix, dev) / kind
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _unreadable(v: Vault, maker: uuid.UUID, name: str, data: bytes) -> None:
    """*data* (an object of *maker*'s the bucket kept) opens under none of *v*'s keys, whatever
    epoch its header claims: every epoch key *v* holds, through every derivation."""
    devices = v.remotes.devices
    rid = devices.identity("cloud").remote_id
    assert rid is not None
    held = devices.epoch_keys("cloud")
    with pytest.raises(RemoteError):
        _remotelog.open_object(name, data, held, rid, maker)
    header = data[: _remotelog.OBJECT_HEADER.size]
    nonce = header[-12:]
    for key in held.values():
        for label in ("object", "log", "log mac"):
            with pytest.raises(IntegrityError):
                _crypto.decrypt(_remotekeys.derive(key, rid, maker, label), nonce, data[len(header) :], header)


def test_delete_rebase_and_retire_the_old_key(tmp_path: Path, server_env: S3Server) -> None:
    prefix = "rebase/two"
    a = vault(tmp_path / "a", server_env, MemoryKeyring(), prefix)
    b = vault(tmp_path / "b", server_env, MemoryKeyring(), prefix)
    try:
        a.save({"title": "doomed", "messages": [{"role": "user", "content": f"the word is {SECRET}"}]})
        save(a, "kept")
        a.remotes.push()
        enrol(a, b)
        assert b.remotes.pull().put == 2
        da, db = device(a), device(b)
        # The bucket keeps a copy of every object of epoch 1 (versioning, a lock, a backup).
        kept_by_bucket = {
            n: (_prefix(server_env, prefix, da) / "o" / n).read_bytes() for n in _names(server_env, prefix, da, "o")
        }
        assert len(kept_by_bucket) == 2
        [doomed] = [s.id for s in a.list() if s.title == "doomed"]
        a.delete(doomed)
        pushed = a.remotes.push()
        assert (pushed.tombstoned, pushed.epoch, pushed.rebased) == (1, 2, 1)
        # B erases, then rebases (its log opens with its rebase: it had sent nothing before).
        assert b.remotes.pull().erased == 1
        assert b.remotes.push().rebased == 0
        # A: every device rebased, A applied B's rebase, B witnessed A's: retired.
        pulled = a.remotes.pull().counts()
        assert (pulled["retired_below"], pulled["epochs_retired"], pulled["epochs_held"]) == (2, 1, [2])
        # "kept"'s epoch-1 object, and "doomed"'s (gone already: a delete of a gone name counts)
        assert pulled["retired_objects_deleted"] == 2
        assert a.remotes.devices.epoch_keys("cloud").keys() == {2}
        assert _names(server_env, prefix, da, "keys") == {f"{2:08x}"}
        assert _names(server_env, prefix, da, "enroll") == set()
        assert not (_names(server_env, prefix, da, "o") & set(kept_by_bucket))
        # B waits until A's head witnesses B's rebase: A's next push writes one.
        waiting = b.remotes.pull().counts()
        assert waiting["epochs_retired"] == 0 and waiting["retire_waiting"] == {da.hex: "witness"}
        save(a, "after")
        a.remotes.push()
        done = b.remotes.pull().counts()
        assert (done["epochs_retired"], done["epochs_held"]) == (1, [2])
        assert b.remotes.devices.epoch_keys("cloud").keys() == {2}
        # What the bucket kept of epoch 1 opens on neither device.
        for v in (a, b):
            for name, data in kept_by_bucket.items():
                _unreadable(v, da, name, data)
        # Audited, counts only.
        [record] = [r for r in b.audit_records() if r.get("action") == "sync.retire"]
        assert record["detail"]["epochs_retired"] == 1
        # Sync goes on, read from the rebases: both ways, and device list.
        save(b, "from b")
        b.remotes.push()
        assert a.remotes.pull().put == 1
        assert titles(a) == titles(b) == {"kept", "after", "from b"}
        listed = _device_list.list_devices(a, "cloud").devices
        assert {e.device: e.status for e in listed} == {da: "enrolled", db: "enrolled"}
    finally:
        a.close()
        b.close()


def test_retirement_waits_for_a_device_that_has_not_rebased_but_not_for_a_revoked_one(
    tmp_path: Path, server_env: S3Server
) -> None:
    prefix = "rebase/three"
    a = vault(tmp_path / "a", server_env, MemoryKeyring(), prefix)
    b = vault(tmp_path / "b", server_env, MemoryKeyring(), prefix)
    c = vault(tmp_path / "c", server_env, MemoryKeyring(), prefix)
    try:
        save(a, "doomed")
        save(a, "kept")
        a.remotes.push()
        enrol(a, b)
        enrol(a, c)
        b.remotes.pull()
        c.remotes.pull()
        c.remotes.push()  # C's log opens at epoch 1
        [doomed] = [s.id for s in a.list() if s.title == "doomed"]
        a.delete(doomed)
        a.remotes.push()
        b.remotes.pull()
        b.remotes.push()
        a.remotes.pull()
        save(a, "more")
        a.remotes.push()
        # C is offline and has not rebased: nobody retires epoch 1.
        for v in (a, b):
            got = v.remotes.pull().counts()
            assert got["epochs_retired"] == 0 and got["retire_waiting"].get(device(c).hex) == "rebase"
            assert 1 in v.remotes.devices.epoch_keys("cloud")
        # A revokes C: a revoked device holds nothing back.
        _device_enroll.revoke(a, None, device(c).hex)
        a.remotes.push()  # A's rebase at epoch 3
        b.remotes.pull()
        b.remotes.push()
        assert a.remotes.pull().counts()["epochs_held"] == [3]
        save(a, "last")
        a.remotes.push()
        assert b.remotes.pull().counts()["epochs_held"] == [3]
        assert titles(b) == {"kept", "more", "last"}
    finally:
        a.close()
        b.close()
        c.close()
