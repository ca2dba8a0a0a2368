"""Everything an agency or an auditor runs: SD-JWT VC issuance and verification, trust lists,
Token Status Lists, receipts, DCQL, Merkle proofs and signed checkpoints.

Imports only from ``vault`` (for the error root); never from ``wallet``, ``cli`` or ``server``.
It never prints, never reads the environment and knows nothing about HTTP.
"""

from verifiers.checkpoint import (
    Checkpoint,
    format_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from verifiers.http_signature import (
    HttpRequest,
    SignedBy,
    format_ed25519_jwk,
    key_thumbprint,
    nonce_expiry,
    parse_ed25519_jwk,
    sign_request,
    verify_request,
)
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
from verifiers.note import (
    Note,
    NoteSignature,
    OpenedNote,
    Signer,
    VerifierKey,
    format_note,
    format_signer_key,
    format_verifier_key,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)
from verifiers.status_array import (
    StatusArray,
    StatusValue,
    decode_lst,
    encode_lst,
    format_status_list,
    parse_status_list,
)
from verifiers.status_token import (
    StatusListToken,
    issue_status_list_token,
    verify_status_list_token,
)
from verifiers.statuslist import StatusList, StatusListChecker

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
    # note (C2SP signed-note)
    "Note",
    "NoteSignature",
    "OpenedNote",
    "Signer",
    "VerifierKey",
    "format_note",
    "format_signer_key",
    "format_verifier_key",
    "open_note",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    # checkpoint (C2SP tlog-checkpoint)
    "Checkpoint",
    "format_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
    "verify_checkpoint",
    # http_signature (RFC 9421 kluis profile, Ed25519)
    "HttpRequest",
    "SignedBy",
    "format_ed25519_jwk",
    "key_thumbprint",
    "nonce_expiry",
    "parse_ed25519_jwk",
    "sign_request",
    "verify_request",
    # Token Status List
    "StatusArray",
    "StatusValue",
    "decode_lst",
    "encode_lst",
    "format_status_list",
    "parse_status_list",
    "StatusListToken",
    "issue_status_list_token",
    "verify_status_list_token",
    "StatusList",
    "StatusListChecker",
]
