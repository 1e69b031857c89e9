"""Format versions and ``migrate`` (issue 8): every format names its version, a newer one is
refused with a clear message, an older one is brought up to date."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import Vault, _audit, _container, _index, errors
from sessionseal._state import NO_CONFIG, VaultState
from sessionseal.cli import cli
from tests._infra.legacy import untrack
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
        "key table state": "current",  # tracked from init (issue 20)
    }
    containers = next(f for f in vault.formats() if f.name == "container")
    assert containers.items == 4  # key table, index, session, checkpoint (no config yet; no audit anchor: issue 20)
    found, steps = vault.migrate()
    assert steps == [] and len(found) == 7
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
        vault.save({"schema_version": 3, "messages": []})


# -- tracking the anchored state of a vault written before issue 20 ------------------------------


def file_marks(vault_path: Path) -> dict[bytes, tuple[int, int]]:
    """Each session file's (generation, size) as its header and length say, by the id it holds."""
    out = {}
    for f in (vault_path / "sessions").glob("*.sst"):
        data = f.read_bytes()
        header = _container.parse_unverified_header(data)
        out[header.object_id.bytes] = (header.generation, len(data))
    return out


def _state(vault: Vault) -> VaultState:
    return vault.parts.keys.state(fresh=True)


def _untracked(vault: Vault, vault_path: Path) -> tuple[Vault, list[uuid.UUID]]:
    sids = [vault.save({"title": f"s{i}", "messages": [{"role": "user", "content": "hi"}]}) for i in range(3)]
    vault.save({"id": str(sids[0]), "title": "again", "messages": []})  # generation 2
    vault.append(sids[1], [{"role": "assistant", "content": "more"}])
    vault.set_config({"sanitizer": {"literals": ["acme-internal"]}})
    untrack(vault)
    provider = vault.parts.keys.provider
    vault.close()
    v = Vault.open(vault_path, key_provider=provider)
    v.save({"id": str(sids[2]), "title": "after", "messages": []})  # an untracked vault works as before
    return v, sids


def test_an_untracked_vault_works_and_migrate_tracks_it_as_it_is(vault: Vault, vault_path: Path) -> None:
    v, sids = _untracked(vault, vault_path)
    with v:
        assert not _state(v).tracked
        assert _states(v)["key table state"] == "older"
        _, steps = v.migrate(dry_run=True)
        assert len(steps) == 1 and "3 session mark(s)" in steps[0]
        assert not _state(v).tracked  # a dry run changes nothing
        before = list(v.audit_records())
        _, steps = v.migrate()
        assert len(steps) == 1 and steps[0].startswith("key table state: tracked from the vault as it is")
        state = _state(v)
        assert state.tracked and state.tombs == set()
        assert state.marks == file_marks(vault_path) and set(state.marks) == {s.bytes for s in sids}
        assert state.marks[sids[0].bytes][0] == 2
        config = (vault_path / "config.sst").read_bytes()
        assert state.config == (
            _container.parse_unverified_header(config).generation,
            hashlib.sha256(config).hexdigest(),
        )
        assert state.audit is not None and state.audit.seq >= max(r["seq"] for r in before if r.get("seq"))
        record = [r for r in v.audit_records() if r["action"] == "migrate"][-1]
        assert record["detail"]["marks"] == 3 and record["detail"]["key table state"] == 0
        # From its own record on, the chain goes on under an audit key of the state's (format 3),
        # and the keychain keeps the head the key table records.
        assert record["v"] == _audit.FORMAT and record["k"] in _state(v).audit_keys
        head = v.head()
        assert not head.rolled_back and head.key_store == head.recorded[0] > 0
        assert v.verify().ok and v.verify_audit().ok
        assert [s.title for s in v.list()] and v.load(sids[0]).title == "again"
        assert _states(v)["key table state"] == "current"
        provider = v.parts.keys.provider
    with Vault.open(vault_path, key_provider=provider) as again:  # read back from the file
        assert _state(again).tracked and _state(again).marks == file_marks(vault_path)


def test_migrate_twice_is_a_no_op(vault: Vault, vault_path: Path) -> None:
    v, _ = _untracked(vault, vault_path)
    with v:
        v.migrate()
        state, generation = _state(v), v.parts.keys.keytable(fresh=True).generation
        marks, config = dict(state.marks), state.config
        _, steps = v.migrate()
        assert steps == [] and _states(v)["key table state"] == "current"
        table = v.parts.keys.keytable(fresh=True)
        assert table.generation == generation  # not rewritten
        assert table.state.marks == marks and table.state.config == config


def test_a_new_vault_is_tracked_and_migrate_leaves_it(vault: Vault) -> None:
    vault.save({"title": "t", "messages": []})
    generation = vault.parts.keys.keytable(fresh=True).generation
    assert _state(vault).tracked and _state(vault).config == NO_CONFIG
    assert vault.migrate()[1] == [] and vault.parts.keys.keytable(fresh=True).generation == generation


def test_migrate_marks_what_is_committed_and_leaves_keyless_files(vault: Vault, vault_path: Path) -> None:
    kept = vault.save({"title": "kept", "messages": [{"role": "user", "content": "hi"}]})
    keyless = vault.save({"title": "keyless", "messages": []})
    vault.append(kept, [{"role": "user", "content": "more"}])
    name = vault.parts.keys.file_name(kept) + ".sst"
    committed = (vault_path / "sessions" / name).stat().st_size
    with (vault_path / "sessions" / name).open("ab") as f:
        f.write(b"\x00\x00\x01\x00\x03torn")  # an append killed midway: not committed
    keyless_file = vault_path / "sessions" / (vault.parts.keys.file_name(keyless) + ".sst")
    untrack(vault, drop_key=keyless)
    vault.parts.keys.table = None
    _, steps = vault.migrate()
    state = _state(vault)
    assert state.marks == {kept.bytes: (1, committed)}
    assert "1 keyless" in steps[0] and state.tombs == set()
    assert keyless_file.exists()  # nothing is removed: a keyless file is not proven erased


def test_migrate_refuses_an_audit_anchor_that_fails_its_check(vault: Vault, vault_path: Path) -> None:
    vault.save({"title": "t", "messages": []})
    untrack(vault)
    vault.save({"title": "u", "messages": []})
    anchor = vault_path / "audit" / "anchor.sst"
    data = bytearray(anchor.read_bytes())
    data[-1] ^= 1
    anchor.write_bytes(bytes(data))
    vault.parts.keys.table = None
    with pytest.raises(errors.IntegrityError):  # (already by the 'open' record, which appends after the anchor)
        vault.migrate()
    assert not _state(vault).tracked  # nothing anchored from what does not authenticate


def test_cli_migrate_reports_the_tracking(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(path))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    with Vault.open(path) as v:
        v.save({"title": "t", "messages": []})
        untrack(v)
    r = runner.invoke(cli, ["migrate", "--dry-run", "--json"])
    assert r.exit_code == 0
    out = json.loads(r.output)
    row = next(f for f in out["formats"] if f["name"] == "key table state")
    assert (row["oldest"], row["current"], row["state"]) == (0, 1, "older")
    assert out["steps"] and out["steps"][0].startswith("key table state:")
    r = runner.invoke(cli, ["migrate"])
    assert r.exit_code == 0 and "migrated key table state: tracked from the vault as it is" in r.output
    r = runner.invoke(cli, ["migrate", "--json"])
    assert json.loads(r.output)["steps"] == []
