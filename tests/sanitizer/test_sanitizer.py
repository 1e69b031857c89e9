"""Behaviour of the sanitizer on realistic session content, on every engine."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import cast

import pytest

from sessionseal._sanitize import JSONValue, Sanitizer, SanitizeResult

GHP = "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"
PEM_BODY = [
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCp52S6IcGar+IA",
    "qYYxVP143KiooU0nzBtM8UHjTqqEPL+I0WPd74pWRysAnMQ/N67MC90/oNe+f/8I",
    "BdqcMvhX+THBwp4gGETMkAqsVJf/dFEnt1SG8bjZReBSqVRkSWts9IqSxTq4COUe",
    "GrRucUpT+oQ39gz988s30A==",
]
PEM = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END PRIVATE KEY-----"


def leaked(result: SanitizeResult, secret: str) -> bool:
    """True when a third of the secret (at least 6 characters) survives."""
    n = max(6, -(-len(secret) // 3))
    flat = "".join(result.text.split())
    compact = "".join(secret.split())
    return any(compact[i : i + n] in flat for i in range(len(compact) - n + 1))


def test_placeholder_is_typed_and_keyed(san: Sanitizer) -> None:
    out = san.sanitize_text(f"token {GHP}").text
    assert out.startswith("token [REDACTED:github-pat:")
    assert len(out) == len("token [REDACTED:github-pat:12345678]")
    assert GHP not in out


def test_same_secret_same_placeholder_different_key_different_placeholder(engine: str) -> None:
    a = Sanitizer(b"a" * 32, engine=engine)
    b = Sanitizer(b"b" * 32, engine=engine)
    text = f"one {GHP} two {GHP}"
    out_a = a.sanitize_text(text).text
    first, second = out_a.split()[1], out_a.split()[3]
    assert first == second
    assert out_a != b.sanitize_text(text).text
    assert a.sanitize_text(text).counts == {"github-pat": 2}


def test_idempotent_and_placeholders_untouched(san: Sanitizer) -> None:
    text = f"export GITHUB_TOKEN={GHP}\npassword: 'Hunter2!xyzzy'\n{PEM}\n"
    once = san.sanitize_text(text)
    twice = san.sanitize_text(once.text)
    assert twice.text == once.text
    assert twice.counts == {}
    manual = "token = [REDACTED:github-pat:0a1b2c3d] and [REDACTED:x:deadbeef]"
    assert san.sanitize_text(manual).text == manual


def test_private_key_block_raw_and_json_escaped(san: Sanitizer) -> None:
    for text in (f"key:\n{PEM}\nafter", json.dumps({"private_key": PEM + "\n", "next": "after"})):
        result = san.sanitize_text(text)
        assert result.counts.get("private-key") == 1
        assert not leaked(result, "".join(PEM_BODY))
        assert "after" in result.text
    escaped = json.dumps({"k": PEM})
    assert json.loads(san.sanitize_text(escaped).text)["k"].startswith("[REDACTED:private-key:")


def test_truncated_key_is_redacted_without_eating_what_follows(san: Sanitizer) -> None:
    text = (
        "$ head -n 3 id_rsa\n-----BEGIN RSA PRIVATE KEY-----\n"
        + "\n".join(PEM_BODY[:2])
        + "\n$ echo done\nsome later text that must stay\n"
        + "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
    )
    result = san.sanitize_text(text)
    assert result.counts == {"private-key": 1}
    assert "$ echo done\nsome later text that must stay\n-----BEGIN CERTIFICATE-----" in result.text
    assert not leaked(result, PEM_BODY[0])


def test_url_credentials_keep_everything_but_the_password(san: Sanitizer) -> None:
    result = san.sanitize_text("DATABASE_URL=postgresql://app:s3cr3t-Pa55word@db.internal:5432/app")
    assert result.text == "DATABASE_URL=postgresql://app:[REDACTED:url-credentials]@db.internal:5432/app"


def test_json_escaped_env_file(san: Sanitizer) -> None:
    env = "DB_PASSWORD=Xq9-pL2+vW7z\nOPENAI_KEY=sk-" + "a1B2" * 5 + "T3BlbkFJ" + "c3D4" * 5 + "\nPORT=8000\n"
    line = json.dumps({"type": "tool_result", "content": env})
    result = san.sanitize_text(line)
    doc = json.loads(result.text)
    assert "Xq9-pL2+vW7z" not in doc["content"]
    assert "T3BlbkFJ" not in doc["content"]
    assert doc["content"].endswith("\nPORT=8000\n")


def test_base64_wrapped_env_and_user_password(san: Sanitizer) -> None:
    env = base64.b64encode(f"GITHUB_TOKEN={GHP}\nLOG_LEVEL=info\n".encode()).decode()
    result = san.sanitize_text(f"echo '{env}' | base64 -d > .env")
    assert env not in result.text and result.counts
    auth = base64.b64encode(b"deploy:ember-falcon-comet-panda80").decode()
    docker = json.dumps({"auths": {"ghcr.io": {"auth": auth}}})
    assert auth not in san.sanitize_text(docker).text
    harmless = base64.b64encode(b"hello world, nothing to see here").decode()
    assert san.sanitize_text(f"echo {harmless} | base64 -d").counts == {}


@pytest.mark.parametrize(
    "text",
    [
        "quick note: the db password is silver-cobalt-copper-banjo46 (local only)",
        "try logging in as omar with password 'd*d=NKG3HK#LUl=NIhtWV'",
        "fyi the wifi password at the office is MarblePanda9671&",
        "Login for the router UI: admin / 7Gjdh!#6ppb*eQuq9@",
    ],
)
def test_passwords_in_prose(san: Sanitizer, text: str) -> None:
    result = san.sanitize_text(text)
    assert result.counts, text
    secret = text.rsplit(maxsplit=1)[-1].strip("'()") if "(" not in text else "silver-cobalt-copper-banjo46"
    assert not leaked(result, secret)


@pytest.mark.parametrize(
    "benign",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "<YOUR_API_KEY>",
        "sk-...",
        "${GITHUB_TOKEN}",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "sha256:c6d08a4cb882b1cffe43b5c5e06139c2ed24211db316793ee45f813167562e76",
        "sha512-xDWPP1okJHr0WiB6YgAb7i1hJOJqmy+DhlWqjgf98aVNLCQMnXlusf4Fs2HSeRwTz/L0JIN8l5SuKktQU7VLww==",
        "h1:rqd3aj5EejshcK44Kp5rMkMNLt/WUrCXSZl9BKvZv7s=",
        "1448e90e5974329a0ce3546af68ef1fcc1f224b5",
        "62b88db1-ed32-4cd6-abf6-5b7eb1ca8ef9",
        "toolu_01sNED0EF8LEW7ti1mT9vUeP",
        "msg_01IHY68nkMXQjhb2gr2RBTtQ",
        "req_CvvnBEZa4ilk2PV9ehABdGHM",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaHI2SpojKQuBIhER+0vqZEgTaPWTBc1F0BB3nM6SHP raj@laptop",
        "2024-05-02T13:03:35.668Z",
        "https://registry.npmjs.org/axios/-/axios-1.7.2.tgz",
        "ghcr.io/org/app@sha256:9c8c12e4ab8bf38500f4beffae7c91cfec512e0be6e98a39ef87d1f1253584dc",
    ],
)
def test_benign_values_survive_in_context(san: Sanitizer, benign: str) -> None:
    for text in (benign, f"value: {benign}\n", json.dumps({"id": benign}), f"see {benign} for details"):
        assert san.sanitize_text(text).text == text


def test_tree_redacts_secret_named_values_whole(san: Sanitizer) -> None:
    doc = {
        "env": {"GITHUB_TOKEN": "anything-at-all-1", "password": "hunter2!x", "client_secret": "abc123def"},
        "usage": {"token_count": 1234, "max_tokens": 4096, "input_tokens": "12"},
        "auth_mode": "oauth",
        "password_min_length": 12,
        "api_key": True,
        "id": "62b88db1-ed32-4cd6-abf6-5b7eb1ca8ef9",
        "secret": "2024-05-02T13:03:35.668Z",
        "note": f"push with {GHP}",
        GHP: "dict keys are scanned too",
        "list": [f"a {GHP}", 1, None, 2.5, False],
    }
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    assert isinstance(clean, dict)
    env = clean["env"]
    assert isinstance(env, dict)
    assert env == dict.fromkeys(env, "[REDACTED:secret-named-value]")
    assert clean["usage"] == doc["usage"]
    assert clean["auth_mode"] == "oauth" and clean["password_min_length"] == 12 and clean["api_key"] is True
    assert clean["id"] == doc["id"] and clean["secret"] == doc["secret"]
    assert GHP not in json.dumps(clean)
    assert counts == {"secret-named-value": 3, "github-pat": 3}
    key = san.sanitize_text(GHP).text
    assert list(clean) == [key if k == GHP else k for k in doc]


def test_tree_shape_is_preserved(san: Sanitizer) -> None:
    doc = {"a": [1, {"b": [f"x {GHP}", {"c": None}]}], "d": {"password": ""}}
    clean, _ = san.sanitize_tree(cast("JSONValue", doc))
    assert json.dumps(clean).count("{") == json.dumps(doc).count("{")
    assert isinstance(clean, dict) and clean["d"] == {"password": ""}


def test_extensions_rules_literals_allowlist(make: Callable[..., Sanitizer]) -> None:
    s = make(
        extra_rules=[
            {
                "id": "acme-ticket",
                "regex": r"ACME-[0-9]{6}",
                "keywords": ["acme-"],
                "examples": ["ACME-123456"],
                "counterexamples": ["ACME-1"],
            }
        ],
        literals=["build.corp.internal"],
        allowlist=[GHP, "re:ghp_allow[A-Za-z0-9]{31}"],
    )
    out = s.sanitize_text(f"ticket ACME-123456 on Build.Corp.Internal {GHP} ghp_allow{'a' * 31}")
    assert out.counts == {"acme-ticket": 1, "literal": 1}
    assert GHP in out.text and "ghp_allow" in out.text


def test_extra_rule_without_keywords_is_a_full_scan_rule(make: Callable[..., Sanitizer]) -> None:
    s = make(extra_rules=[{"id": "cust", "regex": r"CUST[0-9]{8}"}])
    assert s.sanitize_text("id CUST12345678 end").counts == {"cust": 1}


def test_duplicate_extra_rule_id_is_rejected(make: Callable[..., Sanitizer]) -> None:
    from sessionseal._sanitize import RuleError

    with pytest.raises(RuleError):
        make(extra_rules=[{"id": "github-pat", "regex": "x"}])


def test_unknown_engine_is_rejected() -> None:
    with pytest.raises(ValueError, match="engine"):
        Sanitizer(engine="nope")


def test_non_ascii_text_keeps_offsets(san: Sanitizer) -> None:
    text = f"⏺ Bash(env) ⎿  émoji 😀 GH_TOKEN={GHP} ✓ done"
    out = san.sanitize_text(text).text
    assert out.startswith("⏺ Bash(env) ⎿  émoji 😀 GH_TOKEN=[REDACTED:github-pat:") and out.endswith("] ✓ done")


def test_find_reports_spans(san: Sanitizer) -> None:
    text = f"a {GHP} b"
    (f,) = san.find(text)
    assert text[f.start : f.end] == GHP and f.rule_id == "github-pat"
