"""The issuing agency's OpenID4VCI 1.0 service, without HTTP (specs/openid4vci.md):
credential offers and the token endpoint (``server.credential_offer``), the nonce and
credential endpoints, and status changes. ``server.issuer_app`` is its HTTP face.

Besides the offers and tokens (``server.credential_offer``) and the issued credentials and
status lists (``server.issuer_status``: per credential its index and the offer and
configuration it came from, never its claims), the store keeps each ``c_nonce`` until a proof
uses it (single use) or it expires.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from server.credential_offer import (
    OFFER_SCHEMA,
    CredentialOffers,
    Offer,
    TokenRequest,
    UnknownConfiguration,
    UnknownOffer,
)
from server.issuer_agency import IssuerAgency
from server.issuer_status import STATUS_SCHEMA, StatusLists
from server.store import Schema, Store
from vault import InvalidInput
from verifiers.issuer import issue_sd_jwt
from verifiers.proof import NonceCheck, WrongNonce, verify_proof_jwt

ISSUER_SCHEMA = Schema(
    "issuer",
    (
        "CREATE TABLE issuer_nonce ("
        " issuer TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,"
        " PRIMARY KEY (issuer, nonce));"
        "CREATE INDEX issuer_nonce_expires_at ON issuer_nonce (expires_at)",
    ),
)
SCHEMAS = (OFFER_SCHEMA, ISSUER_SCHEMA, STATUS_SCHEMA)
"""Every table of the issuer service, for ``attach_store``."""

ACTIONS = ("revoke", "suspend", "reinstate")


# --- errors at the credential endpoint (OpenID4VCI 1.0 §8.3.1.2) -------------------------------


class BadCredentialRequest(InvalidInput):
    code = "issuer.bad_credential_request"
    en = "The credential request is not valid JSON with the fields it needs. Check it."
    nl = "Het verzoek om een bewijs is geen geldige JSON met de nodige velden. Controleer het."
    vci_error: ClassVar[str] = "invalid_credential_request"


class EncryptionUnsupported(InvalidInput):
    code = "issuer.encryption_unsupported"
    en = "This issuer does not encrypt credential responses. Send the request without encryption."
    nl = "Deze uitgever versleutelt antwoorden niet. Stuur het verzoek zonder versleuteling."
    vci_error: ClassVar[str] = "invalid_encryption_parameters"


class BadProofs(InvalidInput):
    code = "issuer.bad_proofs"
    en = "The request needs exactly one key proof of type jwt. Let your wallet make one."
    nl = (
        "Het verzoek heeft precies één sleutelbewijs van het type jwt nodig. "
        "Laat uw wallet er een maken."
    )
    vci_error: ClassVar[str] = "invalid_proof"


class BadAction(InvalidInput):
    code = "issuer.bad_action"
    en = "The status change must be revoke, suspend or reinstate."
    nl = "De statuswijziging moet revoke (intrekken), suspend (schorsen) of reinstate zijn."


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerPolicy:
    """Lifetimes (seconds) and limits; the defaults follow OpenID4VCI §13.6 and §13.10."""

    offer_seconds: int = 600
    tx_code_attempts: int = 5
    token_seconds: int = 300  # not sender-constrained, so no longer than 5 minutes (§13.10)
    nonce_seconds: int = 300
    proof_max_age: int = 300
    status_ttl: int = 300
    status_lifetime: int = 3600


@dataclass(frozen=True)
class IssuedCredential:
    """An issued credential as the agency remembers it: where its status lives, never its
    claims."""

    offer_id: str
    configuration: str
    list_id: str
    index: int
    issued_at: datetime


class Issuer:
    """One agency's issuer service over ``store`` (migrated to ``SCHEMAS`` by the caller),
    answering at ``public_url`` (its Credential Issuer Identifier)."""

    def __init__(self, store: Store, agency: IssuerAgency, public_url: str,
                 policy: IssuerPolicy | None = None) -> None:
        self._store = store
        self.agency = agency
        self.public_url = public_url
        self.policy = policy = policy or IssuerPolicy()
        self.offers = CredentialOffers(
            store, agency, public_url, offer_seconds=policy.offer_seconds,
            tx_code_attempts=policy.tx_code_attempts, token_seconds=policy.token_seconds,
        )
        self.status_lists = StatusLists(store, agency, public_url)

    # --- offers and the token endpoint (server.credential_offer) ---------------------------

    def create_offer(self, credentials: Mapping[str, Mapping[str, Any]], *, tx_code: bool = True,
                     now: datetime) -> Offer:
        """See ``CredentialOffers.create``."""
        return self.offers.create(credentials, tx_code=tx_code, now=now)

    def offer_document(self, offer_id: str, *, now: datetime) -> dict[str, Any]:
        """See ``CredentialOffers.document``."""
        return self.offers.document(offer_id, now=now)

    def redeem(self, request: TokenRequest, *, now: datetime) -> dict[str, Any]:
        """See ``CredentialOffers.redeem``."""
        return self.offers.redeem(request, now=now)

    # --- nonce endpoint --------------------------------------------------------------------

    def new_nonce(self, *, now: datetime) -> str:
        """A fresh, unpredictable ``c_nonce`` (OpenID4VCI 1.0 §7.2), valid for one proof."""
        nonce = secrets.token_urlsafe(24)
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO issuer_nonce (issuer, nonce, expires_at) VALUES (?, ?, ?)",
                (self.agency.id, nonce, _seconds(now) + self.policy.nonce_seconds),
            )
        return nonce

    def _nonce_spender(self, now: datetime) -> NonceCheck:
        def spend(nonce: str) -> None:
            with self._store.transaction() as tx:
                gone = tx.execute(
                    "DELETE FROM issuer_nonce WHERE issuer = ? AND nonce = ? AND expires_at > ?"
                    " RETURNING 1", (self.agency.id, nonce, _seconds(now)),
                )
            if not gone:
                raise WrongNonce("OpenID4VCI 1.0 §7: c_nonce unknown, used or expired")

        return spend

    # --- credential endpoint ---------------------------------------------------------------

    def issue(self, authorization: str | None, body: bytes, *, content_type: str | None,
              now: datetime) -> dict[str, Any]:
        """The Credential Response (OpenID4VCI 1.0 §8.3) for the Credential Request (§8.2) in
        ``body``, authorised by the ``Authorization`` header's Bearer token.

        Checks, in order: the access token (``issuer.no_token``, ``issuer.invalid_token``);
        the request (``issuer.bad_credential_request``, ``issuer.encryption_unsupported``,
        ``issuer.unknown_configuration``, ``issuer.not_offered``, ``issuer.already_issued``,
        ``issuer.bad_proofs``); the key proof (every ``proof.*`` error; the ``c_nonce`` is
        spent only by a proof that passes everything else). Then, in one transaction, a
        random status index is taken and the SD-JWT VC is signed, bound to the proof's key.
        """
        code_hash = self.offers.authorize(authorization, now=now)
        configuration_id, proof = parse_credential_request(content_type, body)
        item = self.agency.configuration(configuration_id)
        if item is None:
            raise UnknownConfiguration(f"OpenID4VCI 1.0 §8.2: {configuration_id[:60]!r}")
        with self._store.transaction(readonly=True) as tx:
            self.offers.offered(tx, code_hash, configuration_id)  # refuse before spending the nonce
        holder = verify_proof_jwt(
            proof, audience=self.public_url, nonce=self._nonce_spender(now),
            now=_seconds(now), max_age=self.policy.proof_max_age,
        )
        with self._store.transaction() as tx:
            tx.lock(f"issuer.offer:{code_hash}")
            offer_id, claims = self.offers.offered(tx, code_hash, configuration_id)
            status = self.status_lists.allocate(tx, offer_id=offer_id,
                                                configuration=configuration_id, now=now)
            self.offers.forget_claims_when_done(tx, code_hash, offer_id)
            credential = issue_sd_jwt(
                claims, issuer_key=self.agency.signing_key, iss=self.agency.id, vct=item.vct,
                now=_seconds(now), exp=_seconds(now) + item.lifetime, holder_key=holder,
                disclosable=item.disclosable(), status=status,
            )
        return {"credentials": [{"credential": credential}]}

    # --- status ------------------------------------------------------------------------------

    def issued(self, offer_id: str) -> list[IssuedCredential]:
        """The credentials issued for ``offer_id``, in configuration order of issuance."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT configuration, list_id, idx, issued_at FROM issuer_issued"
                " WHERE issuer = ? AND offer_id = ? ORDER BY issued_at, configuration",
                (self.agency.id, offer_id),
            )
        return [IssuedCredential(offer_id, str(c), str(lst), int(i),
                                 datetime.fromtimestamp(int(at), UTC)) for c, lst, i, at in rows]

    def change_status(self, offer_id: str, configuration_id: str, action: str, *,
                      now: datetime) -> int:
        """Revoke, suspend or reinstate the credential issued for ``offer_id`` and
        ``configuration_id``; return its new status value (Token Status List §7.1).

        Raises ``issuer.unknown_offer``, ``issuer.bad_action`` and the
        ``status.*`` transition errors.
        """
        if action not in ACTIONS:
            raise BadAction(f"kluis: action is one of {', '.join(ACTIONS)}")
        with self._store.transaction() as tx:
            rows = tx.execute(
                "SELECT list_id, idx FROM issuer_issued WHERE issuer = ? AND offer_id = ?"
                " AND configuration = ?", (self.agency.id, offer_id, configuration_id),
            )
            if not rows:
                raise UnknownOffer("kluis: no credential issued for this offer and configuration")
            list_id, index = str(rows[0][0]), int(rows[0][1])
            return self.status_lists.change(tx, list_id, index, action, now=now)

    def status_list_token(self, list_id: str, *, now: datetime) -> str:
        """The current Status List Token of ``list_id``; raises ``issuer.unknown_status_list``."""
        return self.status_lists.token(list_id, now=now, ttl=self.policy.status_ttl,
                                       lifetime=self.policy.status_lifetime)

    # --- housekeeping -----------------------------------------------------------------------

    def sweep(self, *, now: datetime) -> int:
        """Delete expired nonces, tokens and offers that can no longer be used; return how
        many rows went."""
        with self._store.transaction() as tx:
            gone = len(tx.execute(
                "DELETE FROM issuer_nonce WHERE issuer = ? AND expires_at <= ? RETURNING 1",
                (self.agency.id, _seconds(now))))
        return gone + self.offers.sweep(now=now)


