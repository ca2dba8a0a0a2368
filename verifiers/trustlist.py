"""The trust list: a signed document naming the agencies a wallet may deal with.

Per agency it holds its id (the ``iss`` of what it issues, the base of its verifier client
id), names in Dutch and English, roles (issuer, verifier), public keys and, for a verifier,
the purposes it is registered for with the claims it may ask per credential type, much like
the EU wallet's relying-party registration. The format, its signature and the checks are in
``specs/trustlist.md``; its JSON Schema is ``specs/schemas/trustlist.schema.json``.

The list is RFC 8785 canonical JSON signed as a compact JWS (``typ: kluis-trustlist+jwt``) by
the trust anchor. :func:`verify_trust_list` gives a frozen :class:`TrustList` or raises a
``trustlist.*`` error; the list's lookups raise when asked about what it does not allow.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import rfc8785
from cryptography import x509
from jwcrypto.jwk import JWK
from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from vault import InvalidInput, KluisError, NotFound, NotPermitted, VerificationFailed
from verifiers._document import (
    ClaimPathField,
    DpvPurpose,
    HttpsUrl,
    Identifier,
    LegalBasis,
    LocalizedText,
    ShortText,
    Strict,
    Timestamp,
    check_no_null_members,
)
from verifiers._jose import JoseFailure, Reason, b64url, key_id, sign_compact, verify_compact
from verifiers._jwk import EncryptionJwks, SigningJwk, SigningJwks
from verifiers.claim_path import ClaimPath, covers
from verifiers.jws import VerifyingKey, parse_jwk

TYP = "kluis-trustlist+jwt"
MAX_TOKEN_LENGTH = 4 * 1024 * 1024
CLOCK_SKEW = timedelta(minutes=5)
SPEC = "specs/trustlist.md"


class Malformed(InvalidInput):
    code = "trustlist.malformed"
    en = "The trust list is damaged or not in the expected form. Fetch it again."
    nl = "De vertrouwenslijst is beschadigd of niet in de verwachte vorm. Haal hem opnieuw op."


class SchemaViolation(InvalidInput):
    code = "trustlist.schema_violation"
    en = "The trust list does not follow its format. Ask its publisher to correct it."
    nl = "De vertrouwenslijst volgt haar formaat niet. Vraag de uitgever om haar te verbeteren."


class DuplicateAgency(InvalidInput):
    code = "trustlist.duplicate_agency"
    en = "The trust list names the same organisation twice. Ask its publisher to correct it."
    nl = (
        "De vertrouwenslijst noemt dezelfde organisatie twee keer. "
        "Vraag de uitgever dit te verbeteren."
    )


class UnknownRole(InvalidInput):
    code = "trustlist.unknown_role"
    en = (
        "The trust list gives an organisation a role kluis does not know. Ask for a corrected list."
    )
    nl = (
        "De vertrouwenslijst geeft een organisatie een onbekende rol. "
        "Vraag om een verbeterde lijst."
    )


class UnsupportedKey(InvalidInput):
    code = "trustlist.unsupported_key"
    en = "This key cannot sign a trust list. Use a private P-256 or Ed25519 key."
    nl = (
        "Deze sleutel kan geen vertrouwenslijst ondertekenen. "
        "Gebruik een privé P-256- of Ed25519-sleutel."
    )


class BadAlgorithm(VerificationFailed):
    code = "trustlist.bad_algorithm"
    en = "The trust list uses a signing method kluis does not accept. Do not use this list."
    nl = (
        "De vertrouwenslijst gebruikt een ondertekenmethode die kluis niet accepteert. "
        "Gebruik haar niet."
    )


class WrongType(VerificationFailed):
    code = "trustlist.wrong_type"
    en = "This signed document is not a trust list. Check that you chose the right file."
    nl = (
        "Dit ondertekende document is geen vertrouwenslijst. "
        "Controleer of u het juiste bestand koos."
    )


class WrongAnchor(VerificationFailed):
    code = "trustlist.wrong_anchor"
    en = "The trust list was not signed by the trust anchor you configured. Do not use this list."
    nl = (
        "De vertrouwenslijst is niet ondertekend door het ingestelde vertrouwensanker. "
        "Gebruik haar niet."
    )


class BadSignature(VerificationFailed):
    code = "trustlist.bad_signature"
    en = "The signature on the trust list is not valid. Do not use this list; fetch it again."
    nl = (
        "De handtekening op de vertrouwenslijst klopt niet. "
        "Gebruik haar niet; haal haar opnieuw op."
    )


class Expired(VerificationFailed):
    code = "trustlist.expired"
    en = "The trust list is out of date. Fetch the newest list and try again."
    nl = "De vertrouwenslijst is verouderd. Haal de nieuwste lijst op en probeer het opnieuw."


class NotYetValid(VerificationFailed):
    code = "trustlist.not_yet_valid"
    en = "The trust list is dated in the future. Check your computer's clock."
    nl = "De vertrouwenslijst heeft een datum in de toekomst. Controleer de klok van uw computer."


class Rollback(VerificationFailed):
    code = "trustlist.rollback"
    en = "This trust list is older than one you already used. Fetch the newest list."
    nl = (
        "Deze vertrouwenslijst is ouder dan een lijst die u al gebruikte. "
        "Haal de nieuwste lijst op."
    )


class UnknownAgency(NotFound):
    code = "trustlist.unknown_agency"
    en = "The trust list does not name this organisation."
    nl = "Deze organisatie staat niet op de vertrouwenslijst."


class NotAnIssuer(NotPermitted):
    code = "trustlist.not_an_issuer"
    en = "This organisation is not trusted to issue documents. The document cannot be accepted."
    nl = (
        "Deze organisatie mag volgens de vertrouwenslijst geen documenten uitgeven. "
        "Het wordt geweigerd."
    )


class NotAVerifier(NotPermitted):
    code = "trustlist.not_a_verifier"
    en = "This organisation is not registered to ask for your data. Nothing was shared."
    nl = "Deze organisatie is niet geregistreerd om uw gegevens te vragen. Er is niets gedeeld."


class UnknownKey(VerificationFailed):
    code = "trustlist.unknown_key"
    en = (
        "The document was signed with a key the trust list does not give for its issuer. "
        "It is refused."
    )
    nl = (
        "Het document is ondertekend met een sleutel die niet op de vertrouwenslijst "
        "staat. Het wordt geweigerd."
    )


class UnknownPurpose(NotPermitted):
    code = "trustlist.unknown_purpose"
    en = "The organisation is not registered for this purpose. Nothing was shared."
    nl = "De organisatie is niet geregistreerd voor dit doel. Er is niets gedeeld."


class NotRegistered(NotPermitted):
    code = "trustlist.not_registered"
    en = "The organisation is not registered to ask for this kind of document for this purpose."
    nl = "De organisatie is niet geregistreerd om dit soort document voor dit doel te vragen."


class Role(StrEnum):
    ISSUER = "issuer"
    VERIFIER = "verifier"


class CredentialRegistration(Strict):
    """A credential type a verifier may ask for under one purpose, and which claims of it."""

    vct: ShortText
    claims: Annotated[tuple[ClaimPathField, ...], Field(max_length=256)]


class Registration(Strict):
    """One purpose a verifier is registered for (``specs/trustlist.md`` §4)."""

    id: Identifier
    dpv: DpvPurpose
    description: LocalizedText
    legal_basis: LegalBasis
    processing_activity: ShortText
    credentials: Annotated[tuple[CredentialRegistration, ...], Field(min_length=1, max_length=32)]

    @model_validator(mode="after")
    def _one_entry_per_type(self) -> Registration:
        _unique([c.vct for c in self.credentials], "credential types of a purpose")
        return self

    def allowed_claims(self, vct: str) -> tuple[ClaimPath, ...]:
        """The claim paths registered for ``vct``; raises ``trustlist.not_registered``."""
        for entry in self.credentials:
            if entry.vct == vct:
                return entry.claims
        raise NotRegistered(f"{SPEC} §4: {vct!r} is not registered for purpose {self.id!r}")


class Agency(Strict):
    """One agency on the list (``specs/trustlist.md`` §3)."""

    id: HttpsUrl
    names: LocalizedText
    roles: Annotated[tuple[Role, ...], Field(min_length=1, max_length=2)]
    jwks: SigningJwks
    client_id: ShortText | None = None
    x509: Annotated[tuple[str, ...], Field(min_length=1, max_length=8)] | None = None
    encryption_jwks: EncryptionJwks | None = None
    purposes: Annotated[tuple[Registration, ...], Field(min_length=1, max_length=256)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Agency:
        _unique(list(self.roles), "roles")
        _unique([k.kid for k in self.jwks.keys], "key ids")
        verifier_only = (self.client_id, self.x509, self.encryption_jwks, self.purposes)
        if Role.VERIFIER not in self.roles and any(v is not None for v in verifier_only):
            raise ValueError("client_id, x509, encryption_jwks and purposes belong to verifiers")
        if Role.VERIFIER in self.roles and self.purposes is None:
            raise ValueError("a verifier lists the purposes it is registered for")
        _unique([p.id for p in self.purposes or ()], "purpose ids")
        if self.x509 is not None:
            _check_certificates(self.x509, self.client_id)
        return self

    def name(self, lang: str) -> str:
        """The agency's name in ``lang`` (Dutch unless ``"en"``)."""
        return self.names.text(lang)

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class TrustList(Strict):
    """A verified trust list (``specs/trustlist.md`` §2); frozen."""

    list_id: ShortText
    issuer: ShortText
    issued_at: Timestamp
    next_update: Timestamp
    sequence: Annotated[int, Field(ge=0, le=2**53 - 1)]
    agencies: Annotated[tuple[Agency, ...], Field(max_length=10_000)]

    @model_validator(mode="after")
    def _consistent(self) -> TrustList:
        if self.next_update <= self.issued_at:
            raise ValueError("next_update comes after issued_at")
        ids = [a.id for a in self.agencies]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise PydanticCustomError(
                "duplicate_agency", "agency {ids} listed twice", {"ids": twice}
            )
        _unique([a.client_id for a in self.agencies if a.client_id], "client ids")
        return self

    def agency(self, agency_id: str) -> Agency:
        """The agency with this id; raises ``trustlist.unknown_agency``."""
        for agency in self.agencies:
            if agency.id == agency_id:
                return agency
        raise UnknownAgency(f"{SPEC} §7: {agency_id!r} is not on list {self.list_id!r}")

    def issuer_key(self, iss: str, header: Mapping[str, Any]) -> JWK:
        """The public key of issuer ``iss`` that a JOSE ``header`` names by ``kid``.

        Fits the SD-JWT verifier's issuer-key resolver (``IssuerKeyResolver``). Without a
        ``kid`` the issuer must have exactly one key. Raises ``trustlist.not_an_issuer``
        (unknown or not an issuer) or ``trustlist.unknown_key``.
        """
        return self._issuer_jwk(iss, header).to_jwk()

    def _issuer_jwk(self, iss: str, header: Mapping[str, Any]) -> SigningJwk:
        agency = next((a for a in self.agencies if a.id == iss), None)
        if agency is None or not agency.has_role(Role.ISSUER):
            raise NotAnIssuer(f"{SPEC} §7: {iss!r} is not an issuer on list {self.list_id!r}")
        kid = header.get("kid")
        keys = agency.jwks.keys
        if kid is None and len(keys) == 1:
            return keys[0]
        for key in keys:
            if key.kid == kid:
                return key
        raise UnknownKey(f"{SPEC} §7: issuer {iss!r} has no key with this kid")

    def key_for(self, iss: str, header: Mapping[str, Any]) -> VerifyingKey:
        """:meth:`issuer_key` as a parsed ``verifiers.jws.VerifyingKey``, so a trust list is the
        SD-JWT verifier's ``IssuerKeys``. Keys are parsed once and remembered. Raises as
        :meth:`issuer_key` does.
        """
        return _verifying_key(self._issuer_jwk(iss, header))

    def verifier(self, client_id: str) -> Agency:
        """The verifier with this client id (its ``client_id``, else its agency id).

        Raises ``trustlist.not_a_verifier`` when no agency with the verifier role has it.
        """
        for agency in self.agencies:
            if agency.has_role(Role.VERIFIER) and client_id in (agency.client_id, agency.id):
                return agency
        raise NotAVerifier(f"{SPEC} §7: {client_id!r} is not a registered verifier")

    def registration(self, verifier: str, purpose_id: str) -> Registration:
        """The registration of ``verifier`` (client id) for ``purpose_id``.

        Raises ``trustlist.not_a_verifier`` or ``trustlist.unknown_purpose``.
        """
        for purpose in self.verifier(verifier).purposes or ():
            if purpose.id == purpose_id:
                return purpose
        raise UnknownPurpose(f"{SPEC} §4: {verifier!r} has no purpose {purpose_id!r}")

    def allowed_claims(self, verifier: str, purpose_id: str, vct: str) -> tuple[ClaimPath, ...]:
        """The claim paths ``verifier`` may ask of credential type ``vct`` for ``purpose_id``.

        Raises ``trustlist.not_a_verifier``, ``trustlist.unknown_purpose`` or
        ``trustlist.not_registered``.
        """
        return self.registration(verifier, purpose_id).allowed_claims(vct)

    def excess_claims(
        self, verifier: str, purpose_id: str, vct: str, requested: Iterable[ClaimPath]
    ) -> tuple[ClaimPath, ...]:
        """The requested paths no registered path covers (over-asking); empty when all fit.

        A registered path covers itself and what lies below it (``verifiers.claim_path.covers``).
        Raises as :meth:`allowed_claims` does.
        """
        allowed = self.allowed_claims(verifier, purpose_id, vct)
        return tuple(r for r in requested if not any(covers(a, r) for a in allowed))


