"""``resume --into gemini`` (issue 22): a stored Gemini CLI session written back where Gemini CLI
looks for it (the project registered for the directory, ``.project_root``, ``projects.json``),
the same records in the same order (redactions aside), re-imported as the same session; the
agent run in a private home (``GEMINI_CLI_HOME``), what it added sealed back as an append, and
no plaintext left once it exits.

The agent is ``tests/unit/fake_agent.py``: with ``GEMINI_CLI_HOME`` set it finds the session by
its own reading of Gemini CLI's layout, and adds a turn as Gemini CLI would (the ``.json``
document rewritten whole, or lines appended to the ``.jsonl``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault, errors, find_transcripts, resume_session
from sessionseal._transcripts import grew_in_place, parse_gemini
from tests.integration._cli import sessionseal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "gemini"
AGENT = [sys.executable, str(Path(__file__).with_name("fake_agent.py"))]
PLANTED = "Periwinkle lighthouse keeper 4417"
ADDED = "Marmalade semaphore 2290"
GID = "7d3e9a10-4b2c-4f5e-9a8b-1c2d3e4f5a6b"
#: A token the sanitizer redacts: the session written back differs from the one imported.
TOKEN = "ghp_G3m1n1F4keT0kenF0rSessi0nSealTest0042"


def _differing(original: bytes, written: bytes) -> int:
    """Assert *written* has the lines of *original* (a .jsonl's records, or a .json document's
    lines: one field a line), in order, each the same unless the sanitizer changed it."""
    before = [line for line in original.split(b"\n") if line.strip()]
    after = [line for line in written.split(b"\n") if line.strip()]
    assert len(after) == len(before)
    differ = 0
    for a, b in zip(before, after, strict=True):
        if a != b:
            differ += 1
            assert b"[REDACTED:" in b, "a line changed that the sanitizer did not touch"
    return differ


def test_gemini_sessions_come_back_as_the_same_records(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES, tmp_path / "in")
    outcomes = vault.import_transcripts(find_transcripts(gemini=tmp_path / "in"))
    assert sorted(Path(o.path).suffix for o in outcomes) == [".json", ".jsonl"]
    assert all(o.action == "new" for o in outcomes)
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "ghome"))
    gem = tmp_path / "ghome" / ".gemini"
    work = tmp_path / "Web Shop!"
    work.mkdir()
    for o in outcomes:
        assert o.session_id is not None
        r = resume_session(vault, o.session_id, into="gemini", cwd=str(work), execute=False, plaintext=True)
        # Where Gemini CLI looks: the project's short name, registered, its marker naming it.
        assert Path(r.path) == gem / "tmp" / "web-shop" / "chats" / Path(o.path).name
        assert json.loads((gem / "projects.json").read_text()) == {"projects": {str(work): "web-shop"}}
        assert (gem / "tmp" / "web-shop" / ".project_root").read_text() == str(work)
        assert r.command == ["gemini", "--resume", o.source_id] and (Path(r.path).stat().st_mode & 0o777) == 0o600
        original, written = Path(o.path).read_bytes(), Path(r.path).read_bytes()
        assert 1 <= _differing(original, written) <= 3  # the lines that held a secret
        if r.path.endswith(".json"):  # as Gemini CLI writes it: JSON.stringify(record, null, 2)
            assert not written.endswith(b"\n") and list(json.loads(written)) == list(json.loads(original))
        # Read again, it is the same session.  Written outside the vault's run/ (--no-exec),
        # its text is not taken for the original's where a secret was: it is stored anew (a
        # checkpoint keeps the version before), never appended over text that differs.
        [again] = vault.import_transcripts([Path(r.path)])
        assert (again.session_id, again.action, again.messages) == (o.session_id, "updated", o.messages)
    # An existing file is never overwritten.
    with pytest.raises(errors.InvalidInput):
        resume_session(vault, outcomes[0].session_id or "", into="gemini", cwd=str(work), execute=False, plaintext=True)


SUB = "9f8e7d6c-5b4a-4321-8fed-cba987654321"


def _write_session(root: Path, form: str, sub_agent: bool = False) -> Path:
    chats = root / "tmp" / "shop" / "chats"
    chats.mkdir(parents=True)
    (chats.parent / ".project_root").write_text("/home/dev/shop")
    meta = {
        "sessionId": GID,
        "projectHash": "0" * 64,
        "startTime": "2026-11-30T10:00:00.000Z",
        "lastUpdated": "2026-11-30T10:00:03.000Z",
    }
    messages: list[dict[str, Any]] = [
        {
            "id": "m1",
            "timestamp": "2026-11-30T10:00:01.000Z",
            "type": "user",
            "content": [{"text": PLANTED}, {"text": f"GITHUB_TOKEN={TOKEN}"}],
        },
        {"id": "m2", "timestamp": "2026-11-30T10:00:02.000Z", "type": "gemini", "content": "noted", "model": "g"},
    ]
    path = chats / f"session-2026-11-30T10-00-{GID[:8]}.{form}"
    if form == "json":
        path.write_text(json.dumps({**meta, "messages": messages}, indent=2))
    else:
        path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in [meta, *messages]))
    if sub_agent:  # chats/<parent id>/<id>.jsonl (newer releases)
        (chats / GID).mkdir()
        sub = [{**meta, "sessionId": SUB, "kind": "subagent"}, {**messages[1], "id": "s1", "content": "sub"}]
        (chats / GID / f"{SUB}.jsonl").write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in sub))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with Gemini CLI signed in (credentials, settings)."""
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "oauth_creds.json").write_text('{"access_token": "ya29.fake", "refresh_token": "1//fake"}')
    (home / ".gemini" / "settings.json").write_text('{"security": {"auth": {"selectedType": "oauth-personal"}}}')
    monkeypatch.setenv("HOME", str(home))
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_REPORT", str(tmp_path / "report.json"))
    monkeypatch.setenv("FAKE_PHRASE", ADDED)
    return home


