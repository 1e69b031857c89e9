"""Secret redaction: the only gate between a session and the disk.

Every string of a session passes through :meth:`Sanitizer.sanitize_tree` before it is
serialized.  A match is replaced by a typed placeholder, ``[REDACTED:<rule-id>]``, or
``[REDACTED:<rule-id>:<fingerprint>]`` for a machine-generated token, where the
fingerprint is the first 8 hex digits of HMAC-SHA256(fingerprint key, secret): the same
token always maps to the same placeholder within a vault.  Values a person may have
chosen (passwords, anything found by its name) get no fingerprint, which would let
whoever holds the key test guesses offline (see :meth:`Sanitizer.placeholder`).
Only counts per rule leave this module, never values.

The rules are data (``sessionseal/rules/default.toml``, see :mod:`._rules`); matching is
in :mod:`._engine` on top of a keyword prefilter from :mod:`._native` (Hyperscan when
installed, else pyahocorasick, else pure Python).  Design notes: ``docs/sanitizer.md``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple, TypeAlias

from . import _checks
from ._engine import PLACEHOLDER, Finding, Scanner
from ._native import available_engines
from ._rules import Allowlist, Rule, RuleError, default_catalogue, rule_from_mapping

__all__ = [
    "FINGERPRINT_MIN_BITS",
    "PLACEHOLDER_RE",
    "Finding",
    "JSONValue",
    "Rule",
    "RuleError",
    "SanitizeResult",
    "Sanitizer",
    "available_engines",
    "mask_preview",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

#: Strings that are exactly one of these are never altered in a tree.
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)")
_SECRET_NAMED_RULE: Final = "secret-named-value"  # noqa: S105 - a rule id
#: What a placeholder looks like: ``[REDACTED:<rule-id>]`` or ``[REDACTED:<rule-id>:<8 hex>]``.
PLACEHOLDER_RE: Final = PLACEHOLDER
#: A fingerprint is only given to a value with at least this many bits of estimated entropy
#: (:func:`._checks.estimated_bits`): the fingerprint has 32 bits, so at least 2**32 such values
#: share each one, and trying 2**64 candidates is out of reach.
FINGERPRINT_MIN_BITS: Final = 64
_BLOCK: Final = 64  # SHA-256's block size
_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))


class SanitizeResult(NamedTuple):
    """A sanitized text and how many matches each rule replaced."""

    text: str
    counts: dict[str, int]


def mask_preview(value: str) -> str:
    """A preview that identifies nothing: at most the first 4 characters of a long value, then ``*``."""
    if len(value) < 16:
        return "*" * min(len(value), 8)
    return value[:4] + "*" * 8


class Sanitizer:
    """Replace secrets with typed, keyed placeholders.

    :param fingerprint_key: key for the placeholder fingerprints; a vault passes a key
        derived from its vault secret.  Without one, a random per-instance key is used.
    :param extra_rules: the user's own rules, as :class:`Rule` objects or mappings with
        the TOML fields (``id``, ``regex``, ``keywords``, ...).
    :param literals: strings that are always redacted wherever they occur (internal host
        names, customer ids), matched case-insensitively; counted as rule ``literal``.
    :param allowlist: values never redacted; an entry ``re:<regex>`` is a full-match pattern.
    :param engine: ``hyperscan``, ``ahocorasick`` or ``python``; default: the
        ``SESSIONSEAL_SANITIZER_ENGINE`` environment variable, else the best installed.
    :param builtin_rules: set False to use only *extra_rules* (tests, tools).
    """

    def __init__(
        self,
        fingerprint_key: bytes | None = None,
        *,
        extra_rules: Iterable[Rule | Mapping[str, Any]] = (),
        literals: Iterable[str] = (),
        allowlist: Iterable[str] = (),
        engine: str | None = None,
        builtin_rules: bool = True,
    ) -> None:
        self._key = fingerprint_key if fingerprint_key is not None else os.urandom(32)
        # HMAC-SHA256 (RFC 2104) keyed once: each placeholder copies these two hash states
        # instead of setting the key up again (a placeholder per finding adds up).
        key = self._key if len(self._key) <= _BLOCK else hashlib.sha256(self._key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))
        base_rules, base_allow = default_catalogue()
        rules: list[Rule] = list(base_rules) if builtin_rules else []
        seen = {r.id for r in rules}
        for raw in extra_rules:
            rule = raw if isinstance(raw, Rule) else rule_from_mapping(raw)
            if rule.id in seen or rule.id in ("literal", _SECRET_NAMED_RULE):
                raise RuleError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            rules.append(rule)
        self._allow: Allowlist = base_allow.extend(allowlist)
        self._scanner = Scanner(rules, self._allow, literals, engine)
        # Literals and secret-named values are never in here: people choose them.
        self._fingerprinted = frozenset(r.id for r in rules if r.fingerprint)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The active rules, built-in first."""
        return self._scanner.rules

    @property
    def engine(self) -> str:
        """The prefilter engine in use: ``hyperscan``, ``ahocorasick`` or ``python``."""
        return self._scanner.engine

    def placeholder(self, rule_id: str, secret: str) -> str:
        """The placeholder for *secret* found by *rule_id*.

        ``[REDACTED:<rule-id>:<8 hex>]`` when the rule finds machine-generated tokens (its
        ``fingerprint`` flag) and *secret* has at least :data:`FINGERPRINT_MIN_BITS` of
        estimated entropy; ``[REDACTED:<rule-id>]`` otherwise.  A fingerprint of a password
        would be an offline oracle for anyone holding the fingerprint key: a dictionary's
        guesses are tested against it at the speed of HMAC.
        """
        if rule_id in self._fingerprinted and _checks.estimated_bits(secret) >= FINGERPRINT_MIN_BITS:
            return f"[REDACTED:{rule_id}:{self.fingerprint(secret)}]"
        return f"[REDACTED:{rule_id}]"

    def fingerprint(self, secret: str) -> str:
        """The first 8 hex digits of HMAC-SHA256(fingerprint key, *secret*)."""
        inner = self._inner.copy()
        inner.update(secret.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:4].hex()

    def find(self, text: str) -> list[Finding]:
        """The secrets in *text* as spans; nothing is replaced (``sessionseal scan``)."""
        return self._scanner.find(text)

    def prepare(self, go_on: Callable[[], bool]) -> None:
        """Compile the rules' regexes ahead of use (they are compiled on first use otherwise),
        for as long as *go_on* says: time a caller would spend waiting anyway."""
        self._scanner.prepare(go_on)

    def find_spans(self, text: str) -> list[tuple[int, int, str]]:
        """:meth:`find` as ``(start, end, rule id)`` tuples, for callers that build no objects per finding."""
        return self._scanner.find_spans(text)

    def sanitize_text(self, text: str) -> SanitizeResult:
        """Return *text* with every secret replaced, and per-rule counts."""
        return self.redact(text, self._scanner.find(text))

    def redact(self, text: str, findings: Iterable[Finding]) -> SanitizeResult:
        """Replace the given (sorted, non-overlapping) findings of *text* with placeholders."""
        counts: Counter[str] = Counter()
        out: list[str] = []
        pos = 0
        placeholder = self.placeholder
        for start, end, rule_id in findings:
            out.append(text[pos:start])
            out.append(placeholder(rule_id, text[start:end]))
            counts[rule_id] += 1
            pos = end
        if not out:
            return SanitizeResult(text, {})
        out.append(text[pos:])
        return SanitizeResult("".join(out), dict(counts))

    def priority(self, rule_id: str) -> int:
        """The priority of a rule (lower wins overlaps); literals and secret-named values win."""
        return self._scanner.priorities.get(rule_id, 0)

    def sanitize_tree(self, value: JSONValue) -> tuple[JSONValue, dict[str, int]]:
        """Sanitize every string in a JSON-shaped tree; the shape is preserved.

        Values under keys whose name says secret (``GITHUB_TOKEN``, ``password``) are
        replaced whole, whatever they look like; dict keys are left alone, and strings
        that are exactly a UUID or an RFC 3339 timestamp are never altered.
        """
        counts: Counter[str] = Counter()
        return self._walk(value, counts, secret_name=False), dict(counts)

    def _walk(self, value: JSONValue, counts: Counter[str], *, secret_name: bool) -> JSONValue:
        if isinstance(value, str):
            if not value or _UUID.fullmatch(value) or _RFC3339.fullmatch(value):
                return value
            if secret_name and self._redact_whole(value):
                counts[_SECRET_NAMED_RULE] += 1
                return self._whole_placeholder(value)
            result = self.sanitize_text(value)
            counts.update(result.counts)
            return result.text
        if isinstance(value, dict):
            return {
                k: self._walk(v, counts, secret_name=isinstance(v, str) and _checks.is_secret_name(str(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, counts, secret_name=False) for v in value]
        return value

    def _whole_placeholder(self, value: str) -> str:
        """The placeholder of a value under a secret name.  Whatever its length, it may be a
        password, so it has no fingerprint unless it is exactly one token that a fingerprinted
        rule finds on its own (then with that token's fingerprint, as in text)."""
        spans = self._scanner.find_spans(value)
        if len(spans) == 1 and spans[0][:2] == (0, len(value)):
            rule_id = spans[0][2]
            if rule_id in self._fingerprinted and _checks.estimated_bits(value) >= FINGERPRINT_MIN_BITS:
                return f"[REDACTED:{_SECRET_NAMED_RULE}:{self.fingerprint(value)}]"
        return f"[REDACTED:{_SECRET_NAMED_RULE}]"

    def _redact_whole(self, value: str) -> bool:
        v = value.strip()
        if not v or PLACEHOLDER.fullmatch(v) or self._allow.allows(v) or _checks.is_placeholder(v):
            return False
        if v.lower() in {"true", "false", "null", "none"} or _checks.shannon_entropy(v) == 0.0:
            return False
        # A whole value under a secret name is secret, but a long text is prose about it:
        # sanitize that as text instead.
        return len(v) <= 4096 and "\n" not in v.strip()
