"""``sessionseal sync --push`` against a real S3 server (``rclone serve s3`` on 127.0.0.1, and moto
for the tests marked ``both_servers``; issue 26, docs/sync.md "Push"): what a first push writes and that another device can check all of
it; a push after one appended turn sends a segment of that turn only (bytes counted on the
server, never timed); metadata edits as ``session.meta``; nothing twice; a dry run writes
nothing; a second device that is not enrolled is refused; every push audited without names."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, _container, _remote, _s3
from sessionseal._fs import lock
from sessionseal._vault import _sync
from sessionseal.cli import cli
from sessionseal.errors import LockTimeout, RemoteError
from sessionseal.models import Session
from tests._infra.s3server import S3Server, both_servers
from tests._infra.synclog import Pushed, read_pushed, server_files

PREFIX = "team/me"


@pytest.fixture
def vault(vault_path: Path, provider: KeychainProvider, server_env: S3Server) -> Iterator[Vault]:
    v = Vault.init(vault_path, key_provider=provider)
    v.remotes.add("cloud", f"s3://{server_env.bucket}/{PREFIX}", endpoint=server_env.endpoint)
    try:
        yield v
    finally:
        v.close()


def _session(title: str, text: str) -> Session:
    return Session.model_validate({"title": title, "messages": [{"role": "user", "content": text}]})


def _read(v: Vault, server: S3Server) -> Pushed:
    ident = v.remotes.devices.identity("cloud")
    return read_pushed(server, PREFIX, ident.device_id, ident.keys)


@both_servers
def test_a_first_push_writes_epoch_1_and_every_session_and_another_device_can_check_it(
    vault: Vault, server_env: S3Server
) -> None:
    ids = [vault.save(_session(f"private title {i}", f"hello {i} " * 50)) for i in range(3)]
    result = vault.remotes.push()
    assert result.first and result.put == 3 and result.appended == 0 and result.entries == 4
    assert result.seq == 4 and result.epoch == 1
    files = server_files(server_env)
    assert result.bytes == sum(files.values())  # every byte PUT is on the server, once
    pushed = _read(vault, server_env)
    assert pushed.kinds() == ["epoch", "session.put", "session.put", "session.put"]
    by_id = {e["session"]: e for e in pushed.entries[1:]}
    assert set(by_id) == {str(s) for s in ids}
    for sid in ids:
        put = by_id[str(sid)]
        assert pushed.object(put["object"]) == vault.load_json(sid)
        assert put["meta"]["title"] == json.loads(vault.load_json(sid))["title"] and put["events"] == 0
    assert pushed.epoch_key == vault.remotes.devices.epoch_key("cloud", 1)
    # Nothing the bucket's operator can read: no title, no id, no text.
    raw = b"".join(server_env.read(k) for k in files)
    for clear in (b"hello 1", b"private title", str(ids[0]).encode(), ids[0].hex.encode()):
        assert clear not in raw
    # The vault's new files (sync/, locks/sync.lock) are its own: verify finds nothing.
    assert vault.verify().problems == []
    # Nothing changed: nothing is sent.
    again = vault.remotes.push()
    assert (again.entries, again.objects, again.bytes, again.first) == (0, 0, 0, False)
    assert server_files(server_env) == files


def test_a_push_after_one_appended_turn_sends_that_turn_only(vault: Vault, server_env: S3Server) -> None:
    big = os.urandom(3 << 20).hex()  # 6 MB of text that does not compress much below 3 MB
    sid = vault.save(_session("big", big))
    first = vault.remotes.push()
    before = server_files(server_env)
    assert first.bytes > 3 << 20
    turn = [{"role": "assistant", "content": "one more turn " * 20}]
    vault.append(sid, turn)
    second = vault.remotes.push()
    new = {k: n for k, n in server_files(server_env).items() if k not in before}
    # A segment, its entry and a head: a few kB, not the 3 MB session again.
    assert second.appended == 1 and second.put == 0 and second.entries == 1 and second.objects == 1
    assert second.bytes == sum(new.values()) < 4096
    assert len(new) == 3 and all(k.split("/")[-2] in {"o", "log", "head"} for k in new)
    pushed = _read(vault, server_env)
    append = pushed.entries[-1]
    assert append["kind"] == "session.append" and append["session"] == str(sid)
    assert append["base"] == 0 and append["events"] >= 1
    lines = [orjson.loads(line) for line in pushed.object(append["object"]).splitlines()]
    assert len(lines) == append["events"] - append["base"]
    assert lines[0] == {"op": "message", "value": json.loads(vault.load_json(sid))["messages"][-1]}
    # The next append extends the count the first one ended at.
    vault.append(sid, turn)
    vault.remotes.push()
    third = _read(vault, server_env).entries[-1]
    assert third["kind"] == "session.append" and third["base"] == append["events"]


def test_a_push_after_appends_reads_only_what_the_session_grew_by(vault: Vault, server_env: S3Server) -> None:
    sid = vault.save(_session("grown", "first words " * 2000))
    vault.remotes.push()
    vault.append(sid, [{"role": "assistant", "content": "a new turn"}])
    # Damage the session's first version (its BODY frame) on disk: a push that decrypted the
    # whole session would fail; one that reads the appended bytes only does not notice.
    [path] = (vault.path / "sessions").iterdir()
    data = bytearray(path.read_bytes())
    data[_container.HEADER_SIZE + 400] ^= 1
    path.write_bytes(bytes(data))
    assert vault.remotes.push().appended == 1
    last = _read(vault, server_env).entries[-1]
    assert last["kind"] == "session.append" and last["session"] == str(sid)


@both_servers
def test_metadata_edits_are_session_meta_entries_and_a_rewrite_is_a_put(vault: Vault, server_env: S3Server) -> None:
    sid = vault.save(_session("before", "text"))
    vault.remotes.push()
    vault.rename(sid, "after")
    vault.tag(sid, add=["blue"])
    result = vault.remotes.push()
    assert (result.meta, result.put, result.appended) == (2, 0, 0)
    metas = [e for e in _read(vault, server_env).entries if e["kind"] == "session.meta"]
    assert [(e["field"], e["value"]) for e in metas] == [("title", "after"), ("tags", ["blue"])]
    assert metas[0]["hlc"] < metas[1]["hlc"]  # the writer's clock only rises
    vault.save(Session.model_validate({**json.loads(vault.load_json(sid)), "title": "saved whole"}))
    assert vault.remotes.push().put == 1


def test_a_dry_run_writes_nothing_here_or_there(vault: Vault, server_env: S3Server, vault_path: Path) -> None:
    vault.save(_session("one", "text"))
    state = vault.parts.keys.state(fresh=True).remote_keys
    dry = vault.remotes.push(dry_run=True)
    assert dry.dry_run and dry.first and dry.put == 1 and dry.entries == 2 and dry.bytes > 0
    assert server_files(server_env) == {}
    assert not (vault_path / "sync").exists()
    assert vault.parts.keys.state(fresh=True).remote_keys == state  # no key made either
    real = vault.remotes.push()
    assert (real.put, real.entries) == (1, 2)
    vault.save(_session("two", "text"))
    dry = vault.remotes.push(dry_run=True)
    files = server_files(server_env)
    assert (dry.put, dry.entries, dry.first) == (1, 1, False)
    assert server_files(server_env) == files


@both_servers
def test_another_device_not_enrolled_is_refused_and_a_cut_log_is_seen(
    vault: Vault, server_env: S3Server, tmp_path: Path, provider: KeychainProvider
) -> None:
    vault.save(_session("one", "text"))
    vault.remotes.push()
    with Vault.init(tmp_path / "other", key_provider=provider) as other:
        other.remotes.add("cloud", f"s3://{server_env.bucket}/{PREFIX}", endpoint=server_env.endpoint)
        other.save(_session("two", "text"))
        with pytest.raises(RemoteError, match="enrol it"):
            other.remotes.push()
    # The bucket loses this device's last entry: the next push refuses, sends nothing.
    device = vault.remotes.devices.identity("cloud").device_id
    url = _remote.parse_url(f"s3://{server_env.bucket}/{PREFIX}")
    store = _s3.open_store(url, endpoint=server_env.endpoint, profile=None, region=None)
    last = max(k for k, _ in store.list(_remote.device_prefix(url, device) + "log/"))
    store.delete(last)  # through the server, as its operator would (rclone caches its listings)
    vault.save(_session("three", "text"))
    files = server_files(server_env)
    with pytest.raises(RemoteError, match="missing from the remote"):
        vault.remotes.push()
    assert server_files(server_env) == files


@both_servers
def test_a_vault_sync_state_put_back_older_is_refused(vault: Vault, server_env: S3Server, vault_path: Path) -> None:
    vault.save(_session("one", "text"))
    vault.remotes.push()
    [cursor] = (vault_path / "sync").iterdir()
    old = cursor.read_bytes()
    vault.save(_session("two", "text"))
    vault.remotes.push()
    cursor.write_bytes(old)  # a backup of the vault put back: the remote is ahead of it
    vault.save(_session("three", "text"))
    with pytest.raises(RemoteError, match="ahead of the vault's record"):
        vault.remotes.push()
    cursor.unlink()  # and no record at all: the same
    with pytest.raises(RemoteError, match="ahead of the vault's record"):
        vault.remotes.push()


@both_servers
def test_an_enrolled_device_pushes_its_own_log_beside_the_first_concurrently(
    vault: Vault, server_env: S3Server, tmp_path: Path, provider: KeychainProvider
) -> None:
    vault.save(_session("on the first", "text"))
    vault.remotes.push()
    rid = vault.remotes.devices.identity("cloud").remote_id
    key = vault.remotes.devices.epoch_key("cloud", 1)
    with Vault.init(tmp_path / "second", key_provider=provider) as second:
        second.remotes.add("cloud", f"s3://{server_env.bucket}/{PREFIX}", endpoint=server_env.endpoint)
        # What enrolment will do (docs/sync.md, step 4): the second device is given K_1.
        second.remotes.devices.add_epoch_key("cloud", 1, key, remote_id=rid)
        for i in range(6):
            vault.save(_session(f"first {i}", "text"))
            second.save(_session(f"second {i}", "text"))
        errors: list[BaseException] = []

        def push(v: Vault) -> None:
            try:
                v.remotes.push()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(v,)) for v in (vault, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        ident = second.remotes.devices.identity("cloud")
        theirs = read_pushed(server_env, PREFIX, ident.device_id, ident.keys, epoch_key=key)
        assert theirs.kinds() == ["session.put"] * 6 and theirs.remote == rid
        assert {theirs.object(e["object"]) for e in theirs.entries} == {second.load_json(s.id) for s in second.list()}
    mine = _read(vault, server_env)
    assert mine.kinds() == ["epoch", *["session.put"] * 7]


def test_progress_is_reported_per_batch_and_a_second_push_waits_for_the_first(
    vault: Vault, server_env: S3Server, vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sync, "BATCH_SESSIONS", 2)
    for i in range(5):
        vault.save(_session(f"s{i}", "text"))
    seen: list[tuple[int, int, int]] = []
    result = vault.remotes.push(progress=lambda done, total, nbytes: seen.append((done, total, nbytes)))
    assert [(d, t) for d, t, _ in seen] == [(2, 5), (4, 5), (5, 5)]
    assert seen[-1][2] == result.bytes and [n for _, _, n in seen] == sorted(n for _, _, n in seen)
    # One push at a time: while another process holds locks/sync.lock, a push waits, then gives up.
    vault.save(_session("later", "text"))
    monkeypatch.setenv("SESSIONSEAL_LOCK_TIMEOUT", "0.2")
    with Vault.open(vault_path, key_provider=vault.parts.keys.provider) as again:
        with lock(vault_path / "locks" / "sync.lock", timeout=5, what="test"), pytest.raises(LockTimeout):
            again.remotes.push()
        assert again.remotes.push().put == 1


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def run(
    memory_keyring: object, vault_path: Path, server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(vault_path))
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _doc(title: str) -> str:
    return json.dumps({"title": title, "messages": [{"role": "user", "content": "text"}]})


@both_servers
def test_the_command_pushes_says_what_it_sent_and_is_audited_without_names(
    run: Callable[..., Result], server_env: S3Server, vault_path: Path
) -> None:
    url = f"s3://{server_env.bucket}/{PREFIX}"
    assert run("sync", "--push").exit_code == 8  # no remote yet
    assert run("remote", "add", "cloud", url, "--endpoint", server_env.endpoint).exit_code == 0
    assert run("remote", "add", "backup", url + "2", "--endpoint", server_env.endpoint).exit_code == 0
    saved = run("save", stdin=_doc("secret title"))
    assert saved.exit_code == 0, saved.output
    several = run("sync", "--push")
    assert several.exit_code == 8 and "name the remote" in several.stderr
    assert run("sync", "cloud").exit_code == 2  # --push is the one direction built
    dry = run("sync", "cloud", "--push", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["dry_run"] is True and server_files(server_env) == {}
    pushed = run("sync", "cloud", "--push", "--json")
    assert pushed.exit_code == 0, pushed.output
    doc = json.loads(pushed.stdout)
    assert (doc["put"], doc["entries"], doc["first"], doc["remote"]) == (1, 2, True, "cloud")
    text = run("sync", "cloud", "--push")
    assert text.exit_code == 0 and text.stderr.startswith("Sent 0 sessions to cloud")
    records = [json.loads(line) for line in (vault_path / "audit" / "audit.log").read_text().splitlines()]
    pushes = [r for r in records if r["action"] == "sync.push"]
    assert [r["outcome"] for r in pushes] == ["error", "error", "ok", "ok", "ok"]  # no remote; several
    assert pushes[3]["detail"]["bytes"] == doc["bytes"] and pushes[3]["detail"]["put"] == 1
    log = (vault_path / "audit" / "audit.log").read_text()
    assert "cloud" not in log and "secret title" not in log and server_env.bucket not in log
    # The server stopped: one line, exit 19, nothing changed.
    server_env.stop()
    run("save", stdin=_doc("another"))
    down = run("sync", "cloud", "--push")
    assert down.exit_code == 19 and down.stderr.count("\n") == 1 and "Traceback" not in down.output


def test_without_the_s3_extra_sync_is_exit_18(
    run: Callable[..., Result], server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{server_env.bucket}/{PREFIX}"
    assert run("remote", "add", "cloud", url, "--endpoint", server_env.endpoint).exit_code == 0
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)
    result = run("sync", "--push")
    assert result.exit_code == 18 and "sessionseal[s3]" in result.stderr
