"""A hostile file system inside and around a vault (issue 9): every kind of file and directory
of a vault replaced by something it must not trust, under every kind of operation.

For each entry of the vault tree (docs/design.md, "Vault tree", and a few entries that do not
belong there), each hostile kind planted in its place, and each operation, the operation either
raises a documented :mod:`sessionseal.errors` type with a one-line message, or leaves the entry
alone (or replaces it with a file of its own): which of the two is stated per entry and
operation in ``REFUSED_BY``.  And it never

* hangs (a FIFO, a device: every operation runs in a thread with a deadline),
* follows a link: an inotify watch on the link's target must see no open, no read, no write,
  no change of attributes (the target's bytes, mode, mtime and inode are compared too),
* writes through a hard link, a FIFO or a device (the FIFO's and the device's other ends are
  read after the operation: nothing may have arrived),
* loses the owner's data: after the hostile entry is taken away (and the original put back,
  unless the operation already wrote a sound file of its own there), the vault opens and
  every session loads as it was.

The modes and owners are checked by our code, so this runs as root too (root is needed for
the device and foreign-owner kinds, which are skipped otherwise).  A real second user, whom the
kernel refuses, is in tests/integration/test_multiuser.py.

Then the path to the vault (parents others can write or own, a vault directory that is a link,
a parent that is one), descriptors left open, and a rolled-back session file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import struct
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionseal import KeychainProvider, PassphraseProvider, Vault, _keystore, errors
from sessionseal._vault import _fulltext
from sessionseal._vault._ftsfiles import FTS_DIR
from tests.memkeyring import MemoryKeyring

IS_ROOT = os.geteuid() == 0
FOREIGN_UID = 65534  # nobody
DEADLINE = 10.0  # seconds an operation may take before it counts as hung
PASSPHRASE = "hostile fs passphrase"
VICTIM_TEXT = b"root:x:0:0:root:/root:/bin/bash\nvictim-marker-7c1e:x:1000:1000::/home/victim:/bin/sh\n"
MARKER = "victim-marker-7c1e"
ETC_TARGET = Path("/etc/hostname")

DOC_A = {"title": "alpha", "messages": [{"role": "user", "content": "alpha words"}]}
DOC_B = {"title": "beta", "messages": [{"role": "user", "content": "beta words"}]}
DOC_NEW = {"title": "gamma", "messages": [{"role": "user", "content": "gamma words"}]}
CONFIG = {"retention": {"max_age": "3650d", "auto_interval": "1d"}, "audit": {"rotate_bytes": 65536}}


# ------------------------------------------------------------------------------------------
# The template vaults: built once, copied for every case (a copy and its key cost ~1 ms).


@dataclass(frozen=True)
class Template:
    path: Path
    keyring: dict[tuple[str, str], str] | None  # None: a passphrase vault
    a: uuid.UUID  # has a checkpoint
    b: uuid.UUID
    a_name: str  # the file name stems of sessions a and b
    b_name: str
    seg_name: str  # fts/: the segment holding session a, the delta log holding b's record
    delta_name: str


def _build(path: Path, *, passphrase: bool) -> Template:
    kr = MemoryKeyring()
    provider: Any = PassphraseProvider(PASSPHRASE, log2_n=14) if passphrase else KeychainProvider(backend=kr)
    with Vault.init(path, key_provider=provider) as v:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_fulltext, "COMPACT_FRAMES", 1)  # a's record is folded into a segment at once
            a = v.save(DOC_A)
        b = v.save(DOC_B)  # b's record stays in the delta log
        v.checkpoint(a)
        v.set_config(CONFIG)  # config.sst, and autoclean.json (retention.auto_interval)
        v.parts.auditor.configure()
        v.parts.audit_log.max_file_bytes = 1  # the next record rotates: audit/audit-<seq>.log
        v.list()
        names = v.parts.keys.file_name(a), v.parts.keys.file_name(b)
    fts = {p.suffix: p.name for p in (path / FTS_DIR).iterdir()}
    assert sorted(fts) == [".delta", ".seg", ".sst"]
    assert any(p.name.startswith("audit-") for p in (path / "audit").iterdir())
    with Vault.open(path, key_provider=provider) as v:  # a new auto_interval runs once at the next open
        assert v.last_auto_cleanup is not None
    assert b"next_run" in (path / "autoclean.json").read_bytes()
    # A refused open leaves an unkeyed record in audit/pending.log (folded in by the next keyed write).
    path.chmod(0o750)
    with pytest.raises(errors.UnsafePermissions):
        Vault.open(path, key_provider=provider)
    path.chmod(0o700)
    assert (path / "audit" / "pending.log").exists()
    return Template(path, None if passphrase else dict(kr.store), a, b, *names, fts[".seg"], fts[".delta"])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the cases run: tmpfs when there is one (links, FIFOs, device nodes, owners and modes
    behave there as on disk; a case costs half as much without a journal), else pytest's tmp."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        path = Path(tempfile.mkdtemp(prefix="sessionseal-hostile-", dir=shm))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def templates(base: Path) -> dict[str, Template]:
    (base / "templates").mkdir(mode=0o700)
    return {
        "keychain": _build(base / "templates" / "kc", passphrase=False),
        "passphrase": _build(base / "templates" / "pp", passphrase=True),
    }


@pytest.fixture(scope="module")
def watch() -> Iterator[Watch]:
    """One inotify instance for every case: closing one takes the kernel ~10 ms (an RCU grace period)."""
    w = Watch()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def scratch(base: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Entries of the vault tree, and the hostile kinds planted in their place.


@dataclass(frozen=True)
class Entry:
    rel: str  # relative to the vault; {a} and {b} are sessions a's and b's file name stems
    is_dir: bool = False
    template: str = "keychain"
    #: Not part of the vault: planted where nothing was.  As a regular file (for the owner and
    #: mode kinds) it holds a copy of this vault file (or a few bytes, when empty).
    extra_from: str | None = None


ENTRIES: dict[str, Entry] = {
    "vault.json": Entry("vault.json"),
    "keytable.sst": Entry("keytable.sst"),
    "index.sst": Entry("index.sst"),
    "config.sst": Entry("config.sst"),
    "keyfile.json": Entry("keyfile.json", template="passphrase"),
    "autoclean.json": Entry("autoclean.json"),
    "audit.log": Entry("audit/audit.log"),
    # The anchor of a vault of before issue 20; a vault whose state is anchored in its key
    # table has none, and never opens one: planted, it is an extra file.
    "anchor.sst": Entry("audit/anchor.sst", extra_from=""),
    "pending.log": Entry("audit/pending.log"),
    "audit-rotated.log": Entry("audit/audit-000000000001.log"),
    "session.sst": Entry("sessions/{a}.sst"),
    "checkpoint.ckp": Entry("checkpoints/{a}-1.ckp"),
    "vault.lock": Entry("locks/vault.lock"),
    "session.lock": Entry("locks/{a}.lock"),
    # Extra entries: a session file of no session (a copy of b's, under another name), a dead
    # writer's temp file (swept only when it is a regular file of ours), an unknown file.
    "stray.sst": Entry(f"sessions/{'0' * 32}.sst", extra_from="sessions/{b}.sst"),
    "temp-leftover": Entry("sessions/.tmp-999999999-0a0b0c0d0e0f", extra_from="sessions/{b}.sst"),
    "unknown-file": Entry("notes.txt", extra_from=""),
    "sessions/": Entry("sessions", is_dir=True),
    "checkpoints/": Entry("checkpoints", is_dir=True),
    "locks/": Entry("locks", is_dir=True),
    "audit/": Entry("audit", is_dir=True),
    # The full-text index (issue 23): a verified cache of its own, never a reason to refuse.
    "fts-manifest": Entry("fts/manifest.sst"),
    "fts-segment": Entry("fts/{seg}"),
    "fts-delta": Entry("fts/{delta}"),
    "fts-stray.seg": Entry(f"fts/{'0' * 32}.seg", extra_from="fts/{seg}"),
    "fts/": Entry("fts", is_dir=True),
}
#: The entries of the full-text index: the index is unusable (search streams) while one is
#: hostile, and no write of a session fails for it (docs/reliability.md).
FTS_ENTRIES = frozenset(n for n, e in ENTRIES.items() if e.rel.startswith("fts"))

ALL_OPS = frozenset({
    "open+list", "load", "save-new", "save-existing", "append", "checkpoint",
    "delete", "rekey", "cleanup", "audit-verify", "set-config", "reindex",
})  # fmt: skip
#: The operations that must refuse (UnsafePermissions) with each entry hostile; every other one must
#: succeed without it (it is not needed, or it is a cache that is ignored, then replaced by a rename).
REFUSED_BY: dict[str, frozenset[str]] = {
    # Read by every open, or by the first keyed step of every operation (which also records the
    # open in the audit log): nothing works without them, and nothing may work around them.
    "vault.json": ALL_OPS,
    "keytable.sst": ALL_OPS,
    "keyfile.json": ALL_OPS,
    # Every operation appends to the audit log (pending records are folded in then): it fails
    # closed rather than act unrecorded.
    "audit.log": ALL_OPS,
    "pending.log": ALL_OPS,
    # Directories are opened (and checked) by every open, the audit directory by the first record.
    "sessions/": ALL_OPS,
    "checkpoints/": ALL_OPS,
    "locks/": ALL_OPS,
    "audit/": ALL_OPS,
    # A verified cache: unreadable means rebuilt from the session files, written by a rename.
    "index.sst": frozenset(),
    # Only when the next automatic cleanup is due: unreadable means not due; a cleanup rewrites it.
    "autoclean.json": frozenset(),
    # Read only when the chain is verified.
    "audit-rotated.log": frozenset({"audit-verify"}),
    # The user's sanitizer rules and retention policy: never save, append or clean up without them.
    "config.sst": frozenset({"save-new", "save-existing", "append", "cleanup", "set-config"}),
    "checkpoint.ckp": frozenset({"checkpoint", "delete"}),
    # Listing reports it as a problem and lists the rest (checked below).
    "session.sst": frozenset({"load", "save-existing", "append", "checkpoint", "delete"}),
    "session.lock": frozenset({"save-existing", "append", "checkpoint", "delete"}),
    # Every operation appends its audit record under it: the chain's head is anchored in the
    # key table with the record (issue 20).
    "vault.lock": ALL_OPS,
    # Extra entries are never a reason to refuse: listed as a problem (a stray .sst), or ignored.
    "stray.sst": frozenset(),
    "anchor.sst": frozenset(),
    "temp-leftover": frozenset(),
    "unknown-file": frozenset(),
    **{n: frozenset() for n in FTS_ENTRIES},
    # A reindex builds the full-text index in fts/: never in a directory it cannot trust.
    "fts/": frozenset({"reindex"}),
}

FILE_KINDS = ["symlink-out", "symlink-etc", "hardlink-out", "fifo", "device", "foreign-owner", "mode-0644"]
DIR_KINDS = ["symlink-out", "fifo", "device", "foreign-owner", "mode-0755", "mode-0777"]
ROOT_ONLY = {"device", "foreign-owner"}
#: /etc/hostname is a real system file: only operations that must not write anything near it.
READ_OPS = {"open+list", "load", "audit-verify", "fts-view", "fts-verify"}
#: An extra entry matters to the operations that list or sweep the directories it is in.
EXTRA_OPS = {"open+list", "save-new", "delete", "rekey", "cleanup", "reindex", "fts-view", "fts-verify"}


# ------------------------------------------------------------------------------------------
# Oracles: inotify on link targets, the other ends of FIFOs and devices.

_IN_ACCESS, _IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x1, 0x2, 0x4, 0x8
_IN_OPEN, _IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x20, 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
#: Anything that shows the target was reached: opened, read, written, changed, renamed.
_REACHED = (
    _IN_ACCESS | _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_OPEN | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE
) | (_IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF)
#: For a hard link the target *is* the entry: when the vault's name is replaced (a rename over it) its link
#: count drops, which inotify reports as IN_ATTRIB; a chmod or chown would show in the fingerprint.
_NOT_RELINKED = _REACHED & ~_IN_ATTRIB
#: /etc/hostname may be opened by anyone else at any time: only changes count.
_CHANGED = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_DELETE_SELF | _IN_MOVE_SELF

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Watch:
    """inotify on a few paths; :meth:`events` says what happened to each since it was added."""

    def __init__(self) -> None:
        self.fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.names: dict[int, str] = {}

    def add(self, path: Path, mask: int) -> None:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.names[wd] = str(path)

    def events(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            pos = 0
            while pos < len(buf):
                wd, mask, _cookie, length = struct.unpack_from("iIII", buf, pos)
                pos += 16 + length
                if wd in self.names:
                    out.append((self.names[wd], mask))

    def close(self) -> None:
        os.close(self.fd)


def _fingerprint(path: Path) -> tuple[Any, ...]:
    """What must not change on a target: bytes (or a listing), inode, mode, owner, mtime (not the link
    count: replacing a hard-linked vault entry by a file of the vault's own drops it, as it should)."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        content: Any = sorted((p.name, p.read_bytes()) for p in path.iterdir())
    else:
        content = path.read_bytes()
    return content, st.st_ino, st.st_mode, st.st_uid, st.st_mtime_ns


def _char_device_with_a_readable_other_end() -> tuple[int, int | None]:
    """The rdev of a new pty's slave (what is written to it can be read from the master), or of
    /dev/null when this process could acquire a controlling terminal by opening a tty."""
    if os.getsid(0) != os.getpid():  # not a session leader: opening a tty never makes it ours
        master, slave = os.openpty()
        rdev = os.fstat(slave).st_rdev
        os.close(slave)
        os.set_blocking(master, False)
        return rdev, master
    return os.stat("/dev/null").st_rdev, None


# ------------------------------------------------------------------------------------------
# One case: copy a template, plant, run an operation with a deadline, check, restore, check.


@dataclass
class Case:
    path: Path
    entry: Path
    tpl: Template
    keyring: dict[tuple[str, str], str] | None

    def provider(self) -> Any:
        if self.keyring is None:
            # One for every case: it keeps the scrypt result for the template's salt (30 ms a case otherwise).
            return _PASSPHRASE_PROVIDER
        kr = MemoryKeyring()
        kr.store = self.keyring  # shared: a rotation made by the operation is seen by the checks after it
        return KeychainProvider(backend=kr)

    def open(self) -> Vault:
        return Vault.open(self.path, key_provider=self.provider())


_PASSPHRASE_PROVIDER = PassphraseProvider(PASSPHRASE)

Op = Callable[[Vault, Template], Any]

OPS: dict[str, Op] = {
    "open+list": lambda v, t: v.list_with_problems(),
    "load": lambda v, t: v.load(t.a),
    "save-new": lambda v, t: v.save(DOC_NEW),
    "save-existing": lambda v, t: v.save({**DOC_A, "id": str(t.a), "title": "alpha 2"}),
    "append": lambda v, t: (v.append(t.a, [{"role": "assistant", "content": "appended"}]), v.load(t.a)),
    "checkpoint": lambda v, t: v.checkpoint(t.a),
    "delete": lambda v, t: v.delete(t.a),
    "rekey": lambda v, t: v.rekey(),
    "cleanup": lambda v, t: v.cleanup(),
    "audit-verify": lambda v, t: v.verify_audit(),
    "set-config": lambda v, t: v.set_config({**CONFIG, "audit": {"rotate_bytes": 65536, "keep_files": 50}}),
    "reindex": lambda v, t: v.reindex(),
    "fts-view": lambda v, t: _fts_answer(v),
    "fts-verify": lambda v, t: v.verify(read_data=True),
}
#: Operations only the index's own entries are tried with.
FTS_OPS = frozenset({"fts-view", "fts-verify"})


def _fts_answer(v: Vault) -> list[uuid.UUID] | None:
    """The sessions the full-text index answers for "words" (None: no usable index)."""
    with v.parts.fulltext.view() as view:
        return None if view is None else sorted(h.session_id for h in view.index.search("words"))


@dataclass
class Outcome:
    error: BaseException | None
    output: str  # what the caller sees: the result's repr, or the error's message
    value: Any = None


def _run(case: Case, op: Op) -> Outcome:
    """Open the vault and run *op* in a thread; a hang fails the test (the thread is left behind)."""
    result: list[Outcome] = []

    def body() -> None:
        try:
            with case.open() as v:
                out = op(v, case.tpl)
            result.append(Outcome(None, repr(out), out))
        except BaseException as exc:  # judged by the test
            result.append(Outcome(exc, str(exc)))

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(DEADLINE)
    assert not t.is_alive(), f"the operation hung (more than {DEADLINE:g} s)"
    return result[0]


def _read_available(fd: int) -> bytes:
    """What can be read from a non-blocking FIFO or pty master now (a pty nobody opened says EIO)."""
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EIO):
            raise
        return b""


