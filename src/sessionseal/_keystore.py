"""Where the master key lives: the OS keychain (through ``keyring``) or a passphrase key file.

This module is the only importer of ``keyring``.  Its invariants:

* Every keychain call runs in a worker thread bounded by a timeout, so a wedged
  D-Bus daemon or an unanswered unlock prompt can never hang the caller
  (docs/keychain.md; the stock Secret Service backend blocks forever on a GUI prompt
  when a display is reachable).
* When not interactive, the stock Secret Service backend is replaced by a subclass
  that never prompts: a locked collection fails in milliseconds with
  :class:`KeyUnavailable` and a message saying how to unlock it.
* The keychain is read once per process per vault (a hit costs ~16 ms: a new D-Bus
  connection and DH session every call).
* Values stored in the keychain are ``sseal-mk1;<epoch>:<base64 key>[;...]``: more
  than one epoch is present only while a key rotation is in flight (issue #5), so a
  crash between "new state durable" and "old key removed" never loses the vault.
* Fail closed: there is no fallback from the keychain to anything else.  The
  passphrase provider is chosen explicitly at ``init``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar
from uuid import UUID

from .errors import KeyNotFound, KeyStoreError, KeyUnavailable

__all__ = [
    "DEFAULT_TIMEOUT",
    "SERVICE",
    "KeyProvider",
    "KeychainProvider",
    "MasterKeys",
    "decode_keys",
    "encode_keys",
]

#: The keyring service name; the account is the vault id.
SERVICE: Final = "sessionseal"
#: Seconds a keychain call may take when nobody can answer a prompt (issue #2: "within 5 seconds").
DEFAULT_TIMEOUT: Final = 4.0
#: Seconds allowed when a person at a terminal may be answering an unlock prompt.
INTERACTIVE_TIMEOUT: Final = 60.0
_PREFIX: Final = "sseal-mk1"

_T = TypeVar("_T")


@dataclass(frozen=True)
class MasterKeys:
    """Master keys by epoch; the highest epoch is current."""

    keys: dict[int, bytes] = field(default_factory=dict)

    @property
    def current_epoch(self) -> int:
        """The newest epoch."""
        return max(self.keys)

    @property
    def current(self) -> bytes:
        """The newest key."""
        return self.keys[self.current_epoch]

    def __repr__(self) -> str:
        # Never let a key reach a log or a traceback through repr().
        return f"MasterKeys(epochs={sorted(self.keys)})"


def encode_keys(keys: MasterKeys) -> str:
    """Serialize for the keychain."""
    parts = [f"{epoch}:{base64.b64encode(key).decode()}" for epoch, key in sorted(keys.keys.items())]
    return ";".join([_PREFIX, *parts])


def decode_keys(value: str) -> MasterKeys:
    """Parse a keychain value.

    :raises KeyStoreError: the value is not one sessionseal wrote (never echoed).
    """
    parts = value.split(";")
    if parts[0] != _PREFIX or len(parts) < 2:
        raise KeyStoreError("the keychain entry for this vault is not a sessionseal key; it may have been overwritten")
    keys: dict[int, bytes] = {}
    try:
        for part in parts[1:]:
            epoch, _, b64 = part.partition(":")
            key = base64.b64decode(b64, validate=True)
            if len(key) != 32 or int(epoch) < 1:
                raise ValueError
            keys[int(epoch)] = key
    except (ValueError, binascii.Error):
        raise KeyStoreError(
            "the keychain entry for this vault is damaged; restore it from a backup of your keychain"
        ) from None
    return MasterKeys(keys)


class KeyProvider(Protocol):
    """Loads and stores a vault's master keys."""

    #: ``keychain`` or ``passphrase``: recorded in vault.json at init.
    name: str

    def describe(self) -> str:
        """A human description, e.g. ``OS keychain (SecretService)``."""
        ...

    def load(self, vault_id: UUID) -> MasterKeys:
        """Return the vault's keys.  :raises KeyStoreError: and subclasses."""
        ...

    def store(self, vault_id: UUID, keys: MasterKeys) -> None:
        """Replace the vault's keys durably."""
        ...

    def delete(self, vault_id: UUID) -> None:
        """Remove the vault's keys (after this the vault cannot be opened)."""
        ...