def _plaintext_of(root: Path, *phrases: str) -> list[str]:
    found = []
    for top, _dirs, files in os.walk(root):
        for name in files:
            p = Path(top, name)
            if not p.is_symlink() and p.is_file() and any(ph.encode() in p.read_bytes() for ph in phrases):
                found.append(str(p.relative_to(root)))
    return found


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_resume_in_gemini_seals_back_and_leaves_no_plaintext(
    vault: Vault, home: Path, tmp_path: Path, form: str
) -> None:
    path = _write_session(tmp_path / "in", form)
    [o] = vault.import_transcripts([path])
    assert o.action == "new" and o.session_id is not None
    path.unlink()
    work = tmp_path / "shop"
    work.mkdir()
    r = resume_session(vault, o.session_id, into="gemini", cwd=str(work), agent_command=AGENT)
    seen = json.loads((tmp_path / "report.json").read_text())
    # The agent found it where Gemini CLI looks, in a private home, with its sign-in.
    assert seen["argv"] == ["--resume", GID] and seen["cwd"] == str(work)
    assert (seen["project"], seen["owner"], seen["first_key"]) == ("shop", str(work), "sessionId")
    assert seen["records"] == (2 if form == "json" else 3)
    assert (seen["file_mode"], seen["home_mode"]) == (0o600, 0o700)
    assert seen["saw"] == {"oauth_creds.json": True, "settings.json": True}
    assert Path(seen["path"]).is_relative_to(vault.path / "run")
    # What it added is sealed back as an append; then the home is gone.
    assert r.agent_status == 0 and r.shredded and [o.action for o in r.sealed] == ["appended"]
    doc = json.loads(vault.load_json(o.session_id))
    assert [m["id"] for m in doc["messages"]] == ["m1", "m2", "fake-u", "fake-g"]
    assert ADDED in json.dumps(doc["source_records"][-2 if form == "jsonl" else -1]["record"])
    assert len(doc["source_records"]) == (5 if form == "json" else 6)  # the fields (.json) or lines
    assert uuid.UUID(str(doc["id"])) == o.session_id
    assert not (vault.path / "run").exists()
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == [] and TOKEN not in json.dumps(doc)
    assert not (home / ".gemini" / "tmp").exists() and not (home / ".gemini" / "projects.json").exists()


def test_written_in_place_the_registry_keeps_its_projects(vault: Vault, home: Path, tmp_path: Path) -> None:
    path = _write_session(tmp_path / "in", "jsonl", sub_agent=True)
    [o] = vault.import_transcripts([path])
    assert o.session_id is not None
    gem = home / ".gemini"
    # The user's Gemini CLI has a project of another directory with the same basename.
    (gem / "tmp" / "shop").mkdir(parents=True)
    (gem / "tmp" / "shop" / ".project_root").write_text("/elsewhere/shop")
    (gem / "projects.json").write_text(json.dumps({"projects": {"/elsewhere/shop": "shop"}}))
    work = tmp_path / "shop"
    work.mkdir()
    with pytest.raises(errors.InvalidInput):  # plaintext in the real home only when asked
        resume_session(vault, o.session_id, into="gemini", cwd=str(work), execute=False)
    r = resume_session(vault, o.session_id, into="gemini", cwd=str(work), execute=False, plaintext=True)
    assert Path(r.path).parent == gem / "tmp" / "shop-1" / "chats"
    assert json.loads((gem / "projects.json").read_text()) == {
        "projects": {"/elsewhere/shop": "shop", str(work): "shop-1"}
    }
    assert str(gem / "projects.json") in r.files
    # The sub-agent's file comes back where Gemini CLI keeps it, its lines as they were.
    sub = gem / "tmp" / "shop-1" / "chats" / GID / f"{SUB}.jsonl"
    assert str(sub) in r.files and sub.read_bytes() == (path.parent / GID / f"{SUB}.jsonl").read_bytes()
    (gem / "projects.json").write_text("[1]")  # not Gemini's registry: refused, nothing written
    with pytest.raises(errors.InvalidInput):
        resume_session(vault, o.session_id, into="gemini", cwd=str(tmp_path), execute=False, plaintext=True)


