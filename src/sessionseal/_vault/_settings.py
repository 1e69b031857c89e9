"""Settings: the vault's config (``config.sst``, under a key derived from the vault secret) and the
sanitizer built from it (docs/sanitizer.md).  The config holds the user's literals, which may
name internal hosts or customers: it is only ever read here, and never logged.

The config is bound to the vault's anchored state (issue 20, item 6): the key table records
``(generation, sha256)`` of the file each ``set_config`` wrote.  Deleting ``config.sst`` would
silently turn the user's literals off, and an older copy would bring back a withdrawn retention
policy for the automatic cleanup to run; whoever can write the directory can do both without the
key.  So a file that is missing, older or other than the recorded one is refused for everything
that *uses* the config (saves, appends, imports, the cleanup by the config's policy) until the
user restores it or records it as it is (``config accept``); reads of sessions go on
(docs/reliability.md, "The config").
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .. import _configfile
from .._state import StateChange
from ..errors import ConfigNotRecorded, InvalidInput
from ._auditing import Auditor
from ._context import VaultContext
from ._keys import LABEL_CONFIG, LABEL_FINGERPRINT, Keys
from ._results import ConfigAccepted

if TYPE_CHECKING:
    from .._config import VaultConfig
    from .._sanitize import Sanitizer


#: Why a config file is not the recorded one (the ``was`` of ``config accept``), and what to say.
MISMATCHES: Final = {
    "missing": "is missing, but the vault recorded a config (its literals, rules and policy would silently go)",
    "older": "is older than the config the vault recorded (put back from a backup, or rolled back)",
    "different": "is not the config the vault recorded",
    "unrecorded": "is there, but the vault recorded that it has no config (an old copy put back?)",
}


@dataclass(frozen=True)
class Stored:
    """``config.sst`` as read, against the state's record of it (read first: a config file is
    written before it is recorded, so a reader never sees a recorded config newer than the file
    it reads next)."""

    raw: bytes | None
    generation: int  # the header's, unauthenticated (0: no file)
    digest: str  # sha256 hex of *raw* ("" : no file)
    #: ``(generation, sha256)`` recorded; None: the vault does not record its config (untracked)
    recorded: tuple[int, str] | None
    #: None when the file is the recorded one; else a key of :data:`MISMATCHES`
    problem: str | None
    #: a valid file newer than the record (a ``set_config`` killed before it recorded it): the
    #: record to make, once the file has authenticated
    heal: tuple[int, str] | None = None

    def record(self) -> tuple[int, str]:
        """What recording the file as it is writes: its hash, under a generation that never
        falls (a file of a generation at or below it is never taken for a newer one)."""
        high = 0 if self.recorded is None else self.recorded[0]
        return max(high, self.generation), self.digest


class Settings:
    """The config of one open vault, and its sanitizer (built once, rebuilt when the config changes)."""

    def __init__(self, ctx: VaultContext, keys: Keys) -> None:
        self._ctx = ctx
        self._keys = keys
        #: The sanitizer of the current config (None: build it at first use).
        self.sanitizer_cache: Sanitizer | None = None

    def config_key(self) -> bytes:
        return self._keys.derive(LABEL_CONFIG)

    def stored(self) -> Stored:
        """``config.sst`` against the state's record of it (nothing authenticated yet).

        :raises IntegrityError: the file's header is not a config's.
        """
        state = self._keys.state(fresh=True)  # first: see the class comment of Stored
        raw = _configfile.read_config_raw(self._ctx.root)
        generation = 0 if raw is None else _configfile.config_generation(raw)
        digest = "" if raw is None else hashlib.sha256(raw).hexdigest()
        recorded = state.config if state.tracked else None
        problem, heal = None, None
        if recorded is not None and digest != recorded[1]:
            if raw is not None and generation > recorded[0]:
                # Only the key's holder writes a config that authenticates, and every one it
                # wrote is at or below the record's generation once recorded: this one is a
                # set_config killed between its file and its record.
                heal = (generation, digest)
            elif raw is None:
                problem = "missing"
            elif not recorded[1]:
                problem = "unrecorded"
            else:
                problem = "older" if generation < recorded[0] else "different"
        return Stored(raw, generation, digest, recorded, problem, heal)

    def mismatch(self, stored: Stored) -> ConfigNotRecorded:
        assert stored.problem is not None
        path = self._ctx.path / _configfile.CONFIG_FILE
        return ConfigNotRecorded(
            f"{path} {MISMATCHES[stored.problem]}; saves, imports and the automatic cleanup are refused "
            "until you restore the recorded config, or check this one ('sessionseal config show') and "
            "run 'sessionseal config accept'"
        )

    def body(self, stored: Stored) -> bytes | None:
        """The document of *stored* (None: no file), authenticated; a newer file's record is
        noted, to be made with the operation's commit.

        :raises IntegrityError: the file was modified.
        """
        if stored.raw is None:
            return None
        body, _ = _configfile.open_config(stored.raw, self._ctx.vault_id, self.config_key())
        if stored.heal is not None:
            self._keys.note(StateChange(config=stored.heal))
        return body

    def read(self, *, checked: bool = True) -> VaultConfig:
        """The stored config (defaults when none was set).

        :param checked: refuse a config that is not the one the vault recorded; unchecked is
            for showing it (``config show``, so that it can be checked before it is accepted)
            and for what only reports (``verify``, ``stats``).
        :raises ConfigNotRecorded: *checked*, and the file is missing, older or other than recorded.
        :raises IntegrityError: the stored configuration was modified.
        """
        from .._config import config_of

        stored = self.stored()
        body = self.body(stored)  # first: a file that fails authentication is damage, not a rollback
        if checked and stored.problem is not None:
            raise self.mismatch(stored)
        return config_of(body)

    def check(self) -> str | None:
        """Why the config is not the one the vault recorded (``verify``'s ``config``), or None.

        :raises IntegrityError: the stored configuration was modified or does not parse.
        """
        from .._config import config_of

        stored = self.stored()
        config_of(self.body(stored))
        return None if stored.problem is None else str(self.mismatch(stored))

    def accept(self, auditor: Auditor) -> ConfigAccepted:
        """Record ``config.sst`` as it is (or that there is none) as the vault's config
        (:meth:`Vault.accept_config`), and audit it (``config.accept``).

        :raises InvalidInput: the vault does not record its config (made before issue 20:
            ``migrate`` records it).
        :raises IntegrityError: the file was modified or does not parse: not a config to accept.
        """
        from .._config import config_of

        ctx = self._ctx
        with ctx.vault_lock(), ctx.mutex:
            stored = self.stored()
            if stored.recorded is None:
                raise InvalidInput(
                    "this vault does not record its config yet (made by an older sessionseal); "
                    "'sessionseal migrate' records it as it is"
                )
            config_of(self.body(stored))
            record = stored.record()
            self._keys.commit(StateChange(config=record))
            self.sanitizer_cache = None
        result = ConfigAccepted(was=stored.problem, config=stored.raw is not None, generation=record[0])
        auditor.reconfigure()  # the audit settings may change with the config
        auditor.record("config.accept", detail=dataclasses.asdict(result))
        return result

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
        from .._config import config_of, parse_config, write_config

        ctx = self._ctx
        new = parse_config(config)
        sanitizer = self.build_sanitizer(new)  # refuse rules the sanitizer cannot use, before writing
        self._keys.check_writable()  # a rolled-back vault is read-only (issue 20)
        with ctx.vault_lock(), ctx.mutex:
            # A whole new config is the user's decision: it replaces one not recorded too.
            stored = self.stored()
            old = config_of(self.body(stored))
            # Above every generation written or accepted: an older file is never taken for this one.
            generation = stored.record()[0] + 1
            data = write_config(ctx.root, ctx.vault_id, self.config_key(), new, generation)
            self.sanitizer_cache = sanitizer
            if new.retention.auto_interval != old.retention.auto_interval:
                schedule_auto(None if new.retention.auto_interval is None else 0)
            # Recorded before set_config returns.  Killed between the file and this record, the
            # file is newer than the record: taken as it is, and recorded at the next commit.
            self._keys.commit(StateChange(config=(generation, hashlib.sha256(data).hexdigest())))
        return old, new

    def update(self, change: Callable[[VaultConfig], VaultConfig]) -> tuple[VaultConfig, VaultConfig]:
        """Change one part of the stored config (the remotes) under the vault lock: read, change
        and write cannot interleave with another process's, so neither change is lost.

        :raises ConfigNotRecorded: the file is not the recorded config (nothing is built on it).
        :raises InvalidInput: *change* made a config that does not validate (nothing is changed).
        """
        from .._config import config_of, parse_config, write_config

        ctx = self._ctx
        self._keys.check_writable()
        with ctx.vault_lock(), ctx.mutex:
            stored = self.stored()
            old = config_of(self.body(stored))
            if stored.problem is not None:
                raise self.mismatch(stored)
            new = parse_config(change(old).model_dump())
            generation = stored.record()[0] + 1
            data = write_config(ctx.root, ctx.vault_id, self.config_key(), new, generation)
            self._keys.commit(StateChange(config=(generation, hashlib.sha256(data).hexdigest())))
        return old, new

    def audit_settings(self) -> tuple[int, int, bool] | None:
        """The audit log's settings from the config (None: every default)."""
        stored = self.stored()
        body = self.body(stored)
        if body is None:
            return None  # every default, as the audit log starts with (keep_files 0: all)
        settings = _configfile.audit_settings(body)
        if settings is None:  # not the shape this build writes: validate it all
            from .._config import config_of

            cfg = config_of(body).audit
            settings = (cfg.rotate_bytes, cfg.keep_files, cfg.syslog)
        if stored.problem is not None:
            # The log's own retention removes files: never on a config the user has not confirmed.
            settings = (settings[0], 0, settings[2])
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
        "remotes_changed": old.remotes != new.remotes,
    }
