"""``export --format html`` (docs/reports.md): one self-contained page per session, a directory
with an index page for several, every stored string escaped, and the same plaintext rules as
the other plaintext exports (consent, warning, 0600 files, 0700 directory, audit record)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from sessionseal import Vault, _html, errors
from sessionseal._textsafe import UNSAFE
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SECRET = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
#: What stored text may hold to break out of its place: markup, the close of a fold, attribute
#: breakers, a terminal escape (OSC 52: write the clipboard), a bidi override (Trojan Source).
HOSTILE = (
    '<script>window.__pwned=1</script></details></pre></section><img src=x onerror="window.__pwned=2">'
    '" \' onmouseover=alert(1) x=" \x1b]52;c;AAAA\x07 \x1b[2J \u202eevil\u202c \r lone-cr '
    "<style>body{display:none}</style><a href=javascript:alert(1)>x</a> &amp; <!-- </textarea> -->"
)


class _Tags(HTMLParser):
    """The elements and attributes of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ends: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def _parse(page: bytes) -> _Tags:
    p = _Tags()
    p.feed(page.decode("utf-8"))
    p.close()
    return p


def _hostile_doc(sid: str | None = None, **links: str) -> dict[str, Any]:
    return {
        **({"id": sid} if sid else {}),
        "title": HOSTILE,
        "description": HOSTILE,
        "tags": ["x" + HOSTILE[:40].replace(" ", "")],
        "workspace": "/w/" + HOSTILE,
        "links": links,
        "messages": [
            {"role": '<b>\x1b\u202e"x', "content": f"{HOSTILE} token {SECRET}", "model": HOSTILE},
            {
                "role": "assistant",
                "model": "m1",
                "usage": {"input_tokens": 120, "output_tokens": 30, "cache_read_tokens": 7},
                "cost_usd": 0.25,
                "content": [
                    {"type": "thinking", "text": HOSTILE},
                    {"type": "tool_call", "id": HOSTILE, "name": HOSTILE, "arguments": {"cmd": HOSTILE}},
                ],
            },
            {
                "role": "tool",
                "content": [
                    {"type": "tool_result", "tool_call_id": HOSTILE, "content": HOSTILE, "is_error": True},
                    {"type": HOSTILE, "payload": HOSTILE},
                ],
            },
        ],
    }


def _check_page(page: bytes) -> _Tags:
    """What must hold of every page made from hostile text."""
    text = page.decode("utf-8")
    parsed = _parse(page)
    names = [t for t, _ in parsed.tags]
    # Our one script, our one style, and no element that stored text could have made.
    assert names.count("script") <= 1 and names.count("style") == 1
    for bad in ("img", "a", "textarea", "iframe", "object", "embed", "form", "base", "link"):
        if bad == "a":
            # Our links only: to index.html or to a session's page, by its UUID.
            for tag, attrs in parsed.tags:
                if tag == "a":
                    assert re.fullmatch(r"index\.html|[0-9a-f-]{36}\.html", attrs.get("href") or ""), attrs
            continue
        assert bad not in names, bad
    for tag, attrs in parsed.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        assert set(attrs) <= {
            "class",
            "id",
            "href",
            "title",
            "lang",
            "charset",
            "http-equiv",
            "content",
            "name",
            "type",
            "placeholder",
            "aria-label",
            "hidden",
            "data-search",
        }, (tag, attrs)
    # Every fold is closed where we close it: as many </details> as <details>.
    assert names.count("details") == parsed.ends.count("details")
    # No control or invisible format character reaches the page raw: each is a visible escape.
    assert UNSAFE.search(text.replace("\r\n", "\n")) is None
    assert "\u202e" not in text and "\x1b" not in text
    assert SECRET not in text
    return parsed


def test_text_escapes_markup_quotes_and_hidden_characters() -> None:
    out = _html.text("<b a=\"1\" b='2'>&\x1b[2J\u202e\U000e0041\ud800x")
    assert out.startswith("&lt;b a=&quot;1&quot; b=&#x27;2&#x27;&gt;&amp;")
    assert '<span class="esc" title="hidden character">\\x1b</span>[2J' in out
    assert "\\u202e" in out and "\\U000e0041" in out and "\\ud800" in out
    out.encode("utf-8")  # a lone surrogate never reaches the page


@given(st.text())
def test_text_never_leaves_markup_or_hidden_characters(value: str) -> None:
    out = _html.text(value)
    stripped = re.sub(r'<span class="esc" title="hidden character">[^<]*</span>', "", out)
    assert not set("<>\"'") & set(stripped)
    assert UNSAFE.search(out.replace("\n", "")) is None or "\r\n" in value
    out.encode("utf-8")


def test_placeholders_are_highlighted() -> None:
    out = _html.rich_text("key [REDACTED:github-pat:1a2b3c4d] and <[REDACTED:aws-key]>")
    assert out.count('<mark class="redacted"') == 2
    assert "&lt;<mark" in out and "</mark>&gt;" in out


