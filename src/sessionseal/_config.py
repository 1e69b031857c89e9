"""The vault's own configuration, kept encrypted in ``config.sst``.

Configuration can be sensitive: user sanitizer rules and literal strings name internal
hosts and customer ids.  So it is a container (kind 4) whose data key is wrapped under a
key derived from the vault secret, not a plaintext file.  It is rewritten atomically under
the vault lock; a missing file means every default.
"""

from __future__ import annotations

import re
from typing import Any, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import _configfile, _remote
from ._configfile import CONFIG_FILE, CONFIG_VERSION
from ._fs import Dir
from ._retention import RetentionConfig
from .errors import IntegrityError, InvalidInput
from .models import parse_model

__all__ = [
    "CONFIG_FILE",
    "RemoteConfig",
    "SanitizerConfig",
    "UserRule",
    "VaultConfig",
    "config_of",
    "read_config",
    "write_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class UserRule(_Strict):
    """A rule a user adds to the sanitizer's catalogue."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str = ""
    regex: str
    keywords: list[str] = Field(default_factory=list, description="lowercase literals; the rule runs only near them")
    secret_group: int = Field(default=0, ge=0, description="regex group holding the secret (0: the whole match)")
    fingerprint: bool = Field(
        default=False,
        description="keyed fingerprints in placeholders: only for machine-generated tokens, never passwords",
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"the regex does not compile: {exc.msg}") from None
        return value


class SanitizerConfig(_Strict):
    """User extensions of the sanitizer."""

    rules: list[UserRule] = Field(default_factory=list)
    literals: list[str] = Field(default_factory=list, description="exact strings always redacted (hostnames, ids)")
    allowlist: list[str] = Field(default_factory=list, description="exact values never redacted")


class AuditConfig(_Strict):
    """The audit log's rotation, retention and forwarding (never touched by session cleanup)."""

    rotate_bytes: int = Field(default=8 << 20, ge=64 * 1024, description="rotate the current file at this size")
    keep_files: int = Field(default=0, ge=0, description="rotated files to keep (0: all)")
    syslog: bool = Field(default=False, description="also send every record to the local syslog (LOG_AUTHPRIV)")


#: The longest wait before an automatic push (an hour): a longer one is a mistake, not a choice.
AUTO_PUSH_MAX_DELAY: Final = 3600.0


class RemoteConfig(_Strict):
    """A remote the vault syncs through (docs/sync.md): where it is, never a credential (they
    come from the usual AWS sources when it is used; the model has no field that could hold one)."""

    name: str
    url: str = Field(description="s3://BUCKET[/PREFIX] (docs/spec/remote-v1.md)")
    endpoint: str | None = Field(default=None, description="an S3-compatible server's URL; none: AWS S3")
    profile: str | None = Field(default=None, description="the AWS profile whose credentials to use")
    region: str | None = None
    device: UUID = Field(description="this device's id on the remote: it writes only under d/<device>/")
    added_at: str
    auto_push: float | None = Field(
        default=None,
        ge=0,
        le=AUTO_PUSH_MAX_DELAY,
        description="seconds after a write before a background push to this remote (docs/sync.md); none: off",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _remote.check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return str(_remote.parse_url(value))

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _remote.check_endpoint(value)

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        return None if value is None else _remote.check_profile(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _remote.check_region(value)


class VaultConfig(_Strict):
    """Everything configurable per vault."""

    version: int = CONFIG_VERSION
    sanitizer: SanitizerConfig = Field(default_factory=SanitizerConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    remotes: list[RemoteConfig] = Field(default_factory=list)

    @field_validator("remotes")
    @classmethod
    def _unique(cls, value: list[RemoteConfig]) -> list[RemoteConfig]:
        if len({r.name for r in value}) != len(value):
            raise ValueError("two remotes have the same name")
        return value


def read_config(root: Dir, vault_id: UUID, key: bytes) -> tuple[VaultConfig, int]:
    """Return the configuration and its generation (0 when there is no file yet).

    :raises IntegrityError: the file was modified or does not parse.
    """
    body, generation = _configfile.read_config_body(root, vault_id, key)
    return config_of(body), generation


def config_of(body: bytes | None) -> VaultConfig:
    """The configuration a stored document holds (every default for None).

    :raises IntegrityError: the document does not parse.
    """
    if body is None:
        return VaultConfig()
    try:
        return VaultConfig.model_validate_json(body)
    except ValidationError:
        raise IntegrityError("the vault's config does not parse; run 'sessionseal verify'") from None


def write_config(root: Dir, vault_id: UUID, key: bytes, config: VaultConfig, generation: int) -> bytes:
    """Write the configuration atomically as generation *generation*; returns the bytes written."""
    # Without remotes, written as before they existed: an older sessionseal still reads it; and
    # without auto_push while no remote has it on, as before that field existed.
    exclude: Any = None
    if not config.remotes:
        exclude = {"remotes"}
    elif all(r.auto_push is None for r in config.remotes):
        exclude = {"remotes": {"__all__": {"auto_push"}}}
    body = config.model_dump_json(exclude=exclude)
    return _configfile.write_config_body(root, vault_id, key, body.encode(), generation)


def parse_config(value: VaultConfig | dict[str, Any] | str | bytes) -> VaultConfig:
    """Validate a configuration document.

    :raises InvalidInput: names the field; never echoes a value (literals are sensitive).
    """
    config = parse_model(VaultConfig, value, "vault config")
    # What is written must read back: a Python caller's int of thousands of digits passes the
    # model but not its JSON parser, and a stored config that does not parse locks the vault.
    try:
        return VaultConfig.model_validate_json(config.model_dump_json())
    except (ValueError, RecursionError):  # ValidationError is a ValueError
        raise InvalidInput("not a valid vault config: a value cannot be stored (an integer too large?)") from None
