"""``sessionseal sync --pull`` applies the other devices' changes (issue 26; docs/sync.md,
"Pull"), against a real S3 server (``rclone serve s3`` on 127.0.0.1): a device pulls the other's
sessions and reads them as stored there; appends follow; two devices appending to one session
both keep their turns (the puller's line stays, the other's becomes a linked fork); metadata
is last-writer-wins by clock; a second pull is a no-op; what a pull wrote is never pushed back
as the puller's own; a dry run writes nothing; every pull is audited without names."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionseal import PassphraseProvider, Vault, _device_enroll
from sessionseal._vault import _syncapply
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from sessionseal.models import Session
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

PREFIX = "teamshare"
PASSPHRASE = "sync apply test passphrase"


def _session(title: str, text: str) -> Session:
    return Session.model_validate({"title": title, "messages": [{"role": "user", "content": text}]})


def _texts(v: Vault, sid: uuid.UUID | str) -> list[str]:
    def text(content: Any) -> str:
        return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)

    return [text(m["content"]) for m in orjson.loads(v.load_json(sid))["messages"]]


def _all(v: Vault) -> dict[str, Any]:
    """Every session as stored, by id."""
    return {str(s.id): orjson.loads(v.load_json(s.id)) for s in v.list(archived=None)}


def _build_two(root: Path, server: S3Server) -> tuple[Vault, Vault]:
    """Device A (made epoch 1) and device B, enrolled by A (request, accept with the pairing
    code, finish): a device whose enrolment counts, so that A applies what B pushes."""
    url = f"s3://{server.bucket}/{PREFIX}"
    a = Vault.init(root / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))
    b = Vault.init(root / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))
    try:
        for v in (a, b):
            v.remotes.add("cloud", url, endpoint=server.endpoint)
        a.save(_session("first", "hello"))
        a.remotes.push()
        step = _device_enroll.request(b)
        _device_enroll.accept(a, None, b.remotes.devices.identity("cloud").device_id.hex, step.pairing_code or "")
        _device_enroll.finish(b)
    except BaseException:
        a.close()
        b.close()
        raise
    return a, b


@pytest.fixture(scope="module")
def captured(module_server_env: S3Server, tmp_path_factory: pytest.TempPathFactory) -> synccapture.Captured:
    """:func:`_build_two`'s, built once for the module; each test restores copies (:func:`two`)."""
    # Passphrase vaults: nothing in their keychains.
    return synccapture.build_and_capture(
        module_server_env, tmp_path_factory, lambda root, _: _build_two(root, module_server_env)
    )


@pytest.fixture
def two(captured: synccapture.Captured, server_env: S3Server, tmp_path: Path) -> Iterator[tuple[Vault, ...]]:
    """A and B as :func:`captured` built them, restored."""
    keyrings = {"a": MemoryKeyring(), "b": MemoryKeyring()}

    def open_vault(path: Path) -> Vault:
        return Vault.open(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))

    yield from synccapture.restore(captured, server_env, tmp_path, keyrings, open_vault)


def test_a_pull_reads_the_other_devices_sessions_as_stored_there_once(
    two: tuple[Vault, Vault], s3_server: S3Server
) -> None:
    a, b = two
    a.save(_session("with a secret", "my key is AKIAQ7XZ4M2PLK9RT3WB, keep it"))
    a.remotes.push()
    result = b.remotes.pull()
    assert (result.put, result.appended, result.forked, result.counts()["applied"]) == (2, 0, 0, 2)
    assert result.bytes > 0
    assert _all(b) == _all(a)  # the sanitized text as stored, ids, times and all
    assert "AKIAQ7XZ4M2PLK9RT3WB" not in json.dumps(_all(b))
    # A second pull: nothing new, nothing written.
    files = sorted(p.name for p in (b.path / "sessions").iterdir())
    again = b.remotes.pull()
    assert (again.entries, again.counts()["applied"], again.bytes) == (0, 0, 0)
    assert sorted(p.name for p in (b.path / "sessions").iterdir()) == files
    assert b.verify().problems == []  # the pull's cursor is a file verify knows
    assert len(list((b.path / "sync").iterdir())) == 1  # no push yet: the pull's cursor only
    # What the pull wrote is not B's to push: B's first push sends its record and nothing else.
    pushed = b.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 0, 0)
    before = server_files(s3_server)
    assert a.remotes.pull().counts()["applied"] == 0
    assert server_files(s3_server) == before


