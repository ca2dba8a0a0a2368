"""Evaluating a DCQL query against the credentials a holder has (OpenID4VP 1.0 §6.4).

The result says, per credential query, which held credentials match and, for each, exactly
which claims would leave: the claims asked for, the disclosures the presentation must carry,
and separately the claims that travel anyway because the holder cannot withhold them (not
selectively disclosable), so the consent screen can say so. Nothing here decides or sends
anything; the wallet's consent engine does that with this result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifiers.claim_path import ConcretePath, is_prefix, select, sort_key
from verifiers.dcql import (
    SD_JWT_VC,
    ClaimsQuery,
    ClaimValue,
    CredentialQuery,
    DcqlQuery,
    UnknownReference,
)


@dataclass(frozen=True)
class HeldCredential:
    """What the wallet knows of one credential it holds.

    ``claims`` is the full processed payload (every disclosure applied). ``selectively_disclosable``
    holds the concrete paths that are each backed by a Disclosure; every other claim is always
    disclosed. ``holder_binding`` is true when the credential carries a ``cnf`` key.
    """

    id: str
    format: str
    vct: str
    claims: Mapping[str, Any]
    selectively_disclosable: frozenset[ConcretePath]
    holder_binding: bool = True


@dataclass(frozen=True)
class CredentialMatch:
    """One held credential that satisfies one credential query, and what it would release.

    ``requested``: the claims the query selects (after ``values`` matching), in query order.
    ``disclosures``: the selectively disclosable paths whose Disclosures the presentation must
    carry: those requested, their parents and, for a requested object or array, its parts.
    ``always_disclosed``: what the verifier sees besides ``requested`` because the holder cannot
    withhold it (e.g. ``iss``, ``vct``, ``cnf``, a plain part of a disclosed object).
    ``claim_set``: the index in ``claim_sets`` chosen (None without claim_sets);
    ``satisfiable_claim_sets``: every index the credential could satisfy, in order of preference.
    """

    credential_id: str
    requested: tuple[ConcretePath, ...]
    disclosures: tuple[ConcretePath, ...]
    always_disclosed: tuple[ConcretePath, ...]
    claim_set: int | None = None
    satisfiable_claim_sets: tuple[int, ...] = ()


@dataclass(frozen=True)
class QueryResult:
    """The held credentials matching one credential query, best first.

    ``required`` is true when the query must be answered for the request to be met: there are no
    credential_sets, or a required set lists it in every option.
    """

    query_id: str
    candidates: tuple[CredentialMatch, ...]
    multiple: bool
    required: bool


@dataclass(frozen=True)
class SetResult:
    """One credential set query: which of its options the held credentials can satisfy."""

    required: bool
    satisfiable_options: tuple[int, ...]

    @property
    def chosen(self) -> int | None:
        """The verifier's most preferred option that can be satisfied, if any."""
        return self.satisfiable_options[0] if self.satisfiable_options else None


@dataclass(frozen=True)
class Release:
    """A credential proposed for release: ``optional`` ones come from a non-required set."""

    query_id: str
    match: CredentialMatch
    optional: bool


@dataclass(frozen=True)
class DcqlMatch:
    """The evaluation of a whole query (OpenID4VP 1.0 §6.4.2).

    ``satisfied`` is false when the required credentials cannot all be delivered; then
    ``release`` is empty, because the wallet must then return no credential at all.
    """

    queries: tuple[QueryResult, ...]
    sets: tuple[SetResult, ...]
    satisfied: bool
    release: tuple[Release, ...]

    def result(self, query_id: str) -> QueryResult:
        """The result for the credential query called ``query_id``.

        Raises ``dcql.unknown_reference`` when the query has no such id.
        """
        for result in self.queries:
            if result.query_id == query_id:
                return result
        raise UnknownReference(f"no credential query with id {query_id!r}")


def match_dcql(query: DcqlQuery, held: Sequence[HeldCredential]) -> DcqlMatch:
    """Evaluate ``query`` against ``held`` (OpenID4VP 1.0 §6.4.1 and §6.4.2).

    Returns the per-query candidates, the satisfiable options of every credential set, and the
    default release: for each needed credential query its first candidate; for each credential
    set its first satisfiable option. Never raises for a parsed query.
    """
    results = tuple(
        QueryResult(
            query_id=q.id,
            candidates=tuple(m for h in held if (m := match_credential(q, h)) is not None),
            multiple=q.multiple,
            required=_required(query, q.id),
        )
        for q in query.credentials
    )
    found = {r.query_id for r in results if r.candidates}
    by_id = {r.query_id: r for r in results}
    if query.credential_sets is None:
        satisfied = len(found) == len(results)
        picks = [(r.query_id, False) for r in results]
        return DcqlMatch(results, (), satisfied, _releases(picks, by_id) if satisfied else ())
    sets = tuple(
        SetResult(s.required, tuple(i for i, o in enumerate(s.options) if set(o) <= found))
        for s in query.credential_sets
    )
    satisfied = all(s.chosen is not None for s in sets if s.required)
    picks = []
    for spec, result in zip(query.credential_sets, sets, strict=True):
        if result.chosen is not None:
            picks.extend((qid, not spec.required) for qid in spec.options[result.chosen])
    return DcqlMatch(results, sets, satisfied, _releases(picks, by_id) if satisfied else ())


