"""The tree walk: the structural rules of the sanitizer (docs/sanitizer.md, "Structural rules").

A session is a document, not a text: which values are secret also depends on where they
are (under a secret name, in a name/value pair, in an argv list, in a JSON Web Key), and
dict keys are text too.  :class:`TreeWalker` makes those decisions and hands every string
to the sanitizer's text scan, all of a tree's strings in one prefilter pass.
"""

from __future__ import annotations

import bisect
import gc
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Final, Protocol, TypeAlias, cast

from . import _checks
from ._engine import PLACEHOLDER

__all__ = ["SECRET_NAMED_RULE", "JSONValue", "Redactor", "TreeWalker"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

#: Strings that are exactly one of these are never altered in a tree.
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)")
SECRET_NAMED_RULE: Final = "secret-named-value"  # noqa: S105 - a rule id
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


class Redactor(Protocol):
    """What the tree walk needs of a :class:`~sessionseal._sanitize.Sanitizer`."""

    def find_spans(self, text: str) -> list[tuple[int, int, str]]: ...

    def find_spans_of_parts(self, parts: Sequence[str]) -> dict[int, list[tuple[int, int, str]]]: ...

    def sanitize_text(self, text: str) -> _Result: ...

    def redact(self, text: str, findings: Iterable[tuple[int, int, str]]) -> _Result: ...

    def placeholder(self, rule_id: str, secret: str) -> str: ...

    def allows(self, value: str) -> bool: ...


