"""The CLI: commands, --json output, one-line errors and their distinct exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import errors
from sessionseal.cli import cli
from tests._infra.erasure import delete_cut_short
from tests.memkeyring import MemoryKeyring
from tests.unit.conftest import vault_bytes

MINIMAL = '{"title": "t", "messages": [{"role": "user", "content": "hello"}]}'


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_init_save_show_list_delete_info(run: Callable[..., Result], tmp_path: Path) -> None:
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


def test_rekey_rotates_and_every_session_still_shows(run: Callable[..., Result]) -> None:
    run("init")
    sid = run("save", input=MINIMAL).output.strip()
    r = run("rekey", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["epoch"] == 2
    assert run("rekey").exit_code == 0
    assert json.loads(run("show", sid, "--json").output)["title"] == "t"
    actions = [json.loads(line)["action"] for line in run("audit", "show", "--json").output.splitlines()]
    assert actions.count("rekey") == 2


def test_show_json_round_trips_through_save(run: Callable[..., Result]) -> None:
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


def test_save_from_file_with_title(run: Callable[..., Result], tmp_path: Path) -> None:
    run("init")
    f = tmp_path / "s.json"
    f.write_text(MINIMAL)
    out = json.loads(run("save", str(f), "--title", "renamed", "--json").output)
    assert json.loads(run("show", out["id"], "--json").output)["title"] == "renamed"


def test_secrets_are_redacted_and_counted(run: Callable[..., Result], tmp_path: Path) -> None:
    run("init")
    token = "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"  # random enough for a fingerprint
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
def test_bad_input_exit_8_and_vault_untouched(run: Callable[..., Result], tmp_path: Path, data: bytes) -> None:
    run("init")
    run("save", input=MINIMAL)
    before = vault_bytes(tmp_path / "vault")
    r = run("save", input=data)
    assert r.exit_code == errors.InvalidInput.exit_code
    assert r.output.count("\n") == 1 and r.output.startswith("sessionseal: error:")
    assert vault_bytes(tmp_path / "vault") == before


def test_huge_input_is_refused_without_reading_it_all(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import Vault

    run("init")
    monkeypatch.setattr(Vault, "MAX_SESSION_BYTES", 1000)
    r = run("save", input="{" + " " * 5000 + "}")
    assert r.exit_code == errors.InvalidInput.exit_code
    assert "MiB" in r.output


def test_exit_codes(run: Callable[..., Result], tmp_path: Path) -> None:
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
        errors.VaultRolledBack,
        errors.KeyStoreError,
        errors.WrongPassphrase,
        errors.InvalidInput,
        errors.StorageError,
    ]
    codes = [c.exit_code for c in classes]
    assert len(set(codes)) == len(codes)
    assert not {0, 1, 2} & set(codes)


def test_schema_lists_the_session_fields(run: Callable[..., Result]) -> None:
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


def test_integrity_failure_exit_code(run: Callable[..., Result], tmp_path: Path) -> None:
    run("init")
    sid = run("save", input=MINIMAL).output.strip()
    [f] = (tmp_path / "vault" / "sessions").iterdir()
    data = bytearray(f.read_bytes())
    data[-3] ^= 1
    f.write_bytes(bytes(data))
    r = run("show", sid)
    assert r.exit_code == errors.IntegrityError.exit_code
    assert "Traceback" not in r.output


def test_passphrase_vault_via_env_and_file(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pf = tmp_path / "pass"
    pf.write_text("s3cret phrase\n")
    pf.chmod(0o600)  # a passphrase file others can read is refused (tests/unit/test_passphrase.py)
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


def test_config_show_and_set(run: Callable[..., Result], tmp_path: Path) -> None:
    run("init")
    assert json.loads(run("config", "show").output)["sanitizer"]["literals"] == []
    doc = {"sanitizer": {"literals": ["acme-customer-4471"], "rules": [], "allowlist": []}}
    assert run("config", "set", input=json.dumps(doc)).exit_code == 0
    assert json.loads(run("config", "show").output)["sanitizer"]["literals"] == ["acme-customer-4471"]
    r = run("config", "set", input='{"sanitizer": {"rules": [{"id": "BAD ID", "regex": "x"}]}}')
    assert r.exit_code == errors.InvalidInput.exit_code


def _three(run: Callable[..., Result]) -> list[str]:
    run("init")
    done = '{"status": "completed", "messages": [{"role": "user", "content": "hello"}]}'
    return [run("save", "-", "--title", f"s{i}", input=done).output.strip() for i in range(3)]


def test_cleanup_refuses_without_a_terminal_and_without_yes(run: Callable[..., Result], tmp_path: Path) -> None:
    ids = _three(run)
    before = vault_bytes(tmp_path / "vault")
    r = run("cleanup", "--keep-last", "1", "--min-age", "0")
    assert r.exit_code == 2 and "refusing to remove 2 session(s) without confirmation; pass --yes" in r.output
    assert vault_bytes(tmp_path / "vault") == before
    assert len(json.loads(run("list", "--json").output)) == len(ids)


def test_cleanup_dry_run_json_then_yes(run: Callable[..., Result], tmp_path: Path) -> None:
    ids = _three(run)
    before = vault_bytes(tmp_path / "vault")
    r = run("cleanup", "--keep-last", "1", "--min-age", "0", "--dry-run", "--json", "--show-kept")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["dry_run"] is True and doc["policy_source"] == "flags" and doc["policy"]["keep_last"] == 1
    assert {d["id"] for d in doc["remove"]} == set(ids[:2])
    assert {d["rule"] for d in doc["remove"]} == {"keep-last"}
    assert doc["kept_by_rule"] == {"keep-last": 1} and [d["id"] for d in doc["keep"]] == [ids[2]]
    assert vault_bytes(tmp_path / "vault") == before
    r = run("cleanup", "--keep-last", "1", "--min-age", "0", "--yes", "--json")
    assert r.exit_code == 0, r.output
    done = json.loads(r.output)
    assert set(done["removed"]) == set(ids[:2]) and done["epoch"] == 2 and done["bytes_freed"] > 0
    assert [s["id"] for s in json.loads(run("list", "--json").output)] == [ids[2]]


def test_cleanup_table_names_the_rule(run: Callable[..., Result]) -> None:
    _three(run)
    r = run("cleanup", "--keep-last", "1", "--min-age", "0", "--yes")
    assert r.exit_code == 0, r.output
    assert "Policy from flags: keep-last 1" in r.output
    assert "not kept by keep-last 1" in r.output and "Removed 2 session(s)" in r.output
    r = run("cleanup", "--keep-last", "1", "--min-age", "0")
    assert r.exit_code == 0 and "Nothing to remove" in r.output


def test_cleanup_uses_the_config_and_refuses_without_a_policy(run: Callable[..., Result], tmp_path: Path) -> None:
    _three(run)
    r = run("cleanup", "--dry-run")
    assert r.exit_code == 8 and "no retention policy" in r.output
    r = run("cleanup", "--max-age", "soon")
    assert r.exit_code == 8 and "max_age" in r.output
    (tmp_path / "cfg.json").write_text('{"retention": {"keep_last": 0, "min_age": "0"}}')
    assert run("config", "set", str(tmp_path / "cfg.json")).exit_code == 0
    doc = json.loads(run("cleanup", "--dry-run", "--json").output)
    assert doc["policy_source"] == "config" and len(doc["remove"]) == 3
    # --min-age alone adjusts the config's rules.
    doc = json.loads(run("cleanup", "--dry-run", "--json", "--min-age", "1d").output)
    assert doc["policy_source"] == "config" and doc["remove"] == []


def test_pin_archive_list_and_stats(run: Callable[..., Result]) -> None:
    ids = _three(run)
    assert run("pin", ids[0]).exit_code == 0
    r = run("archive", ids[1], ids[1], "--json")
    assert json.loads(r.output) == [{"id": ids[1], "changed": True}, {"id": ids[1], "changed": False}]
    assert {s["id"] for s in json.loads(run("list", "--json").output)} == {ids[0], ids[2]}
    assert [s["id"] for s in json.loads(run("list", "--archived", "--json").output)] == [ids[1]]
    assert len(json.loads(run("list", "--all", "--json").output)) == 3
    doc = json.loads(run("cleanup", "--keep-last", "0", "--min-age", "0", "--dry-run", "--json").output)
    assert {d["id"] for d in doc["remove"]} == {ids[1], ids[2]}  # archived ones included; pinned never
    st = json.loads(run("stats", "--json").output)
    assert st["sessions"] == 3 and st["pinned"] == 1 and st["by_status"]["archived"] == 1
    assert st["stored_bytes"] > 0 and st["compression_ratio"] is not None
    assert "sessions" in run("stats").output
    assert run("unarchive", ids[1]).exit_code == 0 and run("unpin", ids[0]).exit_code == 0
    assert run("pin", "3f2c8a4e-0000-0000-0000-000000000000").exit_code == 3


def test_cleanup_sweeps_leftovers_without_asking_when_nothing_else_goes(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    import uuid

    from sessionseal import Vault

    ids = _three(run)
    # A delete cut short after its rotation: the key is gone, the file stays, its tomb recorded.
    with Vault.open(tmp_path / "vault") as v:
        delete_cut_short(v, uuid.UUID(ids[0]))
    assert len(list((tmp_path / "vault" / "sessions").iterdir())) == 3
    r = run("cleanup", "--keep-last", "5", "--min-age", "0", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["orphans_removed"] == 1
    assert len(list((tmp_path / "vault" / "sessions").iterdir())) == 2


def test_cleanup_and_verify_report_a_keyless_file_and_keep_it(run: Callable[..., Result], tmp_path: Path) -> None:
    table = tmp_path / "vault" / "keytable.sst"
    _three(run)
    old = table.read_bytes()  # a backup of the key table from before the next save
    before = set((tmp_path / "vault" / "sessions").iterdir())
    done = '{"status": "completed", "messages": [{"role": "user", "content": "newer"}]}'
    assert run("save", "-", "--title", "newer", input=done).exit_code == 0
    (newer,) = set((tmp_path / "vault" / "sessions").iterdir()) - before
    table.write_bytes(old)
    r = run("cleanup", "--keep-last", "5", "--min-age", "0", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["keyless"] == 1 and out["orphans"] == 0 and any("missing-key" in w for w in out["warnings"])
    r = run("verify", "--repair", "--json")
    assert r.exit_code == 15 and [p["code"] for p in json.loads(r.output)["problems"]] == ["missing-key"]
    assert newer.exists()
