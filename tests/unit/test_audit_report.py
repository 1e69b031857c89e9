"""``audit report`` (docs/reports.md): built from a real vault's audit log, only what the records
hold; the chain's result on top with its first bad record; refusals, what left the vault,
deletions with their rule, per user and per session; the report itself is an audited access."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sessionseal import PassphraseProvider, Vault, audit_report, errors
from sessionseal._audit_page import render_html
from sessionseal._audit_report import build
from sessionseal.cli import cli
from tests.unit.test_html_export import HOSTILE, _parse

PASS = "correct horse battery staple"
TITLE = "TOP-SECRET-TITLE-7f3a"
TEXT = "the content of the conversation 91c2"
OLD = "2020-01-01T00:00:00Z"


def _open(path: Path, passphrase: str = PASS) -> Vault:
    return Vault.open(path, key_provider=PassphraseProvider(passphrase))


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A vault with a history a reviewer looks at: saves, a wrong passphrase, a plaintext and an
    encrypted export, a resume-free read, a delete and a cleanup that erases by its rule."""
    path = tmp_path / "vault"
    Vault.init(path, key_provider=PassphraseProvider(PASS, log2_n=14)).close()
    with pytest.raises(errors.WrongPassphrase):
        _open(path, "not the passphrase").list()
    ids: dict[str, Any] = {}
    with _open(path) as v:
        ids["kept"] = v.save({"title": TITLE, "messages": [{"role": "user", "content": TEXT}]})
        ids["hostile"] = v.save({"title": HOSTILE, "messages": [{"role": "user", "content": HOSTILE}]})
        ids["gone"] = v.save({"title": "to delete", "messages": []})
        ids["old"] = v.save(
            {"title": "old", "status": "completed", "messages": [], "created_at": OLD, "updated_at": OLD},
            touch=False,
        )
        v.export([ids["kept"]], format="markdown", plaintext=True, out=tmp_path / "k.md")
        v.export([ids["kept"], ids["hostile"]], format="bundle", passphrase="bundle pass", log2_n=14)
        v.load(ids["kept"])
        # What an agent read over MCP (the server records it so: docs/mcp.md).
        detail = {"client": "claude-code", "client_version": "2.1", "scope": "roots", "roots": 1, "results": 1}
        v.parts.auditor.served("mcp.get_session", "ok", [str(ids["kept"])], detail={**detail, "bytes": 321})
        v.delete(ids["gone"])
        result = v.cleanup({"max_age": "365d"})
        assert result.removed == [ids["old"]]
    return path, ids


