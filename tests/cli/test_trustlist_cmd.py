"""``kluis trustlist create|sign|verify``: a developer writes, signs and checks a trust list
from files, and every bad input ends in one line with its code, its exit code, and no file
written or changed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from jwcrypto.jwk import JWK

from verifiers import (
    PERSONAL_DATA,
    TrustAnchor,
    format_trust_list,
    parse_trust_list,
    sign_trust_list,
    trust_list_hash,
    verify_trust_list,
)

Invoke = Callable[..., Result]
Run = Callable[..., subprocess.CompletedProcess[bytes]]
ANCHOR_NAME = "kluis test anchor"


def _key_files(folder: Path, name: str, kty: str = "OKP", crv: str = "Ed25519") -> JWK:
    """KEY.jwk and KEY.pub.jwk in the form ``kluis sdjwt keygen`` writes them."""
    key = JWK.generate(kty=kty, crv=crv)
    alg = "EdDSA" if kty == "OKP" else "ES256"
    kid = key.thumbprint()
    (folder / f"{name}.jwk").write_text(
        json.dumps({**key.export_private(as_dict=True), "kid": kid, "alg": alg})
    )
    (folder / f"{name}.pub.jwk").write_text(
        json.dumps({**key.export_public(as_dict=True), "kid": kid, "alg": alg})
    )
    return key


def _issuer(public_jwk: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "https://brp.kluis.example",
        "names": {"nl": "Basisregistratie Personen", "en": "Personal Records Database"},
        "roles": ["issuer"],
        "jwks": {"keys": [public_jwk]},
    }


def _verifier(public_jwk: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "https://utrecht.kluis.example",
        "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
        "roles": ["verifier"],
        "jwks": {"keys": [public_jwk]},
        "purposes": [
            {
                "id": "wmo-household-help",
                "dpv": "dpv:ServiceProvision",
                "description": {"nl": "Hulp bij het huishouden", "en": "Household help"},
                "legal_basis": {"nl": "Wmo 2015, art. 2.3.2", "en": "Social Support Act 2015"},
                "processing_activity": "utrecht-va-0042",
                "credentials": [
                    {"vct": PERSONAL_DATA, "claims": [["given_name"], ["address", "locality"]]},
                    {"vct": "https://other.example/vct/unknown", "claims": []},
                ],
            }
        ],
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Keys and agency files as a developer would have them."""
    for name, kty, crv in [
        ("anchor", "OKP", "Ed25519"),
        ("other", "EC", "P-256"),
        ("brp", "EC", "P-256"),
        ("utrecht", "OKP", "Ed25519"),
    ]:
        _key_files(tmp_path, name, kty, crv)
    for name, agency in [("brp", _issuer), ("utrecht", _verifier)]:
        public = json.loads((tmp_path / f"{name}.pub.jwk").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps(agency(public)))
    return tmp_path


def _flip_payload(signed: Path) -> None:
    """Change one character in the middle of the payload (still canonical base64url)."""
    header, payload, signature = signed.read_text().split(".")
    middle = len(payload) // 2
    flipped = "A" if payload[middle] != "A" else "B"
    changed = payload[:middle] + flipped + payload[middle + 1 :]
    signed.write_text(".".join([header, changed, signature]))


def _create(kluis: Invoke, folder: Path, *extra: str) -> Result:
    return kluis(
        "trustlist", "create", "--anchor-name", ANCHOR_NAME,
        "--agency", str(folder / "brp.json"), "--agency", str(folder / "utrecht.json"),
        "--out", str(folder / "doc.json"), *extra,
    )  # fmt: skip


