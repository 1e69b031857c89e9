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

import bisect
import gc
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, NamedTuple, TypeAlias, cast

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
#: An integer under a secret name with at least 4 digits is redacted (a PIN, a numeric password).
_SECRET_NUMBER_MIN: Final = 1000
#: The keys that hold the name, and the value, of a name/value pair: Kubernetes ``env``
#: (``name``/``value``), CloudFormation (``ParameterKey``/``ParameterValue``), SSM
#: (``Name``/``Value``), and the common spellings around them.
_PAIR_NAME_KEYS: Final = frozenset(
    {
        "name",
        "Name",
        "NAME",
        "key",
        "Key",
        "KEY",
        "ParameterKey",
        "parameterKey",
        "parameter_key",
        "OptionName",
        "variable",
        "Variable",
        "env",
        "var",
    }
)
_PAIR_VALUE_KEYS: Final = (
    "value",
    "Value",
    "VALUE",
    "ParameterValue",
    "parameterValue",
    "parameter_value",
    "SecretString",
    "val",
)
#: Inside a dict under a secret name, the keys whose value is the secret itself.
_VALUE_KEYS: Final = frozenset(
    {
        "value",
        "Value",
        "VALUE",
        "val",
        "data",
        "current",
        "plaintext",
        "SecretString",
        "secret_string",
        "default",
        "raw",
        "string",
        "stringValue",
        "string_value",
        "text",
    }
)
#: Dict keys known to hold no secret, so a walk scans each distinct key once (bounded).
#: The private members of a JSON Web Key (RFC 7518, section 6): secret whatever their names
#: say; the public ones (``n``, ``e``, ``x``, ``y``) are not.
_JWK_PRIVATE_KEYS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})
_CLEAN_KEYS_MAX: Final = 65536
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
        self._clean_keys: set[str] = set()

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
        walk's (:meth:`_walk`): the walk gathers the strings and the structural decisions, and
        all strings are scanned together (:meth:`._engine.Scanner.find_spans_of_parts`), so
        that a string is only looked at again when the prefilter hits inside it.
        """
        counts: Counter[str] = Counter()
        walk = _TreeWalk(self, counts)
        try:
            clean = walk.run(value)
        except _SharedNode:
            # A dict or list reached twice (the same object in two places, or a cycle): each
            # place may need its own result, which the per-string walk builds.
            counts.clear()
            clean = self._walk(value, counts, secret_name=False)
        return clean, dict(counts)

    def _walk(self, value: JSONValue, counts: Counter[str], *, secret_name: bool) -> JSONValue:  # noqa: PLR0911
        if isinstance(value, str):
            if not value or _RFC3339.fullmatch(value):
                return value
            if secret_name and self._redact_whole(value):
                counts[_SECRET_NAMED_RULE] += 1
                return self._whole_placeholder(value)
            if _UUID.fullmatch(value):
                return value
            result = self.sanitize_text(value)
            counts.update(result.counts)
            return result.text
        if isinstance(value, dict):
            if (
                not secret_name
                and self._clean_keys.issuperset(value)
                and (_PAIR_NAME_KEYS.isdisjoint(value) or self._secret_pair_value(value) is None)
            ):
                # The common case, as one comprehension (the walk's hot loop); the same
                # decisions as :meth:`_walk_dict`, which takes the rest.  The name is checked
                # only where its answer changes the walk of the value.
                walk = self._walk
                is_secret_name = _checks.is_secret_name
                return {
                    k: walk(
                        v,
                        counts,
                        secret_name=(
                            v.__class__ is str
                            or (v.__class__ is dict and not _VALUE_KEYS.isdisjoint(v))
                            or (v.__class__ is list and bool(v))
                            or (v.__class__ is int and abs(v) >= _SECRET_NUMBER_MIN)
                        )
                        and is_secret_name(k),
                    )
                    for k, v in value.items()
                }
            return self._walk_dict(value, counts, secret_name=secret_name)
        if isinstance(value, list):
            if secret_name:
                return [self._walk(v, counts, secret_name=True) for v in value]
            if (
                len(value) >= 2
                and value[0].__class__ is str
                and all(isinstance(v, str) and "\n" not in v for v in value)
            ):
                return cast("JSONValue", self._walk_argv(cast("list[str]", value), counts))
            return [self._walk(v, counts, secret_name=False) for v in value]
        if secret_name and type(value) is int and abs(value) >= _SECRET_NUMBER_MIN:
            # A number under a secret name is a PIN or a numeric password; small ones are
            # flags and counts (``{"secret": 1}``).  The shape changes here only: a number
            # becomes the placeholder string.
            counts[_SECRET_NAMED_RULE] += 1
            return f"[REDACTED:{_SECRET_NAMED_RULE}]"
        return value

    def _walk_dict(self, value: dict[str, JSONValue], counts: Counter[str], *, secret_name: bool) -> JSONValue:
        # A name/value pair (Kubernetes env, CloudFormation parameters, SSM parameters):
        # the value is secret when the name is a secret's.
        pair_value: str | None = None
        if not _PAIR_NAME_KEYS.isdisjoint(value):
            pair_value = self._secret_pair_value(value)
        is_secret_name = _checks.is_secret_name
        jwk = "kty" in value
        if not self._clean_keys.issuperset(value):
            self._scan_keys(value)
        out: dict[str, JSONValue] = {}
        for k, v in value.items():
            # Ask whether the name is a secret's only where the answer changes the walk: a
            # name check costs more than the walk of a small value, and a dict of thousands
            # of distinct keys (files, ids) holding dicts would pay it for each.
            cls = v.__class__
            if cls is str:
                matters = True
            elif cls is dict:
                matters = not _VALUE_KEYS.isdisjoint(cast("dict[str, JSONValue]", v))
            elif cls is list:
                matters = bool(v)
            elif cls is int:
                matters = abs(cast("int", v)) >= _SECRET_NUMBER_MIN
            else:  # None, bool, float; subclasses of str/dict/list/int are rare, walked as plain
                matters = isinstance(v, (str, dict, list)) or (isinstance(v, int) and not isinstance(v, bool))
            out_key = k if k in self._clean_keys else self._sanitize_key(k, value, out, counts)
            # A key that holds a placeholder is named without it, in this pass and the next
            # (such keys are never cached as clean), so a second walk changes nothing.
            name = PLACEHOLDER.sub("", out_key) if "[REDACTED:" in out_key else k
            if not matters:
                secret = False
            elif secret_name:
                # Under a secret name, only the dict's value fields are the secret
                # (``{"password": {"value": …}}``); its ``type``, ``description``… are not.
                secret = k in _VALUE_KEYS or k == pair_value or is_secret_name(name)
            else:
                secret = k == pair_value or is_secret_name(name) or (jwk and k in _JWK_PRIVATE_KEYS)
            out[out_key] = self._walk(v, counts, secret_name=secret)
        return out

    def _secret_pair_value(self, value: dict[str, JSONValue]) -> str | None:
        """The key holding the value of a name/value pair whose name says secret, if any."""
        for name_key in _PAIR_NAME_KEYS.intersection(value):
            name = value[name_key]
            if isinstance(name, str) and name and _secret_pair_name(name):
                for value_key in _PAIR_VALUE_KEYS:
                    if value_key in value:
                        return value_key
        return None

    def _scan_keys(self, value: dict[str, JSONValue]) -> None:
        """Scan a dict's unseen keys in one pass, one per line: a scanner call costs about as
        much as 10 kB of text, and a dict of files or ids can hold thousands of distinct keys.
        When the joined keys hold no finding, each is clean; otherwise each is scanned alone
        (:meth:`_sanitize_key`)."""
        clean = self._clean_keys
        new = [k for k in value if isinstance(k, str) and k not in clean]
        if len(new) < 2 or self._scanner.find_spans("\n".join(new)):
            return
        if len(clean) + len(new) > _CLEAN_KEYS_MAX:
            clean.clear()
        clean.update(k for k in new if "[REDACTED:" not in k)

    def _sanitize_key(
        self, key: str, original: dict[str, JSONValue], out: dict[str, JSONValue], counts: Counter[str]
    ) -> str:
        """A dict key scanned as text.  A redacted key that collides with another key of the
        same dict gets `` #2``, `` #3``… appended, so that no entry is lost."""
        result = self.sanitize_text(key) if isinstance(key, str) else SanitizeResult(key, {})
        if not result.counts:
            if len(self._clean_keys) >= _CLEAN_KEYS_MAX:
                self._clean_keys.clear()
            if "[REDACTED:" not in key:
                self._clean_keys.add(key)
            return key
        counts.update(result.counts)
        new, n = result.text, 1
        while new in out or (new != key and new in original):
            n += 1
            new = f"{result.text} #{n}"
        return new

    def _walk_argv(self, value: list[str], counts: Counter[str]) -> list[str]:
        """A list of strings, scanned as the command line it is (``["mysql", "-p<pw>"]``) and
        then item by item.  A finding of the joined line is redacted inside each item it
        covers (the same placeholder in each, counted once); the list keeps its length."""
        line = " ".join(value)
        items = list(value)
        spans = self._scanner.find_spans(line)
        if spans:
            starts: list[int] = []
            pos = 0
            for v in value:
                starts.append(pos)
                pos += len(v) + 1
            edits: list[list[tuple[int, int, str]]] = [[] for _ in value]
            for s, e, rule_id in spans:
                ph = self.placeholder(rule_id, line[s:e])
                counts[rule_id] += 1
                i = bisect.bisect_right(starts, s) - 1
                while i < len(value) and starts[i] < e:
                    a, b = max(s, starts[i]) - starts[i], min(e, starts[i] + len(value[i])) - starts[i]
                    if a < b:
                        edits[i].append((a, b, ph))
                    i += 1
            for i, ed in enumerate(edits):
                if ed:
                    v, parts, p = value[i], [], 0
                    for a, b, ph in ed:
                        parts.append(v[p:a])
                        parts.append(ph)
                        p = b
                    parts.append(v[p:])
                    items[i] = "".join(parts)
        # Then each item alone, as any string of the tree (a UUID item stays as it is).
        return [cast("str", self._walk(v, counts, secret_name=False)) for v in items]

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
        if v[0] in "/~" and _checks.looks_like_path(v):
            # A path names where a secret is kept (``/run/secrets/db``) or, under a lowercase
            # ``pwd``, the working directory: its text is still scanned.
            return False
        # A whole value under a secret name is secret, but a long text is prose about it:
        # sanitize that as text instead.
        return len(v) <= 4096 and "\n" not in v.strip()


