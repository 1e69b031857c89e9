"""Passphrase hygiene (issue 18, item 11): passphrase files must be private, short passphrases
are warned about, and ``passphrase change`` re-wraps the master keys under a new passphrase and
salt, atomically, audited, without losing a rotation in flight or a concurrent process's keys.

The SIGKILL runs and the concurrent openers are in tests/integration/test_passphrase_change.py.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, PassphraseProvider, Vault, _crypto, _fs, errors
from sessionseal._keystore import MasterKeys
from sessionseal._passphrase import KEYFILE
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

OLD = "old passphrase, long enough"
NEW = "new passphrase, long enough"
MINIMAL = '{"title": "t", "messages": [{"role": "user", "content": "hello"}]}'


def _session(title: str) -> dict[str, object]:
    return {"title": title, "messages": [{"role": "user", "content": f"{title}: some text"}]}


def _keyfile(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((path / KEYFILE).read_text())
    return doc


def _opens_with(path: Path, passphrase: str) -> bool:
    with Vault.open(path, passphrase=passphrase, auto_cleanup=False) as v:
        try:
            v.list()
        except errors.WrongPassphrase:
            return False
    return True


@pytest.fixture
def pvault(tmp_path: Path) -> tuple[Path, list[str]]:
    """A passphrase vault (scrypt 2^14) holding three sessions, one with a checkpoint."""
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(OLD, log2_n=14)) as v:
        ids = [str(v.save(_session(f"s{i}"))) for i in range(3)]
        v.checkpoint(ids[0], "before")
        v.append(ids[0], [{"role": "user", "content": "after the checkpoint"}])
    return path, ids


# -- Vault.change_passphrase -----------------------------------------------------------------


def test_change_re_wraps_under_a_new_salt_and_only_the_new_passphrase_opens(pvault: tuple[Path, list[str]]) -> None:
    path, ids = pvault
    before = _keyfile(path)
    with Vault.open(path, passphrase=OLD) as v:
        stored = {sid: v.load_json(sid) for sid in ids}
        assert v.change_passphrase(NEW) is True  # the old key file's content was overwritten
        assert v.load(ids[1]).title == "s1"  # the open vault carries on with the new passphrase
        v.rekey()
    after = _keyfile(path)
    assert after["salt"] != before["salt"]
    assert (after["log2_n"], after["r"], after["p"]) == (before["log2_n"], before["r"], before["p"]) == (14, 8, 1)
    assert len(base64.b64decode(after["salt"])) == 16
    assert not _opens_with(path, OLD)
    with Vault.open(path, passphrase=NEW) as v:
        assert {sid: v.load_json(sid) for sid in ids} == stored
        assert [c.name for c in v.checkpoints(ids[0])] == ["before"]
        assert v.verify(read_data=True).ok
        assert v.verify_audit().ok
        [record] = [r for r in v.audit_records() if r["action"] == "passphrase.change"]
    assert record["outcome"] == "ok" and record["detail"] == {"old_key_file_overwritten": True}
    assert OLD not in json.dumps(record) and NEW not in json.dumps(record)
    assert not [n for n in os.listdir(path) if n.startswith(_fs.TMP_PREFIX)]


def test_a_wrong_current_passphrase_changes_nothing_and_is_audited_as_denied(pvault: tuple[Path, list[str]]) -> None:
    path, _ = pvault
    before = (path / KEYFILE).read_bytes()
    asked: list[str] = []

    def new() -> str:
        asked.append("new")
        return NEW

    with Vault.open(path, passphrase="not the passphrase") as v, pytest.raises(errors.WrongPassphrase) as caught:
        v.change_passphrase(new)
    assert caught.value.exit_code == 12
    assert asked == []  # the current passphrase is checked before the new one is asked for
    assert (path / KEYFILE).read_bytes() == before
    with Vault.open(path, passphrase=OLD) as v:
        v.list()  # chains the pending refusal
        denied = [r for r in v.audit_records() if r.get("unkeyed")]
    # Recorded before the key was had: as the refused open it is (pending records have one shape).
    assert [(r["action"], r["outcome"], r["error"]) for r in denied] == [("open", "denied", "WrongPassphrase")]


@pytest.mark.parametrize(
    ("new", "message"),
    [("", "empty"), (OLD, "current passphrase"), (OLD.encode(), "current passphrase")],
    ids=["empty", "same", "same-bytes"],
)
def test_an_empty_or_unchanged_new_passphrase_is_refused(
    pvault: tuple[Path, list[str]], new: str | bytes, message: str
) -> None:
    path, _ = pvault
    before = (path / KEYFILE).read_bytes()
    with Vault.open(path, passphrase=OLD) as v, pytest.raises(errors.InvalidInput, match=message):
        v.change_passphrase(new)
    assert (path / KEYFILE).read_bytes() == before


def test_a_keychain_vault_has_no_passphrase_to_change(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    with Vault.init(tmp_path / "v", key_provider=KeychainProvider(backend=kr)) as v:
        v.save(_session("kept"))
        held = dict(kr.store)
        with pytest.raises(errors.InvalidInput, match="OS keychain"):
            v.change_passphrase(NEW)
    assert kr.store == held and not (tmp_path / "v" / KEYFILE).exists()


def test_a_rotation_in_flight_is_re_wrapped_whole_and_finished_by_the_next_open(
    pvault: tuple[Path, list[str]],
) -> None:
    """A rekey killed after writing the table under epoch e+1 leaves e and e+1 in the key file;
    the change must keep both (dropping either would lose the vault or the erase)."""
    path, ids = pvault
    with Vault.open(path, passphrase=OLD) as v:
        stored = {sid: v.load_json(sid) for sid in ids}
        table = v.parts.keys.keytable(fresh=True)  # first use: nothing to finish yet
        master = v.parts.keys.master()
        epoch, key = max(master.keys) + 1, _crypto.new_key()
        # The state of a rotation killed after steps 2.1 and 2.2 (docs/secure-deletion.md).
        v.parts.keys.provider.store(v.vault_id, MasterKeys({table.kek_epoch: master.current, epoch: key}))
        table.write(v.parts.ctx.root, key, epoch)
        v.change_passphrase(NEW)
    assert sorted(int(e) for e in _keyfile(path)["keys"]) == [epoch - 1, epoch]
    assert not _opens_with(path, OLD)
    with Vault.open(path, passphrase=NEW) as v:
        assert {sid: v.load_json(sid) for sid in ids} == stored  # first use finishes the rotation
        assert v.verify(read_data=True).ok
    assert sorted(int(e) for e in _keyfile(path)["keys"]) == [epoch]


def test_a_process_unlocked_before_the_change_cannot_write_the_old_passphrase_back(
    pvault: tuple[Path, list[str]],
) -> None:
    path, ids = pvault
    with Vault.open(path, passphrase=OLD) as stale, Vault.open(path, passphrase=OLD) as changer:
        stale.list()  # unlocked: the old salt's key-encryption key is cached
        changer.change_passphrase(NEW)
        with pytest.raises(errors.WrongPassphrase):
            stale.rekey()
        with pytest.raises(errors.WrongPassphrase):
            stale.delete(ids[2])
        # The provider itself never writes under a stale passphrase, nor under a salt of its own.
        with pytest.raises(errors.WrongPassphrase):
            stale.parts.keys.provider.store(stale.vault_id, MasterKeys({1: _crypto.new_key()}))
    assert not _opens_with(path, OLD)
    with Vault.open(path, passphrase=NEW) as v:
        assert sorted(str(s.id) for s in v.list()) == sorted(ids)


def test_a_reader_that_opened_the_old_key_file_reads_the_new_one(
    pvault: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change overwrites the replaced key file through a descriptor it held: a reader that
    opened the old file just before reads zeros. That is a replaced file, not a damaged one:
    the read is done again on the new file (never 'damaged; restore it from a backup')."""
    path, ids = pvault
    real_read = _fs.Dir.read
    raced: list[bytes] = []
    changing: list[bool] = []

    def read_across_a_change(self: _fs.Dir, name: str, *, max_size: int) -> bytes:
        if name != KEYFILE or raced or changing:
            return real_read(self, name, max_size=max_size)
        fd = os.open(KEYFILE, os.O_RDONLY, dir_fd=self.fd)  # opened before the change ...
        try:
            changing.append(True)
            with Vault.open(path, passphrase=OLD) as changer:
                changer.change_passphrase(NEW)
            raced.append(os.read(fd, max_size))  # ... read after it
        finally:
            os.close(fd)
        return raced[0]

    monkeypatch.setattr(_fs.Dir, "read", read_across_a_change)
    with Vault.open(path, passphrase=NEW) as v:
        assert sorted(str(s.id) for s in v.list()) == sorted(ids)
    assert raced and not raced[0].strip(b"\0")  # the old file really was overwritten under the reader


