"""Who a verifying agency is (specs/openid4vp.md §2): its identity, its request-signing key
and certificate, and the purposes it is registered for.

``VerifierAgency`` is the configuration of one agency's verifier service. Its ``id`` (an https
URL) is its trust-list id and the ``verifier`` of its receipts; its client id is
``x509_hash:<SHA-256 of its leaf certificate>`` (OpenID4VP 1.0 §5.9.3, HAIP). One P-256 key
signs both its Request Objects (``typ`` ``oauth-authz-req+jwt``, the certificate in ``x5c``)
and its receipts (``typ`` ``kluis-receipt+jwt``, by ``kid`` from the trust list): explicit
typing keeps the two from ever being taken for one another.

Each purpose is the agency's trust-list registration (purpose id, DPV term, description,
legal basis, processing activity, and the claims it may ask per credential type) plus how long
it keeps what it receives. ``trust_list_entry`` writes the agency's entry for the trust list
from this very configuration, so the list and the service cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from vault import InvalidInput
from verifiers.claim_path import ClaimPath, covers
from verifiers.client_certificate import ClientCertificate, issue_client_certificate, x509_hash
from verifiers.jws import Alg, SigningKey, format_jwk, generate_signing_key, thumbprint
from verifiers.trustlist import NotRegistered, Registration
from wallet.purpose import Purpose, RequestRetention


class BadVerifierAgency(InvalidInput):
    code = "verifier.bad_agency"
    en = "The verifying agency's configuration is not valid. Check its id, key and purposes."
    nl = (
        "De instellingen van de controlerende organisatie zijn niet geldig. Controleer de id, "
        "de sleutel en de doelen."
    )


@dataclass(frozen=True)
class VerifierPurpose:
    """One purpose the agency asks for data under: its trust-list ``registration`` and how
    long it keeps what it receives (``retention``, shown to the citizen and put in receipts)."""

    registration: Registration
    retention: RequestRetention

    @property
    def id(self) -> str:
        return self.registration.id

    def covers(self, vct: str, path: ClaimPath) -> bool:
        """Whether the registration lets the agency ask for ``path`` of type ``vct``."""
        try:
            allowed = self.registration.allowed_claims(vct)
        except NotRegistered:
            return False
        return any(covers(a, path) for a in allowed)

    def purpose(self) -> Purpose:
        """The ``kluis_purpose`` data of a request for this purpose (specs/request.md §3)."""
        reg = self.registration
        return Purpose(purpose_id=reg.id, dpv=reg.dpv, description=reg.description,
                       legal_basis=reg.legal_basis, retention=self.retention,
                       processing_activity=reg.processing_activity)


def parse_verifier_purpose(doc: Mapping[str, Any]) -> VerifierPurpose:
    """A purpose from its JSON form: the trust-list registration members (specs/trustlist.md
    §4) plus ``retention`` ``{"duration", "description"?}``. Raises ``verifier.bad_agency``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("retention"), Mapping):
        raise BadVerifierAgency("specs/openid4vp.md §2: a purpose has a retention")
    members = {k: v for k, v in doc.items() if k != "retention"}
    try:
        registration = Registration.model_validate_json(json.dumps(members))
        retention = RequestRetention.model_validate_json(json.dumps(doc["retention"]))
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        first = str(error).splitlines()[1:2]
        raise BadVerifierAgency(f"specs/trustlist.md §4: {''.join(first)[:80]}") from None
    return VerifierPurpose(registration, retention)


