"""``kluis credential receive OFFER`` in-process against a real issuer service on loopback:
the transaction code from the option, the environment or the keyboard, the documents stored
in the wallet, and the errors a citizen can meet, with their exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from consent_world import BRP, NOW, World, make_world
from issuer_service import Clock, IssuerService, running_issuer

from cli import context
from server.issuer_agency import IssuerAgency, configuration
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import Alg, generate_signing_key

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "now", lambda: NOW)


@pytest.fixture
def trusted(kluis: Invoke, profile: Path, tmp_path: Path, world: World) -> Path:
    """A profile whose wallet has the world's trust list."""
    (tmp_path / "trust.jws").write_text(world.signed_trust_list())
    (tmp_path / "anchor.pub.jwk").write_text(json.dumps(
        world.keys.anchor.export_public(as_dict=True)))
    result = kluis("trust", "set", str(tmp_path / "trust.jws"), "--anchor",
                   str(tmp_path / "anchor.pub.jwk"))
    assert result.exit_code == 0, result.output
    return profile


def _agency(world: World, agency_id: str = BRP, key: object = None) -> IssuerAgency:
    return IssuerAgency(
        id=agency_id, names={"nl": "Basisregistratie Personen", "en": "Personal Records"},
        signing_key=key or world.keys.issuers[PERSONAL_DATA],  # type: ignore[arg-type]
        configurations=(configuration(PERSONAL_DATA), configuration(INCOME_STATEMENT)),
    )


@pytest.fixture
def brp(tmp_path: Path, world: World) -> Iterator[IssuerService]:
    with running_issuer(f"sqlite:///{tmp_path / 'brp.db'}", tmp_path, clock=Clock(at=NOW),
                        issuer_agency=_agency(world)) as service:
        yield service


def _held(kluis: Invoke) -> list[dict[str, object]]:
    result = kluis("credential", "list", "--json")
    assert result.exit_code == 0, result.output
    held: list[dict[str, object]] = json.loads(result.stdout)
    return held


def test_receive_by_reference_with_the_code_as_option(
    kluis: Invoke, trusted: Path, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data")
    result = kluis("credential", "receive", offer.reference_uri, "--tx-code", str(offer.tx_code))
    assert result.exit_code == 0, result.output
    assert "Stored: " in result.stdout and BRP in result.stdout
    [held] = _held(kluis)
    assert held["vct"] == PERSONAL_DATA and held["issuer"] == BRP


def test_code_from_the_environment_and_json_output(
    kluis: Invoke, trusted: Path, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data")
    result = kluis("credential", "receive", offer.uri, "--json",
                   env={"KLUIS_TX_CODE": str(offer.tx_code)})
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert item["vct"] == PERSONAL_DATA and item["issuer"] == BRP


def test_code_asked_after_naming_the_issuers_address(
    kluis: Invoke, trusted: Path, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data", "income-statement")
    result = kluis("credential", "receive", offer.reference_uri, input=f"{offer.tx_code}\n",
                   lang="nl")
    assert result.exit_code == 0, result.output
    assert brp.url in result.output and "vraagt om de code" in result.output
    assert result.stdout.count("Bewaard: ") == 2
    assert {h["vct"] for h in _held(kluis)} == {PERSONAL_DATA, INCOME_STATEMENT}


def test_offer_from_standard_input_without_a_code(
    kluis: Invoke, trusted: Path, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data", tx_code=False)
    result = kluis("credential", "receive", "-", input=offer.uri)
    assert result.exit_code == 0, result.output
    assert len(_held(kluis)) == 1


def test_wrong_code(kluis: Invoke, trusted: Path, brp: IssuerService) -> None:
    offer = brp.offer("personal-data")
    wrong = "000000" if offer.tx_code != "000000" else "111111"
    result = kluis("credential", "receive", offer.uri, "--tx-code", wrong)
    assert result.exit_code == 6
    assert "[vci.grant_refused]" in result.stderr and "4 more" in result.stderr
    assert _held(kluis) == []


def test_code_of_the_wrong_form_is_not_sent(
    kluis: Invoke, trusted: Path, brp: IssuerService
) -> None:
    offer = brp.offer("personal-data")
    result = kluis("credential", "receive", offer.uri, "--tx-code", "12ab")
    assert result.exit_code == 3 and "[vci.bad_tx_code]" in result.stderr
    ((failures,),) = brp.rows("SELECT failures FROM issuer_offer WHERE offer_id = ?",
                              (offer.offer_id,))
    assert failures == 0


def test_issuer_not_on_the_trust_list(
    kluis: Invoke, trusted: Path, tmp_path: Path, world: World
) -> None:
    stranger = _agency(world, "https://stranger.kluis.example",
                       generate_signing_key(Alg.ES256, kid="x"))
    with running_issuer(f"sqlite:///{tmp_path / 's.db'}", tmp_path, clock=Clock(at=NOW),
                        issuer_agency=stranger) as service:
        offer = service.offer("personal-data", tx_code=False)
        result = kluis("credential", "receive", offer.uri)
    assert result.exit_code == 6 and "[trustlist.not_an_issuer]" in result.stderr
    assert _held(kluis) == []


def test_not_an_offer(kluis: Invoke, trusted: Path) -> None:
    result = kluis("credential", "receive", "https://example.com/hello")
    assert result.exit_code == 3 and "[vci.bad_offer]" in result.stderr


def test_unreachable_issuer(kluis: Invoke, trusted: Path) -> None:
    document = {"credential_issuer": "http://127.0.0.1:9", "credential_configuration_ids": ["x"],
                "grants": {"urn:ietf:params:oauth:grant-type:pre-authorized_code": {
                    "pre-authorized_code": "c"}}}
    result = kluis("credential", "receive", json.dumps(document))
    assert result.exit_code == 8 and "[transport.unreachable]" in result.stderr
