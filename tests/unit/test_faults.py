"""Fault injection (issue 9): ENOSPC, EIO and EACCES at every write, fsync, rename and
directory fsync of the storage layer, injected at the OS-call boundary.

``sessionseal._fs`` (all vault file I/O) and ``sessionseal._audit`` (the audit log's rotation)
see a proxy of :mod:`os` whose ``write``/``pwrite``, ``fsync``, ``rename``/``replace`` and
``ftruncate`` count their calls by class (``write``, ``fsync-file``, ``fsync-dir`` by
``fstat`` of the descriptor, ``rename``, ``truncate``) and fail the k-th call of a class once.

For each operation of :data:`OPS`, fault-free runs from its starting vault record the calls
and the reference states (before, after, and after a second run).  Then for every call and
each errno (and, for writes, a short write followed by ENOSPC: a disk filling up mid-write),
a copy of the starting vault runs the operation with that call failing, and:

* the operation raises StorageError (UnsafePermissions for EACCES at a rename: the directory's
  permissions) with a one-line message that names the file, says what to do and holds no
  content; or it succeeds, exactly when the call belongs to a best-effort step
  (:func:`best_effort`);
* no temp file is left; the vault opens; ``verify(read_data=True)`` is ok, with at most the
  warnings of :data:`LEFTOVERS`; and what it holds is exactly the state before the operation,
  or exactly the state after it when the fault came after the operation's commit point
  (:attr:`Op.commits`: the call after which its effect is stored);
* the operation run again on the same Vault object, as a program that caught the error would,
  succeeds and leaves the vault verified and in the state after it; after a fault past the
  commit point that is a second run of the operation, compared with a fault-free second run.

``SESSIONSEAL_FAULT_REPORT=<path>`` appends a JSON line per operation: the faults injected,
the calls per class, the outcomes and the verify warnings seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib
import json
import os
import pkgutil
import re
import shutil
import stat
import struct
import sys
import tempfile
import time
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import sessionseal._audit
import sessionseal._fs
import sessionseal._fscheck
from sessionseal import KeychainProvider, Vault, _events, _export, _keystore, _vault
from sessionseal._vault._settings import Settings
from sessionseal.errors import SessionNotFound, SessionSealError, StorageError, UnsafePermissions
from tests._infra.erasure import delete_cut_short
from tests.memkeyring import MemoryKeyring

REAL_OS = os
CLASSES = ("write", "fsync-file", "fsync-dir", "rename", "truncate")
ERRNOS = (errno.ENOSPC, errno.EIO, errno.EACCES)
#: Also at every call of these operations that is not best effort (their paths are the others'
#: paths: only the message differs, which test_error_messages checks for every errno).
MORE_ERRNOS = (errno.EDQUOT, errno.EROFS)
MORE_ERRNOS_OPS = frozenset({"save-new", "delete"})
#: Frozen clock: two runs of an operation write the same documents.
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET_TEXT = "zebra-quartz-content"  # in every document: never in an error message
#: The verify warnings a fault may leave (leftovers that lose nothing; 'verify --repair' clears them):
#: ``index-stale``, a session written whose index delta was not (the index is a verified cache);
#: ``unused-key``, a first save's key in the key table, written before a session file that was not;
#: ``orphan``, an erased session's file whose overwrite and unlink failed (undecryptable already);
#: ``fts-torn``, the full-text index's delta log cut in its last record (the next write cuts it);
#: ``fts-retired``, the full-text index's replaced files whose overwrite failed (keys gone already);
#: ``fts-outdated``, its manifest left under the dropped epoch by a failed rewrite in a rotation;
#: ``fts-unlisted``, a file of a failed compaction or reindex that no manifest names (``fts-missing``
#: when there is no manifest yet).
LEFTOVERS = frozenset(
    {"index-stale", "unused-key", "orphan", "fts-torn", "fts-retired", "fts-outdated", "fts-unlisted", "fts-missing"}
)
#: What 'verify --repair' leaves of them: a key is never dropped on inference (issue 20, item 2);
#: the full-text index's are cleared by its next write (or 'reindex'), never by a repair.
REPAIR_KEEPS = frozenset({"unused-key", "fts-torn", "fts-outdated", "fts-unlisted", "fts-missing"})
#: The warnings seen (for the report).
WARNINGS: set[str] = set()
_HEX = re.compile(r"[0-9a-f]{32}")
_TMP = re.compile(r"\.tmp-\d+-[0-9a-f]+")


# -- the injector ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One intercepted OS call: its class, its number within the class, the file it is
    about (vault-relative, session names as ``<s>``, temp names as ``<tmp>``) and the
    sessionseal functions on the stack, innermost first."""

    cls: str
    k: int
    path: str
    chain: tuple[str, ...]

    def within(self, *names: str) -> bool:
        return any(n in self.chain for n in names)

    def __str__(self) -> str:
        return f"{self.cls}#{self.k} {self.path} <- {' < '.join(self.chain[:6])}"