def test_the_csp_names_the_hash_of_the_one_inline_script() -> None:
    page = _html.render_session(_hostile_doc(str(uuid.uuid4())))
    script = re.search(rb"<script>(.*?)</script>", page, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1)).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in _html.CSP
    assert "default-src 'none'" in _html.CSP


def test_a_hostile_session_renders_escaped(vault: Vault) -> None:
    sid = vault.save(_hostile_doc())
    page = vault.export([sid], format="html", plaintext=True).data or b""
    parsed = _check_page(page)
    text = page.decode()
    # The content is all there, as text.
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;/details&gt;" in text
    assert "[REDACTED:github-pat" in text and '<mark class="redacted"' in text
    # Folds: thinking, the tool call, the tool result (an error), the unknown block.
    details = [a.get("class") for t, a in parsed.tags if t == "details"]
    assert details == ["thinking", "tool-call", "tool-result tool-error", "other"]
    # Figures: tokens and cost summed over the messages.
    assert '<th>input tokens</th><td class="num">120</td>' in text
    assert '<th>cost</th><td class="num">$0.2500</td>' in text


def test_plaintext_needs_consent(vault: Vault) -> None:
    sid = vault.save(_hostile_doc())
    with pytest.raises(errors.InvalidInput, match="plaintext"):
        vault.export([sid], format="html")


def test_several_sessions_make_a_private_directory_with_an_index(vault: Vault, tmp_path: Path) -> None:
    parent = vault.save(_hostile_doc())
    fork = vault.fork(parent)
    cont = vault.fork(parent, continuation=True)
    other = vault.save({"title": "alone", "messages": []})
    out = tmp_path / "site"
    result = vault.export(None, format="html", plaintext=True, out=out)
    assert result.path == str(out) and result.data is None
    assert out.stat().st_mode & 0o777 == 0o700
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["index.html", *(f"{s}.html" for s in (parent, fork, cont, other))])
    assert all((out / n).stat().st_mode & 0o777 == 0o600 for n in names)
    for n in names:
        _check_page((out / n).read_bytes())
    index = (out / "index.html").read_text()
    assert all(f'href="{s}.html"' in index for s in (parent, fork, cont, other))
    assert "(fork)" in index and "(continuation)" in index
    # Links both ways between a session and its fork and continuation.
    parent_page = (out / f"{parent}.html").read_text()
    assert f'href="{fork}.html"' in parent_page and f'href="{cont}.html"' in parent_page
    assert f'href="{parent}.html"' in (out / f"{fork}.html").read_text()
    # A directory is never written over unasked; with --force, files of other names stay.
    with pytest.raises(errors.InvalidInput, match="exists"):
        vault.export(None, format="html", plaintext=True, out=out)
    (out / "notes.txt").write_text("mine")
    vault.export(None, format="html", plaintext=True, out=out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    # A directory others can enter is refused, not written into.
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with pytest.raises(errors.UnsafePermissions):
        vault.export(None, format="html", plaintext=True, out=loose, overwrite=True)
    assert list(loose.iterdir()) == []
    # Nor through a link, nor over a file.
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(errors.UnsafePermissions, match="symlink"):
        vault.export(None, format="html", plaintext=True, out=tmp_path / "link", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.InvalidInput, match="not a directory"):
        vault.export(None, format="html", plaintext=True, out=tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "x"
    # A single page links a parent outside the export as its id, with no link.
    single = (vault.export([fork], format="html", plaintext=True).data or b"").decode()
    assert f'href="{parent}.html"' not in single and str(parent) in single


def test_the_export_is_audited_as_a_plaintext_export(vault: Vault, tmp_path: Path) -> None:
    a = vault.save({"title": "a", "messages": []})
    b = vault.save({"title": "b", "messages": []})
    vault.export([a, b], format="html", plaintext=True, out=tmp_path / "two")
    records, _ = vault.audit_entries()
    rec = [r for r in records if r["action"] == "export"][-1]
    assert rec["detail"] == {"format": "html", "sessions": 2, "plaintext": True, "file": True}
    assert [s["id"] for s in rec["subjects"]] == [str(a), str(b)]
    assert rec["subjects"][0]["file"] == "two"


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_cli_export_html(run: Callable[..., Result], tmp_path: Path) -> None:
    assert run("init").exit_code == 0
    sid = run("save", "-", input=json.dumps(_hostile_doc())).output.strip()
    r = run("export", sid, "--format", "html", "--out", str(tmp_path / "p.html"))
    assert r.exit_code == 8 and "--plaintext" in r.output
    r = run("export", sid, "--format", "html", "--plaintext", "--out", str(tmp_path / "p.html"))
    assert r.exit_code == 0, r.output
    assert "warning: writing html in plaintext" in r.output
    assert (tmp_path / "p.html").stat().st_mode & 0o777 == 0o600
    r = run("export", sid, "--format", "html", "--plaintext", "--out", "-")
    assert r.exit_code == 0 and "<!DOCTYPE html>" in r.output
    r = run("export", "--all", "--format", "html", "--plaintext", "--out", "-")
    assert r.exit_code == 8 and "--out DIR" in r.output
    r = run("export", "--all", "--format", "html", "--plaintext", "--out", str(tmp_path / "d"), "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "index.html").is_file()
