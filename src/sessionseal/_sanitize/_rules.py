"""The rule catalogue: loading ``rules/*.toml`` and user rules into :class:`Rule` objects.

A rule is data: an id, a description, a Python regular expression, literal keywords for
the prefilter (lowercase; a rule is only tried where one of its keywords occurs), an
optional Shannon-entropy floor, the group that holds the secret, a named value check
from :mod:`._checks`, whether its placeholders may carry a fingerprint, and positive and
negative examples that the tests run.  Rules without keywords are "full scan" rules: the
native engine compiles their regex directly, the pure-Python engine searches the whole
text with it.  "blob" rules are matched at the start of the base64 run that contains the
keyword (for base64 fragments of secret words).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple

from . import _cache, _recode

__all__ = ["CHECKS", "Allowlist", "Rule", "RuleError", "default_catalogue", "load_catalogue", "rule_from_mapping"]

Mode = Literal["anchor", "window", "blob", "full"]

#: Named checks a rule may use (implemented in the engine module).
CHECKS: Final = frozenset(
    {
        "assignment",  # name group must be a secret name, value a literal secret
        "key-assignment",  # <X>_KEY names, with an entropy floor
        "password",  # a password written in prose or a CLI flag
        "url-password",  # the password part of a URL (not a placeholder)
        "user-password-b64",  # base64 of user:password
        "base64-secret",  # base64 blob that decodes to text containing a secret
        "base64-private-key",  # base64 blob that decodes to a PEM private key
        "cookie",  # every value of a Cookie header
        "random-value",  # a long literal with letters and digits, not a reference
        "bearer",  # high-entropy token after Bearer
        "flag",  # --secret-named-flag VALUE on a command line
        "query",  # ?secret_named_param=VALUE in a URL
        "encoded-query",  # %3Fsecret_named_param%3DVALUE in a percent-encoded URL
        "define",  # define('SECRET_NAME', '...'): assignment, or key-assignment for *_KEY names
    }
)


class RuleError(ValueError):
    """A rule in the catalogue or in the user's configuration is malformed."""


#: Compiled rule regexes, by source: a rule's regex is compiled when first used (see Rule.pattern).
_COMPILED: dict[str, re.Pattern[str]] = {}


