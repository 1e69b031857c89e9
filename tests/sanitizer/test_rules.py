"""The rule catalogue: schema, and every rule's examples and counterexamples, on every engine."""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from sessionseal._sanitize import PLACEHOLDER_RE, Sanitizer
from sessionseal._sanitize._rules import CHECKS, RuleError, default_catalogue, load_catalogue, rule_from_mapping

RULES, ALLOWLIST = default_catalogue()
BY_ID = {r.id: r for r in RULES}
EXAMPLES = [(r.id, i, ex) for r in RULES for i, ex in enumerate(r.examples)]
COUNTER = [(r.id, i, ex) for r in RULES for i, ex in enumerate(r.counterexamples)]


def test_catalogue_has_at_least_100_rules_with_unique_ids() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) >= 100
    assert len(set(ids)) == len(ids)


def test_catalogue_is_plain_toml_with_required_fields() -> None:
    tables = []
    for entry in resources.files("sessionseal").joinpath("rules").iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            assert set(data) <= ({"rule", "allowlist"} if entry.name == "default.toml" else {"rule"}), entry.name
            tables += data["rule"]
    for table in tables:
        assert {"id", "description", "regex", "examples", "counterexamples"} <= set(table), table.get("id")
        assert table["description"].strip()
        assert table["examples"], f"{table['id']} has no positive example"
        assert table["counterexamples"], f"{table['id']} has no negative example"
        for kw in table.get("keywords", []):
            assert kw == kw.lower(), f"{table['id']}: keyword {kw!r} must be lowercase"


def test_every_rule_is_reachable() -> None:
    for r in RULES:
        assert r.mode == "full" or r.keywords, r.id
        assert r.check is None or r.check in CHECKS


@pytest.mark.parametrize(("rule_id", "index", "text"), EXAMPLES, ids=[f"{r}-{i}" for r, i, _ in EXAMPLES])
def test_rule_example_is_redacted(san: Sanitizer, rule_id: str, index: int, text: str) -> None:
    result = san.sanitize_text(text)
    assert result.counts.get(rule_id, 0) >= 1, f"{rule_id} example {index}: {result.counts}"
    assert result.text != text
    # A token rule's examples are real-looking tokens: each keeps its fingerprint.
    tail = ":[0-9a-f]{8}" if BY_ID[rule_id].fingerprint else ""
    assert re.search(rf"\[REDACTED:{re.escape(rule_id)}{tail}\]", result.text)


@pytest.mark.parametrize(("rule_id", "index", "text"), COUNTER, ids=[f"{r}-{i}" for r, i, _ in COUNTER])
def test_rule_counterexample_is_untouched(san: Sanitizer, rule_id: str, index: int, text: str) -> None:
    result = san.sanitize_text(text)
    assert result.text == text, f"{rule_id} counterexample {index} was changed: {result.counts}"
    assert result.counts == {}


def test_placeholders_match_the_public_pattern(san: Sanitizer) -> None:
    out = san.sanitize_text("GH_TOKEN=ghp_" + "aB3" * 12).text
    assert PLACEHOLDER_RE.fullmatch(out.split("=", 1)[1])


@pytest.mark.parametrize("key", [b"", b"k", b"\x01" * 32, b"\xff" * 64, bytes(range(65)), b"long key " * 40])
def test_placeholder_fingerprints_are_hmac_sha256(key: bytes) -> None:
    import hashlib
    import hmac

    san = Sanitizer(key, engine="python")
    for secret in ("ghp_" + "aB3" * 12, "p\u00e4ss\U0001f600", "x\udcff"):
        digest = hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        assert san.fingerprint(secret) == digest[:8]
    token = "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"
    digest = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    assert san.placeholder("github-pat", token) == f"[REDACTED:github-pat:{digest[:8]}]"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"id": "Bad Id", "regex": "x"}, "rule id"),
        ({"id": "ok", "regex": "("}, "bad regex"),
        ({"id": "ok", "regex": "x", "keywords": 5}, "keywords"),
        ({"id": "ok", "regex": "x", "secret_group": "nope"}, "no group"),
        ({"id": "ok", "regex": "x", "check": "nope"}, "unknown check"),
        ({"id": "ok", "regex": "x", "mode": "window"}, "needs keywords"),
        ({"id": "ok", "regex": "x", "frobnicate": 1}, "unknown keys"),
        ({"id": "ok", "regex": "x", "window": [1]}, "window"),
        ({"id": "ok", "regex": "x", "keywords": ["x"], "hs_som": "no"}, "hs_som"),
    ],
)
def test_malformed_rules_are_rejected(table: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rule_from_mapping(table)


def test_duplicate_ids_in_a_catalogue_are_rejected() -> None:
    doc = '[[rule]]\nid = "a"\nregex = "x"\n[[rule]]\nid = "a"\nregex = "y"\n'
    with pytest.raises(RuleError, match="duplicate"):
        load_catalogue(doc)


def test_allowlist_holds_the_documented_aws_examples() -> None:
    assert ALLOWLIST.allows("AKIAIOSFODNN7EXAMPLE")
    assert ALLOWLIST.allows("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert ALLOWLIST.allows("sha256:" + "ab" * 32)
    assert not ALLOWLIST.allows("AKIA" + "Q" * 16)
