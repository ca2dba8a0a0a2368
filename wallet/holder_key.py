"""The citizen's holder keys: the keys credentials are bound to (``cnf.jwk``) and that sign
every Key Binding JWT (RFC 9901 §4.3).

A holder key is generated inside the wallet from the crypto library's random source and kept
only in the vault (table ``holderkey_key``, encrypted with the rest of the vault). Only the
public half ever leaves: ``public_jwk`` for an issuer to bind a credential to. ES256 is the
default (HAIP requires it); EdDSA (Ed25519) is available as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from vault import NotFound, Schema, Transaction, Vault
from vault.item import format_time, parse_time
from verifiers.jws import (
    Alg,
    SigningKey,
    VerifyingKey,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_jwk,
    parse_private_jwk,
    thumbprint,
)

_V1 = """
CREATE TABLE holderkey_key (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
    public_jwk TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created TEXT NOT NULL
);
"""

HOLDER_KEY_SCHEMA = Schema("holderkey", (_V1,))
"""The holder keys' table in the vault."""


class NoHolderKey(NotFound):
    code = "holder_key.not_found"
    en = "Your wallet has no key that fits this document. Ask the issuer to bind it to your key."
    nl = (
        "Uw wallet heeft geen sleutel die bij dit document past. Vraag de uitgever het aan uw "
        "sleutel te binden."
    )


@dataclass(frozen=True)
class HolderKey:
    """The public half of one holder key: its ``kid`` (RFC 7638 thumbprint), algorithm,
    public key and when it was made. The private half stays in the vault."""

    kid: str
    alg: Alg
    public: VerifyingKey
    created: datetime

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with its ``kid``, for an issuer's ``cnf.jwk`` (never ``d``)."""
        return format_jwk(self.public)


def _row_key(row: tuple[object, ...]) -> HolderKey:
    kid, alg, public_jwk, created = row[:4]
    public = parse_jwk(json.loads(str(public_jwk)))
    return HolderKey(str(kid), Alg(str(alg)), public, parse_time(str(created)))


def holder_keys(vault: Vault) -> tuple[HolderKey, ...]:
    """Every holder key in the vault, oldest first."""
    rows = vault.reader().query(
        "SELECT kid, alg, public_jwk, created FROM holderkey_key ORDER BY created, kid"
    )
    return tuple(_row_key(row) for row in rows)


def holder_key(vault: Vault, alg: Alg = Alg.ES256, *, now: datetime) -> HolderKey:
    """The newest holder key for ``alg``; made (and stored) first if the vault has none.

    ``now`` is its creation time when it is made.
    """
    with vault.transaction() as tx:
        row = tx.query_one(
            "SELECT kid, alg, public_jwk, created FROM holderkey_key WHERE alg = ?"
            " ORDER BY created DESC, kid LIMIT 1",
            (alg.value,),
        )
        if row is not None:
            return _row_key(row)
        return _create(tx, alg, now)


def _create(tx: Transaction, alg: Alg, now: datetime) -> HolderKey:
    fresh = generate_signing_key(alg)
    kid = thumbprint(fresh.public)
    key = SigningKey(fresh.alg, fresh.key, VerifyingKey(alg, fresh.public.key, kid), kid)
    tx.execute(
        "INSERT INTO holderkey_key (kid, alg, public_jwk, private_jwk, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            kid,
            alg.value,
            json.dumps(format_jwk(key.public)),
            json.dumps(format_private_jwk(key)),
            format_time(now),
        ),
    )
    return HolderKey(kid, alg, key.public, now)


def find_holder_key(vault: Vault, public: VerifyingKey) -> HolderKey:
    """The holder key whose public half is ``public`` (a credential's ``cnf.jwk``).

    Raises ``holder_key.not_found`` when it is none of this wallet's keys.
    """
    kid = thumbprint(public)
    row = vault.reader().query_one(
        "SELECT kid, alg, public_jwk, created FROM holderkey_key WHERE kid = ?", (kid,)
    )
    if row is None:
        raise NoHolderKey("RFC 9901 §4.1.2: 'cnf' names a key this wallet does not hold")
    return _row_key(row)


def signing_key(vault: Vault, public: VerifyingKey) -> SigningKey:
    """The private key matching ``public``, to sign a KB-JWT. Never log or show it.

    Raises ``holder_key.not_found``.
    """
    found = find_holder_key(vault, public)
    row = vault.reader().query_one(
        "SELECT private_jwk FROM holderkey_key WHERE kid = ?", (found.kid,)
    )
    if row is None:  # removed between the two reads
        raise NoHolderKey("the key is no longer in the vault")
    return parse_private_jwk(json.loads(str(row[0])))
