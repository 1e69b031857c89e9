"""Hyperscan shapes derived from rule regexes (``_shape``): a superset of where a rule's regex
can start, so only keyword occurrences that may begin a secret reach Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import Sanitizer, available_engines
from sessionseal._sanitize._native import fold
from sessionseal._sanitize._rules import default_catalogue, rule_from_mapping
from sessionseal._sanitize._shape import shape, shape_width, shapes

from .conftest import engines

RULES, _ = default_catalogue()
ANCHOR_RULES = [r for r in RULES if r.mode == "anchor" and not r.hs_prefilter]
CORPUS = "\n".join(ex for r in RULES for ex in (*r.examples, *r.counterexamples))


def _shape_matcher(regex: str) -> re.Pattern[bytes] | None:
    """The shape as a Python bytes pattern over folded text (the syntax both understand)."""
    found = shape(regex)
    return None if found is None else re.compile(found.encode("ascii"))


def _keyword_starts(rule_keywords: tuple[str, ...], text: str) -> set[int]:
    low = fold(text).lower()
    out = set()
    for kw in rule_keywords:
        kwb = kw.encode("ascii", "replace")
        p = low.find(kwb)
        while p >= 0:
            out.add(p)
            p = low.find(kwb, p + 1)
    return out


def _assert_superset(rule_regex: str, keywords: tuple[str, ...], text: str) -> None:
    matcher = _shape_matcher(rule_regex)
    if matcher is None:
        return
    folded = fold(text)
    width = shape_width(str(shape(rule_regex)))
    assert width is not None
    regex = re.compile(rule_regex)
    for s in _keyword_starts(keywords, text):
        if regex.match(text, s) is not None:
            m = matcher.match(folded, s)
            assert m is not None, (rule_regex, s)
            assert m.end() - s <= width


@pytest.mark.parametrize("rule", ANCHOR_RULES, ids=lambda r: r.id)
def test_a_rules_shape_matches_wherever_its_regex_does_in_its_examples(rule: object) -> None:
    from sessionseal._sanitize._rules import Rule

    assert isinstance(rule, Rule)
    for text in (*rule.examples, *rule.counterexamples):
        _assert_superset(rule.regex, rule.keywords, text)


def test_most_catalogue_anchor_rules_get_a_bounded_shape() -> None:
    derived = shapes([(r.regex, 1 + min(map(len, r.keywords))) for r in ANCHOR_RULES], cache=False)
    assert sum(d is not None for d in derived) >= len(ANCHOR_RULES) // 2
    for d in derived:
        if d is not None:
            assert d[0].startswith("(?-i)")
            assert 4 <= d[1] < 4096


@pytest.mark.parametrize(
    ("regex", "matches", "misses"),
    [
        # Case-insensitive letters get both cases, and i/k/s the "?" of their non-ASCII twins.
        ("(?i)tok_[a-z]{4}", [b"TOK_abcd", b"to?_AbCd"], [b"tok-abcd"]),
        # \w and negated classes can match non-ASCII characters: "?" in folded text.
        (r"zz_\w{4}", [b"zz_ab?d"], [b"zz_ab-d"]),
        (r"zz_[^\s]{4}", [b"zz_??x?"], [b"zz_ab d"]),
        # A positive lookahead is consumed and ends the shape; lookbehinds and \b are dropped.
        (r"(?<![a-z])key:(?=[ \t]|\")\s*\w+", [b"key: x", b'key:"'], [b"key:3"]),
        # The shape ends at an unbounded repeat, keeping its minimum (capped).
        (r"sl\.[A-Za-z0-9]{130,}", [b"sl." + b"a" * 16], [b"sl." + b"a" * 15]),
        # Possessive and atomic groups become plain ones.
        (r"ab(?>cd|c)e++x", [b"abcde"], [b"abx"]),
    ],
)
def test_shape_spelling(regex: str, matches: list[bytes], misses: list[bytes]) -> None:
    found = shape(regex)
    assert found is not None
    rx = re.compile(found.encode("ascii"))
    for m in matches:
        assert rx.match(m), m
    for m in misses:
        assert not rx.match(m), m


def test_no_shape_where_the_regex_gives_nothing_selective() -> None:
    assert shape(r"ab") is None  # shorter than the minimum
    assert shape(r"(a)\1xyz") is None  # starts with what a backreference matches: unknown
    assert shape(r"token[ \t]*=", min_width=6) is None  # no more than its keyword


def test_unicode_case_twins_fold_to_a_question_mark() -> None:
    # Python's IGNORECASE matches these non-ASCII characters to ASCII letters.
    for letter, twins in {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}.items():
        for twin in twins:
            assert re.fullmatch("(?i)" + letter, twin)
            assert fold(twin) == b"?"


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_a_usage_field_or_the_word_token_never_reaches_python() -> None:
    sc = Sanitizer(engine="hyperscan")._scanner
    text = (
        '{"usage":{"input_tokens":3,"cache_read_input_tokens":53997,"output_tokens":153}}\n'
        "Count the tokens per request, then pass the key and its token to the cache.\n"
    )
    hits = sc.prefilter.hits(text)
    # No rule's shape matches but that of a password in prose at "pass the" (a space after
    # "pass": Python tries the rule there, as it did at the keyword before).
    shaped = [(sc.rules[sc._anchored[h[0] - sc._nfull]].id, text[h[1] : h[2]]) for h in hits if h[0] >= sc._nfull]
    assert shaped == [("password-in-prose", "pass ")]
    assert sc.find(text) == []


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_a_new_vendor_rule_is_shaped_and_found_by_every_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(tmp_path))  # shapes need the start-up cache
    rule = {
        "id": "zz-vendor-token",
        "description": "test vendor",
        "regex": r"(?:(?<=\\[nrt])|(?<![A-Za-z0-9]))zzv_[A-Za-z0-9]{36}",
        "keywords": ["zzv_"],
        "examples": ["ZZ=zzv_" + "a1B2" * 9],
        "counterexamples": ["zzv_short"],
    }
    text = "export ZZ=zzv_" + "a1B2" * 9 + "\nzzv_short zzv_ in prose\n"
    catalogue_rule = rule_from_mapping(rule, builtin=True)  # as if it were in rules/*.toml
    hs = Sanitizer(extra_rules=[catalogue_rule], engine="hyperscan")
    ri = next(i for i, r in enumerate(hs.rules) if r.id == "zz-vendor-token")
    assert ri in hs._scanner._anchored  # derived automatically: its keyword alone is no hit
    # A user's rule (from the configuration: the database is not cached) keeps its keyword.
    user = Sanitizer(extra_rules=[rule], engine="hyperscan")
    assert ri not in user._scanner._anchored
    found = {e: Sanitizer(extra_rules=[catalogue_rule], engine=e).find(text) for e in engines()}
    assert user.find(text) == found[engines()[0]]
    reference = found[engines()[0]]
    assert all(f == reference for f in found.values())
    assert [f.rule_id for f in reference] == ["zz-vendor-token"]


_PIECES = st.sampled_from(
    [
        "token",
        "TOKEN",
        "to\u212aen",
        "key",
        "\u212aey",
        "pa\u017f\u017f",
        "password",
        "=",
        ":",
        ": ",
        '"',
        "\\",
        " ",
        "\n",
        "\u00e9",
        "a",
        "Z9",
        "sk-",
        "ghp_",
        "xoxb-",
        "AKIA",
        "eyJ",
        "-----BEGIN ",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECES, max_size=24), st.sampled_from(ANCHOR_RULES))
def test_shapes_are_supersets_on_generated_text(pieces: list[str], rule: object) -> None:
    from sessionseal._sanitize._rules import Rule

    assert isinstance(rule, Rule)
    text = "".join(pieces)
    for example in rule.examples[:1]:
        _assert_superset(rule.regex, rule.keywords, text + example + text)
    _assert_superset(rule.regex, rule.keywords, text)


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_a_window_rules_shape_gates_its_windows_without_changing_findings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(tmp_path))
    rule = {
        "id": "zz-window-token",
        "description": "test vendor, keyword far from the value",
        "regex": r"(?i)zzcloud[_-]?token[ \t]*=[ \t]*(?P<secret>[A-Za-z0-9]{24})",
        "keywords": ["zzcloud-v2"],
        "mode": "window",
        "window": [200, 200],
        "examples": ["zzcloud-v2\nZZCLOUD_TOKEN=" + "a1B2c3" * 4],
        "counterexamples": ["zzcloud-v2 token"],
    }
    text = "zzcloud-v2 docs\n" + "x " * 50 + "ZZCLOUD_TOKEN=" + "a1B2c3" * 4 + "\nzzcloud-v2 alone\n"
    catalogue_rule = rule_from_mapping(rule, builtin=True)
    hs = Sanitizer(extra_rules=[catalogue_rule], engine="hyperscan")
    ri = next(i for i, r in enumerate(hs.rules) if r.id == "zz-window-token")
    assert ri in hs._scanner._gated
    found = {e: Sanitizer(extra_rules=[catalogue_rule], engine=e).find(text) for e in engines()}
    reference = found[engines()[0]]
    assert all(f == reference for f in found.values())
    assert [f.rule_id for f in reference] == ["zz-window-token"]


@pytest.mark.parametrize(
    "text",
    [
        # Two keywords whose matches end at the same place: Hyperscan reports only the leftmost start.
        "ATOKEN:PASSWORD=011:",
        "xsecret_token = Zq8mW3xP1nB6",
        '"input_tokens": 3, "cache_read_input_tokens": 53997, "password": "Tr0ub4dor&3x"',
        "key: abc\nkey=\"a b c d\"\nAPI_KEY=>Zq8mW3xP1nB6 token => 'Zq8mW3xP1nB6'",
    ],
)
def test_engines_agree_where_prefilter_shapes_meet(text: str) -> None:
    found = {e: Sanitizer(b"\x01" * 32, engine=e).find(text) for e in engines()}
    reference = found[engines()[0]]
    assert all(f == reference for f in found.values()), found


_KW_TEXT = st.text(alphabet=st.sampled_from(list("tokenKEYsk-?_\u212a\u017f\u0130\u0131\u00e9 \udc80")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_KW_TEXT, st.lists(st.sampled_from(["token", "key", "sk-", "pa?s", "k\u00e9y"]), min_size=1, max_size=3))
def test_keyword_pattern_finds_what_fold_finds(text: str, keywords: list[str]) -> None:
    from sessionseal._sanitize._shape import keyword_pattern

    folded = [k.encode("ascii", "replace") for k in keywords]
    low = fold(text).lower()
    expected = {p for k in folded for p in range(len(low)) if low.startswith(k, p)}
    rx = keyword_pattern(folded)
    found = {p for p in range(len(text)) if rx.match(text, p)}
    assert found == expected
    # The search form (led by a lookahead of the first characters) finds the same places.
    srx = keyword_pattern(folded, for_search=True)
    searched, m = set(), srx.search(text)
    while m is not None:
        searched.add(m.start())
        m = srx.search(text, m.start() + 1)
    assert searched == expected


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_without_the_start_up_cache_rules_keep_their_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shapes make the database slower to build: without a cache to keep it, none are derived.
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", "")
    sc = Sanitizer(engine="hyperscan")._scanner
    assert all(RULES[ri].hs_prefilter for ri in sc._anchored)
    assert sc.find(CORPUS) == Sanitizer(engine="python").find(CORPUS)
