"""The trust list the wallet goes by, kept in the vault.

The citizen sets it once from a signed file and a trust anchor's public key
(``kluis trust set``); after that every credential received and every request evaluated is
checked against it. Only the newest list is kept, with its anchor, so it is re-verified
(signature, expiry) every time it is used. A list with a lower ``sequence`` than the one kept
is refused (``trustlist.rollback``), so nobody can put back a list from before an agency was
struck off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jwcrypto.jwk import JWK

from vault import InvalidInput, NotFound, Schema, Vault
from vault.item import format_time, parse_time
from verifiers.jws import parse_json_object, parse_jws
from verifiers.trustlist import Malformed, TrustAnchor, TrustList, verify_trust_list

_V1 = """
CREATE TABLE trust_list (
    slot INTEGER PRIMARY KEY CHECK (slot = 1),
    token TEXT NOT NULL,
    anchor_name TEXT NOT NULL,
    anchor_jwk TEXT NOT NULL,
    list_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    stored TEXT NOT NULL
);
"""

TRUST_SCHEMA = Schema("trust", (_V1,))
"""The table holding the wallet's one trust list and its anchor."""


class NoTrustList(NotFound):
    code = "trust.no_list"
    en = "Your wallet has no trust list yet. Set one with 'kluis trust set FILE --anchor KEY'."
    nl = (
        "Uw wallet heeft nog geen vertrouwenslijst. Stel er een in met 'kluis trust set "
        "BESTAND --anchor SLEUTEL'."
    )


@dataclass(frozen=True)
class StoredTrustList:
    """The verified list, its signed form, the anchor it was checked against and when it was
    stored. ``token`` is what a log entry names (``trust_list_hash``) and exports."""

    trust_list: TrustList
    token: str
    anchor: TrustAnchor
    stored: datetime


def anchor_name_of(signed: str) -> str:
    """The ``issuer`` the (not yet verified) list names: the default anchor name.

    Only a default: ``verify_trust_list`` still checks the signature with the anchor's key and
    that the name matches. Raises ``trustlist.malformed``.
    """
    try:
        payload = parse_jws(signed.strip(), "trust list").payload
    except InvalidInput:
        raise Malformed("specs/trustlist.md §5: not a compact JWS") from None
    issuer = payload.get("issuer")
    if type(issuer) is not str:
        raise Malformed("specs/trustlist.md §2: 'issuer' is a string")
    return issuer


def set_trust_list(
    vault: Vault, signed: str, anchor: TrustAnchor, *, now: datetime
) -> StoredTrustList:
    """Verify ``signed`` against ``anchor`` at ``now`` and keep it as the wallet's list.

    The list kept before sets the lowest acceptable ``sequence``. Returns what was stored.
    Raises every ``verify_trust_list`` error (``trustlist.rollback`` for an older list).
    """
    signed = signed.strip()
    with vault.transaction() as tx:
        row = tx.query_one("SELECT sequence FROM trust_list WHERE slot = 1")
        floor = None if row is None else int(row[0])
        verified = verify_trust_list(signed, anchor, now=now, min_sequence=floor)
        tx.execute(
            "INSERT INTO trust_list (slot, token, anchor_name, anchor_jwk, list_id, sequence,"
            " stored) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (slot) DO UPDATE SET"
            " token = excluded.token, anchor_name = excluded.anchor_name,"
            " anchor_jwk = excluded.anchor_jwk, list_id = excluded.list_id,"
            " sequence = excluded.sequence, stored = excluded.stored",
            (
                signed,
                anchor.name,
                anchor.key.export_public(),
                verified.list_id,
                verified.sequence,
                format_time(now),
            ),
        )
    return StoredTrustList(verified, signed, anchor, now)


def stored_trust_list(vault: Vault, *, now: datetime) -> StoredTrustList:
    """The wallet's trust list, verified again at ``now`` (signature, expiry).

    Raises ``trust.no_list`` when none is set, and the ``verify_trust_list`` errors
    (``trustlist.expired`` once its ``next_update`` has passed: fetch and set a newer one).
    """
    row = vault.reader().query_one(
        "SELECT token, anchor_name, anchor_jwk, stored FROM trust_list WHERE slot = 1"
    )
    if row is None:
        raise NoTrustList()
    token, name, jwk_text, stored = (str(value) for value in row)
    jwk: dict[str, Any] = parse_json_object(jwk_text.encode(), "anchor key")
    anchor = TrustAnchor.from_jwk(name, JWK(**jwk))
    verified = verify_trust_list(token, anchor, now=now)
    return StoredTrustList(verified, token, anchor, parse_time(stored))


def trust_list(vault: Vault, *, now: datetime) -> TrustList:
    """The wallet's verified trust list at ``now``; raises as :func:`stored_trust_list`."""
    return stored_trust_list(vault, now=now).trust_list


def format_anchor(anchor: TrustAnchor) -> dict[str, Any]:
    """The anchor as JSON (name, kid and public JWK) for ``--json`` output."""
    return {"name": anchor.name, "kid": anchor.kid, "jwk": json.loads(anchor.key.export_public())}
