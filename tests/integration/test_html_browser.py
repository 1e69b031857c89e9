"""The three HTML outputs in a real headless Chromium (Debian's package; docs/reports.md): a
session page, an export's index page and the audit report each render (the DOM holds what it
should), log no console error (a CSP violation is one), make no request but for the page
itself, and leave a screenshot in the test artefacts (``$SESSIONSEAL_ARTEFACTS`` or
``.ci/artefacts/``).  Skipped without Chromium unless ``SESSIONSEAL_REQUIRE_BROWSER=1``
(``.ci/run`` sets it and installs the package)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionseal import PassphraseProvider, Vault, audit_report, errors
from tests._infra.browser import Browser, artefacts_dir, browser
from tests.unit.test_html_export import HOSTILE, SECRET

pytestmark = pytest.mark.browser

PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A session with hostile text, its fork and continuation, exported one by one and as a
    directory, and an audit report with a refusal in it."""
    tmp = tmp_path_factory.mktemp("html")
    path = tmp / "vault"
    Vault.init(path, key_provider=PassphraseProvider(PASS, log2_n=14)).close()
    with pytest.raises(errors.WrongPassphrase):
        Vault.open(path, key_provider=PassphraseProvider("wrong")).list()
    with Vault.open(path, key_provider=PassphraseProvider(PASS)) as v:
        sid = v.save(
            {
                "title": "Fix the flaky test " + HOSTILE[:60],
                "tags": ["ci", "flaky"],
                "workspace": "/home/dev/project",
                "messages": [
                    {"role": "user", "content": f"The test fails; my token is {SECRET}. {HOSTILE}"},
                    {
                        "role": "assistant",
                        "model": "claude-sonnet",
                        "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 800},
                        "cost_usd": 0.0123,
                        "content": [
                            {"type": "thinking", "text": "Look at the timing first. " + HOSTILE},
                            {"type": "text", "text": "Let me run it."},
                            {"type": "tool_call", "id": "c1", "name": "bash", "arguments": {"cmd": "pytest -x"}},
                        ],
                    },
                    {
                        "role": "tool",
                        "content": [
                            {"type": "tool_result", "tool_call_id": "c1", "content": HOSTILE, "is_error": True}
                        ],
                    },
                ],
            }
        )
        v.fork(sid)
        v.fork(sid, continuation=True)
        v.export([sid], format="html", plaintext=True, out=tmp / "session.html")
        v.export(None, format="html", plaintext=True, out=tmp / "site")
        audit_report(v, format="html", out=tmp / "report.html")
    return {"session": tmp / "session.html", "index": tmp / "site" / "index.html", "report": tmp / "report.html"}


def _load(chromium: Browser, page: Path, name: str) -> None:
    report = chromium.load(page)
    assert report.console_errors == []
    assert report.extra_requests() == []
    assert chromium.evaluate("window.__pwned === undefined") is True  # no stored script ran
    # The page is taller than the window: the screenshot shows it whole.
    height = chromium.evaluate("Math.min(document.documentElement.scrollHeight, 6000)")
    chromium.call(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
    )
    shot = chromium.screenshot(artefacts_dir() / f"html-{name}.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    chromium.call("Emulation.clearDeviceMetricsOverride")


def _count(chromium: Browser, selector: str) -> int:
    return int(chromium.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))


def test_the_session_page(chromium: Browser, pages: dict[str, Any]) -> None:
    _load(chromium, pages["session"], "session")
    assert _count(chromium, "section.msg") == 3
    assert _count(chromium, "details.thinking") == 1 and _count(chromium, "details.tool-call") == 1
    assert _count(chromium, "details.tool-error") == 1
    assert _count(chromium, "details[open]") == 0  # folded until asked
    assert _count(chromium, "mark.redacted") >= 1 and _count(chromium, "span.esc") >= 1
    assert chromium.evaluate("document.querySelector('h1').textContent").startswith("Fix the flaky test <script>")
    # The search script ran (the CSP let it, by its hash): typing filters and opens folds.
    assert chromium.evaluate("document.getElementById('search').hidden") is False
    chromium.evaluate(
        "(function(){var i=document.querySelector('#search input'); i.value='timing';"
        "i.dispatchEvent(new Event('input')); return 0;})()"
    )
    assert _count(chromium, "section.msg:not([hidden])") == 1 and _count(chromium, "details[open]") == 1


def test_the_index_page(chromium: Browser, pages: dict[str, Any]) -> None:
    _load(chromium, pages["index"], "index")
    assert _count(chromium, "table.sessions tbody tr") == 3
    assert _count(chromium, "table.sessions a[href$='.html']") == 3
    assert "3 sessions" in chromium.evaluate("document.querySelector('h1').textContent")


def test_the_audit_report(chromium: Browser, pages: dict[str, Any]) -> None:
    _load(chromium, pages["report"], "audit-report")
    assert "verifies" in chromium.evaluate("document.getElementById('verification').textContent")
    assert _count(chromium, "svg rect") >= 1  # the activity chart
    assert _count(chromium, "#refusals + table tbody tr") == 1  # the wrong passphrase
    assert _count(chromium, "#egress + table tbody tr") == 2  # the two HTML exports
    assert _count(chromium, "#user-timelines + details") == 1  # one OS user, folded
    assert _count(chromium, "#session-timelines + details") >= 1
