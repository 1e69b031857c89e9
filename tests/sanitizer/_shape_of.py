"""What "structure preserved" means for a sanitized tree, shared by the property tests and
the tree corpus."""

from __future__ import annotations

from sessionseal._sanitize import PLACEHOLDER_RE


def same_shape(before: object, after: object) -> bool:
    """Same entries in the same order, lists of the same length, the same types; a key changes
    only where a secret was redacted in it, and the one change of type is an integer under a
    secret name, which becomes the placeholder."""
    if isinstance(before, dict):
        return (
            isinstance(after, dict)
            and len(after) == len(before)
            and all(
                (ka == kb or PLACEHOLDER_RE.search(ka) is not None) and same_shape(vb, va)
                for (kb, vb), (ka, va) in zip(before.items(), after.items(), strict=True)
            )
        )
    if isinstance(before, list):
        return (
            isinstance(after, list)
            and len(after) == len(before)
            and all(same_shape(b, a) for b, a in zip(before, after, strict=True))
        )
    return type(after) is type(before) or (type(before) is int and after == "[REDACTED:secret-named-value]")
