"""``resume --into`` (issue 22): a stored session written back in the agent's own layout, the
same records in the same order (redactions aside), the agent run in a private home, what it
added sealed back as an append, and no plaintext left anywhere once it exits.

The agent is ``tests/unit/fake_agent.py`` (no real ``claude``/``codex`` needed): it finds the
session where the agent would, by its own reading of the layout, and appends a turn.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import zstandard

from sessionseal import PassphraseProvider, Vault, cleanup_resumes, errors, find_transcripts, resume_session
from sessionseal._resume import project_key
from tests._infra.forkcli import sessionseal as forked  # commands not about processes
from tests.integration._cli import sessionseal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
FAKE = str(Path(__file__).with_name("fake_agent.py"))
AGENT = [sys.executable, FAKE]
#: Planted in the original transcript: it must be nowhere in plaintext once the agent exits.
PLANTED = "Periwinkle lighthouse keeper 4417"
#: What the agent adds while it runs: sealed back, then nowhere in plaintext either.
ADDED = "Marmalade semaphore 2290"
PASSWORD = "resume tests passphrase"
SID = "5b0c6d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
CODEX_ID = "019d2a11-5c3e-7f40-9a1b-2c3d4e5f6a7b"


def _claude_line(n: int, kind: str, text: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "parentUuid": f"00000000-0000-4000-8000-{n - 1:012d}" if n else None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/shop",
        "sessionId": SID,
        "version": "2.1.9",
        "gitBranch": "main",
        "type": kind,
        "uuid": f"00000000-0000-4000-8000-{n:012d}",
        "timestamp": f"2026-11-30T10:{n:02d}:00.000Z",
    }
    if kind == "user":
        record["message"] = {"role": "user", "content": text}
    else:
        record["message"] = {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 10, "output_tokens": 4},
        }
    return record


def _write_claude(root: Path) -> Path:
    path = root / "projects" / "-home-dev-shop" / f"{SID}.jsonl"
    path.parent.mkdir(parents=True)
    lines = [_claude_line(0, "user", f"remember this: {PLANTED}"), _claude_line(1, "assistant", "noted")]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in lines))
    return path


def _write_codex(root: Path) -> Path:
    path = root / "sessions" / "2026" / "11" / "30" / f"rollout-2026-11-30T10-00-00-{CODEX_ID}.jsonl"
    path.parent.mkdir(parents=True)
    meta = {
        "id": CODEX_ID,
        "timestamp": "2026-11-30T10:00:00.000Z",
        "cwd": "/home/dev/shop",
        "originator": "codex_cli_rs",
    }
    meta |= {"cli_version": "0.128.0", "model_provider": "openai", "source": "cli"}
    lines = [
        {"timestamp": "2026-11-30T10:00:00.000Z", "type": "session_meta", "payload": meta},
        {
            "timestamp": "2026-11-30T10:00:01.000Z",
            "type": "turn_context",
            "payload": {"cwd": "/home/dev/shop", "model": "gpt-5-codex", "approval_policy": "on-request"},
        },
        {
            "timestamp": "2026-11-30T10:00:02.000Z",
            "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PLANTED}]},
        },
        {
            "timestamp": "2026-11-30T10:00:03.000Z",
            "type": "response_item",
            "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        },
    ]
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in lines))
    return path


def _import_and_drop(vault: Vault, path: Path) -> uuid.UUID:
    """Import *path*, then delete it: from here on the session lives only in the vault."""
    [outcome] = vault.import_transcripts([path])
    assert outcome.action == "new" and outcome.session_id is not None, outcome.error
    path.unlink()
    return outcome.session_id


def _plaintext_of(root: Path, *phrases: str) -> list[str]:
    """Every file under *root* that holds one of *phrases* in the clear."""
    found = []
    for top, _dirs, files in os.walk(root):
        for name in files:
            p = Path(top, name)
            if p.is_symlink() or not p.is_file():
                continue
            data = p.read_bytes()
            if any(ph.encode() in data for ph in phrases):
                found.append(str(p.relative_to(root)))
    return found


def _json_lines(data: bytes) -> list[bytes]:
    """The complete lines of a transcript that are JSON objects (what the vault keeps)."""
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            if isinstance(json.loads(line), dict):
                out.append(line)
        except ValueError:
            continue
    return out


#: What a line written back may differ by: the sanitizer's placeholders, and what stands for
#: data the vault does not keep (inline images; thinking whose signature was redacted).
_SANITIZED = (b"[REDACTED:", b"not kept by sessionseal", b"[thinking not kept")


def _same_records(original: bytes, written: bytes) -> int:
    """Assert *written* holds the records of *original* in the same order, each line byte for
    byte the same unless the vault sanitized it; return how many differ."""
    before, after = _json_lines(original), written.split(b"\n")
    assert after[-1] == b""
    after = after[:-1]
    assert len(after) == len(before)
    differ = 0
    for a, b in zip(before, after, strict=True):
        if a != b:
            differ += 1
            assert any(s in b for s in _SANITIZED), "a line changed that the sanitizer did not touch"
            ra, rb = json.loads(a), json.loads(b)
            assert (ra.get("type"), ra.get("uuid"), ra.get("timestamp")) == (
                rb.get("type"),
                rb.get("uuid"),
                rb.get("timestamp"),
            )
    return differ


# -- the layout ------------------------------------------------------------------------------


def test_the_project_key_is_claude_codes() -> None:
    assert project_key("/home/dev/parser") == "-home-dev-parser"  # the fixture's own directory
    assert project_key("/srv/my_app.v2") == "-srv-my-app-v2"
    # Past 200 characters: cut, then "-" and the base-36 djb2-style hash of the whole path
    # (vector computed with the Agent SDK's own formula, _internal/sessions.py _simple_hash).
    long = "/srv/" + "/".join(["workspace-of-a-team-with-a-long-name"] * 7)
    key = project_key(long)
    assert len(long) == 263 and key == long.replace("/", "-").replace("_", "-")[:200] + "-9bufsa"


def test_the_project_key_is_of_the_real_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert project_key(str(tmp_path / "link")) == project_key(str(real))


# -- round trips on the real-format fixtures --------------------------------------------------


def test_claude_sessions_come_back_as_the_same_records(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES / "claude", tmp_path / "in")
    outcomes = vault.import_transcripts(find_transcripts(claude=tmp_path / "in" / "projects"))
    assert len(outcomes) == 2 and all(o.action == "new" for o in outcomes)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    cwd = tmp_path / "work"
    cwd.mkdir()
    differ = 0
    for o in outcomes:
        assert o.session_id is not None
        r = resume_session(vault, o.session_id, into="claude", cwd=str(cwd), execute=False, plaintext=True)
        assert Path(r.path) == tmp_path / "config" / "projects" / project_key(str(cwd)) / f"{o.source_id}.jsonl"
        assert r.command == ["claude", "--resume", o.source_id] and r.cwd == str(cwd)
        differ += _same_records(Path(o.path).read_bytes(), Path(r.path).read_bytes())
        # Sub-agents (both layouts on the way in) come back in the layout Claude Code reads.
        stored = json.loads(vault.load_json(o.session_id))
        for agent in {e["agent"] for e in stored["source_records"] if "agent" in e}:
            originals = list((tmp_path / "in").rglob(f"agent-{agent}.jsonl"))
            [written] = [p for p in r.files if p.endswith(f"/subagents/agent-{agent}.jsonl")]
            differ += _same_records(originals[0].read_bytes(), Path(written).read_bytes())
        assert stat_mode(Path(r.path)) == 0o600
    assert 0 < differ <= 12  # the lines with secrets, signatures and the image; the rest byte for byte


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_codex_rollouts_come_back_as_the_same_records(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES / "codex", tmp_path / "in")
    outcomes = vault.import_transcripts(find_transcripts(codex=tmp_path / "in" / "sessions"))
    assert len(outcomes) == 3 and all(o.action == "new" for o in outcomes)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    for o in outcomes:
        assert o.session_id is not None
        r = resume_session(vault, o.session_id, into="codex", cwd=str(tmp_path), execute=False, plaintext=True)
        assert r.command == ["codex", "resume", o.source_id]
        assert Path(r.path).name.endswith(f"-{o.source_id}.jsonl") and Path(r.path).name.startswith("rollout-")
        data = Path(o.path).read_bytes()
        if o.path.endswith(".zst"):
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        assert _same_records(data, Path(r.path).read_bytes()) <= 1  # the output that held a secret


@pytest.mark.sdk
def test_claude_agent_sdk_reads_what_resume_wrote(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The published offline reader of Claude Code's layout (claude-agent-sdk: list_sessions,
    # get_session_messages, list_subagents).  The package bundles the CLI (~480 MB): .ci/run
    # installs it in a venv of its own and requires this test there (SESSIONSEAL_REQUIRE_SDK).
    sdk = importlib.import_module("claude_agent_sdk") if os.environ.get("SESSIONSEAL_REQUIRE_SDK") else None
    sdk = sdk or pytest.importorskip("claude_agent_sdk")
    shutil.copytree(FIXTURES / "claude", tmp_path / "in")
    [o, _other] = vault.import_transcripts(find_transcripts(claude=tmp_path / "in" / "projects"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "config"))
    cwd = tmp_path / "work"
    cwd.mkdir()
    assert o.session_id is not None
    resume_session(vault, o.session_id, into="claude", cwd=str(cwd), execute=False, plaintext=True)
    assert o.source_id in [s.session_id for s in sdk.list_sessions(directory=str(cwd))]
    messages = sdk.get_session_messages(o.source_id, directory=str(cwd))
    assert messages and {m.type for m in messages} == {"user", "assistant"}
    # One sub-agent in the newer layout, one in the older (beside the session) came in; the
    # third file of the project belongs to another session.
    assert sorted(sdk.list_subagents(o.source_id, directory=str(cwd))) == ["5d1e0b7", "a3f9c21"]
    assert sdk.get_subagent_messages(o.source_id, "5d1e0b7", directory=str(cwd))


# -- running the agent ------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with Claude Code and Codex configured (credentials, settings)."""
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".codex").mkdir()
    creds = {"claudeAiOauth": {"accessToken": "sk-ant-oat01-fake", "refreshToken": "sk-ant-ort01-fake"}}
    (home / ".claude" / ".credentials.json").write_text(json.dumps(creds))
    (home / ".claude" / "settings.json").write_text('{"cleanupPeriodDays": 30}')
    (home / ".codex" / "auth.json").write_text('{"OPENAI_API_KEY": null}')
    (home / ".codex" / "config.toml").write_text('model = "gpt-5-codex"\n')
    monkeypatch.setenv("HOME", str(home))
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_REPORT", str(tmp_path / "report.json"))
    monkeypatch.setenv("FAKE_PHRASE", ADDED)
    return home


