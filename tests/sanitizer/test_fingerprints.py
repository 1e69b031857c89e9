"""Which placeholders carry a fingerprint (issue 18, item 8).

A fingerprint is HMAC-SHA256(fingerprint key, secret) cut to 8 hex digits.  For a password
it is an offline oracle: whoever holds the key (the vault's, or a process's) tries a
dictionary against it at the speed of HMAC.  So only machine-generated tokens in a fixed
vendor format keep one (where it helps correlate); everything a person may have chosen is
``[REDACTED:<rule-id>]``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from sessionseal._sanitize import FINGERPRINT_MIN_BITS, PLACEHOLDER_RE, JSONValue, Sanitizer, _rules
from sessionseal._sanitize._checks import estimated_bits
from sessionseal._sanitize._rules import RuleError, default_catalogue, rule_from_mapping

from .conftest import KEY

GHP = "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"
AWS_SECRET = "q8Rk2vT5nWz0Lp3Xc7Yb1Hs9Df4Jg6Mu2Ae5Vi8O"
SLACK = "xoxb-2048503716-4096183527194-Qm7Rt2Zx9Kp4Lw8Nc3Vb6Hj1"
FP = re.compile(r"\[REDACTED:([a-z0-9-]+):([0-9a-f]{8})\]")

#: The same low-entropy password, found by one rule after another.
PASSWORD = "Summer2024!"
PASSWORD_CONTEXTS = [
    ("password=Summer2024!", "generic-secret-assignment"),
    ('DB_PASSWORD: "Summer2024!"', "generic-secret-assignment"),
    ('{"password": "Summer2024!"}', "generic-secret-assignment"),
    ("mysql -uroot -pSummer2024! app", "mysql-password-flag"),
    ("psql postgres://app:Summer2024!@db.internal/app", "url-credentials"),
    ("the db password is Summer2024! for now", "password-in-prose"),
    ("sshpass -p 'Summer2024!' ssh admin@host", "sshpass-password"),
    ("login --password Summer2024! --user me", "cli-secret-flag"),
    ("requirepass Summer2024!", "redis-requirepass"),
    ("curl -u admin:Summer2024! https://example.org", "curl-user-password"),
]


def _hmac8(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:8]


def _guesses() -> list[str]:
    """A 1,000-word guess list in the style of a cracking dictionary; it holds the password."""
    words = ["Summer", "Winter", "Spring", "Autumn", "Password", "Welcome", "Company", "Monday", "Letmein", "Dragon"]
    years = [str(y) for y in range(2015, 2025)]
    suffixes = ["", "!", "#", "@", "1", "!!", "$", "?", "*", "."]
    guesses = [w + y + s for w in words for y in years for s in suffixes]
    assert len(guesses) == 1000 and PASSWORD in guesses
    return guesses


@pytest.mark.parametrize(("text", "rule_id"), PASSWORD_CONTEXTS)
def test_a_password_gets_no_fingerprint(san: Sanitizer, text: str, rule_id: str) -> None:
    result = san.sanitize_text(text)
    assert PASSWORD not in result.text
    assert result.counts == {rule_id: 1}
    assert f"[REDACTED:{rule_id}]" in result.text
    assert not FP.search(result.text)


def test_a_guess_list_has_nothing_to_compare_with(san: Sanitizer) -> None:
    # Whoever holds the fingerprint key tries a dictionary: on today's placeholders a match
    # would name the password (the issue recovered this one in 677 guesses).
    out = san.sanitize_text(f"export DB_PASSWORD={PASSWORD}").text
    tails = set(re.findall(r":([0-9a-f]{8})\]", out))
    recovered = [guess for guess in _guesses() if _hmac8(KEY, guess) in tails]
    assert recovered == []
    assert PLACEHOLDER_RE.findall(out) == ["[REDACTED:generic-secret-assignment]"] and not tails


def test_short_values_under_secret_names_get_no_fingerprint(san: Sanitizer) -> None:
    doc = {
        "password": PASSWORD,
        "api_key": "abc123XYZ",
        "GITHUB_TOKEN": "hunter2!",
        "client_secret": "correct horse battery staple",
        "env": {"DB_PASS": "Tr0ub4dor&3"},
    }
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    assert clean == {
        "password": "[REDACTED:secret-named-value]",
        "api_key": "[REDACTED:secret-named-value]",
        "GITHUB_TOKEN": "[REDACTED:secret-named-value]",
        "client_secret": "[REDACTED:secret-named-value]",
        "env": {"DB_PASS": "[REDACTED:secret-named-value]"},
    }
    assert counts == {"secret-named-value": 5}


def test_a_long_password_under_a_secret_name_gets_none_either(san: Sanitizer) -> None:
    # Length says nothing about how a value was chosen: only a token a fingerprinted rule
    # recognises as a whole keeps its fingerprint.
    long_password = "Summer2024!Correct-Horse-Battery-Staple"
    assert estimated_bits(long_password) >= FINGERPRINT_MIN_BITS
    clean, _ = san.sanitize_tree({"password": long_password, "note": f"password: {long_password}"})
    assert clean == {
        "password": "[REDACTED:secret-named-value]",
        "note": "password: [REDACTED:generic-secret-assignment]",
    }


@pytest.mark.parametrize(
    ("text", "rule_id", "secret"),
    [
        (f"export GITHUB_TOKEN={GHP}", "github-pat", GHP),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws-secret-access-key", AWS_SECRET),
        (f"SLACK={SLACK}", "slack-bot-token", SLACK),
    ],
)
def test_tokens_keep_their_fingerprint(engine: str, text: str, rule_id: str, secret: str) -> None:
    san = Sanitizer(KEY, engine=engine)
    once = san.sanitize_text(f"{text}\nagain: {text}")
    expected = f"[REDACTED:{rule_id}:{_hmac8(KEY, secret)}]"
    assert once.text.count(expected) == 2 and secret not in once.text
    assert once.counts == {rule_id: 2}
    # The same secret maps to the same placeholder in another sanitizer with the same key
    # (another process of the same vault), and to an unrelated one under another key.
    assert Sanitizer(KEY, engine=engine).sanitize_text(text).text == once.text.split("\n")[0]
    assert expected not in Sanitizer(b"\x02" * 32, engine=engine).sanitize_text(text).text


def test_a_token_under_a_secret_name_keeps_the_fingerprint_it_has_in_text(san: Sanitizer) -> None:
    clean, counts = san.sanitize_tree({"GITHUB_TOKEN": GHP, "note": f"pushed with {GHP}"})
    fp = _hmac8(KEY, GHP)
    assert clean == {
        "GITHUB_TOKEN": f"[REDACTED:secret-named-value:{fp}]",
        "note": f"pushed with [REDACTED:github-pat:{fp}]",
    }
    assert counts == {"secret-named-value": 1, "github-pat": 1}


def test_a_token_rule_match_without_enough_entropy_gets_no_fingerprint(san: Sanitizer) -> None:
    # A token rule's format is what makes its matches random; a value that matches the
    # format but is not random (estimated under FINGERPRINT_MIN_BITS) loses the fingerprint.
    weak = "sk-" + "Ab1" * 11
    strong = "sk-" + "Qm7Rt2Zx9Kp4Lw8Nc3Vb6Hj1Ys5Fd0Ge"
    assert estimated_bits(weak) < FINGERPRINT_MIN_BITS <= estimated_bits(strong)
    assert san.placeholder("sk-style-api-key", weak) == "[REDACTED:sk-style-api-key]"
    assert san.placeholder("sk-style-api-key", strong) == f"[REDACTED:sk-style-api-key:{_hmac8(KEY, strong)}]"
    assert san.placeholder("generic-secret-assignment", strong) == "[REDACTED:generic-secret-assignment]"


def test_literals_and_user_rules_default_to_no_fingerprint(make: Callable[..., Sanitizer]) -> None:
    ticket = {"id": "acme-ticket", "regex": r"ACME-[0-9A-Za-z]{40}", "keywords": ["acme-"]}
    token = "ACME-" + AWS_SECRET.replace("/", "x")
    s = make(
        extra_rules=[
            ticket,
            {
                **ticket,
                "id": "acme-token",
                "regex": r"ACMT-[0-9A-Za-z]{40}",
                "keywords": ["acmt-"],
                "fingerprint": True,
            },
        ],
        literals=["build.corp.internal"],
    )
    out = s.sanitize_text(f"{token} {token.replace('ACME', 'ACMT')} on build.corp.internal").text
    fp = _hmac8(KEY, token.replace("ACME", "ACMT"))
    assert out == f"[REDACTED:acme-ticket] [REDACTED:acme-token:{fp}] on [REDACTED:literal]"
    with pytest.raises(RuleError, match="fingerprint must be true or false"):
        rule_from_mapping({**ticket, "fingerprint": "yes"})


def test_the_vault_config_accepts_the_user_rule_flag() -> None:
    from sessionseal._config import parse_config

    config = parse_config({"sanitizer": {"rules": [{"id": "acme", "regex": "ACME-[0-9]{6}", "fingerprint": True}]}})
    assert config.sanitizer.rules[0].fingerprint is True
    assert (
        parse_config({"sanitizer": {"rules": [{"id": "acme", "regex": "x"}]}}).sanitizer.rules[0].fingerprint is False
    )


def test_no_rule_that_finds_chosen_values_has_a_fingerprint() -> None:
    # The catalogue's side of the rule: checks that judge a value by the name it is assigned
    # to, or by its place in a URL, header, cookie, command line or prose, find values people
    # choose.  Those rules must never be flagged (a lint on the TOML).
    chosen = {"assignment", "key-assignment", "password", "url-password", "user-password-b64", "base64-secret"}
    chosen |= {"cookie", "flag", "query", "random-value"}
    rules, _ = default_catalogue()
    flagged = {r.id for r in rules if r.fingerprint}
    assert not {r.id for r in rules if r.check in chosen} & flagged
    assert {"generic-secret-assignment", "url-credentials", "password-in-prose", "authorization-header"}.isdisjoint(
        flagged
    )
    assert {"github-pat", "aws-secret-access-key", "aws-access-key-id", "private-key", "jwt"} <= flagged


def test_both_forms_are_left_alone_when_sanitized_again(san: Sanitizer) -> None:
    text = (
        f"password={PASSWORD} and {GHP}\n"
        "kept: [REDACTED:github-pat:0a1b2c3d] [REDACTED:password-in-prose] token = [REDACTED:x]\n"
    )
    once = san.sanitize_text(text)
    assert once.counts == {"generic-secret-assignment": 1, "github-pat": 1}
    assert once.text.endswith(
        "kept: [REDACTED:github-pat:0a1b2c3d] [REDACTED:password-in-prose] token = [REDACTED:x]\n"
    )
    twice = san.sanitize_text(once.text)
    assert twice == (once.text, {})
    assert len(PLACEHOLDER_RE.findall(once.text)) == 5
    clean, counts = san.sanitize_tree({"password": "[REDACTED:secret-named-value]", "t": once.text})
    assert clean == {"password": "[REDACTED:secret-named-value]", "t": once.text} and counts == {}


def test_the_stream_and_the_filter_give_the_same_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    from sessionseal._sanitize import _stream as stream

    text = "".join(f"{i}: password={PASSWORD}{i} and {GHP}\n" + "x" * 300 + "\n" for i in range(200))
    san = Sanitizer(KEY, engine="python")
    expected = san.sanitize_text(text)
    assert "[REDACTED:generic-secret-assignment]" in expected.text and f":{_hmac8(KEY, GHP)}]" in expected.text
    monkeypatch.setattr(stream, "CHUNK", 4000)
    monkeypatch.setattr(stream, "MIN_CHUNK", 800)
    monkeypatch.setattr(stream, "MARGIN", 1000)
    monkeypatch.setattr(stream, "PARALLEL_MIN", 1000)
    for workers in (1, 2):
        sink = io.BytesIO()
        counts = stream.sanitize_stream(san, text.encode(), sink, workers=workers)
        assert (sink.getvalue().decode(), counts) == (expected.text, expected.counts)


def test_the_sanitize_command_prints_both_forms() -> None:
    text = f"password={PASSWORD}\nGH_TOKEN={GHP}\nagain {GHP}\n"
    out = subprocess.run(
        [sys.executable, "-m", "sessionseal", "sanitize", "--report"],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "password=[REDACTED:generic-secret-assignment]"
    m = FP.fullmatch(lines[1].split("=", 1)[1])
    assert m is not None and m.group(1) == "github-pat"
    assert lines[2] == f"again {m.group(0)}"
    assert json.loads(out.stderr) == {"total": 3, "counts": {"generic-secret-assignment": 1, "github-pat": 2}}


def test_a_changed_catalogue_is_not_read_from_an_old_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start-up cache keeps the parsed catalogue under a hash of the TOML file: the entry
    # of a catalogue without the flags must not answer for the catalogue with them.
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(tmp_path / "c"))
    current = _rules._default_toml()
    older = current.replace(b"\nfingerprint = true\n", b"\n")
    monkeypatch.setattr(_rules, "_DEFAULT", None)
    monkeypatch.setattr(_rules, "_default_toml", lambda: older)
    assert not any(r.fingerprint for r in default_catalogue()[0])
    monkeypatch.setattr(_rules, "_DEFAULT", None)
    monkeypatch.setattr(_rules, "_default_toml", lambda: current)
    assert next(r for r in default_catalogue()[0] if r.id == "github-pat").fingerprint
    assert len(list((tmp_path / "c" / "sanitizer").glob("catalogue-*"))) == 2


@pytest.mark.parametrize(
    ("value", "bits"),
    [
        ("", 0),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0),
        ("\u65e5\u672c\u8a9e" * 12, 0),  # non-ASCII characters all count as one
        ("Summer2024!", 35),
        ("Summer2024!" * 3, 57),
        ("sk-" + "Ab1" * 11, 31),
        ("AKIAQWERTYUIOPASDF12", 82),
        (GHP, 149),
        (GHP + "x" * 500, 149),  # only the first 32 characters count
    ],
)
def test_entropy_estimate_vectors(value: str, bits: int) -> None:
    assert round(estimated_bits(value)) == bits
