"""The demo world: seeded once per folder (the same agencies on every load, as every worker
needs), secrets owner-only, a trust list the anchor's key verifies, and each agency's
register making offers that point at its public service."""

from __future__ import annotations

import json
import stat
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.demo_world import (
    APPS,
    DUO,
    MUNICIPALITY,
    TAX_OFFICE,
    BadWorld,
    build_app,
    load_world,
)
from server.settings import Settings
from server.store import open_store
from verifiers.jws import format_jwk
from verifiers.trustlist import TrustAnchor, verify_trust_list

NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)


def test_a_folder_is_seeded_once_and_every_load_gives_the_same_agencies(tmp_path: Path) -> None:
    first = load_world(tmp_path / "world")
    second = load_world(tmp_path / "world")
    assert set(first.issuers) == {MUNICIPALITY, TAX_OFFICE, DUO}
    for agency_id in first.issuers:
        assert first.issuer(agency_id).public_jwk == second.issuer(agency_id).public_jwk
    assert first.anchor.thumbprint() == second.anchor.thumbprint()
    other = load_world(tmp_path / "elsewhere")
    assert other.issuer(DUO).public_jwk != first.issuer(DUO).public_jwk


def test_the_seed_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    load_world(tmp_path)
    mode = stat.S_IMODE((tmp_path / "world.json").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("content", ["", "[]", '{"version": 1}', '{"version": 99, "keys": {}}',
                                     '{"version": 1, "anchor": {}, "keys": {"duo": 5}}'])
def test_a_damaged_seed_file_is_refused_with_its_code(tmp_path: Path, content: str) -> None:
    (tmp_path / "world.json").write_text(content)
    with pytest.raises(BadWorld):
        load_world(tmp_path)


def test_the_published_trust_list_verifies_with_the_published_anchor_key(tmp_path: Path) -> None:
    world = load_world(tmp_path)
    path = world.publish(now=NOW)
    anchor = TrustAnchor.from_jwk(
        "kluis demo trust anchor", json.loads((tmp_path / "anchor.pub.jwk").read_text()))
    assert "d" not in json.loads((tmp_path / "anchor.pub.jwk").read_text())
    trust = verify_trust_list(path.read_text().strip(), anchor, now=NOW + timedelta(days=29))
    assert {a.id for a in trust.agencies} >= {MUNICIPALITY, TAX_OFFICE, DUO}
    duo = trust.agency(DUO)
    assert [k.model_dump(exclude_none=True) for k in duo.jwks.keys][0]["x"] == \
        format_jwk(world.issuer(DUO).signing_key.public)["x"]
    later = world.publish(now=NOW + timedelta(hours=1))
    assert verify_trust_list(later.read_text().strip(), anchor, now=NOW + timedelta(hours=1),
                             min_sequence=trust.sequence).sequence > trust.sequence


def test_every_back_office_announces_its_public_service(tmp_path: Path) -> None:
    names = {spec.name for spec in APPS}
    public = {spec.name for spec in APPS if not spec.admin}
    for spec in APPS:
        if spec.admin:
            assert spec.public in names & public


@pytest.fixture
def register(tmp_path: Path) -> Iterator[TestClient]:
    world = load_world(tmp_path / "world")
    store = open_store(f"sqlite:///{tmp_path / 'server.db'}")
    urls = {"belastingdienst-issuer": "http://127.0.0.1:9001",
            "belastingdienst-issuer-admin": "http://127.0.0.1:9002"}
    app = build_app("belastingdienst-issuer-admin", Settings(data_dir=tmp_path), world, store,
                    urls=urls)
    with TestClient(app) as client:
        yield client
    store.close()


def test_an_offer_from_the_register_names_the_public_issuer(register: TestClient) -> None:
    answer = register.post("/register/anna/offers", json={"configurations": ["income-statement"]})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["offer_url"].startswith("http://127.0.0.1:9001/offers/")
    assert "127.0.0.1%3A9001" in body["credential_offer"]
    assert body["tx_code"].isdigit()


@pytest.mark.parametrize("citizen,configuration", [("nobody", "income-statement"),
                                                   ("anna", "diploma")])
def test_an_offer_of_what_the_register_lacks_is_not_found(
    register: TestClient, citizen: str, configuration: str
) -> None:
    answer = register.post(f"/register/{citizen}/offers",
                           json={"configurations": [configuration]})
    assert answer.status_code == 404
    assert answer.json()["code"] == "demo.not_in_register"


def test_the_municipality_is_on_the_list_with_its_request_grant_and_issuer_keys(
    tmp_path: Path,
) -> None:
    world = load_world(tmp_path)
    again = load_world(tmp_path)
    entry = world.trust_list.agency(MUNICIPALITY)
    assert entry.client_id == world.municipality.client_id == again.municipality.client_id
    assert {"issuer", "verifier"} == {str(role) for role in entry.roles}
    kids = {key.kid for key in entry.jwks.keys}
    assert {"gemeente-1", "gemeente-requests-1", "gemeente-grants-1"} <= kids
    assert entry.encryption_jwks is not None
    assert {p.id for p in entry.purposes or ()} == {"wmo-household-help", "job-application"}


@pytest.fixture
def back_office(tmp_path: Path) -> Iterator[TestClient]:
    world = load_world(tmp_path / "world")
    store = open_store(f"sqlite:///{tmp_path / 'server.db'}")
    urls = {"gemeente-verifier": "http://127.0.0.1:9003",
            "gemeente-verifier-admin": "http://127.0.0.1:9004"}
    app = build_app("gemeente-verifier-admin", Settings(data_dir=tmp_path), world, store,
                    urls=urls)
    with TestClient(app) as client:
        yield client
    store.close()


def test_the_receipt_log_exports_as_a_tar(back_office: TestClient, tmp_path: Path) -> None:
    """(A filled log's export verifies and reconciles: kluis demo checks that.)"""
    answer = back_office.get("/receipt-log/export")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-tar"
    (tmp_path / "log.tar").write_bytes(answer.content)
    with tarfile.open(tmp_path / "log.tar") as archive:
        assert "entries.jsonl" in {Path(name).name for name in archive.getnames()}


def test_a_read_of_an_unknown_grant_is_not_found(back_office: TestClient) -> None:
    answer = back_office.post("/grants/" + "g" * 22 + "/items/income/reads")
    assert answer.status_code == 404 and answer.json()["code"] == "demo.unknown_grant"


@pytest.mark.parametrize("change", [{"agency": "https://duo.kluis.example"},
                                    {"fetch_kid": "someone-else"},
                                    {"encryption_kid": "someone-else"}])
def test_a_notice_for_another_agency_or_other_keys_is_refused(
    back_office: TestClient, change: dict[str, str]
) -> None:
    notice = {"type": "kluis-grant-notice", "grant": "g" * 22, "relay": "http://127.0.0.1:1",
              "agency": MUNICIPALITY, "valid_until": "2030-01-01T00:00:00Z",
              "fetch_kid": "gemeente-grants-1", "encryption_kid": "gemeente-grants-x25519-1",
              "wallet_key": {"kty": "OKP", "crv": "Ed25519",
                             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
              "items": [{"id": "income"}]}
    assert back_office.post("/grants", json=notice).status_code == 201
    answer = back_office.post("/grants", json={**notice, **change})
    assert answer.status_code == 400 and answer.json()["code"] == "demo.foreign_notice"