@dataclass(frozen=True, eq=False)
class TrustAnchor:
    """The party whose signature makes a trust list trusted: its name and public key.

    The name must equal the list's ``issuer``; the key's ``kid`` (or RFC 7638 thumbprint) must
    be the JWS ``kid``.
    """

    name: str
    key: JWK

    @classmethod
    def from_jwk(cls, name: str, jwk: Mapping[str, Any] | JWK) -> TrustAnchor:
        """An anchor from a JWK, keeping its public part; raises ``trustlist.unsupported_key``."""
        try:
            key = jwk if isinstance(jwk, JWK) else JWK(**dict(jwk))
            public = JWK(**key.export_public(as_dict=True))
        except Exception:  # noqa: BLE001 - jwcrypto raises many kinds for a bad JWK
            raise UnsupportedKey("RFC 7517: not a usable public JWK") from None
        if (public.get("kty"), public.get("crv")) not in (("EC", "P-256"), ("OKP", "Ed25519")):
            raise UnsupportedKey(f"{SPEC} §5: the anchor key is P-256 or Ed25519")
        return cls(name=name, key=public)

    @property
    def kid(self) -> str:
        return key_id(self.key)


def sign_trust_list(doc: Mapping[str, Any] | TrustList, anchor_private_jwk: JWK) -> str:
    """The compact JWS of ``doc`` in RFC 8785 form, signed by the anchor (``trustlist.md`` §5).

    ``doc`` is checked first exactly as :func:`verify_trust_list` checks it, so an invalid list
    is never signed. Raises the ``trustlist.*`` schema errors or ``trustlist.unsupported_key``.
    """
    canonical = _canonical(format_trust_list(doc) if isinstance(doc, TrustList) else doc)
    _parse(canonical)
    try:
        return sign_compact(canonical, anchor_private_jwk, typ=TYP)
    except JoseFailure as failure:
        raise UnsupportedKey(failure.detail) from None