def _report(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "report.json").read_text()))


def test_resume_in_claude_seals_back_and_leaves_no_plaintext(vault: Vault, home: Path, tmp_path: Path) -> None:
    sid = _import_and_drop(vault, _write_claude(tmp_path / "in"))
    work = tmp_path / "work"
    work.mkdir()
    r = resume_session(vault, sid, into="claude", cwd=str(work), agent_command=AGENT)
    seen = _report(tmp_path)
    # The agent found it where Claude Code looks, private, whole, with its settings.
    assert seen["argv"] == ["--resume", SID] and seen["cwd"] == str(work)
    assert (seen["records"], seen["first_key"], seen["first_type"]) == (2, "parentUuid", "user")
    assert (seen["file_mode"], seen["home_mode"]) == (0o600, 0o700)
    assert seen["saw"] == {".credentials.json": True, "settings.json": True}
    assert seen["refresh_token_copied"] is False
    assert Path(seen["path"]).is_relative_to(vault.path / "run")
    # What it added is sealed back as an append; then the home is gone.
    assert r.agent_status == 0 and r.shredded and [o.action for o in r.sealed] == ["appended"]
    doc = json.loads(vault.load_json(sid))
    assert len(doc["messages"]) == 4 and len(doc["source_records"]) == 4
    assert ADDED in doc["source_records"][2]["record"]["message"]["content"]
    assert not (vault.path / "run").exists()
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == []
    assert not (home / ".claude" / "projects").exists()  # nothing went into the real config
    # Audited: which session, into which agent (never content).
    records, _ = vault.audit_entries(session=sid)
    assert [(e["action"], e.get("detail")) for e in records if e["action"] == "resume"] == [
        ("resume", {"into": "claude"})
    ]


