"""Everything an agency or an auditor runs: SD-JWT VC issuance and verification, trust lists,
Token Status Lists, receipts, DCQL, Merkle proofs and signed checkpoints.

Imports only from ``vault`` (for the error root); never from ``wallet``, ``cli`` or ``server``.
It never prints, never reads the environment and knows nothing about HTTP.
"""
