"""The tree walk's corpus: documents, not text (issue 21, "Structure").

Sessions are stored as documents: argv arrays (Codex ``shell`` calls, MCP ``args``),
name/value lists (Kubernetes env, CloudFormation, SSM), secrets nested under a secret name,
UUID tokens, tokens used as dict keys.  Each secret document is scored for recall (no
secret survives anywhere in the stored JSON), each benign one for preservation (it comes out
unchanged), and every one for structure (same keys in the same order, same list lengths,
same types -- an integer under a secret name becoming the placeholder string is the one
change of type).  All values here are made up for these tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

import pytest

from sessionseal._sanitize import PLACEHOLDER_RE, JSONValue, Sanitizer

PW = "Qm7!vR2#xL9pTz"
PW2 = "Zx8@kP3$wN5qRt"
TOK = "k8Zq2Lm9Xv4Rt7Yp1Wn6Bc3Hd5Fg0Js"
GHP = "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"  # a valid checksum, as test_sanitizer's
AWS_SECRET = "h3Kq9/Zr7TmW2xVb8NpL4sYc6DfG1jQe5RaU0oIi"
UUID_TOKEN = "4f9c2a7e-8b1d-4c3e-9a5f-6d2e0b7c1a84"
NUMBER = 83749201554

#: Command lines as argv arrays: each must come out as the same line as one string does.
ARGV: dict[str, list[str]] = {
    "mysql": ["mysql", "-uroot", f"-p{PW}", "-h", "db.internal"],
    "sshpass": ["sshpass", "-p", PW, "ssh", "deploy@10.0.0.5"],
    "redis-cli": ["redis-cli", "-h", "cache", "-a", PW],
    "docker-login": ["docker", "login", "-u", "bob", "-p", PW, "registry.internal"],
    "curl-user": ["curl", "-u", f"admin:{PW}", "https://api.internal/v1/items"],
    "gh-with-token": ["gh", "auth", "login", "--with-token", TOK],
    "gh-with-ghp": ["gh", "auth", "login", "--with-token", GHP],
    "aws-configure": ["aws", "configure", "set", "aws_secret_access_key", AWS_SECRET],
    "npx-api-key": ["npx", "-y", "acme-mcp-server", "--api-key", TOK],
}
ARGV_SECRETS = {"mysql": PW, "sshpass": PW, "redis-cli": PW, "docker-login": PW, "curl-user": PW}
ARGV_SECRETS |= {"gh-with-token": TOK, "gh-with-ghp": GHP, "aws-configure": AWS_SECRET, "npx-api-key": TOK}

#: Documents holding secrets the text of no single string gives away: (document, secrets).
SECRET_DOCS: dict[str, tuple[object, list[str]]] = {
    **{
        f"argv-{k}": ({"type": "function_call", "arguments": {"command": v}}, [ARGV_SECRETS[k]])
        for k, v in ARGV.items()
    },
    "mcp-args": ({"mcpServers": {"acme": {"command": "npx", "args": ARGV["npx-api-key"][1:]}}}, [TOK]),
    "list-under-secret-name": ({"api_keys": [TOK, PW], "name": "ci"}, [TOK, PW]),
    "nested-value": ({"password": {"value": PW, "type": "string"}}, [PW]),
    "nested-default": ({"properties": {"db_password": {"type": "string", "default": PW}}}, [PW]),
    "number": ({"password": NUMBER, "user": "bob"}, [str(NUMBER)]),
    "k8s-env": ({"env": [{"name": "DB_HOST", "value": "db"}, {"name": "DB_PASSWORD", "value": PW}]}, [PW]),
    "cloudformation": ({"Parameters": [{"ParameterKey": "DBPassword", "ParameterValue": PW}]}, [PW]),
    "ssm": ({"Parameter": {"Name": "/prod/db/password", "Type": "SecureString", "Value": PW}}, [PW]),
    "heroku-uuid": ({"env": {"HEROKU_API_KEY": UUID_TOKEN}}, [UUID_TOKEN]),
    "consul-uuid": ({"env": {"CONSUL_HTTP_TOKEN": UUID_TOKEN}}, [UUID_TOKEN]),
    "npmrc-uuid": ({"npmrc": {"//registry.npmjs.org/:_authToken": UUID_TOKEN}}, [UUID_TOKEN]),
    "key-token": ({"tool_state": {GHP: {"ok": True}}}, [GHP]),
    "key-top-level": ({GHP: "seen", "role": "user"}, [GHP]),
    "key-collision": ({f"password={PW}": 1, f"password={PW2}": 2}, [PW, PW2]),
}

#: Documents with no secret: they must come out exactly as they went in.
BENIGN_DOCS: dict[str, object] = {
    "ids": {"id": UUID_TOKEN, "session_id": UUID_TOKEN, "parent": [UUID_TOKEN, UUID_TOKEN], "request_id": "req_8f2k"},
    "numbers": {"count": NUMBER, "port": 5432, "token_count": 12345, "max_tokens": 4096, "secret": 1, "pi": 3.14},
    "words": {"role": "user", "content": "please rotate the api key and update the password docs"},
    "ls": {"command": ["ls", "-la"]},
    "git-commit": {"command": ["git", "commit", "-m", "fix the api key docs"]},
    "grep": {"command": ["grep", "-rn", "password", "src/"]},
    "kubectl": {"command": ["kubectl", "get", "secrets", "-n", "prod"]},
    "tags": {"tags": ["secret", "token", "api", "password"]},
    "k8s-env": {"env": [{"name": "DB_HOST", "value": "db.internal"}, {"name": "LOG_LEVEL", "value": "debug"}]},
    "ssm-host": {"Name": "/prod/db/host", "Value": "db.internal"},
    "key-press": {"key": "Enter", "value": "pressed"},
    "schema": {"password": {"type": "string", "description": "the user's password", "minLength": 12}},
    "nulls": {"password": None, "api_key": True, "token": 0},
    "times": {"created_at": "2026-03-14T10:22:31Z", "access_token_expires": 1767225600},
}


def _same_shape(before: object, after: object) -> bool:
    if isinstance(before, dict):
        return (
            isinstance(after, dict)
            and len(after) == len(before)
            and all(
                (ka == kb or PLACEHOLDER_RE.search(ka) is not None) and _same_shape(vb, va)
                for (kb, vb), (ka, va) in zip(before.items(), after.items(), strict=True)
            )
        )
    if isinstance(before, list):
        return (
            isinstance(after, list)
            and len(after) == len(before)
            and all(_same_shape(b, a) for b, a in zip(before, after, strict=True))
        )
    return type(after) is type(before) or (type(before) is int and after == "[REDACTED:secret-named-value]")


def _clean(san: Sanitizer, doc: object) -> object:
    clean, _ = san.sanitize_tree(cast("JSONValue", doc))
    return clean


def test_tree_corpus_score(san: Sanitizer) -> None:
    """Recall 100 %, benign 100 %, structure 100 %, scored like the text corpus."""
    missed = [
        name for name, (doc, secrets) in SECRET_DOCS.items() if any(s in json.dumps(_clean(san, doc)) for s in secrets)
    ]
    altered = [name for name, doc in BENIGN_DOCS.items() if _clean(san, doc) != doc]
    docs = [d for d, _ in SECRET_DOCS.values()] + list(BENIGN_DOCS.values())
    misshapen = [i for i, doc in enumerate(docs) if not _same_shape(doc, _clean(san, doc))]
    recall = 1 - len(missed) / len(SECRET_DOCS)
    benign = 1 - len(altered) / len(BENIGN_DOCS)
    assert (recall, benign, misshapen) == (1.0, 1.0, []), (missed, altered)


@pytest.mark.parametrize("name", sorted(ARGV))
def test_argv_is_redacted_as_its_command_line(san: Sanitizer, name: str) -> None:
    argv = ARGV[name]
    clean = _clean(san, argv)
    assert isinstance(clean, list) and len(clean) == len(argv)
    assert " ".join(cast("list[str]", clean)) == san.sanitize_text(" ".join(argv)).text
    secret = ARGV_SECRETS[name]
    # Only the element(s) holding the secret change.
    assert [c for c, a in zip(clean, argv, strict=True) if c != a] == [
        c for c, a in zip(clean, argv, strict=True) if secret in a
    ]


def test_a_finding_across_elements_is_redacted_in_each_and_counted_once(make: Callable[..., Sanitizer]) -> None:
    rule = {"id": "acme-pair", "regex": r"ACME-[0-9]{3} [0-9]{3}", "keywords": ["acme-"]}
    san = make(extra_rules=[rule], builtin_rules=False)
    clean, counts = san.sanitize_tree(["tool", "--id", "ACME-123", "456", "done"])
    assert clean == ["tool", "--id", "[REDACTED:acme-pair]", "[REDACTED:acme-pair]", "done"]
    assert counts == {"acme-pair": 1}
    # Each element alone holds no finding: the list as a command line does.
    assert san.sanitize_tree(["ACME-123"]) == (["ACME-123"], {})


@pytest.mark.parametrize(
    "name", ["list-under-secret-name", "nested-value", "number", "k8s-env", "cloudformation", "ssm"]
)
def test_secret_name_above_the_value(san: Sanitizer, name: str) -> None:
    doc, secrets = SECRET_DOCS[name]
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    text = json.dumps(clean)
    assert not any(s in text for s in secrets)
    assert counts.get("secret-named-value", 0) >= len(secrets)
    assert _same_shape(doc, clean)


def test_number_under_a_secret_name_becomes_the_placeholder(san: Sanitizer) -> None:
    clean = _clean(san, {"password": NUMBER, "pin": 4821, "secret": 7, "count": NUMBER})
    assert clean == {
        "password": "[REDACTED:secret-named-value]",
        "pin": 4821,  # "pin" is not a secret name
        "secret": 7,  # under four digits: a flag or a count
        "count": NUMBER,
    }


@pytest.mark.parametrize("name", ["HEROKU_API_KEY", "CONSUL_HTTP_TOKEN", "//registry.npmjs.org/:_authToken"])
def test_uuid_under_a_secret_name_is_redacted(san: Sanitizer, name: str) -> None:
    assert _clean(san, {name: UUID_TOKEN, "id": UUID_TOKEN}) == {
        name: "[REDACTED:secret-named-value]",
        "id": UUID_TOKEN,
    }


def test_dict_keys_are_scanned_and_stay_unique(san: Sanitizer) -> None:
    doc = {f"password={PW}": 1, f"password={PW2}": 2, GHP: {"ok": True}, "plain": 3}
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    assert isinstance(clean, dict)
    first = san.sanitize_text(f"password={PW}").text
    assert list(clean) == [first, f"{first} #2", san.sanitize_text(GHP).text, "plain"]
    assert list(clean.values()) == [1, 2, {"ok": True}, 3]
    assert sum(counts.values()) == 3
    # Stable: a second pass changes nothing.
    assert san.sanitize_tree(clean) == (clean, {})


def test_a_redacted_key_is_named_without_its_placeholder(san: Sanitizer) -> None:
    # "mysql -p<pw>" is no secret name, and neither is "mysql -p[REDACTED:mysql-password-flag]":
    # the value under it stays, in the first walk and the second.
    clean, _ = san.sanitize_tree({f"mysql -p{PW}": 1000})
    assert clean == {san.sanitize_text(f"mysql -p{PW}").text: 1000}
    assert san.sanitize_tree(clean) == (clean, {})
