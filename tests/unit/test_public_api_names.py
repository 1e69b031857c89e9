"""Every public name reports the public module it is reached by, never a private one (issue 19).

``sessionseal.Checkpoint`` showing as ``sessionseal._checkpoints.Checkpoint`` in a traceback,
a repr or generated docs tells users to import a private module. As httpx does, each name the
package exports says ``sessionseal`` (or ``sessionseal.models`` / ``sessionseal.errors``, the
public modules it also lives in), and that name leads back to the same object.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys

import pytest

import sessionseal
from sessionseal import errors, models

#: Names of ``sessionseal.__all__`` that are also in a public module: they keep its name.
_IN_PUBLIC_MODULE = {name: "sessionseal.models" for name in models.__all__} | {
    name: "sessionseal.errors" for name in errors.__all__
}

PACKAGE_NAMES = [n for n in sessionseal.__all__ if n != "__version__"]


def _named(module: object) -> list[str]:
    """The classes and functions a public module exports (not constants or type aliases)."""
    return [
        n
        for n in module.__all__  # type: ignore[attr-defined]
        if inspect.isclass(getattr(module, n)) or inspect.isfunction(getattr(module, n))
    ]


@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_package_names_report_a_public_module(name: str) -> None:
    obj = getattr(sessionseal, name)
    assert obj.__module__ == _IN_PUBLIC_MODULE.get(name, "sessionseal")


@pytest.mark.parametrize(("module", "name"), [(m, n) for m in (models, errors) for n in _named(m)])
def test_public_module_names_report_their_module(module: object, name: str) -> None:
    obj = getattr(module, name)
    assert obj.__module__ == module.__name__  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_the_reported_name_leads_back_to_the_object(name: str) -> None:
    # What pickle, docs tools and `repr` rely on: module + qualname finds the very object.
    obj = getattr(sessionseal, name)
    assert getattr(importlib.import_module(obj.__module__), obj.__qualname__) is obj
    assert pickle.loads(pickle.dumps(obj)) is obj  # noqa: S301 - our own object


def test_a_fresh_process_sees_public_names_first() -> None:
    # Names are resolved lazily (PEP 562): the first access, in a process that imported nothing
    # else, already reports the public module.
    code = (
        "import sessionseal\n"
        "bad = [n for n in sessionseal.__all__ if n != '__version__'"
        " and getattr(sessionseal, n).__module__.startswith('sessionseal._')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