@dataclass(frozen=True)
class VerifierAgency:
    """A verifying agency's configuration. ``signing_key`` is P-256 (ES256, HAIP) with a
    ``kid`` (its RFC 7638 thumbprint when none is given); ``certificate`` holds its public key
    (``issue_client_certificate``).

    Raises ``verifier.bad_agency`` for an id that is not an https URL, names without Dutch and
    English, a key that is not ES256, a certificate for another key, or no or duplicate
    purposes.
    """

    id: str
    names: Mapping[str, str]
    signing_key: SigningKey = field(repr=False)
    certificate: ClientCertificate = field(repr=False)
    purposes: tuple[VerifierPurpose, ...]

    def __post_init__(self) -> None:
        if not self.id.startswith("https://") or len(self.id) > 512:
            raise BadVerifierAgency("specs/trustlist.md §3: an agency id is an https URL")
        if not all(isinstance(self.names.get(lang), str) and self.names[lang]
                   for lang in ("nl", "en")):
            raise BadVerifierAgency("specs/trustlist.md §3: names in 'nl' and 'en'")
        if self.signing_key.alg is not Alg.ES256:
            raise BadVerifierAgency("HAIP 1.0 §5: requests are signed with ES256")
        ids = [p.id for p in self.purposes]
        if not ids or len(set(ids)) != len(ids):
            raise BadVerifierAgency("specs/trustlist.md §4: one or more purposes, unique ids")
        try:
            leaf = x509.load_der_x509_certificate(self.certificate.leaf)
            same = leaf.public_key() == self.signing_key.public.key
        except ValueError:
            same = False
        if not same or x509_hash(self.certificate.leaf) != self.certificate.client_id:
            raise BadVerifierAgency("OpenID4VP 1.0 §5.9.3: the certificate is of the signing key")
        if self.signing_key.kid is None:
            key = self.signing_key
            kid = thumbprint(key.public)
            public = type(key.public)(key.alg, key.public.key, kid, key.public.raw)
            object.__setattr__(self, "signing_key", SigningKey(key.alg, key.key, public, kid))

    @property
    def client_id(self) -> str:
        """``x509_hash:<base64url SHA-256 of the DER leaf>``: the client id in every request
        and the ``aud`` every KB-JWT must carry."""
        return self.certificate.client_id

    def purpose(self, purpose_id: str) -> VerifierPurpose | None:
        return next((p for p in self.purposes if p.id == purpose_id), None)

    @property
    def public_jwk(self) -> dict[str, str]:
        """The signing key's public JWK with ``kid``, ``use`` and ``alg`` (trust list ``jwks``)."""
        return {**format_jwk(self.signing_key.public), "use": "sig", "alg": "ES256"}

    def trust_list_entry(self, *, issuer_keys: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
        """The agency's entry for a trust list (specs/trustlist.md §3): role ``verifier`` (and
        ``issuer`` when ``issuer_keys`` are given, listed before the request key), its client
        id, its certificate and its registrations."""
        roles = ["issuer", "verifier"] if issuer_keys else ["verifier"]
        return {
            "id": self.id,
            "names": {"nl": self.names["nl"], "en": self.names["en"]},
            "roles": roles,
            "jwks": {"keys": [*issuer_keys, self.public_jwk]},
            "client_id": self.client_id,
            "x509": list(self.certificate.x5c),
            "purposes": [p.registration.model_dump(mode="json", exclude_none=True)
                         for p in self.purposes],
        }


def make_verifier_agency(
    agency_id: str, names: Mapping[str, str], purposes: tuple[VerifierPurpose, ...], *,
    now: datetime, signing_key: SigningKey | None = None, days: int = 365,
) -> VerifierAgency:
    """A verifying agency with a fresh ES256 key (unless ``signing_key`` is given) and a leaf
    certificate for it under a throw-away demo CA (``issue_client_certificate``): what the
    demo and the tests run. Raises ``verifier.bad_agency``."""
    key = signing_key or generate_signing_key(Alg.ES256)
    if key.kid is None:
        kid = thumbprint(key.public)
        key = SigningKey(key.alg, key.key, type(key.public)(key.alg, key.public.key, kid,
                                                            key.public.raw), kid)
    certificate = issue_client_certificate(key, name=names.get("en", agency_id)[:64],
                                           uri=agency_id, now=now, days=days)
    return VerifierAgency(agency_id, dict(names), key, certificate, purposes)
