"""Backups of the vault: ``snapshot --to DIR`` (docs/sync.md, "Backups"), and the recovery kit
that restores its master key on a fresh machine (``key export|import --recovery-kit``).

A snapshot is a copy of the vault's own files, made under the vault lock, that opens as the same
vault with the same key.  What the lock holds still: the key table (and with it every mark, the
audit log's anchor and the master key's epoch: no rotation runs), the index, the config, the key
file, the audit log and the full-text index's manifest.  What it does not: session and checkpoint
files, which writers change under their own session lock (a lock per session: taking them all
would need a descriptor per session).  So each of those is checked after it is copied, the way a
reader of the vault checks it: a session file authenticates up to its last whole group (a group
being appended as it was read is cut off the copy, as a killed writer's would be), a checkpoint
authenticates whole; one that fails while the vault's file is no longer the one read (replaced,
or erased) is read again, or left out when gone.  Every file copied is at or past the mark the
copied key table holds for it, since marks are committed under the lock after the file is
written: the copy passes ``verify`` like the vault (docs/design.md, "Write ordering").

Only the names sessionseal writes are copied (``verify``'s tree): never a temp file, a lock file,
a resume's plaintext home (``run/``) or an unknown entry.  ``vault.json`` is written last, so a
snapshot killed midway is not a vault (the rule ``init`` follows).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .. import _configfile, _container, _recoverykit
from .._audit import AUDIT_DIR
from .._fs import Dir, vault_exists, write_private_file
from .._index import INDEX_FILE
from .._keystore import KeyProvider, MasterKeys
from .._keytable import KEYTABLE, KeyTable, SessionKeys
from .._passphrase import KEYFILE, PassphraseProvider
from ..errors import (
    InvalidInput,
    KeyNotFound,
    SessionSealError,
    StorageError,
    UnsafePermissions,
    VaultNotFound,
)
from ._auditing import Auditor, audited_by
from ._common import VAULT_FILE
from ._context import VaultContext
from ._ftsfiles import FTS_DIR, is_fts_name
from ._keys import Keys
from ._opening import make_provider, parse_doc
from ._synccursor import SYNC_DIR

__all__ = ["Backups", "Snapshot", "import_kit"]

_audited = audited_by(lambda backups: backups._auditor)

#: The names sessionseal writes, as ``verify`` knows them (``_verify.py``); nothing else is copied.
_ROOT_FILES: Final = (KEYTABLE, KEYFILE, _configfile.CONFIG_FILE, INDEX_FILE, "autoclean.json")
_SESSION: Final = re.compile(r"[0-9a-f]{32}\.sst")
_CHECKPOINT: Final = re.compile(r"([0-9a-f]{32})-([1-9][0-9]*)\.ckp")
_AUDIT: Final = re.compile(r"audit\.log|audit-[0-9]{12}\.log|pending\.log|anchor\.sst")
_SUBDIRS: Final[tuple[tuple[str, Callable[[str], bool]], ...]] = (
    ("sessions", lambda n: _SESSION.fullmatch(n) is not None),
    ("checkpoints", lambda n: _CHECKPOINT.fullmatch(n) is not None),
    (AUDIT_DIR, lambda n: _AUDIT.fullmatch(n) is not None),
    (FTS_DIR, is_fts_name),
    # A remote's push cursor (<device>.sst), replaced atomically by a push under its own lock: a
    # copy holds the one before or after a replace, the state a push killed then leaves.
    (SYNC_DIR, lambda n: _SESSION.fullmatch(n) is not None),
)
_VAULT_JSON: Final = "vault.json"
_CHUNK: Final = 1 << 20
#: Copies of one file whose vault file kept changing under the copy, before giving up.
_ATTEMPTS: Final = 5
_FILE_MODE: Final = 0o600


@dataclass(frozen=True)
class Snapshot:
    """What ``snapshot`` copied: *files* and *bytes* in all, *sessions* and *checkpoints*, the
    master key's *epoch* the copy's key table is under, and the files *trimmed* (an append cut
    off the copy) or *left_out* (erased while the snapshot ran)."""

    path: Path
    files: int
    bytes: int
    sessions: int
    checkpoints: int
    epoch: int
    trimmed: int
    left_out: int


class Backups:
    """``vault.backups``: consistent copies of the vault (docs/api.md, "Backups")."""

    def __init__(self, ctx: VaultContext, keys: Keys, auditor: Auditor) -> None:
        self._ctx, self._keys, self._auditor = ctx, keys, auditor

    @_audited("snapshot")
    def snapshot(self, to: str | os.PathLike[str], *, progress: Callable[[int, int], None] | None = None) -> Snapshot:
        """Copy the vault into the new or empty directory *to*, under the vault lock; audited
        (``snapshot``, counts only).  *progress(done, total)* gets bytes copied.

        :raises InvalidInput: *to* lies inside the vault, is not a directory, is not empty, or its
            parent does not exist.
        :raises UnsafePermissions: *to* is a symbolic link, or a directory of another user.
        """
        dest, made = _target(Path(to), self._ctx.path)
        copy = _Copy(self._ctx, dest, progress)
        try:
            with self._ctx.vault_lock():
                table = self._keys.keytable(fresh=True)
                copy.run(table.session_keys, {self._keys.file_name(s): s for s in table.session_keys})
                epoch = table.kek_epoch
        except BaseException:
            copy.undo(made)
            raise
        finally:
            copy.close()
        result = Snapshot(
            dest.path, copy.files, copy.bytes, copy.count["sessions"], copy.count["checkpoints"], epoch,
            copy.trimmed, copy.left_out,
        )  # fmt: skip
        self._auditor.record(
            "snapshot",
            detail={
                "files": result.files,
                "bytes": result.bytes,
                "sessions": result.sessions,
                "trimmed": result.trimmed,
                "left_out": result.left_out,
            },
        )
        return result

    @_audited("key.export")
    def export_kit(self, out: str | os.PathLike[str], passphrase: str) -> int:
        """Write a recovery kit of the master key the key table is under now to the new file
        *out* (0600, atomic); returns its epoch.  Audited (``key.export``, the epoch only).

        :raises InvalidInput: *out* exists, or the passphrase is empty.
        """
        with self._ctx.vault_lock():  # no rotation between reading the table's epoch and its key
            epoch = self._keys.keytable(fresh=True).kek_epoch
            key = self._keys.kek(epoch)
        kit = _recoverykit.make(self._ctx.vault_id, epoch, self._keys.provider.name, key, passphrase)
        write_private_file(Path(os.path.abspath(out)), kit)
        self._auditor.record("key.export", detail={"epoch": epoch})
        return epoch

    @_audited("key.import")
    def imported(self, epoch: int) -> None:
        """Record that :func:`import_kit` put this vault's key of *epoch* in the key store."""
        self._auditor.record("key.import", detail={"epoch": epoch})


