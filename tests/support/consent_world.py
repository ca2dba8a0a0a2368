"""A small world for the consent engine's tests (wallet and CLI): a trust anchor, issuing
agencies, two verifiers, a citizen's vault with holder keys, credentials of the four types,
and requests.

Keys are made once per session (the slow part); every test gets a fresh vault.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jwcrypto.jwk import JWK

from vault import KdfParams, Vault, create_profile
from verifiers.credential_type import DIPLOMA, EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, SigningKey, VerifyingKey, format_jwk, generate_signing_key
from verifiers.trustlist import TrustAnchor, TrustList, sign_trust_list
from wallet.consent import Consent
from wallet.consent_log import ConsentLog
from wallet.credential import StoredCredential
from wallet.holder_key import holder_key
from wallet.trust import set_trust_list, trust_list
from wallet.wallet import SCHEMAS, Wallet, open_wallet

PASSPHRASE = "correct horse battery staple"
FAST = KdfParams(opslimit=1, memlimit=8192)
NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
ANCHOR_NAME = "kluis test anchor"

BRP = "https://brp.kluis.example"
TAX = "https://belastingdienst.kluis.example"
DUO = "https://duo.kluis.example"
UTRECHT = "https://utrecht.kluis.example"
DEV = "https://dev.kluis.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


UTRECHT_CLIENT = "x509_hash:" + b64(hashlib.sha256(b"utrecht test certificate").digest())
DEV_CLIENT = "redirect_uri:https://dev.kluis.example/response"
STRANGER_CLIENT = "x509_hash:" + b64(hashlib.sha256(b"nobody").digest())

CLAIMS: dict[str, dict[str, Any]] = {
    PERSONAL_DATA: {
        "given_name": "Anna Maria",
        "family_name": "de Vries",
        "birthdate": "1984-07-12",
        "bsn": "999990019",
        "address": {
            "street_address": "Oudegracht",
            "house_number": "231",
            "postal_code": "3511 NK",
            "locality": "Utrecht",
            "country": "NL",
        },
    },
    INCOME_STATEMENT: {
        "tax_year": 2026,
        "gross_income": 41250,
        "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"},
    },
    DIPLOMA: {
        "institution": "Universiteit Utrecht",
        "degree": "MSc Informatica",
        "date_awarded": "2009-08-31",
    },
    EMPLOYEE_CARD: {
        "given_name": "Pieter",
        "family_name": "Bakker",
        "role": "Wmo-consulent",
        "organisation": "Gemeente Utrecht",
    },
}
ISSUERS = {PERSONAL_DATA: BRP, INCOME_STATEMENT: TAX, DIPLOMA: DUO, EMPLOYEE_CARD: UTRECHT}
DISCLOSABLE: dict[str, list[list[str]]] = {
    PERSONAL_DATA: [["given_name"], ["family_name"], ["birthdate"], ["bsn"], ["address"],
                    ["address", "street_address"], ["address", "house_number"],
                    ["address", "postal_code"], ["address", "locality"], ["address", "country"]],
    INCOME_STATEMENT: [["tax_year"], ["gross_income"], ["income_bracket"]],
    DIPLOMA: [["institution"], ["degree"], ["date_awarded"]],
    EMPLOYEE_CARD: [["given_name"], ["family_name"], ["role"]],
}


@dataclass
class Keys:
    anchor: JWK
    issuers: dict[str, SigningKey]
    utrecht: SigningKey
    dev: SigningKey


def _purpose(pid: str, activity: str, credentials: list[dict[str, Any]],
             dpv: str = "dpv:ServiceProvision") -> dict[str, Any]:
    return {
        "id": pid,
        "dpv": dpv,
        "description": {"nl": f"Doel {pid}", "en": f"Purpose {pid}"},
        "legal_basis": {"nl": "Wmo 2015, art. 2.3.2", "en": "Social Support Act 2015, art. 2.3.2",
                        "reference": "https://wetten.overheid.nl/BWBR0035362"},
        "processing_activity": activity,
        "credentials": credentials,
    }


WMO = _purpose("wmo-household-help", "utrecht-va-0042", [
    {"vct": PERSONAL_DATA, "claims": [["given_name"], ["family_name"], ["address"]]},
    {"vct": INCOME_STATEMENT, "claims": [["income_bracket"], ["tax_year"]]},
])
JOBS = _purpose("job-application", "utrecht-va-0100", [
    {"vct": DIPLOMA, "claims": [["institution"], ["degree"], ["date_awarded"]]},
    {"vct": PERSONAL_DATA, "claims": [["given_name"], ["family_name"], ["bsn"]]},
])


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """The agencies' side: the trust list and credential issuance, around the time ``base``
    (``NOW`` for in-process tests; the real clock for tests of the installed ``kluis``)."""

    def __init__(self, keys: Keys, base: datetime = NOW) -> None:
        self.keys = keys
        self.base = base

    def trust_doc(self, *, sequence: int = 12) -> dict[str, Any]:
        def issuer(agency: str, nl: str, en: str, key: SigningKey) -> dict[str, Any]:
            return {"id": agency, "names": {"nl": nl, "en": en}, "roles": ["issuer"],
                    "jwks": {"keys": [format_jwk(key.public)]}}

        issuers = self.keys.issuers
        return {
            "list_id": "https://trust.kluis.example/nl",
            "issuer": ANCHOR_NAME,
            "issued_at": stamp(self.base - timedelta(days=4, hours=12)),
            "next_update": stamp(self.base + timedelta(days=26, hours=12)),
            "sequence": sequence,
            "agencies": [
                issuer(BRP, "Basisregistratie Personen", "Personal Records Database",
                       issuers[PERSONAL_DATA]),
                issuer(TAX, "Belastingdienst", "Tax Administration", issuers[INCOME_STATEMENT]),
                issuer(DUO, "Dienst Uitvoering Onderwijs", "Education Executive Agency",
                       issuers[DIPLOMA]),
                {
                    "id": UTRECHT,
                    "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
                    "roles": ["issuer", "verifier"],
                    "jwks": {"keys": [format_jwk(issuers[EMPLOYEE_CARD].public),
                                      format_jwk(self.keys.utrecht.public)]},
                    "client_id": UTRECHT_CLIENT,
                    "purposes": [WMO, JOBS],
                },
                {
                    "id": DEV,
                    "names": {"nl": "Testloket", "en": "Test desk"},
                    "roles": ["verifier"],
                    "jwks": {"keys": [format_jwk(self.keys.dev.public)]},
                    "client_id": DEV_CLIENT,
                    "purposes": [WMO],
                },
            ],
        }

    def signed_trust_list(self, **kwargs: Any) -> str:
        return sign_trust_list(self.trust_doc(**kwargs), self.keys.anchor)

    def anchor(self) -> TrustAnchor:
        return TrustAnchor.from_jwk(ANCHOR_NAME, self.keys.anchor)

    def issue(self, vct: str, holder: VerifyingKey | None, *, claims: dict[str, Any] | None = None,
              now: datetime | None = None, lifetime: timedelta = timedelta(days=365),
              key: SigningKey | None = None, iss: str | None = None) -> str:
        moment = int((now or self.base).timestamp())
        return issue_sd_jwt(
            claims if claims is not None else CLAIMS[vct],
            issuer_key=key or self.keys.issuers[vct],
            iss=iss or ISSUERS[vct],
            vct=vct,
            now=moment,
            exp=moment + int(lifetime.total_seconds()),
            holder_key=holder,
            disclosable=DISCLOSABLE[vct],
        )


@dataclass
class Citizen:
    """The citizen's side: an open wallet (vault, consent log, consent engine)."""

    root: Path
    wallet: Wallet
    world: World

    @property
    def vault(self) -> Vault:
        return self.wallet.vault

    @property
    def log(self) -> ConsentLog:
        return self.wallet.log

    @property
    def consent(self) -> Consent:
        return self.wallet.consent

    def holder(self) -> VerifyingKey:
        return holder_key(self.vault, now=NOW).public

    def receive(self, vct: str, **kwargs: Any) -> StoredCredential:
        token = self.world.issue(vct, self.holder(), **kwargs)
        return self.wallet.receive_credential(token, now=NOW)

    def trust(self) -> TrustList:
        return trust_list(self.vault, now=NOW)

    def entries(self) -> list[dict[str, Any]]:
        return list(self.log.entries())


