"""The verifying agency's OpenID4VP 1.0 service, without HTTP (specs/openid4vp.md): requests
(``server.verifier_request``) and the responses to them. ``server.verifier_app`` is its HTTP
face.

A response (``receive_response``) is found by the ``kid`` of its JWE (or, unencrypted, by its
``state``), decrypted with that request's ephemeral key, matched to the request's ``state``,
and its ``vp_token`` verified (``verifiers.vp_token``: key binding to this request's nonce and
the agency's full client id, issuer keys from the trust list, status over HTTP). One response
per request: a second is refused as a replay. On success the agency signs one receipt per
presentation, appends them to its receipt log (``server.receipt_log``) and keeps the claims it
asked for *and* is registered for, in one transaction; the receipts go back to the wallet.

What a response leaves behind: for an accepted one, per presentation the claims kept, the
presentation's hash and the receipt id (and the receipt in the log); for a refused one, only
its error code and time (``verifier_attempt``). A presentation that fails verification ends
its request (``failed``): the wallet's release is spent, so the agency must ask again. A
failure to reach a status list does not: the wallet may send the same answer again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from jwcrypto.jwk import JWK

from server.receipt_log import RECEIPT_LOG_SCHEMA, ReceiptLog
from server.store import Schema, Store, Transaction
from server.verifier_agency import VerifierAgency, VerifierPurpose
from server.verifier_request import (
    DONE,
    EXPIRED,
    FAILED,
    FETCHED,
    OPEN,
    RECEIVED,
    REFUSED,
    REQUEST_SCHEMA,
    CreatedRequest,
    RequestStatus,
    StoredRequest,
    UnknownPurpose,
    VerifierPolicy,
    VerifierRequests,
    seconds,
)
from vault import Conflict, InvalidInput, KluisError, NotFound, Unavailable, VerificationFailed
from verifiers import log_entry as le
from verifiers.claim_path import ConcretePath, select
from verifiers.dcql import parse_dcql
from verifiers.encrypted_response import open_response, parse_response_key, response_kid
from verifiers.jws import b64url_decode, format_private_jwk
from verifiers.keybinding import KeyBinding
from verifiers.receipt import Receipt, ReceiptPurpose, Retention, issue_receipt
from verifiers.statuslist import Fetch, StatusListChecker
from verifiers.tlog import canonical_json
from verifiers.trustlist import TrustList
from verifiers.verifier import StatusChecker
from verifiers.vp_token import VerifiedPresentation, verify_vp_token
from wallet.request import ResponseMode

RECEIVED_SCHEMA = Schema(
    "verifier",
    (
        "CREATE TABLE verifier_received ("
        " request_id TEXT NOT NULL, position INTEGER NOT NULL, agency TEXT NOT NULL,"
        " query_id TEXT NOT NULL, vct TEXT NOT NULL, issuer TEXT NOT NULL, claims TEXT NOT NULL,"
        " presentation_hash TEXT NOT NULL, receipt_id TEXT NOT NULL,"
        " received_at INTEGER NOT NULL, PRIMARY KEY (request_id, position))",
    ),
)
SCHEMAS = (REQUEST_SCHEMA, RECEIVED_SCHEMA, RECEIPT_LOG_SCHEMA)
"""Every table of the verifier service, for ``attach_store``."""

FORM = "application/x-www-form-urlencoded"
ACCESS_DENIED = "access_denied"
MAX_FORM_FIELDS = 16
_ERROR_CODE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §4.1.2.1 error

log = logging.getLogger("kluis.verifier")
TrustSource = Callable[[datetime], TrustList]
"""The trust list in force at a moment: issuer keys and status-list keys come from it."""


# --- errors at the response endpoint (agency side: verifier.*) ---------------------------------


class _ResponseError:
    """The OpenID ``error`` a refused response's problem document carries."""

    openid_error: ClassVar[str] = "invalid_request"


