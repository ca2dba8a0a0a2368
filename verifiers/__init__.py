"""Everything an agency or an auditor runs: SD-JWT VC issuance and verification, trust lists,
Token Status Lists, receipts, DCQL, Merkle proofs and signed checkpoints.

Imports only from ``vault`` (for the error root); never from ``wallet``, ``cli`` or ``server``.
It never prints, never reads the environment and knows nothing about HTTP.
"""

from verifiers.merkle import (
    EMPTY_ROOT,
    HashSource,
    LeafHashSource,
    MerkleTree,
    SubtreeHashSource,
    check_consistency,
    check_inclusion,
    hash_children,
    hash_leaf,
    prove_consistency,
    prove_inclusion,
    root_at,
    root_of,
)

__all__ = [
    # merkle (RFC 9162 §2.1)
    "EMPTY_ROOT",
    "HashSource",
    "LeafHashSource",
    "MerkleTree",
    "SubtreeHashSource",
    "check_consistency",
    "check_inclusion",
    "hash_children",
    "hash_leaf",
    "prove_consistency",
    "prove_inclusion",
    "root_at",
    "root_of",
]