class Planted:
    """A hostile *kind* in place of a vault entry, with its oracles, and the way back."""

    def __init__(self, case: Case, kind: str, e: Entry, scratch: Path, watch: Watch) -> None:
        self.case, self.kind, self.is_dir = case, kind, e.is_dir
        self.entry = case.entry
        self.backup: Path | None = None if e.extra_from is not None else scratch / "backup"
        self.watch = watch
        self.targets: list[tuple[Path, int]] = []  # (path, events that must not happen)
        self.fingerprints: dict[Path, tuple[Any, ...]] = {}
        self.other_end: int | None = None  # the FIFO's or the device's: nothing may arrive there
        self.in_place = kind == "foreign-owner" or kind.startswith("mode-")
        if e.extra_from is not None and self.in_place:
            src = case.path / _rel(e, case.tpl, e.extra_from)
            self.entry.write_bytes(src.read_bytes() if e.extra_from else b"not a vault file\n")
            self.entry.chmod(0o600)
        self.original_stat = os.lstat(self.entry) if self.backup is not None or self.in_place else None
        if self.in_place:
            self._plant_in_place()
        else:
            if self.backup is not None:
                os.rename(self.entry, self.backup)
            self._plant_replacement(scratch)
        self.planted_ino = os.lstat(self.entry).st_ino
        for target, _ in self.targets:
            self.fingerprints[target] = _fingerprint(target)
        self.watch.events()  # what taking the fingerprints did, and what is left of earlier cases

    def _plant_in_place(self) -> None:
        if self.kind == "foreign-owner":
            os.chown(self.entry, FOREIGN_UID, FOREIGN_UID, follow_symlinks=False)
        else:
            os.chmod(self.entry, int(self.kind.removeprefix("mode-"), 8))

    def _plant_replacement(self, scratch: Path) -> None:
        kind, entry = self.kind, self.entry
        if kind == "symlink-etc":
            os.symlink(ETC_TARGET, entry)
            self._target(ETC_TARGET, _CHANGED)
        elif kind in ("symlink-out", "hardlink-out"):
            victim = self._victim(scratch / "victim")
            if kind == "symlink-out":
                os.symlink(victim, entry)
                self._target(victim, _REACHED)
                if self.is_dir:
                    self._target(victim / "inside", _REACHED)
            else:
                os.link(victim, entry)
                self._target(victim, _NOT_RELINKED)
        elif kind == "fifo":
            os.mkfifo(entry, 0o600)
            # Both ends held here: an opener never blocks on open, a reader would block on read
            # (the deadline catches it), and whatever is written can be read back.
            self.other_end = os.open(entry, os.O_RDWR | os.O_NONBLOCK)
        elif kind == "device":
            rdev, self.other_end = _char_device_with_a_readable_other_end()
            try:
                os.mknod(entry, 0o600 | stat.S_IFCHR, rdev)
            except OSError as exc:
                if self.backup is not None:
                    os.rename(self.backup, entry)
                if self.other_end is not None:
                    os.close(self.other_end)
                pytest.skip(f"mknod is refused here: {exc}")
        else:  # pragma: no cover
            raise AssertionError(kind)

    def _victim(self, victim: Path) -> Path:
        """A file (a passwd-like one) or a directory outside the vault for a link to point at."""
        if self.is_dir:
            assert self.backup is not None
            victim.mkdir(mode=0o700)
            (victim / "inside").write_bytes(VICTIM_TEXT)
            # A copy of what the directory held: a product that followed would find it all valid.
            for p in self.backup.iterdir():
                shutil.copy2(p, victim / p.name)
        else:
            victim.write_bytes(VICTIM_TEXT)
            victim.chmod(0o600)
        return victim

    def _target(self, path: Path, forbidden: int) -> None:
        self.watch.add(path, _REACHED)
        self.targets.append((path, forbidden))

    def check_untouched(self, outcome: Outcome) -> None:
        """Nothing was followed, read through, written through; nothing of a target came out."""
        forbidden = {str(p): mask for p, mask in self.targets}
        reached = [(p, hex(m)) for p, m in self.watch.events() if m & forbidden.get(p, 0)]
        assert not reached, f"a link target was reached: {reached}"
        for target, before in self.fingerprints.items():
            assert _fingerprint(target) == before, f"{target} changed"
        output = outcome.output.replace(str(self.case.path), "<vault>")
        assert MARKER not in output
        if self.kind == "symlink-etc":
            text = ETC_TARGET.read_text().strip()
            if len(text) >= 6:  # a short host name ("vm") may be part of anything
                assert text not in output
        if self.other_end is not None:
            arrived = _read_available(self.other_end)
            assert arrived == b"", f"{len(arrived)} bytes were written through the {self.kind}"

    def still_planted(self) -> bool:
        try:
            return os.lstat(self.entry).st_ino == self.planted_ino
        except FileNotFoundError:
            return False

    def restore(self) -> None:
        """Take the hostile entry away; put the original back unless the operation already put a
        sound file of its own there (or removed it, as a delete does)."""
        if self.backup is None:  # an extra entry: just taken away
            if self.still_planted():
                os.unlink(self.entry)
        elif self.in_place:
            if self.still_planted():
                assert self.original_stat is not None
                os.chown(self.entry, self.original_stat.st_uid, self.original_stat.st_gid, follow_symlinks=False)
                os.chmod(self.entry, stat.S_IMODE(self.original_stat.st_mode))
        elif self.still_planted():
            os.unlink(self.entry)  # a link, a FIFO, a device: never a directory
            os.rename(self.backup, self.entry)
        if self.other_end is not None:
            os.close(self.other_end)