def parse_trust_list(doc: Mapping[str, Any] | str | bytes) -> TrustList:
    """The unsigned document ``doc`` (an object, or its JSON text) as a :class:`TrustList`,
    checked as :func:`sign_trust_list` checks it before signing (``trustlist.md`` §2-§4, §6
    step 5), so a list can be checked while it is being written. Nothing about a signature,
    the anchor or time is decided here: only :func:`verify_trust_list` makes a list trusted.

    Raises ``trustlist.malformed`` (text that is not JSON without duplicate member names) or
    the ``trustlist.*`` schema errors.
    """
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc, object_pairs_hook=_no_duplicate_members)
        except (ValueError, RecursionError):
            raise Malformed(f"{SPEC} §2: the document is JSON without duplicate members") from None
        if not isinstance(doc, dict):
            raise SchemaViolation(f"{SPEC} §2: the list is a JSON object")
    return _parse(_canonical(doc))


def format_trust_list(trust_list: TrustList) -> dict[str, Any]:
    """The unsigned document of ``trust_list``, absent members left out (``trustlist.md`` §2)."""
    return trust_list.model_dump(mode="json", exclude_none=True)


def verify_trust_list(
    signed: str, anchor: TrustAnchor, *, now: datetime, min_sequence: int | None = None
) -> TrustList:
    """The trust list in ``signed`` once every check of ``specs/trustlist.md`` §6 passes.

    ``now`` (timezone-aware) decides expiry; ``min_sequence`` is the highest sequence seen
    before, so an older list is refused. Raises ``trustlist.malformed``, ``bad_algorithm``,
    ``wrong_type``, ``wrong_anchor``, ``bad_signature``, ``schema_violation``,
    ``duplicate_agency``, ``unknown_role``, ``not_yet_valid``, ``expired`` or ``rollback``.
    """
    try:
        opened = verify_compact(signed, anchor.key, typ=TYP, max_length=MAX_TOKEN_LENGTH)
    except JoseFailure as failure:
        raise _JOSE_ERRORS[failure.reason](failure.detail) from None
    trust_list = _parse(opened.payload)
    if trust_list.issuer != anchor.name:
        raise WrongAnchor(f"{SPEC} §6 step 5: issuer is not the configured anchor")
    if now + CLOCK_SKEW < trust_list.issued_at:
        raise NotYetValid(f"{SPEC} §6 step 6: issued_at is in the future")
    if now >= trust_list.next_update:
        raise Expired(f"{SPEC} §6 step 6: next_update has passed")
    if min_sequence is not None and trust_list.sequence < min_sequence:
        raise Rollback(f"{SPEC} §6 step 7: sequence {trust_list.sequence} < {min_sequence}")
    return trust_list


