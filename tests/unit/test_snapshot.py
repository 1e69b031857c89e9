"""``sessionseal snapshot --to DIR`` (issue 26, "Backups"; docs/sync.md, docs/cli.md).

The spec: a copy of the vault made under the vault lock, which opens as the same vault with the
same key and passes ``verify --read-data``; only the files sessionseal writes (no lock file, no
temp file, no resume home, nothing unknown), owner-only, with ``vault.json`` last; a real second
process appending while it runs leaves a consistent copy; a directory that exists and is not
empty, or lies inside the vault, is refused with one line and exit 8 and nothing is written;
audited with counts only.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import PassphraseProvider, Vault
from sessionseal._container import FrameType
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput, UnsafePermissions
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

PW = "snapshot passphrase"
_DOC = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}


def _init(path: Path) -> Vault:
    return Vault.init(path, key_provider=PassphraseProvider(PW, log2_n=14))


def _open(path: Path) -> Vault:
    return Vault.open(path, key_provider=PassphraseProvider(PW))


def _cli(vault: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--vault", str(vault), *args], env={"SESSIONSEAL_PASSPHRASE": PW})
    return res.exit_code, res.stdout, res.stderr


def _tree(path: Path) -> dict[str, int]:
    """Every entry under *path* (relative name -> mode), nothing followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(path))] = os.lstat(p).st_mode
    return out


def _documents(vault: Vault) -> dict[str, object]:
    return {str(s.id): json.loads(vault.load_json(s.id)) for s in vault.list(archived=None)}


def _checkpoints(vault: Vault) -> dict[str, list[str]]:
    return {str(s.id): [c.name for c in vault.checkpoints(s.id)] for s in vault.list(archived=None)}


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with _init(path) as v:
        ids = [v.save(_DOC | {"title": f"s{i}"}) for i in range(3)]
        v.append(ids[0], [{"role": "assistant", "content": "more"}])
        v.checkpoint(ids[1], "before")
        v.delete(ids[2])  # a rotation: the copy must be under the epoch the key store holds now
    return path


def test_the_copy_opens_with_the_same_key_verifies_and_holds_the_same_sessions(populated: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup" / "snap"
    dest.parent.mkdir()
    with _open(populated) as v:
        result = v.backups.snapshot(dest)
        expected, checkpoints = _documents(v), _checkpoints(v)
    assert (result.sessions, result.checkpoints, result.trimmed, result.left_out) == (2, 1, 0, 0)
    assert result.epoch == 2  # the delete rotated once
    with _open(dest) as copy:
        assert copy.vault_id == uuid.UUID(json.loads((populated / "vault.json").read_text())["vault_id"])
        assert _documents(copy) == expected
        assert _checkpoints(copy) == checkpoints
        assert sorted(checkpoints.values()) == [[], ["before"]]
        report = copy.verify(read_data=True)
        assert report.ok, report.problems
        assert [p.code for p in report.problems if p.severity == "error"] == []
    code, _, err = _cli(dest, "verify", "--read-data", "--json")
    assert code == 0, err


def test_only_the_files_sessionseal_writes_owner_only_and_nothing_else(populated: Path, tmp_path: Path) -> None:
    # Leftovers a snapshot must not carry: a killed writer's temp file, a resume home's plaintext,
    # a file someone put in the vault (it may hold plaintext), lock files.
    (populated / "sessions" / ".tmp-999999-abcdef").write_bytes(b"half a container")
    run = populated / "run"
    run.mkdir(mode=0o700)
    (run / "home").write_text("plaintext transcript")
    (populated / "notes.txt").write_text("mine")
    assert any((populated / "locks").iterdir())
    dest = tmp_path / "snap"
    with _open(populated) as v:
        v.backups.snapshot(dest)
    tree = _tree(dest)
    assert not any(name.startswith("locks") or name.startswith("run") for name in tree)
    assert not any(".tmp-" in name or name == "notes.txt" for name in tree)
    assert "vault.json" in tree and "keytable.sst" in tree and "keyfile.json" in tree
    for name, mode in tree.items():
        assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), name
        assert stat.S_IMODE(mode) == (0o700 if stat.S_ISDIR(mode) else 0o600), name
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o700