def _check_data_kept(case: Case, op_name: str, outcome: Outcome) -> None:
    """The hostile entry is gone: the vault opens and every earlier session loads as it was."""
    t = case.tpl
    with case.open() as v:
        b = v.load(t.b)
        assert (b.title, b.messages[0].content[0].text) == ("beta", "beta words")  # type: ignore[union-attr]
        try:
            a = v.load(t.a)
        except errors.SessionNotFound:
            assert op_name == "delete", "session a was lost"
        else:
            assert a.title in ("alpha", "alpha 2")
            assert a.messages[0].content[0].text == "alpha words"  # type: ignore[union-attr]
            if op_name != "delete":
                assert v.checkpoints(t.a), "session a's checkpoint was lost"


def _rel(e: Entry, tpl: Template, rel: str | None = None) -> str:
    names = {"a": tpl.a_name, "b": tpl.b_name, "seg": tpl.seg_name, "delta": tpl.delta_name}
    return (e.rel if rel is None else rel).format(**names)


def _cases() -> Iterator[Any]:
    for ename, e in ENTRIES.items():
        for kind in DIR_KINDS if e.is_dir else FILE_KINDS:
            for op in OPS:
                if (kind == "symlink-etc" and op not in READ_OPS) or (e.extra_from is not None and op not in EXTRA_OPS):
                    continue
                if op in FTS_OPS and ename not in FTS_ENTRIES:
                    continue
                marks = [pytest.mark.skipif(not IS_ROOT, reason="needs root")] if kind in ROOT_ONLY else []
                yield pytest.param(ename, kind, op, id=f"{ename}-{kind}-{op}", marks=marks)


