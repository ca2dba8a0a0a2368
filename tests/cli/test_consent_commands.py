"""``kluis trust``, ``kluis credential`` and ``kluis request`` in-process: set the trust list,
show the holder key, import credentials, read the consent screen in both languages, approve
and refuse into response files, and the errors a citizen can meet."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from consent_world import (
    NOW,
    STRANGER_CLIENT,
    UTRECHT_CLIENT,
    World,
    make_world,
    purpose_data,
    request_params,
)

from cli import context
from verifiers.credential_type import DIPLOMA, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.jws import format_jwk, parse_jwk
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import parse_sd_jwt
from verifiers.verifier import verify_sd_jwt

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "now", lambda: NOW)


@pytest.fixture
def files(tmp_path: Path, world: World) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "trust.jws").write_text(world.signed_trust_list())
    (folder / "anchor.pub.jwk").write_text(json.dumps(world.keys.anchor.export_public(
        as_dict=True)))
    return folder


@pytest.fixture
def ready(kluis: Invoke, profile: Path, files: Path, world: World) -> Path:
    """A profile with the trust list set and personal data and income statement held."""
    assert kluis("trust", "set", str(files / "trust.jws"), "--anchor",
                 str(files / "anchor.pub.jwk")).exit_code == 0
    holder = parse_jwk(json.loads(kluis("credential", "key").stdout))
    for vct in (PERSONAL_DATA, INCOME_STATEMENT):
        path = files / f"{vct.rsplit('/', 1)[1]}.sdjwt"
        path.write_text(world.issue(vct, holder))
        result = kluis("credential", "import", str(path))
        assert result.exit_code == 0, result.output
    return files


def _request_file(folder: Path, name: str = "request.json", **changes: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(request_params(**changes)))
    return path


def _id(kluis: Invoke, path: Path) -> str:
    result = kluis("request", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def test_trust_set_and_show(kluis: Invoke, profile: Path, files: Path) -> None:
    result = kluis("trust", "set", str(files / "trust.jws"), "--anchor",
                   str(files / "anchor.pub.jwk"))
    assert result.exit_code == 0 and "Municipality of Utrecht" in result.stdout
    shown = json.loads(kluis("trust", "show", "--json").stdout)
    assert shown["sequence"] == 12 and len(shown["agencies"]) == 5


def test_trust_set_refuses_an_older_list(kluis: Invoke, profile: Path, files: Path,
                                         world: World) -> None:
    (files / "newer.jws").write_text(world.signed_trust_list(sequence=13))
    anchor = str(files / "anchor.pub.jwk")
    assert kluis("trust", "set", str(files / "newer.jws"), "--anchor", anchor).exit_code == 0
    result = kluis("trust", "set", str(files / "trust.jws"), "--anchor", anchor)
    assert result.exit_code == 7 and "trustlist.rollback" in result.output


def test_trust_set_refuses_another_anchor(kluis: Invoke, profile: Path, files: Path,
                                          world: World) -> None:
    other = make_world().keys.anchor.export_public(as_dict=True)
    (files / "other.pub.jwk").write_text(json.dumps(other))
    result = kluis("trust", "set", str(files / "trust.jws"), "--anchor",
                   str(files / "other.pub.jwk"))
    assert result.exit_code == 7 and "trustlist.bad_signature" in result.output


def test_credential_key_prints_only_the_public_jwk(kluis: Invoke, profile: Path) -> None:
    first = json.loads(kluis("credential", "key").stdout)
    assert "d" not in first and first["kty"] == "EC"
    assert json.loads(kluis("credential", "key", "--json").stdout)["jwk"] == first
    eddsa = json.loads(kluis("credential", "key", "--alg", "EdDSA", "--json").stdout)
    assert eddsa["alg"] == "EdDSA" and "d" not in eddsa["jwk"]


def test_import_list_and_show_credentials(kluis: Invoke, ready: Path) -> None:
    listed = json.loads(kluis("credential", "list", "--json").stdout)
    assert {c["vct"] for c in listed} == {PERSONAL_DATA, INCOME_STATEMENT}
    pid = next(c["id"] for c in listed if c["vct"] == PERSONAL_DATA)
    shown = kluis("credential", "show", pid[:6], lang="nl").stdout
    assert "Persoonsgegevens" in shown and "Burgerservicenummer (BSN): 999990019" in shown
    assert "Oudegracht, 231, 3511 NK, Utrecht, NL" in shown
    data = json.loads(kluis("credential", "show", pid, "--json").stdout)
    assert {c["path"][0]: c["value"] for c in data["claims"]}["given_name"] == "Anna Maria"
    table = kluis("credential", "list").stdout
    assert "Income statement" in table and "Personal data" in table


def test_import_without_a_trust_list_names_the_fix(kluis: Invoke, profile: Path, files: Path,
                                                   world: World) -> None:
    holder = parse_jwk(json.loads(kluis("credential", "key").stdout))
    (files / "c.sdjwt").write_text(world.issue(DIPLOMA, holder))
    result = kluis("credential", "import", str(files / "c.sdjwt"))
    assert result.exit_code == 4 and "trust.no_list" in result.output


def test_import_with_a_pinned_issuer_key_or_a_given_trust_list(
    kluis: Invoke, profile: Path, files: Path, world: World
) -> None:
    holder = parse_jwk(json.loads(kluis("credential", "key").stdout))
    (files / "c.sdjwt").write_text(world.issue(DIPLOMA, holder))
    (files / "issuer.pub.jwk").write_text(json.dumps(format_jwk(
        world.keys.issuers[DIPLOMA].public)))
    result = kluis("credential", "import", str(files / "c.sdjwt"), "--issuer-key",
                   str(files / "issuer.pub.jwk"))
    assert result.exit_code == 0, result.output
    (files / "d.sdjwt").write_text(world.issue(INCOME_STATEMENT, holder))
    result = kluis("credential", "import", str(files / "d.sdjwt"), "--trust-list",
                   str(files / "trust.jws"), "--trust-anchor", str(files / "anchor.pub.jwk"))
    assert result.exit_code == 0, result.output
    again = kluis("credential", "import", str(files / "d.sdjwt"), "--trust-list",
                  str(files / "trust.jws"), "--trust-anchor", str(files / "anchor.pub.jwk"))
    assert again.exit_code == 5 and "credential.already_held" in again.output


def test_garbage_credential_file(kluis: Invoke, ready: Path) -> None:
    (ready / "junk").write_text("hello")
    result = kluis("credential", "import", str(ready / "junk"))
    assert result.exit_code == 3 and "sdjwt.malformed" in result.output


def test_the_consent_screen_in_english(kluis: Invoke, ready: Path) -> None:
    rid = _id(kluis, _request_file(ready))
    screen = kluis("request", "show", rid).stdout
    for text in ("Who is asking?", "Municipality of Utrecht (on the trust list)",
                 "Deciding on household help under the Wmo", "Purpose (DPV): dpv:ServiceProvision",
                 "Social Support Act 2015, art. 2.3.2", "Until 5 March 2029",
                 "Their processing activity: utrecht-va-0042", "Given names: Anna Maria",
                 "Address: Oudegracht, 231, 3511 NK, Utrecht, NL",
                 "Income bracket: 2, € 30.001 – € 45.000", "Always shared with it:",
                 "Holder's key: your key", "They keep your data for more than a year",
                 f"kluis request approve {rid}"):
        assert text in screen, text
    assert "999990019" not in screen  # the BSN is not asked, so not shown


def test_the_consent_screen_in_dutch(kluis: Invoke, ready: Path) -> None:
    rid = _id(kluis, _request_file(ready))
    screen = kluis("request", "show", rid, lang="nl").stdout
    for text in ("Wie vraagt het?", "Gemeente Utrecht (staat op de vertrouwenslijst)",
                 "Beslissen over hulp bij het huishouden (Wmo)", "Wettelijke grondslag:",
                 "Tot 5 maart 2029 (Twee jaar na het besluit)", "Voornamen: Anna Maria",
                 "Inkomensklasse", "Gaat altijd mee:", "Let op:"):
        assert text in screen, text


def test_show_accepts_a_file_and_json(kluis: Invoke, ready: Path) -> None:
    data = json.loads(kluis("request", "show", str(_request_file(ready)), "--json").stdout)
    assert data["status"] == "ready" and data["verifier"]["registered"] is True
    assert data["retention"]["until"] == "2029-03-05"
    assert [c["query_id"] for c in data["credentials"]] == ["pid", "income"]
    listed = json.loads(kluis("request", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [data["id"]] and listed[0]["state"] == "pending"


def test_approve_writes_a_response_the_verifier_accepts(kluis: Invoke, ready: Path,
                                                       world: World) -> None:
    rid = _id(kluis, _request_file(ready))
    out = ready / "answer.json"
    result = kluis("request", "approve", rid, "--out", str(out), "--yes")
    assert result.exit_code == 0, result.output
    response = json.loads(out.read_text())
    assert response["state"] == "wmo-2027-0001" and sorted(response["vp_token"]) == [
        "income", "pid"]
    from verifiers.trustlist import TrustAnchor, verify_trust_list

    trust = verify_trust_list(world.signed_trust_list(), TrustAnchor.from_jwk(
        "kluis test anchor", world.keys.anchor), now=NOW)
    verified = verify_sd_jwt(response["vp_token"]["pid"][0], issuer_keys=trust,
                             now=int(NOW.timestamp()),
                             key_binding=KeyBinding(nonce="n-0S6_WzA2Mj-Aq9fJ3x7Q",
                                                    aud=UTRECHT_CLIENT))
    assert "bsn" not in verified.claims and verified.claims["given_name"] == "Anna Maria"
    again = kluis("request", "approve", rid, "--out", str(ready / "again.json"), "--yes")
    assert again.exit_code == 5 and "request.already_decided" in again.output
    assert not (ready / "again.json").exists()


def test_approve_asks_and_no_shares_nothing(kluis: Invoke, ready: Path) -> None:
    rid = _id(kluis, _request_file(ready))
    out = ready / "answer.json"
    result = kluis("request", "approve", rid, "--out", str(out), input="n\n")
    assert result.exit_code == 1 and "Nothing was shared" in result.stdout
    assert not out.exists()
    assert json.loads(kluis("request", "list", "--json").stdout)[0]["state"] == "pending"


def test_approve_with_leave_out(kluis: Invoke, ready: Path) -> None:
    dcql = {"credentials": [
        {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [PERSONAL_DATA]},
         "claims": [{"id": "g", "path": ["given_name"]}, {"id": "a", "path": ["address"]}],
         "claim_sets": [["g", "a"], ["a"]]}]}
    rid = _id(kluis, _request_file(ready, dcql_query=dcql))
    assert "--leave-out given_name" in kluis("request", "show", rid).stdout
    out = ready / "answer.json"
    result = kluis("request", "approve", rid, "--leave-out", "given_name", "--out", str(out),
                   "--yes")
    assert result.exit_code == 0, result.output
    token = json.loads(out.read_text())["vp_token"]["pid"][0]
    names = {d.name for d in parse_sd_jwt(token).disclosures}
    assert names == {"address", "street_address", "house_number", "postal_code", "locality",
                     "country"}


def test_refuse_writes_access_denied(kluis: Invoke, ready: Path) -> None:
    rid = _id(kluis, _request_file(ready))
    out = ready / "refusal.json"
    result = kluis("request", "refuse", rid, "--out", str(out), lang="nl")
    assert result.exit_code == 0 and "Er is niets gedeeld" in result.stdout
    assert json.loads(out.read_text())["error"] == "access_denied"
    approve = kluis("request", "approve", rid, "--out", str(ready / "a.json"), "--yes")
    assert approve.exit_code == 5


def test_a_blocked_request_is_explained_and_cannot_be_approved(kluis: Invoke,
                                                               ready: Path) -> None:
    rid = _id(kluis, _request_file(ready, client_id=STRANGER_CLIENT))
    screen = kluis("request", "show", rid, lang="nl").stdout
    assert "TEGENGEHOUDEN" in screen and "staat NIET op de vertrouwenslijst" in screen
    result = kluis("request", "approve", rid, "--out", str(ready / "a.json"), "--yes")
    assert result.exit_code == 6 and "consent.blocked" in result.output


def test_over_asking_names_the_claims_on_screen(kluis: Invoke, ready: Path) -> None:
    dcql = {"credentials": [{"id": "pid", "format": "dc+sd-jwt",
                             "meta": {"vct_values": [PERSONAL_DATA]},
                             "claims": [{"path": ["given_name"]}, {"path": ["bsn"]}]}]}
    rid = _id(kluis, _request_file(ready, dcql_query=dcql))
    screen = kluis("request", "show", rid).stdout
    assert "asks for more than it is registered for: Citizen service number (BSN)" in screen


def test_an_expired_request(kluis: Invoke, ready: Path) -> None:
    info = [{"format": "kluis_purpose", "data": purpose_data(expires_at="2027-03-01T00:00:00Z")}]
    rid = _id(kluis, _request_file(ready, verifier_info=info))
    assert "This request has expired" in kluis("request", "show", rid).stdout
    result = kluis("request", "approve", rid, "--out", str(ready / "a.json"), "--yes")
    assert result.exit_code == 6 and "request.expired" in result.output


def test_malformed_request_files(kluis: Invoke, ready: Path) -> None:
    (ready / "bad.json").write_text(json.dumps(request_params(nonce="short")))
    result = kluis("request", "import", str(ready / "bad.json"))
    assert result.exit_code == 3 and "request.bad_nonce" in result.output
    assert kluis("request", "show", "abcd").exit_code == 4


def test_a_signed_request_object_file(kluis: Invoke, ready: Path, world: World) -> None:
    from verifiers.jws import sign_jws

    key = world.keys.utrecht
    token = sign_jws({"alg": "ES256", "typ": "oauth-authz-req+jwt", "kid": key.kid},
                     request_params(), key)
    (ready / "request.jwt").write_text(token + "\n")
    data = json.loads(kluis("request", "show", str(ready / "request.jwt"), "--json").stdout)
    assert data["signed"] is True and "unsigned" not in [w["code"] for w in data["warnings"]]
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    (ready / "forged.jwt").write_text(forged)
    result = kluis("request", "import", str(ready / "forged.jwt"))
    assert result.exit_code == 7 and "request.bad_signature" in result.output
