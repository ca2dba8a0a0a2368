"""The signed trust list: round trip, every refusal named after its tamper, lookups, schema."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from edits import delete_at, set_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from vault import InvalidInput, KluisError, NotFound, NotPermitted, VerificationFailed
from verifiers.jws import VerifyingKey, parse_jwk
from verifiers.trustlist import (
    Role,
    TrustAnchor,
    TrustList,
    sign_trust_list,
    trust_list_hash,
    verify_trust_list,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "specs/schemas/trustlist.schema.json").read_text())
ANCHOR_NAME = "kluis test anchor"
NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
PERSONAL = "https://kluis.example/vct/personal-data"
INCOME = "https://kluis.example/vct/income-statement"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _certificate(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "utrecht.kluis.example")])
    start = datetime(2027, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


class Keys:
    """Fresh keys for one test session (generating them is the slow part)."""

    anchor_ec = JWK.generate(kty="EC", crv="P-256", kid="anchor-ec")
    anchor_ed = JWK.generate(kty="OKP", crv="Ed25519", kid="anchor-ed")
    brp = JWK.generate(kty="OKP", crv="Ed25519", kid="brp-1")
    brp_old = JWK.generate(kty="EC", crv="P-256", kid="brp-0")
    tax = JWK.generate(kty="EC", crv="P-256", kid="tax-1")
    utrecht = JWK.generate(kty="EC", crv="P-256", kid="utrecht-1")
    grants = JWK.generate(kty="OKP", crv="X25519", kid="utrecht-enc")
    cert_key = ec.generate_private_key(ec.SECP256R1())
    der = _certificate(cert_key)


def _public(key: JWK) -> dict:
    return key.export_public(as_dict=True)


def _doc() -> dict:
    return {
        "list_id": "https://trust.kluis.example/nl",
        "issuer": ANCHOR_NAME,
        "issued_at": "2027-03-01T00:00:00Z",
        "next_update": "2027-04-01T00:00:00Z",
        "sequence": 12,
        "agencies": [
            {
                "id": "https://brp.kluis.example",
                "names": {"nl": "Basisregistratie Personen", "en": "Personal Records Database"},
                "roles": ["issuer"],
                "jwks": {"keys": [_public(Keys.brp), _public(Keys.brp_old)]},
            },
            {
                "id": "https://belastingdienst.kluis.example",
                "names": {"nl": "Belastingdienst", "en": "Tax Administration"},
                "roles": ["issuer"],
                "jwks": {"keys": [_public(Keys.tax)]},
            },
            {
                "id": "https://utrecht.kluis.example",
                "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
                "roles": ["issuer", "verifier"],
                "jwks": {"keys": [_public(Keys.utrecht)]},
                "client_id": "x509_hash:" + _b64(hashlib.sha256(Keys.der).digest()),
                "x509": [base64.b64encode(Keys.der).decode()],
                "encryption_jwks": {"keys": [{**_public(Keys.grants), "use": "enc"}]},
                "purposes": [
                    {
                        "id": "wmo-household-help",
                        "dpv": "dpv:ServiceProvision",
                        "description": {"nl": "Hulp bij het huishouden", "en": "Household help"},
                        "legal_basis": {
                            "nl": "Wmo 2015, art. 2.3.2",
                            "en": "Social Support Act 2015, art. 2.3.2",
                            "reference": "https://wetten.overheid.nl/BWBR0035362",
                        },
                        "processing_activity": "utrecht-va-0042",
                        "credentials": [
                            {
                                "vct": PERSONAL,
                                "claims": [["given_name"], ["family_name"], ["address"]],
                            },
                            {"vct": INCOME, "claims": [["income_bracket"]]},
                        ],
                    },
                    {
                        "id": "parking-permit",
                        "dpv": "https://w3id.org/dpv#ServiceProvision",
                        "description": {"nl": "Parkeervergunning", "en": "Parking permit"},
                        "legal_basis": {"nl": "APV Utrecht", "en": "Utrecht bylaws"},
                        "processing_activity": "utrecht-va-0077",
                        "credentials": [{"vct": PERSONAL, "claims": [["address", "postal_code"]]}],
                    },
                ],
            },
        ],
    }


ANCHOR_EC = TrustAnchor.from_jwk(ANCHOR_NAME, Keys.anchor_ec)
SIGNED = sign_trust_list(_doc(), Keys.anchor_ec)


def _sign_raw(payload: bytes, key: JWK = Keys.anchor_ec, **header) -> str:
    """Sign anything, bypassing the checks of sign_trust_list: the tamperer's tool."""
    protected = {"alg": "ES256", "kid": key.get("kid"), "typ": "kluis-trustlist+jwt", **header}
    jws = JWS(payload)
    jws.add_signature(key, alg=protected["alg"], protected=json.dumps(protected))
    return jws.serialize(compact=True)