class Rule(NamedTuple):
    """One secret type.

    ``pattern`` is the compiled ``regex``, compiled on first use: a ``sanitize`` run whose
    text never gives a rule a candidate does not pay for compiling it.  (A named tuple, not
    a dataclass: the ``dataclasses`` module alone costs a filter's start-up milliseconds.)
    """

    id: str
    description: str
    regex: str
    keywords: tuple[str, ...] = ()
    secret_groups: tuple[int | str, ...] = (0,)
    entropy: float | None = None
    priority: int = 10
    check: str | None = None
    mode: Mode = "anchor"
    before: int = 64
    after: int = 512
    min_length: int = 1
    hs_regex: str | None = None
    hs_prefilter: str | None = None
    hs_som: bool = True
    allow_uuid: bool = False
    fingerprint: bool = False
    examples: tuple[str, ...] = ()
    counterexamples: tuple[str, ...] = ()
    builtin: bool = True

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled ``regex``."""
        compiled = _COMPILED.get(self.regex)
        if compiled is None:
            compiled = _COMPILED[self.regex] = _recode.compiled(self.regex)
        return compiled


class Allowlist:
    """Values that are never redacted: documented examples and obvious placeholders."""

    __slots__ = ("_combined", "exact", "patterns")

    def __init__(self, exact: frozenset[str] = frozenset(), patterns: tuple[re.Pattern[str], ...] = ()) -> None:
        self.exact = exact
        self.patterns = patterns
        self._combined = re.compile("|".join(f"(?:{p.pattern})" for p in patterns)) if patterns else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Allowlist):
            return NotImplemented
        return (self.exact, self.patterns) == (other.exact, other.patterns)

    def __hash__(self) -> int:
        return hash((self.exact, self.patterns))

    def __repr__(self) -> str:
        return f"Allowlist(exact={self.exact!r}, patterns={self.patterns!r})"

    def allows(self, value: str) -> bool:
        """True when *value* is allowlisted."""
        return value in self.exact or (self._combined is not None and self._combined.fullmatch(value) is not None)

    def extend(self, entries: Iterable[str]) -> Allowlist:
        """Return a copy with more entries; ``re:...`` entries are regular expressions."""
        exact = set(self.exact)
        patterns = list(self.patterns)
        for index, entry in enumerate(entries):
            if entry.startswith("re:"):
                try:
                    patterns.append(re.compile(entry[3:]))
                except re.error as exc:
                    # Name the position, not the pattern: allowlist entries live in the encrypted
                    # config and may name internal hosts or customers.
                    raise RuleError(f"allowlist entry {index + 1} is not a valid regex ({exc.msg})") from None
            else:
                exact.add(entry)
        return Allowlist(frozenset(exact), tuple(patterns))


_ID: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_KNOWN_KEYS: Final = frozenset(
    {
        "id",
        "description",
        "regex",
        "keywords",
        "secret_group",
        "entropy",
        "priority",
        "check",
        "mode",
        "window",
        "min_length",
        "hs_regex",
        "hs_prefilter",
        "hs_som",
        "allow_uuid",
        "fingerprint",
        "examples",
        "counterexamples",
    }
)


def _str_tuple(raw: Any, what: str, rule_id: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise RuleError(f"rule {rule_id!r}: {what} must be a list of strings")
    return tuple(raw)


def rule_from_mapping(raw: Mapping[str, Any], *, builtin: bool = False) -> Rule:
    """Build and validate one rule from its TOML table (or a user's config mapping)."""
    # The checks run in this order (the first problem found is the one reported).
    rule_id = _rule_id(raw)
    regex, pattern = _regex(raw, rule_id)
    keywords = tuple(k.lower() for k in _str_tuple(raw.get("keywords"), "keywords", rule_id))
    if any(not k for k in keywords):
        raise RuleError(f"rule {rule_id!r}: empty keyword")
    groups = _secret_groups(raw, rule_id, pattern)
    check = raw.get("check")
    if check is not None and check not in CHECKS:
        raise RuleError(f"rule {rule_id!r}: unknown check {check!r}")
    mode, window = _mode_and_window(raw, rule_id, keywords)
    if mode != "anchor" and not all(k.isascii() for k in keywords):
        # Non-ASCII keywords are found outside the prefilter, for anchor rules only (_engine).
        raise RuleError(f"rule {rule_id!r}: non-ASCII keywords need mode 'anchor'")
    entropy = raw.get("entropy")
    if entropy is not None and not isinstance(entropy, int | float):
        raise RuleError(f"rule {rule_id!r}: entropy must be a number")
    priority = raw.get("priority", 10)
    min_length = raw.get("min_length", 1)
    if not isinstance(priority, int) or not isinstance(min_length, int):
        raise RuleError(f"rule {rule_id!r}: priority and min_length must be integers")
    hs_regex, hs_prefilter, hs_som = _hyperscan_fields(raw, rule_id, mode)
    allow_uuid = _flag(raw, "allow_uuid", rule_id)
    fingerprint = _flag(raw, "fingerprint", rule_id)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise RuleError(f"rule {rule_id!r}: description must be a string")
    if pattern is not None:
        _COMPILED.setdefault(regex, pattern)
    return Rule(
        id=rule_id,
        description=description,
        regex=regex,
        keywords=keywords,
        secret_groups=groups,
        entropy=float(entropy) if entropy is not None else None,
        priority=priority,
        check=check,
        mode=mode,
        before=window[0],
        after=window[1],
        min_length=min_length,
        hs_regex=hs_regex,
        hs_prefilter=hs_prefilter,
        hs_som=hs_som,
        allow_uuid=allow_uuid,
        fingerprint=fingerprint,
        examples=_str_tuple(raw.get("examples"), "examples", rule_id),
        counterexamples=_str_tuple(raw.get("counterexamples"), "counterexamples", rule_id),
        builtin=builtin,
    )


def _rule_id(raw: Mapping[str, Any]) -> str:
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RuleError(f"rule id {rule_id!r} must match {_ID.pattern}")
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise RuleError(f"rule {rule_id!r}: unknown keys {sorted(unknown)}")
    return rule_id


def _regex(raw: Mapping[str, Any], rule_id: str) -> tuple[str, re.Pattern[str]]:
    """The rule's regex and its compiled pattern."""
    regex = raw.get("regex")
    if not isinstance(regex, str) or not regex:
        raise RuleError(f"rule {rule_id!r}: regex is required")
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise RuleError(f"rule {rule_id!r}: bad regex: {exc}") from exc
    return regex, pattern


def _secret_groups(raw: Mapping[str, Any], rule_id: str, pattern: re.Pattern[str] | None) -> tuple[int | str, ...]:
    group_raw = raw.get("secret_group")
    groups: tuple[int | str, ...]
    if group_raw is None:
        if pattern is None:
            raise RuleError(f"rule {rule_id!r}: secret_group is required")
        groups = ("secret",) if "secret" in pattern.groupindex else (0,)
    elif isinstance(group_raw, int | str):
        groups = (group_raw,)
    elif isinstance(group_raw, list) and all(isinstance(g, int | str) for g in group_raw):
        groups = tuple(group_raw)
    else:
        raise RuleError(f"rule {rule_id!r}: secret_group must be an int, a name or a list of them")
    if pattern is not None:
        for g in groups:
            if (isinstance(g, str) and g not in pattern.groupindex) or (isinstance(g, int) and g > pattern.groups):
                raise RuleError(f"rule {rule_id!r}: no group {g!r} in regex")
    return groups


def _mode_and_window(raw: Mapping[str, Any], rule_id: str, keywords: tuple[str, ...]) -> tuple[Any, Any]:
    mode = raw.get("mode", "anchor" if keywords else "full")
    if mode not in ("anchor", "window", "blob", "full"):
        raise RuleError(f"rule {rule_id!r}: mode must be anchor, window, blob or full")
    if mode != "full" and not keywords:
        raise RuleError(f"rule {rule_id!r}: mode {mode!r} needs keywords")
    window = raw.get("window", [64, 512])
    if not (isinstance(window, list) and len(window) == 2 and all(isinstance(w, int) and w >= 0 for w in window)):
        raise RuleError(f"rule {rule_id!r}: window must be [before, after]")
    return mode, window


def _hyperscan_fields(raw: Mapping[str, Any], rule_id: str, mode: str) -> tuple[Any, Any, bool]:
    """``hs_regex``, ``hs_prefilter`` and ``hs_som``: how the rule is given to Hyperscan."""
    hs_regex = raw.get("hs_regex")
    hs_prefilter = raw.get("hs_prefilter")
    for name, val in (("hs_regex", hs_regex), ("hs_prefilter", hs_prefilter)):
        if val is not None and not (isinstance(val, str) and val.isascii()):
            raise RuleError(f"rule {rule_id!r}: {name} must be an ASCII string")
    if hs_prefilter is not None and mode != "anchor":
        raise RuleError(f"rule {rule_id!r}: hs_prefilter needs mode anchor")
    return hs_regex, hs_prefilter, _flag(raw, "hs_som", rule_id, default=True)


def _flag(raw: Mapping[str, Any], name: str, rule_id: str, *, default: bool = False) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise RuleError(f"rule {rule_id!r}: {name} must be true or false")
    return value


def _parse_toml(text: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"rule catalogue: {exc}") from exc


def load_catalogue(text: str, *, builtin: bool = False) -> tuple[tuple[Rule, ...], Allowlist]:
    """Parse a catalogue TOML document: ``[[rule]]`` tables and an ``[allowlist]`` table."""
    return _catalogue_from_data(_parse_toml(text), builtin=builtin)


def _catalogue_from_data(data: Mapping[str, Any], *, builtin: bool) -> tuple[tuple[Rule, ...], Allowlist]:
    rules = tuple(rule_from_mapping(r, builtin=builtin) for r in data.get("rule", []))
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RuleError(f"duplicate rule id {r.id!r}")
        seen.add(r.id)
    allow = data.get("allowlist", {})
    allowlist = Allowlist().extend(_str_tuple(allow.get("exact"), "allowlist.exact", "allowlist"))
    patterns = _str_tuple(allow.get("patterns"), "allowlist.patterns", "allowlist")
    allowlist = allowlist.extend("re:" + p for p in patterns)
    return rules, allowlist


_DEFAULT: tuple[tuple[Rule, ...], Allowlist] | None = None


_CATALOGUE_CACHE: Final = "catalogue"
#: Bumped when what the cache holds for a catalogue changes shape.
_CATALOGUE_FORMAT: Final = b"sessionseal catalogue cache 3\0"


#: The catalogue's files: ``default.toml`` (with the allowlist) first, then every other
#: ``rules/*.toml`` in name order (providers grouped by kind: a rule's home is easy to find,
#: and the file stays one ``[[rule]]`` list a reviewer can read top to bottom).
_MAIN_FILE: Final = "default.toml"


def _rule_files() -> list[tuple[str, bytes]]:
    folder = os.path.join(os.path.dirname(os.path.dirname(__file__)), "rules")
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".toml") and n != _MAIN_FILE)
        out = []
        for name in [_MAIN_FILE, *names]:
            with open(os.path.join(folder, name), "rb") as fh:
                out.append((name, fh.read()))
        return out
    except OSError:  # pragma: no cover - the package is not on a file system (a zip)
        from importlib import resources

        base = resources.files("sessionseal").joinpath("rules")
        names = sorted(e.name for e in base.iterdir() if e.name.endswith(".toml") and e.name != _MAIN_FILE)
        return [(name, base.joinpath(name).read_bytes()) for name in [_MAIN_FILE, *names]]


