"""In-memory keyring backend for unit tests (never used by the product).

Negative priority: keyring's autodetection never picks it, and importing it does not
change which backend other code gets (keychain-in-ci facts, pitfall 1).
"""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = -10

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's KeyringBackend.__init__ is unannotated

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("No such password!")
