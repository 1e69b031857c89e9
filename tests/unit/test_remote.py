"""``sessionseal remote add|list|remove`` (issue 26; docs/sync.md, docs/cli.md).

A remote is kept in the vault's encrypted config, never with a credential; ``remote add`` checks
it against a real S3 server (``rclone serve s3`` on 127.0.0.1) unless ``--no-check``; every
refusal is one line with its exit code (8: bad input, 19: the remote refused or cannot be
reached) and changes nothing; every operation is audited.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import Vault, _remote
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput
from tests._infra.s3server import S3Server, _free_port

Run = Callable[..., Result]


@pytest.fixture
def run(memory_keyring: object, vault_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(vault_path))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    # Nothing of the developer's AWS setup: no profile, no files, no instance metadata.
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _remotes(run: Run) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(run("remote", "list", "--json").stdout)["remotes"]
    return listed


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


# -- the URL and the fields, as the spec allows them ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix", "key"),
    [
        ("s3://my-bucket", "my-bucket", "", "d/x"),
        ("s3://my-bucket/", "my-bucket", "", "d/x"),
        ("s3://my.bucket/team/vaults", "my.bucket", "team/vaults", "team/vaults/d/x"),
        ("s3://abc/a/b/", "abc", "a/b", "a/b/d/x"),
        ("s3://abc/It's(ok)!*_-.x", "abc", "It's(ok)!*_-.x", "It's(ok)!*_-.x/d/x"),
    ],
)
def test_remote_urls_that_parse(url: str, bucket: str, prefix: str, key: str) -> None:
    parsed = _remote.parse_url(url)
    assert (parsed.bucket, parsed.prefix, parsed.key("d", "x")) == (bucket, prefix, key)
    assert _remote.parse_url(str(parsed)) == parsed


@pytest.mark.parametrize(
    "url",
    [
        "my-bucket",
        "https://my-bucket/x",
        "s3://",
        "s3://ab",
        "s3://My-Bucket",
        "s3://-bucket",
        "s3://bucket-",
        "s3://bu..cket",
        "s3://192.168.1.10",
        "s3://" + "b" * 64,
        "s3://bucket//x",
        "s3://bucket/a//b",
        "s3://bucket/../x",
        "s3://bucket/a/./b",
        "s3://bucket/a b",
        "s3://bucket/a\nb",
        "s3://bucket/a?x=1",
        "s3://bucket/ü",
        "s3://bucket/" + "a" * 513,
    ],
)
def test_remote_urls_that_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _remote.parse_url(url)
    assert url not in str(refused.value) or len(url) < 6


@pytest.mark.parametrize(
    "endpoint",
    [
        "ftp://host",
        "http://",
        "host:9000",
        "http://user:secret@host",
        "http://secret@host",
        "http://host/?token=secret",
        "http://host/#secret",
        "http://host:99999",
        "http://ho st",
    ],
)
def test_endpoints_that_are_refused_without_echo(endpoint: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _remote.check_endpoint(endpoint)
    assert "secret" not in str(refused.value)


def test_endpoints_that_are_kept() -> None:
    assert _remote.check_endpoint("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert _remote.check_endpoint("https://s3.eu-west-1.wasabisys.com") == "https://s3.eu-west-1.wasabisys.com"
    assert _remote.check_endpoint("https://gw.example/s3") == "https://gw.example/s3"


def test_the_device_prefix_and_probe_key_are_the_specs() -> None:
    url = _remote.parse_url("s3://bkt/team")
    device = uuid.UUID(int=0xABC)
    assert _remote.device_prefix(url, device) == f"team/d/{device.hex}/"
    assert _remote.probe_key(url, device, bytes(16)) == f"team/d/{device.hex}/probe/{'00' * 16}"


# -- the commands -------------------------------------------------------------------------------


def test_add_checks_the_remote_keeps_it_without_credentials_and_list_says_where_they_come_from(
    run: Run, server_env: S3Server, vault_path: Path
) -> None:
    url = f"s3://{server_env.bucket}/team/me"
    added = run("remote", "add", "team", url, "--endpoint", server_env.endpoint + "/", "--json")
    assert added.exit_code == 0, added.output
    doc = json.loads(added.stdout)
    assert doc["checked"] is True and doc["endpoint"] == server_env.endpoint and doc["url"] == url
    device = uuid.UUID(doc["device"])
    # The probe was removed: the bucket holds nothing.
    assert _files(server_env.root) == []
    [listed] = _remotes(run)
    assert listed["name"] == "team" and listed["device"] == str(device)
    assert listed["credentials"] == "default AWS chain" and listed["profile"] is None
    assert "never stored" in json.loads(run("remote", "list", "--json").stdout)["credentials"]
    text = run("remote", "list")
    assert text.exit_code == 0 and text.stdout.startswith(f"team\t{url} at {server_env.endpoint}")
    assert "never stored in the vault" in text.stderr
    # No credential anywhere in the vault, config included.
    for secret in (server_env.access_key, server_env.secret_key):
        assert all(secret.encode() not in p.read_bytes() for p in _files(vault_path))
        assert secret not in run("config", "show").stdout
    # The config shows the remote; a remote is kept there, encrypted.
    assert json.loads(run("config", "show").stdout)["remotes"][0]["name"] == "team"
    assert all(b"team/me" not in p.read_bytes() for p in _files(vault_path))


def test_profile_credentials_are_used_and_only_the_profile_name_is_kept(
    run: Run, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "credentials"
    shared.write_text(
        f"[sync]\naws_access_key_id = {s3_server.access_key}\naws_secret_access_key = {s3_server.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    added = run("remote", "add", "p", f"s3://{s3_server.bucket}", "--endpoint", s3_server.endpoint, "--profile", "sync")
    assert added.exit_code == 0, added.output
    [listed] = _remotes(run)
    assert listed["profile"] == "sync" and listed["credentials"] == "profile sync"
    missing = run(
        "remote", "add", "q", f"s3://{s3_server.bucket}", "--endpoint", s3_server.endpoint, "--profile", "nope"
    )
    assert missing.exit_code == 19 and "profile 'nope'" in missing.stderr


def _one_line(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sessionseal: error: ")
    return lines[0]


def test_a_remote_that_refuses_or_cannot_be_reached_is_exit_19_and_not_kept(
    run: Run, server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"s3://{server_env.bucket}/x"
    nobucket = run("remote", "add", "a", "s3://no-such-bucket/x", "--endpoint", server_env.endpoint)
    assert "does not exist" in _one_line(nobucket, 19)
    dead = f"http://127.0.0.1:{_free_port()}"
    assert "cannot reach 127.0.0.1" in _one_line(run("remote", "add", "a", bucket, "--endpoint", dead), 19)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "W" * 40)
    refused = _one_line(run("remote", "add", "a", bucket, "--endpoint", server_env.endpoint), 19)
    assert "refused the credentials" in refused and "W" * 40 not in refused
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert "no AWS credentials" in _one_line(run("remote", "add", "a", bucket, "--endpoint", server_env.endpoint), 19)
    assert _remotes(run) == []
    # --no-check keeps it without a word to the server.
    assert run("remote", "add", "a", bucket, "--endpoint", dead, "--no-check").exit_code == 0
    assert [r["name"] for r in _remotes(run)] == ["a"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("Bad Name", "s3://bucket"), "remote name"),
        (("ok", "s3://Bad_Bucket"), "bucket"),
        (("ok", "s3://bucket/../up"), "prefix"),
        (("ok", "s3://bucket", "--endpoint", "http://AKIAXX:hunter2secret@host"), "user information"),
        (("ok", "s3://bucket", "--region", "US EAST"), "region"),
        (("ok", "s3://bucket", "--profile", "a b"), "profile"),
    ],
)
def test_bad_input_is_exit_8_names_the_field_and_never_echoes(run: Run, args: tuple[str, ...], says: str) -> None:
    line = _one_line(run("remote", "add", *args, "--no-check"), 8)
    assert says in line and "hunter2secret" not in line and "Bad_Bucket" not in line
    assert _remotes(run) == []


def test_names_are_unique_and_remove_forgets_only_the_config(run: Run, server_env: S3Server) -> None:
    url = f"s3://{server_env.bucket}/x"
    assert run("remote", "add", "one", url, "--endpoint", server_env.endpoint, "--no-check").exit_code == 0
    assert "exists" in _one_line(run("remote", "add", "one", url, "--no-check"), 8)
    assert "no remote of that name" in _one_line(run("remote", "remove", "two"), 8)
    server_env_file = server_env.root / server_env.bucket / "x" / "keep"
    server_env_file.parent.mkdir(parents=True)
    server_env_file.write_bytes(b"kept")
    removed = run("remote", "remove", "one", "--json")
    assert removed.exit_code == 0 and json.loads(removed.stdout)["removed"]["name"] == "one"
    assert _remotes(run) == [] and server_env_file.read_bytes() == b"kept"


def test_every_operation_is_audited_without_names(run: Run, server_env: S3Server) -> None:
    url = f"s3://{server_env.bucket}/secret-project"
    run("remote", "add", "acme-corp", url, "--endpoint", server_env.endpoint)
    run("remote", "add", "bad name", url, "--no-check")
    run("remote", "list")
    run("remote", "remove", "acme-corp")
    shown = run("audit", "show", "--action", "remote.*", "--json")
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("remote.add", "ok"),
        ("remote.add", "error"),
        ("remote.list", "ok"),
        ("remote.remove", "ok"),
    ]
    assert records[0]["detail"] == {"remotes": 1, "checked": True, "endpoint": True}
    assert "acme-corp" not in shown.stdout and "secret-project" not in shown.stdout
    assert run("audit", "verify").exit_code == 0


def test_concurrent_adds_both_stay(memory_keyring: object, vault_path: Path) -> None:
    # Each add is a read-modify-write of the config under the vault lock: none is lost.
    Vault.init(vault_path).close()
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            with Vault.open(vault_path) as v:
                for i in range(5):
                    v.remotes.add(f"{name}{i}", "s3://bucket/x", check=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Vault.open(vault_path) as v:
        assert sorted(r.name for r in v.remotes.list()) == sorted(f"{n}{i}" for n in "ab" for i in range(5))


def test_without_the_s3_extra_add_is_exit_18_and_keeps_nothing(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import boto3" raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "boto3", None)
    line = _one_line(run("remote", "add", "a", "s3://bucket/x", "--endpoint", "http://127.0.0.1:9"), 18)
    assert "pip install 'sessionseal[s3]'" in line
    assert _remotes(run) == []
    # --no-check needs no client: the remote is kept, and list and remove work without boto3.
    assert run("remote", "add", "a", "s3://bucket/x", "--no-check").exit_code == 0
    assert run("remote", "remove", "a").exit_code == 0


def test_a_config_without_remotes_is_stored_as_before_them(memory_keyring: object, vault_path: Path) -> None:
    # An older sessionseal refuses a config with a field it does not know: only a vault that
    # has a remote carries the field, and removing the last one takes it away again.
    from sessionseal import _configfile

    def body(v: Vault) -> bytes:
        raw, _ = _configfile.read_config_body(v.parts.ctx.root, v.vault_id, v.parts.settings.config_key())
        assert raw is not None
        return raw

    with Vault.init(vault_path) as v:
        v.set_config({"sanitizer": {"literals": ["acme-internal"]}})
        assert b'"remotes"' not in body(v)
        v.remotes.add("r", "s3://bucket/x", check=False)
        assert b'"remotes"' in body(v)
        v.remotes.remove("r")
        assert b'"remotes"' not in body(v)
        assert v.config().sanitizer.literals == ["acme-internal"] and v.config().remotes == []