def trust_list_hash(signed: str) -> str:
    """base64url SHA-256 of the signed list as text: names one list version in a log entry."""
    return b64url(hashlib.sha256(signed.encode("ascii", "replace")).digest())


_JOSE_ERRORS: dict[Reason, type[KluisError]] = {
    Reason.MALFORMED: Malformed,
    Reason.BAD_ALGORITHM: BadAlgorithm,
    Reason.WRONG_TYPE: WrongType,
    Reason.WRONG_KEY: WrongAnchor,
    Reason.BAD_SIGNATURE: BadSignature,
    Reason.UNSUPPORTED_KEY: WrongAnchor,
}


def _canonical(doc: Mapping[str, Any]) -> bytes:
    try:
        return bytes(rfc8785.dumps(doc))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        raise SchemaViolation(f"{SPEC} §2: the list holds values JSON cannot carry") from None


def _parse(payload: bytes) -> TrustList:
    """The list in canonical JSON ``payload``; raises malformed or the schema errors."""
    try:
        obj = json.loads(payload, object_pairs_hook=_no_duplicate_members)
    except (ValueError, RecursionError):
        raise Malformed(f"{SPEC} §5: the payload is not JSON (RFC 8259, RFC 8785 §3.1)") from None
    try:
        canonical = rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        raise Malformed(f"{SPEC} §5: the payload holds numbers RFC 8785 cannot carry") from None
    if canonical != payload:
        raise Malformed(f"{SPEC} §5: the payload is not in RFC 8785 canonical form")
    if (where := check_no_null_members(obj)) is not None:
        raise SchemaViolation(f"{SPEC} §2: {where} is null; leave absent members out")
    try:
        return TrustList.model_validate_json(payload)
    except ValidationError as error:
        raise _schema_error(error) from None


