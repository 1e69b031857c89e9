"""Fixtures for the sanitizer tests: one sanitizer per prefilter engine, built once.

Every engine-dependent test runs once per installed engine (``hyperscan``,
``ahocorasick``, ``python``).  Setting ``SESSIONSEAL_SANITIZER_ENGINE=python`` restricts
the run to the pure-Python fallback, as a CI job without native wheels would run it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from sessionseal._sanitize import Sanitizer, available_engines

KEY = b"\x01" * 32


def engines() -> list[str]:
    forced = os.environ.get("SESSIONSEAL_SANITIZER_ENGINE")
    return [forced] if forced else list(available_engines())


_CACHE: dict[str, Sanitizer] = {}


def sanitizer_for(engine: str) -> Sanitizer:
    if engine not in _CACHE:
        _CACHE[engine] = Sanitizer(KEY, engine=engine)
    return _CACHE[engine]


@pytest.fixture(params=engines())
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def san(engine: str) -> Sanitizer:
    return sanitizer_for(engine)


@pytest.fixture
def make() -> Callable[..., Sanitizer]:
    """Build a sanitizer with extension arguments (on the default engine)."""

    def build(**kwargs: object) -> Sanitizer:
        return Sanitizer(KEY, **kwargs)  # type: ignore[arg-type]

    return build
