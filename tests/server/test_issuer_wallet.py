"""Issuance into a real wallet over real HTTP: the citizen's vault redeems offers from kluis's
issuer service, and the consent engine verifies each credential against the wallet's trust
list (never a key the issuer serves itself), checks its status at the issuer, binds it to a
holder key kept in the vault and logs it. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from consent_world import BRP, DUO, NOW, Citizen, World, make_world, new_citizen
from issuer_service import CLAIMS, Clock, IssuerService, running_issuer
from jwcrypto.jwk import JWK

from server.issuer_agency import IssuerAgency, configuration
from vault import KluisError
from verifiers.credential_type import DIPLOMA, PERSONAL_DATA
from verifiers.jws import Alg, format_jwk, generate_signing_key
from verifiers.statuslist import StatusListChecker
from wallet.credential import StoredCredential, list_credentials
from wallet.credential_offer import parse_credential_offer
from wallet.holder_key import holder_key, signing_key
from wallet.openid4vci import redeem_offer
from wallet.transport import HttpxTransport


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture
def citizen(tmp_path: Path, world: World) -> Iterator[Citizen]:
    opened = new_citizen(tmp_path / "citizen", world)
    try:
        yield opened
    finally:
        opened.vault.close()


def _brp(world: World, key: object = None) -> IssuerAgency:
    return IssuerAgency(
        id=BRP, names={"nl": "Basisregistratie Personen", "en": "Personal Records Database"},
        signing_key=key or world.keys.issuers[PERSONAL_DATA],  # type: ignore[arg-type]
        configurations=(configuration(PERSONAL_DATA),),
    )


@pytest.fixture
def brp(store_url: str, tmp_path: Path, world: World) -> Iterator[IssuerService]:
    with running_issuer(store_url, tmp_path / "brp", issuer_agency=_brp(world),
                        clock=Clock(at=NOW)) as running:
        yield running


def _status_checker(service: IssuerService) -> StatusListChecker:
    key = JWK(**format_jwk(service.agency.signing_key.public))
    return StatusListChecker(lambda uri: service.client.get(uri).content, [key])


def _receive(citizen: Citizen, service: IssuerService, offer_text: str,
             tx_code: str | None) -> list[StoredCredential]:
    public = holder_key(citizen.vault, now=NOW).public
    with HttpxTransport() as transport:
        return redeem_offer(
            parse_credential_offer(offer_text), transport=transport, tx_code=tx_code,
            holder_key=signing_key(citizen.vault, public),
            receive=lambda token: citizen.wallet.receive_credential(
                token, now=NOW, status_checker=_status_checker(service)),
            clock=lambda: NOW,
        )


def test_the_citizen_receives_personal_data_into_the_vault(
    citizen: Citizen, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data")
    [stored] = _receive(citizen, brp, offer.reference_uri, offer.tx_code)
    assert stored.vct == PERSONAL_DATA and stored.issuer == BRP
    assert {k: stored.claims[k] for k in CLAIMS["personal-data"]} == CLAIMS["personal-data"]
    assert stored.holder_kid == holder_key(citizen.vault, now=NOW).kid
    assert ("address", "postal_code") in stored.disclosable
    assert [c.id for c in list_credentials(citizen.vault)] == [stored.id]
    [entry] = [e for e in citizen.entries() if e["kind"] == "credential_received"]
    assert entry["credential"]["id"] == stored.id
    assert "Oudegracht" not in str(entry)  # the log names claims, never their values


def test_an_issuer_missing_from_the_trust_list_is_refused(
    citizen: Citizen, store_url: str, tmp_path: Path, world: World
) -> None:
    stranger = IssuerAgency(
        id="https://stranger.kluis.example", names={"nl": "Vreemde", "en": "Stranger"},
        signing_key=generate_signing_key(Alg.ES256, kid="s1"),
        configurations=(configuration(PERSONAL_DATA),),
    )
    with running_issuer(store_url, tmp_path / "stranger", issuer_agency=stranger,
                        clock=Clock(at=NOW)) as service:
        offer = service.offer("personal-data")
        with pytest.raises(KluisError) as caught:
            _receive(citizen, service, offer.uri, offer.tx_code)
    assert caught.value.code == "trustlist.not_an_issuer"
    assert list_credentials(citizen.vault) == ()


def test_a_listed_issuer_signing_with_an_unlisted_key_is_refused(
    citizen: Citizen, store_url: str, tmp_path: Path, world: World
) -> None:
    """The service publishes its (new) key in /.well-known/jwt-vc-issuer, but the wallet goes
    by the trust list alone."""
    impostor = _brp(world, generate_signing_key(Alg.ES256, kid=world.keys.issuers[
        PERSONAL_DATA].kid))
    with running_issuer(store_url, tmp_path / "impostor", issuer_agency=impostor,
                        clock=Clock(at=NOW)) as service:
        published = service.client.get(service.url + "/.well-known/jwt-vc-issuer").json()
        assert published["issuer"] == BRP
        offer = service.offer("personal-data")
        with pytest.raises(KluisError) as caught:
            _receive(citizen, service, offer.uri, offer.tx_code)
    assert caught.value.code == "sdjwt.bad_signature"
    assert list_credentials(citizen.vault) == ()


def test_revoking_after_receipt_shows_at_the_next_status_check(
    citizen: Citizen, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data")
    [stored] = _receive(citizen, brp, offer.uri, offer.tx_code)
    brp.issuer.change_status(offer.offer_id, "personal-data", "revoke", now=NOW)
    with pytest.raises(KluisError) as caught:
        _status_checker(brp).check_status(stored.claims["status"], now=int(NOW.timestamp()))
    assert caught.value.code == "status.revoked"


def test_a_listed_issuer_using_another_agencys_key_is_refused(
    citizen: Citizen, store_url: str, tmp_path: Path, world: World
) -> None:
    """DUO is on the list, but a diploma signed with BRP's key is not DUO's."""
    agency = IssuerAgency(id=DUO, names={"nl": "DUO", "en": "DUO"},
                          signing_key=world.keys.issuers[PERSONAL_DATA],
                          configurations=(configuration(DIPLOMA),))
    with running_issuer(store_url, tmp_path / "duo", issuer_agency=agency,
                        clock=Clock(at=NOW)) as service:
        offer = service.offer("diploma")
        with pytest.raises(KluisError) as caught:
            _receive(citizen, service, offer.uri, offer.tx_code)
    assert caught.value.code == "trustlist.unknown_key"
    assert list_credentials(citizen.vault) == ()