class BadResponseForm(_ResponseError, InvalidInput):
    code = "verifier.bad_response"
    en = "The answer is not a form with the OpenID4VP response parameters. Send a correct one."
    nl = (
        "Het antwoord is geen formulier met de OpenID4VP-antwoordgegevens. "
        "Stuur een correct antwoord."
    )


class UnknownState(_ResponseError, NotFound):
    code = "verifier.unknown_state"
    en = "There is no open request this answer belongs to. Ask the organisation for a new request."
    nl = (
        "Er is geen open verzoek waar dit antwoord bij hoort. "
        "Vraag de organisatie om een nieuw verzoek."
    )


class RequestExpired(_ResponseError, InvalidInput):
    code = "verifier.expired"
    en = "The request this answer belongs to has expired. Ask the organisation for a new one."
    nl = "Het verzoek waar dit antwoord bij hoort is verlopen. Vraag de organisatie om een nieuw."


class Replayed(_ResponseError, Conflict):
    code = "verifier.replayed"
    en = "This request was already answered. Each request takes one answer."
    nl = "Dit verzoek is al beantwoord. Elk verzoek krijgt één antwoord."


class EncryptionRequired(_ResponseError, InvalidInput):
    code = "verifier.encryption_required"
    en = "The request asked for an encrypted answer, but this one is not encrypted. It was refused."
    nl = "Het verzoek vroeg om een versleuteld antwoord, maar dit antwoord is niet versleuteld."


class StateMismatch(_ResponseError, VerificationFailed):
    code = "verifier.state_mismatch"
    en = "The answer names another request than the one it was encrypted for. It was refused."
    nl = "Het antwoord noemt een ander verzoek dan waarvoor het versleuteld is. Het is geweigerd."


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedCredential:
    """What the agency kept of one accepted presentation: the claims it asked for and is
    registered for (claims path as compact JSON -> value), and the receipt it signed."""

    request_id: str
    purpose: str
    query_id: str
    vct: str
    issuer: str
    claims: Mapping[str, Any]
    presentation_hash: str
    receipt_id: str
    received_at: datetime


@dataclass(frozen=True)
class ResponseOutcome:
    """How a response was taken: ``received`` with one receipt per presentation, or
    ``refused`` / ``failed`` for a wallet's error response."""

    request_id: str
    status: str
    receipts: tuple[str, ...] = ()


# --- the service ------------------------------------------------------------------------------