#: A fault: (class, k, errno, short).  *short*: the k-th write writes half its bytes (a disk
#: that fills up mid-write returns a short count), and the next write, if to the same file, fails.
Fault = tuple[str, int, int, bool]


class Injector:
    def __init__(self) -> None:
        self.root = ""
        self.counts: Counter[str] = Counter()
        self.calls: list[Call] = []
        self.armed: Fault | None = None
        self.fired: Call | None = None
        self.short: int | None = None  # after a short write to this fd: fail the next write if to it
        self.active = False

    def start(self, root: Path, armed: Fault | None = None) -> None:
        self.root = str(root) + "/"
        self.counts.clear()
        self.calls.clear()
        self.armed, self.fired, self.short, self.active = armed, None, None, True

    def stop(self) -> None:
        self.active = False

    def hit(self, cls: str, fd: int | None = None, filename: Any = None, filename2: Any = None) -> bool:
        """Count a call; raise if it is the one to fail.  True: write half of it (and fail the next)."""
        if not self.active:
            return False
        if self.short is not None and cls == "write":
            short, self.short = self.short, None
            if short == fd:  # the writer goes on with the rest: now the disk is full
                assert self.armed is not None
                raise OSError(self.armed[2], REAL_OS.strerror(self.armed[2]))
        self.counts[cls] += 1
        if self.armed is None:  # a dry run: every call is recorded
            self.calls.append(Call(cls, self.counts[cls], self._path(fd), _chain()))
        elif self.armed[:2] == (cls, self.counts[cls]):
            self.fired = Call(cls, self.counts[cls], self._path(fd), _chain())
            code, short = self.armed[2:]
            if short:
                self.short = fd
                return True
            raise OSError(code, REAL_OS.strerror(code), filename, None, filename2)
        return False

    def _path(self, fd: int | None) -> str:
        # The Dir method on the stack knows the final name (a temp file's target); else the fd's.
        frame = sys._getframe(3)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if _in_package(module, "sessionseal._fs"):
                d = frame.f_locals.get("self")
                name = frame.f_locals.get("name")
                if isinstance(d, sessionseal._fs.Dir) and isinstance(name, str) and frame.f_code.co_name != "fsync":
                    return self._rel(str(d.path / name))
            elif _in_package(module, "sessionseal._audit") and "name" in frame.f_locals:
                return "audit/" + str(frame.f_locals["name"])
            frame = frame.f_back  # type: ignore[assignment]
        if fd is not None:
            with contextlib.suppress(OSError):
                return self._rel(REAL_OS.readlink(f"/proc/self/fd/{fd}"))
        return "?"

    def _rel(self, path: str) -> str:
        path = path.removeprefix(self.root) if path.startswith(self.root) else path
        return _TMP.sub("<tmp>", _HEX.sub("<s>", path))


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def storage_modules() -> list[types.ModuleType]:
    """The storage layer's modules that look :mod:`os` up: ``sessionseal._fs`` and the modules
    it is split into (``_fs*``), and those of the audit log's package (``_audit``).  All see the
    proxy, so that a split of either moves no OS call out of the injector's reach."""
    names = []
    for info in pkgutil.iter_modules(sessionseal.__path__):
        if info.name.startswith(("_fs", "_audit")):
            names.append(f"sessionseal.{info.name}")
            if info.ispkg:
                package = importlib.import_module(names[-1])
                names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    # "os" by name: the real module, or the proxy while the injector fixture is up.
    return [m for m in map(importlib.import_module, names) if getattr(getattr(m, "os", None), "__name__", "") == "os"]


def _chain() -> tuple[str, ...]:
    out = []
    frame = sys._getframe(3)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("sessionseal"):
            out.append(frame.f_code.co_qualname)
        frame = frame.f_back  # type: ignore[assignment]
    return tuple(out)