def _no_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate member name")
    return dict(pairs)


def _schema_error(error: ValidationError) -> KluisError:
    """The most telling code for a failed validation, with the place and rule in the detail."""
    problems = error.errors(include_input=False, include_url=False)
    for problem in problems:
        where = ".".join(str(p) for p in problem["loc"]) or "list"
        if problem["type"] == "duplicate_agency":
            return DuplicateAgency(f"{SPEC} §3: {problem['msg']}")
        if problem["type"] == "enum" and "roles" in problem["loc"]:
            return UnknownRole(f"{SPEC} §3: {where}: roles are issuer and verifier")
    first = problems[0]
    where = ".".join(str(p) for p in first["loc"]) or "list"
    return SchemaViolation(f"{SPEC}: {where}: {first['msg']}")


def _unique(values: list[Any], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} are unique")


def _check_certificates(chain: tuple[str, ...], client_id: str | None) -> None:
    """Each entry is a base64 DER certificate; an ``x509_hash`` client id hashes the leaf."""
    try:
        ders = [base64.b64decode(c, validate=True) for c in chain]
        for der in ders:
            x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError(
            "x509 holds base64 DER certificates, leaf first (RFC 7515 §4.1.6)"
        ) from None
    if client_id is not None and client_id.startswith("x509_hash:"):
        expected = "x509_hash:" + b64url(hashlib.sha256(ders[0]).digest())
        if client_id != expected:
            raise ValueError(
                "OpenID4VP 1.0 §5.9.3: x509_hash is the SHA-256 of the leaf certificate"
            )


@lru_cache(maxsize=1024)
def _verifying_key(jwk: SigningJwk) -> VerifyingKey:
    """Parsed once per key: the SD-JWT verifier asks for it on every credential."""
    return parse_jwk(jwk.model_dump(exclude_none=True))