class Verifier:
    """One agency's verifier service over ``store`` (migrated to ``SCHEMAS``), answering at
    ``public_url``. ``trust`` gives the trust list in force; ``fetch`` gets a Status List
    Token's bytes by URL (HTTP is the caller's business)."""

    def __init__(self, store: Store, agency: VerifierAgency, public_url: str, *,
                 trust: TrustSource | TrustList, fetch: Fetch,
                 policy: VerifierPolicy | None = None) -> None:
        self._store = store
        self.agency = agency
        self.policy = policy or VerifierPolicy()
        self.requests = VerifierRequests(store, agency, public_url, self.policy)
        self._trust = trust
        self._fetch = fetch
        self._receipt_key = JWK(**format_private_jwk(agency.signing_key))
        self._status_caches: dict[str, dict[str, Any]] = {}
        host = urlsplit(agency.id).hostname or "agency"
        self.receipt_log = ReceiptLog(store, agency.id, f"{host}/kluis/receipts")

    @property
    def public_url(self) -> str:
        return self.requests.public_url

    def trust_list(self, now: datetime) -> TrustList:
        return self._trust if isinstance(self._trust, TrustList) else self._trust(now)

    # --- requests (server.verifier_request) -------------------------------------------------

    def create_request(
        self, purpose_id: str, dcql: Mapping[str, Any], *,
        response_mode: ResponseMode = ResponseMode.DIRECT_POST_JWT, now: datetime,
        extra_info: Sequence[Mapping[str, Any]] = (),
    ) -> CreatedRequest:
        """See ``VerifierRequests.create``."""
        return self.requests.create(purpose_id, dcql, response_mode=response_mode, now=now,
                                    extra_info=extra_info)

    def request_object(self, request_id: str, *, now: datetime) -> str:
        """See ``VerifierRequests.request_object``."""
        return self.requests.request_object(request_id, now=now)

    def status(self, request_id: str) -> RequestStatus:
        """See ``VerifierRequests.status``."""
        return self.requests.status(request_id)

    def sweep(self, *, now: datetime) -> int:
        """See ``VerifierRequests.sweep``."""
        return self.requests.sweep(now=now)

    # --- responses ---------------------------------------------------------------------------

    def receive_response(self, content_type: str | None, body: bytes, *,
                         now: datetime) -> ResponseOutcome:
        """Take the Authorization Response in ``body`` (OpenID4VP 1.0 §8.2, §8.3): the form
        ``response=<JWE>`` (``direct_post.jwt``), or ``vp_token`` and ``state``
        (``direct_post``), or an error response (``error``, ``state``: allowed unencrypted,
        §8.3.1). Returns the outcome, with one signed receipt per presentation.

        Checks, in order: the form; which request (``kid`` or ``state``); the request is open
        (not answered, not expired); decryption and ``state``; then the presentations. Raises
        ``verifier.bad_response``, ``verifier.unknown_state``, ``verifier.replayed``,
        ``verifier.expired``, ``verifier.encryption_required``, ``vp.bad_jwe``,
        ``vp.undecryptable``, ``vp.bad_response``, ``verifier.state_mismatch`` and every
        ``verify_vp_token`` error. Every refusal is recorded as an attempt.
        """
        request: StoredRequest | None = None
        try:
            form = parse_response_form(content_type, body)
            request = self._identify(form)
            _check_open(request, now)
            params = self._parameters(request, form)
            if "error" in params:
                return self._record_error(request, params, now)
            presentations = self._verify(request, params, now)
            return self._accept(request, presentations, now)
        except KluisError as error:
            self._attempt(request, error, now)
            raise

    def _identify(self, form: Mapping[str, str]) -> StoredRequest:
        if "response" in form:
            if set(form) != {"response"}:
                raise BadResponseForm("OpenID4VP 1.0 §8.3.1: the body is response=<JWE> alone")
            found = self.requests.find(key_id=response_kid(form["response"]))
        else:
            state = form.get("state")
            if not state:
                raise BadResponseForm("OpenID4VP 1.0 §5.2: every kluis request has a state")
            found = self.requests.find(state=state)
        if found is None or found.status == OPEN:  # never fetched: nobody can know its state
            raise UnknownState("OpenID4VP 1.0 §8.2: no request with this state or key")
        return found

    def _parameters(self, request: StoredRequest, form: Mapping[str, str]) -> dict[str, Any]:
        """The response parameters: the decrypted JWE payload, or the plain form."""
        if "response" in form and request.response_key is not None:
            params = open_response(form["response"], parse_response_key(request.response_key))
            if params.get("state") != request.state:
                raise StateMismatch("OpenID4VP 1.0 §8.3: the payload's state is the request's")
            return params
        if request.mode is ResponseMode.DIRECT_POST_JWT and "error" not in form:
            raise EncryptionRequired("OpenID4VP 1.0 §8.3: the request asked for direct_post.jwt")
        plain: dict[str, Any] = dict(form)
        if "vp_token" in plain:
            try:
                plain["vp_token"] = json.loads(plain["vp_token"])
            except (ValueError, RecursionError):
                raise BadResponseForm("OpenID4VP 1.0 §8.1: vp_token is a JSON object") from None
        return plain

    def _record_error(self, request: StoredRequest, params: Mapping[str, Any],
                      now: datetime) -> ResponseOutcome:
        """A wallet's error response (§8.5): ``access_denied`` is a refusal; others fail."""
        error = params.get("error")
        if type(error) is not str or not _ERROR_CODE.fullmatch(error):
            raise BadResponseForm("RFC 6749 §4.1.2.1: error is an ASCII code")
        status = REFUSED if error == ACCESS_DENIED else FAILED
        self.requests.finish(request.id, status, error, now=now)
        log.info("request %s: the wallet answered %s", request.id, error)
        return ResponseOutcome(request.id, status)

    def _verify(self, request: StoredRequest, params: Mapping[str, Any],
                now: datetime) -> tuple[VerifiedPresentation, ...]:
        if "vp_token" not in params:
            raise BadResponseForm("OpenID4VP 1.0 §8.1: vp_token or error")
        trust = self.trust_list(now)
        try:
            return verify_vp_token(
                params["vp_token"], parse_dcql(request.dcql), issuer_keys=trust,
                key_binding=KeyBinding(request.nonce, self.agency.client_id,
                                       self.policy.kb_max_age),
                now=seconds(now), status_checkers=self._status_checkers(trust),
            )
        except Unavailable:
            raise  # a status list out of reach: the wallet may send the answer again
        except KluisError as error:
            self.requests.finish(request.id, FAILED, error.code, now=now)
            raise

    def _status_checkers(self, trust: TrustList) -> Callable[[str], StatusChecker | None]:
        def for_issuer(iss: str) -> StatusChecker | None:
            try:
                keys = [jwk.to_jwk() for jwk in trust.agency(iss).jwks.keys]
            except KluisError:
                return None  # never used: verify_sd_jwt has refused an unknown issuer by then
            cache = self._status_caches.setdefault(iss, {})
            return StatusListChecker(self._fetch, keys, cache=cache)

        return for_issuer

    def _accept(self, request: StoredRequest, presentations: tuple[VerifiedPresentation, ...],
                now: datetime) -> ResponseOutcome:
        purpose = self.agency.purpose(request.purpose)
        if purpose is None:  # the agency dropped the purpose while the request was out
            raise UnknownPurpose(f"specs/openid4vp.md §2: {request.purpose!r}")
        kept = [kept_claims(purpose, p) for p in presentations]
        receipts = tuple(self._receipt(request, purpose, p, claims, now)
                         for p, claims in zip(presentations, kept, strict=True))
        with self._store.transaction() as tx:
            tx.lock(f"verifier.request:{request.id}")
            status = tx.execute("SELECT status FROM verifier_request WHERE id = ?", (request.id,))
            if str(status[0][0]) != FETCHED:
                raise Replayed("OpenID4VP 1.0 §14.1: the request was answered meanwhile")
            self._keep(tx, request, presentations, kept, receipts, now)
            tx.execute(
                "UPDATE verifier_request SET status = ?, done_at = ?, response_key = NULL"
                " WHERE id = ?", (RECEIVED, seconds(now), request.id),
            )
        log.info("request %s: %d presentation(s) received", request.id, len(presentations))
        return ResponseOutcome(request.id, RECEIVED, receipts)

    def _receipt(self, request: StoredRequest, purpose: VerifierPurpose,
                 presentation: VerifiedPresentation, claims: Mapping[ConcretePath, Any],
                 now: datetime) -> str:
        reg = purpose.registration
        return issue_receipt(
            presentation.token, verifier=self.agency.id, client_id=self.agency.client_id,
            request_id=request.state, vct=presentation.vct, claims=list(claims),
            purpose=ReceiptPurpose(id=reg.id, dpv=reg.dpv), legal_basis=reg.legal_basis,
            retention=Retention(duration=purpose.retention.duration),
            processing_activity=reg.processing_activity, received_at=now, key=self._receipt_key,
        )

    def _keep(self, tx: Transaction, request: StoredRequest,
              presentations: tuple[VerifiedPresentation, ...],
              kept: list[dict[ConcretePath, Any]], receipts: tuple[str, ...],
              now: datetime) -> None:
        """The receipts into the receipt log and the kept claims, in the caller's transaction."""
        verified = [_own_receipt(token) for token in receipts]
        self.receipt_log.append(
            tx, [le.agency_receipt(t, r) for t, r in zip(receipts, verified, strict=True)],
            now=now,
        )
        tx.executemany(
            "INSERT INTO verifier_received (request_id, position, agency, query_id, vct, issuer,"
            " claims, presentation_hash, receipt_id, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(request.id, n, self.agency.id, p.query_id, p.vct, p.credential.issuer,
              _claims_json(claims), r.presentation_hash, r.receipt_id, seconds(now))
             for n, (p, claims, r) in enumerate(zip(presentations, kept, verified, strict=True))],
        )

    def _attempt(self, request: StoredRequest | None, error: KluisError, now: datetime) -> None:
        ident = request.id if request is not None else None
        log.warning("response refused: %s (request %s)", error.code, ident or "unknown")
        try:
            self.requests.attempt(ident, error.code, now=now)
        except KluisError:  # the store is down: the refusal itself still stands
            log.warning("could not record the refused response")

    # --- the back office -------------------------------------------------------------------

    def received(self, *, request_id: str | None = None,
                 limit: int = 100) -> list[ReceivedCredential]:
        """What the agency kept, newest first (of one request when ``request_id`` is given)."""
        where, params = "r.agency = ?", [self.agency.id]
        if request_id is not None:
            where += " AND r.request_id = ?"
            params.append(request_id)
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT r.request_id, q.purpose, r.query_id, r.vct, r.issuer, r.claims,"  # noqa: S608
                " r.presentation_hash, r.receipt_id, r.received_at FROM verifier_received r"
                " JOIN verifier_request q ON q.id = r.request_id"
                f" WHERE {where} ORDER BY r.received_at DESC, r.request_id, r.position"
                " LIMIT ?", (*params, max(1, min(limit, 1000))),
            )
        return [ReceivedCredential(str(a), str(b), str(c), str(d), str(e), json.loads(str(f)),
                                   str(g), str(h), datetime.fromtimestamp(int(i), UTC))
                for a, b, c, d, e, f, g, h, i in rows]