def match_credential(
    query: CredentialQuery, held: HeldCredential, *, claim_set: int | None = None
) -> CredentialMatch | None:
    """What ``held`` would release for ``query``, or None when it does not match.

    It matches when the format is ``dc+sd-jwt`` on both sides, its ``vct`` is one of
    ``vct_values`` (exact match: type inheritance is not followed), it has holder binding when
    the query requires it, and the requested claims exist with an accepted value (§6.4.1).
    A query with ``trusted_authorities`` matches nothing: kluis credentials carry no X.509
    chain or federation path to check them against, and §6.1 says a credential returned
    should match one. ``claim_set`` picks another satisfiable option than the first.
    """
    if query.format != SD_JWT_VC or held.format != SD_JWT_VC or held.vct not in query.vct_values:
        return None
    if query.require_cryptographic_holder_binding and not held.holder_binding:
        return None
    if query.trusted_authorities is not None:
        return None
    chosen, satisfiable, claims = _choose_claims(query, held, claim_set)
    if claims is None:
        return None
    requested = _requested(claims, held)
    disclosures = _disclosures(held, requested)
    return CredentialMatch(
        credential_id=held.id,
        requested=requested,
        disclosures=disclosures,
        always_disclosed=_always_disclosed(held, requested, frozenset(disclosures)),
        claim_set=chosen,
        satisfiable_claim_sets=satisfiable,
    )


def _choose_claims(
    query: CredentialQuery, held: HeldCredential, wanted: int | None
) -> tuple[int | None, tuple[int, ...], tuple[ClaimsQuery, ...] | None]:
    """(chosen claim set, satisfiable sets, claims queries to answer) or claims None on no match."""
    if query.claims is None:
        return None, (), ()
    found = [bool(_selected(c, held)) for c in query.claims]
    if query.claim_sets is None:
        return None, (), query.claims if all(found) else None
    index = {c.id: i for i, c in enumerate(query.claims)}
    satisfiable = tuple(
        n for n, option in enumerate(query.claim_sets) if all(found[index[c]] for c in option)
    )
    chosen = satisfiable[0] if wanted is None and satisfiable else wanted
    if chosen is None or chosen not in satisfiable:
        return None, satisfiable, None
    option = set(query.claim_sets[chosen])
    return chosen, satisfiable, tuple(c for c in query.claims if c.id in option)


def _selected(claim: ClaimsQuery, held: HeldCredential) -> list[ConcretePath]:
    """The concrete paths a claims query selects in ``held``, keeping only accepted values."""
    found = select(claim.path, held.claims)
    if claim.values is not None:
        accepted = claim.values
        found = [s for s in found if _value_matches(s.value, accepted)]
    return [s.path for s in found]


def _value_matches(value: object, accepted: tuple[ClaimValue, ...]) -> bool:
    """Type and value both match exactly (§6.3): ``1`` is not ``true`` and not ``"1"``."""
    return any(type(value) is type(a) and value == a for a in accepted)


def _requested(claims: tuple[ClaimsQuery, ...], held: HeldCredential) -> tuple[ConcretePath, ...]:
    seen: dict[ConcretePath, None] = {}  # ordered set: duplicate claim queries are ignored (§6.1)
    for claim in claims:
        for path in _selected(claim, held):
            seen.setdefault(path, None)
    return tuple(seen)


def _disclosures(
    held: HeldCredential, requested: tuple[ConcretePath, ...]
) -> tuple[ConcretePath, ...]:
    """The Disclosures to present: for each requested claim its own, its parents' and its parts'."""
    needed = {
        q
        for q in held.selectively_disclosable
        for r in requested
        if is_prefix(q, r) or is_prefix(r, q)
    }
    return tuple(sorted(needed, key=sort_key))


def _always_disclosed(
    held: HeldCredential, requested: tuple[ConcretePath, ...], disclosed: frozenset[ConcretePath]
) -> tuple[ConcretePath, ...]:
    """The highest visible subtrees the query did not ask for, in document order."""
    withheld = held.selectively_disclosable - disclosed
    out: list[ConcretePath] = []

    def visit(node: object, path: ConcretePath) -> bool:
        """Report what is visible below ``node``; true when anything below is visible."""
        visible = False
        for key, child in _children(node):
            here = (*path, key)
            if here in withheld:
                continue
            visible = True
            if any(is_prefix(r, here) for r in requested):
                continue
            hidden_below = any(is_prefix(here, q) for q in withheld)
            asked_below = any(is_prefix(here, r) for r in requested)
            if (hidden_below or asked_below) and visit(child, here):
                continue
            out.append(here)
        return visible

    visit(held.claims, ())
    return tuple(out)


def _children(node: object) -> Iterator[tuple[str | int, Any]]:
    if isinstance(node, Mapping):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def _required(query: DcqlQuery, query_id: str) -> bool:
    if query.credential_sets is None:
        return True
    return any(s.required and all(query_id in o for o in s.options) for s in query.credential_sets)


def _releases(
    picks: list[tuple[str, bool]], by_id: Mapping[str, QueryResult]
) -> tuple[Release, ...]:
    """First candidate per picked query; a query picked by any required set is not optional."""
    optional: dict[str, bool] = {}
    for query_id, is_optional in picks:
        optional[query_id] = optional.get(query_id, True) and is_optional
    return tuple(
        Release(query_id, by_id[query_id].candidates[0], flag)
        for query_id, flag in optional.items()
        if by_id[query_id].candidates
    )