def import_kit(
    path: Path,
    data: bytes,
    kit_passphrase: Callable[[], str],
    *,
    provider: KeyProvider | None = None,
    vault_passphrase: Callable[[], bytes] | None = None,
    interactive: bool = False,
) -> tuple[_recoverykit.Kit, bool]:
    """Put the master key a recovery kit holds into the key store of the vault at *path* (a copy
    put there from a backup or a snapshot), after checking that it opens that vault's key table.
    Returns the kit and whether the key store changed (False: it held that key already).

    A keychain vault's key goes to the OS keychain (or *provider*), only when it holds no key of
    this vault: a key there may be a newer vault's, and is never replaced.  A passphrase vault
    without its key file gets a new one under *vault_passphrase*; one with a key file is refused.

    :raises InvalidInput: not a kit, one of another vault, a key store that holds another key
        of this vault, a passphrase vault that has its key file, or a kit of another epoch than
        the key table's (a kit opens the copies made before the next rotation only).
    :raises WrongPassphrase: the kit's passphrase is wrong.
    :raises IntegrityError: the kit's key does not open the key table (it is damaged).
    """
    if not vault_exists(path):
        raise VaultNotFound(f"no vault at {path}; restore the vault's directory there first (a snapshot or a backup)")
    root = Dir(path)
    try:
        doc = parse_doc(root.read(VAULT_FILE, max_size=64 * 1024), path)
        kit = _recoverykit.parse(data)
        vault_id = uuid.UUID(doc["vault_id"])
        if kit.vault_id != vault_id:
            raise InvalidInput("the recovery kit is of another vault (its id is not this vault's); nothing was changed")
        table_epoch = _container.parse_unverified_header(root.read(KEYTABLE, max_size=1 << 30)).kek_epoch
        if kit.epoch != table_epoch:
            raise InvalidInput(
                f"the recovery kit holds the master key of epoch {kit.epoch}, and this vault's key table is under "
                f"epoch {table_epoch}: a kit opens only copies made before the next delete, cleanup or rekey "
                "(crypto-erase); use the kit made with this copy; nothing was changed"
            )
        store = provider or make_provider(doc["key_provider"], vault_passphrase, root, interactive=interactive)
        held = _held(store, vault_id, root)
        key = _recoverykit.open_kit(kit, kit_passphrase())
        master = MasterKeys({kit.epoch: key})
        KeyTable.load(root, vault_id, master)  # authenticates under the kit's key, or raises
        if held is not None:
            if held.keys.get(kit.epoch) == key:
                return kit, False
            raise InvalidInput(
                "the key store already holds another key of this vault; a recovery kit is for a machine "
                "without one, and a key there is never replaced; nothing was changed"
            )
        store.store(vault_id, master)
        return kit, True
    finally:
        root.close()