def _default_toml() -> bytes:
    """Every catalogue file as one TOML document (their ``[[rule]]`` lists concatenated)."""
    return b"".join(b"\n# ---- rules/" + name.encode("utf-8") + b"\n" + raw for name, raw in _rule_files())


def default_catalogue() -> tuple[tuple[Rule, ...], Allowlist]:
    """The built-in rules and allowlist (``sessionseal/rules/*.toml``), parsed once.

    The validated rules are kept in the sanitizer's cache (:mod:`._cache`) as JSON, under a
    hash of the TOML files, so a new process skips the TOML parser and the validation, and
    compiles each rule's regex only when it first needs it, from its cached code
    (:mod:`._recode`).
    """
    global _DEFAULT
    if _DEFAULT is None:
        raw = _default_toml()
        key = _CATALOGUE_FORMAT + raw
        cached = _cache.load(_CATALOGUE_CACHE, key)
        if cached is not None:
            try:
                _DEFAULT = _catalogue_from_cache(json.loads(cached))
            except (ValueError, TypeError, AttributeError, KeyError):  # not what this process would have stored
                _DEFAULT = None
            else:
                _recode.use(key, _regexes(_DEFAULT[0]))
        if _DEFAULT is None:
            data = _parse_toml(raw.decode("utf-8"))
            _DEFAULT = _catalogue_from_data(data, builtin=True)
            # Each rule as validation left it (its fields in order), and the allowlist's table.
            cache = {"rule": [list(rule) for rule in _DEFAULT[0]], "allowlist": data.get("allowlist", {})}
            _cache.store(_CATALOGUE_CACHE, key, json.dumps(cache).encode("utf-8"))
            if _cache.load(_CATALOGUE_CACHE, key) is not None:  # the cache works: worth its regex entry
                _recode.build(key, _regexes(_DEFAULT[0]))
    return _DEFAULT


