"""A running issuer service for tests: the public OpenID4VCI app and its admin app, each
served by uvicorn on its own loopback port, on a store URL the test chooses, with a clock the
test can move. Used by the server, wallet and CLI tests.

The public URL is part of what the issuer signs and publishes, so the port is taken before the
app is built (a socket bound to port 0), and uvicorn then serves that very socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from server.credential_offer import Offer
from server.issuer import Issuer
from server.issuer_agency import IssuerAgency, configuration
from server.issuer_app import create_issuer_admin_app, create_issuer_app
from server.settings import Settings
from server.store import Store, open_store
from verifiers.credential_type import DIPLOMA, EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import Alg, SigningKey, generate_signing_key

PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
MUNICIPALITY = "https://gemeente.kluis.example"

CLAIMS: dict[str, dict[str, Any]] = {
    "personal-data": {
        "given_name": "Anna Maria", "family_name": "de Vries", "birthdate": "1984-07-12",
        "bsn": "999990019",
        "address": {"street_address": "Oudegracht", "house_number": "231",
                    "postal_code": "3511 NK", "locality": "Utrecht", "country": "NL"},
    },
    "income-statement": {
        "tax_year": 2026, "gross_income": 41250,
        "income_bracket": {"code": "2", "label": "€ 30.001 – € 45.000"},
    },
    "diploma": {"institution": "Universiteit Utrecht", "degree": "MSc Informatica",
                "date_awarded": "2009-08-31"},
    "employee-card": {"given_name": "Pieter", "family_name": "Bakker", "role": "Wmo-consulent",
                      "organisation": "Gemeente Utrecht"},
}
VCTS = {"personal-data": PERSONAL_DATA, "income-statement": INCOME_STATEMENT,
        "diploma": DIPLOMA, "employee-card": EMPLOYEE_CARD}


def agency(key: SigningKey | None = None, agency_id: str = MUNICIPALITY,
           vcts: tuple[str, ...] = tuple(VCTS.values())) -> IssuerAgency:
    """An agency issuing ``vcts`` (default: all four types), signing with ``key``."""
    return IssuerAgency(
        id=agency_id, names={"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
        signing_key=key or generate_signing_key(Alg.ES256, kid="gemeente-2027"),
        configurations=tuple(configuration(vct) for vct in vcts),
    )


@dataclass
class Clock:
    """The services' clock: real time moved by ``offset`` (or pinned with ``at``)."""

    offset: timedelta = timedelta(0)
    at: datetime | None = None

    def __call__(self) -> datetime:
        return (self.at or datetime.now(UTC)) + self.offset


@dataclass
class IssuerService:
    url: str
    admin_url: str
    store: Store
    agency: IssuerAgency
    issuer: Issuer
    clock: Clock
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def offer(self, *configurations: str, tx_code: bool = True) -> Offer:
        chosen = configurations or ("personal-data",)
        return self.issuer.create_offer({c: CLAIMS[c] for c in chosen}, tx_code=tx_code,
                                        now=self.clock())

    def token_response(self, offer: Offer, **form: Any) -> httpx.Response:
        data = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": code_of(offer)}
        if offer.tx_code is not None:
            data["tx_code"] = offer.tx_code
        data.update(form)
        return self.client.post(self.url + "/token",
                                data={k: v for k, v in data.items() if v is not None})

    def token(self, offer: Offer) -> str:
        answer = self.token_response(offer)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def nonce(self) -> str:
        return str(self.client.post(self.url + "/nonce").json()["c_nonce"])

    def credential(self, token: str | None, body: Any, **headers: str) -> httpx.Response:
        sent = dict(headers)
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        return self.client.post(self.url + "/credential", json=body, headers=sent)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.store.transaction(readonly=True) as tx:
            return tx.execute(sql, params)

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])


def code_of(offer: Offer) -> str:
    return str(offer.document["grants"][PRE_AUTHORIZED]["pre-authorized_code"])


def _bound() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


@contextmanager
def _serving(app: Any, sock: socket.socket) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def running_issuer(
    store_url: str, folder: Path, *, issuer_agency: IssuerAgency | None = None,
    clock: Clock | None = None, **overrides: Any,
) -> Iterator[IssuerService]:
    """The public and admin apps of one agency on ``store_url``, both on loopback."""
    chosen = issuer_agency or agency()
    clock = clock or Clock()
    public_sock, public_port = _bound()
    admin_sock, admin_port = _bound()
    options: dict[str, Any] = {"data_dir": folder, "db_url": store_url,
                               "rate_limit_per_client": 100_000, "port": public_port}
    options.update(overrides)
    settings = Settings(**options)
    store = open_store(store_url)
    try:
        public = create_issuer_app(settings, chosen, store, clock=clock)
        admin = create_issuer_admin_app(settings, chosen, store, clock=clock)
        with _serving(public, public_sock), _serving(admin, admin_sock):
            service = IssuerService(
                url=f"http://127.0.0.1:{public_port}", admin_url=f"http://127.0.0.1:{admin_port}",
                store=store, agency=chosen, issuer=public.state.issuer, clock=clock,
            )
            try:
                yield service
            finally:
                service.client.close()
    finally:
        store.close()
