"""Credential offers with a pre-authorized code, and the token endpoint that redeems them
(OpenID4VCI 1.0 §4, §6): the first half of the issuer service (``server.issuer``).

What is stored, in the server store so any node can answer any step:

- an offer: the SHA-256 of its pre-authorized code (the lookup key), a salted hash of its
  transaction code, the configurations and the claims to issue, failed tries, expiry and
  state (``offered``, ``redeemed``, ``burned``). While an offer waits to be redeemed its
  document (which holds the code) is kept too, to serve it by reference; it goes when the
  code is used, burned or expired. The claims go once every offered credential is issued;
- an access token: only its SHA-256, so a copy of the database lets nobody call the
  credential endpoint, and a lookup by hash compares nothing secret in Python.

A pre-authorized code is single use and short-lived (§4.1.1). Each wrong transaction code
is counted under the offer's lock and committed; the fifth burns the code, so six digits
cannot be guessed (10**6 codes, 5 tries: one chance in 200 000). Whoever burns a code can
only make the agency send a new offer, never obtain a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode

from server.issuer_agency import PRE_AUTHORIZED_GRANT, IssuerAgency
from server.store import Schema, Store, Transaction
from vault import Conflict, InvalidInput, NotFound, NotPermitted
from verifiers.credential_type import validate_claims
from verifiers.issuer import SET_BY_ISSUER, ClaimReserved
from verifiers.jws import b64url_encode

OFFER_SCHEMA = Schema(
    "issuer_offer",
    (
        "CREATE TABLE issuer_offer ("
        " code_hash TEXT PRIMARY KEY, issuer TEXT NOT NULL, offer_id TEXT NOT NULL UNIQUE,"
        " configurations TEXT NOT NULL, claims TEXT, document TEXT, tx_code_hash TEXT,"
        " failures INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,"
        " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
        "CREATE INDEX issuer_offer_expires_at ON issuer_offer (expires_at);"
        "CREATE TABLE issuer_token ("
        " token_hash TEXT PRIMARY KEY, code_hash TEXT NOT NULL, expires_at INTEGER NOT NULL);"
        "CREATE INDEX issuer_token_expires_at ON issuer_token (expires_at)",
    ),
)

TX_CODE_LENGTH = 6
TX_CODE_DESCRIPTION = (
    "Vul de code van 6 cijfers in die u apart van ons kreeg. / "
    "Enter the 6-digit code we sent you separately."
)
MAX_CLAIMS_BYTES = 32 * 1024


# --- errors: the token endpoint's are OAuth 2.0 errors (RFC 6749 §5.2; OpenID4VCI §6.3) ----


class BadTokenRequest(InvalidInput):
    code = "issuer.bad_token_request"
    en = "The token request is not a valid form with a grant type and a code. Check it."
    nl = (
        "Het tokenverzoek is geen geldig formulier met een soort toegang en een code. "
        "Controleer het."
    )
    oauth_error: ClassVar[str] = "invalid_request"


class UnsupportedGrant(InvalidInput):
    code = "issuer.unsupported_grant_type"
    en = "This issuer only accepts a pre-authorized code. Use the code from the offer."
    nl = "Deze uitgever accepteert alleen een vooraf gegeven code. Gebruik de code uit het aanbod."
    oauth_error: ClassVar[str] = "unsupported_grant_type"


class TxCodeMissing(InvalidInput):
    code = "issuer.tx_code_missing"
    en = "This offer needs the code that was sent to you separately. Enter that code."
    nl = "Voor dit aanbod is de code nodig die u apart kreeg. Vul die code in."
    oauth_error: ClassVar[str] = "invalid_request"


class TxCodeUnexpected(InvalidInput):
    code = "issuer.tx_code_unexpected"
    en = "This offer needs no extra code, but one was sent. Try again without it."
    nl = "Voor dit aanbod is geen extra code nodig, maar er is er een gestuurd. Probeer het zonder."
    oauth_error: ClassVar[str] = "invalid_request"


class UnknownCode(NotPermitted):
    code = "issuer.unknown_code"
    en = "This offer is not known to the issuer. Ask the issuer for a new offer."
    nl = "Dit aanbod is niet bekend bij de uitgever. Vraag de uitgever om een nieuw aanbod."
    oauth_error: ClassVar[str] = "invalid_grant"
    http_status: ClassVar[int] = 400


class CodeUsed(Conflict):
    code = "issuer.code_used"
    en = "This offer was already used. Ask the issuer for a new offer if you need one."
    nl = "Dit aanbod is al gebruikt. Vraag de uitgever om een nieuw aanbod als dat nodig is."
    oauth_error: ClassVar[str] = "invalid_grant"
    http_status: ClassVar[int] = 400


class CodeExpired(NotPermitted):
    code = "issuer.code_expired"
    en = "This offer has expired. Ask the issuer for a new offer."
    nl = "Dit aanbod is verlopen. Vraag de uitgever om een nieuw aanbod."
    oauth_error: ClassVar[str] = "invalid_grant"
    http_status: ClassVar[int] = 400


class WrongTxCode(NotPermitted):
    code = "issuer.wrong_tx_code"
    en = "The code is not right. You can try {tries_left} more time(s)."
    nl = "De code klopt niet. U kunt het nog {tries_left} keer proberen."
    oauth_error: ClassVar[str] = "invalid_grant"
    http_status: ClassVar[int] = 400


class CodeBurned(NotPermitted):
    code = "issuer.code_burned"
    en = "The code was entered wrongly too often, so this offer is blocked. Ask for a new offer."
    nl = "De code is te vaak verkeerd ingevuld. Dit aanbod is geblokkeerd. Vraag een nieuw aanbod."
    oauth_error: ClassVar[str] = "invalid_grant"
    http_status: ClassVar[int] = 400


# --- errors at the credential endpoint (RFC 6750 §3.1; OpenID4VCI §8.3.1.2) -----


class NoAccessToken(NotPermitted):
    code = "issuer.no_token"
    en = "The request has no access token. Get one at the token endpoint first."
    nl = "Het verzoek heeft geen toegangstoken. Haal er eerst een op bij het tokenadres."
    http_status: ClassVar[int] = 401
    bearer_error: ClassVar[str] = ""


class InvalidAccessToken(NotPermitted):
    code = "issuer.invalid_token"
    en = "The access token is unknown or expired. Start again with the offer."
    nl = "Het toegangstoken is onbekend of verlopen. Begin opnieuw met het aanbod."
    http_status: ClassVar[int] = 401
    bearer_error: ClassVar[str] = "invalid_token"


class UnknownConfiguration(InvalidInput):
    code = "issuer.unknown_configuration"
    en = "This issuer does not issue that kind of credential. Check the offer."
    nl = "Deze uitgever geeft dat soort bewijs niet uit. Controleer het aanbod."
    vci_error: ClassVar[str] = "unknown_credential_configuration"


class NotOffered(NotPermitted):
    code = "issuer.not_offered"
    en = "This kind of credential was not offered to you with this code."
    nl = "Dit soort bewijs is u met deze code niet aangeboden."
    vci_error: ClassVar[str] = "credential_request_denied"
    http_status: ClassVar[int] = 400


class AlreadyIssued(Conflict):
    code = "issuer.already_issued"
    en = "This credential was already issued for this offer. Look for it in your wallet."
    nl = "Dit bewijs is voor dit aanbod al uitgegeven. Kijk in uw wallet."
    vci_error: ClassVar[str] = "credential_request_denied"
    http_status: ClassVar[int] = 400


class UnknownOffer(NotFound):
    code = "issuer.unknown_offer"
    en = "There is no open offer or issued credential like this. Check the link or ask again."
    nl = (
        "Er is geen open aanbod of uitgegeven bewijs zoals dit. "
        "Controleer de link of vraag opnieuw."
    )


class BadOffer(InvalidInput):
    code = "issuer.bad_offer"
    en = "The offer must name at least one credential, each with its data as a JSON object."
    nl = "Het aanbod moet minstens één bewijs noemen, elk met zijn gegevens als JSON-object."


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A new credential offer: ``uri`` carries it by value, ``reference_uri`` by reference
    (``offer_url`` serves it). Give ``tx_code`` to the citizen by another channel."""

    offer_id: str
    document: dict[str, Any] = field(repr=False)
    uri: str = field(repr=False)
    reference_uri: str
    offer_url: str
    tx_code: str | None = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    code: str = field(repr=False)
    tx_code: str | None = field(repr=False)


