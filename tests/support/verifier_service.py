"""A running verifier service for tests: the municipality's public OpenID4VP app and its admin
app, each on its own loopback port, on a store URL the test chooses, plus a relay; and the
trust list that names the municipality by its real ``x509_hash`` client id.

The verifier's public URL is part of every request it signs, so its port is taken before the
app is built (as for the issuer, ``issuer_service``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from consent_world import JOBS, UTRECHT, WMO, World
from issuer_service import Clock, _bound, _serving

from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import Store, open_store
from server.verifier import Verifier
from server.verifier_agency import VerifierAgency, make_verifier_agency, parse_verifier_purpose
from server.verifier_app import create_verifier_admin_app, create_verifier_app
from verifiers.credential_type import EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import format_jwk
from verifiers.statuslist import Fetch
from verifiers.trustlist import TrustList, sign_trust_list, verify_trust_list

RETENTION = {"duration": "P2Y", "description": {"nl": "Twee jaar na het besluit",
                                                "en": "Two years after the decision"}}


def utrecht(world: World, now: datetime) -> VerifierAgency:
    """The municipality as a verifier, registered for Wmo household help and job applications,
    with the request key of the consent world and a certificate made now."""
    purposes = tuple(parse_verifier_purpose({**registration, "retention": RETENTION})
                     for registration in (WMO, JOBS))
    return make_verifier_agency(
        UTRECHT, {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"}, purposes,
        now=now, signing_key=world.keys.utrecht,
    )


def trust_doc(world: World, agency: VerifierAgency, **kwargs: Any) -> dict[str, Any]:
    """The world's trust list with the municipality's entry made from its configuration."""
    doc = world.trust_doc(**kwargs)
    entry = agency.trust_list_entry(
        issuer_keys=(format_jwk(world.keys.issuers[EMPLOYEE_CARD].public),))
    doc["agencies"] = [entry if a["id"] == UTRECHT else a for a in doc["agencies"]]
    return doc


def signed_trust_list(world: World, agency: VerifierAgency, **kwargs: Any) -> str:
    return sign_trust_list(trust_doc(world, agency, **kwargs), world.keys.anchor)


def verified_trust_list(world: World, signed: str, now: datetime) -> TrustList:
    return verify_trust_list(signed, world.anchor(), now=now)


@dataclass
class VerifierService:
    url: str
    admin_url: str
    store: Store
    agency: VerifierAgency
    verifier: Verifier
    clock: Clock
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def create(self, dcql: dict[str, Any], purpose: str = "wmo-household-help",
               **extra: Any) -> dict[str, Any]:
        answer = self.client.post(self.admin_url + "/requests",
                                  json={"purpose": purpose, "dcql_query": dcql, **extra})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def status(self, request_id: str) -> dict[str, Any]:
        return dict(self.client.get(f"{self.admin_url}/requests/{request_id}").json())

    def received(self) -> list[dict[str, Any]]:
        return list(self.client.get(self.admin_url + "/received").json()["received"])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.store.transaction(readonly=True) as tx:
            return tx.execute(sql, params)

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])


@contextmanager
def running_verifier(
    store_url: str, folder: Path, *, agency: VerifierAgency, trust: TrustList, clock: Clock,
    fetch: Fetch | None = None, **overrides: Any,
) -> Iterator[VerifierService]:
    """The public and admin apps of ``agency`` on ``store_url``, both on loopback."""
    public_sock, public_port = _bound()
    admin_sock, admin_port = _bound()
    options: dict[str, Any] = {"data_dir": folder, "db_url": store_url, "port": public_port,
                               "rate_limit_per_client": 100_000}
    options.update(overrides)
    settings = Settings(**options)
    store = open_store(store_url)
    try:
        public = create_verifier_app(settings, agency, store, trust=trust, fetch=fetch,
                                     clock=clock)
        admin = create_verifier_admin_app(settings, agency, store, trust=trust, fetch=fetch,
                                          clock=clock)
        with _serving(public, public_sock), _serving(admin, admin_sock):
            service = VerifierService(
                url=f"http://127.0.0.1:{public_port}", admin_url=f"http://127.0.0.1:{admin_port}",
                store=store, agency=agency, verifier=public.state.verifier, clock=clock)
            try:
                yield service
            finally:
                service.client.close()
    finally:
        store.close()


@contextmanager
def running_relay(store_url: str, folder: Path, **overrides: Any) -> Iterator[str]:
    """A relay on ``store_url`` (real clock: wallets sign with theirs); yields its URL."""
    sock, port = _bound()
    options: dict[str, Any] = {"data_dir": folder, "db_url": store_url, "port": port,
                               "rate_limit_per_client": 100_000,
                               "relay_rate_limit_per_address": 1000,
                               "relay_poll_interval_seconds": 0.05}
    options.update(overrides)
    store = open_store(store_url)
    try:
        with _serving(create_relay_app(Settings(**options), store), sock):
            yield f"http://127.0.0.1:{port}"
    finally:
        store.close()


WMO_QUERY = {"credentials": [
    {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PERSONAL_DATA]},
     "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}, {"path": ["address"]}]},
    {"id": "income", "format": "dc+sd-jwt", "meta": {"vct_values": [INCOME_STATEMENT]},
     "claims": [{"path": ["income_bracket"]}]},
]}
"""What the municipality asks for Wmo household help: name, address and income bracket."""
