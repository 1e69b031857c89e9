"""The config is bound to the vault's anchored state (issue 20, item 6; docs/reliability.md,
"The config").

``set_config`` records ``(generation, sha256)`` of ``config.sst`` in the key table before it
returns.  A file missing, older, or other than the recorded one (or there where the vault
recorded none) refuses what *uses* the config -- saves, appends, imports, sanitized edits, the
cleanup by the config's policy, the automatic cleanup -- with ``ConfigNotRecorded`` (exit 17)
and changes nothing; reads go on; ``verify`` reports ``config``; ``config accept`` records the
file as it is.  The recorded generation never falls, so a config once withdrawn stays refused.
A vault made before the state existed (the fixture vault) is not checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault
from sessionseal._config import parse_config, write_config
from sessionseal._state import NO_CONFIG, StateChange, VaultState
from sessionseal.cli import cli
from sessionseal.errors import ConfigNotRecorded, IntegrityError, InvalidInput
from tests._infra.rollback import write_like_a_restore
from tests.memkeyring import MemoryKeyring
from tests.unit.conftest import _without_state as without_state_frames
from tests.unit.test_fixtures import ALL as FIXTURE_VAULTS
from tests.unit.test_fixtures import _copy as copy_fixture

LITERAL = "Quillfeather-5521-Orchard"
WITHDRAWN = {"keep_last": 0, "min_age": 0, "auto_interval": "1h"}  # would remove every session
CURRENT = {"keep_last": 1000, "min_age": 0, "auto_interval": "1h"}  # removes nothing


def _doc(title: str, text: str = "a session", **extra: Any) -> dict[str, Any]:
    return {"title": title, "status": "completed", "messages": [{"role": "user", "content": text}], **extra}


def _recorded(path: Path, provider: KeychainProvider) -> tuple[int, str] | None:
    """The config the key table on disk records, read by a second opener."""
    with Vault.open(path, key_provider=provider, auto_cleanup=False) as v:
        return v.parts.keys.state(fresh=True).config


def _stored(path: Path) -> dict[str, bytes]:
    """Every file but the audit log and the lock files (a lock's holder writes its pid there),
    and the key table without its state frames: a refusal is audited, and the audit log's head
    is anchored in the key table with every record (issue 20).  What the state records besides
    that head is compared by ``_anchored`` instead."""
    skip = ("audit", "locks")
    return {
        str(p.relative_to(path)): without_state_frames(p.read_bytes()) if p.name == "keytable.sst" else p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.relative_to(path).parts[0] not in skip
    }


def _anchored(v: Vault) -> tuple[Any, ...]:
    """What the key table on disk records of the vault's contents: all of its state but the
    audit log's head (and the keychain head's bookkeeping), which a refusal's record moves."""
    state = v.parts.keys.state(fresh=True)
    return (state.tracked, dict(state.marks), set(state.tombs), state.config, dict(state.audit_keys), state.index)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def opened(vault_path: Path, provider: KeychainProvider) -> Callable[..., Vault]:
    def open_(*, auto_cleanup: bool = False) -> Vault:
        return Vault.open(vault_path, key_provider=provider, auto_cleanup=auto_cleanup)

    return open_


@pytest.fixture
def configured(vault: Vault, vault_path: Path) -> dict[str, Any]:
    """A vault with a session and two configs: v1 (the withdrawn policy) and v2 (in force)."""
    vault.set_config({"sanitizer": {"literals": [LITERAL]}, "retention": WITHDRAWN})
    v1 = (vault_path / "config.sst").read_bytes()
    vault.set_config({"sanitizer": {"literals": [LITERAL]}, "retention": CURRENT})
    sid = vault.save(_doc("kept", "the vault holds a session"))
    return {"v1": v1, "v2": (vault_path / "config.sst").read_bytes(), "sid": sid}


# -- recording -------------------------------------------------------------------------------


def test_a_new_vault_records_that_it_has_no_config(vault: Vault, vault_path: Path, provider: KeychainProvider) -> None:
    assert _recorded(vault_path, provider) == NO_CONFIG
    vault.save(_doc("t"))
    assert vault.verify().ok


