"""Authenticating signed requests at a service: the RFC 9421 check plus a nonce cache in the
store, so a signed request is accepted once, on whichever node it reaches first.

The relay authenticates wallets with it (tag ``kluis-wallet``); agency fetches of grants will
use the same class with their own tag and key lookup. Knows nothing about FastAPI: the shell
turns its request into a ``verifiers.HttpRequest`` first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.store import Schema, Store
from vault import NotPermitted
from verifiers.http_signature import HttpRequest, SignedBy, nonce_expiry, verify_request

NONCE_SCHEMA = Schema(
    "nonce",
    (
        "CREATE TABLE seen_nonce ("
        " keyid TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,"
        " PRIMARY KEY (keyid, nonce));"
        "CREATE INDEX seen_nonce_expires_at ON seen_nonce (expires_at)",
    ),
)

KeyLookup = Callable[[str], Ed25519PublicKey | None]


class ReplayedRequest(NotPermitted):
    code = "httpsig.replayed"
    en = "This signed request was already used. Sign a new request."
    nl = "Dit ondertekende verzoek is al gebruikt. Onderteken een nieuw verzoek."


class Authenticator:
    """Verifies signatures with one tag and spends each nonce exactly once across nodes."""

    def __init__(self, store: Store, *, tag: str, window_seconds: int) -> None:
        self._store = store
        self.tag = tag
        self.window_seconds = window_seconds

    def authenticate(
        self, request: HttpRequest, *, public_key: KeyLookup, now: datetime
    ) -> SignedBy:
        """Who signed ``request``; raises what ``verify_request`` raises, or
        ``ReplayedRequest`` when its nonce was seen before (RFC 9421 §7.2.2).

        The nonce is spent only after the signature verifies, so unsigned floods write
        nothing, and it is spent even if the operation that follows fails: a captured request
        can never be played again later, when the state might let it succeed.
        """
        signed = verify_request(
            request, public_key=public_key, tag=self.tag, now=now,
            window_seconds=self.window_seconds,
        )
        expires = int(nonce_expiry(signed, window_seconds=self.window_seconds).timestamp())
        with self._store.transaction() as tx:
            fresh = tx.execute(
                "INSERT INTO seen_nonce (keyid, nonce, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (keyid, nonce) DO NOTHING RETURNING 1",
                (signed.keyid, signed.nonce, expires),
            )
        if not fresh:
            raise ReplayedRequest("RFC 9421 §7.2.2: nonce already used")
        return signed

    def sweep(self, *, now: datetime) -> int:
        """Forget nonces whose requests are stale by now anyway; return how many."""
        with self._store.transaction() as tx:
            gone = tx.execute(
                "DELETE FROM seen_nonce WHERE expires_at < ? RETURNING 1", (int(now.timestamp()),)
            )
        return len(gone)