def test_the_digest_sees_what_gemini_changes_and_the_text_only_of_its_own_files(tmp_path: Path) -> None:
    path = tmp_path / "session-x.json"
    call = {"id": "c1", "name": "read_file", "args": {"path": "a"}, "status": "executing"}
    reply = {"id": "g1", "timestamp": "2026-01-01T00:00:02Z", "type": "gemini", "content": "hi", "toolCalls": [call]}
    user = {"id": "u1", "timestamp": "2026-01-01T00:00:01Z", "type": "user", "content": "key sk-live-0001"}

    def read(*messages: dict[str, Any]) -> dict[str, Any]:
        doc = parse_gemini(path, json.dumps({"sessionId": "s", "messages": list(messages)}).encode()).document
        return dict(doc)

    first = read(user, reply)
    old = {**first["source"], "messages": len(first["messages"])}
    more = {"id": "u2", "timestamp": "2026-01-01T00:00:03Z", "type": "user", "content": "more"}
    assert grew_in_place(old, read(user, reply, more))
    # The vault's sanitized copy, written back by resume: the same messages.  Gemini's own
    # file whose text changed in place is not: appended to, the vault would keep the old text.
    redacted = read({**user, "content": "key [REDACTED:stripe]"}, reply, more)
    assert grew_in_place(old, redacted, written_back=True)
    assert not grew_in_place(old, redacted)
    assert not grew_in_place(old, read(user, {**reply, "content": "hi there"}, more))
    # A tool call that went on (its status), a renamed call, a rewind: not the same messages.
    assert not grew_in_place(old, read(user, {**reply, "toolCalls": [{**call, "status": "success"}]}, more))
    assert not grew_in_place(old, read(user, {**reply, "toolCalls": [{**call, "name": "shell"}]}, more))
    assert not grew_in_place(old, read(user, more))


def test_the_command_line_resumes_in_gemini(tmp_path: Path) -> None:
    vpath = tmp_path / "vault"
    Vault.init(vpath, key_provider=PassphraseProvider("gemini resume", log2_n=14)).close()
    (tmp_path / "home").mkdir()
    env = {
        "HOME": str(tmp_path / "home"),
        "SESSIONSEAL_VAULT": str(vpath),
        "SESSIONSEAL_PASSPHRASE": "gemini resume",
        "FAKE_REPORT": str(tmp_path / "report.json"),
        "FAKE_PHRASE": ADDED,
    }
    path = _write_session(tmp_path / "in", "jsonl")
    with Vault.open(vpath, passphrase="gemini resume") as v:
        [o] = v.import_transcripts([path])
    path.unlink()
    work = tmp_path / "shop"
    work.mkdir()
    args = ["resume", str(o.session_id), "--into", "gemini", "--cwd", str(work), "--json"]
    r = sessionseal(*args, "--dry-run", env=env)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["command"] == ["gemini", "--resume", GID] and out["path"].endswith(f"/tmp/shop/chats/{path.name}")
    r = sessionseal(*args, "--agent-command", shlex.join(AGENT), env=env)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert list(out["env"]) == ["GEMINI_CLI_HOME"] and out["agent_status"] == 0
    assert [s["action"] for s in out["sealed"]] == ["appended"] and out["shredded"] is True
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == []
    # Killed while the agent ran: the next --cleanup seals back what it added, then shreds.
    r = sessionseal(*args, "--agent-command", shlex.join(AGENT), env={**env, "FAKE_KILL_PARENT": "1"})
    assert r.code == -9 and _plaintext_of(vpath / "run", ADDED) != []
    r = sessionseal("resume", "--cleanup", "--json", env=env)
    assert r.code == 0 and json.loads(r.out) == {"removed": 1, "kept": []}, r.err
    assert _plaintext_of(tmp_path, PLANTED, ADDED) == [] and not (vpath / "run").exists()
    with Vault.open(vpath, passphrase="gemini resume") as v:
        records = json.loads(v.load_json(str(o.session_id)))["source_records"]
    # Each run's lines were kept (the fake agent's ids repeat: its second turn replaces the first).
    assert len(records) == 9 and sum(ADDED in json.dumps(e) for e in records) == 4
