"""Validating an OpenID4VP ``vp_token`` against the DCQL query that asked for it: the
verifier's side of a presentation response (OpenID4VP 1.0 §8.1, §8.6 "VP Token Validation";
STANDARDS.md §1.4 G).

``verify_vp_token`` checks the shape (an object keyed by credential query ids, each value a
non-empty array, one element unless the query allows ``multiple``), verifies every
presentation with ``verify_sd_jwt`` (§1.4 A-F: key binding to this request's nonce and the
verifier's full client id whenever the query asks for holder binding), then checks that each
presented credential meets its own credential query (§6.4.1: type, holder binding, claims and
claim sets, values) and that the presented queries together satisfy the request (every query,
or an option of every required credential set, §6.4.2).

kluis rejects the whole response when any presentation fails. §8.6 would let a verifier drop a
failing presentation and keep the rest; for a consent wallet that answered exactly what it
approved, a failing part means something went wrong with the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from vault import InvalidInput, VerificationFailed
from verifiers.claim_path import ConcretePath
from verifiers.dcql import CredentialQuery, DcqlQuery
from verifiers.dcql_match import HeldCredential, match_credential
from verifiers.jws import parse_jws
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import parse_compact
from verifiers.verifier import (
    DEFAULT_POLICY,
    IssuerKeys,
    Policy,
    StatusChecker,
    VerifiedCredential,
    verify_sd_jwt,
)

SPEC = "OpenID4VP 1.0 §8.1"
MAX_PRESENTATIONS = 32

StatusCheckers = Callable[[str], StatusChecker | None]
"""The status checker for credentials of an issuer (``iss``), or None to skip the check."""


class BadVpToken(InvalidInput):
    code = "vp.bad_vp_token"
    en = "The answer's presentations are not in the expected form. Send a correct answer."
    nl = (
        "De presentaties in het antwoord hebben niet de verwachte vorm. "
        "Stuur een correct antwoord."
    )


class UnexpectedCredential(VerificationFailed):
    code = "vp.unexpected_credential"
    en = "The answer holds a credential the request did not ask for. It was not accepted."
    nl = "Het antwoord bevat een bewijs waar het verzoek niet om vroeg. Het is niet aanvaard."


class QueryNotSatisfied(VerificationFailed):
    code = "vp.query_not_satisfied"
    en = "The answer does not contain what the request asked for. It was not accepted."
    nl = "Het antwoord bevat niet wat het verzoek vroeg. Het is niet aanvaard."


@dataclass(frozen=True)
class VerifiedPresentation:
    """One accepted presentation: the query it answers, the string as received, the verified
    credential and the concrete claims the query selected in it (``requested``)."""

    query_id: str
    token: str = field(repr=False)
    credential: VerifiedCredential = field(repr=False)
    requested: tuple[ConcretePath, ...]

    @property
    def vct(self) -> str:
        return self.credential.vct or ""


def verify_vp_token(
    vp_token: object,
    query: DcqlQuery,
    *,
    issuer_keys: IssuerKeys,
    key_binding: KeyBinding,
    now: int,
    status_checkers: StatusCheckers | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[VerifiedPresentation, ...]:
    """The presentations of ``vp_token`` (the parsed JSON object), each verified and matched
    to its credential query in ``query``, in the order they were sent.

    ``key_binding`` holds this request's nonce and the verifier's full client id; it is
    required of every presentation whose query asks for holder binding (the default) and
    refused otherwise. Raises ``vp.bad_vp_token`` (shape), ``vp.unexpected_credential`` (an
    id the query does not have), every ``verify_sd_jwt`` error of the first failing
    presentation, and ``vp.query_not_satisfied`` (a credential short of its query, or the
    set of answers short of the request).
    """
    answers = _answers(vp_token, query)
    verified: list[VerifiedPresentation] = []
    for credential_query, token in answers:
        bound = key_binding if credential_query.require_cryptographic_holder_binding else None
        checker = status_checkers(_issuer_of(token)) if status_checkers is not None else None
        credential = verify_sd_jwt(
            token, issuer_keys=issuer_keys, now=now, key_binding=bound,
            expected_vct=credential_query.vct_values, status_checker=checker, policy=policy,
        )
        verified.append(_matched(credential_query, token, credential))
    _check_satisfied(query, {v.query_id for v in verified})
    return tuple(verified)


def _answers(vp_token: object, query: DcqlQuery) -> list[tuple[CredentialQuery, str]]:
    """(credential query, presentation) pairs, after every shape check of §8.1."""
    if not isinstance(vp_token, Mapping) or not vp_token:
        raise BadVpToken(f"{SPEC}: vp_token is a non-empty JSON object")
    known = {q.id: q for q in query.credentials}
    out: list[tuple[CredentialQuery, str]] = []
    for query_id, items in vp_token.items():
        credential_query = known.get(query_id)
        if credential_query is None:
            raise UnexpectedCredential(f"{SPEC}: {str(query_id)[:40]!r} is no credential query")
        if not isinstance(items, list) or not items:
            raise BadVpToken(f"{SPEC}: each vp_token value is a non-empty array")
        if len(items) > 1 and not credential_query.multiple:
            raise BadVpToken(f"{SPEC}: one presentation unless the query sets multiple")
        if any(type(item) is not str or not item for item in items):
            raise BadVpToken("OpenID4VP 1.0 §B.3.6: an SD-JWT VC presentation is a string")
        out.extend((credential_query, item) for item in items)
    if len(out) > MAX_PRESENTATIONS:
        raise BadVpToken(f"kluis limit: at most {MAX_PRESENTATIONS} presentations")
    return out


def _issuer_of(token: str) -> str:
    """The ``iss`` the presentation claims, read before verification only to choose the
    status list keys: ``verify_sd_jwt`` checks the status after the issuer's signature, so a
    false ``iss`` never reaches the checker."""
    try:
        iss = parse_jws(parse_compact(token).issuer_jwt, "Issuer-signed JWT").payload.get("iss")
    except (InvalidInput, VerificationFailed):
        return ""
    return iss if type(iss) is str else ""


def _matched(
    credential_query: CredentialQuery, token: str, credential: VerifiedCredential
) -> VerifiedPresentation:
    held = HeldCredential(
        id=credential_query.id,
        format=credential_query.format,
        vct=credential.vct or "",
        claims=credential.claims,
        # Paths of disclosures actually processed are concrete (no null wildcard).
        selectively_disclosable=cast(frozenset[ConcretePath], frozenset(credential.disclosed)),
        holder_binding=credential.holder_jwk is not None,
    )
    match = match_credential(credential_query, held)
    if match is None:
        raise QueryNotSatisfied(
            f"OpenID4VP 1.0 §6.4.1: the {credential_query.id!r} credential does not meet its query"
        )
    return VerifiedPresentation(credential_query.id, token, credential, match.requested)


def _check_satisfied(query: DcqlQuery, present: set[str]) -> None:
    """Every query answered, or with ``credential_sets`` an option of every required set."""
    if query.credential_sets is None:
        missing = [q.id for q in query.credentials if q.id not in present]
        if missing:
            raise QueryNotSatisfied(f"OpenID4VP 1.0 §6.4.2: no answer to {missing[0]!r}")
        return
    for number, credential_set in enumerate(query.credential_sets):
        if credential_set.required and not any(set(o) <= present for o in credential_set.options):
            raise QueryNotSatisfied(f"OpenID4VP 1.0 §6.4.2: credential set {number} is not met")

