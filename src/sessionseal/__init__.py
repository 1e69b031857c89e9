"""sessionseal: an encrypted, sanitized vault for the sessions of AI agents and CLI tools.

The public surface is this module's ``__all__`` plus :mod:`sessionseal.errors` and
:mod:`sessionseal.models`.  Everything in an underscore module is private.

The names are imported on first use (PEP 562), so ``sessionseal sanitize`` and other
commands that need no vault do not pay for pydantic, asyncio and the storage layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._async import AsyncVault
    from ._audit_report import audit_report
    from ._checkpoints import Checkpoint
    from ._device_list import DeviceListing, list_devices
    from ._harden import harden_process
    from ._keystore import KeychainProvider, KeyProvider
    from ._passphrase import PassphraseProvider
    from ._query import ListQuery
    from ._recorder import AsyncRecorder, Recorder
    from ._recovery import import_recovery_kit
    from ._resume import ResumeResult, cleanup_resumes, resume_session
    from ._retention import CleanupPlan, Decision, RetentionConfig
    from ._transcript_dirs import find_transcripts
    from ._usage import UsageBy, UsageQuery, UsageReport, UsageRow
    from ._vault import (
        CleanupResult,
        ConfigAccepted,
        ExportResult,
        FormatStatus,
        HeadStatus,
        ImportResult,
        SearchHit,
        SearchHits,
        TranscriptOutcome,
        Vault,
        VaultInfo,
        VaultStats,
    )
    from ._verify import VerifyProblem, VerifyResult
    from .errors import SessionSealError
    from .models import Message, Session, SessionStatus, SessionSummary

__version__ = "0.1.0"

__all__ = [
    "AsyncRecorder",
    "AsyncVault",
    "Checkpoint",
    "CleanupPlan",
    "CleanupResult",
    "ConfigAccepted",
    "Decision",
    "DeviceListing",
    "ExportResult",
    "FormatStatus",
    "HeadStatus",
    "ImportResult",
    "KeyProvider",
    "KeychainProvider",
    "ListQuery",
    "Message",
    "PassphraseProvider",
    "Recorder",
    "ResumeResult",
    "RetentionConfig",
    "SearchHit",
    "SearchHits",
    "Session",
    "SessionSealError",
    "SessionStatus",
    "SessionSummary",
    "TranscriptOutcome",
    "UsageBy",
    "UsageQuery",
    "UsageReport",
    "UsageRow",
    "Vault",
    "VaultInfo",
    "VaultStats",
    "VerifyProblem",
    "VerifyResult",
    "__version__",
    "audit_report",
    "cleanup_resumes",
    "find_transcripts",
    "harden_process",
    "import_recovery_kit",
    "list_devices",
    "resume_session",
]

_HOMES = {
    "AsyncRecorder": "._recorder",
    "AsyncVault": "._async",
    "Checkpoint": "._checkpoints",
    "Recorder": "._recorder",
    "CleanupPlan": "._retention",
    "CleanupResult": "._vault",
    "ConfigAccepted": "._vault",
    "Decision": "._retention",
    "RetentionConfig": "._retention",
    "SearchHit": "._vault",
    "SearchHits": "._vault",
    "TranscriptOutcome": "._vault",
    "find_transcripts": "._transcript_dirs",
    "audit_report": "._audit_report",
    "ResumeResult": "._resume",
    "cleanup_resumes": "._resume",
    "resume_session": "._resume",
    "harden_process": "._harden",
    "list_devices": "._device_list",
    "DeviceListing": "._device_list",
    "import_recovery_kit": "._recovery",
    "ExportResult": "._vault",
    "FormatStatus": "._vault",
    "HeadStatus": "._vault",
    "ImportResult": "._vault",
    "VaultStats": "._vault",
    "KeyProvider": "._keystore",
    "KeychainProvider": "._keystore",
    "ListQuery": "._query",
    "UsageBy": "._usage",
    "UsageQuery": "._usage",
    "UsageReport": "._usage",
    "UsageRow": "._usage",
    "PassphraseProvider": "._passphrase",
    "Vault": "._vault",
    "VaultInfo": "._vault",
    "VerifyProblem": "._verify",
    "VerifyResult": "._verify",
    "SessionSealError": ".errors",
    "Message": ".models",
    "Session": ".models",
    "SessionStatus": ".models",
    "SessionSummary": ".models",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sessionseal' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    if home.startswith("._") and (getattr(value, "__module__", None) or "").startswith(__name__ + "._"):
        # Shown as sessionseal.X in tracebacks, reprs and docs, never as a private module (as
        # httpx does for its whole __all__). Most homes set this where the name is defined, so
        # objects reached another way show it too; _vault, _recorder and _verify, being
        # restructured into components (issue 19), rely on this line until they do.
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
