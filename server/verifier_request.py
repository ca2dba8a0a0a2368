"""A verifying agency's OpenID4VP requests in the server store (specs/openid4vp.md §3-§5): made,
signed, served once by reference, followed until answered or expired. The first half of the
verifier service (``server.verifier``).

A request gets a random id (its ``request_uri`` path), a fresh ``state`` and ``nonce`` (192
bits each) and, for ``direct_post.jwt``, an ephemeral P-256 key for the response, whose public
half goes in ``client_metadata.jwks``. Its Request Object is signed with the agency's key and
carries the agency's certificate in ``x5c`` (``x509_hash`` client id, HAIP). The object is
served once: the first fetch takes it and the row forgets it. The private response key stays
until the request is answered or expires. Refused answers are recorded as attempts: the error
code and the time, nothing of their content.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from server.store import Schema, Store
from server.verifier_agency import VerifierAgency
from vault import Conflict, InvalidInput, NotFound
from verifiers.claim_path import path_text
from verifiers.dcql import parse_dcql
from verifiers.encrypted_response import new_response_key, response_metadata
from verifiers.jws import Alg, VerifyingKey, sign_jws
from wallet.purpose import format_purpose
from wallet.request import Malformed as RequestMalformed
from wallet.request import ResponseMode, parse_request
from wallet.request_object import STATIC_AUDIENCE, TYP

REQUEST_SCHEMA = Schema(
    "verifier_request",
    (
        "CREATE TABLE verifier_request ("
        " id TEXT PRIMARY KEY, agency TEXT NOT NULL, state TEXT NOT NULL UNIQUE,"
        " key_id TEXT UNIQUE, nonce TEXT NOT NULL, purpose TEXT NOT NULL, dcql TEXT NOT NULL,"
        " response_mode TEXT NOT NULL, request_object TEXT, response_key TEXT,"
        " status TEXT NOT NULL, outcome TEXT, created_at INTEGER NOT NULL,"
        " expires_at INTEGER NOT NULL, fetched_at INTEGER, done_at INTEGER);"
        "CREATE INDEX verifier_request_expires_at ON verifier_request (expires_at);"
        "CREATE TABLE verifier_attempt ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, request_id TEXT,"
        " code TEXT NOT NULL, at INTEGER NOT NULL)",
    ),
)

OPEN, FETCHED = "created", "fetched"
RECEIVED, REFUSED, FAILED, EXPIRED = "received", "refused", "failed", "expired"
DONE = (RECEIVED, REFUSED, FAILED)
VP_FORMATS = {"dc+sd-jwt": {"sd-jwt_alg_values": ["ES256", "EdDSA"],
                            "kb-jwt_alg_values": ["ES256", "EdDSA"]}}


class UnknownPurpose(InvalidInput):
    code = "verifier.unknown_purpose"
    en = "The agency has no purpose with this id. Use one of the purposes it is registered for."
    nl = (
        "De organisatie heeft geen doel met deze id. Gebruik een doel waarvoor zij "
        "geregistreerd is."
    )


class UnknownRequest(NotFound):
    code = "verifier.unknown_request"
    en = "There is no request like this, or it has expired. Ask the organisation for a new one."
    nl = "Er is geen verzoek zoals dit, of het is verlopen. Vraag de organisatie om een nieuw."


class RequestUsed(Conflict):
    code = "verifier.request_used"
    en = "This request was already fetched once. Ask the organisation to send it again."
    nl = "Dit verzoek is al een keer opgehaald. Vraag de organisatie het opnieuw te sturen."


@dataclass(frozen=True)
class VerifierPolicy:
    """Lifetimes in seconds: of a request (it waits in the citizen's mailbox) and of a KB-JWT."""

    request_seconds: int = 86400
    kb_max_age: int = 300


@dataclass(frozen=True)
class CreatedRequest:
    """A new request: ``uri`` (``openid4vp://...``) is what goes to the citizen's relay
    address; ``over_asked`` names the claims the agency is not registered for (a wallet
    blocks such a request)."""

    id: str
    uri: str
    request_uri: str
    client_id: str
    purpose: str
    expires_at: datetime
    over_asked: tuple[str, ...]


@dataclass(frozen=True)
class RequestStatus:
    """Where a request stands: ``created``, ``fetched``, ``received``, ``refused``, ``failed``
    or ``expired``; ``outcome`` is the wallet's error or why it failed; ``attempts`` the
    refused answers (error code, time)."""

    id: str
    purpose: str
    status: str
    outcome: str | None
    created_at: datetime
    expires_at: datetime
    fetched_at: datetime | None
    done_at: datetime | None
    attempts: tuple[tuple[str, datetime], ...]


@dataclass(frozen=True)
class StoredRequest:
    """A request as the response endpoint needs it."""

    id: str
    state: str
    nonce: str
    purpose: str
    dcql: str
    mode: ResponseMode
    response_key: str | None
    status: str
    expires_at: int


_COLUMNS = ("id, state, nonce, purpose, dcql, response_mode, response_key, status, expires_at")


@dataclass(frozen=True)
class _OwnKey:
    """``VerifierKeys`` of the agency's own key: the self-check of each new request."""

    key: VerifyingKey

    def request_key(self, client_id: str, header: Mapping[str, Any]) -> VerifyingKey:
        return self.key


def seconds(now: datetime) -> int:
    return int(now.timestamp())


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(str(value)), UTC)