@lru_cache(maxsize=8192)
def _secret_pair_name(name: str) -> bool:
    """Whether the name of a name/value pair says secret: itself, or the last part of an SSM
    path (``/prod/db/password``) or of a ``:``-list."""
    last = re.split(r"[/:]", name.rstrip("/:"))[-1]
    return _checks.is_secret_name(name) or bool(last and _checks.is_secret_name(last))


class _SharedNode(Exception):
    """A dict or list occurs twice in a tree (:meth:`Sanitizer.sanitize_tree` then walks it per string)."""


#: The key of an argv list's slot: the slot's text is the list's command line.
_ARGV: Final = object()


class _TreeWalk:
    """One :meth:`Sanitizer.sanitize_tree`: gather, scan together, copy what changed.

    The gathering pass makes every decision of :meth:`Sanitizer._walk` that does not depend on
    a string's text (secret names, name/value pairs, argv lists, dict keys) and collects the
    strings to scan as text, each with its place (container, key).  One
    :meth:`._engine.Scanner.find_spans_of_parts` call then finds the secrets of all of them,
    and only the containers on the way from the root to a change are copied.
    """

    def __init__(self, san: Sanitizer, counts: Counter[str]) -> None:
        self.san = san
        self.counts = counts
        self.texts: list[str] = []
        #: The place of each text: its container and its key there (two lists: no tuple per string).
        self.nodes: list[Any] = []
        self.keys: list[Any] = []
        #: Each dict and list, with its container and its key there (three lists: no tuple each).
        self.inner: list[Any] = []
        self.outer: list[Any] = []
        self.where: list[Any] = []
        #: Dict keys that need no look: clean (:attr:`Sanitizer._clean_keys`) and no pair name.
        self.plain_keys = san._clean_keys - _PAIR_NAME_KEYS
        self.edits: list[tuple[Any, Any, JSONValue]] = []
        self.renames: list[tuple[dict[str, JSONValue], list[str]]] = []
        self.visit_dict, self.visit_list = self._hot_visitors()

    def run(self, value: JSONValue) -> JSONValue:
        # The walk allocates tens of thousands of small objects and creates no cycle: without a
        # pause, the collector would traverse the whole (young) session tree again and again
        # (about 40 % of the walk on a 10 MiB session).
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run(value)
        finally:
            if paused:
                gc.enable()

    def _run(self, value: JSONValue) -> JSONValue:
        holder: list[JSONValue] = [value]
        self.visit(value, holder, 0, secret=False)
        if len(set(map(id, self.inner))) != len(self.inner):
            raise _SharedNode
        self.scan()
        if not self.edits and not self.renames:
            # Nothing changed: the root is still a new container, as the caller may change it.
            return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value
        copies: dict[int, Any] = {}
        parents = dict(zip(map(id, self.inner), zip(self.outer, self.where, strict=True), strict=True))

        def copy_of(node: Any) -> Any:
            cp = copies.get(id(node))
            if cp is None:
                cp = copies[id(node)] = dict(node) if isinstance(node, dict) else list(node)
                parent = parents.get(id(node))
                if parent is not None:
                    copy_of(parent[0])[parent[1]] = cp
            return cp

        if isinstance(value, (dict, list)):
            copy_of(value)  # the root is always a new container, as the caller may change it
        for node, key, new in self.edits:
            copy_of(node)[key] = new
        for node, _ in self.renames:
            copy_of(node)  # every copy made before a key changes, so parents are set by their old keys
        for node, out_keys in self.renames:
            cp = copy_of(node)
            items = list(zip(out_keys, cp.values(), strict=True))
            cp.clear()
            cp.update(items)
        return cast("JSONValue", copy_of(holder)[0])

    # -- gathering (the decisions of Sanitizer._walk, in its order) ---------------------------

    def enter(self, node: Any, container: Any, key: Any) -> None:
        self.inner.append(node)
        self.outer.append(container)
        self.where.append(key)

    def visit(self, value: Any, container: Any, key: Any, *, secret: bool) -> None:
        if isinstance(value, str):
            self.visit_str(value, container, key, secret=secret)
        elif isinstance(value, dict):
            self.enter(value, container, key)
            self.visit_dict(value, secret)
        elif isinstance(value, list):
            self.enter(value, container, key)
            self.visit_list(value, secret)
        elif secret and type(value) is int and abs(value) >= _SECRET_NUMBER_MIN:
            self.counts[_SECRET_NAMED_RULE] += 1
            self.edits.append((container, key, f"[REDACTED:{_SECRET_NAMED_RULE}]"))

    def visit_str(self, value: str, container: Any, key: Any, *, secret: bool) -> None:
        if not value:
            return
        if secret:
            if _RFC3339.fullmatch(value):
                return
            san = self.san
            if san._redact_whole(value):
                self.counts[_SECRET_NAMED_RULE] += 1
                self.edits.append((container, key, san._whole_placeholder(value)))
                return
        self.texts.append(value)
        self.nodes.append(container)
        self.keys.append(key)

    def visit_dict_slow(self, value: Any, *, secret: bool) -> None:
        """:meth:`Sanitizer._walk_dict`'s decisions: name/value pairs, keys scanned as text."""
        san, counts = self.san, self.counts
        pair_value: str | None = None
        if not _PAIR_NAME_KEYS.isdisjoint(value):
            pair_value = san._secret_pair_value(value)
        is_secret_name = _checks.is_secret_name
        jwk = "kty" in value
        clean = san._clean_keys
        if not clean.issuperset(value):
            san._scan_keys(value)
        out: dict[str, JSONValue] = {}  # the output keys so far (Sanitizer._sanitize_key keeps them unique)
        renamed = False
        for k, v in value.items():
            cls = v.__class__
            if cls is str:
                matters = True
            elif cls is dict:
                matters = not _VALUE_KEYS.isdisjoint(v)
            elif cls is list:
                matters = bool(v)
            elif cls is int:
                matters = abs(v) >= _SECRET_NUMBER_MIN
            else:
                matters = isinstance(v, (str, dict, list)) or (isinstance(v, int) and not isinstance(v, bool))
            out_key = k if k in clean else san._sanitize_key(k, value, out, counts)
            name = PLACEHOLDER.sub("", out_key) if "[REDACTED:" in out_key else k
            if not matters:
                secret_v = False
            elif secret:
                secret_v = k in _VALUE_KEYS or k == pair_value or is_secret_name(name)
            else:
                secret_v = k == pair_value or is_secret_name(name) or (jwk and k in _JWK_PRIVATE_KEYS)
            self.visit(v, value, k, secret=secret_v)
            out[out_key] = None
            renamed = renamed or out_key is not k
        if renamed:
            self.renames.append((value, list(out)))

    def _hot_visitors(self) -> tuple[Callable[[Any, bool], None], Callable[[Any, bool], None]]:  # noqa: PLR0915
        """The walk of dicts and lists, as closures over the walk's lists (the hot loop: no
        attribute look-ups per container).  The decisions are :meth:`Sanitizer._walk`'s."""
        san, counts, edits = self.san, self.counts, self.edits
        texts, nodes, keys = self.texts, self.nodes, self.keys
        inner, outer, where = self.inner, self.outer, self.where
        plain_keys, clean_keys = self.plain_keys, san._clean_keys
        is_secret_name = _checks.is_secret_name
        visit, visit_str, visit_dict_slow = self.visit, self.visit_str, self.visit_dict_slow
        placeholder = f"[REDACTED:{_SECRET_NAMED_RULE}]"

        def visit_dict(value: Any, secret: bool) -> None:
            if (
                secret
                or "kty" in value
                or not (
                    plain_keys.issuperset(value)
                    or (
                        clean_keys.issuperset(value)
                        and (_PAIR_NAME_KEYS.isdisjoint(value) or san._secret_pair_value(value) is None)
                    )
                )
            ):
                visit_dict_slow(value, secret=secret)
                return
            # The common case (Sanitizer._walk's comprehension): the name is checked only where
            # its answer changes the walk of the value.
            for k, v in value.items():
                cls = v.__class__
                if cls is str:
                    if not v:
                        continue
                    if is_secret_name(k):
                        visit_str(v, value, k, secret=True)
                    else:
                        texts.append(v)
                        nodes.append(value)
                        keys.append(k)
                elif cls is dict:
                    inner.append(v)
                    outer.append(value)
                    where.append(k)
                    visit_dict(v, not _VALUE_KEYS.isdisjoint(v) and is_secret_name(k))
                elif cls is list:
                    inner.append(v)
                    outer.append(value)
                    where.append(k)
                    visit_list(v, bool(v) and is_secret_name(k))
                elif cls is int:
                    if abs(v) >= _SECRET_NUMBER_MIN and is_secret_name(k):
                        counts[_SECRET_NAMED_RULE] += 1
                        edits.append((value, k, placeholder))
                elif v is not None and cls is not float and cls is not bool:
                    visit(v, value, k, secret=False)

        def visit_list(value: Any, secret: bool) -> None:
            if secret:
                for i, v in enumerate(value):
                    visit(v, value, i, secret=True)
                return
            if (
                len(value) >= 2
                and value[0].__class__ is str
                and all(isinstance(v, str) and "\n" not in v for v in value)
            ):
                # An argv list: its command line, then each item (every one, empty or not, so
                # that item i's slot is the line's + 1 + i).
                texts.append(" ".join(value))
                texts.extend(value)
                nodes.extend([value] * (len(value) + 1))
                keys.append(_ARGV)
                keys.extend(range(len(value)))
                return
            for i, v in enumerate(value):
                cls = v.__class__
                if cls is str:
                    if v:
                        texts.append(v)
                        nodes.append(value)
                        keys.append(i)
                elif cls is dict:
                    inner.append(v)
                    outer.append(value)
                    where.append(i)
                    visit_dict(v, False)
                elif cls is list:
                    inner.append(v)
                    outer.append(value)
                    where.append(i)
                    visit_list(v, False)
                elif v is not None and cls is not int and cls is not float and cls is not bool:
                    visit(v, value, i, secret=False)

        return visit_dict, visit_list

    # -- scanning ------------------------------------------------------------------------

    def scan(self) -> None:
        """Find the secrets of every gathered string at once and note the changes."""
        san, counts, texts = self.san, self.counts, self.texts
        found = san._scanner.find_spans_of_parts(texts)
        done: set[int] = set()
        for j in sorted(found):
            if j in done:
                continue
            node, key = self.nodes[j], self.keys[j]
            if key is _ARGV:
                self.argv(j, found[j], done)
                continue
            text = texts[j]
            if _RFC3339.fullmatch(text) or _UUID.fullmatch(text):
                continue
            result = san.redact(text, found[j])
            counts.update(result.counts)
            self.edits.append((node, key, result.text))

    def argv(self, j: int, spans: list[tuple[int, int, str]], done: set[int]) -> None:
        """:meth:`Sanitizer._walk_argv` for the list whose command line is slot *j*: a finding
        of the line is redacted in each item it covers, and such an item is then sanitized
        alone as it now reads (its own slot, ``j + 1 + i``, is then done)."""
        san, counts = self.san, self.counts
        value = self.nodes[j]
        line = self.texts[j]
        starts: list[int] = []
        pos = 0
        for v in value:
            starts.append(pos)
            pos += len(v) + 1
        edits: list[list[tuple[int, int, str]]] = [[] for _ in value]
        for s, e, rule_id in spans:
            ph = san.placeholder(rule_id, line[s:e])
            counts[rule_id] += 1
            i = bisect.bisect_right(starts, s) - 1
            while i < len(value) and starts[i] < e:
                a, b = max(s, starts[i]) - starts[i], min(e, starts[i] + len(value[i])) - starts[i]
                if a < b:
                    edits[i].append((a, b, ph))
                i += 1
        for i, ed in enumerate(edits):
            if not ed:
                continue
            v, parts, p = value[i], [], 0
            for a, b, ph in ed:
                parts.append(v[p:a])
                parts.append(ph)
                p = b
            parts.append(v[p:])
            item = "".join(parts)
            done.add(j + 1 + i)
            if not (_RFC3339.fullmatch(item) or _UUID.fullmatch(item)):
                result = san.sanitize_text(item)
                counts.update(result.counts)
                item = result.text
            self.edits.append((value, i, item))