def test_resume_in_codex_registers_the_thread(vault: Vault, home: Path, tmp_path: Path) -> None:
    # The user's Codex keeps a state database: the private home gets its schema and migration
    # ledger (so Codex sees nothing to migrate), never its rows (other sessions' titles).
    db = sqlite3.connect(home / ".codex" / "state_5.sqlite")
    db.executescript(
        """CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
           INSERT INTO _sqlx_migrations VALUES (1, 'threads', '2026-01-01', 1, x'00', 1);
           CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL, created_at INTEGER NOT NULL,
             updated_at INTEGER NOT NULL, source TEXT NOT NULL, model_provider TEXT NOT NULL, cwd TEXT NOT NULL,
             title TEXT NOT NULL, sandbox_policy TEXT NOT NULL, approval_mode TEXT NOT NULL,
             tokens_used INTEGER NOT NULL DEFAULT 0, has_user_event INTEGER NOT NULL DEFAULT 0,
             archived INTEGER NOT NULL DEFAULT 0, archived_at INTEGER, cli_version TEXT NOT NULL DEFAULT '',
             first_user_message TEXT NOT NULL DEFAULT '', model TEXT);
           INSERT INTO threads (id, rollout_path, created_at, updated_at, source, model_provider, cwd, title,
             sandbox_policy, approval_mode) VALUES ('other', '/x', 0, 0, 'cli', 'openai', '/', 'other work', '', '');"""
    )
    db.commit()
    db.close()
    sid = _import_and_drop(vault, _write_codex(tmp_path / "in"))
    r = resume_session(vault, sid, into="codex", cwd=str(tmp_path), agent_command=AGENT)
    seen = _report(tmp_path)
    assert seen["argv"] == ["resume", CODEX_ID] and seen["first_type"] == "session_meta" and seen["records"] == 4
    assert seen["rows"] == [[CODEX_ID, seen["path"], str(tmp_path)]] and seen["migrations"] == 1
    assert seen["saw"] == {"auth.json": True, "config.toml": True} and seen["home_mode"] == 0o700
    assert [o.action for o in r.sealed] == ["appended"] and r.shredded
    doc = json.loads(vault.load_json(sid))
    assert [m["role"] for m in doc["messages"]][-2:] == ["user", "assistant"] and len(doc["source_records"]) == 6
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == []


