"""``sessionseal doctor`` (issue 22, Capture): each misconfiguration that loses sessions or leaves
them in plaintext is reported, with its status, a hint, and the exit status scripts read.
(The OS keychain's checks are in tests/integration/test_doctor_keychain.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionseal import Vault
from tests._infra.forkcli import sessionseal as forked
from tests.unit.test_hooks_install import PASSPHRASE, SID, Homes, turns


@pytest.fixture
def homes(tmp_path: Path) -> Homes:
    h = Homes(tmp_path)
    h.make_vault()
    return h


def doctor(homes: Homes, *args: str, vault: bool = True) -> tuple[int, dict[str, Any]]:
    r = homes.run("doctor", "--json", *args, vault=vault)
    assert r.err == "", r.err
    return r.code, json.loads(r.out)


def by_name(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in out["checks"]}


def test_all_good_exits_0(homes: Homes) -> None:
    assert homes.run("hooks", "install").code == 0
    code, out = doctor(homes)
    checks = by_name(out)
    assert (code, out["ok"], out["errors"]) == (0, True, 0), out
    assert checks["keychain"]["status"] == "ok" and "passphrase vault" in checks["keychain"]["message"]
    assert checks["vault"]["status"] == "ok"
    assert {checks[f"hooks:{t}"]["status"] for t in ("claude", "codex", "gemini")} == {"ok"}
    assert checks["claude-cleanup"]["status"] == "ok"
    assert {checks[f"mcp:{t}"]["status"] for t in ("claude", "codex", "gemini")} == {"ok"}
    assert "not registered (optional)" in checks["mcp:codex"]["message"]
    # The human form: one line per check.
    r = homes.run("doctor")
    assert r.code == 0 and len(r.out.splitlines()) == len(out["checks"])


def test_no_claude_hook_while_the_sweep_deletes_transcripts_is_an_error(homes: Homes) -> None:
    homes.settings["claude"].write_text('{"cleanupPeriodDays": 14}')
    code, out = doctor(homes)
    checks = by_name(out)
    assert code == 1 and not out["ok"]
    assert checks["claude-cleanup"]["status"] == "error" and "14 day(s)" in checks["claude-cleanup"]["message"]
    assert checks["claude-cleanup"]["hint"] == "sessionseal hooks install --claude"
    assert checks["hooks:claude"]["status"] == "warn"
    assert checks["hooks:codex"]["hint"] == "sessionseal hooks install --codex"
    # The default sweep (30 days) counts too.
    homes.settings["claude"].unlink()
    assert "30 day(s)" in by_name(doctor(homes)[1])["claude-cleanup"]["message"]


def test_cleanup_period_0_is_an_error_even_with_the_hooks(homes: Homes) -> None:
    assert homes.run("hooks", "install").code == 0
    doc = json.loads(homes.settings["claude"].read_text())
    homes.settings["claude"].write_text(json.dumps({**doc, "cleanupPeriodDays": 0}))
    code, out = doctor(homes)
    check = by_name(out)["claude-cleanup"]
    assert code == 1 and check["status"] == "error" and "writes no transcripts" in check["message"]


def _files(vault: Path) -> dict[str, bytes]:
    """What a read-only command leaves as it was: every file but the audit log, the key table
    (the audit log's head is anchored in its state frames) and the lock files (holders' pids)."""
    return {
        str(p.relative_to(vault)): p.read_bytes()
        for p in vault.rglob("*")
        if p.is_file() and not {"audit", "locks"} & set(p.relative_to(vault).parts) and p.name != "keytable.sst"
    }


def test_transcripts_already_in_the_vault_and_still_on_disk_are_counted(homes: Homes) -> None:
    assert homes.run("hooks", "install").code == 0
    project = homes.claude / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    (project / f"{SID}.jsonl").write_text(turns(0, 2))
    other = project / "8d1e2f3a-0b4c-4d5e-9f6a-7b8c9d0e1f2a.jsonl"
    other.write_text(turns(0, 1).replace(SID, other.stem))
    code, out = doctor(homes)
    assert by_name(out)["plaintext:claude"]["status"] == "ok"  # nothing imported yet
    with Vault.open(homes.vault, passphrase=PASSPHRASE) as v:
        assert [o.action for o in v.import_transcripts([project / f"{SID}.jsonl", other])] == ["new", "new"]
    with other.open("a") as f:  # grown since: not all of it is in the vault
        f.write(turns(1, 1).replace(SID, other.stem))
    vault_before = _files(homes.vault)
    code, out = doctor(homes)
    check = by_name(out)["plaintext:claude"]
    assert (code, check["status"]) == (0, "warn")  # warnings alone exit 0
    assert check["message"].startswith("1 Claude Code transcript(s)")
    assert check["hint"] == "sessionseal import-transcripts --claude --remove-originals"
    # Read only: the vault is as it was (its audit log says it was opened, as for every command).
    assert _files(homes.vault) == vault_before


def test_a_passphrase_vault_without_its_passphrase_is_not_opened_and_nothing_prompts(homes: Homes) -> None:
    assert homes.run("hooks", "install").code == 0
    r = homes.run("--vault", str(homes.vault), "doctor", "--json", vault=False)
    out = json.loads(r.out)
    keychain = by_name(out)["keychain"]
    assert (r.code, keychain["status"]) == (0, "warn")
    assert "passphrase vault" in keychain["message"] and "--passphrase-file" in keychain["hint"]


def test_a_passphrase_vault_is_opened_with_its_passphrase_from_the_environment(homes: Homes) -> None:
    # The real command (forked as `python -m sessionseal` runs), which takes the variable out
    # of its environment at start: doctor must still find it there.
    r = forked("--vault", str(homes.vault), "doctor", "--json", env={**homes.env, "SESSIONSEAL_PASSPHRASE": PASSPHRASE})
    checks = by_name(json.loads(r.out))
    assert checks["vault"]["status"] == "ok", checks["vault"]
    assert PASSPHRASE not in r.out + r.err


def test_no_vault_and_a_broken_settings_file_are_errors(homes: Homes) -> None:
    homes.settings["codex"].write_text("{not json")
    r = homes.run("--vault", str(homes.root / "nowhere"), "doctor", "--json", vault=False)
    out = json.loads(r.out)
    checks = by_name(out)
    assert r.code == 1
    assert checks["vault"]["status"] == "error" and "sessionseal init" in checks["vault"]["hint"]
    assert (
        checks["hooks:codex"]["status"] == "error" and str(homes.settings["codex"]) in checks["hooks:codex"]["message"]
    )
    # Agents that are not on this machine are not checked.
    homes.gemini.rmdir()
    assert "hooks:gemini" not in by_name(json.loads(homes.run("doctor", "--json").out))


def test_gemini_sessions_already_in_the_vault_and_still_on_disk_are_counted(homes: Homes) -> None:
    assert homes.run("hooks", "install").code == 0
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "gemini" / "tmp" / "webshop" / "chats"
    chats = homes.gemini / "tmp" / "webshop" / "chats"
    chats.mkdir(parents=True)
    [fixture] = fixtures.glob("session-*.json")
    (chats / fixture.name).write_bytes(fixture.read_bytes())
    assert by_name(doctor(homes)[1])["plaintext:gemini"]["status"] == "ok"  # nothing imported yet
    with Vault.open(homes.vault, passphrase=PASSPHRASE) as v:
        assert [o.action for o in v.import_transcripts([chats / fixture.name])] == ["new"]
    check = by_name(doctor(homes)[1])["plaintext:gemini"]
    assert check["status"] == "warn" and check["message"].startswith("1 Gemini CLI transcript(s)")
    assert check["hint"] == "sessionseal import-transcripts --gemini --remove-originals"


def test_a_failed_automatic_push_is_a_warning_with_its_exit_class_and_the_command(homes: Homes) -> None:
    # The background push runs detached and prints nothing: doctor is where a failure shows.
    with Vault.open(homes.vault, passphrase=PASSPHRASE) as v:
        remote = v.remotes.add("cloud", "s3://bucket/auto", check=False)
    failed = {"at": "2026-12-07T03:00:00+00:00", "outcome": "error", "error": "RemoteError", "exit_code": 19}
    outcome = homes.vault / "autopush.json"
    outcome.touch(mode=0o600)  # the vault's own files are owner-only, or not read
    outcome.write_text(json.dumps({"v": 1, "last": failed, "remotes": {remote.device.hex: failed}}))
    check = by_name(doctor(homes)[1])["auto-push:cloud"]
    assert check["status"] == "warn"  # a warning: sessions are not being lost
    assert "RemoteError" in check["message"] and "exit 19" in check["message"]
    assert check["hint"] == "run 'sessionseal sync cloud --push' to see why"
    ok = {"at": "2026-12-07T03:01:00+00:00", "outcome": "ok", "remotes": 1}
    outcome.write_text(json.dumps({"v": 1, "last": ok, "remotes": {remote.device.hex: ok}}))
    assert by_name(doctor(homes)[1])["auto-push:cloud"]["status"] == "ok"
