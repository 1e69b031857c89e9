"""sessionseal: an encrypted, sanitized vault for the sessions of AI agents and CLI tools.

The public surface is this module's ``__all__`` plus :mod:`sessionseal.errors` and
:mod:`sessionseal.models`.  Everything in an underscore module is private.
"""

from __future__ import annotations

from ._async import AsyncVault
from ._keystore import KeychainProvider, KeyProvider
from ._passphrase import PassphraseProvider
from ._vault import Vault, VaultInfo
from .errors import SessionSealError
from .models import Message, Session, SessionStatus, SessionSummary

__version__ = "0.1.0"

__all__ = [
    "AsyncVault",
    "KeyProvider",
    "KeychainProvider",
    "Message",
    "PassphraseProvider",
    "Session",
    "SessionSealError",
    "SessionStatus",
    "SessionSummary",
    "Vault",
    "VaultInfo",
    "__version__",
]

# Show the public names as sessionseal.X in tracebacks and docs (as httpx does).
for _name in ("AsyncVault", "KeychainProvider", "PassphraseProvider", "Vault", "VaultInfo"):
    globals()[_name].__module__ = "sessionseal"
del _name