def _signed_doc(change) -> str:
    doc = _doc()
    change(doc)
    return _sign_raw(rfc8785.dumps(doc))


def _refused(token: str, code: str, family=KluisError, **kwargs) -> None:
    options = {"now": NOW, **kwargs}
    with pytest.raises(family) as caught:
        verify_trust_list(token, options.pop("anchor", ANCHOR_EC), **options)
    assert caught.value.code == code
    assert caught.value.detail


# --- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", [Keys.anchor_ec, Keys.anchor_ed], ids=["ES256", "EdDSA"])
def test_round_trip(key: JWK) -> None:
    token = sign_trust_list(_doc(), key)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {
        "alg": "ES256" if key is Keys.anchor_ec else "EdDSA",
        "kid": key.get("kid"),
        "typ": "kluis-trustlist+jwt",
    }
    trust_list = verify_trust_list(token, TrustAnchor.from_jwk(ANCHOR_NAME, key), now=NOW)
    assert trust_list.model_dump(mode="json", exclude_none=True) == _doc()
    assert trust_list.issued_at == datetime(2027, 3, 1, tzinfo=UTC)
    # Signing the verified list again gives the same payload: one version, one byte form.
    assert sign_trust_list(trust_list, key).split(".")[1] == token.split(".")[1]


def test_the_payload_is_the_canonical_document() -> None:
    payload = base64.urlsafe_b64decode(SIGNED.split(".")[1] + "==")
    assert payload == rfc8785.dumps(_doc())


def test_list_hash_names_the_version() -> None:
    assert trust_list_hash(SIGNED) == _b64(hashlib.sha256(SIGNED.encode()).digest())
    assert trust_list_hash(SIGNED) != trust_list_hash(sign_trust_list(_doc(), Keys.anchor_ed))


def test_an_equal_sequence_is_not_a_rollback() -> None:
    assert verify_trust_list(SIGNED, ANCHOR_EC, now=NOW, min_sequence=12).sequence == 12


# --- refusals, each named after its tamper -----------------------------------------------


def test_alg_none() -> None:
    header = _b64(
        json.dumps({"alg": "none", "kid": "anchor-ec", "typ": "kluis-trustlist+jwt"}).encode()
    )
    _refused(f"{header}.{SIGNED.split('.')[1]}.", "trustlist.bad_algorithm", VerificationFailed)


def test_hmac_with_the_public_key_as_secret() -> None:
    secret = JWK(kty="oct", k=_b64(json.dumps(_public(Keys.anchor_ec)).encode()), kid="anchor-ec")
    token = _sign_raw(rfc8785.dumps(_doc()), secret, alg="HS256")
    _refused(token, "trustlist.bad_algorithm", VerificationFailed)


def test_eddsa_header_on_an_ec_anchor() -> None:
    token = _sign_raw(
        rfc8785.dumps(_doc()), JWK.generate(kty="OKP", crv="Ed25519", kid="anchor-ec"), alg="EdDSA"
    )
    _refused(token, "trustlist.bad_algorithm", VerificationFailed)


def test_wrong_typ() -> None:
    _refused(_sign_raw(rfc8785.dumps(_doc()), typ="kluis-receipt+jwt"), "trustlist.wrong_type")
    _refused(_sign_raw(rfc8785.dumps(_doc()), typ=None), "trustlist.wrong_type")