def _seconds(now: datetime) -> int:
    return int(now.timestamp())


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def parse_credential_request(content_type: str | None, body: bytes) -> tuple[str, str]:
    """The configuration id and the one ``jwt`` proof of the ``application/json`` Credential
    Request in ``body`` (OpenID4VCI 1.0 §8.2). Unknown members are ignored, as §8.2 says.

    Raises ``issuer.bad_credential_request``, ``issuer.encryption_unsupported`` and
    ``issuer.bad_proofs``.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise BadCredentialRequest("OpenID4VCI 1.0 §8.2: the media type is application/json")
    try:
        request = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadCredentialRequest("RFC 8259: the body is not UTF-8 JSON") from None
    if not isinstance(request, dict):
        raise BadCredentialRequest("OpenID4VCI 1.0 §8.2: the body is a JSON object")
    if "credential_identifier" in request:
        raise BadCredentialRequest("OpenID4VCI 1.0 §8.2: no credential_identifiers were issued")
    if "credential_response_encryption" in request:
        raise EncryptionUnsupported("OpenID4VCI 1.0 §12.2.4: no credential_response_encryption")
    configuration_id = request.get("credential_configuration_id")
    if type(configuration_id) is not str or not configuration_id:
        raise BadCredentialRequest("OpenID4VCI 1.0 §8.2: credential_configuration_id")
    proofs = request.get("proofs")
    if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
        raise BadProofs("OpenID4VCI 1.0 §8.2: proofs holds exactly the proof type 'jwt'")
    jwts = proofs["jwt"]
    if not isinstance(jwts, list) or len(jwts) != 1 or type(jwts[0]) is not str:
        raise BadProofs("OpenID4VCI 1.0 §12.2.4: one proof (no batch_credential_issuance)")
    return configuration_id, jwts[0]
