"""Receipts: issue and verify, every refusal named after its tamper, the log entry, the schema."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from vault import InvalidInput, KluisError, VerificationFailed
from verifiers import LegalBasis
from verifiers.receipt import (
    Receipt,
    ReceiptPurpose,
    Retention,
    hash_presentation,
    issue_receipt,
    receipt_entry,
    verify_receipt,
)
from verifiers.trustlist import Agency

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "specs/schemas/receipt.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
UTRECHT = "https://utrecht.kluis.example"
# A disclosed family name long enough never to turn up by chance in a random receipt id.
FAMILY_NAME = "Jansen-Visser-Bakker"
_DISCLOSURE = base64.urlsafe_b64encode(
    json.dumps(["salt", "family_name", FAMILY_NAME]).encode()
).rstrip(b"=").decode()
PRESENTATION = f"eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln~{_DISCLOSURE}~eyJr.eyJu.c2ln"
RECEIVED = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
KEY = JWK.generate(kty="EC", crv="P-256", kid="utrecht-1")
ED_KEY = JWK.generate(kty="OKP", crv="Ed25519", kid="utrecht-2")


def _public(key: JWK) -> JWK:
    return JWK(**key.export_public(as_dict=True))


def _terms(**changes) -> dict:
    terms = {
        "verifier": UTRECHT,
        "request_id": "f3Jk9Qz1bLr8T0sVx2YwAe",
        "vct": "https://kluis.example/vct/personal-data",
        "claims": [("family_name",), ("address", "postal_code"), ("nationalities", 0)],
        "purpose": ReceiptPurpose(id="wmo-household-help", dpv="dpv:ServiceProvision"),
        "legal_basis": LegalBasis(
            nl="Wmo 2015, art. 2.3.2", en="Social Support Act 2015, art. 2.3.2"
        ),
        "retention": Retention(duration="P2Y"),
        "processing_activity": "utrecht-va-0042",
        "received_at": RECEIVED,
        "key": KEY,
    }
    terms.update(changes)
    return terms


TOKEN = issue_receipt(PRESENTATION, **_terms())
AGENCY = Agency.model_validate_json(
    json.dumps(
        {
            "id": UTRECHT,
            "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
            "roles": ["verifier"],
            "jwks": {"keys": [KEY.export_public(as_dict=True), ED_KEY.export_public(as_dict=True)]},
            "purposes": [
                {
                    "id": "wmo-household-help",
                    "dpv": "dpv:ServiceProvision",
                    "description": {"nl": "Wmo", "en": "Wmo"},
                    "legal_basis": {"nl": "Wmo", "en": "Wmo"},
                    "processing_activity": "utrecht-va-0042",
                    "credentials": [
                        {"vct": "https://kluis.example/vct/personal-data", "claims": []}
                    ],
                }
            ],
        }
    )
)


def _payload(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign_raw(payload: bytes, key: JWK = KEY, **header) -> str:
    protected = {"alg": "ES256", "kid": key.get("kid"), "typ": "kluis-receipt+jwt", **header}
    jws = JWS(payload)
    jws.add_signature(key, alg=protected["alg"], protected=json.dumps(protected))
    return jws.serialize(compact=True)


def _refused(token: str, code: str, family=KluisError, key=None, **kwargs) -> None:
    with pytest.raises(family) as caught:
        verify_receipt(token, key if key is not None else _public(KEY), **kwargs)
    assert caught.value.code == code
    assert caught.value.detail


# --- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, ED_KEY], ids=["ES256", "EdDSA"])
def test_issue_and_verify(key: JWK) -> None:
    token = issue_receipt(PRESENTATION, **_terms(key=key, client_id="x509_hash:abc"))
    receipt = verify_receipt(
        token, _public(key), expected_presentation_hash=hash_presentation(PRESENTATION)
    )
    assert receipt.verifier == UTRECHT and receipt.client_id == "x509_hash:abc"
    assert receipt.claims == (("family_name",), ("address", "postal_code"), ("nationalities", 0))
    assert receipt.received_at == RECEIVED
    assert receipt.purpose.dpv == "dpv:ServiceProvision"
    assert receipt.presentation_hash == _b64(hashlib.sha256(PRESENTATION.encode()).digest())
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "kluis-receipt+jwt" and header["kid"] == key.get("kid")


def test_verify_with_the_agency_from_the_trust_list() -> None:
    ed_token = issue_receipt(PRESENTATION, **_terms(key=ED_KEY))
    assert verify_receipt(ed_token, AGENCY).verifier == UTRECHT
    assert verify_receipt(TOKEN, AGENCY).verifier == UTRECHT


def test_receipt_ids_are_fresh_and_the_payload_canonical() -> None:
    other = issue_receipt(PRESENTATION, **_terms())
    assert _payload(other)["receipt_id"] != _payload(TOKEN)["receipt_id"]
    raw = base64.urlsafe_b64decode(TOKEN.split(".")[1] + "==")
    assert raw == rfc8785.dumps(json.loads(raw))
    VALIDATOR.validate(_payload(TOKEN))


def test_the_log_entry_is_canonical_and_holds_no_values() -> None:
    entry = receipt_entry(verify_receipt(TOKEN, _public(KEY)))
    assert entry["kind"] == "receipt"
    assert json.loads(rfc8785.dumps(entry)) == entry
    assert {k: v for k, v in entry.items() if k != "kind"} == _payload(TOKEN)
    # Anyone holding the receipt recomputes the same entry.
    assert receipt_entry(verify_receipt(TOKEN, AGENCY)) == entry
    assert FAMILY_NAME not in json.dumps(entry)


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        (Retention(duration="P2Y"), date(2029, 3, 3)),
        (Retention(duration="P6M"), date(2027, 9, 3)),
        (Retention(duration="P30D"), date(2027, 4, 2)),
        (Retention(duration="P4W"), date(2027, 3, 31)),
        (Retention(duration="PT14H"), date(2027, 3, 4)),
        (Retention(until="2028-01-01"), date(2028, 1, 1)),
        (Retention(duration="P2Y", until="2028-01-01"), date(2028, 1, 1)),
        (Retention(duration="P1Y", until="2030-01-01"), date(2028, 3, 3)),
        (Retention(duration="P9999Y"), date.max),
    ],
)
def test_keep_until(retention: Retention, expected: date) -> None:
    assert retention.keep_until(RECEIVED) == expected


def test_months_clamp_to_the_end_of_the_month() -> None:
    assert Retention(duration="P1M").keep_until(datetime(2027, 1, 31, tzinfo=UTC)) == date(
        2027, 2, 28
    )
    assert Retention(duration="P1Y").keep_until(datetime(2028, 2, 29, tzinfo=UTC)) == date(
        2029, 2, 28
    )


# --- refusals --------------------------------------------------------------------------------


def test_bad_signature_when_the_payload_is_changed() -> None:
    payload = _payload(TOKEN)
    payload["claims"].append(["bsn"])
    head, _, signature = TOKEN.split(".")
    forged = f"{head}.{_b64(rfc8785.dumps(payload))}.{signature}"
    _refused(forged, "receipt.bad_signature", VerificationFailed)


def test_wrong_key() -> None:
    stranger = JWK.generate(kty="EC", crv="P-256", kid="stranger")
    _refused(TOKEN, "receipt.wrong_key", VerificationFailed, key=_public(stranger))
    _refused(issue_receipt(PRESENTATION, **_terms(key=stranger)), "receipt.wrong_key", key=AGENCY)


def test_another_key_with_the_same_kid() -> None:
    impostor = JWK.generate(kty="EC", crv="P-256", kid="utrecht-1")
    _refused(issue_receipt(PRESENTATION, **_terms(key=impostor)), "receipt.bad_signature")
    _refused(
        issue_receipt(PRESENTATION, **_terms(key=impostor)), "receipt.bad_signature", key=AGENCY
    )


def test_hash_mismatch() -> None:
    other = hash_presentation(PRESENTATION + "x")
    _refused(TOKEN, "receipt.hash_mismatch", VerificationFailed, expected_presentation_hash=other)


def test_wrong_verifier_named_in_the_receipt() -> None:
    token = issue_receipt(PRESENTATION, **_terms(verifier="https://elsewhere.kluis.example"))
    _refused(token, "receipt.wrong_verifier", VerificationFailed, key=AGENCY)


def test_alg_none() -> None:
    header = _b64(
        json.dumps({"alg": "none", "kid": "utrecht-1", "typ": "kluis-receipt+jwt"}).encode()
    )
    _refused(f"{header}.{TOKEN.split('.')[1]}.", "receipt.bad_algorithm", VerificationFailed)


def test_hmac_alg() -> None:
    secret = JWK(kty="oct", k=_b64(b"k" * 32), kid="utrecht-1")
    _refused(
        _sign_raw(rfc8785.dumps(_payload(TOKEN)), secret, alg="HS256"), "receipt.bad_algorithm"
    )


def test_a_trust_list_is_not_a_receipt() -> None:
    token = _sign_raw(rfc8785.dumps(_payload(TOKEN)), typ="kluis-trustlist+jwt")
    _refused(token, "receipt.wrong_type", VerificationFailed)


@pytest.mark.parametrize(
    "token",
    ["", "only.two", "a.b.c.d", "%%%.b.c", TOKEN + "~", "x" * 70_000],
    ids=["empty", "two_parts", "four_parts", "not_base64", "tilde", "too_long"],
)
def test_malformed_token(token: str) -> None:
    _refused(token, "receipt.malformed", InvalidInput)
    _refused(token, "receipt.malformed", InvalidInput, key=AGENCY)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.pop("retention"),
        lambda p: p.update(extra="member"),
        lambda p: p.update(client_id=None),
        lambda p: p.update(claims=[["address", None]]),
        lambda p: p.update(received_at="2027-03-03T10:15:00+00:00"),
        lambda p: p.update(presentation_hash="short"),
        lambda p: p.update(retention={}),
        lambda p: p.update(retention={"duration": "2 years"}),
    ],
    ids=[
        "missing_retention",
        "extra_member",
        "null_member",
        "null_in_claim_path",
        "offset_time",
        "short_hash",
        "empty_retention",
        "duration_in_words",
    ],
)
def test_malformed_payload_signed_anyway(change) -> None:
    payload = _payload(TOKEN)
    change(payload)
    assert list(VALIDATOR.iter_errors(payload)), "the JSON Schema accepted it"
    _refused(_sign_raw(rfc8785.dumps(payload)), "receipt.malformed", InvalidInput)


def test_non_canonical_payload() -> None:
    _refused(_sign_raw(json.dumps(_payload(TOKEN)).encode()), "receipt.malformed", InvalidInput)


@pytest.mark.parametrize(
    "changes",
    [
        {"verifier": "http://utrecht.kluis.example"},
        {"purpose": ReceiptPurpose.model_construct(id="wmo", dpv="ServiceProvision")},
        {"claims": [("address", None)]},
        {"claims": [()]},
        {"received_at": datetime(2027, 3, 3, 10, 15)},  # no time zone
        {"request_id": ""},
    ],
    ids=[
        "http_verifier",
        "bad_dpv",
        "null_in_path",
        "empty_path",
        "naive_time",
        "empty_request_id",
    ],
)
def test_issue_refuses_what_the_format_forbids(changes: dict) -> None:
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(PRESENTATION, **_terms(**changes))
    assert caught.value.code == "receipt.malformed"


def test_issue_refuses_a_public_key() -> None:
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(PRESENTATION, **_terms(key=_public(KEY)))
    assert caught.value.code == "receipt.unsupported_key"


def test_retention_needs_a_duration_or_a_date() -> None:
    with pytest.raises(ValueError):
        Retention()
    assert Receipt.model_json_schema()  # the model stays describable


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_character_change_is_refused(data) -> None:
    position = data.draw(st.integers(0, len(TOKEN) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != TOKEN[position]))
    tampered = TOKEN[:position] + replacement + TOKEN[position + 1 :]
    with pytest.raises(KluisError) as caught:
        verify_receipt(tampered, _public(KEY))
    assert caught.value.code.startswith("receipt.")


@settings(max_examples=50)
@given(
    claims=st.lists(
        st.lists(st.text(min_size=1, max_size=5) | st.integers(0, 9), min_size=1, max_size=4).map(
            tuple
        ),
        max_size=5,
    ),
    seconds=st.integers(0, 10**9),
)
def test_round_trip_over_claims_and_times(claims, seconds) -> None:
    received = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    token = issue_receipt(PRESENTATION, **_terms(claims=claims, received_at=received))
    receipt = verify_receipt(token, _public(KEY))
    assert receipt.claims == tuple(claims) and receipt.received_at == received
    VALIDATOR.validate(_payload(token))