def test_signed_by_another_anchor() -> None:
    _refused(sign_trust_list(_doc(), Keys.anchor_ed), "trustlist.wrong_anchor", VerificationFailed)


def test_signed_by_another_key_with_the_anchors_kid() -> None:
    impostor = JWK.generate(kty="EC", crv="P-256", kid="anchor-ec")
    _refused(sign_trust_list(_doc(), impostor), "trustlist.bad_signature", VerificationFailed)


def test_issuer_name_is_not_the_anchors() -> None:
    _refused(_signed_doc(lambda d: d.update(issuer="someone else")), "trustlist.wrong_anchor")


def test_expired() -> None:
    _refused(SIGNED, "trustlist.expired", now=datetime(2027, 4, 1, tzinfo=UTC))
    _refused(SIGNED, "trustlist.expired", now=datetime(2030, 1, 1, tzinfo=UTC))
    assert verify_trust_list(SIGNED, ANCHOR_EC, now=datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC))


def test_not_yet_valid() -> None:
    _refused(SIGNED, "trustlist.not_yet_valid", now=datetime(2027, 2, 28, 23, 54, tzinfo=UTC))
    assert verify_trust_list(SIGNED, ANCHOR_EC, now=datetime(2027, 2, 28, 23, 56, tzinfo=UTC))


def test_rollback_to_an_older_sequence() -> None:
    _refused(SIGNED, "trustlist.rollback", VerificationFailed, min_sequence=13)


def test_duplicate_agency_ids() -> None:
    def twice(doc):
        doc["agencies"][1]["id"] = doc["agencies"][0]["id"]

    _refused(_signed_doc(twice), "trustlist.duplicate_agency", InvalidInput)


def test_unknown_role() -> None:
    _refused(
        _signed_doc(lambda d: d["agencies"][0].update(roles=["issuer", "auditor"])),
        "trustlist.unknown_role",
        InvalidInput,
    )


def test_payload_not_canonical() -> None:
    _refused(_sign_raw(json.dumps(_doc()).encode()), "trustlist.malformed", InvalidInput)


def test_payload_with_duplicate_member_names() -> None:
    body = rfc8785.dumps(_doc())
    duplicated = body[:-1] + b',"sequence":99}'
    _refused(_sign_raw(duplicated), "trustlist.malformed", InvalidInput)


def test_payload_not_json() -> None:
    _refused(_sign_raw(b"\xff not json"), "trustlist.malformed", InvalidInput)


def test_crit_header() -> None:
    _refused(_sign_raw(rfc8785.dumps(_doc()), crit=["b64"], b64=True), "trustlist.malformed")


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", SIGNED + "=", SIGNED.replace(".", ".=", 1), "x" * (4 * 1024 * 1024 + 1)],
    ids=["empty", "two_parts", "four_parts", "padding", "padding_in_payload", "too_long"],
)
def test_not_a_compact_jws(token: str) -> None:
    _refused(token, "trustlist.malformed", InvalidInput)


def test_non_canonical_base64_in_the_signature() -> None:
    head, body, signature = SIGNED.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    # An ES256 signature is 64 bytes: the last character carries 4 unused bits.
    sibling = alphabet[last ^ 1]
    _refused(f"{head}.{body}.{signature[:-1]}{sibling}", "trustlist.malformed", InvalidInput)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_character_change_is_refused(data) -> None:
    position = data.draw(st.integers(0, len(SIGNED) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != SIGNED[position]))
    tampered = SIGNED[:position] + replacement + SIGNED[position + 1 :]
    with pytest.raises(KluisError) as caught:
        verify_trust_list(tampered, ANCHOR_EC, now=NOW)
    assert caught.value.code.startswith("trustlist.")


# --- schema: the JSON Schema file and the model agree --------------------------------------

# "format" is an annotation in 2020-12 unless a validator opts in; judge the schema without it,
# as most consumers will.
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)




