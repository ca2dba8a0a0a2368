"""The inbox and the relay account over a real relay (SQLite; the relay's own tests cover both
backends), with a scripted verifier behind the request links: requests come into the vault
before their message is acknowledged, a fetched Request Object is never fetched twice, bad
messages are acknowledged with their error, passing failures are left for the next round."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from consent_world import NOW, Citizen, World, new_citizen
from scripted_verifier import REQUEST_URI, FakeVerifier, request_object
from verifier_service import running_relay, signed_trust_list, utrecht

from server.verifier_agency import VerifierAgency
from vault import KluisError
from verifiers.credential_type import INCOME_STATEMENT, PERSONAL_DATA
from wallet.evaluation import Status
from wallet.inbox import URI_LIST, arrived_by_network, collect
from wallet.relay_account import (
    agency_address,
    agency_addresses,
    mailbox_client,
    register_relay,
    relay_account,
)
from wallet.transport import HttpxTransport, Response
from wallet.trust import set_trust_list


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("relay")
    with running_relay(f"sqlite:///{folder / 'relay.db'}", folder) as url:
        yield url


@pytest.fixture(scope="module")
def agency(world: World) -> VerifierAgency:
    return utrecht(world, NOW)


@dataclass
class Network:
    """The relay over real HTTP; anything else goes to the scripted verifier."""

    relay: str
    verifier: FakeVerifier
    http: HttpxTransport

    def request(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes = b"",
                timeout: float | None = None) -> Response:
        if url.startswith(self.relay):
            return self.http.request(method, url, headers=headers, body=body, timeout=timeout)
        return self.verifier.request(method, url, headers=headers, body=body, timeout=timeout)


@pytest.fixture
def citizen(tmp_path: Path, world: World, agency: VerifierAgency) -> Iterator[Citizen]:
    opened = new_citizen(tmp_path / "citizen", world)
    set_trust_list(opened.vault, signed_trust_list(world, agency), world.anchor(), now=NOW)
    opened.receive(PERSONAL_DATA)
    opened.receive(INCOME_STATEMENT)
    try:
        yield opened
    finally:
        opened.wallet.close()


@pytest.fixture
def network(relay: str, agency: VerifierAgency, citizen: Citizen) -> Iterator[Network]:
    with HttpxTransport() as http:
        net = Network(relay, FakeVerifier(agency, request_object(agency)), http)
        register_relay(citizen.vault, relay, transport=net, now=NOW)
        yield net


def _link(agency: VerifierAgency) -> str:
    return "openid4vp://?" + urlencode({"client_id": agency.client_id,
                                        "request_uri": REQUEST_URI}, quote_via=quote)


def _post(citizen: Citizen, net: Network, body: str, content_type: str = URI_LIST,
          agency: str = "https://utrecht.kluis.example") -> None:
    address = agency_address(citizen.vault, agency, transport=net, now=NOW)
    answer = httpx.post(address.url, json={"content_type": content_type, "body": body})
    assert answer.status_code == 202, answer.text


def _collect(citizen: Citizen, net: Network) -> Any:
    return collect(citizen.vault, citizen.consent, mailbox_client(citizen.vault, transport=net),
                   transport=net, clock=lambda: NOW)


def _pending(citizen: Citizen, net: Network) -> int:
    return len(mailbox_client(citizen.vault, transport=net).fetch().messages)


def test_registering_again_keeps_the_mailbox_and_addresses_are_pairwise(
    citizen: Citizen, network: Network, relay: str
) -> None:
    account = relay_account(citizen.vault)
    assert register_relay(citizen.vault, relay + "/", transport=network, now=NOW) == account
    utrecht_address = agency_address(citizen.vault, "https://utrecht.kluis.example",
                                     transport=network, now=NOW)
    again = agency_address(citizen.vault, "https://utrecht.kluis.example",
                           transport=network, now=NOW)
    tax = agency_address(citizen.vault, "https://belastingdienst.kluis.example",
                         transport=network, now=NOW)
    assert again == utrecht_address and tax.address != utrecht_address.address
    assert [a.agency for a in agency_addresses(citizen.vault)] == [
        "https://utrecht.kluis.example", "https://belastingdienst.kluis.example"]
    assert utrecht_address.url == f"{relay}/a/{utrecht_address.address}/messages"


def test_moving_to_another_relay_makes_a_new_mailbox_and_forgets_old_addresses(
    citizen: Citizen, network: Network, tmp_path: Path
) -> None:
    old = relay_account(citizen.vault)
    agency_address(citizen.vault, "https://utrecht.kluis.example", transport=network, now=NOW)
    with running_relay(f"sqlite:///{tmp_path / 'other.db'}", tmp_path) as other:
        network.relay = other
        moved = register_relay(citizen.vault, other, transport=network, now=NOW)
    assert moved.mailbox != old.mailbox and moved.url == other
    assert agency_addresses(citizen.vault) == ()


def test_without_a_relay_account_the_inbox_says_how_to_make_one(citizen: Citizen) -> None:
    with pytest.raises(KluisError) as caught:
        relay_account(citizen.vault)
    assert caught.value.code == "mailbox.not_registered"


def test_a_request_comes_into_the_vault_before_its_message_is_acknowledged(
    citizen: Citizen, network: Network, agency: VerifierAgency
) -> None:
    _post(citizen, network, "# the municipality asks\r\n" + _link(agency) + "\r\n")
    [item] = _collect(citizen, network).items
    assert item.error is None and item.acked and item.address_agency == agency.id
    assert item.evaluation.status is Status.READY
    assert arrived_by_network(citizen.vault, item.evaluation.request.id)
    assert [e["kind"] for e in citizen.entries()][-1] == "request_received"
    assert _pending(citizen, network) == 0


def test_messages_of_other_kinds_are_left_alone(citizen: Citizen, network: Network) -> None:
    _post(citizen, network, "sealed grant payload", content_type="application/octet-stream")
    collected = _collect(citizen, network)
    assert (collected.items, collected.skipped) == ((), 1)
    assert _pending(citizen, network) == 1


@pytest.mark.parametrize(("body", "answer", "code"), [
    ("not a link at all", None, "vp.bad_request_uri"),
    ("https://phish.example/?client_id=a&request_uri=b", None, "vp.bad_request_uri"),
    (None, Response(404, {}, b""), "vp.request_gone"),
    (None, Response(200, {"content-type": "application/oauth-authz-req+jwt"}, b"a.b.c"),
     "jws.malformed"),
], ids=["junk", "not-openid4vp", "gone", "broken-object"])
def test_a_message_bad_for_good_is_acknowledged_with_its_error(
    citizen: Citizen, network: Network, agency: VerifierAgency, body: str | None,
    answer: Response | None, code: str,
) -> None:
    network.verifier.object_answer = answer
    _post(citizen, network, body or _link(agency))
    [item] = _collect(citizen, network).items
    assert (item.error, item.acked, item.evaluation) == (code, True, None)
    assert _pending(citizen, network) == 0
    assert "request_received" not in [e["kind"] for e in citizen.entries()]


def test_a_verifier_out_of_reach_leaves_the_message_for_the_next_round(
    citizen: Citizen, network: Network, agency: VerifierAgency
) -> None:
    network.verifier.object_answer = Response(503, {}, b"")
    _post(citizen, network, _link(agency))
    [item] = _collect(citizen, network).items
    assert (item.error, item.acked) == ("vp.verifier_unavailable", False)
    assert _pending(citizen, network) == 1
    network.verifier.object_answer = None
    [again] = _collect(citizen, network).items
    assert again.error is None and again.evaluation.status is Status.READY
    assert _pending(citizen, network) == 0


def test_a_stored_request_object_is_not_fetched_again_after_an_interruption(
    citizen: Citizen, network: Network, agency: VerifierAgency, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetched and kept, then the round stops (here: the consent engine fails once); the
    verifier would now refuse a second fetch, but the wallet goes on from its copy."""
    _post(citizen, network, _link(agency))
    real = citizen.consent.receive

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(citizen.consent, "receive", real)
        raise KluisError("interrupted")

    monkeypatch.setattr(citizen.consent, "receive", fail_once)
    with pytest.raises(KluisError):
        _collect(citizen, network)
    assert _pending(citizen, network) == 1
    network.verifier.object_answer = Response(409, {}, b"")  # served once
    [item] = _collect(citizen, network).items
    assert item.error is None and item.evaluation.status is Status.READY
    assert _pending(citizen, network) == 0


def test_a_request_from_another_agency_than_the_address_was_given_to_is_flagged(
    citizen: Citizen, network: Network, agency: VerifierAgency
) -> None:
    _post(citizen, network, _link(agency), agency="https://belastingdienst.kluis.example")
    [item] = _collect(citizen, network).items
    assert item.foreign and item.address_agency == "https://belastingdienst.kluis.example"
