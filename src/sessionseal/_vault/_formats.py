"""Format versions: what every file of the vault is, as found on disk, and migrating the vault to
the formats this sessionseal writes (docs/design.md, "Format versions").  Read-only but for the
migration steps, each an atomic rewrite of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .. import _checkpoints, _container
from .._audit import ANCHOR, AUDIT_DIR
from .._audit import FORMAT as AUDIT_FORMAT
from .._configfile import CONFIG_FILE, CONFIG_VERSION
from .._index import INDEX_FILE, INDEX_FORMAT, OtherFormat
from .._keytable import KEYTABLE
from .._passphrase import KEYFILE, KEYFILE_VERSION
from ..errors import IntegrityError, SessionSealError, UnsupportedVersion
from ._common import VAULT_VERSION
from ._context import VaultContext
from ._indexcache import IndexCache
from ._keys import Keys
from ._results import FormatStatus

if TYPE_CHECKING:
    from .._config import VaultConfig


class Formats:
    """The format versions of one open vault."""

    def __init__(
        self,
        ctx: VaultContext,
        doc: dict[str, Any],
        keys: Keys,
        index: IndexCache,
        *,
        audit: Callable[..., None],
        audit_records: Callable[[], Iterator[dict[str, Any]]],
        config: Callable[[], VaultConfig],
        reindex: Callable[[], int],
    ) -> None:
        self._ctx = ctx
        self._doc = doc
        self._keys = keys
        self._index = index
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
            else:  # pragma: no cover - every other format is at its first version
                raise UnsupportedVersion(f"no migration from {f.name} version {f.oldest}; upgrade sessionseal")
        if not dry_run:
            detail = {"steps": len(steps), **{f.name: f.newest for f in found if f.newest is not None}}
            self._audit("migrate", detail=detail)
        return found, steps


def status(name: str, versions: Sequence[int], current: int) -> FormatStatus:
    return FormatStatus(name, min(versions, default=None), max(versions, default=None), current, len(versions))
