"""The bundle, as docs/spec/bundle-v1.md specifies it: a known-answer vector and its failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from sessionseal._export import open_bundle, seal_bundle
from sessionseal.errors import IntegrityError, UnsupportedVersion, WrongPassphrase

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "bundle-v1.json").read_text())
EXPECT = {
    "integrity failure": IntegrityError,
    "wrong passphrase": WrongPassphrase,
    "unsupported version": UnsupportedVersion,
}


def test_the_vector_seals_byte_exact_and_opens() -> None:
    v = VECTORS
    sealed = seal_bundle(
        [d.encode() for d in v["documents"]],
        v["manifest"],
        v["passphrase"].encode(),
        log2_n=v["log2_n"],
        compress=False,
        _fixed=(
            bytes.fromhex(v["salt"]),
            UUID(v["bundle_id"]),
            bytes.fromhex(v["dek"]),
            iter(bytes.fromhex(n) for n in v["nonces"]),
        ),
    )
    assert sealed.hex() == v["bundle"]
    opened = open_bundle(sealed, v["passphrase"].encode())
    assert opened.manifest == v["manifest"] and [d.decode() for d in opened.documents] == v["documents"]


@pytest.mark.parametrize("case", VECTORS["failures"], ids=[c["name"].replace(" ", "-") for c in VECTORS["failures"]])
def test_failure_vectors(case: dict[str, Any]) -> None:
    with pytest.raises(EXPECT[case["expect"]]):
        open_bundle(bytes.fromhex(case["bundle"]), case.get("passphrase", VECTORS["passphrase"]).encode())
