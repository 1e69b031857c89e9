"""Deletes that reach every copy (issue 26; docs/sync.md, "Deletes"; docs/spec/remote-v1.md,
``tombstone``), against a real S3 server (``rclone serve s3`` on 127.0.0.1) with two enrolled
devices, each with its own vault and key store.

The spec: a ``delete`` or ``cleanup`` of a session this device pushed or pulled is recorded in
the key table's state by the erasing write itself, and the next push turns it into a new epoch
(reason ``delete``, its key wrapped for every enrolled device) and a ``tombstone`` entry sealed
under it, then deletes this device's own content objects of that session.  A pull on another
device erases the session through the vault's own delete (audited ``delete``), deletes its own
objects of it, keeps unpushed local changes as a new session, and never brings the session back
from any later or earlier entry.  A second pull does nothing; a session never sent makes no
tombstone; a dry run writes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, _device_enroll, _remotelog
from sessionseal.cli import cli
from sessionseal.errors import SessionNotFound
from tests._infra import synccapture
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's server's fixtures)
    fixture_module_server,
    fixture_module_server_env,
    fixture_s3_server,
    fixture_server_env,
)
from tests._infra.synclog import server_files
from tests.memkeyring import MemoryKeyring

pytestmark = pytest.mark.s3

PREFIX = "team/tomb"
SECRET_WORD = "quetzalcoatlus"


def _vault(path: Path, server: S3Server, kr: MemoryKeyring | None = None) -> Vault:
    v = Vault.init(path, key_provider=KeychainProvider(backend=kr if kr is not None else MemoryKeyring()))
    v.remotes.add("cloud", f"s3://{server.bucket}/{PREFIX}", endpoint=server.endpoint)
    return v


def _device(v: Vault) -> uuid.UUID:
    return v.remotes.devices.identity("cloud").device_id


def _session(title: str, text: str) -> dict[str, Any]:
    return {"title": title, "status": "completed", "messages": [{"role": "user", "content": text}]}


def _build_two(root: Path, server: S3Server, keyrings: dict[str, MemoryKeyring]) -> tuple[Vault, Vault]:
    """A (the remote's first device) and B (enrolled by A), B having pulled A's sessions, each
    with a keychain of its own."""
    a = _vault(root / "a", server, keyrings["a"])
    b = _vault(root / "b", server, keyrings["b"])
    try:
        a.save(_session("doomed", f"the word is {SECRET_WORD}"))
        a.save(_session("kept", "nothing to see"))
        a.remotes.push()
        step = _device_enroll.request(b)
        _device_enroll.accept(a, None, _device(b).hex, step.pairing_code or "")
        _device_enroll.finish(b)
        assert b.remotes.pull().put == 2
    except BaseException:
        a.close()
        b.close()
        raise
    return a, b


@pytest.fixture(scope="module")
def captured(module_server_env: S3Server, tmp_path_factory: pytest.TempPathFactory) -> synccapture.Captured:
    """:func:`_build_two`'s, built once for the module (each test restores copies)."""
    return synccapture.build_and_capture(
        module_server_env, tmp_path_factory, lambda root, keyrings: _build_two(root, module_server_env, keyrings)
    )


@pytest.fixture
def two(captured: synccapture.Captured, tmp_path: Path, server_env: S3Server) -> Iterator[tuple[Vault, ...]]:
    """A and B as :func:`_build_two` built them, restored from the module's copy."""
    keyrings = {"a": MemoryKeyring(), "b": MemoryKeyring()}
    yield from synccapture.restore(captured, server_env, tmp_path, keyrings)


def _by_title(v: Vault, title: str) -> uuid.UUID:
    [sid] = [s.id for s in v.list() if s.title == title]
    return sid


def _entries(v: Vault, server: S3Server, device: uuid.UUID) -> list[dict[str, Any]]:
    """*device*'s log, read with what *v* holds."""
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "log"
    objects = {int(p.name, 16): p.read_bytes() for p in base.iterdir()}
    devices = v.remotes.devices
    rid = devices.identity("cloud").remote_id
    assert rid is not None
    return [o.entry for o in _remotelog.read_log(objects, devices.epoch_keys("cloud"), rid, device).entries]


def _objects(server: S3Server, device: uuid.UUID) -> set[str]:
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "o"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def test_a_delete_reaches_the_other_device_and_the_server(two: tuple[Vault, Vault], s3_server: S3Server) -> None:
    a, b = two
    doomed = _by_title(a, "doomed")
    a_objects = _objects(s3_server, _device(a))
    assert len(a_objects) == 2
    a.delete(doomed)
    result = a.remotes.push()
    assert (result.tombstoned, result.objects_deleted, result.objects_kept) == (1, 1, 0)
    assert result.epoch == 2
    log = _entries(a, s3_server, _device(a))
    # The same push rebases under the new epoch (tests/unit/test_sync_rebase.py).
    assert [e["kind"] for e in log[-3:]] == ["epoch", "tombstone", "rebase"]
    assert log[-3]["reason"] == "delete" and log[-3]["epoch"] == 2
    assert log[-2]["sessions"] == [str(doomed)] and log[-2]["epoch"] == 2
    # A's own object of the session is gone from the server; the other one stays (and its rebase's).
    assert len(_objects(s3_server, _device(a))) == 2
    # Nothing readable on the server: not the id, not the word.
    for path in (s3_server.root / s3_server.bucket).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert str(doomed).encode() not in data and SECRET_WORD.encode() not in data
    # Audited with counts, never the session's id.
    [record] = [r for r in a.audit_records() if r.get("action") == "sync.push"][-1:]
    assert (record["detail"]["tombstoned"], record["detail"]["objects_deleted"]) == (1, 1)
    audit = (a.path / "audit" / "audit.log").read_text()
    assert str(doomed) not in audit and doomed.hex not in audit
    # The record is spent: a second push tombstones nothing.
    again = a.remotes.push()
    assert (again.tombstoned, again.entries) == (0, 0)

    assert b.search(SECRET_WORD)
    pulled = b.remotes.pull()
    counts = pulled.counts()
    assert (counts["erased"], counts["kept"], counts["applied"]) == (1, 0, 1)
    with pytest.raises(SessionNotFound):
        b.load(doomed)
    assert not b.search(SECRET_WORD)
    assert [s.title for s in b.list()] == ["kept"]
    # Audited as a delete, by tag only.
    actions = [r.get("action") for r in b.audit_records()]
    assert "delete" in actions
    # Idempotent: a second pull applies nothing, and B's own push sends no tombstone back.
    assert b.remotes.pull().counts()["applied"] == 0
    pushed = b.remotes.push()
    assert (pushed.tombstoned, pushed.put) == (0, 0)
    # The other device's keys: B seals under the delete's epoch from now on.
    assert b.remotes.devices.current_epoch("cloud")[0] == 2


def test_the_puller_deletes_its_own_objects_and_keeps_unpushed_work(
    two: tuple[Vault, Vault], s3_server: S3Server
) -> None:
    a, b = two
    doomed = _by_title(a, "doomed")
    # B appends to the session and pushes (a segment object under B's prefix), then appends
    # again without pushing.
    b.append(doomed, [{"role": "assistant", "content": "pushed by b"}])
    b.remotes.push()
    assert len(_objects(s3_server, _device(b))) == 1
    b.append(doomed, [{"role": "assistant", "content": "not pushed yet"}])
    a.delete(doomed)
    a.remotes.push()
    result = b.remotes.pull()
    assert (result.erased, result.kept, result.objects_deleted) == (1, 1, 1)
    assert _objects(s3_server, _device(b)) == set()
    with pytest.raises(SessionNotFound):
        b.load(doomed)
    # The unpushed work lives on as a new session, not linked to the erased one.
    [kept] = [s for s in b.list() if s.title != "kept"]
    doc = orjson.loads(b.load_json(kept.id))
    assert doc["messages"][-1]["content"][0]["text"] == "not pushed yet"
    assert doc["links"]["forked_from"] is None
    # ... and B's next push sends it as a session of its own.
    assert b.remotes.push().put == 1


def test_entries_of_an_erased_session_never_bring_it_back(two: tuple[Vault, Vault], s3_server: S3Server) -> None:
    a, b = two
    doomed = _by_title(a, "doomed")
    a.delete(doomed)
    # B appends to the session before it hears of the delete, and pushes.
    b.append(doomed, [{"role": "assistant", "content": "too late"}])
    b.remotes.push()
    # A pulls before it pushed its tombstone: the append is not applied, the session stays gone.
    pulled = a.remotes.pull()
    assert pulled.counts()["deleted"] == 1
    with pytest.raises(SessionNotFound):
        a.load(doomed)
    a.remotes.push()
    # B pulls the tombstone: it erases its copy (its append was pushed: nothing to keep).
    assert (b.remotes.pull().erased, len(b.list())) == (1, 1)
    # A pulls again: nothing of the session comes back.
    a.remotes.pull()
    with pytest.raises(SessionNotFound):
        a.load(doomed)


def test_a_session_never_sent_makes_no_tombstone(two: tuple[Vault, Vault], s3_server: S3Server) -> None:
    a, _ = two
    local = a.save(_session("local only", "never pushed"))
    a.delete(local)
    files = server_files(s3_server)
    result = a.remotes.push()
    assert (result.tombstoned, result.entries, result.epoch) == (0, 0, 1)
    assert server_files(s3_server) == files


def test_cleanup_records_its_erasures_and_a_dry_run_writes_nothing(
    two: tuple[Vault, Vault], s3_server: S3Server
) -> None:
    a, _ = two
    a.cleanup({"keep_last": 1, "min_age": 0})
    assert len(a.list()) == 1
    files = server_files(s3_server)
    dry = a.remotes.push(dry_run=True)
    assert (dry.tombstoned, dry.objects_deleted, dry.dry_run) == (1, 1, True)
    assert server_files(s3_server) == files
    assert a.remotes.devices.current_epoch("cloud")[0] == 1  # no key made either
    done = a.remotes.push()
    assert (done.tombstoned, done.objects_deleted) == (1, 1)
    assert done.counts()["tombstoned"] == 1


def test_a_session_found_missing_is_never_tombstoned(two: tuple[Vault, Vault], s3_server: S3Server) -> None:
    # A session file gone from the vault (damage, a restore, a hand that removed it) is not a
    # delete: nothing records it, so nobody's copy is erased.
    a, b = two
    doomed = _by_title(a, "doomed")
    (a.path / "sessions" / (a.parts.keys.file_name(doomed) + ".sst")).unlink()
    result = a.remotes.push()
    assert (result.tombstoned, result.entries, result.epoch) == (0, 0, 1)
    assert b.remotes.pull().counts()["applied"] == 0
    assert b.load(doomed).title == "doomed"


def test_a_tombstone_of_several_sessions_is_one_rotation_on_the_puller(
    two: tuple[Vault, Vault], s3_server: S3Server
) -> None:
    a, b = two
    for sid in [_by_title(a, "doomed"), _by_title(a, "kept")]:
        a.delete(sid)
    pushed = a.remotes.push()
    assert (pushed.tombstoned, pushed.objects_deleted) == (2, 2)
    tombs = [e for e in _entries(a, s3_server, _device(a)) if e["kind"] == "tombstone"]
    assert len(tombs) == 1 and len(tombs[0]["sessions"]) == 2
    before = sum(1 for r in b.audit_records() if r.get("action") == "delete")
    assert b.remotes.pull().erased == 2
    assert b.list() == []
    deletes = [r for r in b.audit_records() if r.get("action") == "delete"][before:]
    assert len(deletes) == 2 and len({r["detail"]["epoch"] for r in deletes}) == 1


def test_removing_a_remote_forgets_its_recorded_erasures(two: tuple[Vault, Vault]) -> None:
    # No push will come for a removed remote: the erased ids must not stay in the key table.
    a, _ = two
    device, doomed = _device(a), _by_title(a, "doomed")
    a.delete(doomed)
    assert a.parts.keys.state(fresh=True).erased == {device.bytes: frozenset({doomed.bytes})}
    a.remotes.remove("cloud")
    assert a.parts.keys.state(fresh=True).erased == {}


def test_the_commands_count_a_delete_in_one_line_or_json(
    tmp_path: Path, server_env: S3Server, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{server_env.bucket}/{PREFIX}"
    paths = tmp_path / "a", tmp_path / "b"
    for path in paths:
        with Vault.init(path, key_provider=KeychainProvider(backend=memory_keyring)) as v:
            v.remotes.add("cloud", url, endpoint=server_env.endpoint)
    with Vault.open(paths[0]) as a, Vault.open(paths[1]) as b:
        doomed = a.save(_session("doomed", f"the word is {SECRET_WORD}"))
        a.remotes.push()
        step = _device_enroll.request(b)
        _device_enroll.accept(a, None, _device(b).hex, step.pairing_code or "")
        _device_enroll.finish(b)
        b.remotes.pull()
    runner = CliRunner()

    def run(path: Path, *args: str) -> Result:
        monkeypatch.setenv("SESSIONSEAL_VAULT", str(path))
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert run(paths[0], "delete", "--yes", str(doomed)).exit_code == 0
    dry = run(paths[0], "sync", "--push", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert (json.loads(dry.stdout)["tombstoned"], json.loads(dry.stdout)["dry_run"]) == (1, True)
    pushed = run(paths[0], "sync", "--push")
    assert pushed.exit_code == 0 and "1 deleted sessions tombstoned, 1 objects deleted" in pushed.stderr
    pulled = run(paths[1], "sync", "--pull", "--json")
    assert pulled.exit_code == 0, pulled.output
    doc = json.loads(pulled.stdout)
    assert (doc["erased"], doc["kept"], doc["epochs_taken"]) == (1, 0, 1)
    assert run(paths[1], "show", str(doomed)).exit_code != 0
    again = run(paths[1], "sync", "--pull")
    assert again.exit_code == 0 and "deletes" not in again.stderr


def test_a_fork_made_from_an_erased_session_stays_a_session_of_its_own(two: tuple[Vault, Vault]) -> None:
    a, b = two
    doomed = _by_title(a, "doomed")
    # Both append from the same point: on B, A's line becomes a fork linked to the session.
    b.append(doomed, [{"role": "assistant", "content": "b's line"}])
    b.remotes.push()
    a.append(doomed, [{"role": "assistant", "content": "a's line"}])
    a.remotes.push()
    assert b.remotes.pull().forked == 1
    [fork] = [s.id for s in b.list() if s.id != doomed and s.title != "kept"]
    a.delete(doomed)
    a.remotes.push()
    result = b.remotes.pull()
    assert (result.erased, result.kept) == (1, 0)
    with pytest.raises(SessionNotFound):
        b.load(doomed)
    assert orjson.loads(b.load_json(fork))["messages"][-1]["content"][0]["text"] == "a's line"