#: The fields of :class:`Rule` that are tuples (JSON gives lists back).
_TUPLE_FIELDS: Final = frozenset({"keywords", "secret_groups", "examples", "counterexamples"})


def _catalogue_from_cache(data: Mapping[str, Any]) -> tuple[tuple[Rule, ...], Allowlist]:
    """The catalogue as :func:`default_catalogue` cached it: rules validated when they were
    stored (the entry is this user's, private, and checked against its SHA-256), rebuilt
    field by field without validating them again; regexes are compiled when first used."""
    tuples = [name in _TUPLE_FIELDS for name in Rule._fields]
    rules = tuple(Rule._make([tuple(v) if t else v for v, t in zip(row, tuples, strict=True)]) for row in data["rule"])
    if not all(type(r.id) is str and type(r.regex) is str and r.builtin is True for r in rules):
        raise TypeError("not a cached catalogue")
    allow = data["allowlist"]
    allowlist = Allowlist().extend(_str_tuple(allow.get("exact"), "allowlist.exact", "allowlist"))
    patterns = _str_tuple(allow.get("patterns"), "allowlist.patterns", "allowlist")
    return rules, allowlist.extend("re:" + p for p in patterns)


def _regexes(rules: Iterable[Rule]) -> list[str]:
    """The distinct regexes of *rules*, in order (the regex cache's entries, :mod:`._recode`)."""
    return list(dict.fromkeys(r.regex for r in rules))


def rule_table_markdown(rules: Iterable[Rule]) -> str:
    """The Markdown table of *rules* that ``docs/sanitizer.md`` embeds (a test keeps it current)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| # | rule id | what it finds | keywords (prefilter) | mode | check / entropy | priority | fingerprint |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(rules, 1):
        kws = ", ".join(f"`{k.encode('unicode_escape').decode('ascii')}`" for k in r.keywords[:8])
        if len(r.keywords) > 8:
            kws += f" (+{len(r.keywords) - 8})"
        checks = ", ".join(x for x in (r.check or "", f"entropy >= {r.entropy:g}" if r.entropy else "") if x)
        lines.append(
            f"| {n} | `{r.id}` | {cell(r.description)} | {cell(kws) or '(full scan)'} | {r.mode} "
            f"| {checks or '-'} | {r.priority} | {'yes' if r.fingerprint else '-'} |"
        )
    return "\n".join(lines) + "\n"