def _digest(secret: str) -> str:
    return b64url_encode(hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest())


def _seconds(now: datetime) -> int:
    return int(now.timestamp())


def parse_token_request(content_type: str | None, body: bytes) -> TokenRequest:
    """The Token Request in an ``application/x-www-form-urlencoded`` ``body`` (RFC 6749
    §4.1.3, §3.2; OpenID4VCI 1.0 §6.1). Unknown parameters are ignored; a repeated one is
    refused. Raises ``issuer.bad_token_request`` and ``issuer.unsupported_grant_type``.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadTokenRequest("RFC 6749 §4.1.3: the body is application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body),
                          max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        raise BadTokenRequest("RFC 6749 Appendix B: a form of at most 32 fields") from None
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise BadTokenRequest("RFC 6749 §3.2: parameters are sent at most once")
    form = dict(pairs)
    grant = form.get("grant_type")
    if not grant:
        raise BadTokenRequest("RFC 6749 §4.1.3: grant_type is required")
    if grant != PRE_AUTHORIZED_GRANT:
        raise UnsupportedGrant(f"OpenID4VCI 1.0 §6.1: only {PRE_AUTHORIZED_GRANT}")
    if "authorization_details" in form:
        raise BadTokenRequest("specs/openid4vci.md: authorization_details is not supported")
    code = form.get("pre-authorized_code")
    if not code or len(code) > 512:
        raise BadTokenRequest("OpenID4VCI 1.0 §6.1: pre-authorized_code is required")
    tx_code = form.get("tx_code")
    if tx_code is not None and len(tx_code) > 64:
        raise BadTokenRequest("kluis limit: tx_code of at most 64 characters")
    return TokenRequest(grant, code, tx_code)


class CredentialOffers:
    """One agency's offers and access tokens in ``store`` (migrated to ``OFFER_SCHEMA``)."""

    def __init__(self, store: Store, agency: IssuerAgency, public_url: str, *,
                 offer_seconds: int, tx_code_attempts: int, token_seconds: int) -> None:
        self._store = store
        self.agency = agency
        self.public_url = public_url
        self.offer_seconds = offer_seconds
        self.tx_code_attempts = tx_code_attempts
        self.token_seconds = token_seconds

    def create(self, credentials: Mapping[str, Mapping[str, Any]], *,
                     tx_code: bool = True, now: datetime) -> Offer:
        """An offer of one credential per configuration id in ``credentials``, each with the
        claims given (checked against its type now, so a bad claim never reaches a wallet).

        Raises ``issuer.bad_offer``, ``issuer.unknown_configuration``,
        ``credential_type.invalid_claims`` and ``sdjwt.claim_reserved``.
        """
        if not isinstance(credentials, Mapping) or not credentials:
            raise BadOffer("OpenID4VCI 1.0 §4.1.1: credential_configuration_ids is non-empty")
        for configuration_id, claims in credentials.items():
            item = self.agency.configuration(configuration_id)
            if item is None:
                raise UnknownConfiguration(f"OpenID4VCI 1.0 §4.1.1: {configuration_id[:60]!r}")
            if not isinstance(claims, Mapping):
                raise BadOffer("RFC 7519 §4: claims are a JSON object")
            for name in SET_BY_ISSUER.intersection(claims):
                raise ClaimReserved("SD-JWT VC draft-18 §3.2.2: set by the issuer", name=name)
            validate_claims(item.vct, claims)
        try:
            claims_text = json.dumps(dict(credentials), separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            raise BadOffer("RFC 8259: claims are JSON") from None
        if len(claims_text) > MAX_CLAIMS_BYTES:
            raise BadOffer(f"kluis limit: {MAX_CLAIMS_BYTES} bytes of claims per offer")
        code = secrets.token_urlsafe(32)
        offer_id = secrets.token_urlsafe(24)
        code_hash = _digest(code)
        grant: dict[str, Any] = {"pre-authorized_code": code}
        pin: str | None = None
        if tx_code:
            pin = f"{secrets.randbelow(10**TX_CODE_LENGTH):0{TX_CODE_LENGTH}d}"
            grant["tx_code"] = {"input_mode": "numeric", "length": TX_CODE_LENGTH,
                                "description": TX_CODE_DESCRIPTION}
        document = {
            "credential_issuer": self.public_url,
            "credential_configuration_ids": list(credentials),
            "grants": {PRE_AUTHORIZED_GRANT: grant},
        }
        expires = _seconds(now) + self.offer_seconds
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO issuer_offer (code_hash, issuer, offer_id, configurations, claims,"
                " document, tx_code_hash, state, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'offered', ?, ?)",
                (code_hash, self.agency.id, offer_id, json.dumps(list(credentials)), claims_text,
                 json.dumps(document), _tx_hash(code_hash, pin) if pin else None,
                 _seconds(now), expires),
            )
        offer_url = f"{self.public_url}/offers/{offer_id}"
        return Offer(
            offer_id=offer_id, document=document,
            uri="openid-credential-offer://?" + urlencode(
                {"credential_offer": json.dumps(document, separators=(",", ":"))}, quote_via=quote),
            reference_uri="openid-credential-offer://?" + urlencode(
                {"credential_offer_uri": offer_url}, quote_via=quote),
            offer_url=offer_url, tx_code=pin, expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def document(self, offer_id: str, *, now: datetime) -> dict[str, Any]:
        """The offer behind ``credential_offer_uri`` while its code is unused and fresh
        (OpenID4VCI 1.0 §4.1.3). Raises ``issuer.unknown_offer`` otherwise."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT document FROM issuer_offer WHERE offer_id = ? AND issuer = ?"
                " AND state = 'offered' AND expires_at > ? AND document IS NOT NULL",
                (offer_id, self.agency.id, _seconds(now)),
            )
        if not rows:
            raise UnknownOffer("OpenID4VCI 1.0 §4.1.3: no open offer at this URI")
        document: dict[str, Any] = json.loads(str(rows[0][0]))
        return document

    # --- token endpoint ---------------------------------------------------------------------

    def redeem(self, request: TokenRequest, *, now: datetime) -> dict[str, Any]:
        """The Token Response (RFC 6749 §5.1) for a pre-authorized code and its transaction
        code (OpenID4VCI 1.0 §6). The code is spent here, in one transaction under the offer's
        lock, so two nodes can never both redeem it.

        Raises ``issuer.unknown_code``, ``issuer.code_used``, ``issuer.code_burned``,
        ``issuer.code_expired``, ``issuer.tx_code_missing``, ``issuer.tx_code_unexpected``
        and ``issuer.wrong_tx_code`` (the fifth wrong one burns the code:
        ``issuer.code_burned``).
        """
        code_hash = _digest(request.code)
        token = secrets.token_urlsafe(32)
        failure: Exception | None = None
        with self._store.transaction() as tx:
            tx.lock(f"issuer.offer:{code_hash}")
            rows = tx.execute(
                "SELECT state, expires_at, tx_code_hash, failures FROM issuer_offer"
                " WHERE code_hash = ? AND issuer = ?", (code_hash, self.agency.id),
            )
            if not rows:
                raise UnknownCode("OpenID4VCI 1.0 §6.3: unknown pre-authorized code")
            state, expires_at, tx_hash, failures = rows[0]
            _check_redeemable(str(state), int(expires_at), now)
            if tx_hash is not None and request.tx_code is None:
                raise TxCodeMissing("OpenID4VCI 1.0 §6.3: the offer has a tx_code")
            if tx_hash is None and request.tx_code is not None:
                raise TxCodeUnexpected("OpenID4VCI 1.0 §6.3: the offer has no tx_code")
            if tx_hash is not None and not hmac.compare_digest(
                str(tx_hash), _tx_hash(code_hash, request.tx_code or "")
            ):
                # Count the failure and commit it before refusing: raising inside the
                # transaction would roll the count back.
                failure = self._count_failure(tx, code_hash, int(failures))
            else:
                tx.execute(
                    "UPDATE issuer_offer SET state = 'redeemed', document = NULL"
                    " WHERE code_hash = ?", (code_hash,),
                )
                tx.execute(
                    "INSERT INTO issuer_token (token_hash, code_hash, expires_at)"
                    " VALUES (?, ?, ?)",
                    (_digest(token), code_hash, _seconds(now) + self.token_seconds),
                )
        if failure is not None:
            raise failure
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": self.token_seconds}

    def _count_failure(self, tx: Transaction, code_hash: str, failures: int) -> Exception:
        left = self.tx_code_attempts - failures - 1
        if left > 0:
            tx.execute("UPDATE issuer_offer SET failures = failures + 1 WHERE code_hash = ?",
                       (code_hash,))
            return WrongTxCode("OpenID4VCI 1.0 §6.3: wrong tx_code", tries_left=left)
        tx.execute(
            "UPDATE issuer_offer SET failures = failures + 1, state = 'burned', document = NULL,"
            " claims = NULL WHERE code_hash = ?", (code_hash,),
        )
        return CodeBurned("OpenID4VCI 1.0 §13.6: too many wrong tx_codes")

    def authorize(self, authorization: str | None, *, now: datetime) -> str:
        """The offer (its code hash) a Credential Request's ``Authorization: Bearer`` token
        was issued for. Raises ``issuer.no_token`` and ``issuer.invalid_token`` (unknown or
        expired), both answered 401 (RFC 6750 §3.1)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if not authorization or scheme.lower() != "bearer":
            raise NoAccessToken("RFC 6750 §3.1: send 'Authorization: Bearer <token>'")
        token = token.strip()
        if not token or len(token) > 512:
            raise InvalidAccessToken("RFC 6750 §3.1: a bearer token")
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT t.code_hash FROM issuer_token t JOIN issuer_offer o"
                " ON o.code_hash = t.code_hash WHERE t.token_hash = ? AND o.issuer = ?"
                " AND t.expires_at > ?", (_digest(token), self.agency.id, _seconds(now)),
            )
        if not rows:
            raise InvalidAccessToken("RFC 6750 §3.1: unknown or expired access token")
        return str(rows[0][0])

    def offered(self, tx: Transaction, code_hash: str,
                configuration_id: str) -> tuple[str, dict[str, Any]]:
        """The offer id and the claims to issue for ``configuration_id`` under the offer
        ``code_hash``. Raises ``issuer.not_offered`` and ``issuer.already_issued``."""
        rows = tx.execute(
            "SELECT offer_id, configurations, claims FROM issuer_offer WHERE code_hash = ?",
            (code_hash,),
        )
        if not rows or rows[0][2] is None:
            raise AlreadyIssued("OpenID4VCI 1.0 §8.2: everything offered was issued")
        offer_id, configurations, claims = rows[0]
        if configuration_id not in json.loads(str(configurations)):
            raise NotOffered("OpenID4VCI 1.0 §6.1: the token covers the offered credentials")
        done = tx.execute(
            "SELECT 1 FROM issuer_issued WHERE issuer = ? AND offer_id = ? AND configuration = ?",
            (self.agency.id, offer_id, configuration_id),
        )
        if done:
            raise AlreadyIssued("kluis: one credential per offered configuration")
        return str(offer_id), json.loads(str(claims))[configuration_id]

    def forget_claims_when_done(self, tx: Transaction, code_hash: str, offer_id: str) -> None:
        """Drop the offer's claims once every offered credential is issued: the agency keeps
        no second copy of what it gave the citizen."""
        ((configurations,),) = tx.execute(
            "SELECT configurations FROM issuer_offer WHERE code_hash = ?", (code_hash,))
        ((issued,),) = tx.execute(
            "SELECT count(*) FROM issuer_issued WHERE issuer = ? AND offer_id = ?",
            (self.agency.id, offer_id),
        )
        if int(issued) >= len(json.loads(str(configurations))):
            tx.execute("UPDATE issuer_offer SET claims = NULL WHERE code_hash = ?", (code_hash,))

    def sweep(self, *, now: datetime) -> int:
        """Delete expired tokens, and offers that can no longer be used (unredeemed past
        expiry, or redeemed with no live token); return how many rows went."""
        at = _seconds(now)
        with self._store.transaction() as tx:
            gone = len(tx.execute(
                "DELETE FROM issuer_token WHERE expires_at <= ? AND code_hash IN"
                " (SELECT code_hash FROM issuer_offer WHERE issuer = ?) RETURNING 1",
                (at, self.agency.id)))
            gone += len(tx.execute(
                "DELETE FROM issuer_offer WHERE issuer = ? AND expires_at <= ? AND NOT EXISTS"
                " (SELECT 1 FROM issuer_token t WHERE t.code_hash = issuer_offer.code_hash)"
                " RETURNING 1", (self.agency.id, at)))
        return gone


def _tx_hash(code_hash: str, tx_code: str) -> str:
    # Salted by the code's hash, so equal transaction codes of two offers hash differently.
    return _digest(f"{code_hash}:{tx_code}")


def _check_redeemable(state: str, expires_at: int, now: datetime) -> None:
    if state == "redeemed":
        raise CodeUsed("OpenID4VCI 1.0 §4.1.1: a pre-authorized code is single use")
    if state == "burned":
        raise CodeBurned("OpenID4VCI 1.0 §13.6: too many wrong tx_codes")
    if expires_at <= _seconds(now):
        raise CodeExpired("OpenID4VCI 1.0 §4.1.1: a pre-authorized code is short-lived")