@dataclass(frozen=True)
class Env:
    templates: dict[str, Template]
    scratch: Path  # this case's own directory
    watch: Watch


@pytest.fixture
def env(templates: dict[str, Template], scratch: Path, watch: Watch) -> Env:
    return Env(templates, scratch, watch)


def run_case(env: Env, ename: str, kind: str, op_name: str) -> Outcome:
    e = ENTRIES[ename]
    tpl = env.templates[e.template]
    scratch, watch = env.scratch, env.watch
    path = scratch / "vault"
    _keystore._cache.clear()  # copies share the template's vault id: no keys cached from another case
    shutil.copytree(tpl.path, path, symlinks=True)
    entry = path / _rel(e, tpl)
    case = Case(path, entry, tpl, dict(tpl.keyring) if tpl.keyring is not None else None)
    planted = Planted(case, kind, e, scratch, watch)
    try:
        outcome = _run(case, OPS[op_name])
        planted.check_untouched(outcome)
    finally:
        planted.restore()
    if outcome.error is not None:
        assert isinstance(outcome.error, errors.SessionSealError), repr(outcome.error)
        assert type(outcome.error).__name__ in errors.__all__
        assert "\n" not in str(outcome.error) and str(outcome.error), repr(str(outcome.error))
    if op_name in REFUSED_BY[ename]:
        assert isinstance(outcome.error, errors.UnsafePermissions), f"not refused: {outcome.output[:300]}"
        assert case.entry.name in str(outcome.error)
    else:
        assert outcome.error is None, f"{type(outcome.error).__name__}: {outcome.error}"
    if op_name == "fts-verify" and e.extra_from is None:
        # Reported (the directory as 'unsafe', a file as damaged or missing), never followed.
        assert outcome.value.problems, "verify saw nothing"
    if op_name == "fts-view":
        # Streamed while hostile (never a file of it followed or trusted); a stray file is ignored.
        assert outcome.value == (sorted([tpl.a, tpl.b]) if e.extra_from is not None else None)
    if op_name == "open+list" and outcome.error is None:
        summaries, problems = outcome.value
        listed = {s.id for s in summaries}
        if ename in ("session.sst", "stray.sst"):  # flagged, and the others listed
            assert listed == ({tpl.b} if ename == "session.sst" else {tpl.a, tpl.b})
            assert len(problems) == 1 and case.entry.name in problems[0]
        else:
            assert listed == {tpl.a, tpl.b} and problems == []
    _check_data_kept(case, op_name, outcome)
    return outcome


