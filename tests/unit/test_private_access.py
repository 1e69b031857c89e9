"""No module in src/ reaches into another module's private names (issue 19, docs/design.md
"The house"): a private name (one leading underscore) is used only inside the module that
defines it.  Private *modules* (``_container``) are the package's own and may be imported."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sessionseal"
#: The standard library's regex parser, read at start-up to see whether a rule is line-anchored;
#: another Python's internals make the sanitizer search that rule the plain way (_sanitize/_engine.py).
#: os._exit is the documented way to end a process without the interpreter's teardown.
#: A named tuple's _fields and _make are its documented API (the underscore only keeps them
#: apart from field names): the sanitizer's catalogue cache rebuilds rules with them.
ALLOWED = {("re", "_parser"), ("re", "_constants"), ("os", "_exit"), ("Rule", "_fields"), ("Rule", "_make")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _defined_here(tree: ast.Module) -> set[str]:
    """Private names this module defines: functions, classes, names and attributes it assigns,
    and ``__slots__`` entries."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
            names.add(node.value)  # __slots__ and field names given as strings
    return {n for n in names if _private(n)}


def test_no_module_uses_another_modules_private_names() -> None:
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()  # names bound to imported modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                origin = _resolve(path, node)
                for alias in node.names:
                    full = f"{origin}.{alias.name}"
                    if _is_module(full):
                        modules.add(alias.asname or alias.name)
                    elif _private(alias.name) and (origin, alias.name) not in ALLOWED:
                        found.append(f"{path.relative_to(SRC)}:{node.lineno}: from {origin} import {alias.name}")
        own = _defined_here(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr):
                continue
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base in modules:
                if (base, node.attr) not in ALLOWED:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {base}.{node.attr}")
            elif base not in ("self", "cls") and node.attr not in own and (base, node.attr) not in ALLOWED:
                # An object's private attribute that this module never defines: another
                # module's object reached into (``vault._append_ops``).
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "\n".join(found)
