"""The tree walk's corpus: documents, not text (issue 21, "Structure").

Sessions are stored as documents: argv arrays (Codex ``shell`` calls, MCP ``args``),
name/value lists (Kubernetes env, CloudFormation, SSM), secrets nested under a secret name,
UUID tokens, tokens used as dict keys.  Each secret document is scored for recall (no
secret survives anywhere in the stored JSON), each benign one for preservation (it comes out
unchanged), and every one for structure (same keys in the same order, same list lengths,
same types -- an integer under a secret name becoming the placeholder string is the one
change of type).  Imported transcript records are scored as the importers store them: Claude
Code and Codex JSONL lines with a secret in each place a record carries text (prompts, tool
inputs and argv, tool output, records kept verbatim), read by the real importers.  All values
here are made up for these tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from sessionseal._sanitize import JSONValue, Sanitizer
from sessionseal._transcripts import parse_claude, parse_codex

from ._shape_of import same_shape

PW = "Qm7!vR2#xL9pTz"
PW2 = "Zx8@kP3$wN5qRt"
TOK = "k8Zq2Lm9Xv4Rt7Yp1Wn6Bc3Hd5Fg0Js"
GHP = "ghp_" + "Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"  # a valid checksum, as test_sanitizer's
AWS_SECRET = "h3Kq9/Zr7TmW2xVb8NpL4sYc6DfG1jQe5RaU0oIi"
UUID_TOKEN = "4f9c2a7e-8b1d-4c3e-9a5f-6d2e0b7c1a84"
NUMBER = 83749201554
#: Model providers' opaque blobs, made up in their shapes: an Anthropic thinking signature, a
#: redacted_thinking block's data, an OpenAI encrypted reasoning item (a Fernet-style token).
SIGNATURE = (
    "Eq4W7rGDMsuWcBBwl2mIodtKhjvKVAyfy6oRvcrEFWGnPKxGINrqztmxTlVs3uh+ow4c+YvmlrbOSPaHIfjzFeJUZRZd3wK8VLcu"
    "SRie6BgbCoHr3GteHt14rWAiSgmCAqBmoJoh3xIS87kaDbc0lEbe9ZgRsCnLkfWxNyCBc4aJRU9hTN72m9wA2yRcnSjri3sumOSs"
    "67kzFuCeeTvaDKTum43qrTkMfY/d5uRA4OtW7/MDNC"
)
THINKING_DATA = (
    "EmAw1TVjPPbx3FOGHTruTTUrlli1UnG9d2OV+9NQvAB5ClCfV8iFIBPtS9MlUWjaK2qd3foLBg/5fpa7brWpgnYwliD4+AgTxIDZ"
    "hn14294XV6bMcE/2KKGaRKrtWCrVEK/p6WtortZ6lL3H8pGfqTKTe480DnhV+b"
)
ENCRYPTED_REASONING = (
    "gAAAAABjmBweWzRo9yoYESwzrO9nKOFHCk8_jysWDNhJ6z5KtcaaZNjrHtf533SGm8YzuQ2-osMKRSQSyyCCijSiKQK5LtbbxEq8"
    "mwJBP22E7Pg24P1sWkXnSr_vFIBcoNfeGL68tIMLuce03qSlsDM8Jhv5KoJxiPu-fxXpJ7GCZnYTnShFztSKawLqKcZuFcoZblmj"
    "XruC2v6ljCJiFyRKiTNAPmQf-znkUO5zIOcA7_YPno7h3SK9KjONuFY6q4raSA_htv--lnOq0NjNpKG3L0uGbPI"
)

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
    # "signature" is a secret name everywhere but in a thinking block (BENIGN_DOCS)...
    "signature-top-level": ({"signature": SIGNATURE}, [SIGNATURE]),
    "signature-of-a-text-block": ({"type": "text", "text": "done", "signature": PW}, [PW]),
    "signature-header": ({"headers": {"X-Amz-Signature": TOK}}, [TOK]),
    "thinking-under-a-secret-name": ({"api_key": {"type": "redacted_thinking", "data": TOK}}, [TOK]),
    # ... and a provider blob is still scanned as text: a token pasted into one is found.
    "thinking-signature-token": ({"type": "thinking", "thinking": "hm", "signature": GHP}, [GHP]),
    "redacted-thinking-token": ({"type": "redacted_thinking", "data": GHP}, [GHP]),
    "reasoning-token": ({"type": "reasoning", "summary": [], "encrypted_content": GHP}, [GHP]),
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
    # Integrity and encrypted payloads of the model provider, kept for resume (not credentials).
    "thinking-signature": {"type": "thinking", "thinking": "check the parser", "signature": SIGNATURE},
    "redacted-thinking": {"type": "redacted_thinking", "data": THINKING_DATA},
    "reasoning": {"type": "reasoning", "id": "rs_7Qm2", "summary": [], "encrypted_content": ENCRYPTED_REASONING},
}


# -- Imported transcript records -------------------------------------------------------------

_CLAUDE_SESSION = "c41d8e2b-6f0a-4d7c-b3e5-a2f19e8d0c64"


def claude_document(*records: dict[str, Any]) -> object:
    """The session document the Claude Code importer makes of these records (one per line)."""
    lines = []
    for n, record in enumerate(records):
        envelope = {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/dev/webapp",
            "sessionId": _CLAUDE_SESSION,
            "version": "2.0.76",
            "gitBranch": "main",
            "uuid": f"5976d5d1-17a8-407a-b4bc-763fa3e78d{n:02d}",
            "timestamp": f"2026-03-12T18:02:{n:02d}.540Z",
        }
        lines.append(json.dumps(envelope | record))
    data = ("\n".join(lines) + "\n").encode()
    return parse_claude(Path(f"/home/dev/.claude/projects/-home-dev-webapp/{_CLAUDE_SESSION}.jsonl"), data).document


def codex_document(*records: dict[str, Any]) -> object:
    """The session document the Codex importer makes of these rollout records."""
    lines = [json.dumps({"timestamp": f"2026-03-14T10:22:{n:02d}.204Z"} | r) for n, r in enumerate(records)]
    data = ("\n".join(lines) + "\n").encode()
    path = Path(
        "/home/dev/.codex/sessions/2026/03/14/rollout-2026-03-14T10-22-31-019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93.jsonl"
    )
    return parse_codex(path, data).document


def _user(content: object) -> dict[str, Any]:
    return {"type": "user", "message": {"role": "user", "content": content}}


def _tool_use(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "assistant",
        "requestId": "req_011C4krh9qt5ZYK5TnBNyxUD",
        "message": {
            "model": "claude-sonnet-4-5-20250929",
            "id": "msg_01ibZFICo1YFag2P0b6AI3RU",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_012XAj7UgaTilWXRBMs12hlG", "name": name, "input": tool_input}
            ],
            "usage": {"input_tokens": 3, "cache_read_input_tokens": 5210, "output_tokens": 71},
        },
    }


def _tool_result(content: object, **more: Any) -> dict[str, Any]:
    block = {"tool_use_id": "toolu_012XAj7UgaTilWXRBMs12hlG", "type": "tool_result", "content": content}
    return _user([block]) | more


def _codex_item(payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response_item", "payload": payload}


def _codex_call(arguments: dict[str, Any], call_id: str = "call_Qx81") -> dict[str, Any]:
    payload = {"type": "function_call", "name": "shell", "arguments": json.dumps(arguments), "call_id": call_id}
    return _codex_item(payload)


_CODEX_META = {
    "type": "session_meta",
    "payload": {
        "id": "019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93",
        "timestamp": "2026-03-14T10:22:31.198Z",
        "cwd": "/home/dev/ledger",
        "originator": "codex_cli_rs",
        "cli_version": "0.114.0",
        "git": {"branch": "fix/rounding", "repository_url": "git@github.com:example-dev/ledger.git"},
    },
}

#: Transcripts with one secret each, in each kind of record that carries text.
TRANSCRIPT_SECRETS: dict[str, tuple[object, list[str]]] = {
    "claude-prompt": (claude_document(_user(f"Use {GHP} for the API and open the PR")), [GHP]),
    "claude-bash-input": (
        claude_document(_tool_use("Bash", {"command": f"mysql -uroot -p{PW} -e 'select 1'", "description": "ping"})),
        [PW],
    ),
    "claude-edit-input": (
        claude_document(
            _tool_use(
                "Edit",
                {"file_path": "/home/dev/webapp/settings.py", "old_string": "", "new_string": f'API_KEY = "{TOK}"'},
            )
        ),
        [TOK],
    ),
    "claude-mcp-env-pairs": (
        claude_document(_tool_use("mcp__deploy__set_env", {"env": [{"name": "DB_PASSWORD", "value": PW2}]})),
        [PW2],
    ),
    "claude-tool-result-file": (
        claude_document(_tool_result(f"     1\u2192DB_HOST=db\n     2\u2192AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n")),
        [AWS_SECRET],
    ),
    "claude-tool-result-blocks": (
        claude_document(_tool_result([{"type": "text", "text": f"$ gh auth token\n{GHP}\n"}])),
        [GHP],
    ),
    "claude-kept-record": (
        claude_document(
            _user("hi"),
            {
                "type": "system",
                "subtype": "local_command",
                "content": f"<local-command-stdout>password: {PW}</local-command-stdout>",
            },
        ),
        [PW],
    ),
    "claude-snapshot-record": (
        claude_document(
            _user("hi"),
            {"type": "file-history-snapshot", "messageId": "m1", "snapshot": {"env": {"STRIPE_SECRET_KEY": TOK}}},
        ),
        [TOK],
    ),
    "codex-prompt": (
        codex_document(
            _CODEX_META,
            _codex_item(
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {
                            "type": "input_text",
                            "text": f"Repro DB: postgres://ledger:{PW}@staging-db.internal:5432/ledger",
                        }
                    ],
                }
            ),
        ),
        [PW],
    ),
    "codex-shell-argv": (
        codex_document(_codex_call({"command": ARGV["sshpass"], "workdir": "/home/dev/ledger"})),
        [PW],
    ),
    "codex-shell-token-argv": (codex_document(_codex_call({"command": ARGV["gh-with-token"]})), [TOK]),
    "codex-shell-bash-lc": (
        codex_document(_codex_call({"command": ["bash", "-lc", f"GITHUB_TOKEN={GHP} gh pr list"]})),
        [GHP],
    ),
    "codex-output": (
        codex_document(
            _codex_call({"command": ["cat", ".env"]}),
            _codex_item(
                {
                    "type": "function_call_output",
                    "call_id": "call_Qx81",
                    "output": json.dumps(
                        {"output": f"aws_secret_access_key = {AWS_SECRET}\n", "metadata": {"exit_code": 0}}
                    ),
                }
            ),
        ),
        [AWS_SECRET],
    ),
    "codex-kept-event": (
        codex_document(
            _CODEX_META,
            {
                "type": "event_msg",
                "payload": {"type": "exec_command_end", "call_id": "call_Qx81", "stdout": f"token: {TOK}"},
            },
        ),
        [TOK],
    ),
}
SECRET_DOCS |= {f"transcript-{k}": v for k, v in TRANSCRIPT_SECRETS.items()}

#: Transcripts without a secret, in the same shapes: they must come out as the importer made them.
TRANSCRIPT_BENIGN: dict[str, object] = {
    "claude-session": claude_document(
        _user("please rotate the api key and update the password docs"),
        _tool_use("Bash", {"command": "grep -rn password src/ | head", "description": "find the password checks"}),
        _tool_result(
            "src/auth.py:12: def check_password(user, password):\n", toolUseResult={"stdout": "", "stderr": ""}
        ),
        _tool_use(
            "Edit",
            {"file_path": "/home/dev/webapp/auth.py", "old_string": "token_count = 0", "new_string": "token_count = 1"},
        ),
        {
            "type": "file-history-snapshot",
            "messageId": "m1",
            "snapshot": {"trackedFileBackups": {}, "timestamp": "2026-03-12T18:02:11.540Z"},
        },
    ),
    "codex-session": codex_document(
        _CODEX_META,
        {"type": "turn_context", "payload": {"cwd": "/home/dev/ledger", "model": "gpt-5.1-codex", "effort": "medium"}},
        _codex_call({"command": ["git", "commit", "-m", "fix the api key docs"], "workdir": "/home/dev/ledger"}),
        _codex_item(
            {
                "type": "function_call_output",
                "call_id": "call_Qx81",
                "output": "[fix/rounding 4be1c0d] fix the api key docs",
            }
        ),
        _codex_call({"command": ["kubectl", "get", "secrets", "-n", "prod"]}, call_id="call_Qx82"),
        {
            "type": "event_msg",
            "payload": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 5210}}},
        },
    ),
}
TRANSCRIPT_BENIGN |= {
    "claude-thinking": claude_document(
        _user("why does the parser drop the last line?"),
        {
            "type": "assistant",
            "message": {
                "id": "msg_01Thk",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [
                    {"type": "thinking", "thinking": "The loop stops one early.", "signature": SIGNATURE},
                    {"type": "redacted_thinking", "data": THINKING_DATA},
                    {"type": "text", "text": "The loop stops one line early."},
                ],
            },
        },
    ),
    "codex-reasoning": codex_document(
        _CODEX_META,
        _codex_item(
            {
                "type": "reasoning",
                "id": "rs_7Qm2",
                "summary": [{"type": "summary_text", "text": "**Reading the rounding code**"}],
                "content": None,
                "encrypted_content": ENCRYPTED_REASONING,
            }
        ),
    ),
}
BENIGN_DOCS |= {f"transcript-{k}": v for k, v in TRANSCRIPT_BENIGN.items()}


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
    misshapen = [i for i, doc in enumerate(docs) if not same_shape(doc, _clean(san, doc))]
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
    assert same_shape(doc, clean)


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


@pytest.mark.parametrize("name", sorted(TRANSCRIPT_SECRETS))
def test_imported_records_hold_their_secret_until_sanitized(san: Sanitizer, name: str) -> None:
    # The importer stores the secret (so the corpus tests the sanitizer, not the importer),
    # and the stored document loses it, keeping its shape.
    doc, secrets = TRANSCRIPT_SECRETS[name]
    assert all(s in json.dumps(doc) for s in secrets)
    clean = _clean(san, doc)
    assert not any(s in json.dumps(clean) for s in secrets)
    assert same_shape(doc, clean)


@pytest.mark.parametrize("name", ["claude-thinking", "codex-reasoning"])
def test_provider_blobs_of_imported_records_are_kept(san: Sanitizer, name: str) -> None:
    # The signature and encrypted reasoning a resumed session sends back to the API come out
    # of the sanitizer byte for byte (the importer keeps them in the source records).
    doc = TRANSCRIPT_BENIGN[name]
    blobs = [SIGNATURE, THINKING_DATA] if name == "claude-thinking" else [ENCRYPTED_REASONING]
    assert all(json.dumps(b) in json.dumps(doc) for b in blobs)
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    assert clean == doc and counts == {}


@pytest.mark.parametrize("name", ["thinking-signature-token", "redacted-thinking-token", "reasoning-token"])
def test_a_token_in_a_provider_blob_is_found_by_its_own_rule(san: Sanitizer, name: str) -> None:
    doc, _ = SECRET_DOCS[name]
    clean, counts = san.sanitize_tree(cast("JSONValue", doc))
    assert counts and "secret-named-value" not in counts  # the token's rule, not the name's
    assert same_shape(doc, clean)
