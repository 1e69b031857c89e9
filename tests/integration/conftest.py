"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import SecretService as SecretServiceBackend

from tests._infra.keychain import SecretService


@pytest.fixture
def real_backend(secret_service: SecretService) -> Iterator[None]:
    """Make stock keyring's SecretService backend (on the private, unlocked D-Bus) the global choice."""
    previous = keyring.get_keyring()
    with secret_service.use():
        keyring.set_keyring(SecretServiceBackend.Keyring())  # type: ignore[no-untyped-call]  # unannotated in keyring
        try:
            yield
        finally:
            keyring.set_keyring(previous)
