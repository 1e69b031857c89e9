"""A recovery kit restores from the bucket alone (issue 26, "Keys": "``key export`` of a recovery
kit"; "Tests": "a recovery kit restores a vault on a fresh device"; docs/sync.md, "Recovery kit";
src/sessionseal/_kitremote.py), against a real ``rclone serve s3`` on 127.0.0.1.

Device A (a keychain vault, in-memory keychain) pushes, and exports a version-2 kit.  A fresh
device, with nothing but the kit, its passphrase and the bucket's credentials, runs ``remote
restore`` (a real CLI run that makes a passphrase vault): every session is the same document
as A's, the device is enrolled in A's eyes, and both push and pull afterwards.  Refusals, each
with its documented exit code and nothing kept: a wrong passphrase (12), a bucket holding
another remote (19), a kit older than a revocation (19), a log rolled back below the kit's
witness (19).  An edited kit: tests/unit/test_recovery_kit_v2.py.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, _device_enroll, _kitremote, _recoverykit, _remotekeys, list_devices
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from tests._infra import syncvaults
from tests._infra.s3server import S3Server
from tests.memkeyring import MemoryKeyring

PREFIX = "me/laptop"
KIT_PW = "the kit's own passphrase"
VAULT_PW = "the new vault's passphrase"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kits of these tests under scrypt N=2^14, not 2^17: the kit carries N, so the reader
    # is the production one (as the spec's vectors do); a restore pays one scrypt either way.
    monkeypatch.setattr(_remotekeys, "wrap_passphrase", functools.partial(_remotekeys.wrap_passphrase, log2_n=14))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("kitpw", KIT_PW), ("wrong", "not the kit's passphrase"), ("vaultpw", VAULT_PW)):
        out[name] = tmp_path / name
        out[name].write_text(text)
        out[name].chmod(0o600)
    return out


def _restore(path: Path, kit: Path, pw: Path, vault_pw: Path, *more: str) -> Result:
    args = ["--vault", str(path), "--passphrase-file", str(vault_pw), "remote", "restore", "--recovery-kit", str(kit)]
    args += ["--kit-passphrase-file", str(pw), "--key-provider", "passphrase", "--json", *more]
    return CliRunner().invoke(cli, args)


def _docs(v: Vault) -> dict[uuid.UUID, dict[str, Any]]:
    return {s.id: v.load(s.id).model_dump(mode="json") for s in v.list()}


def test_a_fresh_device_restores_every_session_from_the_kit_and_the_bucket_and_syncs_after(
    tmp_path: Path, server_env: S3Server, files: dict[str, Path]
) -> None:
    a = syncvaults.vault(tmp_path / "a", server_env, MemoryKeyring(), PREFIX)
    syncvaults.save(a, "first")
    syncvaults.save(a, "second")
    a.remotes.push()
    sid = next(s.id for s in a.list() if s.title == "first")
    a.append(sid, [{"role": "assistant", "content": "an appended turn"}])
    a.remotes.push()
    kit = tmp_path / "kit.json"
    assert _kitremote.export(a, kit, KIT_PW)[1] == 1
    doc = json.loads(kit.read_text())
    assert doc["version"] == 2 and doc["remotes"][0]["url"] == f"s3://{server_env.bucket}/{PREFIX}"
    assert syncvaults.device(a).hex in doc["remotes"][0]["witness"]  # its own log's end

    # A wrong passphrase: exit 12, and no vault made.
    fresh = tmp_path / "fresh"
    ran = _restore(fresh, kit, files["wrong"], files["vaultpw"])
    assert ran.exit_code == 12 and not fresh.exists(), ran.output

    ran = _restore(fresh, kit, files["kitpw"], files["vaultpw"])
    assert ran.exit_code == 0, ran.output
    out = json.loads(ran.stdout)
    assert (out["vault_created"], out["epoch"], out["device_records"], out["put"], out["appended"]) == (
        True,
        1,
        1,
        2,
        1,
    )
    r = Vault.open(fresh, passphrase=VAULT_PW)
    try:
        assert _docs(r) == _docs(a)  # every session the same document, the appended turn included
        # A sees the restored device enrolled (by its own entry, under the kit's key)...
        status = {e.device: e.status for e in list_devices(a).devices}
        assert status[uuid.UUID(out["device"])] == "enrolled"
        # ... and both sync on: R's new session reaches A, A's next one reaches R.
        syncvaults.save(r, "from the restored device")
        assert r.remotes.push().put == 1
        a.remotes.pull()
        syncvaults.save(a, "after the restore")
        a.remotes.push()
        r.remotes.pull()
        assert (
            syncvaults.titles(a)
            == syncvaults.titles(r)
            == {
                "first",
                "second",
                "from the restored device",
                "after the restore",
            }
        )
        # A delete on A makes epoch 2: wrapped for R too, which takes it up.
        a.delete(next(s.id for s in a.list() if s.title == "second"))
        assert a.remotes.push().epoch == 2
        r.remotes.pull()
        assert "second" not in syncvaults.titles(r) and set(r.remotes.devices.epoch_keys("cloud")) == {1, 2}
    finally:
        r.close()
        a.close()


def test_refusals_keep_nothing(tmp_path: Path, server_env: S3Server) -> None:
    # Through the library, into one fresh vault that each refusal must leave as it was; the CLI
    # maps RemoteError to exit 19 (docs/cli.md). An edited kit: tests/unit/test_recovery_kit_v2.py.
    kr = MemoryKeyring()
    a = syncvaults.vault(tmp_path / "a", server_env, kr, PREFIX)
    b = syncvaults.vault(tmp_path / "b", server_env, kr, PREFIX)
    fresh = Vault.init(tmp_path / "fresh", key_provider=KeychainProvider(backend=kr))
    try:
        syncvaults.save(a, "one")
        a.remotes.push()
        syncvaults.enrol(a, b)
        syncvaults.save(a, "two")
        a.remotes.push()
        kit = tmp_path / "kit.json"
        _kitremote.export(a, kit, KIT_PW)
        doc = json.loads(kit.read_text())

        def refused(data: bytes, error: type[Exception], words: str) -> None:
            with pytest.raises(error, match=words):
                _kitremote.restore(fresh, _kitremote.unlock(_recoverykit.parse(data), KIT_PW))
            assert fresh.remotes.list() == [] and fresh.list() == []

        # A log rolled back below what the kit witnessed (its last entry and head gone): refused.
        store = syncvaults.store(server_env)
        mine = f"{PREFIX}/d/{syncvaults.device(a).hex}/"
        seq = doc["remotes"][0]["witness"][syncvaults.device(a).hex][0]
        saved = {k: store.get(k) for k, _ in store.list(mine) if k.endswith(f"/{seq:016x}")}
        assert len(saved) == 2
        for k in saved:
            server_env.remove(k)
        refused(kit.read_bytes(), RemoteError, "witnessed")
        for k, data in saved.items():
            store.put(k, data)

        # A kit older than a revocation: refused (what follows is sealed under a key it lacks).
        _device_enroll.revoke(a, None, syncvaults.device(b).hex)
        assert a.remotes.push().epoch == 2
        refused(kit.read_bytes(), RemoteError, "older than epoch 2")

        # A bucket that holds another remote at the kit's URL: refused.
        for key in server_env.objects(PREFIX + "/"):
            server_env.remove(key)
        other = syncvaults.vault(tmp_path / "x", server_env, kr, PREFIX)
        syncvaults.save(other, "not yours")
        other.remotes.push()
        other.close()
        refused(kit.read_bytes(), RemoteError, "not the kit's")
    finally:
        for v in (a, b, fresh):
            v.close()
