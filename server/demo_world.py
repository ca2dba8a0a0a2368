"""The demo world of ``kluis serve`` and ``kluis demo``: who the agencies are, their keys, the
trust anchor and its signed trust list, what each verifier is registered to ask, and each
agency's register of the one demo citizen. The one place this world is written down.

Three agencies and a relay (ids are https URLs on the trust list; the services answer on
loopback ports):

- the municipality (Gemeente Utrecht): issues personal data and employee cards, and asks for
  data for Wmo household help and for a job application;
- the tax office (Belastingdienst): issues the income statement;
- DUO: issues the diploma.

The world's secrets (the anchor's and each agency's private keys, and the municipality's
request-signing certificate, whose hash is its client id) are made once and kept in one
owner-only file, ``world.json``, in a seed folder; every worker process that loads the folder
builds exactly the same agencies, so two workers agree on every key and on the client id.

The trust list is signed at launch by the process that binds the ports (``publish``) and
written beside the seed as ``trustlist.jws``, with the anchor's public key in
``anchor.pub.jwk``: that is how a wallet (the CLI) gets it, as files, never by importing this
module. The services themselves go by the same list, unsigned, built when they load the world.

``APPS`` names every app of the world and how to build it; ``server.launcher`` binds a port
per app and serves them. Each app gets its own port because a credential issuer's identifier
is an origin without a path (OpenID4VCI 1.0 §12.2.1).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from jwcrypto.jwk import JWK

from server.back_office import (
    GRANT_READER_SCHEMA,
    grant_reader_router,
    receipt_log_router,
    register_router,
)
from server.issuer_agency import IssuerAgency, configuration
from server.issuer_app import create_issuer_admin_app, create_issuer_app
from server.relay_app import create_relay_app
from server.service import Clock, utc_now
from server.settings import Settings
from server.store import Store
from server.verifier import TrustSource
from server.verifier_agency import VerifierAgency, parse_verifier_purpose
from server.verifier_app import create_verifier_admin_app, create_verifier_app
from vault import InvalidInput
from verifiers.client_certificate import ClientCertificate, issue_client_certificate
from verifiers.credential_type import DIPLOMA, EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import (
    Alg,
    SigningKey,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_private_jwk,
)
from verifiers.sealed_item import (
    EncryptionKey,
    format_encryption_jwk,
    parse_private_encryption_jwk,
)
from verifiers.trustlist import TrustAnchor, TrustList, parse_trust_list, sign_trust_list

WORLD_FILE = "world.json"
TRUST_LIST_FILE = "trustlist.jws"
ANCHOR_FILE = "anchor.pub.jwk"
TAR = "application/x-tar"
WORLD_VERSION = 3
ANCHOR_NAME = "kluis demo trust anchor"
LIST_ID = "https://trust.kluis.example/demo"
TRUST_LIST_DAYS = 30
CITIZEN = "anna"
CERTIFICATE_DAYS = 3650
GRANT_FETCH_KID = "gemeente-grants-1"
GRANT_ENCRYPTION_KID = "gemeente-grants-x25519-1"

MUNICIPALITY = "https://gemeente-utrecht.kluis.example"
TAX_OFFICE = "https://belastingdienst.kluis.example"
DUO = "https://duo.kluis.example"

NAMES: dict[str, dict[str, str]] = {
    MUNICIPALITY: {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
    TAX_OFFICE: {"nl": "Belastingdienst", "en": "Tax and Customs Administration"},
    DUO: {"nl": "Dienst Uitvoering Onderwijs (DUO)", "en": "Education Executive Agency (DUO)"},
}

# What each agency issues, and the key name its signing key has in world.json.
ISSUED: dict[str, tuple[str, tuple[str, ...]]] = {
    MUNICIPALITY: ("gemeente", (PERSONAL_DATA, EMPLOYEE_CARD)),
    TAX_OFFICE: ("belastingdienst", (INCOME_STATEMENT,)),
    DUO: ("duo", (DIPLOMA,)),
}

# What the municipality may ask, per purpose (its trust-list registration), and how long it
# keeps what it gets. The Wmo purpose is the demo's main scene; the job application is the
# request the citizen refuses.
WMO = "wmo-household-help"
JOB_APPLICATION = "job-application"
_WMO_BASIS = {"nl": "Wet maatschappelijke ondersteuning 2015, art. 2.3.2",
              "en": "Social Support Act 2015 (Wmo), art. 2.3.2",
              "reference": "https://wetten.overheid.nl/BWBR0035362"}
PURPOSES: tuple[dict[str, Any], ...] = (
    {"id": WMO, "dpv": "dpv:ServiceProvision",
     "description": {"nl": "Beslissen over hulp bij het huishouden (Wmo)",
                     "en": "Deciding on household help under the Wmo"},
     "legal_basis": _WMO_BASIS,
     "processing_activity": "utrecht-va-0042",
     "credentials": [
         {"vct": PERSONAL_DATA, "claims": [["given_name"], ["family_name"], ["address"]]},
         {"vct": INCOME_STATEMENT, "claims": [["income_bracket"], ["tax_year"]]},
     ],
     "retention": {"duration": "P2Y", "description": {"nl": "Twee jaar na het besluit",
                                                      "en": "Two years after the decision"}}},
    {"id": JOB_APPLICATION, "dpv": "dpv:HumanResourceManagement",
     "description": {"nl": "Uw sollicitatie bij de gemeente beoordelen",
                     "en": "Assessing your job application to the municipality"},
     "legal_basis": {"nl": "AVG art. 6 lid 1 onder b (overeenkomst)",
                     "en": "GDPR art. 6(1)(b) (contract)"},
     "processing_activity": "utrecht-va-0100",
     "credentials": [
         {"vct": DIPLOMA, "claims": [["institution"], ["degree"], ["date_awarded"]]},
         {"vct": PERSONAL_DATA, "claims": [["given_name"], ["family_name"]]},
     ],
     "retention": {"duration": "P6M", "description": {
         "nl": "Zes maanden na de sollicitatie", "en": "Six months after the application"}}},
)

# The one demo citizen in each agency's register, per credential configuration. Made-up
# data; the BSN is a test number that passes the eleven test and is never given out.
REGISTER: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    MUNICIPALITY: {CITIZEN: {
        "personal-data": {
            "given_name": "Anna Maria", "family_name": "de Vries", "birthdate": "1984-07-12",
            "bsn": "999990019",
            "address": {"street_address": "Oudegracht", "house_number": "231",
                        "postal_code": "3511 NK", "locality": "Utrecht", "country": "NL"},
        },
    }, "pieter": {
        "employee-card": {"given_name": "Pieter", "family_name": "Bakker",
                          "role": "Wmo-consulent", "organisation": "Gemeente Utrecht"},
    }},
    TAX_OFFICE: {CITIZEN: {
        "income-statement": {"tax_year": 2026, "gross_income": 41250,
                             "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"}},
    }},
    DUO: {CITIZEN: {
        "diploma": {"institution": "Universiteit Utrecht", "degree": "MSc Informatica",
                    "date_awarded": "2009-08-31"},
    }},
}


class BadWorld(InvalidInput):
    code = "demo.bad_world"
    en = "The demo world's seed file is damaged. Remove the folder's world.json to start afresh."
    nl = (
        "Het zaadbestand van de demowereld is beschadigd. Verwijder world.json in de map om "
        "opnieuw te beginnen."
    )


# --- the world ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DemoWorld:
    """The agencies of the demo world, built from the seed file in ``folder``."""

    folder: Path
    anchor: JWK
    issuers: Mapping[str, IssuerAgency]
    municipality: VerifierAgency
    grant_fetch_key: SigningKey = field(repr=False)
    grant_encryption_key: EncryptionKey = field(repr=False)

    def trust_anchor(self) -> TrustAnchor:
        return TrustAnchor.from_jwk(ANCHOR_NAME, self.anchor)

    def trust_list_document(self, *, now: datetime) -> dict[str, Any]:
        """The unsigned trust list (specs/trustlist.md §2) valid from a minute before ``now``
        for 30 days; its sequence is ``now`` in seconds, so a later list never rolls back."""
        agencies = [
            {"id": agency.id, "names": dict(agency.names), "roles": ["issuer"],
             "jwks": {"keys": [agency.public_jwk]}}
            for agency in self.issuers.values() if agency.id != MUNICIPALITY
        ]
        issuer_key = self.issuer(MUNICIPALITY).public_jwk
        municipality = self.municipality.trust_list_entry(issuer_keys=(issuer_key,))
        # Grants (specs/grant.md): the key it signs fetches with, the key items are sealed to.
        municipality["jwks"]["keys"].append(
            {**format_jwk(self.grant_fetch_key.public), "use": "sig", "alg": "EdDSA"})
        municipality["encryption_jwks"] = {"keys": [format_encryption_jwk(
            self.grant_encryption_key, kid=GRANT_ENCRYPTION_KID)]}
        agencies.insert(0, municipality)
        return {
            "list_id": LIST_ID,
            "issuer": ANCHOR_NAME,
            "issued_at": _stamp(now - timedelta(minutes=1)),
            "next_update": _stamp(now + timedelta(days=TRUST_LIST_DAYS)),
            "sequence": int(now.timestamp()),
            "agencies": agencies,
        }

    def publish(self, *, now: datetime) -> Path:
        """Sign the trust list and write it to ``trustlist.jws``, with the anchor's public
        key in ``anchor.pub.jwk``; returns the list's path. Each file is replaced whole."""
        signed = sign_trust_list(self.trust_list_document(now=now), self.anchor)
        _replace(self.folder / ANCHOR_FILE,
                 json.dumps(self.anchor.export_public(as_dict=True), indent=2) + "\n")
        return _replace(self.folder / TRUST_LIST_FILE, signed + "\n")

    def issuer(self, agency_id: str) -> IssuerAgency:
        return self.issuers[agency_id]

    @cached_property
    def trust_list(self) -> TrustList:
        """The trust list the agencies' services go by (issuer and status-list keys), as
        published when this world was loaded; the same list the wallet gets, unsigned."""
        return parse_trust_list(self.trust_list_document(now=datetime.now(UTC)))


