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
* Values stored in the keychain are ``sseal-mk1;<epoch>:<base64 key>[;...][;head=<n>:<mac>]``:
  more than one epoch is present only while a key rotation is in flight (issue #5), so a
  crash between "new state durable" and "old key removed" never loses the vault.  The
  optional ``head`` is the vault's head outside the vault (issue 20): the key table's state
  counter last written here, MAC'd under the current master key (docs/keychain.md, "The
  vault's head").
* Fail closed: there is no fallback from the keychain to anything else.  The
  passphrase provider is chosen explicitly at ``init``.
* Only a real OS keychain is used (issue #18): the backend keyring picks (its
  autodetection, ``PYTHON_KEYRING_BACKEND`` or ``keyringrc.cfg``) must be one of the exact
  classes in :data:`_OS_KEYCHAINS`; anything else (keyrings.alt's plaintext or
  "encrypted" files, the null backend, a third-party class) is refused like no keychain.
  Keys never go to, and are never read from, a file.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import contextlib
import functools
import hmac
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar
from uuid import UUID

from . import _crypto
from .errors import KeyNotFound, KeyStoreError, KeyUnavailable

__all__ = [
    "DEFAULT_TIMEOUT",
    "SERVICE",
    "FileCopy",
    "KeyProvider",
    "KeychainProvider",
    "MasterKeys",
    "backend_name",
    "decode_keys",
    "encode_keys",
    "file_copies",
    "is_os_keychain",
    "read_file_copy",
    "remove_file_copy",
]

#: The keyring service name; the account is the vault id.
SERVICE: Final = "sessionseal"
#: Seconds a keychain call may take when nobody can answer a prompt (issue #2: "within 5 seconds").
DEFAULT_TIMEOUT: Final = 4.0
#: Seconds allowed when a person at a terminal may be answering an unlock prompt.
INTERACTIVE_TIMEOUT: Final = 60.0
_PREFIX: Final = "sseal-mk1"
_HEAD: Final = "head="
_HEAD_LABEL: Final = b"sessionseal v1 keychain head"

_T = TypeVar("_T")


@dataclass(frozen=True)
class MasterKeys:
    """Master keys by epoch; the highest epoch is current."""

    keys: dict[int, bytes] = field(default_factory=dict)
    #: The vault's head in the key store (issue 20): the key table's state counter as of the last
    #: head write, 0 when none was written (a passphrase vault, or an entry an older version wrote).
    head: int = 0

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
        return f"MasterKeys(epochs={sorted(self.keys)}, head={self.head})"


def _head_mac(keys: MasterKeys) -> bytes:
    """The head's MAC, under a key derived from the current master key: an entry whose head was
    edited, or copied from another entry, fails to decode (it names the epoch it is bound to)."""
    mac_key = _crypto.derive_key(keys.current, _HEAD_LABEL)
    return _crypto.hmac_sha256(mac_key, keys.current_epoch.to_bytes(4, "big") + keys.head.to_bytes(8, "big"))


def encode_keys(keys: MasterKeys) -> str:
    """Serialize for the keychain."""
    parts = [f"{epoch}:{base64.b64encode(key).decode()}" for epoch, key in sorted(keys.keys.items())]
    if keys.head:
        parts.append(f"{_HEAD}{keys.head}:{_head_mac(keys).hex()}")
    return ";".join([_PREFIX, *parts])


def decode_keys(value: str) -> MasterKeys:
    """Parse a keychain value.

    :raises KeyStoreError: the value is not one sessionseal wrote (never echoed).
    """
    parts = value.split(";")
    if parts[0] != _PREFIX or len(parts) < 2:
        raise KeyStoreError("the keychain entry for this vault is not a sessionseal key; it may have been overwritten")
    keys: dict[int, bytes] = {}
    head, mac = 0, b""
    try:
        for part in parts[1:]:
            if part.startswith(_HEAD) and not mac:
                counter, _, hex_mac = part[len(_HEAD) :].partition(":")
                if not (counter.isascii() and counter.isdigit() and len(hex_mac) == 64):
                    raise ValueError
                head, mac = int(counter), bytes.fromhex(hex_mac)
                if head < 1:
                    raise ValueError
                continue
            epoch, _, b64 = part.partition(":")
            key = base64.b64decode(b64, validate=True)
            if len(key) != 32 or int(epoch) < 1:
                raise ValueError
            keys[int(epoch)] = key
        out = MasterKeys(keys, head)
        if not keys or (mac and not hmac.compare_digest(mac, _head_mac(out))):
            raise ValueError
    except (ValueError, binascii.Error):
        raise KeyStoreError(
            "the keychain entry for this vault is damaged; restore it from a backup of your keychain"
        ) from None
    return out


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

    NonPromptingSecretService.__qualname__ = "NonPromptingSecretService"
    return NonPromptingSecretService


#: The keyring backends that are OS keychains, as (module, qualified name) of the exact class:
#: a subclass (which any installed package can define, and register with keyring's
#: autodetection) is not one of them.  Our non-prompting Secret Service is checked by identity.
_OS_KEYCHAINS: Final = frozenset(
    {
        ("keyring.backends.SecretService", "Keyring"),  # gnome-keyring, KWallet's Secret Service, KeePassXC
        ("keyring.backends.libsecret", "Keyring"),
        ("keyring.backends.kwallet", "DBusKeyring"),
        ("keyring.backends.kwallet", "DBusKeyringKWallet4"),
        ("keyring.backends.macOS", "Keyring"),
        ("keyring.backends.Windows", "WinVaultKeyring"),
    }
)
_NO_KEYCHAIN: Final = "start and unlock one, or create the vault with 'sessionseal init --key-provider passphrase'"


def backend_name(backend: Any) -> str:
    """The backend's class as ``module.QualifiedName`` (what ``info`` shows); our
    non-prompting subclass is named by the class it keeps the key in."""
    cls = type(backend)
    if cls.__module__ == __name__ and cls.__qualname__ == "NonPromptingSecretService":
        return "keyring.backends.SecretService.Keyring"
    return f"{cls.__module__}.{cls.__qualname__}"


def is_os_keychain(backend: Any) -> bool:
    """Whether *backend* is an instance of exactly one of the OS keychain classes."""
    cls = type(backend)
    if cls.__module__ == __name__:
        try:
            return cls is _non_prompting_secret_service()
        except ImportError:  # pragma: no cover - secretstorage missing: not ours then
            return False
    if (cls.__module__, cls.__qualname__) not in _OS_KEYCHAINS:
        return False
    # The class must be the one its module defines, not another that borrowed its names.
    module = sys.modules.get(cls.__module__)
    return module is not None and getattr(module, cls.__qualname__, None) is cls


def _configured_by() -> str:
    """Where keyring's choice came from, for the refusal message (names, never values)."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return " (named by PYTHON_KEYRING_BACKEND)"
    try:
        from keyring.util import platform_

        if (platform_.config_root() / "keyringrc.cfg").is_file():
            return f" (keyring's config file {platform_.config_root() / 'keyringrc.cfg'} may name it)"
    except Exception:  # noqa: S110 - only a hint
        pass
    return ""


def _select_backend(interactive: bool) -> Any:
    """The OS keychain to use, from keyring's choice; refuse anything that is not one.

    keyring's ``ChainerBackend`` (its choice when several backends are viable) reads from
    every backend in turn and writes to the first that accepts: through it a key could be
    read from a plaintext file further down the chain.  So the first OS keychain in its
    order is used directly, and the other backends are never read nor written.
    """
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    candidates = list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    chosen = next((b for b in candidates if is_os_keychain(b)), None)
    if chosen is None:
        others = [b for b in candidates if not isinstance(b, fail.Keyring | null.Keyring)]
        if not others:
            raise KeyUnavailable(
                "no OS keychain is available (no Secret Service, macOS Keychain or Windows Credential Locker); "
                + _NO_KEYCHAIN
            )
        refusal = KeyUnavailable(
            f"no OS keychain is available: keyring offers {backend_name(others[0])}{_configured_by()}, "
            "which is not an OS keychain (sessionseal keeps master keys only in the Secret Service, KWallet, "
            "the macOS Keychain or the Windows Credential Locker, never in a file); " + _NO_KEYCHAIN
        )
        refusal.refused_backend = backend_name(others[0])  # type: ignore[attr-defined]
        raise refusal
    if interactive:
        return chosen
    from keyring.backends import SecretService

    if type(chosen) is SecretService.Keyring:
        return _non_prompting_secret_service()()
    return chosen


# -- copies of a key outside the keychain ------------------------------------------------------

#: keyrings.alt's file backends (its "usual advice" for "No recommended backend"): the file
#: each keeps in keyring's data directory.  PlaintextKeyring holds the value base64-encoded.
_FILE_BACKENDS: Final = (
    ("keyrings.alt.file.PlaintextKeyring", "keyring_pass.cfg"),
    ("keyrings.alt.file.EncryptedKeyring", "crypted_pass.cfg"),
)
_MAX_KEYRING_FILE: Final = 16 << 20


def _ini_escape(value: str) -> str:
    # keyrings.alt.escape.escape: every byte but ASCII letters and digits as _XX.
    legal = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(chr(c) if c in legal else f"_{c:02X}" for c in value.encode())


@dataclass(frozen=True)
class FileCopy:
    """An entry for a vault in one of keyrings.alt's files (found without decrypting anything)."""

    backend: str  #: the keyrings.alt class that writes this file
    path: Path

    @property
    def plaintext(self) -> bool:
        return self.backend.endswith("PlaintextKeyring")


def _keyring_files() -> list[tuple[str, Path]]:
    """Where keyrings.alt's file backends keep their files: keyring's data directory, and the
    ``file_path`` of any such backend keyring would offer (a property can move it)."""
    found: list[tuple[str, Path]] = []
    try:
        from keyring.util import platform_

        root = Path(platform_.data_root())
        found = [(cls, root / name) for cls, name in _FILE_BACKENDS]
    except Exception:  # noqa: S110 - no data directory: nothing to look at there
        pass
    try:
        from keyring import backend as kb
        from keyrings.alt.file_base import FileBacked

        for b in kb.get_all_keyring():
            if isinstance(b, FileBacked):
                found.append((backend_name(b), Path(b.file_path)))
    except Exception:  # noqa: S110 - keyrings.alt not installed (its files may still be there)
        pass
    unique: dict[Path, str] = {}
    for cls, path in found:
        unique.setdefault(path, cls)
    return [(cls, path) for path, cls in unique.items()]


def _read_ini(path: Path) -> configparser.RawConfigParser | None:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEYRING_FILE)
        config = configparser.RawConfigParser()
        config.read_string(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    return config


def file_copies(vault_id: UUID) -> list[FileCopy]:
    """keyrings.alt files holding an entry for *vault_id* (service ``sessionseal``).

    Only looks: nothing is decrypted (EncryptedKeyring would prompt) and nothing is read as
    a key.  Such an entry is a copy of the master key outside any OS keychain, written by an
    older sessionseal when keyring offered a file backend (issue #18).
    """
    section, option = _ini_escape(SERVICE), _ini_escape(str(vault_id))
    out = []
    for cls, path in _keyring_files():
        config = _read_ini(path)
        if config is not None and config.has_option(section, option):
            out.append(FileCopy(cls, path))
    return out


def read_file_copy(copy: FileCopy, vault_id: UUID) -> MasterKeys:
    """The keys of a plaintext keyrings.alt file entry (only ever asked for explicitly:
    ``sessionseal rekey --from-keyring-file``).

    :raises KeyStoreError: the entry is gone, not sessionseal's, or in an encrypted file.
    """
    if not copy.plaintext:
        raise KeyStoreError(
            f"{copy.path} is keyrings.alt's encrypted file; sessionseal reads only its plaintext file. "
            f"Copy the entry into the OS keychain with keyring's own tool (service '{SERVICE}', "
            f"account {vault_id}), then run 'sessionseal rekey --from-keyring-file' to rotate the key "
            "and remove the file's copy"
        )
    config = _read_ini(copy.path)
    try:
        if config is None:
            raise KeyError
        value = base64.b64decode(config.get(_ini_escape(SERVICE), _ini_escape(str(vault_id))))
        return decode_keys(value.decode("utf-8"))
    except (KeyError, configparser.Error, binascii.Error, UnicodeDecodeError):
        raise KeyStoreError(f"{copy.path} no longer holds a readable key for vault {vault_id}") from None


def remove_file_copy(copy: FileCopy, vault_id: UUID) -> bool:
    """Remove the vault's entry from a keyrings.alt file, rewriting it atomically (0600).

    The caller has already rotated the master key: the entry opens no current key table.
    Other entries of the file are kept as they are.  Returns whether an entry was removed.
    """
    config = _read_ini(copy.path)
    section, option = _ini_escape(SERVICE), _ini_escape(str(vault_id))
    if config is None or not config.has_section(section) or not config.remove_option(section, option):
        return False
    if not config.options(section):
        config.remove_section(section)
    tmp = copy.path.with_name(f".{copy.path.name}.sessionseal-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            config.write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, copy.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dirfd = os.open(copy.path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    return True


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


def _in_a_file(copies: list[FileCopy]) -> str:
    return (
        f"Its key is in {copies[0].path} ({copies[0].backend}), a file, not an OS keychain, where an older "
        "sessionseal put it; sessionseal no longer reads keys from files: with an OS keychain running, "
        "'sessionseal rekey --from-keyring-file' moves the key into it, rotates it and removes the file's copy "
        "(docs/keychain.md)"
    )


_cache: dict[UUID, MasterKeys] = {}
_cache_lock = threading.Lock()


class KeychainProvider:
    """Master keys in the OS keychain: service ``sessionseal``, account = vault id.

    Only a real OS keychain is used: keyring's choice must be the Secret Service, libsecret,
    KWallet, the macOS Keychain or the Windows Credential Locker (exact classes); anything
    else, a keyrings.alt file above all, is refused with :class:`KeyUnavailable`.

    :param backend: a keyring backend instance to use instead of keyring's choice.  It is
        the program's explicit choice and is not checked against the OS keychains (as any
        :class:`KeyProvider` a program writes is not): tests pass an in-memory one.  Do not
        pass ``keyring.get_keyring()``: that is keyring's choice, unchecked; leave the
        default instead.
    :param interactive: allow the keychain to show an unlock prompt (only when a
        person is at a terminal); default false.
    :param timeout: seconds per keychain call; default 4 s, or 60 s when interactive,
        overridden by ``SESSIONSEAL_KEYCHAIN_TIMEOUT``.
    """

    name = "keychain"
    #: The key store is outside the vault: it keeps the vault's head (issue 20).
    keeps_head = True

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

    @property
    def backend_class(self) -> str | None:
        """The keyring backend class in use (``module.Class``), or None when there is none."""
        try:
            return backend_name(_bounded(self._get_backend, self._timeout))
        except KeyStoreError:
            return None

    def describe(self) -> str:
        """Name the keychain backend in use."""
        if self._backend_name is None:
            try:
                backend = _bounded(self._get_backend, self._timeout)
                extra = ", no prompts" if type(backend).__module__ == __name__ else ""
                self._backend_name = f"OS keychain ({backend_name(backend)}{extra})"
            except KeyStoreError as exc:
                refused = getattr(exc, "refused_backend", None)
                why = f": {refused} is not an OS keychain" if refused else ""
                self._backend_name = f"OS keychain (unavailable{why})"
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
        try:
            value = self._call("read the vault key", lambda b: b.get_password(SERVICE, str(vault_id)))
        except KeyStoreError as exc:
            copies = file_copies(vault_id)
            if copies:
                raise type(exc)(f"{exc}. {_in_a_file(copies)}") from None
            raise
        if value is None:
            copies = file_copies(vault_id)
            if copies:
                raise KeyNotFound(f"the OS keychain has no key for vault {vault_id}. {_in_a_file(copies)}")
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
for _cls in (KeyProvider, KeychainProvider):
    _cls.__module__ = "sessionseal"
