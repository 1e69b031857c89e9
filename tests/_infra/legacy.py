"""A vault as a build before issue 20 left it, made from one of today's (the tests of
``migrate`` and of untracked vaults; ``tests/fixtures/vault-v1`` is a real one, of a passphrase).

Such a build kept nothing of the vault's state in three places today's keeps it: its key table
has no ``TABLE_STATE`` frame, its keychain entry no head, and its audit log is of format-2
records MACed under the vault secret's key with the head in ``audit/anchor.sst``.  A key table
without state next to a keychain head or format-3 records is not such a vault but a key table
rolled back to before ``migrate`` (refused as one), so :func:`untrack` rewrites all three.
"""

from __future__ import annotations

import uuid

from sessionseal import Vault
from sessionseal._audit import AUDIT_DIR, CURRENT, Anchor, AuditLog, record_line, split_line
from sessionseal._audit._records import FORMAT_UNTRACKED, complete_lines, parse_json
from sessionseal._fslock import lock
from sessionseal._keystore import MasterKeys
from sessionseal._state import VaultState


def untrack(vault: Vault, *, drop_key: uuid.UUID | None = None) -> None:
    """Rewrite *vault* as a build before issue 20 wrote it (see the module's docstring).  With
    *drop_key*, that session's key goes too but its file stays (a killed erasure)."""
    keys, ctx = vault.parts.keys, vault.parts.ctx
    with ctx.vault_lock(), ctx.mutex:
        table = keys.keytable(fresh=True)
        table.state = VaultState()
        if drop_key is not None:
            del table.session_keys[drop_key]
        master = keys.fresh_master()
        table.write(ctx.root, master.keys[table.kek_epoch], table.kek_epoch)
        keys.provider.store(ctx.vault_id, MasterKeys(master.keys))  # an entry without a head
        with lock(ctx.locks.path / "audit.lock", timeout=10, what="the audit log"):
            _legacy_log(vault, table.vault_secret)


def _legacy_log(vault: Vault, vault_secret: bytes) -> None:
    """The audit log's records again as format 2 (no ``k``) under the vault secret's key, chained
    as they were, and the head in ``anchor.sst``."""
    ctx = vault.parts.ctx
    if not ctx.root.exists(AUDIT_DIR):
        return
    mac_key, anchor_key = AuditLog.keys(vault_secret)
    d = ctx.root.sub(AUDIT_DIR)
    log = AuditLog(ctx.root, ctx.locks, ctx.vault_id)
    try:
        assert d.names() == [CURRENT] or sorted(d.names()) == sorted([CURRENT, "pending.log"]), d.names()
        out, head = bytearray(), Anchor()
        for _, line in complete_lines(d.read(CURRENT, max_size=1 << 30)):
            split = split_line(line)
            assert split is not None
            rec = {k: v for k, v in parse_json(split[0]).items() if k != "k"}
            rec["v"] = FORMAT_UNTRACKED
            if head.seq:
                rec["prev"] = head.mac
            data, head.mac = record_line(mac_key, rec)
            head.seq = rec["seq"]
            out += data
        d.write_atomic(CURRENT, bytes(out))
        if head.seq:
            log._write_anchor(d, anchor_key, head)
    finally:
        log.close()
        d.close()