def load_world(folder: Path) -> DemoWorld:
    """The world seeded in ``folder``, seeding it first (new random keys) when it has no
    ``world.json``. Raises ``demo.bad_world`` for a seed file that is not one."""
    path = folder / WORLD_FILE
    if not path.exists():
        _seed(path)
    try:
        seed = json.loads(path.read_text(encoding="utf-8"))
        if seed.get("version") != WORLD_VERSION:
            raise BadWorld(f"{WORLD_FILE}: version {WORLD_VERSION}")
        keys: dict[str, SigningKey] = {
            name: parse_private_jwk(jwk) for name, jwk in seed["keys"].items()}
        anchor = JWK(**seed["anchor"])
        certificate = ClientCertificate(tuple(seed["certificate"]["x5c"]),
                                        base64.b64decode(seed["certificate"]["anchor"]),
                                        str(seed["certificate"]["client_id"]))
        municipality = VerifierAgency(
            MUNICIPALITY, NAMES[MUNICIPALITY], _key(keys, "gemeente-requests"), certificate,
            tuple(parse_verifier_purpose(purpose) for purpose in PURPOSES))
        encryption = parse_private_encryption_jwk(seed["encryption_keys"]["gemeente-grants"])
    except BadWorld:
        raise
    except Exception:  # noqa: BLE001 - jwcrypto and the key parser raise many kinds
        raise BadWorld(f"{WORLD_FILE}: JSON with version, anchor and keys") from None
    issuers = {
        agency_id: IssuerAgency(
            id=agency_id, names=NAMES[agency_id], signing_key=_key(keys, key_name),
            configurations=tuple(configuration(vct) for vct in vcts),
        )
        for agency_id, (key_name, vcts) in ISSUED.items()
    }
    return DemoWorld(folder, anchor, issuers, municipality, _key(keys, "gemeente-grants"),
                     encryption)