def test_set_config_records_the_file_before_it_returns(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    vault.set_config({"sanitizer": {"literals": [LITERAL]}})
    # A second opener, while the first is still open (nothing left for its close to commit).
    assert _recorded(vault_path, provider) == (1, _sha(vault_path / "config.sst"))
    vault.set_config({"retention": CURRENT})
    assert _recorded(vault_path, provider) == (2, _sha(vault_path / "config.sst"))


def test_the_recorded_generation_never_falls() -> None:
    state = VaultState(tracked=True, config=(3, "a" * 64))
    state.apply(StateChange(config=(2, "b" * 64)))  # a late commit of an older record
    assert state.config == (3, "a" * 64)
    state.apply(StateChange(config=(3, "")))  # accepted as it is: same generation, no file
    assert state.config == (3, "")
    change = StateChange(config=(5, "c" * 64))
    change.update(StateChange(config=(4, "d" * 64)))
    assert change.config == (5, "c" * 64)


# -- what a config not recorded blocks, and what it does not ----------------------------------

WRITES: dict[str, Callable[[Vault, uuid.UUID], Any]] = {
    "save": lambda v, sid: v.save(_doc("new", f"this holds {LITERAL}")),
    "append": lambda v, sid: v.append(sid, [{"role": "user", "content": f"more {LITERAL}"}]),
    "import": lambda v, sid: v.import_sessions(orjson.dumps(_doc("imported", LITERAL, id=str(uuid.uuid4())))),
    "rename": lambda v, sid: v.rename(sid, f"renamed {LITERAL}"),
    "checkpoint": lambda v, sid: v.checkpoint(sid, "a checkpoint"),
    "cleanup-by-the-config": lambda v, sid: v.cleanup(),
}


@pytest.mark.parametrize("damage", ["deleted", "older", "unrecorded"])
@pytest.mark.parametrize("write", list(WRITES))
def test_a_config_not_recorded_refuses_writes_and_changes_nothing(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, damage: str, write: str
) -> None:
    config = vault_path / "config.sst"
    if damage == "deleted":
        config.unlink()
    elif damage == "older":
        write_like_a_restore(config, configured["v1"])
    else:  # the vault recorded "no config" (accepted), and a copy is put back
        config.unlink()
        with opened() as v:
            v.accept_config()
        write_like_a_restore(config, configured["v2"])
    before = _stored(vault_path)
    with opened() as v:
        anchored = _anchored(v)
        with pytest.raises(ConfigNotRecorded) as caught:
            WRITES[write](v, configured["sid"])
        assert _anchored(v) == anchored
    message = str(caught.value)
    assert "\n" not in message and str(config) in message and "config accept" in message
    assert LITERAL not in message
    assert caught.value.exit_code == 17 and isinstance(caught.value, IntegrityError)
    assert _stored(vault_path) == before


def test_reads_go_on_and_verify_reports_config(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path
) -> None:
    (vault_path / "config.sst").unlink()
    with opened() as v:
        sid = configured["sid"]
        assert v.load(sid).title == "kept"
        assert [s.id for s in v.list()] == [sid]
        assert v.search("holds")[0].id == str(sid)
        assert v.checkpoints(sid) == []
        assert v.stats().sessions == 1
        assert v.config().sanitizer.literals == []  # shown as it is: every default
        for repair in (False, True):
            result = v.verify(repair=repair)
            assert not result.ok
            assert [(p.code, p.path) for p in result.errors] == [("config", "config.sst")]


def test_an_older_config_does_not_run_its_withdrawn_policy_at_open(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path
) -> None:
    write_like_a_restore(vault_path / "config.sst", configured["v1"])
    due = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    write_like_a_restore(vault_path / "autoclean.json", json.dumps({"next_run": due}).encode())
    with opened(auto_cleanup=True) as v:
        assert v.last_auto_cleanup is None  # refused, and the open went on
        assert v.load(configured["sid"]).title == "kept"
        failed = [r for r in v.audit_records() if r["action"] == "cleanup"]
        assert failed[-1]["outcome"] == "error" and failed[-1]["error"] == "ConfigNotRecorded"


# -- accepting ------------------------------------------------------------------------------


def test_accepting_a_missing_config_records_that_there_is_none(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, provider: KeychainProvider
) -> None:
    (vault_path / "config.sst").unlink()
    with opened() as v:
        got = v.accept_config()
        assert (got.was, got.config, got.generation) == ("missing", False, 2)
        sid = v.save(_doc("after", f"holds {LITERAL}"))  # what the user accepted: no literals
        assert LITERAL.encode() in v.load_json(sid)
        assert v.verify().ok
        (record,) = [r for r in v.audit_records() if r["action"] == "config.accept"]
        assert record["outcome"] == "ok"
        assert record["detail"] == {"was": "missing", "config": False, "generation": 2}
    assert _recorded(vault_path, provider) == (2, "")


def test_accepting_an_older_config_makes_it_the_config(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, provider: KeychainProvider
) -> None:
    write_like_a_restore(vault_path / "config.sst", configured["v1"])
    with opened() as v:
        assert v.config().retention.keep_last == 0  # checked before it is accepted
        got = v.accept_config()
        assert (got.was, got.config, got.generation) == ("older", True, 2)
        sid = v.save(_doc("after", f"holds {LITERAL}"))
        assert LITERAL.encode() not in v.load_json(sid)
        assert v.verify().ok
        again = v.accept_config()  # nothing wrong any more: a no-op, said so
        assert again.was is None
    assert _recorded(vault_path, provider) == (2, hashlib.sha256(configured["v1"]).hexdigest())


def test_a_withdrawn_config_stays_refused_after_an_accept(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path
) -> None:
    config = vault_path / "config.sst"
    write_like_a_restore(config, configured["v1"])  # generation 1, put back over 2
    with opened() as v:
        v.accept_config()
        v.set_config({"sanitizer": {"literals": [LITERAL, "another"]}})  # above 2: generation 3
        v3 = config.read_bytes()
    for withdrawn, why in ((configured["v2"], "older"), (configured["v1"], "older")):
        write_like_a_restore(config, withdrawn)
        with opened() as v, pytest.raises(ConfigNotRecorded, match=why):
            v.save(_doc("new"))
    write_like_a_restore(config, v3)
    with opened() as v:
        v.save(_doc("new"))


def test_set_config_replaces_a_config_not_recorded(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path
) -> None:
    (vault_path / "config.sst").unlink()
    with opened() as v:
        v.set_config({"sanitizer": {"literals": [LITERAL]}})  # the user's decision, recorded
        sid = v.save(_doc("new", f"holds {LITERAL}"))
        assert LITERAL.encode() not in v.load_json(sid)
        assert v.verify().ok
    write_like_a_restore(vault_path / "config.sst", configured["v2"])  # generation 2, below the new one (3)
    with opened() as v, pytest.raises(ConfigNotRecorded, match="older"):
        v.save(_doc("new"))


def test_a_damaged_config_is_not_accepted(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path
) -> None:
    config = vault_path / "config.sst"
    write_like_a_restore(config, configured["v2"][:-1])
    with opened() as v:
        with pytest.raises(IntegrityError) as refused:
            v.save(_doc("new"))
        assert type(refused.value) is IntegrityError  # damage (exit 4), before any comparison
        with pytest.raises(IntegrityError) as caught:
            v.accept_config()
        assert type(caught.value) is IntegrityError
        config.unlink()  # what the error says to do: remove it, then accept that there is none
        assert v.accept_config().was == "missing"


def test_a_set_config_killed_before_its_record_is_taken_and_recorded(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, provider: KeychainProvider
) -> None:
    # What a set_config killed between its rename and its record leaves: a newer file that
    # authenticates (only the key's holder can write one), the record still at generation 2.
    with opened() as v:
        key = v.parts.settings.config_key()
        write_config(v.parts.ctx.root, v.vault_id, key, parse_config({"sanitizer": {"literals": ["x"]}}), 3)
        assert v.parts.keys.state(fresh=True).config == (2, hashlib.sha256(configured["v2"]).hexdigest())
        assert v.verify().ok  # taken as it is; the record of the verify records it
    assert _recorded(vault_path, provider) == (3, _sha(vault_path / "config.sst"))
    with opened() as v:
        v.save(_doc("new"))
    write_like_a_restore(vault_path / "config.sst", configured["v2"])  # and the previous one is older from then on
    with opened() as v, pytest.raises(ConfigNotRecorded, match="older"):
        v.save(_doc("new"))


def test_a_config_being_set_is_never_taken_for_a_rollback(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    """The record is read before the file, and a file is written before it is recorded: a
    reader that runs while another opener sets the config sees the recorded file, or a newer
    one, never an "older" one (a property: each interleaving the run happens to hit is checked)."""
    done = threading.Event()
    refused: list[BaseException] = []
    reads = 0

    def read_while_set() -> None:
        nonlocal reads
        with Vault.open(vault_path, key_provider=provider, auto_cleanup=False) as other:
            while not done.is_set() or reads == 0:
                try:
                    other.parts.settings.read()  # what each save's sanitizer is built from
                except BaseException as exc:  # reported below, with the others
                    refused.append(exc)
                reads += 1

    reader = threading.Thread(target=read_while_set)
    reader.start()
    try:
        for i in range(20):
            vault.set_config({"sanitizer": {"literals": [f"{LITERAL}-{i}"]}})
    finally:
        done.set()
        reader.join()
    assert refused == [], f"{len(refused)} of {reads} reads refused: {refused[0]}"
    assert vault.verify().ok


def _read_as_replaced(
    opened: Callable[..., Vault], monkeypatch: pytest.MonkeyPatch, name: str, replacing: Callable[..., Any]
) -> None:
    """Read the config while ``os.<name>`` is *replacing* (which puts v2 in place as it is
    looked at): the read must give v2, the config the key table records."""
    with opened() as v:
        v.parts.settings.read()  # the open's own record reads the audit settings first
        monkeypatch.setattr(os, name, replacing)
        try:
            assert v.parts.settings.read().sanitizer.literals == [LITERAL]
        finally:
            monkeypatch.undo()


def test_a_config_replaced_as_it_is_opened_is_read_anew(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader racing set_config: the file it opened is renamed over (0 links) before its
    fstat.  That is the file's next version, not a hard link to refuse (exit 6)."""
    real_open = os.open
    replaced: list[str] = []

    def open_then_replace(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if path == "config.sst" and not replaced:
            replaced.append(path)
            write_like_a_restore(vault_path / "config.sst", configured["v2"])  # what set_config's rename does
        return fd

    _read_as_replaced(opened, monkeypatch, "open", open_then_replace)
    assert replaced == ["config.sst"]


def test_a_config_replaced_as_it_is_looked_at_is_read_anew(
    configured: dict[str, Any], opened: Callable[..., Vault], vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race one step earlier: the look (``lstat``) before the open resolves the name
    to the old file, which set_config's rename unlinks before its attributes are read (0 links;
    seen in test_a_config_being_set_is_never_taken_for_a_rollback).  Not a hard link either."""
    real_stat = os.stat
    replaced: list[str] = []

    def stat_as_replaced(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if path != "config.sst" or replaced:
            return real_stat(path, *args, **kwargs)
        replaced.append(path)
        old = os.open(vault_path / "config.sst", os.O_RDONLY)
        try:
            write_like_a_restore(vault_path / "config.sst", configured["v2"])  # what set_config's rename does
            return os.fstat(old)  # the old file's attributes: renamed over, 0 links
        finally:
            os.close(old)

    _read_as_replaced(opened, monkeypatch, "stat", stat_as_replaced)
    assert replaced == ["config.sst"]


def test_the_audit_logs_own_retention_removes_nothing_on_a_config_not_recorded(
    vault: Vault, vault_path: Path, opened: Callable[..., Vault]
) -> None:
    vault.set_config({"audit": {"rotate_bytes": 65536, "keep_files": 1}})
    v1 = (vault_path / "config.sst").read_bytes()
    vault.set_config({"audit": {"rotate_bytes": 65536, "keep_files": 5}})
    vault.close()
    with opened() as v:
        assert v.parts.settings.audit_settings() == (65536, 5, False)
    write_like_a_restore(vault_path / "config.sst", v1)
    with opened() as v:
        assert v.parts.settings.audit_settings() == (65536, 0, False)  # 0: keep every file


# -- vaults made before the state existed ------------------------------------------------------


@pytest.fixture
def legacy(tmp_path: Path) -> tuple[Path, str]:
    fixture = FIXTURE_VAULTS[0]
    return copy_fixture(fixture, tmp_path), json.loads((fixture / "expected.json").read_text())["passphrase"]


def test_an_untracked_vault_behaves_as_before(legacy: tuple[Path, str]) -> None:
    path, passphrase = legacy
    (path / "config.sst").unlink()
    with Vault.open(path, passphrase=passphrase, auto_cleanup=False) as v:
        assert not v.parts.keys.state().tracked
        v.save(_doc("new"))
        assert all(p.code != "config" for p in v.verify().problems)
        with pytest.raises(InvalidInput, match="migrate"):
            v.accept_config()


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "cli-vault"))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_the_cli_refuses_with_exit_17_and_accepts(run: Callable[..., Result], tmp_path: Path) -> None:
    assert run("init").exit_code == 0
    assert run("config", "set", input=json.dumps({"sanitizer": {"literals": [LITERAL]}})).exit_code == 0
    shutil.move(tmp_path / "cli-vault" / "config.sst", tmp_path / "aside.sst")
    saved = run("save", input=json.dumps(_doc("t", LITERAL)))
    assert saved.exit_code == 17, saved.output
    assert saved.stderr.startswith("sessionseal: error: ") and saved.stderr.count("\n") == 1
    assert "config accept" in saved.stderr and LITERAL not in saved.stderr
    checked = run("verify", "--json")
    assert checked.exit_code == 15 and "config" in [p["code"] for p in json.loads(checked.stdout)["problems"]]
    accepted = run("config", "accept", "--json")
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.stdout) == {"accepted": True, "was": "missing", "config": False, "generation": 1}
    assert run("verify").exit_code == 0
    plain = run("config", "accept")
    assert plain.exit_code == 0 and "it was the recorded config already" in plain.stderr
