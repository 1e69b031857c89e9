"""Format versions: what every file of the vault is, as found on disk, and migrating the vault to
the formats this sessionseal writes (docs/design.md, "Format versions").  Read-only but for the
migration steps, each an atomic rewrite of its own.

One step is not a format of a file: a key table written before issue 20 does not track the
vault's state (:mod:`.._state`), and ``migrate`` starts tracking it from the vault as it is
(:meth:`Formats.track`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import _checkpoints, _container
from .._audit import ANCHOR, AUDIT_DIR, AuditLog
from .._audit import FORMAT as AUDIT_FORMAT
from .._configfile import CONFIG_FILE, CONFIG_VERSION, read_config_body
from .._index import INDEX_FILE, INDEX_FORMAT, OtherFormat
from .._keytable import KEYTABLE
from .._passphrase import KEYFILE, KEYFILE_VERSION
from .._state import NO_CONFIG, AuditHead, VaultState
from ..errors import IntegrityError, SessionNotFound, SessionSealError, UnsupportedVersion
from ._common import SUFFIX, VAULT_VERSION
from ._context import VaultContext
from ._indexcache import IndexCache
from ._keys import LABEL_CONFIG, Keys
from ._results import FormatStatus
from ._store import SessionStore

if TYPE_CHECKING:
    from .._config import VaultConfig

#: The ``formats`` row of the key table's anchored state: 0 untracked (a table written before
#: issue 20), 1 tracked (docs/spec/container-v1.md, "Key table state").
STATE: Final = "key table state"
STATE_VERSION: Final = 1
_MAX_CONFIG: Final = 4 << 20  # as the config reader allows


class Formats:
    """The format versions of one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        doc: dict[str, Any],
        keys: Keys,
        index: IndexCache,
        *,
        store: SessionStore,
        audit_log: AuditLog,
        audit: Callable[..., None],
        audit_records: Callable[[], Iterator[dict[str, Any]]],
        config: Callable[[], VaultConfig],
        reindex: Callable[[], int],
    ) -> None:
        self._ctx = ctx
        self._doc = doc
        self._keys = keys
        self._index = index
        self._store = store
        self._audit_log = audit_log
        self._audit = audit
        self._audit_records = audit_records
        self._config = config
        self._reindex = reindex

    def formats(self) -> list[FormatStatus]:
        """See :meth:`Vault.formats`."""
        out = [FormatStatus("vault", int(self._doc["version"]), int(self._doc["version"]), VAULT_VERSION, 1)]
        try:
            keyfile = orjson.loads(self._ctx.root.read(KEYFILE, max_size=1 << 20))
            v = int(keyfile.get("version", 0))
            out.append(FormatStatus("key file", v, v, KEYFILE_VERSION, 1))
        except FileNotFoundError:
            out.append(FormatStatus("key file", None, None, KEYFILE_VERSION, 0))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            raise IntegrityError("the vault's key file is not valid JSON; run 'sessionseal verify'") from None
        versions: list[int] = []
        places = [
            (self._ctx.root, [KEYTABLE, INDEX_FILE, CONFIG_FILE]),
            (self._ctx.sessions, self._ctx.session_files()),
            (self._ctx.ckpts, [n for n in self._ctx.ckpts.names() if n.endswith(_checkpoints.CKPT_SUFFIX)]),
        ]
        if self._ctx.root.exists(AUDIT_DIR):
            places.append((self._ctx.root.sub(AUDIT_DIR), [ANCHOR]))
        for d, names in places:
            for name in names:
                try:
                    prefix, _ = d.read_prefix(name, 9)
                except FileNotFoundError:
                    continue
                if len(prefix) == 9 and prefix[:8] == _container.MAGIC:
                    versions.append(prefix[8])
        out.append(status("container", versions, _container.FORMAT_VERSION))
        # The index is a cache: one of another format is rebuilt ('migrate' does; a listing too).
        try:
            self._index.load(self._keys.master())
            index_versions = [INDEX_FORMAT]
        except OtherFormat as exc:
            index_versions = [exc.version]
        except (FileNotFoundError, SessionSealError):
            index_versions = []  # missing or damaged: rebuilt on use, not a format matter
        out.append(status("index", index_versions, INDEX_FORMAT))
        config_version = self._config().version
        out.append(status("config", [config_version], CONFIG_VERSION))
        record_versions = [r["v"] for r in self._audit_records() if isinstance(r.get("v"), int)]
        out.append(status("audit log", record_versions, AUDIT_FORMAT))
        out.append(status(STATE, [STATE_VERSION if self._keys.state(fresh=True).tracked else 0], STATE_VERSION))
        return out

    def migrate(self, *, dry_run: bool) -> tuple[list[FormatStatus], list[str]]:
        """See :meth:`Vault.migrate`."""
        found = self.formats()
        newer = [f.name for f in found if f.state == "newer"]
        if newer:
            raise UnsupportedVersion(
                f"the vault has {', '.join(newer)} data from a newer sessionseal; upgrade sessionseal"
            )
        steps: list[str] = []
        tracked: dict[str, int] = {}
        for f in found:
            if f.state != "older":
                continue
            if f.name == "index":
                steps.append("index: rebuilt from the session files in the current format")
                if not dry_run:
                    self._reindex()
            elif f.name == "audit log":
                # Never rewritten: format 1 records are the chain's evidence.  The next append
                # moves them into a rotated file of their own (docs/spec/audit-log.md).
                continue
            elif f.name == STATE:
                tracked = self.track(dry_run=dry_run)
                if tracked:
                    steps.append(f"{STATE}: {describe(tracked)}")
            else:  # pragma: no cover - every other format is at its first version
                raise UnsupportedVersion(f"no migration from {f.name} version {f.oldest}; upgrade sessionseal")
        if not dry_run:
            detail = {"steps": len(steps), **{f.name: f.newest for f in found if f.newest is not None}}
            if tracked:  # counts only: what the key table now tracks
                detail.update({k: tracked[k] for k in ("marks", "keyless", "unreadable")})
            self._audit("migrate", detail=detail)
        return found, steps

    def track(self, *, dry_run: bool) -> dict[str, int]:
        """Start tracking the vault's state in the key table, from the vault as it is; returns
        what was recorded (counts), or nothing when the table tracks it already (another
        process migrated it since :meth:`formats` looked).

        Under the vault lock, so that no key, config or state frame is written meanwhile:
        each session file's mark (:meth:`marks`), the config's generation and hash, the audit
        log's head from its anchor (authenticated), no tombs.  The marks are lower bounds: a
        save that runs meanwhile (under its session's lock) only raises its own later.

        :raises IntegrityError: the config or the audit log's anchor fails its check (then
            nothing is recorded: a state is anchored only from what authenticates).
        """
        ctx, keys = self._ctx, self._keys
        with ctx.vault_lock():
            table = keys.keytable(fresh=True)
            if table.state.tracked:
                return {}
            marks, counts = self.marks()
            config = self.config_mark()
            anchor = self._audit_log.anchored(table.vault_secret)
            audit = None if anchor is None else AuditHead(anchor.seq, anchor.mac, anchor.base_seq, anchor.base_mac)
            counts["audit_seq"] = -1 if audit is None else audit.seq
            counts["config_generation"] = config[0]
            if dry_run:
                return counts
            state = VaultState(marks=marks, config=config, audit=audit)
            with ctx.mutex:
                table = keys.keytable(fresh=True)
                try:
                    table.track(ctx.root, keys.kek(table.kek_epoch), state)
                except BaseException:
                    keys.table = None  # the file may or may not be tracked: read it again
                    raise
        return counts

    def marks(self) -> tuple[dict[bytes, tuple[int, int]], dict[str, int]]:
        """Each session file's mark as it is: its header's generation and its committed size,
        as the store reads them (:meth:`SessionStore.read_summary`, which authenticates the
        last META frame).  A keyless file (one a killed erasure left, or a stranger's) and one
        that does not authenticate get no mark; they are counted (``verify`` names them)."""
        marks: dict[bytes, tuple[int, int]] = {}
        keyless = unreadable = 0
        for fname in sorted(self._ctx.session_files()):
            try:
                doc = self._store.read_summary(fname)
                sid = uuid.UUID(str(doc["id"]))
            except SessionNotFound:
                keyless += 1
                continue
            except (IntegrityError, KeyError, ValueError):
                unreadable += 1
                continue
            except FileNotFoundError:
                continue  # erased meanwhile (a delete takes the session's lock, not ours)
            if self._keys.file_name(sid) + SUFFIX != fname:
                unreadable += 1  # a session's file under another name: not where it is looked for
                continue
            marks[sid.bytes] = (int(doc["generation"]), int(doc["size_stored"]))
        return marks, {"marks": len(marks), "keyless": keyless, "unreadable": unreadable}

    def config_mark(self) -> tuple[int, str]:
        """``(generation, sha256 of config.sst's bytes)``, or :data:`NO_CONFIG`; the caller holds
        the vault lock (config writes take it), so the file authenticated is the file hashed.

        :raises IntegrityError: the config fails its check.
        """
        ctx = self._ctx
        try:
            raw = ctx.root.read(CONFIG_FILE, max_size=_MAX_CONFIG)
        except FileNotFoundError:
            return NO_CONFIG
        body, generation = read_config_body(ctx.root, ctx.vault_id, self._keys.derive(LABEL_CONFIG))
        if body is None or _container.parse_unverified_header(raw).generation != generation:
            raise IntegrityError("the vault's config changed while it was read; run 'sessionseal migrate' again")
        return generation, hashlib.sha256(raw).hexdigest()


def describe(counts: dict[str, int]) -> str:
    """A migrate step's words for what :meth:`Formats.track` recorded."""
    text = f"tracked from the vault as it is: {counts['marks']} session mark(s)"
    skipped = [f"{counts[k]} {k}" for k in ("keyless", "unreadable") if counts[k]]
    if skipped:
        text += f" ({', '.join(skipped)} session file(s) not marked: see 'sessionseal verify')"
    config = counts["config_generation"]
    text += f", config generation {config}" if config else ", no config"
    seq = counts["audit_seq"]
    return text + (f", audit head at record {seq}" if seq >= 0 else ", no audit record yet")


def status(name: str, versions: Sequence[int], current: int) -> FormatStatus:
    return FormatStatus(name, min(versions, default=None), max(versions, default=None), current, len(versions))
