"""Importing agent transcripts into the vault (issue 8): sanitized, idempotent, grown files
appended, originals removed only after a verified read-back; the hook never fails the agent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner

from sessionseal import Vault, _writers, errors, find_transcripts
from sessionseal._vault._importer import TranscriptImporter
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring
from tests.unit.test_transcripts import CODEX_ZST, PARSER

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


def _quiet(*files: Path, seconds: float = 3600) -> None:
    """Set a file's time *seconds* in the past: no agent has written it since (no sleeping)."""
    then = time.time() - seconds
    for f in files:
        os.utime(f, (then, then))


def test_remove_originals_after_a_verified_read_back(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    _quiet(f)  # complete, quiet, and open nowhere: removed
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert o.removed and not f.exists() and o.kept is None
    assert len(vault.load(o.session_id).messages) == 4  # type: ignore[arg-type]


# -- what --remove-originals keeps (issue 18, item 4) -------------------------------------------


def test_a_partial_last_line_is_not_imported_and_its_file_is_kept(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    whole = _turn(2, "the agent is still writing this")
    head, tail = whole[:50], whole[50:]
    with open(f, "a") as out:
        out.write(head)  # the agent's last write so far: no newline yet
    before = f.read_bytes()
    _quiet(f)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.messages, o.removed, o.kept) == ("new", 4, False, "incomplete")
    assert f.read_bytes() == before  # every byte still there, the torn line included
    assert o.error and o.error.startswith("original kept")
    [again] = vault.import_transcripts([f], remove_originals=True)  # unchanged: still kept
    assert (again.action, again.removed, again.kept) == ("unchanged", False, "incomplete")
    with open(f, "a") as out:
        out.write(tail)  # the agent finished the line (and the next one)
    _quiet(f)
    [done] = vault.import_transcripts([f], remove_originals=True)
    assert (done.action, done.removed) == ("appended", True) and not f.exists()
    texts = [m.content[0].text for m in vault.load(done.session_id).messages]  # type: ignore[arg-type,union-attr]
    assert texts[-2:] == ["the agent is still writing this", "answer 2"]


def test_a_file_that_grows_between_import_and_removal_is_kept(
    vault: Vault, claude_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = _file(claude_dir)
    _quiet(f)
    store = TranscriptImporter.store

    def agent_writes_meanwhile(self: TranscriptImporter, *args: Any, **kwargs: Any) -> Any:
        counts = store(self, *args, **kwargs)  # stored for real; then the agent goes on
        with open(f, "a") as out:
            out.write(_turn(2, "written while it was imported"))
        os.utime(f, (time.time() - 3600,) * 2)  # even with an old time: it is not what was read
        return counts

    monkeypatch.setattr(TranscriptImporter, "store", agent_writes_meanwhile)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.messages, o.removed, o.kept) == ("new", 4, False, "changed")
    monkeypatch.undo()
    _quiet(f)
    [rest] = vault.import_transcripts([f], remove_originals=True)  # the next run takes the rest
    assert (rest.action, rest.messages, rest.removed) == ("appended", 6, True) and not f.exists()


def test_a_recently_modified_file_is_kept(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    _quiet(f, seconds=30)  # written 30 s ago: within the default quiet period (600 s)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("new", False, "recent") and f.exists()
    os.utime(f, (time.time() + 3600,) * 2)  # a time in the future is not quiet either
    [o] = vault.import_transcripts([f], remove_originals=True, quiet_period=10)
    assert (o.removed, o.kept) == (False, "recent")
    _quiet(f, seconds=30)
    [o] = vault.import_transcripts([f], remove_originals=True, quiet_period=10)  # asked for 10 s
    assert o.removed and not f.exists()
    with pytest.raises(errors.InvalidInput):
        vault.import_transcripts([f], remove_originals=True, quiet_period=-1)


_HOLDER = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)  # an agent that keeps its transcript open
print("open", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the writer check is Linux's")
def test_a_file_open_for_writing_elsewhere_is_kept_until_that_process_exits(vault: Vault, claude_dir: Path) -> None:
    f = _file(claude_dir)
    cmd = [sys.executable, "-c", _HOLDER, str(f)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        with holder.stdin:  # closing it ends the holder
            assert holder.stdout.readline() == "open\n"
            _quiet(f)
            [o] = vault.import_transcripts([f], remove_originals=True)
            assert (o.action, o.removed, o.kept) == ("new", False, "open-for-writing") and f.exists()
            # Where leases are unavailable, /proc says the same.
            fd = os.open(f, os.O_RDONLY)
            try:
                assert _writers.scan_proc(os.fstat(fd)) is True
            finally:
                os.close(fd)
    assert holder.returncode == 0
    fd = os.open(f, os.O_RDONLY)
    try:
        assert _writers.scan_proc(os.fstat(fd)) is not True
    finally:
        os.close(fd)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("unchanged", True, None) and not f.exists()


def test_a_torn_sub_agent_file_keeps_the_main_file_too(vault: Vault, tmp_path: Path) -> None:
    project = tmp_path / "-home-dev-parser"
    shutil.copytree(PARSER, project)
    main = project / "7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47.jsonl"
    older, other = project / "agent-5d1e0b7.jsonl", project / "agent-9e07c44.jsonl"
    newer = project / main.stem / "subagents" / "agent-a3f9c21.jsonl"
    _complete(main)  # the main file ends with a whole line; agent-5d1e0b7's last line is torn
    _quiet(main, older, newer)
    [o] = vault.import_transcripts([main], remove_originals=True)
    assert (o.removed, o.kept) == (False, "incomplete") and "agent-5d1e0b7.jsonl" in (o.error or "")
    assert main.exists() and older.exists() and newer.exists()
    _complete(older)
    _quiet(older)
    [o] = vault.import_transcripts([main], remove_originals=True)
    assert o.removed and not main.exists() and not older.exists() and not newer.exists()
    assert other.exists()  # another session's sub-agent file


def _complete(f: Path) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: data.rfind(b"\n") + 1])


def test_a_zst_rollout_is_removed_only_when_its_last_frame_is_whole(vault: Vault, tmp_path: Path) -> None:
    lines = zstandard.ZstdDecompressor().decompress(CODEX_ZST.read_bytes())
    cut = lines.rfind(b"\n", 0, len(lines) - 1) + 1
    first, last = (zstandard.ZstdCompressor().compress(part) for part in (lines[:cut], lines[cut:]))
    f = tmp_path / CODEX_ZST.name
    f.write_bytes(first + last[:8])  # the second frame cut after its header: nothing of it decoded
    _quiet(f)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert (o.action, o.removed, o.kept) == ("new", False, "incomplete")
    f.write_bytes(first + last)
    _quiet(f)
    [o] = vault.import_transcripts([f], remove_originals=True)
    assert o.removed and not f.exists()


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
    assert runner.invoke(cli, ["import-transcripts", "--claude", "--quiet-period", "5"]).exit_code == 2
    # A file kept is no failure: exit 0, and the reason, per file and in all.
    os.utime(_file(claude_dir), None)  # just written
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--remove-originals", "--yes", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [(f["removed"], f["kept"]) for f in out["files"]] == [(False, "recent")]
    assert out["originals"] == {"removed": 0, "kept": {"recent": 1}}
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--remove-originals", "--yes"])
    assert r.exit_code == 0 and "originals: 0 removed, kept: 1 recent" in r.output
    r = runner.invoke(cli, ["import-transcripts", "--claude", "--remove-originals", "--yes", "--quiet-period", "0"])
    assert r.exit_code == 0 and "originals: 1 removed" in r.output and not _file(claude_dir).exists()


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