def _key(keys: Mapping[str, SigningKey], name: str) -> SigningKey:
    if name not in keys:
        raise BadWorld(f"{WORLD_FILE}: no key {name!r}")
    return keys[name]


def _seed(path: Path) -> None:
    """New keys for every agency and the anchor, written owner-only; never overwrites (two
    processes seeding at once: the first file wins, the other is dropped)."""
    keys = {name: generate_signing_key(Alg.ES256, kid=f"{name}-1")
            for name in [*(key for key, _ in ISSUED.values()), "gemeente-requests"]}
    keys["gemeente-grants"] = generate_signing_key(Alg.EDDSA, kid=GRANT_FETCH_KID)
    anchor = JWK.generate(kty="OKP", crv="Ed25519", kid="demo-anchor-1")
    now = datetime.now(UTC)
    certificate = issue_client_certificate(
        keys["gemeente-requests"], name=NAMES[MUNICIPALITY]["en"], uri=MUNICIPALITY, now=now,
        days=CERTIFICATE_DAYS)
    seed = {
        "version": WORLD_VERSION,
        "created_at": _stamp(now),
        "anchor": anchor.export_private(as_dict=True),
        "keys": {name: format_private_jwk(key) for name, key in keys.items()},
        "encryption_keys": {"gemeente-grants": format_encryption_jwk(
            EncryptionKey.generate(), kid=GRANT_ENCRYPTION_KID, private=True)},
        "certificate": {"x5c": list(certificate.x5c),
                        "anchor": base64.b64encode(certificate.anchor).decode(),
                        "client_id": certificate.client_id},
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(seed, indent=2) + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink()


def _replace(path: Path, text: str) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the apps -----------------------------------------------------------------------------


AppFactory = Callable[[Settings, DemoWorld, Store, Clock], FastAPI]


def _issuer(agency_id: str) -> AppFactory:
    def build(settings: Settings, world: DemoWorld, store: Store, clock: Clock) -> FastAPI:
        return create_issuer_app(settings, world.issuer(agency_id), store, clock=clock)
    return build


def _issuer_admin(agency_id: str) -> AppFactory:
    def build(settings: Settings, world: DemoWorld, store: Store, clock: Clock) -> FastAPI:
        app = create_issuer_admin_app(settings, world.issuer(agency_id), store, clock=clock)
        app.include_router(register_router(app.state.issuer, REGISTER[agency_id], clock))
        return app
    return build


def _relay(settings: Settings, world: DemoWorld, store: Store, clock: Clock) -> FastAPI:
    return create_relay_app(settings, store, clock=clock)


def _trust(world: DemoWorld) -> TrustSource:
    def trust(now: datetime) -> TrustList:
        return world.trust_list
    return trust


def _verifier(settings: Settings, world: DemoWorld, store: Store, clock: Clock) -> FastAPI:
    return create_verifier_app(settings, world.municipality, store, trust=_trust(world),
                               clock=clock)


def _verifier_admin(settings: Settings, world: DemoWorld, store: Store, clock: Clock) -> FastAPI:
    app = create_verifier_admin_app(settings, world.municipality, store, trust=_trust(world),
                                    clock=clock)
    app.include_router(receipt_log_router(app.state.verifier))
    store.migrate([GRANT_READER_SCHEMA])
    app.include_router(grant_reader_router(
        MUNICIPALITY, world.grant_fetch_key, world.grant_encryption_key, GRANT_ENCRYPTION_KID,
        store, clock))
    return app


@dataclass(frozen=True)
class AppSpec:
    """One app of the world: its name (also its place in ``kluis serve``'s list), who runs it,
    what it is for (nl/en), whether it is a back office (never expose it), its factory, and
    whose URL it announces (a back office makes links to its agency's public service)."""

    name: str
    agency: str | None
    role: Mapping[str, str]
    admin: bool
    build: AppFactory
    public: str | None = None


_ISSUER_ROLE = {"nl": "uitgifte van documenten", "en": "credential issuer"}
_ISSUER_ADMIN_ROLE = {"nl": "backoffice van de uitgifte", "en": "issuer back office"}

APPS: tuple[AppSpec, ...] = (
    AppSpec("relay", None, {"nl": "relay (postbus van de burger)",
                            "en": "relay (the citizen's mailbox)"}, False, _relay),
    AppSpec("gemeente-issuer", MUNICIPALITY, _ISSUER_ROLE, False, _issuer(MUNICIPALITY)),
    AppSpec("gemeente-issuer-admin", MUNICIPALITY, _ISSUER_ADMIN_ROLE, True,
            _issuer_admin(MUNICIPALITY), public="gemeente-issuer"),
    AppSpec("gemeente-verifier", MUNICIPALITY, {"nl": "verzoeken om gegevens",
                                                "en": "requests for data (verifier)"}, False,
            _verifier),
    AppSpec("gemeente-verifier-admin", MUNICIPALITY,
            {"nl": "backoffice van de verzoeken", "en": "verifier back office"}, True,
            _verifier_admin, public="gemeente-verifier"),
    AppSpec("belastingdienst-issuer", TAX_OFFICE, _ISSUER_ROLE, False, _issuer(TAX_OFFICE)),
    AppSpec("belastingdienst-issuer-admin", TAX_OFFICE, _ISSUER_ADMIN_ROLE, True,
            _issuer_admin(TAX_OFFICE), public="belastingdienst-issuer"),
    AppSpec("duo-issuer", DUO, _ISSUER_ROLE, False, _issuer(DUO)),
    AppSpec("duo-issuer-admin", DUO, _ISSUER_ADMIN_ROLE, True, _issuer_admin(DUO),
            public="duo-issuer"),
)


def app_spec(name: str) -> AppSpec:
    """The app called ``name``; raises ``KeyError`` for a name the world does not have."""
    return {spec.name: spec for spec in APPS}[name]


def build_app(name: str, settings: Settings, world: DemoWorld, store: Store, *,
              urls: Mapping[str, str], clock: Clock = utc_now) -> FastAPI:
    """App ``name`` of ``world`` on ``store`` (left open). ``urls`` holds every app's URL
    (an origin, ``http://host:port``); the app announces its own, or for a back office its
    public service's, as its public URL."""
    spec = app_spec(name)
    public = urls[spec.public or name]
    port = urlsplit(public).port or 0
    own = settings.model_copy(update={"port": port, "public_url": public})
    return spec.build(own, world, store, clock)
