"""Evaluating a request before the citizen sees it: who asks, may they, and what would leave.

``evaluate`` checks the verifier against the trust list (registered as a verifier, for this
purpose, with the purpose's legal basis and processing activity, and asking only for the
claims its registration allows); a request that fails is *blocked*, with a plain explanation
in Dutch and English that names any over-asked claims. Otherwise it matches the DCQL query
against the credentials held (OpenID4VP 1.0 §6.4) and lists exactly which claims would leave,
which of them always leave, and which the citizen may leave out, with warnings worth
reading before saying yes. It decides nothing and writes nothing: ``wallet.consent`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from verifiers.claim_path import ConcretePath, select
from verifiers.dcql import CredentialQuery
from verifiers.dcql_match import CredentialMatch, DcqlMatch, match_credential, match_dcql
from verifiers.log_entry import BlockReason, ClaimRef
from verifiers.trustlist import Agency, NotAVerifier, NotRegistered, Registration, TrustList
from wallet.credential import StoredCredential, claim_label
from wallet.request import Request
from wallet.wording import Text, format_date, join_labels, type_name

LONG_RETENTION = timedelta(days=366)
DPV_IRI = "https://w3id.org/dpv#"
BSN: ConcretePath = ("bsn",)


class Status(StrEnum):
    READY = "ready"
    """May be approved or refused."""
    UNMATCHED = "unmatched"
    """The wallet lacks a credential the request needs: it can only be refused."""
    BLOCKED = "blocked"
    """The verifier is not registered, or asks beyond its registration: nothing can leave."""
    EXPIRED = "expired"
    """The request's time is up: nothing can leave."""


@dataclass(frozen=True)
class Block:
    """Why a request was blocked: the reason the log records, the explanation for the
    citizen, and the claims asked beyond the registration (for ``over_asking``)."""

    reason: BlockReason
    explanation: Text
    over_asked: tuple[ClaimRef, ...] = ()


@dataclass(frozen=True)
class Caution:
    """Something the citizen should read before deciding: a stable code and the words."""

    code: str
    text: Text


@dataclass(frozen=True)
class ClaimLine:
    """One claim that would leave: its path, label, value, whether it leaves anyway (the
    citizen cannot withhold it) and whether the citizen may leave it out."""

    path: ConcretePath
    label: Text
    value: Any
    always: bool
    optional: bool


@dataclass(frozen=True)
class CredentialLine:
    """One credential that would answer one credential query, and what it would show."""

    query_id: str
    credential: StoredCredential
    match: CredentialMatch
    optional: bool
    claims: tuple[ClaimLine, ...]
    holder_binding: bool
    issuer: Text
    """The issuer's names from the trust list (its id when the list does not name it)."""

    @property
    def vct(self) -> str:
        return self.credential.vct

    def released_paths(self) -> tuple[ConcretePath, ...]:
        """Everything the verifier would see: the claims asked for, then those always shown."""
        return self.match.requested + self.match.always_disclosed


@dataclass(frozen=True)
class Evaluation:
    """The verdict on one request at ``at``. ``lines`` is empty unless the status is READY."""

    request: Request
    at: datetime
    status: Status
    verifier: Agency | None
    registration: Registration | None
    block: Block | None
    lines: tuple[CredentialLine, ...]
    missing: tuple[str, ...]
    warnings: tuple[Caution, ...]
    keep_until: date

    @property
    def registered(self) -> bool:
        return self.registration is not None

    def verifier_name(self) -> Text:
        """The verifier's names from the trust list, else its client id."""
        if self.verifier is not None:
            return Text(nl=self.verifier.names.nl, en=self.verifier.names.en)
        return Text(nl=self.request.client_id, en=self.request.client_id)

    def requested_claims(self) -> tuple[ClaimRef, ...]:
        """Every claim the query asks for, with the first type that could answer it."""
        return requested_claims(self.request, self.lines)


def evaluate(
    request: Request,
    held: Sequence[StoredCredential],
    trust_list: TrustList,
    *,
    now: datetime,
) -> Evaluation:
    """The evaluation of ``request`` against the credentials ``held`` and ``trust_list`` at
    ``now``. Never raises for a parsed request: every problem is a status, a block or a
    warning (``specs/request.md`` §5 lists them)."""
    keep_until = request.purpose.retention.keep_until(now)
    verifier, registration, block = _check_verifier(request, trust_list)
    base = Evaluation(request, now, Status.BLOCKED, verifier, registration, block, (), (), (),
                      keep_until)
    if block is not None:
        return base
    if request.expired(now):
        return _replace(base, status=Status.EXPIRED, block=None)
    usable = [c for c in held if not c.expired(now)]
    found = match_dcql(request.dcql, [c.held() for c in usable])
    by_id = {c.id: c for c in usable}
    lines = tuple(_line(request, r.query_id, r.match, r.optional, by_id, trust_list)
                  for r in found.release)
    missing = _missing(found)
    status = Status.READY if found.satisfied else Status.UNMATCHED
    return _replace(
        base,
        status=status,
        block=None,
        lines=lines if found.satisfied else (),
        missing=missing,
        warnings=_warnings(request, lines, missing, found, now, keep_until),
    )


