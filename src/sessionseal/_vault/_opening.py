"""Opening: creating a vault (``init``) and opening one, with the checks on its directory and its
description (``vault.json``) that come before any key is read (docs/design.md, "Start-up").

The facade passes its own constructor down (*build*): this module never imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import _container, _crypto, _paths
from .._fs import TMP_PREFIX, Dir, check_ancestors, check_vault_dir, vault_exists
from .._index import INDEX_FILE, Index
from .._keystore import KeychainProvider, KeyProvider, MasterKeys
from .._keytable import KEYTABLE, KeyTable
from .._passphrase import KEYFILE, PassphraseProvider
from .._state import NO_CONFIG, VaultState
from ..errors import (
    IntegrityError,
    KeyStoreError,
    SessionSealError,
    UnsafePermissions,
    UnsupportedVersion,
    VaultExists,
    VaultNotFound,
)
from . import _common
from ._auditing import record_refusal
from ._common import VAULT_FILE, VAULT_FORMAT, VAULT_VERSION
from ._context import VaultContext
from ._results import VaultInfo

V = TypeVar("V")


def create(
    path: str | os.PathLike[str] | None,
    *,
    key_provider: str | KeyProvider,
    passphrase: str | bytes | Callable[[], str | bytes] | None,
    interactive: bool,
    build: Callable[[Path, Dir, dict[str, Any], KeyProvider], V],
    finish: Callable[[V, KeyTable], None],
) -> V:
    """Create a vault (:meth:`Vault.init`): *build* makes the open vault, *finish* completes it."""
    vpath = resolve(path)
    check_ancestors(vpath)
    os.makedirs(vpath.parent, mode=0o700, exist_ok=True)
    root = Dir(vpath, create=True)
    try:
        if root.exists(VAULT_FILE):
            raise VaultExists(f"a vault already exists at {vpath}; open it, or choose another --vault")
        leftovers = set(root.names()) - {"sessions", "checkpoints", "locks", KEYTABLE, KEYFILE, INDEX_FILE}
        if any(not n.startswith(TMP_PREFIX) for n in leftovers):
            raise VaultExists(f"{vpath} is not empty; choose an empty or new directory for the vault")
        provider = make_provider(key_provider, passphrase, root, interactive=interactive)
        vault_id = uuid.uuid4()
        master = MasterKeys({1: _crypto.new_key()})
        provider.store(vault_id, master)
        try:
            table = KeyTable(vault_id=vault_id, vault_secret=_crypto.new_key())
            # A new vault anchors its state from the start (issue 20): no config file yet.
            # Its audit log is MACed under a key of the state's from the first record on.
            table.state = VaultState(tracked=True, config=NO_CONFIG, audit_keys={1: _crypto.new_key()})
            table.write(root, master.current, 1)
            Index(vault_id=vault_id).write(root, master.current, 1)
            doc = {
                "format": VAULT_FORMAT,
                "version": VAULT_VERSION,
                "vault_id": str(vault_id),
                "key_provider": provider.name,
                "created_at": _common.now().isoformat(),
            }
            vault = build(vpath, root, doc, provider)
            root.write_atomic(VAULT_FILE, json.dumps(doc, indent=1).encode() + b"\n")
        except BaseException:
            # Fail closed and leave nothing half-made: no orphan key in the keychain.
            with contextlib.suppress(SessionSealError):
                provider.delete(vault_id)
            raise
        finish(vault, table)
        return vault
    except BaseException:
        root.close()
        raise


def open_existing(
    path: str | os.PathLike[str] | None,
    *,
    key_provider: KeyProvider | None,
    passphrase: str | bytes | Callable[[], str | bytes] | None,
    interactive: bool,
    build: Callable[[Path, Dir, dict[str, Any], KeyProvider], V],
) -> V:
    """Open a vault's directory and describe it (:meth:`Vault.open`); *build* makes the open vault."""
    vpath = resolve(path)
    if not vault_exists(vpath):
        raise VaultNotFound(f"no vault at {vpath}; create one with 'sessionseal init'")
    check_ancestors(vpath)
    try:
        check_vault_dir(vpath)
    except UnsafePermissions as exc:
        record_refusal(vpath, None, exc)
        raise
    root = Dir(vpath)
    try:
        try:
            raw = root.read(VAULT_FILE, max_size=64 * 1024)
        except FileNotFoundError:
            raise VaultNotFound(f"{vpath} is not a sessionseal vault; create one with 'sessionseal init'") from None
        doc = parse_doc(raw, vpath)
        provider = key_provider or make_provider(doc["key_provider"], passphrase, root, interactive=interactive)
        if provider.name != doc["key_provider"]:
            raise KeyStoreError(
                f"this vault keeps its key with the {doc['key_provider']} provider, not {provider.name}"
            )
        if isinstance(provider, PassphraseProvider):
            provider.bind(root)
        vault = build(vpath, root, doc, provider)
    except SessionSealError as exc:
        if not isinstance(exc, VaultNotFound):
            record_refusal(vpath, root, exc)
        root.close()
        raise
    except BaseException:
        root.close()
        raise
    return vault