def _bounded(fn: Callable[[], _T], timeout: float) -> _T:
    """Run *fn* in a daemon thread and give up after *timeout* seconds.

    A thread, not ``signal.alarm``, so it works off the main thread (asyncio
    executors, agent frameworks).  An abandoned call stays blocked in its daemon
    thread and does not keep the process alive.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="sessionseal-keychain", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise KeyUnavailable(
            f"the OS keychain did not answer within {timeout:g} s (locked, waiting on a prompt, or hung); "
            "unlock it (log in to your desktop, or 'gnome-keyring-daemon --unlock'), "
            "or set SESSIONSEAL_KEYCHAIN_TIMEOUT"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


@functools.cache
def _non_prompting_secret_service() -> type[Any]:
    # Imported and defined lazily: importing a backend subclass registers it with
    # keyring's autodetection, and the D-Bus modules cost start-up time.
    import secretstorage
    from keyring.backends import SecretService
    from keyring.compat import properties
    from keyring.errors import InitError, KeyringLocked
    from secretstorage.exceptions import ItemNotFoundException, SecretStorageException

    class NonPromptingSecretService(SecretService.Keyring):
        """Secret Service that raises instead of showing an unlock or create prompt."""

        @properties.classproperty
        def priority(cls) -> float:
            # Negative: explicit use only, never chosen by keyring's autodetection.
            return -5.0

        def get_preferred_collection(self) -> Any:
            bus = secretstorage.dbus_init()
            try:
                path = getattr(self, "preferred_collection", secretstorage.collection.DEFAULT_COLLECTION)
                collection = secretstorage.Collection(bus, path)
                locked = collection.is_locked()
            except ItemNotFoundException as exc:
                bus.close()
                raise InitError("no default keychain collection (creating one needs a prompt)") from exc
            except SecretStorageException as exc:
                bus.close()
                raise InitError("the Secret Service is not usable") from exc
            if locked:
                bus.close()
                raise KeyringLocked("the keychain collection is locked")
            return collection

        def unlock(self, item: Any) -> None:
            if item.is_locked():
                raise KeyringLocked("the keychain item is locked")

    return NonPromptingSecretService


def _select_backend(interactive: bool) -> Any:
    import keyring
    from keyring.backends import chainer, fail

    backend = keyring.get_keyring()
    candidates = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
    if not candidates or all(isinstance(b, fail.Keyring) for b in candidates):
        raise KeyUnavailable(
            "no OS keychain is available (no Secret Service, macOS Keychain or Windows Credential Locker); "
            "start and unlock one, or create the vault with 'sessionseal init --key-provider passphrase'"
        )
    if interactive:
        return backend
    from keyring.backends import SecretService

    for b in candidates:
        if type(b) is SecretService.Keyring:
            return _non_prompting_secret_service()()
    return backend


def _translate(exc: BaseException, action: str) -> KeyStoreError:
    """Map keyring's errors (and bare RuntimeError of a forced, non-viable backend)."""
    from keyring import errors as kerr

    name = type(exc).__name__
    if isinstance(exc, kerr.KeyringLocked):
        return KeyUnavailable(
            f"the OS keychain is locked, cannot {action}; unlock it (log in to your desktop session, "
            "or run 'gnome-keyring-daemon --unlock' in a terminal) and retry"
        )
    if isinstance(exc, kerr.NoKeyringError | kerr.InitError | RuntimeError):
        return KeyUnavailable(
            f"the OS keychain is not usable ({name}), cannot {action}; start and unlock a Secret Service "
            "(gnome-keyring) or use a passphrase vault ('sessionseal init --key-provider passphrase')"
        )
    if isinstance(exc, kerr.KeyringError):
        return KeyStoreError(f"the OS keychain refused to {action} ({name}); check the keychain and retry")
    return KeyUnavailable(f"the OS keychain failed to {action} ({name}); check that it is running and unlocked")