def _own_receipt(token: str) -> Receipt:
    """The receipt this service signed a moment ago, read back without checking its own
    signature (that cost two signature checks per response and bought nothing)."""
    return Receipt.model_validate_json(b64url_decode(token.split(".")[1], "receipt payload"))


def _check_open(request: StoredRequest, now: datetime) -> None:
    if request.status in DONE:
        raise Replayed("OpenID4VP 1.0 §14.1: one response per request (state and nonce)")
    if request.status == EXPIRED or request.expires_at <= seconds(now):
        raise RequestExpired("RFC 7519 §4.1.4: the request's exp has passed")


def parse_response_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The parameters of an ``application/x-www-form-urlencoded`` body in UTF-8 (OpenID4VP
    1.0 §8.2): at most 16, each once. Raises ``verifier.bad_response``."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != FORM:
        raise BadResponseForm(f"OpenID4VP 1.0 §8.2: the body is {FORM}")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          max_num_fields=MAX_FORM_FIELDS, encoding="utf-8", errors="strict")
    except ValueError:  # also UnicodeDecodeError
        raise BadResponseForm("OpenID4VP 1.0 §8.2: a UTF-8 form of at most 16 fields") from None
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise BadResponseForm("RFC 6749 §3.1: each parameter at most once")
    return dict(pairs)


def kept_claims(purpose: VerifierPurpose,
                presentation: VerifiedPresentation) -> dict[ConcretePath, Any]:
    """The claims of ``presentation`` the agency keeps: those its query selected that the
    purpose's registration covers for the credential's type. Nothing beyond it is kept,
    whatever the wallet sent."""
    out: dict[ConcretePath, Any] = {}
    for path in presentation.requested:
        if purpose.covers(presentation.vct, path):
            found = select(path, presentation.credential.claims)
            if found:
                out[path] = found[0].value
    return out


def _claims_json(claims: Mapping[ConcretePath, Any]) -> str:
    return json.dumps({canonical_json(list(path)).decode("utf-8"): value
                       for path, value in claims.items()}, ensure_ascii=False)
