"""Encrypted storage of one citizen's data: the SQLCipher vault, key wrapping, recovery,
export/import, and the root of kluis's errors.

The leftmost layer: it imports nothing from ``verifiers``, ``wallet``, ``cli`` or ``server``.
It never prints and never reads the environment for behaviour.
"""

from vault.errors import (
    FAMILIES,
    Conflict,
    InvalidInput,
    KluisError,
    Lang,
    NotFound,
    NotPermitted,
    Unavailable,
    VerificationFailed,
    family_of,
)

__all__ = [
    "FAMILIES",
    "Conflict",
    "InvalidInput",
    "KluisError",
    "Lang",
    "NotFound",
    "NotPermitted",
    "Unavailable",
    "VerificationFailed",
    "family_of",
]
