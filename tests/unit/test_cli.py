"""The CLI: commands, --json output, one-line errors and their distinct exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import errors
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring
from tests.unit.conftest import vault_bytes

MINIMAL = '{"title": "t", "messages": [{"role": "user", "content": "hello"}]}'


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_init_save_show_list_delete_info(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("init", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["key_provider"] == "keychain"
    r = run("save", "-", "--tag", "x", input=MINIMAL)
    assert r.exit_code == 0
    sid = r.output.strip()
    shown = json.loads(run("show", sid, "--json").output)
    assert shown["id"] == sid and shown["title"] == "t" and shown["tags"] == ["x"]
    assert "hello" in run("show", sid).output
    listed = json.loads(run("list", "--json").output)
    assert [s["id"] for s in listed] == [sid]
    assert sid in run("list").output
    info = json.loads(run("info", "--json").output)
    assert info["vault_path"] == str(tmp_path / "vault")
    assert info["key_provider"] == "keychain"
    assert info["session_count"] == 1
    assert run("delete", sid, "--yes").exit_code == 0
    assert json.loads(run("list", "--json").output) == []


def test_rekey_rotates_and_every_session_still_shows(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    sid = run("save", input=MINIMAL).output.strip()
    r = run("rekey", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["epoch"] == 2
    assert run("rekey").exit_code == 0
    assert json.loads(run("show", sid, "--json").output)["title"] == "t"
    actions = [json.loads(line)["action"] for line in run("audit", "show", "--json").output.splitlines()]
    assert actions.count("rekey") == 2


def test_show_json_round_trips_through_save(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    sid = run("save", input=MINIMAL).output.strip()
    first = run("show", sid, "--json").output
    again = run("save", input=first).output.strip()
    assert again == sid
    second = json.loads(run("show", sid, "--json").output)
    first_doc = json.loads(first)
    for doc in (first_doc, second):
        doc.pop("updated_at")
    assert first_doc == second


def test_save_from_file_with_title(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    f = tmp_path / "s.json"
    f.write_text(MINIMAL)
    out = json.loads(run("save", str(f), "--title", "renamed", "--json").output)
    assert json.loads(run("show", out["id"], "--json").output)["title"] == "renamed"


def test_secrets_are_redacted_and_counted(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    token = "ghp_" + "Ab3" * 12
    doc = json.dumps({"messages": [{"role": "user", "content": f"my token is {token}"}]})
    out = json.loads(run("save", "--json", input=doc).output)
    [(rule, count)] = out["redactions"].items()
    assert "github" in rule and count == 1
    shown = run("show", out["id"], "--json").output
    assert token not in shown and f"[REDACTED:{rule}:" in shown
    assert token.encode() not in vault_bytes(tmp_path / "vault")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"{not json", id="malformed"),
        pytest.param(b"\x00\x01\xfe\xff" * 100, id="binary"),
        pytest.param(b'["a list"]', id="not-an-object"),
        pytest.param(b'{"messages": [{"content": "x"}]}', id="schema-violation"),
        pytest.param(b"   ", id="empty"),
    ],
)
def test_bad_input_exit_8_and_vault_untouched(run, tmp_path: Path, data: bytes) -> None:  # type: ignore[no-untyped-def]
    run("init")
    run("save", input=MINIMAL)
    before = vault_bytes(tmp_path / "vault")
    r = run("save", input=data)
    assert r.exit_code == errors.InvalidInput.exit_code
    assert r.output.count("\n") == 1 and r.output.startswith("sessionseal: error:")
    assert vault_bytes(tmp_path / "vault") == before


def test_huge_input_is_refused_without_reading_it_all(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from sessionseal import Vault

    run("init")
    monkeypatch.setattr(Vault, "MAX_SESSION_BYTES", 1000)
    r = run("save", input="{" + " " * 5000 + "}")
    assert r.exit_code == errors.InvalidInput.exit_code
    assert "MiB" in r.output


def test_exit_codes(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("list").exit_code == errors.VaultNotFound.exit_code
    run("init")
    assert run("init").exit_code == errors.VaultExists.exit_code
    assert run("show", "00000000-0000-0000-0000-000000000000").exit_code == errors.SessionNotFound.exit_code
    assert run("show", "nope").exit_code == errors.InvalidInput.exit_code
    assert run("delete", "00000000-0000-0000-0000-000000000000").exit_code == 2  # no --yes without a terminal
    (tmp_path / "vault").chmod(0o755)
    assert run("list").exit_code == errors.UnsafePermissions.exit_code


def test_exit_codes_are_distinct() -> None:
    classes = [
        errors.VaultNotFound,
        errors.VaultExists,
        errors.UnsafePermissions,
        errors.LockTimeout,
        errors.SessionNotFound,
        errors.IntegrityError,
        errors.UnsupportedVersion,
        errors.KeyStoreError,
        errors.WrongPassphrase,
        errors.InvalidInput,
        errors.StorageError,
    ]
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes)
    assert not {0, 1, 2} & set(codes)


def test_schema_lists_the_session_fields(run) -> None:  # type: ignore[no-untyped-def]
    schema = json.loads(run("schema").output)
    for field in (
        "id",
        "title",
        "tags",
        "status",
        "messages",
        "environment",
        "processes",
        "connections",
        "links",
    ):
        assert field in schema["properties"]


def test_integrity_failure_exit_code(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    sid = run("save", input=MINIMAL).output.strip()
    [f] = (tmp_path / "vault" / "sessions").iterdir()
    data = bytearray(f.read_bytes())
    data[-3] ^= 1
    f.write_bytes(bytes(data))
    r = run("show", sid)
    assert r.exit_code == errors.IntegrityError.exit_code
    assert "Traceback" not in r.output


def test_passphrase_vault_via_env_and_file(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    pf = tmp_path / "pass"
    pf.write_text("s3cret phrase\n")
    assert run("--passphrase-file", str(pf), "init", "--key-provider", "passphrase").exit_code == 0
    sid = run("--passphrase-file", str(pf), "save", input=MINIMAL).output.strip()
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", "s3cret phrase")
    assert run("show", sid, "--json").exit_code == 0
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", "wrong")
    assert run("show", sid).exit_code == errors.WrongPassphrase.exit_code
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE")
    r = run("show", sid)
    assert r.exit_code == errors.KeyStoreError.exit_code
    assert "SESSIONSEAL_PASSPHRASE" in r.output


def test_config_show_and_set(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    assert json.loads(run("config", "show").output)["sanitizer"]["literals"] == []
    doc = {"sanitizer": {"literals": ["acme-customer-4471"], "rules": [], "allowlist": []}}
    assert run("config", "set", input=json.dumps(doc)).exit_code == 0
    assert json.loads(run("config", "show").output)["sanitizer"]["literals"] == ["acme-customer-4471"]
    r = run("config", "set", input='{"sanitizer": {"rules": [{"id": "BAD ID", "regex": "x"}]}}')
    assert r.exit_code == errors.InvalidInput.exit_code
