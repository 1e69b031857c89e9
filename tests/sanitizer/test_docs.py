"""docs/sanitizer.md lists every rule: its table is generated from the catalogue and must be current.

Regenerate with ``SESSIONSEAL_UPDATE_DOCS=1 pytest tests/sanitizer/test_docs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sessionseal._sanitize._rules import default_catalogue, rule_table_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "sanitizer.md"
BEGIN = "<!-- rule table: generated from src/sessionseal/rules/*.toml -->\n"
END = "<!-- end of rule table -->\n"


def test_rule_table_in_docs_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, sep, rest = text.partition(BEGIN)
    assert sep, f"{DOC} lacks the rule table marker"
    _, sep2, tail = rest.partition(END)
    assert sep2, f"{DOC} lacks the end-of-table marker"
    table = rule_table_markdown(default_catalogue()[0])
    if os.environ.get("SESSIONSEAL_UPDATE_DOCS"):
        DOC.write_text(head + BEGIN + table + END + tail, encoding="utf-8")
        return
    assert rest[: len(rest) - len(tail) - len(END)] == table, "run SESSIONSEAL_UPDATE_DOCS=1 pytest " + __file__


def test_every_rule_id_is_mentioned() -> None:
    text = DOC.read_text(encoding="utf-8")
    for rule in default_catalogue()[0]:
        assert f"`{rule.id}`" in text