def test_an_opener_racing_a_rotation_reads_the_key_file_again(
    pvault: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An opener reads the key file, then the key table, without the vault lock: a rotation by
    another process in between leaves a table under an epoch the keys read lack.  The key file
    is read again (as a keychain entry is), never 'restore the key file from a backup'."""
    from sessionseal._keytable import KeyTable

    path, ids = pvault
    real_load = KeyTable.load.__func__  # type: ignore[attr-defined]
    rotated: list[int] = []

    def load_after_a_rotation(cls: type[KeyTable], root: _fs.Dir, vault_id: Any, master: MasterKeys) -> KeyTable:
        if not rotated:
            rotated.append(0)
            with Vault.open(path, passphrase=OLD) as other:
                rotated.append(other.rekey())
        return real_load(cls, root, vault_id, master)  # type: ignore[no-any-return]

    monkeypatch.setattr(KeyTable, "load", classmethod(load_after_a_rotation))
    with Vault.open(path, passphrase=OLD) as v:
        assert sorted(str(s.id) for s in v.list()) == sorted(ids)
    assert rotated[1:] and sorted(int(e) for e in _keyfile(path)["keys"]) == [rotated[1]]


def test_a_key_file_that_cannot_be_opened_for_writing_is_still_replaced(
    pvault: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key file of mode 0400 (EACCES for its owner, unless root) was always replaced by a
    rename; overwriting the old one is best effort and must not turn that into a failure."""
    import errno

    path, ids = pvault
    real_open = os.open

    def refuse_writes_to_the_key_file(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if name == KEYFILE and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return int(real_open(name, flags, *args, **kwargs))

    monkeypatch.setattr(os, "open", refuse_writes_to_the_key_file)
    with Vault.open(path, passphrase=OLD) as v:
        v.rekey()
        assert v.change_passphrase(NEW) is False  # replaced; the old content could not be overwritten
    monkeypatch.undo()
    assert _opens_with(path, NEW) and not _opens_with(path, OLD)
    with Vault.open(path, passphrase=NEW) as v:
        assert sorted(str(s.id) for s in v.list()) == sorted(ids)


def test_a_damaged_key_file_is_still_reported_as_damaged(pvault: tuple[Path, list[str]]) -> None:
    path, _ = pvault
    (path / KEYFILE).write_bytes(b"\0" * 200)
    with Vault.open(path, passphrase=OLD) as v, pytest.raises(errors.IntegrityError, match="damaged"):
        v.list()


def test_async_vault_changes_the_passphrase(pvault: tuple[Path, list[str]]) -> None:
    import asyncio

    from sessionseal import AsyncVault

    path, _ = pvault

    async def main() -> bool:
        async with await AsyncVault.open(path, passphrase=OLD) as v:
            return await v.change_passphrase(NEW.encode)  # a callable: asked for in the worker thread

    assert asyncio.run(main()) is True
    assert _opens_with(path, NEW) and not _opens_with(path, OLD)


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.delenv("SESSIONSEAL_BUNDLE_PASSPHRASE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def _secret_file(tmp_path: Path, name: str, text: str, mode: int = 0o600) -> Path:
    f = tmp_path / name
    f.write_text(text + "\n")
    f.chmod(mode)
    return f


def _cli_vault(tmp_path: Path) -> tuple[Path, str]:
    """A passphrase vault made through the library (scrypt 2^14: the CLI's 2^17 is slow), one session."""
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(OLD, log2_n=14)) as v:
        sid = str(v.save(_session("kept")))
    return path, sid


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_a_passphrase_file_others_can_reach_is_refused_with_exit_6(
    run: Callable[..., Result], tmp_path: Path, mode: int
) -> None:
    _, sid = _cli_vault(tmp_path)
    pf = _secret_file(tmp_path, "pass", OLD, mode)
    r = run("--passphrase-file", str(pf), "show", sid)
    assert r.exit_code == errors.UnsafePermissions.exit_code == 6
    assert r.output.count("\n") == 1 and r.output.startswith("sessionseal: error: --passphrase-file ")
    assert f"chmod 600 {pf}" in r.output and f"{mode:04o}" in r.output
    assert OLD not in r.output and "Traceback" not in r.output
    # Nothing was created either: init refuses the same file before making anything.
    r = run("--vault", str(tmp_path / "new"), "--passphrase-file", str(pf), "init", "--key-provider", "passphrase")
    assert r.exit_code == 6 and not (tmp_path / "new").exists()


def test_a_private_passphrase_file_and_a_link_to_one_are_accepted(run: Callable[..., Result], tmp_path: Path) -> None:
    _, sid = _cli_vault(tmp_path)
    pf = _secret_file(tmp_path, "pass", OLD)
    assert run("--passphrase-file", str(pf), "show", sid, "--json").exit_code == 0
    (tmp_path / "link").symlink_to(pf)  # the file it names is checked, as ssh checks a key file
    assert run("--passphrase-file", str(tmp_path / "link"), "show", sid, "--json").exit_code == 0
    pf.chmod(0o644)
    assert run("--passphrase-file", str(tmp_path / "link"), "show", sid).exit_code == 6


def test_a_passphrase_file_of_another_user_is_refused(run: Callable[..., Result], tmp_path: Path) -> None:
    _, sid = _cli_vault(tmp_path)
    pf = _secret_file(tmp_path, "pass", OLD)
    try:
        os.chown(pf, 54321, -1)  # a uid that is neither ours nor root's
    except PermissionError:
        pytest.skip("needs root to give a file to another user")
    r = run("--passphrase-file", str(pf), "show", sid)
    assert r.exit_code == 6 and "owned by uid 54321" in r.output and OLD not in r.output


def test_a_pipe_is_a_legitimate_passphrase_file(run: Callable[..., Result], tmp_path: Path) -> None:
    """/dev/fd/N and /dev/stdin are no regular files: only the processes holding them can read them."""
    _, sid = _cli_vault(tmp_path)
    rfd, wfd = os.pipe()
    try:
        os.write(wfd, OLD.encode() + b"\n")
        os.close(wfd)
        assert stat.S_ISFIFO(os.fstat(rfd).st_mode)
        r = run("--passphrase-file", f"/dev/fd/{rfd}", "show", sid, "--json")
    finally:
        os.close(rfd)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("command", ["export", "import"])
def test_a_bundle_passphrase_file_others_can_read_is_refused_with_exit_6(
    run: Callable[..., Result], tmp_path: Path, command: str
) -> None:
    assert run("init").exit_code == 0  # a keychain vault: only the bundle's passphrase is read
    sid = run("save", input=MINIMAL).output.strip()
    loose = _secret_file(tmp_path, "bundle-pass", "a bundle passphrase", 0o644)
    bundle = tmp_path / "out.bundle"
    if command == "import":
        private = _secret_file(tmp_path, "private-pass", "a bundle passphrase")
        assert run("export", sid, "--out", str(bundle), "--bundle-passphrase-file", str(private)).exit_code == 0
        r = run("import", str(bundle), "--bundle-passphrase-file", str(loose))
    else:
        r = run("export", sid, "--out", str(bundle), "--bundle-passphrase-file", str(loose))
        assert not bundle.exists()
    assert r.exit_code == 6, r.output
    assert "--bundle-passphrase-file" in r.output and f"chmod 600 {loose}" in r.output
    assert "a bundle passphrase" not in r.output


@pytest.mark.parametrize(
    ("passphrase", "warned"),
    [
        ("qz7", True),
        ("qz7-11chars", True),
        ("ünïcödé-qz", True),  # 14 bytes, 10 characters
        ("qz7-12-chars", False),
        ("ünïcödé-qz7x", False),
    ],
)
@pytest.mark.parametrize("form", ["file", "env"])
def test_init_warns_about_a_passphrase_under_12_characters(
    run: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    passphrase: str,
    warned: bool,
    form: str,
) -> None:
    monkeypatch.setattr(PassphraseProvider, "__init__", _fast_init)
    args = ["init", "--key-provider", "passphrase"]
    if form == "file":
        args = ["--passphrase-file", str(_secret_file(tmp_path, "pass", passphrase)), *args]
    else:
        monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", passphrase)
    r = run(*args)
    assert r.exit_code == 0, r.output  # a warning, not a refusal
    assert ("shorter than 12 characters" in r.output) is warned
    assert passphrase not in r.output


_real_init = PassphraseProvider.__init__


def _fast_init(self: PassphraseProvider, passphrase: Any, **kwargs: Any) -> None:
    # The CLI creates key files at the default cost (2^17, 128 MiB); the tests need not wait for it.
    _real_init(self, passphrase, **{**kwargs, "log2_n": 14})


def test_passphrase_change_round_trip(run: Callable[..., Result], tmp_path: Path) -> None:
    _, sid = _cli_vault(tmp_path)
    old, new = _secret_file(tmp_path, "old", OLD), _secret_file(tmp_path, "new", NEW)
    r = run("--passphrase-file", str(old), "passphrase", "change", "--new-passphrase-file", str(new), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["changed"] is True and doc["old_key_file_overwritten"] is True
    r = run("--passphrase-file", str(old), "show", sid)
    assert r.exit_code == errors.WrongPassphrase.exit_code == 12
    shown = run("--passphrase-file", str(new), "show", sid, "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["title"] == "kept"
    audit = run("--passphrase-file", str(new), "audit", "show", "--action", "passphrase.change", "--json")
    [record] = [json.loads(line) for line in audit.output.splitlines()]
    assert record["outcome"] == "ok" and record["user"]
    # A wrong current passphrase: exit 12, audited as denied, and the new one still opens.
    r = run("--passphrase-file", str(old), "passphrase", "change", "--new-passphrase-file", str(new))
    assert r.exit_code == 12
    audit = run("--passphrase-file", str(new), "audit", "show", "--action", "open", "--outcome", "denied", "--json")
    assert [json.loads(line)["error"] for line in audit.output.splitlines()] == ["WrongPassphrase"] * 2
    assert run("--passphrase-file", str(new), "show", sid, "--json").exit_code == 0


def test_passphrase_change_hygiene_in_the_cli(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, sid = _cli_vault(tmp_path)
    old = _secret_file(tmp_path, "old", OLD)
    before = (path / KEYFILE).read_bytes()
    # Without a terminal the new passphrase comes from its file only: never from the environment.
    monkeypatch.setenv("SESSIONSEAL_PASSPHRASE", NEW)
    r = run("--passphrase-file", str(old), "passphrase", "change")
    assert r.exit_code == 5 and "--new-passphrase-file" in r.output
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE")
    loose = _secret_file(tmp_path, "loose", NEW, 0o644)
    r = run("--passphrase-file", str(old), "passphrase", "change", "--new-passphrase-file", str(loose))
    assert r.exit_code == 6 and "--new-passphrase-file" in r.output and "chmod 600" in r.output
    assert (path / KEYFILE).read_bytes() == before
    short = _secret_file(tmp_path, "short", "tiny")
    r = run("--passphrase-file", str(old), "passphrase", "change", "--new-passphrase-file", str(short))
    assert r.exit_code == 0 and "shorter than 12 characters" in r.output
    assert run("--passphrase-file", str(short), "show", sid, "--json").exit_code == 0


def test_passphrase_change_on_a_keychain_vault_is_refused(run: Callable[..., Result], tmp_path: Path) -> None:
    assert run("init").exit_code == 0
    new = _secret_file(tmp_path, "new", NEW)
    r = run("passphrase", "change", "--new-passphrase-file", str(new))
    assert r.exit_code == errors.InvalidInput.exit_code and "OS keychain" in r.output
    assert r.output.count("\n") == 1


def _expect(master: int, text: str, seen: bytearray, *, since: int = 0, timeout: float = 60.0) -> None:
    """Read the terminal into *seen* until *text* has appeared after offset *since* (a generous
    bound: it waits on scrypt, not on speed)."""
    import select
    import time

    end = time.monotonic() + timeout
    while text.encode() not in seen[since:]:
        ready, _, _ = select.select([master], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"no {text!r} on the terminal; saw {bytes(seen)!r}"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        assert chunk, f"the terminal closed before {text!r}; saw {bytes(seen)!r}"
        seen += chunk


def test_at_a_terminal_the_new_passphrase_is_asked_twice(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    path, sid = _cli_vault(tmp_path)
    master, slave = pty.openpty()
    env = {
        k: v for k, v in os.environ.items() if k not in ("CI", "SESSIONSEAL_NONINTERACTIVE", "SESSIONSEAL_PASSPHRASE")
    }
    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", "--vault", str(path), "passphrase", "change"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "PYTHONPATH": src},
        start_new_session=True,
    )
    os.close(slave)
    seen = bytearray()
    try:
        _expect(master, "Vault passphrase:", seen)
        os.write(master, OLD.encode() + b"\n")
        _expect(master, "New vault passphrase:", seen)
        os.write(master, b"tiny one\n")
        _expect(master, "Repeat for confirmation:", seen)
        os.write(master, b"a typo\n")  # a mismatch is asked again, never taken
        _expect(master, "do not match", seen)
        retry = seen.index(b"do not match")
        _expect(master, "New vault passphrase:", seen, since=retry)
        os.write(master, b"tiny one\n")
        _expect(master, "Repeat for confirmation:", seen, since=retry)
        os.write(master, b"tiny one\n")
        _expect(master, "Changed the vault's passphrase", seen)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"shorter than 12 characters" in seen
    assert b"tiny one" not in seen and OLD.encode() not in seen  # never echoed
    assert _opens_with(path, "tiny one") and not _opens_with(path, OLD)
    with Vault.open(path, passphrase="tiny one") as v:
        assert v.load(sid).title == "kept"
