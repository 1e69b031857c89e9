"""A revoked device does not come back through a forged enrolment (issue 26, "Keys";
docs/spec/remote-v1.md, "Log entries", "Revoked devices"), against a real S3 server
(``rclone serve s3`` on 127.0.0.1).

R, enrolled by A, is revoked by A (epoch 2).  R still holds epoch 1's key: it makes a new device
D' and writes D''s log, sealed under epoch 1, opening with the self-enrolment ``remote restore``
writes (or with an ``epoch`` entry of reason ``first``).  A does not count D' as enrolled:
``device list`` shows it ``not-enrolled``, and the epoch A's next delete makes has no stanza for
it, and a pull applies none of D''s entries.  (A legitimate ``remote restore`` from a current kit: tests/integration/test_kit_restore.py.)
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

from sessionseal import KeychainProvider, Vault, _device_enroll, _remotekeys, list_devices
from tests._infra.s3server import S3Server
from tests.memkeyring import MemoryKeyring

PREFIX = "team/me"


def _vault(path: Path, server: S3Server) -> Vault:
    v = Vault.init(path, key_provider=KeychainProvider(backend=MemoryKeyring()))
    v.remotes.add("cloud", f"s3://{server.bucket}/{PREFIX}", endpoint=server.endpoint)
    return v


def _device(v: Vault) -> uuid.UUID:
    return v.remotes.devices.identity("cloud").device_id


def _forge(r: Vault, d: Vault, kind: str) -> uuid.UUID:
    """R hands D' epoch 1's key; D' writes entry 1 of its log under it: a self-enrolment, or a
    first device's ``epoch`` entry."""
    rid = r.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    d.remotes.devices.add_epoch_key("cloud", 1, r.remotes.devices.epoch_keys("cloud")[1], remote_id=rid)
    ident = d.remotes.devices.identity("cloud")
    me = _device(d)
    obj = _remotekeys.keys_object(rid, 1, me, [_remotekeys.wrap_for_device(bytes(32), rid, 1, me, ident.x25519_public)])
    named = {
        "x25519": base64.b64encode(ident.x25519_public).decode(),
        "ed25519": base64.b64encode(ident.ed25519_public).decode(),
        "keys": hashlib.sha256(obj).hexdigest(),
    }
    entry: dict[str, Any] = (
        {"kind": "device.enroll", "device": me.hex, "witness": {}, **named}
        if kind == "self"
        else {"kind": "epoch", "epoch": 1, "reason": "first", **named}
    )
    config = d.parts.sync.pick("cloud")
    d.parts.sync.commit_entries(config, [entry], [(f"enroll/{me.hex}" if kind == "self" else "keys/00000001", obj)])
    return me


def test_forged_enrolments_under_an_epoch_before_the_revocation_get_no_key(
    tmp_path: Path, server_env: S3Server
) -> None:
    # One setup for both forgeries (a self-enrolment, a first device's entry): a real server's
    # setup is most of this test's time.
    a, r, d1, d2 = (_vault(tmp_path / n, server_env) for n in ("a", "r", "d1", "d2"))
    try:
        a.save({"title": "t", "messages": [{"role": "user", "content": "hi"}]})
        a.remotes.push()
        step = _device_enroll.request(r)
        _device_enroll.accept(a, None, _device(r).hex, step.pairing_code or "")
        _device_enroll.finish(r)
        assert _device_enroll.revoke(a, None, _device(r).hex).epoch == 2
        forged = [_forge(r, d1, "self"), _forge(r, d2, "first")]
        status = {e.device: e.status for e in list_devices(a).devices}
        assert [status[f] for f in forged] == ["not-enrolled", "not-enrolled"]
        assert status[_device(r)] == "revoked" and status[_device(a)] == "enrolled"
        # Nor does a pull apply what D' writes under the key R kept.
        d1.save({"title": "planted", "messages": [{"role": "user", "content": "p"}]})
        d1.remotes.push()
        assert a.remotes.pull().refused >= 1
        assert "planted" not in {s.title for s in a.list()}
        sid = a.save({"title": "gone", "messages": [{"role": "user", "content": "x"}]})
        a.remotes.push()
        a.delete(sid)
        assert a.remotes.push().epoch == 3
        keys = _remotekeys.parse_keys_object(server_env.read(f"{PREFIX}/d/{_device(a).hex}/keys/{3:08x}"))
        assert all(keys.for_device(f) is None for f in forged) and keys.for_device(_device(a)) is not None
    finally:
        for v in (a, r, d1, d2):
            v.close()