class OsProxy(types.ModuleType):
    """:mod:`os` as ``sessionseal._fs`` and ``sessionseal._audit`` (:func:`storage_modules`) see it."""

    def __init__(self, injector: Injector) -> None:
        super().__init__("os")
        self._inj = injector
        # Everything else is the real module's, looked up as directly as in it.
        own = {n for n in vars(OsProxy) if not n.startswith("_")}
        self.__dict__.update({n: v for n, v in vars(REAL_OS).items() if n not in own and not n.startswith("__")})

    def __getattr__(self, name: str) -> Any:
        return getattr(REAL_OS, name)

    def write(self, fd: int, data: Any) -> int:
        if self._inj.hit("write", fd):
            return REAL_OS.write(fd, memoryview(data)[: len(data) // 2])
        return REAL_OS.write(fd, data)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        if self._inj.hit("write", fd):
            return REAL_OS.pwrite(fd, memoryview(data)[: len(data) // 2], offset)
        return REAL_OS.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        is_dir = stat.S_ISDIR(REAL_OS.fstat(fd).st_mode)
        self._inj.hit("fsync-dir" if is_dir else "fsync-file", fd)
        REAL_OS.fsync(fd)

    def rename(self, src: Any, dst: Any, **kw: Any) -> None:
        self._inj.hit("rename", None, src, dst)
        REAL_OS.rename(src, dst, **kw)

    def replace(self, src: Any, dst: Any, **kw: Any) -> None:
        self._inj.hit("rename", None, src, dst)
        REAL_OS.replace(src, dst, **kw)

    def ftruncate(self, fd: int, length: int) -> None:
        self._inj.hit("truncate", fd)
        REAL_OS.ftruncate(fd, length)


@pytest.fixture(scope="module")
def injector() -> Iterator[Injector]:
    inj = Injector()
    proxy = OsProxy(inj)
    with pytest.MonkeyPatch.context() as mp:
        for module in storage_modules():
            mp.setattr(module, "os", proxy)
        stamp = NOW.isoformat().replace("+00:00", "Z")
        mp.setattr(_vault._common, "now", lambda: NOW)
        mp.setattr(_events, "_now", lambda: stamp)
        # Work done once rather than in every run (the faults are elsewhere): a bundle's
        # scrypt (2^14 at least), and the sanitizer built from the config.
        bundles: dict[tuple[bytes, bytes], Any] = {}
        real_open_bundle = _export.open_bundle

        def open_bundle(data: bytes, passphrase: bytes, **limits: Any) -> Any:
            if (data, passphrase) not in bundles:
                bundles[data, passphrase] = real_open_bundle(data, passphrase, **limits)
            return bundles[data, passphrase]

        sanitizers: dict[tuple[bytes, str], Any] = {}
        real_build = Settings.build_sanitizer

        def build_sanitizer(self: Settings, config: Any) -> Any:
            key = (self._keys.keytable().vault_secret, config.model_dump_json())
            if key not in sanitizers:
                sanitizers[key] = real_build(self, config)
            return sanitizers[key]

        # Key store calls run in a thread with a timeout (a keychain may hang): not this one.
        mp.setattr(_keystore, "_bounded", lambda fn, timeout: fn())
        mp.setattr(_export, "open_bundle", open_bundle)
        mp.setattr(Settings, "build_sanitizer", build_sanitizer)
        yield inj


@contextlib.contextmanager
def _fast_dir(fallback: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: a run costs a few dozen fsyncs, slow on a disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield fallback
        return
    d = Path(tempfile.mkdtemp(prefix="sessionseal-faults-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    with _fast_dir(tmp_path) as d:
        yield d / "work"


@pytest.fixture(scope="module")
def template(injector: Injector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    with _fast_dir(tmp_path_factory.mktemp("faults")) as d:
        yield build_template(d / "template")


# -- the vault's state --------------------------------------------------------------


def doc(title: str, *, days_old: float = 0, **extra: Any) -> dict[str, Any]:
    t = datetime.fromtimestamp(NOW.timestamp() - days_old * 86400, UTC).isoformat()
    return {
        "title": title,
        "status": "completed",
        "created_at": t,
        "updated_at": t,
        "messages": [{"role": "user", "content": f"{SECRET_TEXT} of {title}"}],
        **extra,
    }


def snapshot(v: Vault, known: set[str]) -> dict[str, Any]:
    """What the vault holds, as a user sees it: every session's document and checkpoints
    (as ``list``, ``show --json`` and ``checkpoint list`` read them, without their audit
    records), the config and the key table's epoch.  A known session that is not listed
    must not load (an erased session's file left behind reads as not found, never garbage)."""
    out: dict[str, Any] = {}
    entries, problems = v.parts.listing.summary_docs()
    assert problems == []
    for e in entries:
        sid = uuid.UUID(e.id)
        files = v.parts.checkpoints.files(v.parts.keys.file_name(sid))
        out[e.id] = (
            orjson.loads(v.parts.store.document(v.parts.store.open(sid))),
            [vars(c) for c in v.parts.checkpoints.list(sid, files)],
        )
    for sid_text in known - out.keys():
        with pytest.raises(SessionNotFound):
            v.parts.store.open(uuid.UUID(sid_text))
    out["config"] = v.parts.settings.read().model_dump()
    out["epoch"] = v.parts.keys.keytable(fresh=True).kek_epoch
    return out


# -- operations ----------------------------------------------------------------------


@dataclass
class Ctx:
    ids: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def _commit_rename(pattern: str) -> Callable[[Call], bool]:
    rx = re.compile(pattern)
    return lambda c: c.cls == "rename" and rx.fullmatch(c.path) is not None


def _commit_append(c: Call) -> bool:
    # An append is committed once its group is fsynced (Dir.append_at cuts a group off again
    # when its write or fsync fails).
    return c.cls == "fsync-file" and c.within("Dir.append_at") and c.path == "sessions/<s>.sst"


@dataclass
class Op:
    """An operation under test.

    :param commits: the calls after which the operation's effect is stored, in order; a fault
        at or before the first leaves the previous state, after the last the new state.
    :param partial: bring a vault to the state after *m* of several commits (0 < m < len).
    """

    name: str
    run: Callable[[Vault, Ctx], Any]
    commits: list[Callable[[Call], bool]]
    partial: Callable[[Vault, Ctx, int], None] | None = None
    #: What a second run raises, when not what the fault-free second run raised.
    second_run: Callable[[Path, Ctx], type[SessionSealError] | None] | None = None
    #: Done to the starting vault first (not counted), and the verify warnings that leaves.
    prepare: Callable[[Vault, Ctx], None] | None = None
    leftovers: frozenset[str] = frozenset()
    #: The operation clears those warnings: none is left after it (after a retry too).
    repairs: bool = False


def _tag_rotating(v: Vault, ctx: Ctx) -> Any:
    # The audit log is over its rotation size (set below the config's floor of 64 KiB so that
    # the test need not write that much): the operation's record renames it first.
    v.parts.audit_log.max_file_bytes = 1
    return v.tag(ctx.ids["a"], add=["x"])


def _torn_append(v: Vault, ctx: Ctx) -> None:
    # What a writer killed mid-append leaves: the start of a frame, cut short.
    with open(v.path / "sessions" / ctx.data["a_file"], "ab") as f:
        f.write(struct.pack(">IB", 200, 3) + bytes(40))


def _leftovers(v: Vault, ctx: Ctx) -> None:
    # What killed writers leave: a torn append, a first save's key without its file, and the
    # file of a session whose key a delete cut short had erased (its tomb recorded), and the full-text
    # index's files that delete replaced (retired in its manifest).
    _torn_append(v, ctx)
    orphan = v.save(doc("orphan"))
    with v.parts.ctx.vault_lock(), v.parts.ctx.mutex:
        table = v.parts.keys.keytable(fresh=True)
        table.add(v.parts.ctx.root, uuid.uuid4())
    delete_cut_short(v, orphan)


def _old_session(v: Vault, ctx: Ctx) -> None:
    v.save(doc("old", days_old=400, id=ctx.ids["old"]), touch=False)


def _partial_import(v: Vault, ctx: Ctx, m: int) -> None:
    v.import_sessions(ctx.data["bundle_first"], passphrase="pw")


_SESSION_RENAME = _commit_rename(r"sessions/<s>\.sst")
_TABLE_RENAME = _commit_rename(r"keytable\.sst")

OPS = [
    # Commit: the rename of the session file (write_atomic: temp file, fsync, rename, fsync of
    # the directory).  Its key is appended to the key table first: a fault after that and
    # before the rename leaves an unused key.  The directory fsync, the index delta and the
    # audit record come after the commit.
    Op("save-new", lambda v, c: v.save(doc("new", id=c.ids["new"])), [_SESSION_RENAME]),
    Op(
        "save-version",
        lambda v, c: v.save({**doc("a"), "id": c.ids["a"], "messages": [{"role": "user", "content": "v2"}]}),
        [_SESSION_RENAME],
    ),
    # Commit: the fsync of the appended group (append_at cuts a group whose write or fsync
    # failed off again, so that readers never see an append its writer was told failed).
    Op("append", lambda v, c: v.append(c.ids["a"], [{"role": "assistant", "content": "more"}]), [_commit_append]),
    Op("rename", lambda v, c: v.rename(c.ids["a"], "renamed"), [_commit_append]),
    # As rename; the operation's audit record first renames the full audit log aside.
    Op("tag-rotating-audit-log", _tag_rotating, [_commit_append]),
    # As append, after a torn append (the tail of a killed writer), which the append cuts off
    # first: a fault up to the commit leaves it there (verify warns, the next append cuts it).
    Op(
        "append-after-torn-append",
        lambda v, c: v.append(c.ids["a"], [{"role": "assistant", "content": "more"}]),
        [_commit_append],
        prepare=_torn_append,
        leftovers=frozenset({"torn-append"}),
    ),
    # Commit: the rename of the checkpoint file.
    Op("checkpoint", lambda v, c: v.checkpoint(c.ids["a"], "cp"), [_commit_rename(r"checkpoints/<s>-\d+\.ckp")]),
    # Commit: the rename that takes the checkpoint's name away (Dir.shred); the overwrite and
    # unlink follow, and a failure there is an error (its key lives on: the overwrite is the
    # erasure), with the file unlinked all the same.
    Op(
        "delete-checkpoint",
        lambda v, c: v.delete_checkpoint(c.ids["b"], "before"),
        [_commit_rename(r"checkpoints/<s>-1\.ckp")],
    ),
    # Commit: the rename of the session's new version.  The before-restore checkpoint written
    # first is removed again when the session was not replaced: a failed restore changes nothing.
    Op("restore-checkpoint", lambda v, c: v.restore_checkpoint(c.ids["b"], "before"), [_SESSION_RENAME]),
    # Commit: the rename of the key table rewritten without the session's key under a new
    # master key: the session is erased from then on (its index entry goes with the reseal of
    # the index, the old master key after it; the next open finishes a rotation cut short).
    # The overwrite of its files comes after, best effort.
    Op(
        "delete",
        lambda v, c: v.delete(c.ids["b"]),
        [_TABLE_RENAME],
        # Erased, its file left behind (the fault came before the overwrite): a second delete
        # removes the file; without a file it finds no session to delete.
        second_run=lambda work, c: None if (work / "sessions" / c.data["b_file"]).exists() else SessionNotFound,
    ),
    # Commit: the rename of the key table under the new master key (the epoch in the state).
    Op("rekey", lambda v, c: v.rekey(), [_TABLE_RENAME]),
    # Commit: the rename of config.sst.
    Op(
        "set-config",
        lambda v, c: v.set_config({"sanitizer": {"literals": ["acme-internal"]}}),
        [_commit_rename(r"config\.sst")],
    ),
    # As delete, for session old (400 days old; a and b are kept): one rotation for the batch.
    Op(
        "cleanup",
        lambda v, c: v.cleanup({"max_age": "30d"}),
        [_TABLE_RENAME],
        prepare=_old_session,
    ),
    # Two sessions, each saved as by save-new: two commits; a fault between them leaves the
    # first imported, and the retry (which skips ids already there) imports the second.
    Op(
        "import-bundle",
        lambda v, c: v.import_sessions(c.data["bundle"], passphrase="pw"),
        [_SESSION_RENAME, _SESSION_RENAME],
        partial=_partial_import,
    ),
    # Replaces session a: a checkpoint of it first (removed again when a was not replaced),
    # then the save; commit: the rename of a's new version.
    Op(
        "import-json-replace",
        lambda v, c: v.import_sessions(c.data["json"], on_conflict="replace"),
        [_SESSION_RENAME],
    ),
    # verify --repair: cuts the torn append off, removes the orphan, keeps the unused key and
    # rebuilds the index.  The sessions are the same before and after (commit: the cut, which
    # is the only step that can fail it before the others).
    Op(
        "verify-repair",
        lambda v, c: v.verify(read_data=True, repair=True),
        [lambda c: c.cls == "truncate" and c.within("Dir.truncate")],
        prepare=_leftovers,
        leftovers=frozenset({"torn-append", "orphan", "unused-key", "fts-retired"}),
        repairs=True,
    ),
    # Commit: the rename of the rebuilt index (the state, which the index only caches, is the
    # same before and after).
    Op("reindex", lambda v, c: v.reindex(), [_commit_rename(r"index\.sst")]),
]


def best_effort(call: Call) -> str | None:
    """The best-effort step *call* belongs to, whose fault the operation absorbs (it succeeds);
    None for every other call, whose fault fails the operation:

    * ``lock-holder``: the pid a lock's holder writes into the lock file (only to name it to
      a waiter that times out);
    * ``index-cache``: the index delta a session write appends (``IndexCache.put``, and
      ``IndexCache.touch``/``IndexCache.refresh`` of reads): a verified cache, re-read on a mismatch;
    * ``shred-after-erase``: overwriting and unlinking an erased session's files, after the key
      rotation that crypto-erased them (delete, cleanup), or left behind by an earlier one (the
      orphan sweep of cleanup and ``verify --repair``): a file left is an undecryptable
      ``orphan`` that ``verify --repair`` or the next cleanup removes;
    * ``full-text-index``: the full-text index's update after a session write, its part of a
      rotation, and the sweep of the files it retired (``FullText``), and the rewrite of a session
      the index missed a write of (``SessionStore._catch_up``): a verified cache whose failure
      leaves the session behind (streamed by search), never fails the write (docs/reliability.md);
    """
    if call.within("_holder_writer.<locals>.write_holder"):
        return "lock-holder"
    if call.within("IndexCache.put", "IndexCache.touch", "IndexCache.refresh"):
        return "index-cache"
    if call.within(
        "FullText.saved",
        "FullText.appended",
        "FullText.reseal",
        "FullText.after_rotation",
        "FullText.sweep",
        "SessionStore._catch_up",
    ):
        return "full-text-index"
    erasing = ("Erasure.erase_batch", "Erasure.delete", "Erasure.sweep_orphans", "Erasure.sweep_orphan_checkpoints")
    if call.within(*erasing) and call.within("Dir.shred"):
        return "shred-after-erase"
    return None


# -- the template vaults ---------------------------------------------------------------


@dataclass
class Template:
    path: Path
    provider: KeychainProvider
    keyring: MemoryKeyring
    store: dict[tuple[str, str], str]
    vault_id: uuid.UUID
    ctx: Ctx

    def copy(self, dest: Path) -> Path:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(self.path, dest, symlinks=True)
        self.reset_keys()
        return dest

    def reset_keys(self) -> None:
        if self.keyring.store != self.store:  # a rotation ran: the copy needs the template's keys
            self.keyring.store = dict(self.store)
            with _keystore._cache_lock:
                _keystore._cache.pop(self.vault_id, None)

    def open(self, path: Path) -> Vault:
        return Vault.open(path, key_provider=self.provider)

    def start(self, dest: Path) -> Vault:
        """A fresh copy, opened, its index brought up to date (a copy's files have new inodes,
        which the index's stamps name: a listing re-reads and records them)."""
        v = self.open(self.copy(dest))
        v.parts.listing.summary_docs()  # what 'list' reads, without building its models
        return v

    def prepared(self, dest: Path, op: Op) -> Template:
        """The starting vault of *op*: a copy of this one, with *op*'s preparation done."""
        if op.prepare is None:
            return self
        with self.open(self.copy(dest)) as v:
            op.prepare(v, self.ctx)
        # A preparation that erases rotates the master key: its copies need the keys it left.
        return dataclasses.replace(self, path=dest, store=dict(self.keyring.store))


def build_template(path: Path) -> Template:
    """The starting vault of every operation: session a (grown by an append), session b (a
    checkpoint, then an append), and what the imports import.  Every document holds
    :data:`SECRET_TEXT`."""
    kr = MemoryKeyring()
    provider = KeychainProvider(backend=kr)
    ctx = Ctx()
    with Vault.init(path, key_provider=provider) as v:
        ctx.ids["a"] = str(v.save(doc("a"), touch=False))
        v.append(ctx.ids["a"], [{"role": "assistant", "content": "reply"}])
        ctx.ids["b"] = str(v.save(doc("b", days_old=1), touch=False))
        v.checkpoint(ctx.ids["b"], "before")
        v.append(ctx.ids["b"], [{"role": "user", "content": "after the checkpoint"}])
        ctx.ids["old"] = str(uuid.uuid4())  # saved by cleanup's preparation
        for key in ("a", "b"):
            ctx.data[f"{key}_file"] = v.parts.keys.file_name(uuid.UUID(ctx.ids[key])) + ".sst"
        ctx.ids["new"] = str(uuid.uuid4())
        docs = [orjson.loads(v.load_json(s)) for s in (ctx.ids["a"], ctx.ids["b"])]
        for d, t in zip(docs, ("imported-1", "imported-2"), strict=True):
            d["id"], d["title"] = str(uuid.uuid4()), t
            ctx.ids[t] = d["id"]
        ctx.data["bundle"] = _bundle(v, docs)
        ctx.data["bundle_first"] = _bundle(v, docs[:1])
        ctx.data["json"] = orjson.dumps({**docs[0], "id": ctx.ids["a"], "title": "replaced"})
        vault_id = v.vault_id
    assert not any(_TMP.search(p.name) for p in path.rglob("*"))
    return Template(path, provider, kr, dict(kr.store), vault_id, ctx)


def _bundle(v: Vault, docs: list[dict[str, Any]]) -> bytes:
    return _export.seal_bundle([orjson.dumps(d) for d in docs], {"format": "sessionseal bundle"}, b"pw", log2_n=14)


# -- the test ---------------------------------------------------------------------------


def _run(op: Op, v: Vault, ctx: Ctx) -> SessionSealError | None:
    try:
        op.run(v, ctx)
    except SessionSealError as exc:
        return exc
    return None


def _temp_files(path: Path) -> list[str]:
    return [str(p.relative_to(path)) for p in path.rglob("*") if _TMP.fullmatch(p.name)]


def _verified(t: Template, path: Path, known: set[str], allowed: frozenset[str], where: str = "") -> dict[str, Any]:
    """Open the vault afresh, check it verifies with at most *allowed* warnings; its state."""
    with t.open(path) as v:
        result = v.verify(read_data=True)
        assert result.ok, f"{where}: {[p.describe() for p in result.errors]}"
        codes = {p.code for p in result.problems}
        assert codes <= allowed, f"{where}: {[p.describe() for p in result.problems]}"
        WARNINGS.update(codes)
        return snapshot(v, known)


def check_message(exc: SessionSealError, code: int, vault: Path, call: Call, *, unrecorded: bool) -> None:
    """One line that names the file and says what to do, without content.

    StorageError, but for EACCES at a rename (the directory's permissions: UnsafePermissions);
    EACCES at a write, fsync or truncate of a file already opened and checked is the file
    system's refusal, a StorageError.  A fault in the operation's own audit record, written
    once the operation is done, says it was done (and is not recorded as a failure).
    """
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    assert str(vault) in msg, msg
    assert SECRET_TEXT not in msg and "acme-internal" not in msg, msg
    assert re.search(r"\b(retry|check|free)\b", msg), f"says not what to do: {msg}"
    assert _vault.done_but_unrecorded(exc) is unrecorded, msg
    assert ("was done" in msg) is unrecorded, msg
    refused = code == errno.EACCES and call.cls == "rename"  # a refusal stays one, done or not
    assert type(exc) is (UnsafePermissions if refused else StorageError), msg
    words = {errno.ENOSPC: "no space left", errno.EDQUOT: "quota", errno.EROFS: "read-only"}
    assert words.get(code, "") in msg.lower(), msg


@pytest.mark.parametrize("opened", [False, True], ids=["path-call", "fd-call"])
@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM], ids=errno.errorcode.get
)
def test_error_messages(code: int, opened: bool) -> None:
    """Every errno: one line naming the file, saying what to do; UnsafePermissions only for a
    permission refused on a path (not on a descriptor the vault opened and checked)."""
    exc = sessionseal._fscheck.storage_error(OSError(code, os.strerror(code)), "write", "/v/x.sst", opened=opened)
    msg = str(exc)
    assert "\n" not in msg and "/v/x.sst" in msg and re.search(r"\b(retry|check)\b", msg), msg
    refused = code in (errno.EACCES, errno.EPERM) and not opened
    assert type(exc) is (UnsafePermissions if refused else StorageError), msg
    assert ("own the vault" in msg) is refused, msg


@dataclass
class Reference:
    """Fault-free runs from the operation's starting state."""

    states: list[dict[str, Any]]  # before, after each commit but the last, after
    calls: list[Call]
    counts: dict[str, int]
    commit_at: list[int]  # the index in *calls* of each commit
    record_at: int  # where the operation's own audit record starts: its acquisition of the audit lock
    twice: dict[str, Any]  # after a second run
    twice_error: type[SessionSealError] | None


def reference(op: Op, t: Template, work: Path, injector: Injector, known: set[str]) -> Reference:
    t.start(work).close()
    states = [_verified(t, work, known, op.leftovers)]
    for m in range(1, len(op.commits)):
        assert op.partial is not None
        with t.start(work) as v:
            op.partial(v, t.ctx, m)
        states.append(_verified(t, work, known, op.leftovers))
    with t.start(work) as v:  # the dry run: counts the calls
        injector.start(work)
        try:
            assert _run(op, v, t.ctx) is None
        finally:
            injector.stop()
        calls, counts = list(injector.calls), dict(injector.counts)
    states.append(_verified(t, work, known, REPAIR_KEEPS if op.repairs else op.leftovers))
    with t.open(work) as v:
        again = _run(op, v, t.ctx)
    commit_at: list[int] = []
    for pred in op.commits:
        commit_at.append(next(i for i in range(commit_at[-1] + 1 if commit_at else 0, len(calls)) if pred(calls[i])))
    twice = _verified(t, work, known, REPAIR_KEEPS if op.repairs else op.leftovers)
    record_at = max(i for i, c in enumerate(calls) if c.path == "locks/audit.lock" and c.cls == "write")
    return Reference(states, calls, counts, commit_at, record_at, twice, None if again is None else type(again))


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_faults(op: Op, injector: Injector, template: Template, work: Path) -> None:
    started = time.monotonic()
    WARNINGS.clear()
    known = set(template.ctx.ids.values())
    t = template.prepared(work.parent / "prepared", op)
    ref = reference(op, t, work, injector, known)
    subject = Subject(op, t, ref, injector, known, work)
    tally: Counter[str] = Counter()
    for i, call in enumerate(ref.calls):
        # Commits done before this call (a fault at a commit's own call leaves it undone).
        committed = sum(1 for j in ref.commit_at if j < i)
        # The operation's own audit record, or a cleanup's record of its erasures: done already.
        unrecorded = i >= ref.record_at or call.within("Auditor.erasures")
        codes = ERRNOS + (MORE_ERRNOS if op.name in MORE_ERRNOS_OPS and best_effort(call) is None else ())
        faults = [(call.cls, call.k, code, False) for code in codes]
        if call.cls == "write":
            faults.append((call.cls, call.k, errno.ENOSPC, True))
        for fault in faults:
            tally[trial(subject, fault, call, committed, unrecorded)] += 1
    _report(op.name, ref.counts, tally, time.monotonic() - started)


@dataclass
class Subject:
    """An operation, its starting vault and its fault-free runs."""

    op: Op
    t: Template
    ref: Reference
    injector: Injector
    known: set[str]
    work: Path


def trial(subject: Subject, fault: Fault, call: Call, committed: int, unrecorded: bool) -> str:
    """Run the operation with *fault* at *call*, check the error and the vault, then the retry.
    Returns what happened, for the tally."""
    op, t, ref, injector, known = subject.op, subject.t, subject.ref, subject.injector, subject.known
    code = fault[2]
    where = f"{op.name}: {errno.errorcode[code]}{' after a short write' if fault[3] else ''} at {call}"
    work, ctx, last = subject.work, t.ctx, len(op.commits)
    step = best_effort(call)
    with t.start(work) as v:
        injector.start(work, fault)
        try:
            exc = _run(op, v, ctx)
        finally:
            injector.stop()
        assert injector.fired == call, f"{where}: the run took another path ({injector.fired})"
        if step is not None:
            assert exc is None, f"{where}: a best-effort step failed the operation: {exc!r}"
        else:
            assert exc is not None, f"{where}: the fault was swallowed"
            check_message(exc, code, work, call, unrecorded=unrecorded)
            assert not unrecorded or committed == last, where
        assert _temp_files(work) == [], where
        expected = ref.states[last if step is not None else committed]
        got = _verified(t, work, known, LEFTOVERS | op.leftovers, where)
        assert got == expected, f"{where}: {_diff(expected, got, ref)}"
        if exc is None:
            return f"absorbed ({step})"
        # The retry, on the same Vault object, as a program that caught the error would run it.
        if committed < last:
            wanted_error, wanted = None, ref.states[last]
        else:  # done already: the retry is a second run, and does what a second run does
            wanted_error = ref.twice_error if op.second_run is None else op.second_run(work, ctx)
            wanted = ref.twice
        again = _run(op, v, ctx)
        assert (again and type(again)) is wanted_error, f"{where}: the retry: {again!r}"
    allowed = REPAIR_KEEPS if op.repairs else LEFTOVERS | op.leftovers
    got = _verified(t, work, known, allowed, f"{where}, after the retry")
    assert got == wanted, f"{where}: after the retry: {_diff(wanted, got, ref)}"
    kind = "unrecorded" if _vault.done_but_unrecorded(exc) else type(exc).__name__
    state = "before" if committed == 0 else "after" if committed == last else f"after {committed} of {last} commits"
    return f"{kind}, {state}"


def _diff(expected: dict[str, Any], got: dict[str, Any], ref: Reference) -> str:
    which = [i for i, s in enumerate([*ref.states, ref.twice]) if s == got]
    keys = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    return f"differs in {keys}; it is reference state {which} (0: before, {len(ref.states) - 1}: after, then twice)"


def _report(name: str, counts: dict[str, int], tally: Counter[str], elapsed: float) -> None:
    line = {
        "operation": name,
        "faults": sum(tally.values()),
        "calls": {c: counts.get(c, 0) for c in CLASSES},
        "outcomes": dict(sorted(tally.items())),
        "warnings": sorted(WARNINGS),
        "seconds": round(elapsed, 2),
    }
    print(json.dumps(line))
    target = os.environ.get("SESSIONSEAL_FAULT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def test_the_injector_reaches_the_storage_layer() -> None:
    # Dir's calls, the lock holder's pid, files written by path, and the audit log's rotation
    # (through the log files' module): each module's os must be the proxy's.
    modules = {m.__name__ for m in storage_modules()}
    wanted = {"sessionseal._fs", "sessionseal._fslock", "sessionseal._fswrite", sessionseal._audit.AuditLog.__module__}
    assert wanted <= modules, modules
