"""The certificate behind an x509_hash client id: made under a demo CA, checked by the wallet
against the client id (OpenID4VP 1.0 §5.9.3, HAIP 1.0 §5), with one test per refusal."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.client_certificate import (
    issue_client_certificate,
    verify_client_certificate,
    x509_hash,
)
from verifiers.jws import Alg, b64url_encode, generate_signing_key

NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
KEY = generate_signing_key(Alg.ES256, kid="utrecht-requests")
ISSUED = issue_client_certificate(KEY, name="Gemeente Utrecht",
                                  uri="https://utrecht.kluis.example", now=NOW)


def _code(header: dict[str, object], client_id: str = ISSUED.client_id,
          now: datetime = NOW) -> str:
    with pytest.raises(KluisError) as caught:
        verify_client_certificate(header, client_id, now=now)
    return caught.value.code


def _certificate(*, key: ec.EllipticCurvePrivateKey, self_signed: bool) -> bytes:
    """A bare certificate for ``key``: self-signed, or issued by a throw-away CA."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    issuer_key = key if self_signed else ec.generate_private_key(ec.SECP256R1())
    issuer = name if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=1))
            .sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER))


def test_the_leaf_key_checks_a_request_of_its_client_id() -> None:
    key = verify_client_certificate({"x5c": list(ISSUED.x5c)}, ISSUED.client_id, now=NOW)
    assert key.alg is Alg.ES256
    assert key.public_bytes() == KEY.public.public_bytes()
    assert ISSUED.client_id == "x509_hash:" + b64url_encode(hashlib.sha256(ISSUED.leaf).digest())


def test_the_leaf_is_issued_by_a_ca_that_stays_out_of_x5c() -> None:
    leaf = x509.load_der_x509_certificate(ISSUED.leaf)
    anchor = x509.load_der_x509_certificate(ISSUED.anchor)
    assert leaf.issuer == anchor.subject != leaf.subject
    leaf.verify_directly_issued_by(anchor)
    assert len(ISSUED.x5c) == 1
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uris.get_values_for_type(x509.UniformResourceIdentifier) == [
        "https://utrecht.kluis.example"]


def test_a_header_without_x5c_is_refused() -> None:
    assert _code({"kid": "utrecht-requests"}) == "vp.no_certificate"


@pytest.mark.parametrize("x5c", [
    "not a list", [], [1], ["%%%"], ["-_-_"], [ISSUED.x5c[0]] * 9,
    [base64.b64encode(b"not a certificate").decode()],
])
def test_a_malformed_x5c_is_refused(x5c: object) -> None:
    client_id = ("x509_hash:" + b64url_encode(hashlib.sha256(b"not a certificate").digest())
                 if x5c == [base64.b64encode(b"not a certificate").decode()] else ISSUED.client_id)
    assert _code({"x5c": x5c}, client_id) == "vp.bad_certificate"


def test_another_agencys_certificate_does_not_match_the_client_id() -> None:
    other = issue_client_certificate(KEY, name="Gemeente Utrecht", now=NOW)
    assert _code({"x5c": list(other.x5c)}) == "vp.certificate_mismatch"


def test_a_client_id_of_another_prefix_is_refused() -> None:
    assert _code({"x5c": list(ISSUED.x5c)},
                 "x509_san_dns:utrecht.kluis.example") == "vp.certificate_mismatch"


@pytest.mark.parametrize("moment", [NOW + timedelta(days=366), NOW - timedelta(hours=1)])
def test_a_certificate_outside_its_validity_is_refused(moment: datetime) -> None:
    assert _code({"x5c": list(ISSUED.x5c)}, now=moment) == "vp.certificate_expired"


def test_a_self_signed_certificate_is_refused() -> None:
    der = _certificate(key=ec.generate_private_key(ec.SECP256R1()), self_signed=True)
    header = {"x5c": [base64.b64encode(der).decode()]}
    assert _code(header, x509_hash(der)) == "vp.self_signed_certificate"


def test_a_leaf_key_other_than_p256_or_ed25519_is_refused() -> None:
    der = _certificate(key=ec.generate_private_key(ec.SECP384R1()), self_signed=False)
    header = {"x5c": [base64.b64encode(der).decode()]}
    assert _code(header, x509_hash(der)) == "vp.bad_certificate"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_changed_bit_of_the_leaf_breaks_the_client_id(data: st.DataObject) -> None:
    der = bytearray(ISSUED.leaf)
    position = data.draw(st.integers(0, len(der) * 8 - 1))
    der[position // 8] ^= 1 << (position % 8)
    header = {"x5c": [base64.b64encode(bytes(der)).decode()]}
    assert _code(header) == "vp.certificate_mismatch"
