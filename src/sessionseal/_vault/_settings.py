"""Settings: the vault's config (``config.sst``, under a key derived from the vault secret) and the
sanitizer built from it (docs/sanitizer.md).  The config holds the user's literals, which may
name internal hosts or customers: it is only ever read here, and never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _configfile
from ..errors import InvalidInput
from ._context import VaultContext
from ._keys import LABEL_CONFIG, LABEL_FINGERPRINT, Keys

if TYPE_CHECKING:
    from .._config import VaultConfig
    from .._sanitize import Sanitizer


class Settings:
    """The config of one open vault, and its sanitizer (built once, rebuilt when the config changes)."""

    def __init__(self, ctx: VaultContext, keys: Keys) -> None:
        self._ctx = ctx
        self._keys = keys
        #: The sanitizer of the current config (None: build it at first use).
        self.sanitizer_cache: Sanitizer | None = None

    def config_key(self) -> bytes:
        return self._keys.derive(LABEL_CONFIG)

    def read(self) -> VaultConfig:
        """The stored config (defaults when none was set).

        :raises IntegrityError: the stored configuration was modified.
        """
        from .._config import read_config

        return read_config(self._ctx.root, self._ctx.vault_id, self.config_key())[0]

    def sanitizer(self) -> Sanitizer:
        if self.sanitizer_cache is None:
            self.sanitizer_cache = self.build_sanitizer(self.read())
        return self.sanitizer_cache

    def build_sanitizer(self, config: VaultConfig) -> Sanitizer:
        """The built-in catalogue plus the user's rules, literals and allowlist.

        :raises InvalidInput: a user rule clashes with a built-in one or does not compile.
        """
        from .._sanitize import Sanitizer

        extra = config.sanitizer
        try:
            return Sanitizer(
                self._keys.derive(LABEL_FINGERPRINT),
                extra_rules=[rule.model_dump() for rule in extra.rules],
                literals=extra.literals,
                allowlist=extra.allowlist,
            )
        except ValueError as exc:
            # RuleError names the rule and what is wrong with it, never a literal.
            raise InvalidInput(f"the sanitizer rules in the vault config are invalid: {exc}") from None

    def store(
        self, config: VaultConfig | dict[str, Any] | str | bytes, *, schedule_auto: Callable[[int | None], None]
    ) -> tuple[VaultConfig, VaultConfig]:
        """Validate and store a new config atomically, under the vault lock; returns (old, new).

        :param schedule_auto: called when the automatic cleanup's interval changed (a new
            interval starts now: the next open runs the policy once).
        :raises InvalidInput: not a valid config, or rules the sanitizer cannot use (nothing is changed).
        """
        from .._config import parse_config, read_config, write_config

        ctx = self._ctx
        new = parse_config(config)
        sanitizer = self.build_sanitizer(new)  # refuse rules the sanitizer cannot use, before writing
        self._keys.check_writable()  # a rolled-back vault is read-only (issue 20)
        with ctx.vault_lock(), ctx.mutex:
            key = self.config_key()
            old, generation = read_config(ctx.root, ctx.vault_id, key)
            write_config(ctx.root, ctx.vault_id, key, new, generation + 1)
            self.sanitizer_cache = sanitizer
            if new.retention.auto_interval != old.retention.auto_interval:
                schedule_auto(None if new.retention.auto_interval is None else 0)
        return old, new

    def audit_settings(self) -> tuple[int, int, bool] | None:
        """The audit log's settings from the config (None: every default)."""
        body, _ = _configfile.read_config_body(self._ctx.root, self._ctx.vault_id, self.config_key())
        if body is None:
            return None  # every default, as the audit log starts with
        settings = _configfile.audit_settings(body)
        if settings is None:  # not the shape this build writes: validate it all
            cfg = self.read().audit
            settings = (cfg.rotate_bytes, cfg.keep_files, cfg.syslog)
        return settings


def change_detail(old: VaultConfig, new: VaultConfig) -> dict[str, Any]:
    """The audit detail of a config change: counts only, since rules, literals and allowlist
    entries may name internal hosts or customers."""
    return {
        "rules_changed": old.sanitizer != new.sanitizer,
        "rules": len(new.sanitizer.rules),
        "literals": len(new.sanitizer.literals),
        "allowlist": len(new.sanitizer.allowlist),
        "audit_changed": old.audit != new.audit,
        "retention_changed": old.retention != new.retention,
    }
