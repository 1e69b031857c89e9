"""The one exception tree of sessionseal.

Every error the library raises on purpose is a :class:`SessionSealError`.  Callers
catch by intent; the CLI maps each class to a one-line message and a distinct exit
code (``docs/cli.md`` lists them)::

    SessionSealError
    ├── VaultError
    │   ├── VaultNotFound            (FileNotFoundError)   exit 10
    │   ├── VaultExists              (FileExistsError)     exit 11
    │   ├── UnsafePermissions        (PermissionError)     exit 6
    │   └── LockTimeout              (TimeoutError)        exit 7
    ├── SessionNotFound              (LookupError)         exit 3
    ├── IntegrityError                                     exit 4
    │   ├── AuditLogTampered  the audit chain does not verify  exit 14
    │   ├── VaultRolledBack   older than the head the keychain keeps  exit 16
    │   ├── ConfigNotRecorded config.sst is not the one the vault recorded  exit 17
    │   └── UnsupportedVersion                             exit 13
    ├── KeyStoreError                                      exit 5
    │   ├── KeyUnavailable   keychain missing, locked or not answering
    │   ├── KeyNotFound      the vault's entry is not in the key store
    │   └── WrongPassphrase                                exit 12
    ├── InvalidInput                 (ValueError)          exit 8
    ├── StorageError                 (OSError)             exit 9
    ├── MissingExtra     an optional part is not installed  exit 18
    └── RemoteError      a remote cannot be reached or refused  exit 19

Messages never contain key material or session content: they name paths, ids,
pids and what to do next.  ``IntegrityError`` is deliberately opaque (like
Fernet's ``InvalidToken``): it does not say which check failed, so it cannot be
used as an oracle.
"""

from __future__ import annotations

__all__ = [
    "AuditLogTampered",
    "ConfigNotRecorded",
    "IntegrityError",
    "InvalidInput",
    "KeyNotFound",
    "KeyStoreError",
    "KeyUnavailable",
    "LockTimeout",
    "MissingExtra",
    "RemoteError",
    "SessionNotFound",
    "SessionSealError",
    "StorageError",
    "UnsafePermissions",
    "UnsupportedVersion",
    "VaultError",
    "VaultExists",
    "VaultNotFound",
    "VaultRolledBack",
    "WrongPassphrase",
]


class SessionSealError(Exception):
    """Base class of every error sessionseal raises on purpose."""

    #: The CLI's exit code for this class (see docs/cli.md).
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[SessionSealError], tuple[str]]:
        # Errors cross process boundaries (asyncio executors, multiprocessing):
        # keep them picklable even when a subclass adds builtin bases.
        return self.__class__, (self.message,)


class VaultError(SessionSealError):
    """Something is wrong with the vault as a whole."""


class VaultNotFound(VaultError, FileNotFoundError):
    """There is no initialized vault at the path."""

    exit_code = 10


class VaultExists(VaultError, FileExistsError):
    """``init`` was asked to create a vault where one already exists."""

    exit_code = 11


class UnsafePermissions(VaultError, PermissionError):
    """A vault path is a symlink, is group/world accessible, or has another owner."""

    exit_code = 6


class LockTimeout(VaultError, TimeoutError):
    """A vault or session lock was not acquired in time."""

    exit_code = 7


class SessionNotFound(SessionSealError, LookupError):
    """No session with that id is in the vault."""

    exit_code = 3


class IntegrityError(SessionSealError):
    """Stored data failed authentication or does not parse.

    One opaque type for every modified byte: a wrong tag, a bad header, a
    truncated frame, a file moved under another id.
    """

    exit_code = 4


class AuditLogTampered(IntegrityError):
    """The audit log's MAC chain does not verify: a record was edited, removed, inserted,
    reordered, or the log was cut short or replaced with an older copy."""

    exit_code = 14


class VaultRolledBack(IntegrityError):
    """The vault's key table is older than the head the OS keychain keeps for it (issue 20): the
    vault, or its key table, was rolled back or restored from a backup.  Writes are refused
    (reads work) until ``sessionseal head accept`` accepts the vault as it is."""

    exit_code = 16


class ConfigNotRecorded(IntegrityError):
    """``config.sst`` is missing, older than, or other than the config the vault recorded (a
    backup restored, a sync tool, an ``rm``): saves, appends, imports and the automatic cleanup
    are refused until ``sessionseal config accept`` records it as it is; reads go on."""

    exit_code = 17


class UnsupportedVersion(IntegrityError):
    """A file was written by a newer format version than this build reads."""

    exit_code = 13


class KeyStoreError(SessionSealError):
    """The master key could not be read or written."""

    exit_code = 5


class KeyUnavailable(KeyStoreError):
    """The OS keychain is missing, locked, or did not answer in time."""


class KeyNotFound(KeyStoreError):
    """The key store answered, but holds no key for this vault."""


class WrongPassphrase(KeyStoreError):
    """The passphrase does not unlock the vault's key file."""

    exit_code = 12


class InvalidInput(SessionSealError, ValueError):
    """Input (a session document, an id, an option) was rejected; nothing was stored."""

    exit_code = 8


class StorageError(SessionSealError, OSError):
    """The file system refused a read or write (disk full, I/O error)."""

    exit_code = 9


class MissingExtra(SessionSealError):
    """An optional part is not installed (an extra of the package, e.g. ``sessionseal[s3]``)."""

    exit_code = 18


class RemoteError(SessionSealError):
    """A remote (an S3-compatible store) cannot be reached, refused the credentials or the
    access, or answered with an error; the message names the operation and the server's error
    code, never a credential (docs/sync.md)."""

    exit_code = 19