class _Result(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def counts(self) -> dict[str, int]: ...


class TreeWalker:
    """The structural rules of a sanitizer (docs/sanitizer.md, "Structural rules"): which
    values of a tree are secret by where they are, and every string scanned as text.

    :meth:`sanitize` is the walk the vault uses; :meth:`walk` is the plain per-string walk,
    its reference (a property test holds them equal).
    """

    def __init__(self, san: Redactor) -> None:
        self.san = san
        self.clean_keys: set[str] = set()

    def sanitize(self, value: JSONValue) -> tuple[JSONValue, dict[str, int]]:
        """:meth:`Sanitizer.sanitize_tree`."""
        counts: Counter[str] = Counter()
        walk = _TreeWalk(self, counts)
        try:
            clean = walk.run(value)
        except _SharedNode:
            # A dict or list reached twice (the same object in two places, or a cycle): each
            # place may need its own result, which the per-string walk builds.
            counts.clear()
            clean = self.walk(value, counts, secret_name=False)
        return clean, dict(counts)

    def walk(self, value: JSONValue, counts: Counter[str], *, secret_name: bool) -> JSONValue:  # noqa: PLR0911
        if isinstance(value, str):
            if not value or _RFC3339.fullmatch(value):
                return value
            if secret_name and self.redact_whole(value):
                counts[SECRET_NAMED_RULE] += 1
                return self.whole_placeholder(value)
            if _UUID.fullmatch(value):
                return value
            result = self.san.sanitize_text(value)
            counts.update(result.counts)
            return result.text
        if isinstance(value, dict):
            if (
                not secret_name
                and "kty" not in value
                and self.clean_keys.issuperset(value)
                and (_PAIR_NAME_KEYS.isdisjoint(value) or self.secret_pair_value(value) is None)
            ):
                # The common case, as one comprehension (the walk's hot loop); the same
                # decisions as :meth:`walk_dict`, which takes the rest.  The name is checked
                # only where its answer changes the walk of the value.
                walk = self.walk
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
            return self.walk_dict(value, counts, secret_name=secret_name)
        if isinstance(value, list):
            if secret_name:
                return [self.walk(v, counts, secret_name=True) for v in value]
            if (
                len(value) >= 2
                and value[0].__class__ is str
                and all(isinstance(v, str) and "\n" not in v for v in value)
            ):
                return cast("JSONValue", self.walk_argv(cast("list[str]", value), counts))
            return [self.walk(v, counts, secret_name=False) for v in value]
        if secret_name and type(value) is int and abs(value) >= _SECRET_NUMBER_MIN:
            # A number under a secret name is a PIN or a numeric password; small ones are
            # flags and counts (``{"secret": 1}``).  The shape changes here only: a number
            # becomes the placeholder string.
            counts[SECRET_NAMED_RULE] += 1
            return f"[REDACTED:{SECRET_NAMED_RULE}]"
        return value

    def walk_dict(self, value: dict[str, JSONValue], counts: Counter[str], *, secret_name: bool) -> JSONValue:
        # A name/value pair (Kubernetes env, CloudFormation parameters, SSM parameters):
        # the value is secret when the name is a secret's.
        pair_value: str | None = None
        if not _PAIR_NAME_KEYS.isdisjoint(value):
            pair_value = self.secret_pair_value(value)
        is_secret_name = _checks.is_secret_name
        jwk = "kty" in value
        if not self.clean_keys.issuperset(value):
            self.scan_keys(value)
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
            out_key = k if k in self.clean_keys else self.sanitize_key(k, value, out, counts)
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
            out[out_key] = self.walk(v, counts, secret_name=secret)
        return out

    def secret_pair_value(self, value: dict[str, JSONValue]) -> str | None:
        """The key holding the value of a name/value pair whose name says secret, if any."""
        for name_key in _PAIR_NAME_KEYS.intersection(value):
            name = value[name_key]
            if isinstance(name, str) and name and _secret_pair_name(name):
                for value_key in _PAIR_VALUE_KEYS:
                    if value_key in value:
                        return value_key
        return None

    def scan_keys(self, value: dict[str, JSONValue]) -> None:
        """Scan a dict's unseen keys in one pass, one per line: a scanner call costs about as
        much as 10 kB of text, and a dict of files or ids can hold thousands of distinct keys.
        When the joined keys hold no finding, each is clean; otherwise each is scanned alone
        (:meth:`sanitize_key`)."""
        clean = self.clean_keys
        new = [k for k in value if isinstance(k, str) and k not in clean]
        if len(new) < 2 or self.san.find_spans("\n".join(new)):
            return
        if len(clean) + len(new) > _CLEAN_KEYS_MAX:
            clean.clear()
        clean.update(k for k in new if "[REDACTED:" not in k)

    def sanitize_key(
        self, key: str, original: dict[str, JSONValue], out: dict[str, JSONValue], counts: Counter[str]
    ) -> str:
        """A dict key scanned as text.  A redacted key that collides with another key of the
        same dict gets `` #2``, `` #3``… appended, so that no entry is lost."""
        if not isinstance(key, str):
            return key
        result = self.san.sanitize_text(key)
        if not result.counts:
            if len(self.clean_keys) >= _CLEAN_KEYS_MAX:
                self.clean_keys.clear()
            if "[REDACTED:" not in key:
                self.clean_keys.add(key)
            return key
        counts.update(result.counts)
        new, n = result.text, 1
        while new in out or (new != key and new in original):
            n += 1
            new = f"{result.text} #{n}"
        return new

    def walk_argv(self, value: list[str], counts: Counter[str]) -> list[str]:
        """A list of strings, scanned as the command line it is (``["mysql", "-p<pw>"]``) and
        then item by item.  A finding of the joined line is redacted inside each item it
        covers (the same placeholder in each, counted once); the list keeps its length."""
        line = " ".join(value)
        items = list(value)
        spans = self.san.find_spans(line)
        if spans:
            starts: list[int] = []
            pos = 0
            for v in value:
                starts.append(pos)
                pos += len(v) + 1
            edits: list[list[tuple[int, int, str]]] = [[] for _ in value]
            for s, e, rule_id in spans:
                ph = self.san.placeholder(rule_id, line[s:e])
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
        return [cast("str", self.walk(v, counts, secret_name=False)) for v in items]

    def whole_placeholder(self, value: str) -> str:
        """The placeholder of a value under a secret name.  Whatever its length, it may be a
        password, so it has no fingerprint unless it is exactly one token that a fingerprinted
        rule finds on its own (then with that token's fingerprint, as in text)."""
        spans = self.san.find_spans(value)
        if len(spans) == 1 and spans[0][:2] == (0, len(value)):
            # The token's own placeholder says whether it has a fingerprint (its rule's flag and
            # the value's entropy, Sanitizer.placeholder): the same one, under this rule's name.
            own = self.san.placeholder(spans[0][2], value)
            if own.count(":") == 2:
                return f"[REDACTED:{SECRET_NAMED_RULE}:{own[-9:-1]}]"
        return f"[REDACTED:{SECRET_NAMED_RULE}]"

    def redact_whole(self, value: str) -> bool:
        v = value.strip()
        if not v or PLACEHOLDER.fullmatch(v) or self.san.allows(v) or _checks.is_placeholder(v):
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

    The gathering pass makes every decision of :meth:`TreeWalker.walk` that does not depend on
    a string's text (secret names, name/value pairs, argv lists, dict keys) and collects the
    strings to scan as text, each with its place (container, key).  One
    :meth:`._engine.Scanner.find_spans_of_parts` call then finds the secrets of all of them,
    and only the containers on the way from the root to a change are copied.
    """

    def __init__(self, tree: TreeWalker, counts: Counter[str]) -> None:
        self.tree = tree
        self.san = tree.san
        self.counts = counts
        self.texts: list[str] = []
        #: The place of each text: its container and its key there (two lists: no tuple per string).
        self.nodes: list[Any] = []
        self.keys: list[Any] = []
        #: Each dict and list, with its container and its key there (three lists: no tuple each).
        self.inner: list[Any] = []
        self.outer: list[Any] = []
        self.where: list[Any] = []
        #: Dict keys that need no look: clean (:attr:`TreeWalker.clean_keys`) and no pair name.
        self.plain_keys = tree.clean_keys - _PAIR_NAME_KEYS
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

    # -- gathering (the decisions of TreeWalker.walk, in its order) ---------------------------

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
            self.counts[SECRET_NAMED_RULE] += 1
            self.edits.append((container, key, f"[REDACTED:{SECRET_NAMED_RULE}]"))

    def visit_str(self, value: str, container: Any, key: Any, *, secret: bool) -> None:
        if not value:
            return
        if secret:
            if _RFC3339.fullmatch(value):
                return
            tree = self.tree
            if tree.redact_whole(value):
                self.counts[SECRET_NAMED_RULE] += 1
                self.edits.append((container, key, tree.whole_placeholder(value)))
                return
        self.texts.append(value)
        self.nodes.append(container)
        self.keys.append(key)

    def visit_dict_slow(self, value: Any, *, secret: bool) -> None:
        """:meth:`TreeWalker.walk_dict`'s decisions: name/value pairs, keys scanned as text."""
        tree, counts = self.tree, self.counts
        pair_value: str | None = None
        if not _PAIR_NAME_KEYS.isdisjoint(value):
            pair_value = tree.secret_pair_value(value)
        is_secret_name = _checks.is_secret_name
        jwk = "kty" in value
        clean = tree.clean_keys
        if not clean.issuperset(value):
            tree.scan_keys(value)
        out: dict[str, JSONValue] = {}  # the output keys so far (TreeWalker.sanitize_key keeps them unique)
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
            out_key = k if k in clean else tree.sanitize_key(k, value, out, counts)
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

    def visit_list_rare(self, value: list[Any], secret: bool) -> None:
        """A list under a secret name (every item is secret), or an argv list: its command
        line, then each item (every one, empty or not, so that item i's slot is the line's
        + 1 + i)."""
        if secret:
            for i, v in enumerate(value):
                self.visit(v, value, i, secret=True)
            return
        self.texts.append(" ".join(value))
        self.texts.extend(value)
        self.nodes.extend([value] * (len(value) + 1))
        self.keys.append(_ARGV)
        self.keys.extend(range(len(value)))

    def _hot_visitors(self) -> tuple[Callable[[Any, bool], None], Callable[[Any, bool], None]]:  # noqa: PLR0915
        """The walk of dicts and lists, as closures over the walk's lists (the hot loop: no
        attribute look-ups per container).  The decisions are :meth:`TreeWalker.walk`'s (its
        comprehension for the common dict: a name is checked only where the answer matters)."""
        tree, counts, edits = self.tree, self.counts, self.edits
        texts, nodes, keys = self.texts, self.nodes, self.keys
        inner, outer, where = self.inner, self.outer, self.where
        plain_keys, clean_keys = self.plain_keys, tree.clean_keys
        is_secret_name = _checks.is_secret_name
        visit, visit_str, visit_dict_slow = self.visit, self.visit_str, self.visit_dict_slow
        visit_list_rare, enter = self.visit_list_rare, self.enter
        placeholder = f"[REDACTED:{SECRET_NAMED_RULE}]"

        def visit_dict(value: Any, secret: bool) -> None:
            if (
                secret
                or "kty" in value
                or not (
                    plain_keys.issuperset(value)
                    or (
                        clean_keys.issuperset(value)
                        and (_PAIR_NAME_KEYS.isdisjoint(value) or tree.secret_pair_value(value) is None)
                    )
                )
            ):
                visit_dict_slow(value, secret=secret)
                return
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
                        counts[SECRET_NAMED_RULE] += 1
                        edits.append((value, k, placeholder))
                elif v is not None and cls is not float and cls is not bool:
                    visit(v, value, k, secret=False)

        def visit_list(value: Any, secret: bool) -> None:
            if secret or (
                len(value) >= 2
                and value[0].__class__ is str
                and all(isinstance(v, str) and "\n" not in v for v in value)
            ):
                visit_list_rare(value, secret)
                return
            for i, v in enumerate(value):
                cls = v.__class__
                if cls is str:
                    if v:
                        texts.append(v)
                        nodes.append(value)
                        keys.append(i)
                elif cls is dict:
                    enter(v, value, i)
                    visit_dict(v, False)
                elif cls is list:
                    enter(v, value, i)
                    visit_list(v, False)
                elif v is not None and cls is not int and cls is not float and cls is not bool:
                    visit(v, value, i, secret=False)

        return visit_dict, visit_list

    # -- scanning ------------------------------------------------------------------------

    def scan(self) -> None:
        """Find the secrets of every gathered string at once and note the changes."""
        san, counts, texts = self.san, self.counts, self.texts
        found = san.find_spans_of_parts(texts)
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
        """:meth:`TreeWalker.walk_argv` for the list whose command line is slot *j*: a finding
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