def test_appends_follow_and_are_not_pushed_back(two: tuple[Vault, Vault]) -> None:
    a, b = two
    [s] = a.list()
    b.remotes.pull()
    a.append(s.id, [{"role": "assistant", "content": "a's reply"}])
    a.remotes.push()
    got = b.remotes.pull()
    assert (got.appended, got.forked) == (1, 0)
    assert _texts(b, s.id) == ["hello", "a's reply"]
    assert b.remotes.push().appended == 0
    # B's own turn after it goes on the same line, and A takes it as an append, not a fork.
    b.append(s.id, [{"role": "user", "content": "b's turn"}])
    assert b.remotes.push().appended == 1
    back = a.remotes.pull()
    assert (back.appended, back.forked) == (1, 0)
    assert _texts(a, s.id) == _texts(b, s.id) == ["hello", "a's reply", "b's turn"]


@pytest.mark.parametrize("how", ["copytree", "snapshot"])
def test_a_vault_restored_from_a_file_copy_appends_where_the_original_would(
    two: tuple[Vault, Vault], tmp_path: Path, how: str
) -> None:
    """docs/sync.md, "Backups": B's vault moved aside and a copy put at its path (every file
    new, so every inode differs; a snapshot's mtimes too) takes A's append as an append and
    sends its own as one. The copy's session files are the versions the original held: a
    rewrite there would be a new version, sent whole (a put), and a fork on a device that
    had appended too."""
    a, b = two
    [s] = a.list()
    b.remotes.pull()
    path, aside = b.path, tmp_path / "aside"
    if how == "snapshot":
        b.backups.snapshot(tmp_path / "snap")
    b.close()
    path.rename(aside)
    if how == "snapshot":
        (tmp_path / "snap").rename(path)
    else:
        shutil.copytree(aside, path, symlinks=True)
    with Vault.open(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as restored:
        a.append(s.id, [{"role": "assistant", "content": "a's reply"}])
        a.remotes.push()
        got = restored.remotes.pull()
        assert (got.put, got.appended, got.forked) == (0, 1, 0)
        restored.append(s.id, [{"role": "user", "content": "b's turn"}])
        pushed = restored.remotes.push()
        assert (pushed.put, pushed.appended) == (0, 1)
        back = a.remotes.pull()
        assert (back.put, back.appended, back.forked) == (0, 1, 0)
        assert _texts(a, s.id) == _texts(restored, s.id) == ["hello", "a's reply", "b's turn"]
        assert restored.verify().problems == []
        assert [h.id for h in restored.search("reply turn")] == [str(s.id)]


def test_two_devices_appending_to_one_session_both_keep_their_turns(two: tuple[Vault, Vault]) -> None:
    a, b = two
    [s] = a.list()
    b.remotes.pull()
    a.append(s.id, [{"role": "assistant", "content": "from a"}])
    a.remotes.push()
    b.append(s.id, [{"role": "assistant", "content": "from b"}])  # not pushed yet: diverged
    got = b.remotes.pull()
    assert (got.appended, got.forked) == (0, 1)
    assert _texts(b, s.id) == ["hello", "from b"]  # the local line stays
    [fork] = [x for x in b.list() if x.id != s.id]
    doc = orjson.loads(b.load_json(fork.id))
    assert doc["links"]["forked_from"] == str(s.id)
    assert _texts(b, fork.id) == ["hello", "from a"]  # the other line, whole
    # A's next turn goes to that fork; a second pull adds no second fork.
    a.append(s.id, [{"role": "user", "content": "a again"}])
    a.remotes.push()
    later = b.remotes.pull()
    assert (later.appended, later.forked) == (1, 0)
    assert _texts(b, fork.id) == ["hello", "from a", "a again"]
    assert _texts(b, s.id) == ["hello", "from b"]
    assert len(b.list()) == 2
    # B's own turn goes out; A keeps its line and takes B's as a fork: nothing is dropped.
    b.remotes.push()
    other = a.remotes.pull()
    assert other.forked == 1
    texts = {t for x in a.list() for t in _texts(a, x.id)}
    assert {"from a", "from b", "a again"} <= texts
    assert _texts(a, s.id) == ["hello", "from a", "a again"]


def test_metadata_is_last_writer_wins_by_clock(two: tuple[Vault, Vault]) -> None:
    a, b = two
    [s] = a.list()
    b.remotes.pull()
    b.remotes.push()  # B's record, so that its log can be read
    a.rename(s.id, "renamed on a")
    a.remotes.push()
    b.rename(s.id, "renamed on b")
    b.tag(s.id, add=["from-b"])
    b.remotes.push()  # later: B's clock is past A's (B read nothing of it yet, but its wall clock is later)
    got_b = b.remotes.pull()
    assert got_b.meta_older == 1 and got_b.meta == 0
    assert b.load(s.id).title == "renamed on b"
    got_a = a.remotes.pull()
    assert got_a.meta == 2  # the title and the tags
    assert a.load(s.id).title == "renamed on b" and a.load(s.id).tags == ["from-b"]
    # A later rename on A wins everywhere; B's unpushed rename of another field is kept.
    a.rename(s.id, "last on a")
    a.remotes.push()
    b.describe(s.id, "b's description")
    again = b.remotes.pull()
    assert again.meta == 1
    assert (b.load(s.id).title, b.load(s.id).description) == ("last on a", "b's description")
    assert a.remotes.pull().counts()["applied"] == 0


def test_a_local_change_not_pushed_is_kept_when_the_other_rewrites_the_session(two: tuple[Vault, Vault]) -> None:
    a, b = two
    [s] = a.list()
    b.remotes.pull()
    doc = orjson.loads(a.load_json(s.id))
    doc["messages"].append({"role": "assistant", "content": "rewritten on a"})
    a.save(doc)
    a.remotes.push()
    b.append(s.id, [{"role": "user", "content": "b, unpushed"}])
    got = b.remotes.pull()
    assert (got.put, got.forked) == (0, 1)
    assert _texts(b, s.id) == ["hello", "b, unpushed"]
    [fork] = [x for x in b.list() if x.id != s.id]
    assert _texts(b, fork.id) == ["hello", "rewritten on a"]


def test_the_command_dry_run_json_and_audit(two: tuple[Vault, Vault], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    a.save(_session("second", "text"))
    a.remotes.push()
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(b.path))
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", PASSPHRASE)
    path = b.path
    b.close()
    runner = CliRunner()
    dry = runner.invoke(cli, ["sync", "--pull", "--dry-run", "--json"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    doc = json.loads(dry.stdout)
    assert (doc["dry_run"], doc["to_apply"], doc["put"]) == (True, 4, 2)  # A's entries: epoch, put, enroll, put
    assert not (path / "sync").exists()
    assert not [p for p in (path / "sessions").iterdir() if p.name.endswith(".sse")]
    text = runner.invoke(cli, ["sync", "--pull"], catch_exceptions=False)
    assert text.exit_code == 0, text.output
    assert "applied 2 sessions, 0 appends, 0 metadata changes" in text.stderr
    again = runner.invoke(cli, ["sync", "--pull", "--json"], catch_exceptions=False)
    assert json.loads(again.stdout)["applied"] == 0
    records = [json.loads(line) for line in (path / "audit" / "audit.log").read_text().splitlines()]
    pulls = [r for r in records if r["action"] == "sync.pull"]
    assert [r["outcome"] for r in pulls] == ["ok"] * 3
    assert [r["detail"]["applied"] for r in pulls] == [0, 2, 0]
    assert sum(r["action"] == "save" for r in records) == 2
    assert all("cloud" not in json.dumps(r) and PREFIX not in json.dumps(r) for r in records)
    assert all("first" not in json.dumps(r) and "second" not in json.dumps(r) for r in records)


def test_an_object_modified_in_the_bucket_is_refused_and_nothing_of_it_applied(
    two: tuple[Vault, Vault], s3_server: S3Server
) -> None:
    a, b = two
    device = a.remotes.devices.identity("cloud").device_id
    [obj] = (s3_server.root / s3_server.bucket / PREFIX / "d" / device.hex / "o").iterdir()
    good = obj.read_bytes()
    obj.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # the same size, another hash
    with pytest.raises(RemoteError, match="content object does not open"):
        b.remotes.pull()
    assert b.list() == []
    obj.write_bytes(good)
    assert b.remotes.pull().put == 1
    assert _all(b) == _all(a)


def test_a_run_of_new_sessions_is_saved_as_a_batch_each_whole_indexed_and_audited(two: tuple[Vault, Vault]) -> None:
    """More sessions than one batch holds (docs/spec/remote-v1.md, "The pull cursor"): each
    is saved as ``save`` saves it (sanitized), listed, found by the full-text index (not
    streamed), audited by one ``save`` record each; verify finds nothing to say."""
    a, b = two
    n = _syncapply.BATCH + 6
    for i in range(n):
        a.save(_session(f"batch {i}", f"word{i} zebracorn AKIAQ7XZ4M2PLK9RT3WB"))
    a.remotes.push()
    result = b.remotes.pull()
    assert (result.put, result.forked, result.skipped) == (n + 1, 0, 0)
    assert _all(b) == _all(a)
    assert all("AKIAQ7XZ4M2PLK9RT3WB" not in json.dumps(doc) for doc in _all(b).values())
    hits = b.search("zebracorn")
    assert (bool(hits), hits.source, hits.stale) == (True, "fts", 0)
    for i in (0, 37, n - 1):  # the first batch's, the second's
        found = b.search(f"word{i}")
        assert (len(found), found.source, found.stale) == (1, "fts", 0)
    records, report = b.audit_entries()
    assert report.ok
    assert sum(r["action"] == "save" for r in records) == n + 1
    assert b.verify().problems == []
    assert b.remotes.pull().counts()["applied"] == 0
    # Each saved version is recorded as pushed as the file holds it (not read back: the batch
    # knows what it wrote): B's first push sends nothing of them.
    pushed = b.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 0, 0)


def test_a_batch_pulled_after_this_devices_first_push_is_recorded_in_its_push_cursor(
    two: tuple[Vault, Vault],
) -> None:
    """The batch's versions go to the push cursor once this device has pushed: nothing of
    them is sent back, and a later change of one of them is, alone."""
    a, b = two
    b.remotes.push()  # B's record: from here what a pull writes is noted in its push cursor
    sids = [a.save(_session(f"after push {i}", f"turn {i}")) for i in range(3)]
    a.remotes.push()
    assert b.remotes.pull().put == 4  # A's first session too
    pushed = b.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 0, 0)
    b.append(sids[1], [{"role": "user", "content": "one more"}])
    pushed = b.remotes.push()
    assert (pushed.put + pushed.appended, pushed.meta) == (1, 0)


def test_a_session_nested_deeper_than_a_vault_stores_is_refused_in_one_line(
    two: tuple[Vault, Vault], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device can send a document that parses but that no vault stores: nested past the 255
    levels a vault serializes (its own save refuses one). The pull refuses it as an invalid
    session document, a one-line RemoteError and never a traceback, and writes nothing of it."""
    a, b = two
    b.remotes.pull()
    before = _all(b)
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    session = _session("deep", "x")
    a.save(session)
    doc = orjson.loads(a.load_json(session.id)) | {"deep": deep}
    monkeypatch.setattr(a.parts.store, "document", lambda log: json.dumps(doc).encode())
    a.remotes.push()
    with pytest.raises(RemoteError, match=r"^a pulled session is not a valid session document$"):
        b.remotes.pull()
    assert _all(b) == before
