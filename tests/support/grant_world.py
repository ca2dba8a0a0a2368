"""The consent world with grant keys: the municipality of Utrecht gets an Ed25519 key to sign
its fetches (in ``jwks``) and an X25519 key items are sealed to (``encryption_jwks``), and a
grant request asks for the income statement for six months.

Used by the wallet's grant tests and the end-to-end grant tests over HTTP."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from consent_world import (
    FAST,
    NOW,
    PASSPHRASE,
    UTRECHT,
    Citizen,
    Keys,
    World,
    make_world,
    open_citizen,
    purpose_data,
    request_params,
    stamp,
)

from vault import create_profile
from verifiers.credential_type import INCOME_STATEMENT
from verifiers.jws import Alg, SigningKey, format_jwk, generate_signing_key
from verifiers.sealed_item import EncryptionKey, format_encryption_jwk
from wallet.grant_request import format_grant_element
from wallet.trust import set_trust_list
from wallet.wallet import SCHEMAS

FETCH_KID = "utrecht-grants"
ENCRYPTION_KID = "utrecht-grants-x25519"


@dataclass
class GrantKeys:
    """Utrecht's grant keys (the private halves stay with the agency)."""

    fetch: SigningKey
    encryption: EncryptionKey


class GrantWorld(World):
    """``World`` whose trust list gives Utrecht its grant keys."""

    def __init__(self, keys: Keys, grant_keys: GrantKeys, base: datetime = NOW) -> None:
        super().__init__(keys, base)
        self.grant_keys = grant_keys

    def trust_doc(self, *, sequence: int = 12) -> dict[str, Any]:
        doc = super().trust_doc(sequence=sequence)
        utrecht = next(a for a in doc["agencies"] if a["id"] == UTRECHT)
        utrecht["jwks"]["keys"].append(format_jwk(self.grant_keys.fetch.public))
        utrecht["encryption_jwks"] = {"keys": [
            format_encryption_jwk(self.grant_keys.encryption, kid=ENCRYPTION_KID)]}
        return doc


def make_grant_world(base: datetime = NOW) -> GrantWorld:
    plain = make_world(base)
    return GrantWorld(plain.keys, GrantKeys(generate_signing_key(Alg.EDDSA, kid=FETCH_KID),
                                            EncryptionKey.generate()), base)


def new_grant_citizen(root: Path, world: World, *, now: datetime = NOW) -> Citizen:
    """A new profile at ``root``, opened, with the world's trust list set."""
    create_profile(root, PASSPHRASE, schemas=SCHEMAS, _kdf=FAST)
    opened = open_citizen(root, world)
    set_trust_list(opened.vault, world.signed_trust_list(), world.anchor(), now=now)
    return opened


def grant_request_params(*, valid_until: datetime | None = None, base: datetime = NOW,
                         notice_uri: str | None = None, claims: list[str] | None = None,
                         **changes: Any) -> dict[str, Any]:
    """Utrecht asks to keep reading the income bracket and tax year for six months."""
    until = valid_until or base + timedelta(days=183)
    query = {"credentials": [{
        "id": "income", "format": "dc+sd-jwt", "meta": {"vct_values": [INCOME_STATEMENT]},
        "claims": [{"path": [c]} for c in (claims or ["income_bracket", "tax_year"])],
    }]}
    purpose = purpose_data(expires_at=stamp(base + timedelta(days=1)))
    info = [{"format": "kluis_purpose", "data": copy.deepcopy(purpose)},
            format_grant_element(valid_until=until, fetch_kid=FETCH_KID,
                                 encryption_kid=ENCRYPTION_KID, notice_uri=notice_uri)]
    return request_params(dcql_query=query, verifier_info=info, **changes)
