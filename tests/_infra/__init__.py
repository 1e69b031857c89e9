"""Test infrastructure: a private Secret Service (``keychain``), second OS users (``users``) and a
real S3 server (``s3server``).

Fixtures are exposed to tests through ``tests/conftest.py``; helpers are imported directly,
e.g. ``from tests._infra.keychain import use_bus``.
"""

from __future__ import annotations

import pytest

#: Fixture name -> marker added to every test that uses it (directly or through other fixtures),
#: so ``pytest -m "not keychain"`` / ``-m "not multiuser"`` deselect them.
FIXTURE_MARKERS = {
    "secret_service": "keychain",
    "locked_secret_service": "keychain",
    "prompting_secret_service": "keychain",
    "secret_service_factory": "keychain",
    "xvfb_display": "keychain",
    "os_users": "multiuser",
    "s3_server": "s3",
}


def mark_by_fixture(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used and not item.get_closest_marker(marker):
                item.add_marker(marker)
