"""``verify``: each kind of damage is found with its code and severity, and ``--repair``
clears exactly the leftovers that lose nothing (docs/reliability.md, "verify")."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import KeychainProvider, Vault, VerifyResult
from sessionseal._keystore import MasterKeys
from sessionseal._state import StateChange
from sessionseal.cli import cli
from sessionseal.errors import IntegrityError
from tests._infra.erasure import delete_cut_short
from tests._infra.legacy import untrack
from tests.memkeyring import MemoryKeyring

DOC = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}


def _codes(result: VerifyResult) -> dict[str, str]:
    return {p.code: p.severity for p in result.problems}


def _session_file(vault: Vault, sid: uuid.UUID) -> Path:
    return vault.path / "sessions" / (vault.parts.keys.file_name(sid) + ".sst")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def filled(vault: Vault) -> tuple[Vault, list[uuid.UUID]]:
    sids = [vault.save({**DOC, "title": f"s{i}"}) for i in range(3)]
    vault.append(sids[0], [{"role": "assistant", "content": "more"}])
    vault.checkpoint(sids[1], "before")
    return vault, sids


def test_a_sound_vault_verifies_with_counts(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, _ = filled
    quick = vault.verify()
    assert quick.ok and quick.problems == [], quick.problems
    assert quick.counts["sessions"] == 3 and quick.counts["checkpoints"] == 1 and quick.counts["keys"] == 3
    assert quick.counts["index_entries"] == 3 and quick.counts["audit_records"] > 0
    full = vault.verify(read_data=True)
    assert full.ok and full.problems == []
    assert full.counts["frames"] == 2 + 4 + 2 + 2  # META BODY [EVENTS META] x3 sessions + the checkpoint's two
    assert full.counts["bytes_read"] > quick.counts["bytes_read"]
    assert any(r["action"] == "verify" for r in vault.audit_records())


def test_a_damaged_body_is_found_only_by_read_data(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, sids = filled
    path = _session_file(vault, sids[2])
    _flip(path, path.stat().st_size - 3)  # in the BODY frame's tag: the summary still reads
    assert vault.verify().ok
    full = vault.verify(read_data=True)
    assert _codes(full) == {"damaged": "error"}
    [p] = full.errors
    assert p.path == f"sessions/{path.name}" and str(sids[2]) in p.message
    assert "verify" not in p.message  # no advice to run what is running


def test_a_damaged_summary_is_found_without_read_data(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, sids = filled
    path = _session_file(vault, sids[2])
    _flip(path, 120)  # in the first META frame
    assert _codes(vault.verify())["damaged"] == "error"


def test_a_foreign_file_in_place_of_a_session_is_damaged(vault: Vault) -> None:
    sid = vault.save(DOC)
    _session_file(vault, sid).write_bytes(b'{"title": "plaintext"}')
    assert _codes(vault.verify()) == {"damaged": "error"}


def test_a_session_copied_over_another_is_misplaced(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, sids = filled
    a, b = _session_file(vault, sids[0]), _session_file(vault, sids[2])
    shutil.copyfile(a, b)
    result = vault.verify()
    assert result.errors[0].code == "misplaced" and result.errors[0].path == f"sessions/{b.name}"


def test_unsafe_entries_are_errors_and_unknown_ones_warnings(vault: Vault, tmp_path: Path) -> None:
    sid = vault.save(DOC)
    sessions = vault.path / "sessions"
    (tmp_path / "victim").write_text("victim")
    os.symlink(tmp_path / "victim", sessions / ("a" * 32 + ".sst"))
    os.mkfifo(sessions / ("b" * 32 + ".sst"))
    os.chmod(_session_file(vault, sid), 0o644)
    note = vault.path / "notes.txt"
    note.write_text("maybe plaintext")
    note.chmod(0o600)
    result = vault.verify()
    unsafe = sorted(p.path for p in result.problems if p.code == "unsafe")
    assert unsafe == sorted(
        [f"sessions/{'a' * 32}.sst", f"sessions/{'b' * 32}.sst", f"sessions/{_session_file(vault, sid).name}"]
    )
    assert any("chmod 600" in p.message for p in result.errors)
    assert _codes(result)["unknown-entry"] == "warning"
    assert (tmp_path / "victim").read_text() == "victim"  # never followed, never written
    # --repair removes none of it: it is not ours to judge.
    repaired = vault.verify(repair=True)
    assert len([p for p in repaired.problems if p.code == "unsafe"]) == 3 and note.exists()


def test_hard_linked_session_file_is_unsafe(vault: Vault, tmp_path: Path) -> None:
    sid = vault.save(DOC)
    os.link(_session_file(vault, sid), tmp_path / "second-name")
    assert _codes(vault.verify())["unsafe"] == "error"


def test_dead_writers_temp_files_are_warnings_removed_by_repair_and_by_open(
    vault: Vault, provider: KeychainProvider
) -> None:
    vault.save(DOC)
    dead = _dead_pid()
    for d in ("sessions", "checkpoints", ""):
        p = vault.path / d / f".tmp-{dead}-00ff"
        p.write_bytes(b"partial")
        p.chmod(0o600)
    live = vault.path / "sessions" / f".tmp-{os.getpid()}-00ff"
    live.write_bytes(b"being written")
    live.chmod(0o600)
    result = vault.verify()
    assert result.ok and {p.code for p in result.problems} == {"temp-file"} and len(result.warnings) == 4
    assert sum("running" in p.message for p in result.warnings) == 1
    after = vault.verify(repair=True)
    assert any("removed 3 temp file" in line for line in after.repaired)
    assert [p.path for p in after.problems] == [f"sessions/{live.name}"]  # a live writer's is left alone
    # Opening sweeps them too, under the vault lock.
    leftover = vault.path / "sessions" / f".tmp-{dead}-11ff"
    leftover.write_bytes(b"partial")
    leftover.chmod(0o600)
    Vault.open(vault.path, key_provider=provider).close()
    assert not leftover.exists() and live.exists()


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(p.stdout)


def test_a_killed_deletes_leftovers_are_orphans_removed_by_repair(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, sids = filled
    sfile, ckpts = _session_file(vault, sids[1]), sorted((vault.path / "checkpoints").iterdir())
    delete_cut_short(vault, sids[1])  # the key goes first; the overwrites fail: the files stay, tombed
    assert sfile.exists() and all(p.exists() for p in ckpts)
    result = vault.verify()
    # The full-text index's files its rewrite replaced were left the same way (retired, with tombs).
    assert result.ok and [p.code for p in result.problems] == ["orphan", "orphan", "fts-retired"]
    after = vault.verify(repair=True)
    assert after.problems == [] and not sfile.exists() and not any(p.exists() for p in ckpts)
    assert vault.parts.keys.state(fresh=True).tombs == set()


def test_files_put_back_after_their_erasure_are_missing_key_and_kept(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    # Only the files an erasure recorded as left to overwrite are ever removed: copies put back
    # after a delete completed (a backup restore) are keyless files nothing proves erased.
    vault, sids = filled
    sfile, ckpts = _session_file(vault, sids[1]), sorted((vault.path / "checkpoints").iterdir())
    saved = {p: p.read_bytes() for p in [sfile, *ckpts]}
    vault.delete(sids[1])
    for p, data in saved.items():
        p.write_bytes(data)
        p.chmod(0o600)
    result = vault.verify()
    assert not result.ok and [(p.severity, p.code) for p in result.problems] == [("error", "missing-key")] * 2
    after = vault.verify(repair=True)
    assert [p.code for p in after.problems] == ["missing-key"] * 2
    assert all(p.read_bytes() == data for p, data in saved.items())


def test_a_rolled_back_key_table_makes_missing_keys_not_orphans(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, _ = filled
    table = vault.path / "keytable.sst"
    old = table.read_bytes()
    new = vault.save(DOC)
    current = table.read_bytes()
    table.write_bytes(old)  # a key table from before the last save (same epoch)
    result = vault.verify()
    missing = [p for p in result.problems if p.code == "missing-key"]
    assert not result.ok and len(missing) == 1 and str(new) in missing[0].message
    after = vault.verify(repair=True)
    assert "missing-key" in [p.code for p in after.problems] and _session_file(vault, new).exists()
    table.write_bytes(current)
    assert vault.load(new).title == DOC["title"]


def test_a_key_without_its_file_and_without_a_mark_is_unused_and_kept_by_repair(vault: Vault) -> None:
    vault.save(DOC)
    ghost = uuid.uuid4()
    vault.parts.keys.session_key(ghost, create=True)  # what a first save killed before its file leaves
    result = vault.verify()
    assert result.ok and _codes(result) == {"unused-key": "warning"} and str(ghost) in result.warnings[0].message
    after = vault.verify(repair=True)
    # Never dropped on inference (issue 20, item 2): the file may come back from a backup.
    assert _codes(after) == {"unused-key": "warning"} and ghost in vault.parts.keys.keytable(fresh=True).session_keys
    vault.delete(ghost)  # erasing it is explicit
    assert vault.verify().problems == []


def test_a_vanished_session_file_is_missing_and_repair_keeps_its_key(vault: Vault) -> None:
    sid = vault.save(DOC)
    path = _session_file(vault, sid)
    kept = path.read_bytes()
    path.unlink()  # a sync tool, an rm, a restore in progress
    (vault.path / "index.sst").unlink()  # the index's evidence gone too: the mark remains
    vault.parts.index.cached = None
    result = vault.verify()
    assert _codes(result)["missing"] == "error" and not result.ok
    [p] = [p for p in result.problems if p.code == "missing"]
    assert p.path == f"sessions/{path.name}" and str(sid) in p.message
    after = vault.verify(repair=True)
    assert _codes(after)["missing"] == "error" and sid in vault.parts.keys.keytable(fresh=True).session_keys
    summaries, problems = vault.list_with_problems()
    assert summaries == [] and len(problems) == 1 and "missing" in problems[0] and str(sid) in problems[0]
    path.write_bytes(kept)
    path.chmod(0o600)
    assert vault.load(sid).title == DOC["title"] and vault.verify().ok  # the index is only stale


def test_a_listing_with_an_old_copy_of_the_table_does_not_call_an_erased_session_missing(
    vault: Vault, provider: KeychainProvider
) -> None:
    sid = vault.save(DOC)
    other = vault.save({**DOC, "title": "stays"})
    assert len(vault.list()) == 2  # this Vault's copy of the table holds both keys and marks
    with Vault.open(vault.path, key_provider=provider) as second:  # another process, as it were
        second.delete(sid)
    summaries, problems = vault.list_with_problems()
    assert [s.id for s in summaries] == [other] and problems == []


def test_a_session_known_only_to_the_index_is_missing_and_the_index_is_kept(vault: Vault) -> None:
    sid = vault.save(DOC)
    # A tracked vault whose mark was lost (a save killed before it anchored its mark): the index
    # entry is the evidence, and --repair keeps the index that holds it.
    vault.parts.keys.commit(StateChange(unmarks={sid.bytes}))
    _session_file(vault, sid).unlink()
    after = vault.verify(repair=True)
    assert _codes(after)["missing"] == "error" and any("kept the index" in line for line in after.repaired)


def test_an_untracked_vault_keeps_the_unused_key_warning_and_the_key(vault: Vault) -> None:
    sid = vault.save(DOC)
    untrack(vault)  # a vault made before issue 20 (no marks: a key without a file is no evidence)
    _session_file(vault, sid).unlink()
    assert _codes(vault.verify()) == {"unused-key": "warning", "index-stale": "warning"}
    after = vault.verify(repair=True)
    assert _codes(after) == {"unused-key": "warning"} and sid in vault.parts.keys.keytable(fresh=True).session_keys


def test_a_torn_append_is_a_warning_cut_by_repair(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, sids = filled
    path = _session_file(vault, sids[0])
    before = vault.load_json(sids[0])
    with path.open("ab") as f:
        f.write(b"\x00\x00\x01\x00\x03" + os.urandom(40))  # a frame prefix and part of a frame
    result = vault.verify(read_data=True)
    assert result.ok and {"torn-append", "index-stale"} <= set(_codes(result))
    after = vault.verify(read_data=True, repair=True)
    assert after.problems == [] and any("cut the torn append" in line for line in after.repaired)
    assert vault.load_json(sids[0]) == before


def test_a_rolled_back_session_is_an_error_and_repair_keeps_the_index(vault: Vault) -> None:
    sid = vault.save(DOC)
    path = _session_file(vault, sid)
    old = path.read_bytes()
    vault.save({**DOC, "id": str(sid), "title": "newer"})  # a new version (generation 2)
    path.write_bytes(old)
    result = vault.verify()
    assert _codes(result)["rollback"] == "error"
    after = vault.verify(repair=True)
    assert _codes(after)["rollback"] == "error" and not any("rebuilt" in line for line in after.repaired)
    assert vault.reindex() == 1 and vault.verify().ok  # accepting it is an explicit step


@pytest.mark.parametrize("index", ["deleted", "rebuilt by a listing", "older"])
def test_the_marks_see_a_rollback_whatever_became_of_the_index(vault: Vault, index: str) -> None:
    sid = vault.save(DOC)
    path, index_path = _session_file(vault, sid), vault.path / "index.sst"
    old, old_index = path.read_bytes(), index_path.read_bytes()
    vault.save({**DOC, "id": str(sid), "title": "newer"})
    path.write_bytes(old)
    if index == "older":
        index_path.write_bytes(old_index)
    else:
        index_path.unlink()
    vault.parts.index.cached = None
    if index == "rebuilt by a listing":
        _, problems = vault.list_with_problems()
        assert len(problems) == 1 and "older than the version 2" in problems[0]
        assert index_path.exists()
    result = vault.verify()
    assert _codes(result)["rollback"] == "error", result.problems
    again = vault.verify(repair=True)
    assert _codes(again)["rollback"] == "error"
    _, problems = vault.list_with_problems()
    assert len(problems) == 1 and "older than the version 2" in problems[0]
    assert vault.reindex() == 1 and vault.verify().problems == []  # accepting it lowers the mark


def test_the_marks_see_a_cut_append_without_the_index(vault: Vault) -> None:
    sid = vault.save(DOC)
    path = _session_file(vault, sid)
    old = path.read_bytes()
    vault.append(sid, [{"role": "assistant", "content": "acknowledged turn"}])
    path.write_bytes(old)
    (vault.path / "index.sst").unlink()
    vault.parts.index.cached = None
    assert _codes(vault.verify())["truncated"] == "error"
    # An append would raise the mark over the lost turns: refused, nothing written.
    with pytest.raises(IntegrityError):
        vault.append(sid, [{"role": "assistant", "content": "x" * 4000}])
    assert path.read_bytes() == old and _codes(vault.verify())["truncated"] == "error"
    vault.save({**DOC, "id": str(sid), "title": "saved anew"})  # a whole new version is the owner's
    assert vault.verify().ok


def test_a_new_version_of_a_missing_session_is_numbered_above_its_mark(vault: Vault) -> None:
    sid = vault.save(DOC)
    vault.save({**DOC, "id": str(sid), "title": "v2"})
    _session_file(vault, sid).unlink()
    vault.save({**DOC, "id": str(sid), "title": "v3"})
    assert vault.verify().problems == [] and vault.load(sid).title == "v3"


def test_a_session_saved_again_after_its_delete_is_no_rollback(vault: Vault) -> None:
    sid = vault.save(DOC)
    vault.save({**DOC, "id": str(sid), "title": "v2"})
    vault.delete(sid)
    vault.save({**DOC, "id": str(sid), "title": "a new session with that id"})
    assert vault.verify().problems == []


def test_an_older_index_is_index_rollback_and_a_listing_rebuilds_it(vault: Vault) -> None:
    sid = vault.save(DOC)
    index_path = vault.path / "index.sst"
    old_index = index_path.read_bytes()
    vault.reindex()  # a rewrite: its generation is anchored
    assert vault.parts.keys.state(fresh=True).index == vault.parts.index.cached.generation  # type: ignore[union-attr]
    index_path.write_bytes(old_index)
    vault.parts.index.cached = None
    assert _codes(vault.verify()) == {"index-rollback": "warning"}
    assert [s.id for s in vault.list()] == [sid]
    assert vault.verify().problems == []
    index_path.unlink()
    vault.parts.index.cached = None
    vault.list()  # rebuilt above the anchored generation: no rollback of its own
    assert vault.verify().problems == []


def test_a_cut_off_append_is_truncated(vault: Vault) -> None:
    sid = vault.save(DOC)
    path = _session_file(vault, sid)
    old = path.read_bytes()
    vault.append(sid, [{"role": "assistant", "content": "acknowledged turn"}])
    path.write_bytes(old)  # same version, the appended group gone
    assert _codes(vault.verify())["truncated"] == "error"


@pytest.mark.parametrize(
    ("damage", "code", "severity"),
    [("remove", "index-missing", "warning"), ("flip", "index-damaged", "error")],
)
def test_index_problems_are_repaired_by_a_rebuild(
    filled: tuple[Vault, list[uuid.UUID]], damage: str, code: str, severity: str
) -> None:
    vault, _ = filled
    index = vault.path / "index.sst"
    if damage == "remove":
        index.unlink()
    else:
        _flip(index, index.stat().st_size - 5)
    vault.parts.index.cached = None
    assert _codes(vault.verify()) == {code: severity}
    after = vault.verify(repair=True)
    assert after.problems == [] and any("rebuilt the index" in line for line in after.repaired)


def test_a_damaged_key_table_stops_the_keyed_checks(vault: Vault) -> None:
    vault.save(DOC)
    table = vault.path / "keytable.sst"
    _flip(table, table.stat().st_size - 5)
    vault.parts.keys.table = None  # as a fresh process: the table is read from disk
    result = vault.verify()
    assert [p.code for p in result.errors] == ["keytable"] and result.counts["sessions"] == 0


def test_a_damaged_config_is_an_error(vault: Vault) -> None:
    vault.set_config({"retention": {"min_age": 60}})
    cfg = vault.path / "config.sst"
    _flip(cfg, cfg.stat().st_size - 5)
    assert _codes(vault.verify()) == {"config": "error"}


def test_audit_tampering_is_an_error_and_a_torn_line_a_repairable_warning(vault: Vault) -> None:
    vault.save(DOC)
    log = vault.path / "audit" / "audit.log"
    with log.open("ab") as f:
        f.write(b'{"v":1,"seq":')
    result = vault.verify()
    assert result.ok and any(p.code.startswith("audit:") and p.severity == "warning" for p in result.problems)
    assert vault.verify(repair=True).problems == []
    lines = log.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"save"', b'"load"')
    log.write_bytes(b"\n".join(lines) + b"\n")
    bad = vault.verify()
    assert not bad.ok and all(p.code.startswith("audit:") for p in bad.errors)


def test_an_interrupted_rotation_is_finished_by_repair(vault: Vault, provider: KeychainProvider) -> None:
    vault.save(DOC)
    held = provider.load(vault.vault_id)
    [epoch] = held.keys
    provider.store(vault.vault_id, MasterKeys({**held.keys, epoch + 1: os.urandom(32)}))
    result = vault.verify()
    assert _codes(result) == {"rotation-unfinished": "warning"}
    after = vault.verify(repair=True)
    assert after.problems == [] and set(provider.reload(vault.vault_id).keys) == {epoch}


def test_checkpoint_damage_and_misplacement(filled: tuple[Vault, list[uuid.UUID]]) -> None:
    vault, _ = filled
    [ckpt] = (vault.path / "checkpoints").iterdir()
    _flip(ckpt, ckpt.stat().st_size - 3)  # BODY tag
    assert vault.verify().ok
    assert _codes(vault.verify(read_data=True)) == {"damaged": "error"}
    _flip(ckpt, ckpt.stat().st_size - 3)
    moved = ckpt.with_name(ckpt.name.replace("-1.ckp", "-2.ckp"))
    ckpt.rename(moved)
    assert _codes(vault.verify()) == {"misplaced": "error"}


def test_cli_exit_codes_and_json(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    sid = runner.invoke(cli, ["save", "-"], input=json.dumps(DOC)).output.strip()
    r = runner.invoke(cli, ["verify"])
    assert r.exit_code == 0 and "vault OK: 1 sessions" in r.output
    report = json.loads(runner.invoke(cli, ["verify", "--read-data", "--json"]).output)
    assert report["ok"] and report["read_data"] and report["counts"]["sessions"] == 1
    with Vault.open(tmp_path / "vault") as v:
        path = _session_file(v, uuid.UUID(sid))
    _flip(path, path.stat().st_size - 3)
    r = runner.invoke(cli, ["verify", "--read-data"])
    assert r.exit_code == 15 and "error: [damaged]" in r.output
    report = json.loads(runner.invoke(cli, ["verify", "--read-data", "--json"]).output)
    assert not report["ok"] and report["problems"][0]["code"] == "damaged"
