"""Importing agent transcripts into the vault (issue 8): sanitized, idempotent, grown files
appended, originals removed only after a verified read-back; the hook never fails the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import Vault, find_transcripts
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SECRET = "ghp_" + "Imp0rt3d" * 4 + "Zz99"
SID = "3f1c2a9e-7b41-4c55-9d0e-2a6b8c4d1e70"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _line(kind: str, n: int, message: dict[str, Any], **extra: Any) -> str:
    record = {
        "type": kind,
        "uuid": f"u{n}",
        "parentUuid": f"u{n - 1}" if n else None,
        "sessionId": SID,
        "timestamp": f"2026-03-14T10:{n:02d}:00.000Z",
        "cwd": "/home/dev/shop",
        "gitBranch": "main",
        "version": "2.1.0",
        "isSidechain": False,
        "userType": "external",
        "message": message,
        **extra,
    }
    return json.dumps(record) + "\n"


def _turn(n: int, text: str) -> str:
    return _line("user", 2 * n, {"role": "user", "content": text}) + _line(
        "assistant",
        2 * n + 1,
        {
            "id": f"msg_{n}",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": f"answer {n}"}],
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
    )


@pytest.fixture
def claude_dir(tmp_path: Path) -> Path:
    project = tmp_path / "claude" / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    (project / f"{SID}.jsonl").write_text(_turn(0, f"deploy with {SECRET}") + _turn(1, "and test it"))
    return tmp_path / "claude" / "projects"


def _file(claude_dir: Path) -> Path:
    return claude_dir / "-home-dev-shop" / f"{SID}.jsonl"


def test_import_is_sanitized_and_idempotent(vault: Vault, claude_dir: Path) -> None:
    paths = find_transcripts(claude=claude_dir)
    assert paths == [_file(claude_dir)]
    [first] = vault.import_transcripts(paths)
    assert (first.action, first.tool, first.source_id, first.messages) == ("new", "claude-code", SID, 4)
    assert sum(first.redactions.values()) >= 1
    stored = vault.load_json(first.session_id)  # type: ignore[arg-type]
    assert SECRET.encode() not in stored
    doc = json.loads(stored)
    assert doc["tags"] == ["claude-code"] and doc["working_directory"] == "/home/dev/shop"
    assert doc["created_at"].startswith("2026-03-14T10:00")  # the transcript's own times
    [again] = vault.import_transcripts(paths)
    assert (again.action, again.session_id) == ("unchanged", first.session_id)
    assert len(vault.list()) == 1


def test_a_grown_transcript_is_appended_and_a_changed_one_updated(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    [first] = vault.import_transcripts([f])
    sid = first.session_id
    generation = vault.list()[0].generation
    with open(f, "a") as out:
        out.write(_turn(2, "one more thing"))
    [grown] = vault.import_transcripts([f])
    assert grown.action == "appended" and grown.messages == 6
    assert vault.list()[0].generation == generation  # appended in place, not rewritten
    texts = [m.content[0].text for m in vault.load(sid).messages]  # type: ignore[arg-type,union-attr]
    assert texts[-2:] == ["one more thing", "answer 2"]
    f.write_text(_turn(0, "a different start"))  # rewritten, shorter
    [changed] = vault.import_transcripts([f])
    assert changed.action == "updated" and len(vault.load(sid).messages) == 2  # type: ignore[arg-type]
    assert [c.reason for c in vault.checkpoints(sid)] == ["manual"]  # type: ignore[arg-type]  # the old version


def test_dry_run_since_and_failures(vault: Vault, claude_dir: Path, tmp_path: Path) -> None:
    f = _file(claude_dir)
    [dry] = vault.import_transcripts([f], dry_run=True)
    assert dry.action == "new" and vault.list() == []
    old = time.time() - 10 * 86400
    os.utime(f, (old, old))
    [skipped] = vault.import_transcripts([f], since=datetime.now(UTC) - timedelta(days=1))
    assert skipped.action == "skipped" and vault.list() == []
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xff not json at all\n")
    outcomes = vault.import_transcripts([garbage, f])
    assert [o.action for o in outcomes] == ["failed", "new"]
    assert outcomes[0].error and "not json" not in outcomes[0].error  # content is never echoed


def test_remove_originals_after_a_verified_read_back(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert o.removed and not f.exists()
    assert len(vault.load(o.session_id).messages) == 4  # type: ignore[arg-type]


def test_a_linked_original_is_not_removed(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    os.link(f, f.with_name("hardlink.keep"))
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert o.action == "new" and not o.removed and f.exists()  # imported, but the file stays
    assert o.error and o.error.startswith("original kept")
    assert len(vault.list()) == 1


def test_cli_import_transcripts(
    memory_keyring: MemoryKeyring, claude_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(claude_dir.parent))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--json"])
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.output)["files"]
    assert row["action"] == "new" and row["tool"] == "claude-code"
    r = runner.invoke(cli, ["import-transcripts", "--claude"])
    assert r.exit_code == 0 and "unchanged" in r.output
    assert runner.invoke(cli, ["import-transcripts"]).exit_code == 2
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--remove-originals"])
    assert r.exit_code == 2 and _file(claude_dir).exists()  # no terminal, no --yes


def _hook(vault_path: Path, payload: bytes, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sessionseal", "--vault", str(vault_path), "hook", "claude-session-end"],
        input=payload,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": SRC, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "payload", [b"", b"garbage \xff", b"[1, 2]", b'{"transcript_path": 7}', b'{"transcript_path": "/nope"}']
)
def test_the_hook_exits_0_on_garbage(tmp_path: Path, payload: bytes) -> None:
    r = _hook(tmp_path / "no-vault", payload, {})
    assert (r.returncode, r.stdout) == (0, b"")


def test_the_hook_imports_the_session(vault_path: Path, claude_dir: Path) -> None:
    Vault.init(vault_path, key_provider="passphrase", passphrase="hook").close()
    payload = json.dumps({"session_id": SID, "transcript_path": str(_file(claude_dir)), "reason": "exit"})
    r = _hook(vault_path, payload.encode(), {"SESSIONSEAL_PASSPHRASE": "hook"})
    assert (r.returncode, r.stdout) == (0, b"")
    with Vault.open(vault_path, passphrase="hook") as v:
        [s] = v.list()
        assert s.tags == ["claude-code"] and s.message_count == 4