A0, A2 = ("agencies", 0), ("agencies", 2)
P0 = (*A2, "purposes", 0)
BOTH_REFUSE = {
    "missing_sequence": delete_at(("sequence",)),
    "extra_member": set_at(("comment",), "hi"),
    "negative_sequence": set_at(("sequence",), -1),
    "sequence_as_string": set_at(("sequence",), "12"),
    "time_without_zone": set_at(("issued_at",), "2027-03-01T00:00:00"),
    "time_with_offset": set_at(("next_update",), "2027-04-01T00:00:00+01:00"),
    "agency_id_http": set_at((*A0, "id"), "http://brp.kluis.example"),
    "agency_id_userinfo": set_at((*A0, "id"), "https://me@brp.kluis.example"),
    "agency_id_fragment": set_at((*A0, "id"), "https://brp.kluis.example/#x"),
    "names_without_en": set_at((*A0, "names"), {"nl": "BRP"}),
    "names_empty_nl": set_at((*A0, "names", "nl"), ""),
    "roles_empty": set_at((*A0, "roles"), []),
    "roles_repeated": set_at((*A0, "roles"), ["issuer", "issuer"]),
    "roles_unknown": set_at((*A0, "roles"), ["auditor"]),
    "jwks_empty": set_at((*A0, "jwks", "keys"), []),
    "jwk_private": set_at((*A0, "jwks", "keys", 0), Keys.brp.export_private(as_dict=True)),
    "jwk_symmetric": set_at((*A0, "jwks", "keys", 0), {"kty": "oct", "k": "AAAA", "kid": "k"}),
    "jwk_without_kid": delete_at((*A0, "jwks", "keys", 0, "kid")),
    "jwk_wrong_alg": set_at((*A0, "jwks", "keys", 0, "alg"), "ES256"),
    "jwk_ec_without_y": delete_at((*A0, "jwks", "keys", 1, "y")),
    "jwk_rsa": set_at(
        (*A0, "jwks", "keys", 0), {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"}
    ),
    "issuer_with_purposes": lambda d: d["agencies"][0].update(
        purposes=d["agencies"][2]["purposes"]
    ),
    "issuer_with_client_id": set_at((*A0, "client_id"), "x"),
    "verifier_without_purposes": delete_at((*A2, "purposes")),
    "verifier_purposes_empty": set_at((*A2, "purposes"), []),
    "encryption_key_ed25519": set_at((*A2, "encryption_jwks", "keys", 0), _public(Keys.brp)),
    "x509_not_base64": set_at((*A2, "x509"), ["not base64!"]),
    "purpose_bad_dpv": set_at((*P0, "dpv"), "ServiceProvision"),
    "purpose_id_with_space": set_at((*P0, "id"), "wmo help"),
    "purpose_without_legal_basis": delete_at((*P0, "legal_basis")),
    "purpose_without_credentials": set_at((*P0, "credentials"), []),
    "claim_path_empty": set_at((*P0, "credentials", 0, "claims", 0), []),
    "claim_path_negative": set_at((*P0, "credentials", 0, "claims", 0), ["a", -1]),
    "claim_path_bool": set_at((*P0, "credentials", 0, "claims", 0), ["a", True]),
    "claim_path_float": set_at((*P0, "credentials", 0, "claims", 0), ["a", 1.5]),
    "claim_path_too_long": set_at((*P0, "credentials", 0, "claims", 0), ["a"] * 17),
    "null_member": set_at((*P0, "legal_basis", "reference"), None),
}
# What a JSON Schema cannot say; the code checks it (specs/trustlist.md §6).
ONLY_CODE_REFUSES = {
    "time_not_a_date": set_at(("issued_at",), "2027-02-30T00:00:00Z"),
    "duplicate_agency_id": set_at(("agencies", 1, "id"), "https://brp.kluis.example"),
    "duplicate_kid": set_at((*A0, "jwks", "keys", 1, "kid"), "brp-1"),
    "duplicate_purpose_id": set_at((*A2, "purposes", 1, "id"), "wmo-household-help"),
    "duplicate_vct_in_purpose": set_at((*P0, "credentials", 1, "vct"), PERSONAL),
    "next_update_before_issued_at": set_at(("next_update",), "2027-02-01T00:00:00Z"),
    "x509_hash_of_another_certificate": set_at((*A2, "client_id"), "x509_hash:" + _b64(b"\0" * 32)),
    "ec_point_off_the_curve": set_at((*A0, "jwks", "keys", 1, "y"), _b64(b"\1" * 32)),
    "certificate_not_der": set_at((*A2, "x509"), [base64.b64encode(b"not a certificate").decode()]),
}


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_good_document_passes_both() -> None:
    VALIDATOR.validate(_doc())
    TrustList.model_validate_json(rfc8785.dumps(_doc()))


@pytest.mark.parametrize("tamper", sorted(BOTH_REFUSE))
def test_schema_and_model_both_refuse(tamper: str) -> None:
    doc = copy.deepcopy(_doc())
    BOTH_REFUSE[tamper](doc)
    assert list(VALIDATOR.iter_errors(doc)), "the JSON Schema accepted it"
    with pytest.raises(InvalidInput) as caught:
        sign_trust_list(doc, Keys.anchor_ec)
    assert caught.value.code.startswith("trustlist.")
    with pytest.raises(InvalidInput) as caught:  # and a list signed anyway is refused
        verify_trust_list(_sign_raw(rfc8785.dumps(doc)), ANCHOR_EC, now=NOW)
    assert caught.value.code.startswith("trustlist.")


@pytest.mark.parametrize("tamper", sorted(ONLY_CODE_REFUSES))
def test_rules_beyond_the_schema_are_enforced_by_code(tamper: str) -> None:
    doc = copy.deepcopy(_doc())
    ONLY_CODE_REFUSES[tamper](doc)
    assert not list(VALIDATOR.iter_errors(doc))
    with pytest.raises(InvalidInput):
        sign_trust_list(doc, Keys.anchor_ec)
    _refused(
        _sign_raw(rfc8785.dumps(doc)),
        "trustlist.duplicate_agency"
        if tamper == "duplicate_agency_id"
        else "trustlist.schema_violation",
    )


def test_signing_refuses_unusable_keys() -> None:
    with pytest.raises(InvalidInput) as caught:
        sign_trust_list(_doc(), JWK(**_public(Keys.anchor_ec)))
    assert caught.value.code == "trustlist.unsupported_key"
    with pytest.raises(InvalidInput):
        sign_trust_list(_doc(), JWK.generate(kty="EC", crv="P-384"))
    with pytest.raises(InvalidInput):
        TrustAnchor.from_jwk(ANCHOR_NAME, {"kty": "oct", "k": "AAAA"})


def test_signing_refuses_numbers_json_cannot_carry() -> None:
    with pytest.raises(InvalidInput):
        sign_trust_list({**_doc(), "sequence": 2**64}, Keys.anchor_ec)


def test_the_anchor_keeps_only_the_public_key() -> None:
    assert not ANCHOR_EC.key.has_private and ANCHOR_EC.kid == "anchor-ec"
    assert TrustAnchor.from_jwk("x", JWK.generate(kty="OKP", crv="Ed25519")).kid  # thumbprint


# --- lookups -------------------------------------------------------------------------------

LIST = verify_trust_list(SIGNED, ANCHOR_EC, now=NOW)
UTRECHT = "https://utrecht.kluis.example"


def test_agency_lookup() -> None:
    assert LIST.agency(UTRECHT).name("en") == "Municipality of Utrecht"
    assert LIST.agency(UTRECHT).name("nl") == "Gemeente Utrecht"
    with pytest.raises(NotFound) as caught:
        LIST.agency("https://nobody.example")
    assert caught.value.code == "trustlist.unknown_agency"


def test_issuer_key_by_kid() -> None:
    key = LIST.issuer_key("https://brp.kluis.example", {"alg": "EdDSA", "kid": "brp-1"})
    assert key.thumbprint() == Keys.brp.thumbprint() and not key.has_private
    assert LIST.issuer_key("https://brp.kluis.example", {"kid": "brp-0"}).thumbprint() == (
        Keys.brp_old.thumbprint()
    )
    # One key and no kid: the only key; two keys and no kid: ambiguous, refused.
    assert LIST.issuer_key("https://belastingdienst.kluis.example", {}).thumbprint() == (
        Keys.tax.thumbprint()
    )
    for iss, header in [
        ("https://brp.kluis.example", {}),
        ("https://brp.kluis.example", {"kid": "x"}),
    ]:
        with pytest.raises(VerificationFailed) as caught:
            LIST.issuer_key(iss, header)
        assert caught.value.code == "trustlist.unknown_key"


def test_key_for_serves_the_sd_jwt_verifier() -> None:
    parsed = LIST.key_for("https://brp.kluis.example", {"alg": "EdDSA", "kid": "brp-1"})
    assert isinstance(parsed, VerifyingKey) and parsed.kid == "brp-1"
    assert parsed.public_bytes() == parse_jwk(_public(Keys.brp)).public_bytes()
    assert LIST.key_for("https://brp.kluis.example", {"kid": "brp-1"}) is parsed  # parsed once
    with pytest.raises(VerificationFailed):
        LIST.key_for("https://brp.kluis.example", {"kid": "nope"})
    with pytest.raises(NotPermitted):
        LIST.key_for(UTRECHT + "/x", {"kid": "utrecht-1"})


def test_issuer_key_only_for_issuers() -> None:
    with pytest.raises(NotPermitted) as caught:
        LIST.issuer_key("https://evil.example", {"kid": "brp-1"})
    assert caught.value.code == "trustlist.not_an_issuer"
    only_verifier = _doc()
    only_verifier["agencies"][2]["roles"] = ["verifier"]
    trust_list = verify_trust_list(
        sign_trust_list(only_verifier, Keys.anchor_ec), ANCHOR_EC, now=NOW
    )
    with pytest.raises(NotPermitted):
        trust_list.issuer_key(UTRECHT, {"kid": "utrecht-1"})


def test_verifier_by_client_id_or_agency_id() -> None:
    agency = LIST.verifier(LIST.agency(UTRECHT).client_id or "")
    assert agency.id == UTRECHT and agency.has_role(Role.VERIFIER)
    assert LIST.verifier(UTRECHT) is agency
    with pytest.raises(NotPermitted) as caught:
        LIST.verifier("https://brp.kluis.example")  # an issuer only
    assert caught.value.code == "trustlist.not_a_verifier"


def test_registration_and_allowed_claims() -> None:
    registration = LIST.registration(UTRECHT, "wmo-household-help")
    assert registration.dpv == "dpv:ServiceProvision"
    assert registration.legal_basis.text("en") == "Social Support Act 2015, art. 2.3.2"
    assert LIST.allowed_claims(UTRECHT, "wmo-household-help", INCOME) == (("income_bracket",),)
    with pytest.raises(NotPermitted) as caught:
        LIST.registration(UTRECHT, "surveillance")
    assert caught.value.code == "trustlist.unknown_purpose"
    with pytest.raises(NotPermitted) as caught:
        LIST.allowed_claims(UTRECHT, "parking-permit", INCOME)
    assert caught.value.code == "trustlist.not_registered"


def test_excess_claims_find_over_asking() -> None:
    wmo = ("wmo-household-help", PERSONAL)
    assert LIST.excess_claims(UTRECHT, *wmo, [("family_name",), ("address", "postal_code")]) == ()
    assert LIST.excess_claims(UTRECHT, *wmo, [("family_name",), ("bsn",), ("birthdate",)]) == (
        ("bsn",),
        ("birthdate",),
    )
    parking = ("parking-permit", PERSONAL)
    assert LIST.excess_claims(UTRECHT, *parking, [("address",)]) == (("address",),)


def test_the_list_is_frozen() -> None:
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError
        LIST.agencies[0].id = "https://evil.example"  # type: ignore[misc]