def test_the_json_report_of_a_real_vault(history: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, ids = history
    with _open(path) as v:
        model, data = audit_report(v, format="json")
    assert data is not None and json.loads(data) == json.loads(json.dumps(model, default=str))
    assert model["report"] == "sessionseal audit report" and model["version"] == 1
    assert set(model) >= {
        "verification",
        "summary",
        "activity",
        "users",
        "sessions",
        "refusals",
        "egress",
        "deletions",
        "records",
    }
    ver = model["verification"]
    assert ver["ok"] is True and ver["first_bad"] is None and ver["records"] == ver["last_seq"]
    # The wrong passphrase, chained from pending.log at the next open.
    [refusal] = model["refusals"]
    assert refusal["action"] == "open" and refusal["outcome"] == "denied"
    assert refusal["kind"] == "wrong passphrase" and refusal["error"] == "WrongPassphrase"
    assert refusal["other_user"] is False
    # What left the vault: the markdown (plaintext) and the bundle, with their sessions.
    kinds = [(e["kind"], e["format"], e["file"], e["sessions"]) for e in model["egress"]]
    assert kinds == [
        ("plaintext export", "markdown", "k.md", [str(ids["kept"])]),
        ("encrypted export (bundle)", "bundle", None, [str(ids["kept"]), str(ids["hostile"])]),
        ("MCP read by claude-code", None, None, [str(ids["kept"])]),
    ]
    assert model["egress"][-1]["bytes"] == 321 and model["egress"][-1]["action"] == "mcp.get_session"
    # Deletions: the delete, then the cleanup's erasure with the rule that decided it.
    dels = [(d["action"], d["rule"], d["by_cleanup"]) for d in model["deletions"]]
    assert ("delete", None, False) in dels and ("cleanup", None, True) in dels
    assert any(a == "delete" and rule and by for a, rule, by in dels), dels
    assert all(s.startswith("erased:") for d in model["deletions"] if d["action"] == "delete" for s in d["sessions"])
    # Per user: one, the owner; per session: by id while the key lives, by tag once erased.
    [user] = model["users"]
    assert user["uid"] == os.getuid() and user["owner"] and user["refused"] == 1
    named = {s["session"] for s in model["sessions"]}
    assert {str(ids["kept"]), str(ids["hostile"])} <= named
    assert sum(1 for s in model["sessions"] if s["erased"]) == 2
    # Activity: every record counted once, in buckets.
    series = model["activity"]["series"]
    assert sum(b["ok"] + b["refused"] + b["failed"] for b in series) == model["summary"]["records"]
    assert model["summary"]["by_outcome"]["denied"] == 1
    # Only what the records hold: no title, no content.
    for out in (data, render_html(model)):
        assert TITLE.encode() not in out and TEXT.encode() not in out and b"to delete" not in out


def test_the_report_is_an_audited_access(history: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, ids = history
    out = tmp_path / "report.html"
    with _open(path) as v:
        model, data = audit_report(v, format="html", out=out, user=str(os.getuid()), session=ids["kept"])
        assert data is None
        records, _ = v.audit_entries()
    assert out.stat().st_mode & 0o777 == 0o600
    last = records[-1]
    assert last["action"] == "audit.report" and last["verified"] is True
    assert last["detail"] == {
        "format": "html",
        "records": model["summary"]["records"],
        "file": True,
        "filters": ["user", "session"],
    }
    assert last["session"] == str(ids["kept"])
    with _open(path) as v, pytest.raises(errors.InvalidInput, match="exists"):
        audit_report(v, format="html", out=out)


def test_filters(history: tuple[Path, dict[str, Any]]) -> None:
    path, ids = history
    with _open(path) as v:
        everything, _ = audit_report(v)
        nobody, _ = audit_report(v, user="nobody-at-all")
        future, _ = audit_report(v, since=datetime.now(UTC) + timedelta(days=1))
        one, _ = audit_report(v, session=ids["kept"])
    assert everything["summary"]["records"] > one["summary"]["records"] > 0
    assert nobody["summary"]["records"] == 0 and nobody["users"] == []
    assert future["summary"]["records"] == 0 and future["activity"]["series"] == []
    assert all(str(ids["kept"]) in json.dumps(r) for r in one["records"])


def test_a_tampered_log_is_reported_at_the_top_with_its_first_bad_record(
    history: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = history
    log = path / "audit" / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"outcome":"ok"', b'"outcome":"ko"')
    log.write_bytes(b"".join(lines))
    with _open(path) as v:
        model, data = audit_report(v, format="html")
    ver = model["verification"]
    assert ver["ok"] is False and ver["first_bad"]["code"] == "bad-mac" and ver["first_bad"]["seq"] == 4
    assert ver["first_bad_record"]["seq"] == 4 and ver["first_bad_record"]["outcome"] == "ko"
    page = (data or b"").decode()
    banner = page.index('id="verification"')
    assert "does NOT verify" in page[banner : banner + 400] and page.index("<h1>") < banner < page.index("<h2")
    assert model["summary"]["unverified"] >= model["summary"]["records"] - 4
    assert any(r["kind"].startswith("unverified") for r in model["refusals"])


def test_the_page_escapes_what_records_hold() -> None:
    """Records are MACed, not trusted as markup: a user name or program of hostile text (another
    OS user can choose theirs) is escaped."""
    from sessionseal._audit import VerifyReport

    rec = {
        "seq": 1,
        "time": "2026-12-01T10:00:00Z",
        "action": HOSTILE,
        "outcome": "denied",
        "error": HOSTILE,
        "user": HOSTILE,
        "uid": 1001,
        "host": HOSTILE,
        "program": HOSTILE,
        "verified": True,
        "detail": {"x": HOSTILE},
        "subjects": [{"role": "session", "tag": HOSTILE, "erased": True}],
    }
    model = build([rec], VerifyReport(records=1, first_seq=1, last_seq=1), vault_id="v", owner_uid=0)
    page = render_html(model)
    parsed = _parse(page)
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert "img" not in [t for t, _ in parsed.tags]
    assert all(not k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert b"\x1b" not in page and "\u202e".encode() not in page
    assert model["refusals"][0]["other_user"] is True


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASS)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_cli_audit_report(history: tuple[Path, dict[str, Any]], run: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = run("audit", "report", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Wrote the audit report (html" in r.output and out.stat().st_mode & 0o777 == 0o600
    assert run("audit", "report", "--out", str(out)).exit_code == 8
    assert run("audit", "report", "--out", str(out), "--force", "--since", "1d", "--user", "root").exit_code == 0
    r = run("audit", "report", "--format", "json", "--out", "-", "--since", "7d")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["filters"]["since"] is not None
    assert run("audit", "report", "--out", "-", "--since", "soon").exit_code == 8


@pytest.mark.parametrize(
    ("outcome", "error", "kind"),
    [
        ("denied", "WrongPassphrase", "wrong passphrase"),
        ("denied", "KeyUnavailable", "keychain locked or unavailable"),
        ("denied", "KeyNotFound", "keychain without this vault's key"),
        ("denied", "UnsafePermissions", "refused: permissions (another user, a link, a loose mode)"),
        ("error", "IntegrityError", "integrity error"),
        ("error", "VaultRolledBack", "integrity error (rolled back)"),
        ("error", "LockTimeout", "lock timeout"),
        ("error", "SessionNotFound", "failure (SessionNotFound)"),
        ("denied", None, "refused"),
    ],
)
def test_refusals_are_named_as_a_reviewer_would(outcome: str, error: str | None, kind: str) -> None:
    from sessionseal._audit_report import kind_of

    assert kind_of({"outcome": outcome, "error": error}) == kind
    # Every error class named is one of sessionseal's.
    assert error is None or hasattr(errors, error)
