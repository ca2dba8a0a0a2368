"""Verifying SD-JWT VCs (RFC 9901 §7.1, §7.3; SD-JWT VC draft-18): the relying party's side.

``verify_sd_jwt`` runs the checklist of STANDARDS.md §1.4 A-F in order and returns the
verified claims or raises one coded error. Whether key binding is required is the caller's
decision, made before the presentation is looked at (§7.3 step 1). Issuer keys come from an
injectable ``IssuerKeys`` (a trust list plugs in there); revocation from an injectable
``StatusChecker``, asked only after every other check has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from vault import VerificationFailed
from verifiers.claim_path import ClaimPath
from verifiers.disclosure import HASHES
from verifiers.jws import (
    ALGORITHMS,
    Alg,
    VerifyingKey,
    check_header,
    check_signature,
    parse_jws,
)
from verifiers.jws import BadSignature as JwsBadSignature
from verifiers.keybinding import (
    KbMissing,
    KbUnexpected,
    KeyBinding,
    NoHolderKey,
    WrongHolderKey,
    check_key_binding,
    holder_key_of,
)
from verifiers.sdjwt import (
    MAX_LENGTH,
    NEVER_DISCLOSABLE,
    Malformed,
    index_disclosures,
    parse_compact,
    process_disclosures,
    sd_alg_of,
)


class BadTyp(VerificationFailed):
    code = "sdjwt.bad_typ"
    en = "The credential is not marked as an SD-JWT VC (typ 'dc+sd-jwt'). It is refused."
    nl = "De credential is niet gemarkeerd als SD-JWT VC (typ 'dc+sd-jwt'). Die wordt geweigerd."


class BadSignature(VerificationFailed):
    code = "sdjwt.bad_signature"
    en = "The issuer's signature does not verify. The credential was changed or is not genuine."
    nl = "De handtekening van de uitgever klopt niet. De credential is veranderd of niet echt."


class UnknownIssuer(VerificationFailed):
    code = "sdjwt.unknown_issuer"
    en = "The credential comes from an issuer that is not trusted here: '{iss}'."
    nl = "De credential komt van een uitgever die hier niet vertrouwd wordt: '{iss}'."


class UnknownKey(VerificationFailed):
    code = "sdjwt.unknown_key"
    en = "The issuer is known, but not the key the credential names. Ask the issuer to check it."
    nl = (
        "De uitgever is bekend, maar de sleutel die de credential noemt niet. Vraag de "
        "uitgever om dat na te gaan."
    )


class MissingClaim(VerificationFailed):
    code = "sdjwt.missing_claim"
    en = "The credential lacks the claim '{name}', which is required."
    nl = "De credential mist de verplichte claim '{name}'."


class NonDisclosableClaim(VerificationFailed):
    code = "sdjwt.non_disclosable_claim"
    en = "A claim that must always be visible ('{name}') arrived hidden in a disclosure. Refused."
    nl = (
        "Een claim die altijd zichtbaar moet zijn ('{name}') zat verborgen in een "
        "onthulling. Geweigerd."
    )


class Expired(VerificationFailed):
    code = "sdjwt.expired"
    en = "The credential has expired. Ask the issuer for a new one."
    nl = "De credential is verlopen. Vraag de uitgever om een nieuwe."


class NotYetValid(VerificationFailed):
    code = "sdjwt.not_yet_valid"
    en = "The credential is not valid yet. Try again later or check the clock."
    nl = "De credential is nog niet geldig. Probeer het later of controleer de klok."


class WrongVct(VerificationFailed):
    code = "sdjwt.wrong_vct"
    en = "The credential is of another type ('{vct}') than asked for."
    nl = "De credential is van een ander type ('{vct}') dan gevraagd."


class IssuerKeys(Protocol):
    """Where issuer keys come from: a trust list, issuer metadata, or a fixed mapping."""

    def key_for(self, iss: str, header: Mapping[str, Any]) -> VerifyingKey:
        """The key ``iss`` signs with, chosen by the JWT ``header`` (``kid``).

        Raises ``UnknownIssuer``/``UnknownKey`` (or a trust list's own refusal).
        """
        ...


class StatusChecker(Protocol):
    """A Token Status List lookup: returns for VALID, raises for revoked or suspended."""

    def check_status(self, status: Mapping[str, Any], *, now: int) -> None:
        """Return if the ``status`` claim's entry is valid at ``now``; raise otherwise."""
        ...


@dataclass(frozen=True)
class IssuerKeyMap:
    """``IssuerKeys`` from a fixed mapping ``iss`` -> keys (for tests, tools and pinning)."""

    keys: Mapping[str, tuple[VerifyingKey, ...]]

    @classmethod
    def of(cls, mapping: Mapping[str, VerifyingKey | Iterable[VerifyingKey]]) -> IssuerKeyMap:
        """The map from ``iss`` to one key or several."""
        return cls({
            iss: (keys,) if isinstance(keys, VerifyingKey) else tuple(keys)
            for iss, keys in mapping.items()
        })

    def key_for(self, iss: str, header: Mapping[str, Any]) -> VerifyingKey:
        """The key of ``iss`` named by the header's ``kid``; without a ``kid``, the issuer's
        only key. A key without ``kid`` stands for any ``kid`` when it is the only one.

        Raises ``UnknownIssuer`` and ``UnknownKey``.
        """
        keys = self.keys.get(iss)
        if not keys:
            raise UnknownIssuer("SD-JWT VC draft-18 §2.5: no key known for this issuer", iss=iss)
        kid = header.get("kid")
        for key in keys:
            if kid is not None and key.kid == kid:
                return key
        if len(keys) == 1 and (kid is None or keys[0].kid is None):
            return keys[0]
        raise UnknownKey("SD-JWT VC draft-18 §2.5: the header's 'kid' names no known key")


@dataclass(frozen=True)
class Policy:
    """The verifier's rules. The defaults are strict; relax them only with a reason.

    ``accepted_typ`` is compared case-insensitively, with or without ``application/``
    (RFC 7515 §4.1.9). ``leeway`` is the clock skew allowed, in seconds.
    """

    accepted_typ: frozenset[str] = frozenset({"dc+sd-jwt"})
    algorithms: frozenset[Alg] = ALGORITHMS
    hash_algs: frozenset[str] = frozenset(HASHES)
    require_exp: bool = True
    require_vct: bool = True
    leeway: int = 30
    max_length: int = MAX_LENGTH


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class VerifiedCredential:
    """What a verification established: the processed claims (RFC 9901 §7.1), who issued
    them, the type, the holder key they are bound to, which claims came from disclosures,
    the Issuer-signed JWT header, and whether a KB-JWT was checked."""

    claims: dict[str, Any]
    issuer: str
    vct: str | None
    holder_jwk: dict[str, Any] | None
    disclosed: tuple[ClaimPath, ...]
    header: dict[str, Any] = field(repr=False)
    key_bound: bool


def _typ(value: object) -> str | None:
    if type(value) is not str:
        return None
    value = value.lower()
    return value[12:] if value.startswith("application/") else value


def _number(value: Any) -> bool:
    return (type(value) is int) or (type(value) is float)


def _check_validity(claims: Mapping[str, Any], now: float, policy: Policy) -> None:
    """RFC 9901 §7.1 step 6 / RFC 7519 §4.1.4-4.1.6, with ``policy.leeway``."""
    leeway = policy.leeway
    exp = claims.get("exp")
    if exp is None:
        if policy.require_exp:
            raise MissingClaim("kluis policy: every credential expires", name="exp")
    elif not _number(exp):
        raise Malformed("RFC 7519 §4.1.4: 'exp' is a NumericDate")
    elif now >= exp + leeway:
        raise Expired("RFC 7519 §4.1.4")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not _number(value):
            raise Malformed(f"RFC 7519 §4.1: '{name}' is a NumericDate")
        if value > now + leeway:
            raise NotYetValid(f"RFC 7519 §4.1: '{name}' is in the future")


def _check_vct(claims: Mapping[str, Any], expected: str | Iterable[str] | None,
               policy: Policy) -> str | None:
    """SD-JWT VC draft-18 §2.2.2.1: ``vct`` present, and one of ``expected`` (directly or
    through ``aka_vcts``)."""
    vct = claims.get("vct")
    if vct is None:
        if policy.require_vct or expected is not None:
            raise MissingClaim("SD-JWT VC draft-18 §2.2.2.1", name="vct")
        return None
    if type(vct) is not str:
        raise Malformed("SD-JWT VC draft-18 §2.2.2.1: 'vct' is a string")
    if expected is None:
        return vct
    wanted = {expected} if isinstance(expected, str) else set(expected)
    aka = claims.get("aka_vcts")
    also = [v for v in aka if type(v) is str] if type(aka) is list else []
    if vct not in wanted and wanted.isdisjoint(also):
        raise WrongVct("OpenID4VP 1.0 §B.3.5: 'vct_values'", vct=vct)
    return vct


def verify_sd_jwt(
    token: str, *, issuer_keys: IssuerKeys, now: int, key_binding: KeyBinding | None,
    expected_vct: str | Iterable[str] | None = None, status_checker: StatusChecker | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> VerifiedCredential:
    """The verified credential in presentation ``token`` (compact form; RFC 9901 §7.1, §7.3).

    ``key_binding`` None means the caller requires no KB-JWT, and then one must not be sent;
    otherwise a KB-JWT must be present and meet it. Checks, in order: the compact form;
    ``alg`` on the allow-list and ``typ``; the issuer key and signature; ``_sd_alg``; every
    disclosure (digests, duplicates, placement, name clashes, references); no validity
    claim disclosed; ``exp``/``nbf``/``iat`` at ``now``; ``vct``; the KB-JWT; and last the
    status, through ``status_checker``, if the credential has a ``status`` claim.

    Raises a ``KluisError`` naming the first check that failed (see specs/errors.md, sdjwt.*
    and jws.*), or whatever ``issuer_keys``/``status_checker`` raise.
    """
    parts = parse_compact(token, max_length=policy.max_length)
    if key_binding is None and parts.kb_jwt is not None:
        raise KbUnexpected("kluis policy, RFC 9901 §7.3 step 1, §9.5: no KB-JWT was asked for")
    if key_binding is not None and parts.kb_jwt is None:
        raise KbMissing("RFC 9901 §7.3 step 2: key binding is required")
    jwt = parse_jws(parts.issuer_jwt, "Issuer-signed JWT")
    alg = check_header(jwt.header, policy.algorithms)
    if _typ(jwt.header.get("typ")) not in policy.accepted_typ:
        raise BadTyp("SD-JWT VC draft-18 §2.2.1; RFC 9901 §9.11")
    iss = jwt.payload.get("iss")
    if type(iss) is not str:
        raise MissingClaim("SD-JWT VC draft-18 §2.2.2.3: 'iss' is signed", name="iss")
    try:
        check_signature(jwt, issuer_keys.key_for(iss, jwt.header), alg)
    except JwsBadSignature:
        raise BadSignature("RFC 9901 §7.1 step 2") from None
    hash_alg = sd_alg_of(jwt.payload, policy.hash_algs)
    processed = process_disclosures(jwt.payload, index_disclosures(parts.disclosures, hash_alg))
    claims = processed.claims
    for entry in processed.disclosed:
        if entry.path[0] in NEVER_DISCLOSABLE:
            raise NonDisclosableClaim("SD-JWT VC draft-18 §2.2.2.3", name=str(entry.path[0]))
    _check_validity(claims, now, policy)
    vct = _check_vct(claims, expected_vct, policy)
    if key_binding is not None and parts.kb_jwt is not None:
        check_key_binding(
            parts.kb_jwt, signed_prefix=parts.signed_prefix, holder_key=holder_key_of(claims),
            expected=key_binding, now=now, hash_alg=hash_alg, leeway=policy.leeway,
        )
    status = claims.get("status")
    if status_checker is not None and status is not None:
        status_checker.check_status(status, now=now)
    cnf = claims.get("cnf")
    holder_jwk = cnf.get("jwk") if type(cnf) is dict else None
    return VerifiedCredential(
        claims, iss, vct, holder_jwk if type(holder_jwk) is dict else None,
        tuple([entry.path for entry in processed.disclosed]), jwt.header, key_binding is not None,
    )


def verify_issued(
    token: str, *, issuer_keys: IssuerKeys, now: int, holder_key: VerifyingKey | None = None,
    expected_vct: str | Iterable[str] | None = None, status_checker: StatusChecker | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> VerifiedCredential:
    """The credential in ``token`` as the wallet receives it from the issuer: the full
    RFC 9901 §7.1 verification, refusing an SD-JWT+KB (an issuer sends none, §7.2), and, when
    ``holder_key`` is given, checking the credential is bound to it.

    Raises the ``verify_sd_jwt`` errors (``KbUnexpected`` for a KB-JWT), ``NoHolderKey`` and
    ``WrongHolderKey``.
    """
    verified = verify_sd_jwt(
        token, issuer_keys=issuer_keys, now=now, key_binding=None, expected_vct=expected_vct,
        status_checker=status_checker, policy=policy,
    )
    if holder_key is not None:
        if verified.holder_jwk is None:
            raise NoHolderKey("RFC 9901 §4.1.2: the credential has no 'cnf.jwk'")
        if holder_key_of(verified.claims).public_bytes() != holder_key.public_bytes():
            raise WrongHolderKey("RFC 9901 §4.1.2: 'cnf' names another key")
    return verified