def _replace(base: Evaluation, **changes: Any) -> Evaluation:
    return Evaluation(**{**base.__dict__, **changes})


# --- the verifier and its registration ---------------------------------------------------


def _check_verifier(
    request: Request, trust_list: TrustList
) -> tuple[Agency | None, Registration | None, Block | None]:
    try:
        agency = trust_list.verifier(request.client_id)
    except NotAVerifier:
        return None, None, _not_registered(request)
    name = Text(nl=agency.names.nl, en=agency.names.en)
    purpose = request.purpose
    registration = next((p for p in agency.purposes or () if p.id == purpose.purpose_id), None)
    if registration is None:
        return agency, None, _unknown_purpose(name, purpose.purpose_id)
    if (_dpv(registration.dpv), registration.processing_activity, registration.legal_basis) != (
        _dpv(purpose.dpv), purpose.processing_activity, purpose.legal_basis
    ):
        return agency, None, _purpose_mismatch(name)
    over = _over_asked(request, trust_list)
    if over:
        return agency, registration, _over_asking(name, over)
    return agency, registration, None


def _dpv(term: str) -> str:
    """``dpv:Term`` for both ways of writing a DPV core purpose (trustlist.md §4)."""
    return "dpv:" + term.removeprefix(DPV_IRI) if term.startswith(DPV_IRI) else term


def _over_asked(request: Request, trust_list: TrustList) -> tuple[ClaimRef, ...]:
    """Every (type, path) the query asks that the registration does not cover. A type the
    verifier is not registered for counts with all its paths; asked without claims, it is
    named by ``["vct"]``: the credential's always-disclosed part, which then still leaves."""
    out: list[ClaimRef] = []
    purpose = request.purpose.purpose_id
    for query in request.dcql.credentials:
        paths = [c.path for c in query.claims or ()]
        for vct in query.vct_values:
            try:
                excess = trust_list.excess_claims(request.client_id, purpose, vct, paths)
            except NotRegistered:
                excess = tuple(paths) or (("vct",),)
            out.extend(ClaimRef(vct, path) for path in excess)
    return tuple(dict.fromkeys(out))


def _not_registered(request: Request) -> Block:
    who = request.client_id
    return Block(BlockReason.NOT_REGISTERED, Text(
        en=f"'{who}' is not on the trust list as an organisation that may ask for your data. "
           "kluis has blocked this request. Nothing was shared.",
        nl=f"'{who}' staat niet op de vertrouwenslijst als organisatie die uw gegevens mag "
           "vragen. kluis heeft dit verzoek tegengehouden. Er is niets gedeeld.",
    ))


def _unknown_purpose(name: Text, purpose_id: str) -> Block:
    return Block(BlockReason.UNKNOWN_PURPOSE, Text(
        en=f"{name.en} is not registered to ask for data for this purpose ('{purpose_id}'). "
           "kluis has blocked this request. Nothing was shared.",
        nl=f"{name.nl} is niet geregistreerd om voor dit doel ('{purpose_id}') gegevens te "
           "vragen. kluis heeft dit verzoek tegengehouden. Er is niets gedeeld.",
    ))


def _purpose_mismatch(name: Text) -> Block:
    return Block(BlockReason.UNKNOWN_PURPOSE, Text(
        en=f"{name.en} gives another legal basis, purpose or processing activity than it "
           "registered. kluis has blocked this request. Nothing was shared.",
        nl=f"{name.nl} noemt een andere grondslag, een ander doel of een andere verwerking dan "
           "geregistreerd. kluis heeft dit verzoek tegengehouden. Er is niets gedeeld.",
    ))


def _over_asking(name: Text, over: tuple[ClaimRef, ...]) -> Block:
    labels = [_claim_ref_label(ref) for ref in over]
    return Block(BlockReason.OVER_ASKING, Text(
        en=f"{name.en} asks for more than it is registered for: {join_labels(labels, 'en')}. "
           "kluis has blocked this request. Nothing was shared.",
        nl=f"{name.nl} vraagt meer dan waarvoor de organisatie geregistreerd is: "
           f"{join_labels(labels, 'nl')}. kluis heeft dit verzoek tegengehouden. "
           "Er is niets gedeeld.",
    ), over)


def _claim_ref_label(ref: ClaimRef) -> Text:
    kind = type_name(ref.vct)
    if ref.path == ("vct",):
        return kind
    label = claim_label(ref.vct, ref.path)
    return Text(nl=f"{label['nl']} ({kind.nl})", en=f"{label['en']} ({kind.en})")


# --- what would leave --------------------------------------------------------------------