def test_an_empty_directory_is_used_and_made_owner_only(populated: Path, tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir(mode=0o755)
    with _open(populated) as v:
        v.backups.snapshot(dest)
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o700
    assert (dest / "vault.json").is_file()


def _refused_destination(case: str, vault: Path, tmp: Path) -> Path:
    if case == "not-empty":
        (tmp / "d").mkdir()
        (tmp / "d" / "x").write_text("x")
        return tmp / "d"
    if case == "a-file":
        (tmp / "d").write_text("x")
        return tmp / "d"
    if case == "the-vault":
        return vault
    if case == "inside-the-vault":
        return vault / "sessions" / "snap"
    if case == "no-parent":
        return tmp / "missing" / "snap"
    assert case == "a-symlink"
    (tmp / "elsewhere").mkdir()
    (tmp / "d").symlink_to(tmp / "elsewhere")
    return tmp / "d"


@pytest.mark.parametrize(
    ("case", "code"),
    [("not-empty", 8), ("a-file", 8), ("the-vault", 8), ("inside-the-vault", 8), ("no-parent", 8), ("a-symlink", 6)],
)
def test_refusals_are_one_line_with_their_exit_code_and_write_nothing(
    populated: Path, tmp_path: Path, case: str, code: int
) -> None:
    (tmp_path / "out").mkdir()
    dest = _refused_destination(case, populated, tmp_path / "out")
    outside = _tree(tmp_path / "out")
    vault_before = {k: m for k, m in _tree(populated).items() if not k.startswith(("audit", "locks"))}
    with _open(populated) as v, pytest.raises(UnsafePermissions if code == 6 else InvalidInput):
        v.backups.snapshot(dest)
    rc, out, err = _cli(populated, "snapshot", "--to", str(dest))
    assert rc == code
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sessionseal: error: "), err
    assert {k: m for k, m in _tree(populated).items() if not k.startswith(("audit", "locks"))} == vault_before
    assert _tree(tmp_path / "out") == outside
    with _open(populated) as v:
        (failed,) = [r for r in v.audit_records() if r.get("action") == "snapshot"][-1:]
        assert failed["outcome"] == "denied" or failed["outcome"] == "error"


def test_audited_with_counts_only_and_json_for_scripts(populated: Path, tmp_path: Path) -> None:
    dest = tmp_path / "snap"
    rc, out, err = _cli(populated, "snapshot", "--to", str(dest), "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["path"] == str(dest)
    assert (doc["sessions"], doc["checkpoints"], doc["epoch"], doc["trimmed"], doc["left_out"]) == (2, 1, 2, 0, 0)
    assert doc["files"] == len([n for n, m in _tree(dest).items() if stat.S_ISREG(m)])
    assert doc["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    with _open(populated) as v:
        (record,) = [r for r in v.audit_records() if r.get("action") == "snapshot"]
    assert record["outcome"] == "ok"
    assert set(record["detail"]) == {"files", "bytes", "sessions", "trimmed", "left_out"}
    assert str(dest) not in json.dumps(record)  # where the copy went is not the log's to keep


def test_a_torn_tail_is_cut_off_the_copy(populated: Path, tmp_path: Path) -> None:
    # What a writer killed mid-append leaves (or one appending as the file is read): a group
    # without its META. The copy ends at the last whole group, so it verifies without a warning.
    with _open(populated) as v:
        sid = str(v.list()[0].id)
        name = populated / "sessions" / (v.parts.keys.file_name(uuid.UUID(sid)) + ".sst")
    whole = name.stat().st_size
    with name.open("ab") as f:  # an EVENTS frame's length prefix and type, then less than it says
        f.write(struct.pack(">IB", 1000, FrameType.EVENTS) + os.urandom(40))
    with _open(populated) as v:
        result = v.backups.snapshot(tmp_path / "snap")
        expected = json.loads(v.load_json(sid))
    assert result.trimmed == 1
    assert (tmp_path / "snap" / "sessions" / name.name).stat().st_size == whole
    with _open(tmp_path / "snap") as copy:
        report = copy.verify(read_data=True)
        assert "torn-append" not in [p.code for p in report.problems]
        assert json.loads(copy.load_json(sid)) == expected


_WRITER = """
import sys, time
from pathlib import Path
from sessionseal import PassphraseProvider, Vault
from sessionseal._container import FrameType
vault, sid, flag = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
n = 0
with Vault.open(vault, key_provider=PassphraseProvider(sys.argv[4])) as v:
    while not flag.exists() or n < 3:
        n += 1
        v.append(sid, [{"role": "user", "content": f"turn {n}"}])
        if n % 5 == 0:
            v.save({"title": f"new {n}", "messages": [{"role": "user", "content": "x"}]})
        (flag.parent / "appended").write_text(str(n))
print(n)
"""


def _writer(vault: Path, sid: str, flag: Path, timeout: str = "60") -> subprocess.Popen[str]:
    env = {**os.environ, "SESSIONSEAL_LOCK_TIMEOUT": timeout}
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(vault), sid, str(flag), PW],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(cond, what: str, limit: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit  # a bound for a hung test only: the test waits on the condition
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _messages(vault: Vault, sid: str) -> list[str]:
    return [m["content"][0]["text"] for m in json.loads(vault.load_json(sid))["messages"]]


def test_an_append_by_another_process_during_the_snapshot_lands_whole_in_the_copy(
    populated: Path, tmp_path: Path
) -> None:
    # Deterministic: while the snapshot holds the vault lock (called back after its first file,
    # the key table), a real second process appends. Its group reaches the session file (under
    # the session's lock), then the writer waits for the vault lock for its index and audit
    # record; the copy holds the group whole, beyond the copied key table's mark: a state a
    # crash could leave, which verifies. The writer finishes once the snapshot releases the lock.
    with _open(populated) as v:
        sid = str(v.list()[0].id)
        before = _messages(v, sid)
        session_file = populated / "sessions" / (v.parts.keys.file_name(uuid.UUID(sid)) + ".sst")
    size = session_file.stat().st_size
    go = tmp_path / "go"
    code = (
        "import sys, time; from pathlib import Path; from sessionseal import PassphraseProvider, Vault\n"
        "with Vault.open(sys.argv[1], key_provider=PassphraseProvider(sys.argv[3])) as v:\n"
        "    v.append(sys.argv[2], [{'role': 'user', 'content': 'warm-up'}])\n"  # the process's first read
        "    print('ready', flush=True)\n"
        "    while not Path(sys.argv[4]).exists(): time.sleep(0.01)\n"
        "    v.append(sys.argv[2], [{'role': 'user', 'content': 'during'}])\n"
    )
    env = {**os.environ, "SESSIONSEAL_LOCK_TIMEOUT": "120"}
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(populated), sid, PW, str(go)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert other.stdout is not None and other.stdout.readline() == "ready\n"  # opened before the snapshot
    before.append("warm-up")
    size = session_file.stat().st_size

    def during(done: int, total: int) -> None:
        if not go.exists():
            go.write_text("go")
            _wait_for(lambda: session_file.stat().st_size > size, "the other process's append to reach the file")

    with _open(populated) as v:
        v.backups.snapshot(tmp_path / "snap", progress=during)
    other.communicate(timeout=120)
    assert other.returncode == 0
    with _open(tmp_path / "snap") as copy:
        assert _messages(copy, sid) == [*before, "during"]
        report = copy.verify(read_data=True)
        assert report.ok, report.problems
    with _open(populated) as v:
        assert _messages(v, sid) == [*before, "during"]
        assert v.verify(read_data=True).ok


def test_snapshots_taken_while_a_real_writer_appends_and_saves_are_consistent(populated: Path, tmp_path: Path) -> None:
    with _open(populated) as v:
        sid = str(v.list()[0].id)
        before = _messages(v, sid)
    flag = tmp_path / "stop"
    writer = _writer(populated, sid, flag)
    try:
        _wait_for((tmp_path / "appended").exists, "the writer's first append")
        copies = []
        for i in range(3):
            dest = tmp_path / f"snap{i}"
            with _open(populated) as v:
                v.backups.snapshot(dest)
            copies.append(dest)
    finally:
        flag.write_text("stop")
        out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    appended = int(out)
    seen = []
    for dest in copies:
        with _open(dest) as copy:
            report = copy.verify(read_data=True)
            assert report.ok, (dest, report.problems)
            messages = _messages(copy, sid)
            # A prefix of what the writer wrote, in order, nothing torn or reordered.
            assert messages == [*before, *(f"turn {n}" for n in range(1, len(messages) - len(before) + 1))]
            seen.append(len(messages))
            for s in copy.list():
                copy.load_json(s.id)  # every session in the copy reads whole
    assert seen == sorted(seen)
    assert seen[-1] <= len(before) + appended


def test_a_pushed_vaults_snapshot_carries_its_push_cursor_and_verifies(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # sync/<device>.sst (the push's cursor) is part of the vault: copied like any vault file.
    path = tmp_path / "vault"
    with _init(path) as v:
        v.remotes.add("cloud", f"s3://{s3_server.bucket}/p", endpoint=s3_server.endpoint)
        v.save(_DOC)
        v.remotes.push()
        v.backups.snapshot(tmp_path / "snap")
    (cursor,) = (path / "sync").iterdir()
    assert (tmp_path / "snap" / "sync" / cursor.name).read_bytes() == cursor.read_bytes()
    with _open(tmp_path / "snap") as copy:
        report = copy.verify(read_data=True)
        assert report.ok and "unknown-entry" not in [p.code for p in report.problems], report.problems
