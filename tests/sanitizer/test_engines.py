"""The prefilter engines are interchangeable: same findings on the same text."""

from __future__ import annotations

import pytest

from sessionseal._sanitize import Sanitizer, available_engines
from sessionseal._sanitize._native import build_prefilter, fold
from sessionseal._sanitize._rules import default_catalogue

from .conftest import engines, sanitizer_for

RULES, _ = default_catalogue()
CORPUS = "\n".join(ex for r in RULES for ex in (*r.examples, *r.counterexamples))


def test_python_engine_is_always_available() -> None:
    assert "python" in available_engines()
    assert Sanitizer(engine="python").engine == "python"


def test_all_engines_find_the_same_secrets_in_the_catalogue() -> None:
    results = {e: sanitizer_for(e).find(CORPUS) for e in engines()}
    reference = results[engines()[0]]
    assert len(reference) > len(RULES)
    for engine, found in results.items():
        assert found == reference, engine


@pytest.mark.parametrize("engine", ["hyperscan", "ahocorasick", "python"])
def test_prefilter_reports_keyword_starts_case_insensitively(engine: str) -> None:
    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed")
    pf = build_prefilter(["ghp_", "-----begin"], [], engine)
    hits, _, _ = pf.scan("é GHP_x ... -----BEGIN ghp_")
    assert sorted(hits) == [(0, 2), (0, 23), (1, 12)]


def test_fold_keeps_one_byte_per_character() -> None:
    text = "a😀é\ud800b"
    assert len(fold(text)) == len(text)
