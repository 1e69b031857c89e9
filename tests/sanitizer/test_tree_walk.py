"""The tree walk scans a document's strings together: same result as one string at a time.

:meth:`Sanitizer.sanitize_tree` gathers every string of a tree and finds their secrets with one
prefilter pass (:meth:`Scanner.find_spans_of_parts`); :meth:`TreeWalker.walk` is the reference,
the per-string walk it replaces.  Random trees made of the catalogue's own examples and
counterexamples, secret names, name/value pairs, argv lists, providers' thinking and reasoning
blocks, UUIDs and timestamps must come out
the same from both (keys in the same order, same counts), on every engine, and on each engine
also with a catalogue of keyword rules only (where the python and ahocorasick engines take the
joined pass too).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import JSONValue, Sanitizer, _engine
from sessionseal._sanitize._rules import default_catalogue
from sessionseal._sanitize._shape import no_text_anchor

from .conftest import KEY, engines, sanitizer_for

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_RULES, _ = default_catalogue()
EXAMPLES = sorted({ex for r in _RULES for ex in r.examples})
COUNTEREXAMPLES = sorted({ex for r in _RULES for ex in r.counterexamples})
PLAIN = [
    "",
    "ok",
    "the api key docs",
    "4f9c2a7e-8b1d-4c3e-9a5f-6d2e0b7c1a84",
    "2026-03-14T10:22:31Z",
    "Qm7!vR2#xL9pTz",
    "pytest -q tests/test_pass.py PASSED",
    "[REDACTED:github-pat]",
    "mysql",
    "-p",
]
KEYS = [
    "password",
    "api_key",
    "GITHUB_TOKEN",
    "token_count",
    "name",
    "value",
    "Name",
    "Value",
    "ParameterKey",
    "ParameterValue",
    "key",
    "default",
    "type",
    "content",
    "text",
    "command",
    "args",
    "password=Zx8@kP3$wN5qRt",
    "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT",
    "signature",
    "data",
    "encrypted_content",
]
STRINGS = st.one_of(st.sampled_from(EXAMPLES), st.sampled_from(COUNTEREXAMPLES), st.sampled_from(PLAIN))
# A command line cut into argv items (no newline in any: the walk reads such a list as argv).
ARGV = st.sampled_from([ex for ex in EXAMPLES + COUNTEREXAMPLES if " " in ex and "\n" not in ex]).map(
    lambda line: cast("JSONValue", line.split(" "))
)


# Model providers' blocks (a thinking signature, redacted thinking, encrypted reasoning), each
# blob key in objects of its own type and of the others', beside other keys, any value in it.
def _block(parts: tuple[dict[str, str], str, str, JSONValue]) -> JSONValue:
    extra, kind, key, value = parts
    return {**extra, "type": kind, key: value}


#: What a block's blob may be: a provider's blob, a password, a token, a placeholder, or no string.
BLOB_VALUES: list[JSONValue] = [
    "Eq4W7rGDMsuWcBBwl2mIodtKhjvKVAyfy6oRvcrEFWGnPKxGINrqztmxTlVs3uh+ow4c+YvmlrbOSPaHIfjzFeJUZRZd3wK8",
    "Qm7!vR2#xL9pTz",
    "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT",
    "4f9c2a7e-8b1d-4c3e-9a5f-6d2e0b7c1a84",
    "[REDACTED:secret-named-value]",
    "",
    4821,
    ["Qm7!vR2#xL9pTz"],
    {"value": "Qm7!vR2#xL9pTz"},
]
BLOCKS = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from([*PLAIN, "Zx8@kP3$wN5qRt"]), max_size=2),
    st.sampled_from(["thinking", "redacted_thinking", "reasoning", "text"]),
    st.sampled_from(["signature", "data", "encrypted_content"]),
    st.sampled_from(BLOB_VALUES),
).map(_block)
LEAVES = st.one_of(
    STRINGS,
    STRINGS,
    ARGV,
    BLOCKS,
    st.sampled_from([None, True, False, 0, 7, 4821, 83749201554, -12345, 2.5]),
)
TREES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    max_leaves=30,
)


@cache
def keyword_only(engine: str) -> Sanitizer:
    """The catalogue without its full-scan rules: every engine then takes the joined pass."""
    rules = [r for r in _RULES if r.mode != "full"]
    return Sanitizer(KEY, engine=engine, extra_rules=rules, builtin_rules=False)


def _sanitizers() -> list[Sanitizer]:
    return [sanitizer_for(e) for e in engines()] + [keyword_only(e) for e in engines()]


def per_string(san: Sanitizer, tree: JSONValue) -> tuple[JSONValue, dict[str, int]]:
    counts: Counter[str] = Counter()
    return san._tree.walk(tree, counts, secret_name=False), dict(counts)


def _same(a: object, b: object) -> bool:
    """Equal, with dict keys in the same order."""
    return json.dumps(a) == json.dumps(b) and a == b


@SETTINGS
@given(tree=TREES, which=st.integers(min_value=0))
def test_tree_walk_equals_the_per_string_walk(tree: JSONValue, which: int) -> None:
    sans = _sanitizers()
    san = sans[which % len(sans)]
    before = json.dumps(tree)
    clean, counts = san.sanitize_tree(tree)
    ref_clean, ref_counts = per_string(san, tree)
    assert _same(clean, ref_clean)
    assert counts == ref_counts
    assert json.dumps(tree) == before  # the input is never changed


def test_every_engine_and_catalogue_agree_on_a_session_like_tree() -> None:
    messages: list[Any] = []
    for i, ex in enumerate(EXAMPLES):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"step {i}\n{ex}\nthe end"}]})
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_call", "name": "shell", "arguments": {"command": ex.split(" ")}}],
                "usage": {"input_tokens": i, "output_tokens": 4 * i},
            }
        )
    tree: JSONValue = {"title": "t", "messages": messages, "env": {"GITHUB_TOKEN": "k8Zq2Lm9Xv4Rt7Yp1Wn6Bc3Hd5Fg0Js"}}
    for san in _sanitizers():
        clean, counts = san.sanitize_tree(tree)
        assert (clean, counts) == per_string(san, tree), san.engine
        assert sum(counts.values()) >= len(EXAMPLES)


PARTS = [*EXAMPLES, *COUNTEREXAMPLES, "", "pass", "word\n", "\nline", *PLAIN]
# Neighbours that make hits across the newline between them.
PARTS += ["api_key", "= Zx8@kP3$wN5qRt", "data:", "  K: dG9rZW4=", "token", "is abcDEF123ghiJKL456"]


@cache
def _each_alone(which: int) -> dict[int, list[tuple[int, int, str]]]:
    """Each part's spans from ``find_spans`` one by one (it has no joined pass: computed once
    for the three cuttings below, not once per cutting)."""
    scanner = _sanitizers()[which]._scanner
    return {j: spans for j, part in enumerate(PARTS) if (spans := scanner.find_spans(part))}


@pytest.mark.parametrize("chunk", [1 << 20, 64, 1])
def test_parts_are_found_as_each_alone(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """The engine's joined pass: the spans of each part, as find_spans gives them one by one,
    however the parts are cut into passes (one, a few, or one part per pass)."""
    monkeypatch.setattr(_engine, "_JOIN_CHUNK", chunk)
    for which, san in enumerate(_sanitizers()):
        found = san._scanner.find_spans_of_parts(PARTS)
        assert found == _each_alone(which), san.engine


def test_every_part_with_the_same_secret_is_found() -> None:
    """The joined pass needs every match of every pattern (not the first of each): the same
    token, keyword and shape in hundreds of strings, each found in each."""
    line = "export GITHUB_TOKEN=ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT; password: Qm7!vR2#xL9pTz"
    parts = [line if j % 3 else f"step {j}" for j in range(600)]
    for san in _sanitizers():
        found = san._scanner.find_spans_of_parts(parts)
        assert sorted(found) == [j for j in range(600) if j % 3], san.engine
        assert len({tuple(spans) for spans in found.values()}) == 1


def test_the_same_dict_in_two_places_is_sanitized_in_each() -> None:
    inner: dict[str, JSONValue] = {"note": "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"}
    secret_list: list[JSONValue] = ["Qm7!vR2#xL9pTz"]
    tree: JSONValue = {"a": inner, "b": [inner], "password": secret_list, "plain": secret_list}
    for san in _sanitizers():
        clean, counts = san.sanitize_tree(tree)
        assert (clean, counts) == per_string(san, tree)
        assert "ghp_" not in json.dumps(clean)
        assert clean["password"] == ["[REDACTED:secret-named-value]"]  # type: ignore[index,call-overload]


def test_unchanged_parts_are_shared_and_the_root_is_new() -> None:
    san = sanitizer_for(engines()[0])
    quiet: dict[str, JSONValue] = {"role": "user", "content": "hello"}
    loud: dict[str, JSONValue] = {"role": "user", "content": "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"}
    tree: dict[str, JSONValue] = {"messages": [quiet, loud]}
    clean, _ = san.sanitize_tree(tree)
    assert isinstance(clean, dict) and clean is not tree
    messages = cast("list[Any]", clean["messages"])
    assert messages[0] is quiet  # nothing below it changed
    assert messages[1] is not loud and loud["content"].startswith("ghp_")  # type: ignore[union-attr]
    assert san.sanitize_tree([])[0] == [] and san.sanitize_tree([])[0] is not san.sanitize_tree([])[0]


def test_patterns_anchored_to_the_text_are_told_apart() -> None:
    assert no_text_anchor(r"://[^\s:/#@]*:[^\s/]+@")
    assert no_text_anchor(r"key[ \t]*=[^\]^$]+\btoken\b")
    assert no_text_anchor(r"[]^$]x")
    for rx in (r"^token", r"token$", r"\Atoken", r"token\Z", r"token\z", r"a|^b"):
        assert not no_text_anchor(rx), rx


def test_providers_blocks_are_walked_alike_in_every_combination() -> None:
    """Every kind of block with every blob key and value, in a list and alone, each walked twice
    (the second time, its keys are known clean and the gathering pass takes its hot loop)."""
    blocks = [
        _block(({"id": "b1"}, kind, key, value))
        for kind in ("thinking", "redacted_thinking", "reasoning", "text")
        for key in ("signature", "data", "encrypted_content")
        for value in BLOB_VALUES
    ]
    for san in _sanitizers():
        for tree in [cast("JSONValue", blocks), *blocks, *blocks]:
            assert _same(san.sanitize_tree(tree), per_string(san, tree)), (san.engine, tree)
