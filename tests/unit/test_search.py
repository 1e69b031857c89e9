"""Full-text search (issue 6): sanitized text only, snippets, filters, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import ListQuery, Vault, errors
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _s(title: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "title": title,
        "messages": [{"role": "user", "content": "hello"}, {"role": "tool", "content": text}],
        **extra,
    }


def test_search_finds_text_in_messages_with_a_snippet(vault: Vault) -> None:
    a = vault.save(_s("alpha", "the flaky test is in test_parser.py line 42, fixed by a retry"))
    vault.save(_s("beta", "nothing to see"))
    hits = vault.search("TEST_PARSER.PY")
    assert [(h.id, h.title) for h in hits] == [(str(a), "alpha")]
    assert hits[0].field == "messages[1].content[0].text" and hits[0].fields == ("tool",)
    assert "test_parser.py line 42" in hits[0].snippet
    # case_sensitive alone is the literal scan it was before the query language (issue 23).
    assert vault.search("TEST_PARSER.PY", case_sensitive=True) == []
    assert [h.id for h in vault.search("test_parser.py", case_sensitive=True)] == [str(a)]


def test_search_covers_titles_and_tags_and_escaped_text(vault: Vault) -> None:
    a = vault.save(_s("Release notes", "x", tags=["deploy-2026"]))
    b = vault.save(_s("q", 'he said "ship it"\nand left'))
    assert [h.id for h in vault.search("release NOTES")] == [str(a)]
    # Tags are list filters, not indexed text; the literal scan still finds them.
    assert vault.search("deploy-2026") == []
    assert [h.field for h in vault.search("deploy-2026", mode="literal")] == ["tags[0]"]
    assert [h.id for h in vault.search('"ship it"\nand')] == [str(b)]


def test_words_of_the_json_structure_do_not_match(vault: Vault) -> None:
    vault.save(_s("t", "plain"))
    assert vault.search("role") == [] and vault.search('"content"') == []


def test_secrets_are_not_searchable_and_the_query_is_not_audited(vault: Vault) -> None:
    vault.save(_s("t", f"export GITHUB_TOKEN={TOKEN}"))
    assert vault.search(TOKEN) == []
    assert [h.title for h in vault.search("REDACTED")] == ["t"]
    records = [r for r in vault.audit_records() if r["action"] == "search"]
    assert records and all(TOKEN not in json.dumps(r) for r in records)
    # Answered by the full-text index; the one hit decrypted for its snippet.
    assert records[-1]["detail"] == {"scanned": 1, "hits": 1, "index": "fts", "stale": 0}


def test_filters_and_limit(vault: Vault) -> None:
    ids = [vault.save(_s(f"s{i}", "common words", tags=["x"] if i % 2 else [])) for i in range(6)]
    assert len(vault.search("common")) == 6
    assert len(vault.search("common", ListQuery(limit=2))) == 2
    assert {h.id for h in vault.search("common", ListQuery(tags=("x",)))} == {str(ids[i]) for i in (1, 3, 5)}
    with pytest.raises(errors.InvalidInput):
        vault.search("")


def test_searching_writes_no_plaintext(vault: Vault, vault_path: Path) -> None:
    phrase = "quokka-marmalade-planted"
    vault.save(_s("t", f"a line with {phrase} in it"))
    assert vault.search(phrase)
    blob = b"".join(p.read_bytes() for p in vault_path.rglob("*") if p.is_file())
    assert phrase.encode() not in blob


def test_cli_search(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    sid = run("save", "-", input=json.dumps(_s("found", "the needle is here"))).output.strip()
    r = run("search", "needle", "--json")
    assert [h["id"] for h in json.loads(r.stdout)["hits"]] == [sid]
    assert "needle is here" in run("search", "needle").output
    assert "No session matches" in run("search", "haystack").output
    assert json.loads(run("search", "needle", "--tag", "other", "--json").stdout)["hits"] == []