_cache: dict[UUID, MasterKeys] = {}
_cache_lock = threading.Lock()


class KeychainProvider:
    """Master keys in the OS keychain: service ``sessionseal``, account = vault id.

    :param backend: a keyring backend instance to use instead of autodetection
        (tests pass an in-memory one).
    :param interactive: allow the keychain to show an unlock prompt (only when a
        person is at a terminal); default false.
    :param timeout: seconds per keychain call; default 4 s, or 60 s when interactive,
        overridden by ``SESSIONSEAL_KEYCHAIN_TIMEOUT``.
    """

    name = "keychain"

    def __init__(self, *, backend: Any = None, interactive: bool = False, timeout: float | None = None) -> None:
        self._backend = backend
        self._interactive = interactive
        env = os.environ.get("SESSIONSEAL_KEYCHAIN_TIMEOUT")
        if timeout is None and env:
            try:
                timeout = float(env)
            except ValueError:
                timeout = None
        self._timeout = timeout or (INTERACTIVE_TIMEOUT if interactive else DEFAULT_TIMEOUT)
        self._backend_name: str | None = None

    def _get_backend(self) -> Any:
        if self._backend is None:
            self._backend = _select_backend(self._interactive)
        return self._backend

    def describe(self) -> str:
        """Name the keychain backend in use."""
        if self._backend_name is None:
            try:
                backend = _bounded(self._get_backend, self._timeout)
                self._backend_name = f"OS keychain ({type(backend).__name__})"
            except KeyStoreError:
                self._backend_name = "OS keychain (unavailable)"
        return self._backend_name

    def _call(self, action: str, fn: Callable[[Any], _T]) -> _T:
        def run() -> _T:
            return fn(self._get_backend())

        try:
            return _bounded(run, self._timeout)
        except KeyStoreError:
            raise
        except Exception as exc:
            raise _translate(exc, action) from None

    def load(self, vault_id: UUID) -> MasterKeys:
        """Read the vault's keys once per process.

        :raises KeyNotFound: the keychain has no entry for this vault.
        :raises KeyUnavailable: the keychain is missing, locked or not answering.
        """
        with _cache_lock:
            cached = _cache.get(vault_id)
        if cached is not None:
            return cached
        value = self._call("read the vault key", lambda b: b.get_password(SERVICE, str(vault_id)))
        if value is None:
            raise KeyNotFound(
                f"the OS keychain has no key for vault {vault_id} (service '{SERVICE}'); "
                "restore the keychain entry, or open the vault as the user who created it"
            )
        keys = decode_keys(value)
        with _cache_lock:
            _cache[vault_id] = keys
        return keys

    def reload(self, vault_id: UUID) -> MasterKeys:
        """Drop the cached keys and read them again (another process may have rotated)."""
        with _cache_lock:
            _cache.pop(vault_id, None)
        return self.load(vault_id)

    def store(self, vault_id: UUID, keys: MasterKeys) -> None:
        """Write the vault's keys and read them back (a keychain that drops writes fails here)."""
        value = encode_keys(keys)
        self._call("store the vault key", lambda b: b.set_password(SERVICE, str(vault_id), value))
        back = self._call("read the vault key back", lambda b: b.get_password(SERVICE, str(vault_id)))
        if back != value:
            raise KeyStoreError("the OS keychain did not keep the vault key; check the keychain and retry")
        with _cache_lock:
            _cache[vault_id] = keys

    def delete(self, vault_id: UUID) -> None:
        """Remove the vault's entry (missing entries are fine)."""
        from keyring.errors import PasswordDeleteError

        def run(b: Any) -> None:
            with contextlib.suppress(PasswordDeleteError):
                b.delete_password(SERVICE, str(vault_id))

        self._call("delete the vault key", run)
        with _cache_lock:
            _cache.pop(vault_id, None)


# Shown as sessionseal.X in tracebacks and docs, where the public facade exports it (as httpx does).
KeychainProvider.__module__ = "sessionseal"