class VerifierRequests:
    """One agency's requests in ``store`` (migrated to ``REQUEST_SCHEMA``), served at
    ``public_url``."""

    def __init__(self, store: Store, agency: VerifierAgency, public_url: str,
                 policy: VerifierPolicy) -> None:
        self._store = store
        self.agency = agency
        self.public_url = public_url.rstrip("/")
        self.policy = policy

    def create(self, purpose_id: str, dcql: Mapping[str, Any], *, response_mode: ResponseMode,
               now: datetime, extra_info: Sequence[Mapping[str, Any]] = ()) -> CreatedRequest:
        """A new request for ``dcql`` (a DCQL query as a JSON object) under ``purpose_id``,
        signed and stored, answerable until ``now`` plus the request lifetime.
        ``extra_info`` are more ``verifier_info`` elements after the purpose (a grant
        request's ``kluis_grant`` element, specs/grant.md §3.1).

        The Request Object is read back as a wallet reads it (``wallet.request.parse_request``
        with the agency's own key), so every request sent is one a wallet can read. Raises
        ``verifier.unknown_purpose``, the ``dcql.*`` and the ``request.*`` errors.
        """
        purpose = self.agency.purpose(purpose_id)
        if purpose is None:
            raise UnknownPurpose(f"specs/openid4vp.md §2: {purpose_id[:60]!r}")
        query = parse_dcql(dcql)
        ident, state, nonce = (secrets.token_urlsafe(24) for _ in range(3))
        key = new_response_key() if response_mode is ResponseMode.DIRECT_POST_JWT else None
        metadata: dict[str, Any] = {"vp_formats_supported": VP_FORMATS}
        if key is not None:
            metadata.update(response_metadata(key))
        at = seconds(now)
        expires = at + self.policy.request_seconds
        payload = {
            "aud": STATIC_AUDIENCE, "client_id": self.agency.client_id,
            "response_type": "vp_token", "response_mode": response_mode.value,
            "response_uri": f"{self.public_url}/response", "nonce": nonce, "state": state,
            "dcql_query": dict(dcql), "client_metadata": metadata,
            "verifier_info": [format_purpose(purpose.purpose()), *map(dict, extra_info)],
            "iat": at, "exp": expires,
        }
        header = {"alg": Alg.ES256.value, "typ": TYP, "x5c": list(self.agency.certificate.x5c)}
        try:
            token = sign_jws(header, payload, self.agency.signing_key)
        except (TypeError, ValueError):
            raise RequestMalformed("RFC 8259: the query holds values JSON cannot carry") from None
        parse_request(token, verifier_keys=_OwnKey(self.agency.signing_key.public))
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO verifier_request (id, agency, state, key_id, nonce, purpose, dcql,"
                " response_mode, request_object, response_key, status, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident, self.agency.id, state, key.kid if key else None, nonce, purpose_id,
                 json.dumps(dict(dcql), separators=(",", ":")), response_mode.value, token,
                 key.private_json() if key else None, OPEN, at, expires),
            )
        request_uri = f"{self.public_url}/requests/{ident}"
        uri = "openid4vp://?" + urlencode(
            {"client_id": self.agency.client_id, "request_uri": request_uri}, quote_via=quote)
        over = tuple(
            f"{credential.vct_values[0]} {path_text(claim.path)}"
            for credential in query.credentials for claim in credential.claims or ()
            if not any(purpose.covers(vct, claim.path) for vct in credential.vct_values)
        )
        return CreatedRequest(ident, uri, request_uri, self.agency.client_id, purpose_id,
                              datetime.fromtimestamp(expires, UTC), over)

    def request_object(self, request_id: str, *, now: datetime) -> str:
        """The Request Object of ``request_id``, once: the first fetch takes it (RFC 9101
        §5.2; specs/openid4vp.md §4). Raises ``verifier.unknown_request`` (unknown or
        expired) and ``verifier.request_used``."""
        with self._store.transaction() as tx:
            tx.lock(f"verifier.request:{request_id}")
            rows = tx.execute(
                "SELECT status, expires_at, request_object FROM verifier_request"
                " WHERE id = ? AND agency = ?", (request_id, self.agency.id),
            )
            if not rows or int(rows[0][1]) <= seconds(now) or rows[0][0] == EXPIRED:
                raise UnknownRequest("RFC 9101 §5.2: no open request at this URI")
            if rows[0][0] != OPEN or rows[0][2] is None:
                raise RequestUsed("specs/openid4vp.md §4: a request_uri is fetched once")
            tx.execute(
                "UPDATE verifier_request SET status = ?, fetched_at = ?, request_object = NULL"
                " WHERE id = ?", (FETCHED, seconds(now), request_id),
            )
        return str(rows[0][2])

    def find(self, *, state: str | None = None, key_id: str | None = None) -> StoredRequest | None:
        """The request with this ``state`` or response key id, if the agency has one."""
        where, value = ("state = ?", state) if state is not None else ("key_id = ?", key_id)
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM verifier_request WHERE agency = ? AND {where}",  # noqa: S608
                (self.agency.id, value),
            )
        if not rows:
            return None
        ident, state_, nonce, purpose, dcql, mode, key, status, expires = rows[0]
        return StoredRequest(str(ident), str(state_), str(nonce), str(purpose), str(dcql),
                             ResponseMode(str(mode)), None if key is None else str(key),
                             str(status), int(expires))

    def finish(self, request_id: str, status: str, outcome: str | None, *,
               now: datetime) -> None:
        """End a fetched request as ``refused`` or ``failed`` (its private key goes)."""
        with self._store.transaction() as tx:
            tx.lock(f"verifier.request:{request_id}")
            tx.execute(
                "UPDATE verifier_request SET status = ?, outcome = ?, done_at = ?,"
                " response_key = NULL WHERE id = ? AND status = ?",
                (status, None if outcome is None else outcome[:64], seconds(now), request_id,
                 FETCHED),
            )

    def attempt(self, request_id: str | None, code: str, *, now: datetime) -> None:
        """Record a refused answer: its error code and time, nothing of its content."""
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO verifier_attempt (agency, request_id, code, at) VALUES (?, ?, ?, ?)",
                (self.agency.id, request_id, code, seconds(now)),
            )

    def status(self, request_id: str) -> RequestStatus:
        """Where ``request_id`` stands; raises ``verifier.unknown_request``."""
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                "SELECT purpose, status, outcome, created_at, expires_at, fetched_at, done_at"
                " FROM verifier_request WHERE id = ? AND agency = ?", (request_id, self.agency.id),
            )
            attempts = tx.execute(
                "SELECT code, at FROM verifier_attempt WHERE agency = ? AND request_id = ?"
                " ORDER BY id", (self.agency.id, request_id),
            )
        if not rows:
            raise UnknownRequest("specs/openid4vp.md §5: no such request")
        purpose, status, outcome, created, expires, fetched, done = rows[0]
        return RequestStatus(
            request_id, str(purpose), str(status), None if outcome is None else str(outcome),
            datetime.fromtimestamp(int(created), UTC), datetime.fromtimestamp(int(expires), UTC),
            _time(fetched), _time(done),
            tuple((str(code), datetime.fromtimestamp(int(at), UTC)) for code, at in attempts),
        )

    def sweep(self, *, now: datetime) -> int:
        """End requests past their expiry: their Request Object and private key go. Returns
        how many ended."""
        with self._store.transaction() as tx:
            gone = tx.execute(
                "UPDATE verifier_request SET status = ?, request_object = NULL,"
                " response_key = NULL WHERE agency = ? AND expires_at <= ? AND status IN (?, ?)"
                " RETURNING 1", (EXPIRED, self.agency.id, seconds(now), OPEN, FETCHED),
            )
        return len(gone)
