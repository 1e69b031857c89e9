"""Metadata edits (issue 6): tag, rename, describe, set-status, link; new text is sanitized."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import Vault, errors
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub-shaped token


def _s(title: str, **extra: object) -> dict[str, object]:
    return {"title": title, "messages": [{"role": "user", "content": "body text"}], **extra}


def test_edits_change_metadata_and_keep_the_content(vault: Vault) -> None:
    sid = vault.save(_s("t", tags=["a", "b"]))
    before = vault.load(sid)
    assert vault.tag(sid, add=["c", "a"], remove=["b"]) == ["a", "c"]
    assert vault.rename(sid, "new title") and not vault.rename(sid, "new title")
    assert vault.describe(sid, "what it was about")
    assert vault.set_status(sid, "failed") and not vault.set_status(sid, "failed")
    after = vault.load(sid)
    assert (after.title, after.description, after.tags, after.status) == (
        "new title",
        "what it was about",
        ["a", "c"],
        "failed",
    )
    assert after.messages == before.messages and after.updated_at == before.updated_at
    assert [s.title for s in vault.list()] == ["new title"]  # the index follows
    actions = [r["action"] for r in vault.audit_records() if r["action"] in ("tag", "rename", "describe", "set-status")]
    assert actions == ["tag", "rename", "rename", "describe", "set-status", "set-status"]


def test_new_titles_and_descriptions_are_sanitized(vault: Vault, vault_path: Path) -> None:
    sid = vault.save(_s("t"))
    vault.rename(sid, f"deploy with {TOKEN}")
    vault.describe(sid, f"token {TOKEN}")
    s = vault.load(sid)
    assert TOKEN not in s.title and "[REDACTED:" in s.title and TOKEN not in s.description
    assert sum(s.redactions.values()) >= 2
    blob = b"".join(p.read_bytes() for p in vault_path.rglob("*") if p.is_file())
    assert TOKEN.encode() not in blob


def test_set_status_archived_is_archive_and_back(vault: Vault) -> None:
    sid = vault.save(_s("t", status="paused"))
    assert vault.set_status(sid, "archived")
    assert vault.load(sid).archived_from == "paused"
    assert vault.set_status(sid, "completed")
    s = vault.load(sid)
    assert (s.status, s.archived_from) == ("completed", None)


def test_link(vault: Vault) -> None:
    parent, child = vault.save(_s("p")), vault.save(_s("c"))
    assert vault.link(child, parent=parent) and not vault.link(child, parent=parent)
    assert vault.load(child).links.parent == parent
    assert vault.link(child, parent=None) and vault.load(child).links.parent is None
    with pytest.raises(errors.SessionNotFound):
        vault.link(child, parent=uuid.uuid4())
    with pytest.raises(errors.InvalidInput):
        vault.link(child, parent=child)


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 65])
def test_bad_tags_change_nothing(vault: Vault, bad: str) -> None:
    sid = vault.save(_s("t", tags=["a"]))
    with pytest.raises(errors.InvalidInput):
        vault.tag(sid, add=[bad])
    assert vault.load(sid).tags == ["a"]


def test_cli_edits(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    sid = run("save", "-", input=json.dumps(_s("t", tags=["old"]))).output.strip()
    other = run("save", "-", input=json.dumps(_s("o"))).output.strip()
    r = run("tag", sid, "+new", "-old", "plain", "--json")
    assert json.loads(r.output) == {"id": sid, "tags": ["new", "plain"]}
    assert run("rename", sid, "Renamed").exit_code == 0
    assert run("describe", sid, "About it").exit_code == 0
    assert run("set-status", sid, "completed").exit_code == 0
    assert run("set-status", sid, "done").exit_code == 2
    assert run("link", sid, "--parent", other).exit_code == 0
    assert run("link", sid).exit_code == 2
    shown = run("show", sid).output
    assert "Renamed" in shown and f"parent {other}" in shown and "About it" in shown
    assert run("rename", str(uuid.uuid4()), "x").exit_code == 3