def make_provider(
    choice: str | KeyProvider,
    passphrase: str | bytes | Callable[[], str | bytes] | None,
    root: Dir,
    *,
    interactive: bool,
) -> KeyProvider:
    if not isinstance(choice, str):
        if isinstance(choice, PassphraseProvider):
            choice.bind(root)
        return choice
    if choice == "keychain":
        return KeychainProvider(interactive=interactive)
    if choice == "passphrase":
        if passphrase is None:
            raise KeyStoreError("this vault uses a passphrase: set SESSIONSEAL_PASSPHRASE or pass --passphrase-file")
        return PassphraseProvider(passphrase, root=root)
    raise KeyStoreError(f"unknown key provider {choice!r}; use 'keychain' or 'passphrase'")


def parse_doc(raw: bytes, vpath: Path) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != VAULT_FORMAT or not isinstance(doc["vault_id"], str):
            raise ValueError
        uuid.UUID(doc["vault_id"])
        if doc["key_provider"] not in ("keychain", "passphrase"):
            raise ValueError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityError(f"{vpath / VAULT_FILE} is damaged; restore it from a backup") from None
    if doc.get("version") != VAULT_VERSION:
        raise UnsupportedVersion(f"the vault at {vpath} is from a newer sessionseal; upgrade sessionseal")
    return doc


def resolve(path: str | os.PathLike[str] | None) -> Path:
    # Parent directories (a symlinked home, say) are resolved once here; the vault
    # directory itself must not be a link (checked by lstat when it is opened).
    p = Path(path) if path is not None else _paths.default_vault_path()
    p = p.expanduser()
    if p.name in ("", ".", ".."):
        p = p.resolve()
    return p.parent.resolve() / p.name


def describe(ctx: VaultContext, doc: dict[str, Any], provider: KeyProvider, audit_log: Path) -> VaultInfo:
    """What ``Vault.info`` shows: ``vault.json``, the key provider, the session files' count
    and size; nothing that needs the key."""
    names = ctx.session_files()
    stored = 0
    for n in names:
        try:
            stored += os.stat(n, dir_fd=ctx.sessions.fd, follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return VaultInfo(
        vault_path=str(ctx.path),
        vault_id=str(ctx.vault_id),
        key_provider=provider.name,
        key_provider_detail=provider.describe(),
        format_version=int(doc["version"]),
        container_version=_container.FORMAT_VERSION,
        created_at=str(doc.get("created_at", "")),
        session_count=len(names),
        stored_bytes=stored,
        audit_log_path=str(audit_log),
        key_backend=provider.backend_class if isinstance(provider, KeychainProvider) else None,
    )
