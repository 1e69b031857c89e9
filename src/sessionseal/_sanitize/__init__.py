"""Secret redaction: the only gate between a session and the disk.

Every string of a session passes through :meth:`Sanitizer.sanitize_tree` before it is
serialized.  A match is replaced by a typed placeholder, ``[REDACTED:<rule-id>]``, or
``[REDACTED:<rule-id>:<fingerprint>]`` for a machine-generated token, where the
fingerprint is the first 8 hex digits of HMAC-SHA256(fingerprint key, secret): the same
token always maps to the same placeholder within a vault.  Values a person may have
chosen (passwords, anything found by its name) get no fingerprint, which would let
whoever holds the key test guesses offline (see :meth:`Sanitizer.placeholder`).
Only counts per rule leave this module, never values.

The rules are data (``sessionseal/rules/*.toml``, see :mod:`._rules`); matching is
in :mod:`._engine` on top of a keyword prefilter from :mod:`._native` (Hyperscan when
installed, else pyahocorasick, else pure Python).  Design notes: ``docs/sanitizer.md``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from . import _checks
from ._engine import PLACEHOLDER, Finding, Scanner
from ._native import available_engines
from ._rules import Allowlist, Rule, RuleError, default_catalogue, rule_from_mapping
from ._tree import SECRET_NAMED_RULE, JSONValue, TreeWalker

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
            if rule.id in seen or rule.id in ("literal", SECRET_NAMED_RULE):
                raise RuleError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            rules.append(rule)
        self._allow: Allowlist = base_allow.extend(allowlist)
        self._scanner = Scanner(rules, self._allow, literals, engine)
        # Literals and secret-named values are never in here: people choose them.
        self._fingerprinted = frozenset(r.id for r in rules if r.fingerprint)
        self._tree = TreeWalker(self)

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

    def find_spans(self, text: str, source: tuple[bytes, int, int] | None = None) -> list[tuple[int, int, str]]:
        """:meth:`find` as ``(start, end, rule id)`` tuples, for callers that build no objects per finding.

        *source*: ``(data, a, b)`` where ``data[a:b]`` is *text* encoded in UTF-8 with
        ``surrogateescape`` (a filter has it): some searches are then quicker in the bytes.
        """
        return self._scanner.find_spans(text, source=source)

    def find_spans_of_parts(self, parts: Sequence[str]) -> dict[int, list[tuple[int, int, str]]]:
        """:meth:`find_spans` of each of *parts* that holds any, ``{index: spans}``, in one
        prefilter pass over them all (:meth:`._engine.Scanner.find_spans_of_parts`)."""
        return self._scanner.find_spans_of_parts(parts)

    def allows(self, value: str) -> bool:
        """Whether *value* is on the allowlist (never redacted)."""
        return self._allow.allows(value)

    def sanitize_text(self, text: str) -> SanitizeResult:
        """Return *text* with every secret replaced, and per-rule counts."""
        return self.redact(text, self._scanner.find(text))

    def redact(self, text: str, findings: Iterable[Finding | tuple[int, int, str]]) -> SanitizeResult:
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

        Beyond the text of each string (docs/sanitizer.md, "Structural rules"): values under
        keys whose name says secret (``GITHUB_TOKEN``, ``password``) are replaced whole,
        whatever they look like -- strings, UUIDs, the items of a list, a nested dict's
        ``value`` and integers of 4+ digits (which become the placeholder string); so is the
        value of a name/value pair whose name says secret (``{"name": "DB_PASSWORD", "value":
        …}``).  A list of strings is also scanned as the command line it is (joined with
        spaces, findings mapped back into the elements).  Dict keys are scanned as text.
        Other strings that are exactly a UUID or an RFC 3339 timestamp are never altered.

        The result is a new tree where anything changed, from the root down to each change;
        dicts and lists with nothing to redact below them are the input's own (do not change
        them in one and expect the other to stay).  The result is exactly the per-string
        walk's (:meth:`._tree.TreeWalker.walk`): the walk gathers the strings and the structural decisions, and
        all strings are scanned together (:meth:`._engine.Scanner.find_spans_of_parts`), so
        that a string is only looked at again when the prefilter hits inside it.
        """
        return self._tree.sanitize(value)