def _signed(kluis: Invoke, folder: Path) -> Path:
    assert _create(kluis, folder, "--sequence", "7").exit_code == 0
    result = kluis(
        "trustlist", "sign", str(folder / "doc.json"),
        "--key", str(folder / "anchor.jwk"), "--out", str(folder / "list.jws"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder / "list.jws"


def _anchor(folder: Path, name: str = ANCHOR_NAME) -> TrustAnchor:
    return TrustAnchor.from_jwk(name, json.loads((folder / "anchor.pub.jwk").read_text()))


def _refused(result: Result, code: str, exit_code: int) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stderr.startswith(f"Error [{code}]: ") and result.stderr.count("\n") == 1
    assert result.stdout == ""


# --- create --------------------------------------------------------------------------------------


def test_create_builds_a_valid_list_from_agency_files(kluis: Invoke, folder: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = _create(kluis, folder, "--valid-days", "10", "--sequence", "3")
    assert result.exit_code == 0, result.output
    trust_list = parse_trust_list((folder / "doc.json").read_bytes())
    assert trust_list.issuer == trust_list.list_id == ANCHOR_NAME
    assert trust_list.sequence == 3
    assert trust_list.next_update - trust_list.issued_at == timedelta(days=10)
    assert before <= trust_list.issued_at <= datetime.now(UTC)
    agencies = [json.loads((folder / f).read_text()) for f in ("brp.json", "utrecht.json")]
    assert format_trust_list(trust_list)["agencies"] == agencies
    assert "2 agencies" in result.stdout


def test_create_gives_a_key_without_kid_its_thumbprint(kluis: Invoke, folder: Path) -> None:
    agency = json.loads((folder / "brp.json").read_text())
    del agency["jwks"]["keys"][0]["kid"]
    (folder / "brp.json").write_text(json.dumps(agency))
    assert _create(kluis, folder).exit_code == 0
    trust_list = parse_trust_list((folder / "doc.json").read_bytes())
    thumbprint = JWK(**json.loads((folder / "brp.pub.jwk").read_text())).thumbprint()
    assert trust_list.agency("https://brp.kluis.example").jwks.keys[0].kid == thumbprint


def test_create_without_agencies_writes_a_template_that_signs(kluis: Invoke, folder: Path) -> None:
    out = folder / "template.json"
    result = kluis("trustlist", "create", "--anchor-name", ANCHOR_NAME, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "specs/trustlist.md" in result.stdout and "kluis trustlist sign" in result.stdout
    template = json.loads(out.read_text())
    trust_list = parse_trust_list(template)
    assert sorted(r for a in trust_list.agencies for r in a.roles) == ["issuer", "verifier"]
    # the example keys are public only: nobody holds their private halves
    keys = [k for a in template["agencies"] for k in a["jwks"]["keys"]]
    assert keys and all("d" not in k for k in keys)
    signed = folder / "template.jws"
    sign = kluis(
        "trustlist", "sign", str(out), "--key", str(folder / "anchor.jwk"), "--out", str(signed)
    )
    assert sign.exit_code == 0, sign.output
    verify_trust_list(signed.read_text(), _anchor(folder), now=datetime.now(UTC))


def test_create_template_in_dutch(kluis: Invoke, folder: Path) -> None:
    out = folder / "sjabloon.json"
    result = kluis("trustlist", "create", "--anchor-name", "a", "--out", str(out), lang="nl")
    assert result.exit_code == 0
    assert "Pas haar aan" in result.stdout and "Edit it" not in result.stdout


def test_create_refuses_to_overwrite(kluis: Invoke, folder: Path) -> None:
    (folder / "doc.json").write_text("mine")
    _refused(_create(kluis, folder), "vault.file_exists", 5)
    assert (folder / "doc.json").read_text() == "mine"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        pytest.param("{not json", "cli.bad_json", id="not_json"),
        pytest.param('{"id": 1, "id": 2}', "cli.bad_json", id="duplicate_member"),
        pytest.param(None, "trustlist.unknown_role", id="unknown_role"),
        pytest.param("[]", "trustlist.schema_violation", id="not_an_object"),
    ],
)
def test_create_refuses_a_bad_agency_file(
    kluis: Invoke, folder: Path, content: str | None, code: str
) -> None:
    if content is None:
        agency = json.loads((folder / "brp.json").read_text())
        content = json.dumps({**agency, "roles": ["auditor"]})
    (folder / "brp.json").write_text(content)
    _refused(_create(kluis, folder), code, 3)
    assert not (folder / "doc.json").exists()


def test_create_refuses_a_missing_agency_file(kluis: Invoke, folder: Path) -> None:
    (folder / "brp.json").unlink()
    _refused(_create(kluis, folder), "vault.no_file", 4)
    assert not (folder / "doc.json").exists()


def test_create_refuses_two_agencies_with_one_id(kluis: Invoke, folder: Path) -> None:
    result = kluis(
        "trustlist", "create", "--anchor-name", ANCHOR_NAME, "--out", str(folder / "doc.json"),
        "--agency", str(folder / "brp.json"), "--agency", str(folder / "brp.json"),
    )  # fmt: skip
    _refused(result, "trustlist.duplicate_agency", 3)


# --- sign ----------------------------------------------------------------------------------------


def test_sign_makes_a_list_the_anchor_verifies(kluis: Invoke, folder: Path) -> None:
    signed = _signed(kluis, folder).read_text()
    trust_list = verify_trust_list(signed, _anchor(folder), now=datetime.now(UTC))
    assert trust_list == parse_trust_list((folder / "doc.json").read_bytes())
    assert trust_list.sequence == 7


def test_sign_replaces_an_older_signed_list(kluis: Invoke, folder: Path) -> None:
    (folder / "list.jws").write_text("older version")
    signed = _signed(kluis, folder).read_text()
    verify_trust_list(signed, _anchor(folder), now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("key", "code"),
    [("anchor.pub.jwk", "jws.bad_key"), ("brp.json", "jws.bad_key"), ("none.jwk", "vault.no_file")],
    ids=["public_key", "not_a_key", "missing_key"],
)
def test_sign_refuses_a_key_it_cannot_sign_with(
    kluis: Invoke, folder: Path, key: str, code: str
) -> None:
    assert _create(kluis, folder).exit_code == 0
    result = kluis(
        "trustlist", "sign", str(folder / "doc.json"),
        "--key", str(folder / key), "--out", str(folder / "list.jws"),
    )  # fmt: skip
    _refused(result, code, 4 if code == "vault.no_file" else 3)
    assert not (folder / "list.jws").exists()


def test_sign_refuses_a_document_edited_into_an_invalid_list(kluis: Invoke, folder: Path) -> None:
    assert _create(kluis, folder).exit_code == 0
    doc = json.loads((folder / "doc.json").read_text())
    doc["agencies"][1]["roles"] = ["issuer"]  # still has purposes: verifiers only
    (folder / "doc.json").write_text(json.dumps(doc))
    result = kluis(
        "trustlist", "sign", str(folder / "doc.json"),
        "--key", str(folder / "anchor.jwk"), "--out", str(folder / "list.jws"),
    )  # fmt: skip
    _refused(result, "trustlist.schema_violation", 3)
    assert not (folder / "list.jws").exists()


# --- verify --------------------------------------------------------------------------------------


def test_verify_shows_agencies_roles_purposes_and_claims(kluis: Invoke, folder: Path) -> None:
    signed = _signed(kluis, folder)
    result = kluis("trustlist", "verify", str(signed), "--anchor", str(folder / "anchor.pub.jwk"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "Basisregistratie Personen / Personal Records Database",
        "Gemeente Utrecht / Municipality of Utrecht",
        "roles: issuer",
        "roles: verifier",
        "purpose wmo-household-help (dpv:ServiceProvision): Household help",
        "legal basis: Social Support Act 2015",
        f"{PERSONAL_DATA}: given_name (Given names), address.locality",
        "https://other.example/vct/unknown: only what is always shared",
        "sequence 7",
        trust_list_hash(signed.read_text()),
    ):
        assert text in out, text


def test_verify_in_dutch(kluis: Invoke, folder: Path) -> None:
    signed = _signed(kluis, folder)
    result = kluis(
        "trustlist", "verify", str(signed), "--anchor", str(folder / "anchor.pub.jwk"), lang="nl"
    )
    assert result.exit_code == 0
    assert "rollen: uitgever" in result.stdout and "grondslag: Wmo 2015" in result.stdout


def test_verify_json_is_the_list_and_its_hash(kluis: Invoke, folder: Path) -> None:
    signed = _signed(kluis, folder)
    result = kluis(
        "trustlist", "verify", str(signed), "--anchor", str(folder / "anchor.pub.jwk"),
        "--anchor-name", ANCHOR_NAME, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["hash"] == trust_list_hash(signed.read_text())
    assert shown["list"] == json.loads((folder / "doc.json").read_text())


def test_verify_reads_standard_input(kluis: Invoke, folder: Path) -> None:
    signed = _signed(kluis, folder)
    result = kluis(
        "trustlist", "verify", "-", "--anchor", str(folder / "anchor.pub.jwk"), "--json",
        input=signed.read_text() + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["list"]["sequence"] == 7


def _verify(kluis: Invoke, folder: Path, *extra: str, anchor: str = "anchor.pub.jwk") -> Result:
    return kluis(
        "trustlist", "verify", str(folder / "list.jws"), "--anchor", str(folder / anchor), *extra
    )


def test_tampered_list_is_refused(kluis: Invoke, folder: Path) -> None:
    _flip_payload(_signed(kluis, folder))
    _refused(_verify(kluis, folder), "trustlist.bad_signature", 7)


def test_list_that_is_not_a_jws_is_refused(kluis: Invoke, folder: Path) -> None:
    (folder / "list.jws").write_bytes(b"\xffnot.a.jws")
    _refused(_verify(kluis, folder), "trustlist.malformed", 3)


def test_list_signed_by_another_anchor_is_refused(kluis: Invoke, folder: Path) -> None:
    _signed(kluis, folder)
    _refused(_verify(kluis, folder, anchor="other.pub.jwk"), "trustlist.wrong_anchor", 7)


def test_list_of_another_anchor_name_is_refused(kluis: Invoke, folder: Path) -> None:
    _signed(kluis, folder)
    _refused(_verify(kluis, folder, "--anchor-name", "someone else"), "trustlist.wrong_anchor", 7)


def test_expired_list_is_refused(kluis: Invoke, folder: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=40)
    expired = {
        "list_id": "old", "issuer": ANCHOR_NAME, "sequence": 1, "agencies": [],
        "issued_at": past.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "next_update": (past + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    key = JWK(**json.loads((folder / "anchor.jwk").read_text()))
    (folder / "list.jws").write_text(sign_trust_list(expired, key))
    _refused(_verify(kluis, folder), "trustlist.expired", 7)


def test_a_private_key_as_anchor_is_refused(kluis: Invoke, folder: Path) -> None:
    _signed(kluis, folder)
    _refused(_verify(kluis, folder, anchor="anchor.jwk"), "jws.bad_key", 3)


def test_missing_list_is_refused(kluis: Invoke, folder: Path) -> None:
    _refused(_verify(kluis, folder), "vault.no_file", 4)


# --- the installed command, as a developer runs it -----------------------------------------------


def test_keygen_create_sign_verify_as_real_processes(kluis_process: Run, tmp_path: Path) -> None:
    def ok(*args: str) -> subprocess.CompletedProcess[bytes]:
        result = kluis_process(*args)
        assert result.returncode == 0, result.stderr.decode()
        return result

    ok("sdjwt", "keygen", "--alg", "EdDSA", "--out", str(tmp_path / "anchor.jwk"))
    ok("sdjwt", "keygen", "--alg", "ES256", "--out", str(tmp_path / "brp.jwk"))
    public = json.loads((tmp_path / "brp.pub.jwk").read_text())
    (tmp_path / "brp.json").write_text(json.dumps(_issuer(public)))
    ok(
        "trustlist", "create", "--anchor-name", ANCHOR_NAME, "--agency", str(tmp_path / "brp.json"),
        "--out", str(tmp_path / "doc.json"),
    )  # fmt: skip
    ok(
        "trustlist", "sign", str(tmp_path / "doc.json"), "--key", str(tmp_path / "anchor.jwk"),
        "--out", str(tmp_path / "list.jws"),
    )  # fmt: skip
    shown = ok(
        "trustlist", "verify", str(tmp_path / "list.jws"),
        "--anchor", str(tmp_path / "anchor.pub.jwk"), "--anchor-name", ANCHOR_NAME, "--json",
    )  # fmt: skip
    listed = json.loads(shown.stdout)["list"]["agencies"]
    assert listed == [_issuer(public)]
    _flip_payload(tmp_path / "list.jws")
    refused = kluis_process(
        "trustlist", "verify", str(tmp_path / "list.jws"),
        "--anchor", str(tmp_path / "anchor.pub.jwk"),
    )  # fmt: skip
    assert refused.returncode == 7
    assert refused.stderr.decode().startswith("Error [trustlist.bad_signature]: ")
