"""``kluis relay``, ``kluis inbox``, ``kluis request approve|refuse`` over the network and
``kluis agency request|received``, in-process against a real relay and verifier (SQLite): the
agency asks through the citizen's address, the inbox brings the request in, the citizen
decides, and both sides see the outcome; the file form keeps working beside it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from consent_world import NOW, World, make_world, request_params
from issuer_service import Clock
from verifier_service import (
    VerifierService,
    running_relay,
    running_verifier,
    signed_trust_list,
    utrecht,
    verified_trust_list,
)

from cli import context
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import parse_jwk

Invoke = Callable[..., Result]
CLAIMS = ["--claims", "personal-data:given_name,family_name,address",
          "--claims", "income-statement:income_bracket"]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "now", lambda: NOW)


@pytest.fixture(scope="module")
def network(world: World, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, VerifierService, str]]:
    """A relay and the municipality's verifier; the signed trust list naming it."""
    folder = tmp_path_factory.mktemp("network")
    url = f"sqlite:///{folder / 'services.db'}"
    agency = utrecht(world, NOW)
    signed = signed_trust_list(world, agency)
    with running_relay(url, folder) as relay, running_verifier(
            url, folder, agency=agency, trust=verified_trust_list(world, signed, NOW),
            clock=Clock(at=NOW)) as verifier:
        yield relay, verifier, signed


@pytest.fixture
def citizen(kluis: Invoke, profile: Path, tmp_path: Path, world: World,
            network: tuple[str, VerifierService, str]) -> str:
    """A profile with the trust list, two credentials, a relay mailbox; its address for the
    municipality (what the citizen gives the agency)."""
    relay, verifier, signed = network
    (tmp_path / "trust.jws").write_text(signed)
    (tmp_path / "anchor.pub.jwk").write_text(json.dumps(
        world.keys.anchor.export_public(as_dict=True)))
    _ok(kluis("trust", "set", str(tmp_path / "trust.jws"), "--anchor",
              str(tmp_path / "anchor.pub.jwk")))
    holder = parse_jwk(json.loads(kluis("credential", "key").stdout))
    for vct in (PERSONAL_DATA, INCOME_STATEMENT):
        path = tmp_path / f"{vct.rsplit('/', 1)[1]}.sdjwt"
        path.write_text(world.issue(vct, holder))
        _ok(kluis("credential", "import", str(path)))
    _ok(kluis("relay", "register", "--relay", relay))
    address = json.loads(_ok(kluis("relay", "address", verifier.agency.id, "--json")).stdout)
    return str(address["url"])


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _ask(kluis: Invoke, verifier: VerifierService, to: str, *extra: str) -> dict[str, Any]:
    result = _ok(kluis("agency", "request", "--verifier", verifier.admin_url, "--to", to,
                       "--purpose", "wmo-household-help", *extra, "--json"))
    return dict(json.loads(result.stdout))


def _inbox(kluis: Invoke) -> dict[str, Any]:
    return dict(json.loads(_ok(kluis("inbox", "--json")).stdout))


def test_ask_collect_approve_and_both_sides_see_it(
    kluis: Invoke, citizen: str, network: tuple[str, VerifierService, str]
) -> None:
    _, verifier, _ = network
    created = _ask(kluis, verifier, citizen, *CLAIMS)
    inbox = _inbox(kluis)
    [new] = inbox["new"]
    assert (new["status"], new["error"], new["acked"]) == ("ready", None, True)
    assert [r["id"] for r in inbox["requests"]] == [new["request"]]
    screen = _ok(kluis("request", "show", new["request"])).stdout
    assert "Municipality of Utrecht (on the trust list)" in screen
    assert f"kluis request approve {new['request']}\n" in screen  # no --out: it goes back
    approved = _ok(kluis("request", "approve", new["request"], "--yes"))
    assert "Approved and sent to Municipality of Utrecht" in approved.stdout
    assert "2 receipt(s)" in approved.stdout
    assert verifier.status(created["id"])["status"] == "received"
    received = json.loads(_ok(kluis("agency", "received", "--verifier", verifier.admin_url,
                                    "--request", created["id"], "--json")).stdout)
    assert {item["query_id"] for item in received} == {"personal-data", "income-statement"}
    table = _ok(kluis("agency", "received", "--verifier", verifier.admin_url)).stdout
    assert "Income bracket" in table
    assert _inbox(kluis)["requests"] == []  # decided: no longer waiting


def test_refusing_tells_the_agency(kluis: Invoke, citizen: str,
                                   network: tuple[str, VerifierService, str]) -> None:
    _, verifier, _ = network
    created = _ask(kluis, verifier, citizen, *CLAIMS)
    [new] = _inbox(kluis)["new"]
    refused = _ok(kluis("request", "refuse", new["request"]))
    assert "the agency was told" in refused.stdout
    status = verifier.status(created["id"])
    assert (status["status"], status["outcome"]) == ("refused", "access_denied")


def test_an_over_asking_request_is_blocked_and_shown_so(
    kluis: Invoke, citizen: str, network: tuple[str, VerifierService, str]
) -> None:
    _, verifier, _ = network
    result = kluis("agency", "request", "--verifier", verifier.admin_url, "--to", citizen,
                   "--purpose", "wmo-household-help", "--claims", "personal-data:bsn")
    assert result.exit_code == 0 and "beyond your registration" in result.output
    [new] = _inbox(kluis)["new"]
    assert new["status"] == "blocked"
    approve = kluis("request", "approve", new["request"], "--yes")
    assert approve.exit_code == 6 and "consent.blocked" in approve.output


def test_the_file_form_still_needs_out_and_works(kluis: Invoke, citizen: str,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_params(
        client_id="redirect_uri:https://dev.kluis.example/response",
        response_uri="https://dev.kluis.example/response")))
    ident = json.loads(_ok(kluis("request", "import", str(path), "--json")).stdout)["id"]
    without = kluis("request", "approve", ident, "--yes")
    assert without.exit_code == 2 and "--out" in without.output
    _ok(kluis("request", "approve", ident, "--yes", "--out", str(tmp_path / "answer.json")))
    assert "vp_token" in json.loads((tmp_path / "answer.json").read_text())


def test_relay_errors_are_plain(kluis: Invoke, profile: Path, citizen: str,
                                network: tuple[str, VerifierService, str]) -> None:
    _, verifier, _ = network
    unknown = kluis("relay", "address", "https://nobody.kluis.example")
    assert unknown.exit_code == 4 and "trustlist.unknown_agency" in unknown.output
    gone = kluis("agency", "request", "--verifier", verifier.admin_url,
                 "--to", citizen.replace("/a/", "/a/x"), "--purpose", "wmo-household-help",
                 *CLAIMS)
    assert gone.exit_code == 6 and "cli.service_refused" in gone.output
    assert "relay.unknown_address" in gone.output
    no_service = kluis("agency", "received")
    assert no_service.exit_code == 3 and "cli.no_verifier" in no_service.output
    shown = json.loads(_ok(kluis("relay", "show", "--json")).stdout)
    assert [a["agency"] for a in shown["addresses"]] == [verifier.agency.id]


def test_an_inbox_without_a_relay_says_how_to_register(kluis: Invoke, profile: Path) -> None:
    result = kluis("inbox")
    assert result.exit_code == 4 and "kluis relay register" in result.output
