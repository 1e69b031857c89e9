"""The house (docs/design.md) for the transcript parsers: ``_transcripts/`` is a package of one
concern per module that import only downwards, never another module's private names, each
small enough to read; the names the rest of the code imports stay where they were."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sessionseal" / "_transcripts"

#: The modules, lowest first: each may import only those before it (docs/design.md).
ORDER = ["_values", "_document", "_claude", "_codex", "_files", "_removal"]


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text())


def test_every_module_of_the_package_has_its_place() -> None:
    assert sorted(p.stem for p in PACKAGE.glob("_*.py") if p.stem != "__init__") == sorted(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_a_module_imports_only_modules_below_it(name: str) -> None:
    below = set(ORDER[: ORDER.index(name)])
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            modules = [node.module] if node.module else [a.name for a in node.names]
            assert all(m in below for m in modules), (name, modules)


@pytest.mark.parametrize("name", ORDER)
def test_no_private_name_is_imported_from_another_module(name: str) -> None:
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.level >= 1 and node.module:
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, (name, node.module, private)


@pytest.mark.parametrize("name", ["__init__", *ORDER])
def test_a_module_is_small_enough_to_read(name: str) -> None:
    tree = _tree(name)
    assert len((PACKAGE / f"{name}.py").read_text().splitlines()) <= 700
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 80, (name, node.name)


def test_the_names_other_modules_import_are_where_they_were() -> None:
    from sessionseal import _transcripts

    # The vault's importer, find_transcripts, the tests and the benchmark import these from
    # the package itself; which module of it defines them is its own business.
    for name in [*_transcripts.__all__, "CLAUDE", "CODEX", "KEPT_CHANGED", "KEPT_INCOMPLETE", "KEPT_RECENT"]:
        assert getattr(_transcripts, name) is not None, name
    assert {"KEPT_WRITING", "KEPT_WRITERS_UNKNOWN", "KEPT_UNSAFE"} <= set(vars(_transcripts))