@pytest.mark.parametrize(("ename", "kind", "op_name"), list(_cases()))
def test_hostile_entry(env: Env, ename: str, kind: str, op_name: str) -> None:
    run_case(env, ename, kind, op_name)


# ------------------------------------------------------------------------------------------
# The path to the vault: its parents, and the vault directory itself.


def _tree(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under *path* (not following links) with its mode and bytes."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = os.lstat(p)
        out[str(p.relative_to(path))] = (st.st_mode, p.read_bytes() if stat.S_ISREG(st.st_mode) else b"")
    return out


def _provider() -> KeychainProvider:
    return KeychainProvider(backend=MemoryKeyring())


@dataclass(frozen=True)
class Ancestor:
    depth: int  # 1: the vault's parent, 2: its grandparent
    mode: int
    uid: int | None = None  # None: ours
    refused: str | None = None  # what the message says, or None: accepted


ANCESTORS = {
    "parent-0777": Ancestor(1, 0o777, refused="world-writable without the sticky bit"),
    "grandparent-0777": Ancestor(2, 0o777, refused="world-writable without the sticky bit"),
    # Sticky, like /tmp: others may create entries but not rename or remove ours.
    "parent-1777": Ancestor(1, 0o1777),
    "parent-1777-foreign-owner": Ancestor(1, 0o1777, uid=FOREIGN_UID, refused=f"owned by uid {FOREIGN_UID}"),
    "parent-0755-foreign-owner": Ancestor(1, 0o755, uid=FOREIGN_UID, refused=f"owned by uid {FOREIGN_UID}"),
    "grandparent-0711-foreign-owner": Ancestor(2, 0o711, uid=FOREIGN_UID, refused=f"owned by uid {FOREIGN_UID}"),
}


@pytest.mark.parametrize("when", ["init", "open"])
@pytest.mark.parametrize("name", list(ANCESTORS))
def test_vault_path_through_an_unsafe_parent(tmp_path: Path, name: str, when: str) -> None:
    a = ANCESTORS[name]
    if a.uid is not None and not IS_ROOT:
        pytest.skip("chown to another uid needs root")
    vault = tmp_path / "g" / "p" / "vault"
    vault.parent.mkdir(parents=True, mode=0o700)
    provider = _provider()
    if when == "open":
        Vault.init(vault, key_provider=provider).close()
    before = _tree(tmp_path / "g")
    changed = vault.parents[a.depth - 1]
    os.chmod(changed, a.mode)
    if a.uid is not None:
        os.chown(changed, a.uid, a.uid)
    try:
        make: Callable[[], Vault] = (
            (lambda: Vault.init(vault, key_provider=provider))
            if when == "init"
            else (lambda: Vault.open(vault, key_provider=provider))
        )
        if a.refused is None:
            with make() as v:
                v.save(DOC_A)
            return
        with pytest.raises(errors.UnsafePermissions, match=a.refused) as info:
            make()
        assert str(changed) in str(info.value) and "\n" not in str(info.value)
        # Refused before anything was written: no vault made, no refusal recorded in it.
        after = _tree(tmp_path / "g")
        changed_mode = {str(changed.relative_to(tmp_path / "g"))}
        assert {k: v for k, v in after.items() if k not in changed_mode} == {
            k: v for k, v in before.items() if k not in changed_mode
        }
    finally:
        os.chown(changed, os.geteuid(), os.getegid())
        os.chmod(changed, 0o700)


@pytest.mark.skipif(not IS_ROOT, reason="chown to another uid needs root")
@pytest.mark.parametrize("planted", ["foreign-dir", "symlink-to-ours"])
def test_vault_path_planted_in_a_sticky_directory(tmp_path: Path, planted: str) -> None:
    """In a sticky world-writable directory (accepted, like /tmp) another user can still create
    the vault's name first: their directory, or a link to one of ours, is refused, never used."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    vault = shared / "vault"
    ours = tmp_path / "ours"
    ours.mkdir(mode=0o700)
    if planted == "foreign-dir":
        vault.mkdir(mode=0o700)
        os.chown(vault, FOREIGN_UID, FOREIGN_UID)
        match = f"owned by uid {FOREIGN_UID}"
    else:
        vault.symlink_to(ours)
        match = "symlink"
    for make in (Vault.init, Vault.open):
        with pytest.raises(errors.UnsafePermissions, match=match):
            make(vault, key_provider=_provider())
    assert list(ours.iterdir()) == []
    if planted == "foreign-dir":
        assert list(vault.iterdir()) == []


@pytest.mark.parametrize("target", ["a-vault", "an-empty-dir", "nothing"])
def test_vault_directory_that_is_a_symlink(tmp_path: Path, target: str) -> None:
    """Neither init nor open goes through a vault path that is itself a link; its target is untouched."""
    real = tmp_path / "real"
    if target == "a-vault":
        Vault.init(real, key_provider=_provider()).close()
    elif target == "an-empty-dir":
        real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    before = _tree(tmp_path)
    for make in (Vault.init, Vault.open):  # a dangling link too: open sees that something is there
        with pytest.raises(errors.UnsafePermissions, match="symlink") as info:
            make(link, key_provider=_provider())
        assert "\n" not in str(info.value)
    assert _tree(tmp_path) == before  # nothing created at, or written into, the target


def test_symlinked_parent_is_resolved_once(tmp_path: Path) -> None:
    """A parent that is a link is resolved when the vault is opened: pointing the link elsewhere
    afterwards (at a copy of the vault) sends nothing there."""
    provider = _provider()
    Vault.init(tmp_path / "home" / "vault", key_provider=provider).close()
    shutil.copytree(tmp_path / "home", tmp_path / "decoy", symlinks=True)
    link = tmp_path / "home-link"
    link.symlink_to(tmp_path / "home")
    decoy_before = _tree(tmp_path / "decoy")
    with Vault.open(link / "vault", key_provider=provider) as v:
        assert v.path == tmp_path / "home" / "vault"
        link.unlink()
        link.symlink_to(tmp_path / "decoy")
        sid = v.save(DOC_A)
        v.append(sid, [{"role": "assistant", "content": "more"}])
        v.checkpoint(sid)
        v.rekey()
    assert _tree(tmp_path / "decoy") == decoy_before
    with Vault.open(tmp_path / "home" / "vault", key_provider=provider) as v:
        assert v.load(sid).title == "alpha"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
@pytest.mark.parametrize("refused", [None, "sessions", "checkpoints", "locks", "audit"])
def test_no_descriptor_is_left_open(tmp_path: Path, refused: str | None) -> None:
    """Every open, refused or not, closes what it opened (the matrix above opens thousands)."""
    provider = _provider()
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=provider) as v:
        sid = v.save(DOC_A)
        v.checkpoint(sid)
    if refused is not None:
        (path / refused).chmod(0o777)
    before = _open_fds()
    for _ in range(5):
        try:
            with Vault.open(path, key_provider=provider) as v:
                v.list()
                v.checkpoints(sid)
        except errors.UnsafePermissions:
            assert refused is not None
        else:
            assert refused is None
    assert _open_fds() == before


@pytest.mark.parametrize("how", ["older-version", "cut-short"])
def test_a_rolled_back_session_file_stays_reported(tmp_path: Path, how: str) -> None:
    """Someone who could write the vault (its owner, or anyone while a mistake left it open) puts
    back an older copy of a session file: every listing reports it, not only the first (which
    used to record the older file in the index, so that nothing reported it again), until the
    owner saves the session anew or accepts the files with reindex."""
    provider = _provider()
    with Vault.init(tmp_path / "vault", key_provider=provider) as v:
        sid = v.save(DOC_A)
        f = tmp_path / "vault" / "sessions" / (v.parts.keys.file_name(sid) + ".sst")
        old = f.read_bytes()
        if how == "older-version":
            v.save({**DOC_A, "id": str(sid), "title": "alpha 2"})
        else:
            v.append(sid, [{"role": "assistant", "content": "a later turn"}])
        v.list()  # the index records the newer file
    (tmp_path / "older").write_bytes(old)
    (tmp_path / "older").chmod(0o600)
    os.replace(tmp_path / "older", f)
    for _ in range(2):
        with Vault.open(tmp_path / "vault", key_provider=provider) as v:
            for _ in range(2):
                summaries, problems = v.list_with_problems()
                assert [s.title for s in summaries] == ["alpha"]  # listed as it is
                assert len(problems) == 1 and f.name in problems[0] and "sessionseal verify" in problems[0]
            v.load(sid)  # reading it does not accept it either
            code = "rollback" if how == "older-version" else "truncated"
            assert [(p.code, p.path) for p in v.verify().errors] == [(code, f"sessions/{f.name}")]
    with Vault.open(tmp_path / "vault", key_provider=provider) as v:
        v.reindex()  # the owner accepts the files as they are
        assert v.list_with_problems()[1] == []
        assert v.verify(read_data=True).problems == []