def test_an_agent_that_adds_nothing_leaves_the_session_as_it_was(vault: Vault, home: Path, tmp_path: Path) -> None:
    sid = _import_and_drop(vault, _write_claude(tmp_path / "in"))
    before = vault.load_json(sid)
    r = resume_session(vault, sid, into="claude", cwd=str(tmp_path), agent_command=["true"])
    assert r.sealed == [] and r.shredded and r.agent_status == 0
    assert vault.load_json(sid) == before
    assert vault.checkpoints(sid) == []
    assert _plaintext_of(tmp_path, PLANTED) == []


def test_refusals_write_nothing(vault: Vault, home: Path, tmp_path: Path) -> None:
    sid = _import_and_drop(vault, _write_claude(tmp_path / "in"))
    with pytest.raises(errors.InvalidInput, match="resumed only in the agent it came from"):
        resume_session(vault, sid, into="codex", agent_command=AGENT)
    saved = vault.save({"title": "typed by hand", "messages": [{"role": "user", "content": PLANTED}]})
    with pytest.raises(errors.InvalidInput, match="not an imported agent transcript"):
        resume_session(vault, saved, into="claude", agent_command=AGENT)
    with pytest.raises(errors.InvalidInput, match="not found on PATH"):
        resume_session(vault, sid, into="claude", agent_command=["no-such-agent-here"])
    with pytest.raises(errors.InvalidInput, match="--plaintext"):
        resume_session(vault, sid, into="claude", execute=False)
    with pytest.raises(errors.SessionNotFound):
        resume_session(vault, uuid.uuid4(), into="claude", agent_command=AGENT)
    assert not (vault.path / "run").exists()
    assert _plaintext_of(tmp_path, PLANTED) == []


