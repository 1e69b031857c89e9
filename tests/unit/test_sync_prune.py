"""``sessionseal sync --prune`` against a real S3 server (``rclone serve s3`` on 127.0.0.1; issue
26, docs/sync.md "Pruning unnamed objects"): only this device's content objects that no entry
of its log names, and only once older than the safety age, are deleted; named objects, other
devices' prefixes and names that are not content objects are never touched; nothing at all is
deleted when the vault cannot prove it (no record of its pushes); audited with counts.  A
prune after a real killed push: tests/integration/test_sync_prune_kill.py."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import KeychainProvider, Vault, _remote, _s3
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from sessionseal.models import Session
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)
from tests._infra.synclog import read_pushed, server_files

PREFIX = "team/prune"


@pytest.fixture
def vault(vault_path: Path, provider: KeychainProvider, server_env: S3Server) -> Iterator[Vault]:
    v = Vault.init(vault_path, key_provider=provider)
    v.remotes.add("cloud", f"s3://{server_env.bucket}/{PREFIX}", endpoint=server_env.endpoint)
    try:
        yield v
    finally:
        v.close()


def _session(i: int) -> Session:
    return Session.model_validate({"title": f"s{i}", "messages": [{"role": "user", "content": f"turn {i} " * 30}]})


def _objects(server: S3Server, device: str) -> dict[str, bytes]:
    base = server.root / server.bucket / PREFIX / "d" / device / "o"
    return {p.name: p.read_bytes() for p in base.iterdir()} if base.is_dir() else {}


def _plant(server: S3Server, device: str, data: bytes, name: str | None = None) -> str:
    """An object as a push killed after its PUT leaves it: under o/, named by its hash."""
    name = name or hashlib.sha256(data).hexdigest()
    url = _remote.parse_url(f"s3://{server.bucket}/{PREFIX}")
    store = _s3.open_store(url, endpoint=server.endpoint, profile=None, region=None)
    store.put(url.key("d", device, "o", name), data)  # through the server: its listing knows it
    return name


def test_a_clean_remote_has_nothing_to_prune(vault: Vault, server_env: S3Server) -> None:
    for i in range(3):
        vault.save(_session(i))
    vault.remotes.push()
    files = server_files(server_env)
    result = vault.remotes.prune(min_age=0)
    assert (result.objects, result.named, result.unnamed, result.deleted, result.unproven) == (3, 3, 0, 0, None)
    assert result.entries == 4 and server_files(server_env) == files


def test_an_unnamed_object_goes_once_older_than_the_safety_age(vault: Vault, server_env: S3Server) -> None:
    sid = vault.save(_session(1))
    vault.remotes.push()
    device = vault.remotes.list()[0].device.hex
    named = set(_objects(server_env, device))
    orphan = _plant(server_env, device, os.urandom(300))
    # By default (a day), a fresh one is kept: a push of another copy of the vault may be naming it.
    kept = vault.remotes.prune()
    assert (kept.unnamed, kept.young, kept.deleted) == (1, 1, 0) and orphan in _objects(server_env, device)
    dry = vault.remotes.prune(min_age=0, dry_run=True)
    assert (dry.deleted, dry.bytes, dry.dry_run) == (1, 300, True) and orphan in _objects(server_env, device)
    done = vault.remotes.prune(min_age=0)
    assert (done.deleted, done.bytes, done.named) == (1, 300, 1)
    assert set(_objects(server_env, device)) == named  # the named one stays, byte for byte
    ident = vault.remotes.devices.identity("cloud")
    pushed = read_pushed(server_env, PREFIX, ident.device_id, ident.keys)
    [put] = [e for e in pushed.entries if e["kind"] == "session.put"]
    assert pushed.object(put["object"]) == vault.load_json(sid)
    # Audited with counts, never a name.
    [record] = [r for r in vault.audit_records() if r["action"] == "sync.prune" and not r["detail"]["dry_run"]][-1:]
    assert record["detail"]["deleted"] == 1 and orphan not in json.dumps(record)


def test_other_devices_and_names_that_are_not_objects_are_never_touched(vault: Vault, server_env: S3Server) -> None:
    vault.save(_session(1))
    vault.remotes.push()
    device = vault.remotes.list()[0].device.hex
    other = "f" * 32
    theirs = _plant(server_env, other, b"another device's object")
    foreign = _plant(server_env, device, b"not ours to judge", name="README")
    result = vault.remotes.prune(min_age=0)
    assert (result.foreign, result.deleted) == (1, 0)
    assert theirs in _objects(server_env, other) and foreign in _objects(server_env, device)


def test_nothing_is_deleted_without_the_vaults_record_of_its_pushes(vault: Vault, server_env: S3Server) -> None:
    vault.save(_session(1))
    vault.remotes.push()
    device = vault.remotes.list()[0].device.hex
    orphan = _plant(server_env, device, b"left by a killed push")
    [cursor] = (vault.path / "sync").glob(f"{device}.sst")
    cursor.unlink()  # a vault restored without its sync state: its log may hold what it cannot see
    result = vault.remotes.prune(min_age=0)
    assert result.deleted == 0 and result.unproven is not None and "record" in result.unproven
    assert orphan in _objects(server_env, device)


def test_a_device_that_never_pushed_has_nothing_to_prune(vault: Vault, server_env: S3Server) -> None:
    with pytest.raises(RemoteError, match="never pushed"):
        vault.remotes.prune(min_age=0)


def test_the_cli(vault: Vault, server_env: S3Server, monkeypatch: pytest.MonkeyPatch, memory_keyring: object) -> None:
    # The CLI opens the vault through the keyring the test installs; the fixture's vault has its own.
    path = vault.path.parent / "cli-vault"
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(path))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    url = f"s3://{server_env.bucket}/{PREFIX}-cli"
    assert runner.invoke(cli, ["remote", "add", "c", url, "--endpoint", server_env.endpoint]).exit_code == 0
    saved = runner.invoke(cli, ["save", "-"], input='{"messages": [{"role": "user", "content": "x"}]}')
    assert saved.exit_code == 0
    assert runner.invoke(cli, ["sync", "--push"]).exit_code == 0
    out = runner.invoke(cli, ["sync", "--prune", "--min-age", "0", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert (doc["objects"], doc["named"], doc["deleted"], doc["dry_run"], doc["why"]) == (1, 1, 0, True, None)
    human = runner.invoke(cli, ["sync", "--prune"])
    assert human.exit_code == 0 and "Deleted 0 of 1 objects" in human.stderr
    both = runner.invoke(cli, ["sync", "--prune", "--push"])
    assert both.exit_code == 2