def _line(
    request: Request, query_id: str, match: CredentialMatch, optional: bool,
    held: Mapping[str, StoredCredential], trust_list: TrustList,
) -> CredentialLine:
    credential = held[match.credential_id]
    query = request.dcql.credential(query_id)
    droppable = optional_claims(query, credential, match)
    claims = [
        _claim_line(credential, path, always=False, optional=path in droppable)
        for path in match.requested
    ] + [_claim_line(credential, path, always=True, optional=False)
         for path in match.always_disclosed]
    issuer = next((a for a in trust_list.agencies if a.id == credential.issuer), None)
    name = (Text(nl=issuer.names.nl, en=issuer.names.en) if issuer is not None
            else Text(nl=credential.issuer, en=credential.issuer))
    return CredentialLine(query_id, credential, match, optional, tuple(claims),
                          query.require_cryptographic_holder_binding, name)


def _claim_line(
    credential: StoredCredential, path: ConcretePath, *, always: bool, optional: bool
) -> ClaimLine:
    found = select(path, credential.claims)
    value = found[0].value if found else None
    label = claim_label(credential.vct, path)
    return ClaimLine(path, Text(nl=label["nl"], en=label["en"]), value, always, optional)


def optional_claims(
    query: CredentialQuery, credential: StoredCredential, match: CredentialMatch
) -> frozenset[ConcretePath]:
    """The requested claims the citizen may leave out: those for which another claim set the
    credential satisfies asks for a subset of the rest (OpenID4VP 1.0 §6.4.1: the verifier
    accepts any of its claim sets)."""
    asked = set(match.requested)
    options = [alternative(query, credential, n) for n in match.satisfiable_claim_sets]
    return frozenset(
        path for path in asked
        if any(o is not None and set(o.requested) <= asked - {path} for o in options)
    )


def alternative(
    query: CredentialQuery, credential: StoredCredential, claim_set: int
) -> CredentialMatch | None:
    """What ``credential`` would release for ``query`` under claim set ``claim_set``."""
    return match_credential(query, credential.held(), claim_set=claim_set)


def _missing(found: DcqlMatch) -> tuple[str, ...]:
    if found.satisfied:
        return ()
    required = [q.query_id for q in found.queries if q.required and not q.candidates]
    return tuple(required or [q.query_id for q in found.queries if not q.candidates])


def requested_claims(request: Request, lines: Sequence[CredentialLine]) -> tuple[ClaimRef, ...]:
    """Each claims query of the request as a ``ClaimRef``: the type of the credential that
    answers it, else the first type the query accepts; optional per claim set."""
    chosen = {line.query_id: line for line in lines}
    out: list[ClaimRef] = []
    for query in request.dcql.credentials:
        line = chosen.get(query.id)
        vct = line.vct if line is not None else query.vct_values[0]
        droppable = {c.path for c in line.claims if c.optional} if line is not None else set()
        for claim in query.claims or ():
            out.append(ClaimRef(vct, claim.path, optional=claim.path in droppable))
    return tuple(out)


# --- warnings ----------------------------------------------------------------------------


def _warnings(
    request: Request, lines: Sequence[CredentialLine], missing: Sequence[str],
    found: DcqlMatch, now: datetime, keep_until: date,
) -> tuple[Caution, ...]:
    out: list[Caution] = []
    if keep_until > (now + LONG_RETENTION).date():
        out.append(Caution("retention_long", Text(
            en=f"They keep your data for more than a year: until {format_date(keep_until, 'en')}.",
            nl=f"Ze bewaren uw gegevens langer dan een jaar: tot {format_date(keep_until, 'nl')}.",
        )))
    if any(c.path == BSN for q in request.dcql.credentials for c in q.claims or ()):
        out.append(Caution("bsn", Text(
            en="They ask for your citizen service number (BSN). Only share it when the law "
               "allows them to ask for it.",
            nl="Ze vragen uw burgerservicenummer (BSN). Deel het alleen als de wet hen toestaat "
               "erom te vragen.",
        )))
    for query_id in missing:
        kind = type_name(request.dcql.credential(query_id).vct_values[0])
        out.append(Caution("unmatched", Text(
            en=f"You do not have the document this request needs ({kind.en}). "
               "You can only refuse it.",
            nl=f"U heeft het document niet dat dit verzoek nodig heeft ({kind.nl}). "
               "U kunt het alleen weigeren.",
        )))
    if found.satisfied:
        answered = {line.query_id for line in lines}
        for result in found.queries:
            if result.query_id not in answered and not result.required and not result.candidates:
                kind = type_name(request.dcql.credential(result.query_id).vct_values[0])
                out.append(Caution("optional_missing", Text(
                    en=f"They also ask for {kind.en}, which you do not have. "
                       "They can do without it.",
                    nl=f"Ze vragen ook om {kind.nl}. Dat heeft u niet. Het is niet verplicht.",
                )))
    if not request.signed:
        out.append(Caution("unsigned", Text(
            en="This request is not signed. kluis checked the organisation on the trust list, "
               "but cannot prove that the request comes from them.",
            nl="Dit verzoek is niet ondertekend. kluis controleerde de organisatie op de "
               "vertrouwenslijst, maar kan niet bewijzen dat het verzoek van hen komt.",
        )))
    return tuple(out)