def test_a_written_session_is_never_overwritten(vault: Vault, home: Path, tmp_path: Path) -> None:
    sid = _import_and_drop(vault, _write_claude(tmp_path / "in"))
    r = resume_session(vault, sid, into="claude", cwd=str(tmp_path), execute=False, plaintext=True)
    Path(r.path).write_text("the user's own edits\n")
    with pytest.raises(errors.InvalidInput, match="exists"):
        resume_session(vault, sid, into="claude", cwd=str(tmp_path), execute=False, plaintext=True)
    assert Path(r.path).read_text() == "the user's own edits\n"


# -- the stored records -----------------------------------------------------------------------


def test_a_grown_transcript_appends_only_its_new_records(vault: Vault, tmp_path: Path) -> None:
    path = _write_claude(tmp_path / "in")
    vault.import_transcripts([path])
    with path.open("a") as f:
        for n, kind in ((2, "user"), (3, "assistant")):
            f.write(json.dumps(_claude_line(n, kind, f"turn {n}"), separators=(",", ":")) + "\n")
    [o] = vault.import_transcripts([path])
    assert o.action == "appended" and o.session_id is not None
    doc = json.loads(vault.load_json(o.session_id))
    assert [e["line"] for e in doc["source_records"]] == [1, 2, 3, 4]
    assert [e["record"] for e in doc["source_records"]] == [json.loads(x) for x in path.read_bytes().splitlines()]
    assert doc["source"]["source_records"] == {"": 4}


def test_a_session_imported_before_records_were_kept_gets_them_all_once(vault: Vault, tmp_path: Path) -> None:
    path = _write_claude(tmp_path / "in")
    [o] = vault.import_transcripts([path])
    assert o.session_id is not None
    # As schema 1 stored it: no records, no count of them.
    doc = json.loads(vault.load_json(o.session_id))
    del doc["source_records"], doc["source"]["source_records"]
    doc["schema_version"] = 1
    vault.save(doc)
    with path.open("a") as f:
        f.write(json.dumps(_claude_line(2, "user", "again"), separators=(",", ":")) + "\n")
    [again] = vault.import_transcripts([path])
    assert again.action == "updated"  # stored whole once, so that it holds every record
    assert len(json.loads(vault.load_json(o.session_id))["source_records"]) == 3


def test_raw_events_point_at_their_record_instead_of_a_copy(vault: Vault, tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "claude", tmp_path / "in")
    [o, _] = vault.import_transcripts(find_transcripts(claude=tmp_path / "in" / "projects"))
    assert o.session_id is not None
    doc = json.loads(vault.load_json(o.session_id))
    assert doc["raw_events"] and all("record" not in e for e in doc["raw_events"])
    where = {(e.get("agent"), e["line"]): e["record"] for e in doc["source_records"]}
    for event in doc["raw_events"]:
        ref = event["source_record"]
        assert (ref.get("agent"), ref["line"]) in where


# -- a killed resume, through the command line ------------------------------------------------


