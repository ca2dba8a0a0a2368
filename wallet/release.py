"""What leaves the wallet when the citizen decides: a release (the OpenID4VP response with the
presentations, built from the claims chosen with :func:`choose`) or a refusal (an
``access_denied`` error response).

A :class:`Release` exists only after its ``request_approved`` entry is committed
(``wallet.consent``); sending it is the caller's business: writing the response to a file
(``kluis request approve --out``) or posting it to the ``response_uri`` (``direct_post``,
or encrypted for ``direct_post.jwt``). Afterwards the caller records the outcome and, when
one comes, the verifier's receipt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vault import InvalidInput, Vault
from verifiers import log_entry as le
from verifiers.claim_path import ClaimPath, ConcretePath, path_text
from verifiers.dcql_match import CredentialMatch
from verifiers.holder import present_sd_jwt
from verifiers.keybinding import holder_key_of
from verifiers.log_entry import SentPresentation
from verifiers.receipt import hash_presentation
from wallet.credential import StoredCredential
from wallet.evaluation import CredentialLine, Evaluation, alternative
from wallet.holder_key import signing_key
from wallet.request import Request, ResponseMode
from wallet.wording import type_name

ACCESS_DENIED = "access_denied"


class NotOptional(InvalidInput):
    code = "consent.not_optional"
    en = "'{claim}' cannot be left out of this request. Share it, or refuse the whole request."
    nl = "'{claim}' kan niet worden weggelaten. Deel het, of weiger het hele verzoek."


class NotInRequest(InvalidInput):
    code = "consent.not_in_request"
    en = "'{claim}' is not among the data this request would share."
    nl = "'{claim}' hoort niet bij de gegevens die dit verzoek zou delen."


@dataclass(frozen=True)
class Presentation:
    """One presentation string for one credential query: which credential, its hash
    (``receipt.hash_presentation``) and the claims the verifier can see in it."""

    query_id: str
    credential_id: str
    vct: str
    token: str = field(repr=False)
    hash: str = ""
    claims: tuple[ConcretePath, ...] = ()

    def sent(self) -> SentPresentation:
        """The presentation as the ``presentation_sent`` log entry names it."""
        return SentPresentation(self.credential_id, self.vct, self.hash, self.claims)


@dataclass(frozen=True)
class Release:
    """An approved release, ready to send: where to, how, and the presentations.

    ``entry`` is the position of its ``request_approved`` entry in the consent log.
    """

    request_id: str
    client_id: str
    response_uri: str
    response_mode: ResponseMode
    state: str | None
    presentations: tuple[Presentation, ...]
    entry: int

    def vp_token(self) -> dict[str, list[str]]:
        """``vp_token``: credential query id -> its presentations (OpenID4VP 1.0 §8.1)."""
        token: dict[str, list[str]] = {}
        for presentation in self.presentations:
            token.setdefault(presentation.query_id, []).append(presentation.token)
        return token

    def response(self) -> dict[str, Any]:
        """The Authorization Response parameters (``vp_token``, and ``state`` when the
        request had one): the form body of ``direct_post``, the JWE payload of
        ``direct_post.jwt`` (OpenID4VP 1.0 §8.2, §8.3), the file of ``approve --out``."""
        out: dict[str, Any] = {"vp_token": self.vp_token()}
        if self.state is not None:
            out["state"] = self.state
        return out

    def hashes(self) -> frozenset[str]:
        return frozenset(p.hash for p in self.presentations)


@dataclass(frozen=True)
class Refusal:
    """A refused request: nothing leaves but the error response that says so."""

    request_id: str
    client_id: str
    response_uri: str
    state: str | None

    def response(self) -> dict[str, Any]:
        """The error response (RFC 6749 §4.1.2.1; OpenID4VP 1.0 §8.5: ``access_denied``
        when the citizen does not consent)."""
        out: dict[str, Any] = {
            "error": ACCESS_DENIED,
            "error_description": "The holder did not consent to this request.",
        }
        if self.state is not None:
            out["state"] = self.state
        return out


def present(
    vault: Vault,
    request: Request,
    query_id: str,
    credential: StoredCredential,
    requested: Sequence[ConcretePath],
    visible: Sequence[ConcretePath],
    *,
    holder_binding: bool,
    now: int,
) -> Presentation:
    """The presentation of ``credential`` for ``query_id`` disclosing ``requested`` (with the
    parents and parts they need, RFC 9901 §7.2) and nothing else. With ``holder_binding`` it
    carries a KB-JWT signed by the wallet's holder key: ``aud`` the full client id, ``nonce``
    the request's (OpenID4VP 1.0 §B.3.6; STANDARDS.md §1.3 rule 4), ``iat`` ``now``.

    Raises ``holder_key.not_found`` and the ``present_sd_jwt`` errors.
    """
    issued = credential.issued()
    if holder_binding:
        key = signing_key(vault, holder_key_of(credential.claims))
        token = present_sd_jwt(
            issued, disclose=requested, holder_key=key, nonce=request.nonce,
            aud=request.client_id, now=now,
        )
    else:
        token = present_sd_jwt(issued, disclose=requested)
    return Presentation(
        query_id, credential.id, credential.vct, token, hash_presentation(token), tuple(visible)
    )


def parse_release(data: Mapping[str, Any]) -> Release:
    """A release as ``format_release`` stored it (the vault's own data, trusted)."""
    return Release(
        request_id=str(data["request_id"]),
        client_id=str(data["client_id"]),
        response_uri=str(data["response_uri"]),
        response_mode=ResponseMode(data["response_mode"]),
        state=data.get("state"),
        presentations=tuple(
            Presentation(
                str(p["query_id"]), str(p["credential"]), str(p["vct"]), str(p["token"]),
                str(p["hash"]), tuple(tuple(c) for c in p["claims"]),
            )
            for p in data["presentations"]
        ),
        entry=int(data["entry"]),
    )


def format_release(release: Release) -> dict[str, Any]:
    """The release as JSON, to keep in the vault beside its log entry."""
    return {
        "request_id": release.request_id,
        "client_id": release.client_id,
        "response_uri": release.response_uri,
        "response_mode": release.response_mode.value,
        "state": release.state,
        "presentations": [
            {
                "query_id": p.query_id, "credential": p.credential_id, "vct": p.vct,
                "token": p.token, "hash": p.hash, "claims": [list(c) for c in p.claims],
            }
            for p in release.presentations
        ],
        "entry": release.entry,
    }


def choose(
    evaluation: Evaluation, leave_out: Iterable[ClaimPath], skip: Iterable[str]
) -> tuple[list[tuple[CredentialLine, CredentialMatch]], tuple[le.ClaimRef, ...]]:
    """The credentials to present, each with the match (claim set) that leaves out the
    claims in ``leave_out``, and the claims left out, for the log.

    Raises ``consent.not_optional`` (a required claim or credential) and
    ``consent.not_in_request`` (a path or query id this release does not have).
    """
    wanted = {tuple(path) for path in leave_out}
    skipped = set(skip)
    known_ids = {line.query_id for line in evaluation.lines}
    for query_id in skipped - known_ids:
        raise NotInRequest(claim=query_id)
    chosen: list[tuple[CredentialLine, CredentialMatch]] = []
    left: list[le.ClaimRef] = []
    found: set[ClaimPath] = set()
    for line in evaluation.lines:
        if line.query_id in skipped:
            if not line.optional:
                raise NotOptional(claim=type_name(line.vct).en)
            left.extend(le.ClaimRef(line.vct, p, optional=True) for p in line.match.requested)
            continue
        drop = {p for p in line.match.requested if p in wanted}
        found |= drop
        match = line.match if not drop else _without(evaluation, line, drop)
        left.extend(le.ClaimRef(line.vct, p, optional=True) for p in sorted(drop, key=str))
        chosen.append((line, match))
    for path in wanted - found:
        raise NotInRequest(claim=path_text(path))
    return chosen, tuple(left)


def _without(
    evaluation: Evaluation, line: CredentialLine, drop: set[ConcretePath]
) -> CredentialMatch:
    """The first claim set (in the verifier's order) asking a subset of what is left."""
    keep = set(line.match.requested) - drop
    query = evaluation.request.dcql.credential(line.query_id)
    for number in line.match.satisfiable_claim_sets:
        option = alternative(query, line.credential, number)
        if option is not None and set(option.requested) <= keep:
            return option
    raise NotOptional(claim=path_text(sorted(drop, key=str)[0]))
