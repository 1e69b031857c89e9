"""The documents stay true to each other and to the code (issue 19, "drift").

- Every reference to a section of a document, as ``docs/design.md, "Index"``, names a heading
  that exists (a renamed or removed section leaves none dangling).
- The write-ordering rules of docs/design.md are numbered 1, 2, 3... in order, and every
  "rule N" there names one of them.
- The container spec lists every container kind and frame type the code knows, by number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sessionseal._container import FrameType, Kind

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: Where section references are written: the documents, and the code and tests citing them.
SOURCES = sorted(
    [
        *DOCS.rglob("*.md"),
        ROOT / "README.md",
        ROOT / "threat-model.md",
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]
)

#: ``name.md, "Heading"`` or ``name.md, "Heading" and "Other"``, possibly wrapped onto the next
#: line (inside a comment too).
_REF = re.compile(r'([\w/.-]+\.md),\s+"([^"]+)"((?:,?\s+(?:and|or)\s+"[^"]+")*)')
_MORE = re.compile(r'"([^"]+)"')


def _heading_set(doc: Path) -> set[str]:
    return {re.sub(r"\s+", " ", m.group(1)).strip() for m in re.finditer(r"^#+\s+(.+)$", doc.read_text(), re.MULTILINE)}


def _resolve(name: str, source: Path) -> Path | None:
    for base in (ROOT, DOCS, DOCS / "spec", source.parent):
        if (base / name).is_file():
            return base / name
    return None


def _references() -> list[tuple[str, str, str]]:
    found = []
    for source in SOURCES:
        if source == Path(__file__):
            continue
        text = source.read_text(encoding="utf-8")
        for m in _REF.finditer(text):
            names = [m.group(2), *_MORE.findall(m.group(3))]
            for name in names:
                # A reference wrapped in a comment carries the comment's marker and indent.
                heading = re.sub(r"\s*\n\s*(?:#\s*)?", " ", name).strip()
                found.append((str(source.relative_to(ROOT)), m.group(1), heading))
    return found


REFERENCES = _references()


def test_references_are_found() -> None:
    # The pattern finds the references the tree is known to make (a guard against a pattern
    # that silently matches nothing).
    assert ("tests/unit/test_index.py", "docs/design.md", "Index") in REFERENCES
    assert len(REFERENCES) > 20


@pytest.mark.parametrize(("source", "doc", "heading"), REFERENCES)
def test_each_section_reference_names_a_heading(source: str, doc: str, heading: str) -> None:
    path = _resolve(doc, ROOT / source)
    if path is None:
        pytest.skip(f"{doc} is not one of the repository's documents")  # e.g. an export's file name
    headings = _heading_set(path)
    # A heading may be cited by its words without markup or a qualifier ("verify" for
    # "`sessionseal verify`", "Subjects" for "Subjects (format 2)").
    plain = {h.replace("`", "") for h in headings}
    assert any(heading == h or heading in h for h in plain), f"{source}: {doc} has no section {heading!r}"


def _write_ordering() -> str:
    text = (DOCS / "design.md").read_text()
    return text.split("## Write ordering", 1)[1].split("\n## ", 1)[0]


def test_write_ordering_rules_are_numbered_in_order() -> None:
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", _write_ordering(), re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_rule_references_name_a_rule() -> None:
    section = _write_ordering()
    count = len(re.findall(r"^\d+\. ", section, re.MULTILINE))
    cited = [int(n) for n in re.findall(r"\brules?\s+(\d+)", (DOCS / "design.md").read_text())]
    assert cited and all(1 <= n <= count for n in cited)


def _members(cls: type) -> dict[str, int]:
    return {n: v for n, v in vars(cls).items() if n.isupper() and isinstance(v, int)}


def test_container_spec_lists_every_kind_and_frame_type() -> None:
    spec = (DOCS / "spec" / "container-v1.md").read_text()
    layout = spec.split("## Layout", 1)[1].split("\n## ", 1)[0]
    kinds = layout.split("kind ", 1)[1].split("flags", 1)[0]
    for value in _members(Kind).values():
        assert re.search(rf"\b{value} \w", kinds), f"kind {value} is not in the spec's header layout"
    types = layout.split("type ", 1)[1].split("nonce", 1)[0]
    for name, value in _members(FrameType).items():
        assert f"{value} {name}" in types, f"frame type {value} {name} is not in the spec's frame layout"
    assert "reserved" not in types  # every frame type is in use


def _recorded_actions() -> set[str]:
    """The audit actions the code records: ``_audited("x")``, ``_audit("x", ...)`` and the
    like, and ``"action": "x"`` in records built by hand."""
    found: set[str] = set()
    for path in (ROOT / "src" / "sessionseal").rglob("*.py"):
        text = path.read_text()
        found.update(re.findall(r'audit\w*\(\s*"([a-z][a-z.-]*)"', text))
        found.update(re.findall(r'"action":\s*"([a-z][a-z.-]*)"', text))
    return found


def test_audit_spec_lists_every_recorded_action() -> None:
    spec = (DOCS / "spec" / "audit-log.md").read_text()
    row = next(line for line in spec.splitlines() if line.startswith("| `action` |"))
    listed = set(re.findall(r"`([a-z][a-z.-]*)`", row.split("|")[3]))
    recorded = _recorded_actions()
    assert {"save", "append", "checkpoint.create", "audit.torn-tail", "open"} <= recorded  # the pattern works
    assert sorted(recorded - listed) == [], "actions the code records that docs/spec/audit-log.md omits"
    assert sorted(listed - recorded) == [], "actions docs/spec/audit-log.md lists that the code never records"
