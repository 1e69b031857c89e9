"""``config.sst`` as bytes: reading and writing the encrypted configuration document.

The models that validate it are in :mod:`._config` (pydantic).  This module stays free of
pydantic so that a command that only needs the audit log's settings -- every command
appends an audit record -- does not import it (docs/design.md, "Start-up").
"""

from __future__ import annotations

import json
from typing import Final
from uuid import UUID

from . import _container
from ._container import FrameType, Kind
from ._fs import Dir
from .errors import IntegrityError

__all__ = [
    "CONFIG_FILE",
    "CONFIG_VERSION",
    "AuditSettings",
    "audit_settings",
    "config_generation",
    "open_config",
    "read_config_body",
    "read_config_raw",
    "write_config_body",
]

CONFIG_FILE: Final = "config.sst"
#: The config document's format version (``version``).
CONFIG_VERSION: Final = 1
_CONFIG_ID: Final = UUID(int=4)
_MAX_CONFIG: Final = 4 << 20
_TAMPERED: Final = "the vault's config failed its integrity check; run 'sessionseal verify'"

#: (rotate_bytes, keep_files, syslog): the audit section of the config.
AuditSettings = tuple[int, int, bool]
_AUDIT_TYPES: Final = {"rotate_bytes": int, "keep_files": int, "syslog": bool}


def read_config_body(root: Dir, vault_id: UUID, key: bytes) -> tuple[bytes | None, int]:
    """The stored configuration document (JSON) and its generation; ``(None, 0)`` when there is none.

    :raises IntegrityError: the file was modified.
    """
    raw = read_config_raw(root)
    if raw is None:
        return None, 0
    return open_config(raw, vault_id, key)


def read_config_raw(root: Dir) -> bytes | None:
    """``config.sst`` as stored (None: there is none), unauthenticated: :func:`open_config` checks it."""
    try:
        return root.read(CONFIG_FILE, max_size=_MAX_CONFIG)
    except FileNotFoundError:
        return None


def config_generation(raw: bytes) -> int:
    """The generation a stored config's header claims (unauthenticated).

    :raises IntegrityError: not a config container's header.
    """
    header = _container.parse_unverified_header(raw)
    if header.kind != Kind.CONFIG or header.object_id != _CONFIG_ID:
        raise IntegrityError(_TAMPERED)
    return header.generation


def open_config(raw: bytes, vault_id: UUID, key: bytes) -> tuple[bytes, int]:
    """The document (JSON) of a stored config, and its generation.

    :raises IntegrityError: the file was modified.
    """
    header = _container.parse_unverified_header(raw)
    if header.kind != Kind.CONFIG or header.vault_id != vault_id or header.object_id != _CONFIG_ID:
        raise IntegrityError(_TAMPERED)
    _, frames = _container.open_frames(raw, header, key)
    if [f.type for f in frames] != [FrameType.BODY]:
        raise IntegrityError(_TAMPERED)
    return _container.decode_payload(frames[0].data), header.generation


def write_config_body(root: Dir, vault_id: UUID, key: bytes, body: bytes, generation: int) -> bytes:
    """Write a validated configuration document atomically as generation *generation*; returns
    the bytes written (the vault records their hash)."""
    data = _container.seal(
        kind=Kind.CONFIG,
        vault_id=vault_id,
        object_id=_CONFIG_ID,
        generation=generation,
        kek=key,
        kek_epoch=0,
        frames=[(FrameType.BODY, _container.encode_payload(body, compress=True))],
    )
    root.write_atomic(CONFIG_FILE, data)
    return data


def audit_settings(body: bytes) -> AuditSettings | None:
    """The audit section of a stored document, when it has exactly the shape the models
    write (every stored document was validated before it was written, and is authenticated);
    None when it does not, and the caller validates the whole document instead."""
    try:
        section = json.loads(body).get("audit")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(section, dict) or section.keys() != _AUDIT_TYPES.keys():
        return None
    if any(type(section[k]) is not t for k, t in _AUDIT_TYPES.items()):
        return None
    return section["rotate_bytes"], section["keep_files"], section["syslog"]
