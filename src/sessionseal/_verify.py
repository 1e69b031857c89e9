"""Where verify's result types were: they live in :mod:`sessionseal._vault._verify` now (verify is
a component of the vault, docs/design.md "The house"); kept so that old imports still work."""

from ._vault._verify import VerifyProblem, VerifyResult

__all__ = ["VerifyProblem", "VerifyResult"]