def _cli_vault(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "vault"
    Vault.init(path, key_provider=PassphraseProvider(PASSWORD, log2_n=14)).close()
    env = {
        "HOME": str(tmp_path / "home"),
        "SESSIONSEAL_VAULT": str(path),
        "SESSIONSEAL_PASSPHRASE": PASSWORD,
        "FAKE_REPORT": str(tmp_path / "report.json"),
        "FAKE_PHRASE": ADDED,
    }
    (tmp_path / "home").mkdir(exist_ok=True)
    return path, env


def test_a_killed_resume_is_sealed_back_and_shredded_by_cleanup(tmp_path: Path) -> None:
    vpath, env = _cli_vault(tmp_path)
    with Vault.open(vpath, passphrase=PASSWORD) as v:
        sid = _import_and_drop(v, _write_claude(tmp_path / "in"))
    agent = f"{sys.executable} {FAKE}"
    r = sessionseal(
        "resume",
        str(sid),
        "--into",
        "claude",
        "--cwd",
        str(tmp_path),
        "--agent-command",
        agent,
        env={**env, "FAKE_KILL_PARENT": "1"},
    )
    assert r.code == -9  # SIGKILL, while the agent ran: its home is left behind, in plaintext
    assert _plaintext_of(vpath / "run", ADDED) != []
    r = sessionseal("resume", "--cleanup", "--json", env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"removed": 1, "kept": []}
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == [] and not (vpath / "run").exists()
    with Vault.open(vpath, passphrase=PASSWORD) as v:
        assert len(json.loads(v.load_json(sid))["messages"]) == 4  # what the agent added was kept


def test_the_command_line_without_exec(tmp_path: Path) -> None:
    vpath, env = _cli_vault(tmp_path)
    with Vault.open(vpath, passphrase=PASSWORD) as v:
        sid = _import_and_drop(v, _write_claude(tmp_path / "in"))
    r = forked("resume", str(sid), "--into", "claude", "--no-exec", "--cwd", str(tmp_path), env=env)
    assert r.code == 8 and "--plaintext" in r.err and r.err.count("\n") == 1
    assert not (tmp_path / "home" / ".claude").exists()
    for mode in ("--exec", "--no-exec"):
        r = forked("resume", str(sid), "--into", "claude", mode, "--dry-run", "--cwd", str(tmp_path), "--json", env=env)
        assert r.code == 0, r.err
        out = json.loads(r.out)
        assert out["dry_run"] is True and out["executed"] is False and out["path"].endswith(f"/{SID}.jsonl")
    assert not (tmp_path / "home" / ".claude").exists() and not (vpath / "run").exists()
    r = forked(
        "resume", str(sid), "--into", "claude", "--no-exec", "--plaintext", "--cwd", str(tmp_path), "--json", env=env
    )
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["executed"] is False and out["command"] == ["claude", "--resume", SID]
    assert Path(out["path"]).is_relative_to(tmp_path / "home" / ".claude" / "projects")
    assert PLANTED in Path(out["path"]).read_text()  # written in place: the user asked for plaintext
    r = forked("resume", str(sid), "--into", "aider", env=env)  # an agent resume does not know
    assert r.code == 2
    r = forked("resume", str(sid), "--into", "gemini", env=env)  # one it knows, but not this session's
    assert r.code == 8 and "came from claude-code" in r.err
    r = forked("resume", str(sid), "--cwd", str(tmp_path), env=env)  # --cwd goes with --into
    assert r.code == 2 and "--into" in r.err
    r = forked("resume", str(sid), "--json", env=env)  # without --into: it prints the session, as before
    assert r.code == 0 and json.loads(r.out)["id"] == str(sid)
    r = forked("resume", "--latest", "--into", "claude", "--dry-run", "--json", env=env)
    assert r.code == 0 and json.loads(r.out)["session_id"] == str(sid)
    r = forked("resume", str(sid), "--into", "claude", "--agent-command", "no-such-agent-here", env=env)
    assert r.code == 8 and "not found on PATH" in r.err


def test_cleanup_keeps_a_home_that_is_not_its_own(tmp_path: Path) -> None:
    vpath, env = _cli_vault(tmp_path)
    stray = vpath / "run" / "resume-stray"
    stray.mkdir(parents=True, mode=0o700)
    (vpath / "run").chmod(0o700)
    (stray / "notes.txt").write_text(PLANTED)  # no marker: nothing proves it is a resume's
    r = sessionseal("resume", "--cleanup", "--json", env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"removed": 0, "kept": []}
    assert (stray / "notes.txt").read_text() == PLANTED


def test_cleanup_of_a_vault_without_resumes(vault: Vault) -> None:
    assert cleanup_resumes(vault) == (0, [])
    assert not (vault.path / "run").exists()


def test_what_cannot_be_sealed_back_is_kept_not_shredded(vault: Vault, home: Path, tmp_path: Path) -> None:
    sid = _import_and_drop(vault, _write_claude(tmp_path / "in"))
    # An agent that leaves its transcript unreadable: the import of it fails.
    spoil = "import glob, os; [open(p, 'w').write('not json\\n') for p in glob.glob(os.environ['CLAUDE_CONFIG_DIR'] + '/projects/*/*.jsonl')]"
    with pytest.raises(errors.StorageError, match="could not be sealed back; its files are kept in"):
        resume_session(vault, sid, into="claude", cwd=str(tmp_path), agent_command=[sys.executable, "-c", spoil])
    [kept] = (vault.path / "run").iterdir()
    assert cleanup_resumes(vault) == (0, [str(kept)])  # still not sealable: still kept
    assert kept.is_dir() and len(json.loads(vault.load_json(sid))["messages"]) == 2