def open_citizen(root: Path, world: World) -> Citizen:
    return Citizen(root, open_wallet(root, PASSPHRASE), world)


def request_params(**changes: Any) -> dict[str, Any]:
    """A good Wmo request in file form (Utrecht asks for name, address and income bracket),
    changed by ``changes`` (a value None removes the parameter)."""
    params: dict[str, Any] = {
        "client_id": UTRECHT_CLIENT,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": "https://utrecht.kluis.example/openid4vp/response",
        "nonce": "n-0S6_WzA2Mj-Aq9fJ3x7Q",
        "state": "wmo-2027-0001",
        "dcql_query": {
            "credentials": [
                {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PERSONAL_DATA]},
                 "claims": [{"path": ["given_name"]}, {"path": ["family_name"]},
                            {"path": ["address"]}]},
                {"id": "income", "format": "dc+sd-jwt",
                 "meta": {"vct_values": [INCOME_STATEMENT]},
                 "claims": [{"path": ["income_bracket"]}]},
            ]
        },
        "client_metadata": {"vp_formats_supported": {"dc+sd-jwt": {
            "sd-jwt_alg_values": ["ES256", "EdDSA"], "kb-jwt_alg_values": ["ES256", "EdDSA"]}}},
        "verifier_info": [{"format": "kluis_purpose", "data": purpose_data()}],
    }
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def purpose_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "purpose_id": "wmo-household-help",
        "dpv": "dpv:ServiceProvision",
        "description": {"nl": "Beslissen over hulp bij het huishouden (Wmo)",
                        "en": "Deciding on household help under the Wmo"},
        "legal_basis": copy.deepcopy(WMO["legal_basis"]),
        "retention": {"duration": "P2Y",
                      "description": {"nl": "Twee jaar na het besluit",
                                      "en": "Two years after the decision"}},
        "processing_activity": "utrecht-va-0042",
        "expires_at": "2027-03-06T12:00:00Z",
    }
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def make_world(base: datetime = NOW) -> World:
    """Fresh keys for the anchor, the issuers and the verifiers, around the time ``base``."""
    issuers = {
        vct: generate_signing_key(Alg.ES256 if n % 2 == 0 else Alg.EDDSA, kid=f"issuer-{n}")
        for n, vct in enumerate((PERSONAL_DATA, INCOME_STATEMENT, DIPLOMA, EMPLOYEE_CARD))
    }
    return World(Keys(
        anchor=JWK.generate(kty="EC", crv="P-256", kid="anchor"),
        issuers=issuers,
        utrecht=generate_signing_key(Alg.ES256, kid="utrecht-requests"),
        dev=generate_signing_key(Alg.ES256, kid="dev-requests"),
    ), base)


def new_citizen(root: Path, world: World) -> Citizen:
    """A new profile at ``root``, opened, with the world's trust list set."""
    create_profile(root, PASSPHRASE, schemas=SCHEMAS, _kdf=FAST)
    opened = open_citizen(root, world)
    set_trust_list(opened.vault, world.signed_trust_list(), world.anchor(), now=NOW)
    return opened
