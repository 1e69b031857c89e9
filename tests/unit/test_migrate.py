"""Format versions and ``migrate`` (issue 8): every format names its version, a newer one is
refused with a clear message, an older one is brought up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import Vault, _index, errors
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring


def _states(vault: Vault) -> dict[str, str]:
    return {f.name: f.state for f in vault.formats()}


def test_a_new_vault_is_in_the_current_formats(vault: Vault) -> None:
    sid = vault.save({"title": "t", "messages": []})
    vault.checkpoint(sid)
    assert _states(vault) == {
        "vault": "current",
        "key file": "absent",  # a keychain vault
        "container": "current",
        "index": "current",
        "config": "current",
        "audit log": "current",
    }
    containers = next(f for f in vault.formats() if f.name == "container")
    assert containers.items == 4  # key table, index, session, checkpoint (no config yet; no audit anchor: issue 20)
    found, steps = vault.migrate()
    assert steps == [] and len(found) == 6
    assert any(r["action"] == "migrate" for r in vault.audit_records())


def test_an_index_of_an_older_format_is_migrated(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.save({"title": "t", "messages": []})
    with monkeypatch.context() as m:
        m.setattr(_index, "_FORMAT", 1)
        vault.reindex()  # written as format 1
    vault.parts.index.cached = None
    index = next(f for f in vault.formats() if f.name == "index")
    assert (index.oldest, index.state) == (1, "older")
    _, steps = vault.migrate(dry_run=True)
    assert steps and _states(vault)["index"] == "older"  # a dry run changes nothing
    _, steps = vault.migrate()
    assert steps == ["index: rebuilt from the session files in the current format"]
    vault.parts.index.cached = None
    assert _states(vault)["index"] == "current" and len(vault.list()) == 1


def test_newer_formats_are_refused_with_a_clear_message(vault: Vault, vault_path: Path) -> None:
    sid = vault.save({"title": "t", "messages": []})
    session_file = vault.parts.ctx.sessions.path / (vault.parts.keys.file_name(sid) + ".sst")
    data = bytearray(session_file.read_bytes())
    data[8] = 2  # the container's version byte
    session_file.write_bytes(bytes(data))
    assert _states(vault)["container"] == "newer"
    with pytest.raises(errors.UnsupportedVersion, match="upgrade sessionseal"):
        vault.migrate()
    with pytest.raises(errors.UnsupportedVersion, match="upgrade sessionseal"):
        vault.load(sid)
    vault.close()
    doc = json.loads((vault_path / "vault.json").read_text())
    (vault_path / "vault.json").write_text(json.dumps({**doc, "version": 2}))
    with pytest.raises(errors.UnsupportedVersion, match="newer sessionseal"):
        Vault.open(vault_path, key_provider=vault.parts.keys.provider)


def test_audit_records_of_a_newer_format_are_refused(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal import _audit
    from sessionseal._audit import _log

    vault.save({"title": "t", "messages": []})
    with monkeypatch.context() as m:
        m.setattr(_log, "FORMAT", _audit.FORMAT + 1)  # where the writer looks it up
        vault.save({"title": "u", "messages": []})  # a newer writer's record, properly MACed
    with pytest.raises(errors.UnsupportedVersion, match=f"audit log has records of format {_audit.FORMAT + 1}"):
        vault.verify_audit()
    assert _states(vault)["audit log"] == "newer"


def test_cli_migrate(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    r = runner.invoke(cli, ["migrate", "--json"])
    assert r.exit_code == 0
    out = json.loads(r.output)
    assert out["steps"] == [] and {f["name"] for f in out["formats"]} >= {"container", "index", "audit log"}
    r = runner.invoke(cli, ["migrate", "--dry-run"])
    assert r.exit_code == 0 and "current" in r.output


def test_a_session_document_of_a_newer_schema_is_refused(vault: Vault) -> None:
    with pytest.raises(errors.InvalidInput, match="newer than this sessionseal reads"):
        vault.save({"schema_version": 2, "messages": []})
