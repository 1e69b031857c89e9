"""``import_recovery_kit``: restore a vault's master key from a recovery kit on a fresh machine
(docs/api.md, "Backups"; docs/sync.md, "Recovery kit")."""

from __future__ import annotations

import os
from collections.abc import Callable

from ._keystore import KeyProvider
from ._vault import Vault
from ._vault._backups import import_kit
from ._vault._opening import resolve

__all__ = ["import_recovery_kit"]


def import_recovery_kit(
    path: str | os.PathLike[str] | None,
    kit: bytes,
    kit_passphrase: str | Callable[[], str],
    *,
    key_provider: KeyProvider | None = None,
    passphrase: bytes | Callable[[], bytes] | None = None,
    interactive: bool = False,
) -> tuple[int, bool]:
    """Put the master key the recovery *kit* holds into the key store of the vault at *path* (a
    copy restored from a backup or a snapshot), once it is shown to open that vault's key table;
    then open the vault and record ``key.import``.  Returns the kit's epoch and whether the key
    store changed (False: it held that key already).  A key store that holds another key of the
    vault is never changed; a passphrase vault gets a new key file under *passphrase* only when
    it has none.

    :raises InvalidInput: not a kit, another vault's, another epoch's than the key table's, or a
        key store that holds another key of this vault.
    :raises WrongPassphrase: the kit's passphrase is wrong.
    """
    source = kit_passphrase if callable(kit_passphrase) else (lambda: kit_passphrase)
    vault_pw: Callable[[], bytes] | None = None
    if passphrase is not None:
        vault_pw = passphrase if callable(passphrase) else (lambda: passphrase)
    parsed, changed = import_kit(
        resolve(path), kit, source, provider=key_provider, vault_passphrase=vault_pw, interactive=interactive
    )
    with Vault.open(path, key_provider=key_provider, passphrase=vault_pw, interactive=interactive) as vault:
        vault.backups.imported(parsed.epoch)
    return parsed.epoch, changed