def _held(store: KeyProvider, vault_id: uuid.UUID, root: Dir) -> MasterKeys | None:
    """What the key store holds of the vault now (None: nothing)."""
    if isinstance(store, PassphraseProvider):
        if root.exists(KEYFILE):
            raise InvalidInput(
                "this passphrase vault has its key file; a recovery kit restores one that lost it "
                "(move keyfile.json aside first if you mean to replace it); nothing was changed"
            )
        return None
    try:
        return store.load(vault_id)
    except KeyNotFound:
        return None


def _target(path: Path, vault: Path) -> tuple[Dir, bool]:
    """Open (or create, 0700) the snapshot's directory; returns it and whether it was made here."""
    path = Path(os.path.abspath(path))
    real_vault = Path(os.path.realpath(vault))
    if Path(os.path.realpath(path)).is_relative_to(real_vault):
        raise InvalidInput("the snapshot's directory lies inside the vault; give one outside it")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not os.path.isdir(path.parent):
            raise InvalidInput("the snapshot directory's parent does not exist; create it first") from None
        return Dir(path, create=True), True
    except OSError as exc:
        raise StorageError(f"cannot inspect {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePermissions(f"{path} is a symbolic link; give the directory itself")
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput("the snapshot's destination exists and is not a directory; give a new or empty one")
    if st.st_uid != os.geteuid():
        raise UnsafePermissions(f"{path} belongs to another user; give a directory of yours")
    if os.listdir(path):
        raise InvalidInput("the snapshot's directory is not empty; give a new or empty one")
    os.chmod(path, 0o700, follow_symlinks=False)  # an empty directory of ours, given for the copy: owner-only
    return Dir(path), False


class _Copy:
    """One snapshot's copying, and what it made (a failed one removes only the files it created)."""

    def __init__(self, ctx: VaultContext, dest: Dir, progress: Callable[[int, int], None] | None) -> None:
        self._ctx, self._dest, self._progress = ctx, dest, progress
        self._subs: dict[str, Dir] = {}  # the snapshot's subdirectories
        self._opened: list[Dir] = []  # the vault's subdirectories opened here (closed here)
        self._made: list[tuple[Dir, str]] = []
        self.files = self.bytes = self.trimmed = self.left_out = 0
        self.count = {"sessions": 0, "checkpoints": 0}
        self._total = 0

    def run(self, session_keys: SessionKeys, ids: dict[str, uuid.UUID]) -> None:
        plan: list[tuple[str, Dir, str, int]] = []
        root = self._ctx.root
        names = set(root.names())
        plan += [("", root, n, _size(root, n)) for n in _ROOT_FILES if n in names]
        for sub, wanted in _SUBDIRS:
            if sub not in names:
                continue
            src = self._source(sub)
            self._subs[sub] = self._dest.sub(sub, create=True)
            plan += [(sub, src, n, _size(src, n)) for n in sorted(src.names()) if wanted(n)]
        self._total = sum(p[3] for p in plan)
        for sub, src, name, _ in plan:
            self._one(sub, src, name, self._checker(sub, name, session_keys, ids))
        for d in self._subs.values():
            d.fsync()
        # vault.json last: its presence says the snapshot is whole (docs/design.md, "Write ordering").
        self._one("", root, _VAULT_JSON, None)
        self._dest.fsync()

    def _source(self, sub: str) -> Dir:
        if sub == "sessions":
            return self._ctx.sessions
        if sub == "checkpoints":
            return self._ctx.ckpts
        d = self._ctx.root.sub(sub)
        self._opened.append(d)
        return d

    def _checker(
        self, sub: str, name: str, session_keys: SessionKeys, ids: dict[str, uuid.UUID]
    ) -> Callable[[Dir, str], int] | None:
        """How the copy of *name* is checked: returns the length to keep; raises IntegrityError."""
        vault_id = self._ctx.vault_id
        if sub == "sessions" and name[:32] in ids:
            key = session_keys[ids[name[:32]]]

            def session(d: Dir, n: str) -> int:
                with d.reader(n) as (read_at, size):
                    return _container.open_session_tail(read_at, size, vault_id, lambda _sid: key).end

            return session
        match = _CHECKPOINT.fullmatch(name) if sub == "checkpoints" else None
        if match is not None and match.group(1) in ids:
            sid, number = ids[match.group(1)], int(match.group(2))

            def checkpoint(d: Dir, n: str) -> int:
                data = d.read(n, max_size=1 << 40)
                _container.open_checkpoint(data, vault_id, sid, number, session_keys[sid], meta_only=True)
                return len(data)

            return checkpoint
        if sub == AUDIT_DIR and name.endswith(".log"):
            return _whole_lines
        return None  # a keyless file is copied as it is: verify says of the copy what it says of the vault

    def _one(self, sub: str, src: Dir, name: str, check: Callable[[Dir, str], int] | None) -> None:
        dest = self._subs.get(sub, self._dest)
        for _ in range(_ATTEMPTS):
            seen = src.identity(name)
            if seen is None:
                self.left_out += sub in self.count  # erased (or a checkpoint deleted) meanwhile
                return
            try:
                size = self._copy_file(src, name, dest)
            except FileNotFoundError:
                continue  # gone between the two looks: seen as gone above
            try:
                keep = size if check is None else check(dest, name)
            except SessionSealError:  # IntegrityError, or a file the check cannot read
                if src.identity(name) == seen:
                    keep = size  # damaged in the vault too: copied as it is, for verify to report
                else:
                    dest.unlink(name)  # the vault's file moved on while it was read: again
                    self._made.remove((dest, name))
                    continue
            if keep < size:
                dest.truncate(name, keep)  # an append in flight, or a killed writer's torn tail
                self.trimmed += 1
            self.files += 1
            if sub in self.count:
                self.count[sub] += 1
            return
        raise StorageError(f"{src.path / name} kept changing while it was copied; run the snapshot again")

    def _copy_file(self, src: Dir, name: str, dest: Dir) -> int:
        fd = src.open_checked(name)  # FileNotFoundError: gone since it was seen
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(name, flags, _FILE_MODE, dir_fd=dest.fd)
            self._made.append((dest, name))
            try:
                os.fchmod(out, _FILE_MODE)  # exactly, whatever the umask
                size = 0
                while chunk := os.read(fd, _CHUNK):
                    _write_all(out, chunk)
                    size += len(chunk)
                    self.bytes += len(chunk)
                    if self._progress is not None:
                        self._progress(self.bytes, max(self._total, self.bytes))
                os.fsync(out)
            finally:
                os.close(out)
        except OSError as exc:
            raise StorageError(f"could not copy {src.path / name}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return size

    def undo(self, made: bool) -> None:
        """Remove what this snapshot wrote (ciphertext; only the files and directories it created)."""
        for d, name in reversed(self._made):
            with contextlib.suppress(OSError, SessionSealError):
                d.unlink(name)
        for name in self._subs:
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=self._dest.fd)
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(self._dest.path)

    def close(self) -> None:
        for d in [*self._subs.values(), *self._opened, self._dest]:
            d.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _size(d: Dir, name: str) -> int:
    seen = d.identity(name)
    return 0 if seen is None else seen[3]


def _whole_lines(d: Dir, name: str) -> int:
    """An audit log's length up to its last whole line (a line being written is left out)."""
    data = d.read(name, max_size=1 << 40)
    return data.rfind(b"\n") + 1 if not data.endswith(b"\n") else len(data)
