"""The X.509 certificate behind an ``x509_hash:`` client id (OpenID4VP 1.0 §5.9.3, HAIP 1.0).

A verifying agency signs its Request Objects with the key of a leaf certificate that travels
in the ``x5c`` JOSE header; its client id is ``x509_hash:`` + base64url(SHA-256(DER of that
leaf)). The hash ties the certificate to the agency's entry on the signed trust list: the trust
list names the client id, so a wallet that finds the client id there trusts exactly this leaf.
The trust list is kluis's trust anchor for verifiers; no chain beyond the leaf is needed.

``issue_client_certificate`` makes a leaf for an agency's signing key under a throw-away demo
CA: HAIP 1.0 says the certificate signing a request MUST NOT be self-signed and the trust
anchor MUST NOT travel in ``x5c``, so the leaf is issued by a CA whose certificate stays out of
the header and whose private key is discarded once the leaf is signed (a demo agency needs no
second leaf; a real one gets its certificate from its CA). ``verify_client_certificate`` is
the wallet's check of a Request Object header against the client id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from vault import InvalidInput, VerificationFailed
from verifiers.jws import Alg, SigningKey, VerifyingKey, b64url_encode

PREFIX = "x509_hash:"
MAX_CHAIN = 8
MAX_CERTIFICATE_BYTES = 16 * 1024
CLOCK_SKEW = timedelta(minutes=5)
SPEC = "OpenID4VP 1.0 §5.9.3"


class NoCertificate(VerificationFailed):
    code = "vp.no_certificate"
    en = "The request does not carry the organisation's certificate, so it cannot be checked."
    nl = "Het verzoek bevat het certificaat van de organisatie niet. Het is niet te controleren."


class BadCertificate(InvalidInput):
    code = "vp.bad_certificate"
    en = "The organisation's certificate in the request is damaged or of an unknown kind."
    nl = (
        "Het certificaat van de organisatie in het verzoek is beschadigd of van een "
        "onbekend soort."
    )


class CertificateMismatch(VerificationFailed):
    code = "vp.certificate_mismatch"
    en = "The certificate in the request is not the one the organisation's identifier names."
    nl = "Het certificaat in het verzoek is niet het certificaat dat bij de organisatie hoort."


class CertificateExpired(VerificationFailed):
    code = "vp.certificate_expired"
    en = "The organisation's certificate is not valid at this moment. Nothing was shared."
    nl = "Het certificaat van de organisatie is op dit moment niet geldig. Er is niets gedeeld."


class SelfSignedCertificate(VerificationFailed):
    code = "vp.self_signed_certificate"
    en = "The organisation signed its own certificate, which kluis does not accept."
    nl = "De organisatie heeft haar eigen certificaat ondertekend. Dat accepteert kluis niet."


@dataclass(frozen=True)
class ClientCertificate:
    """An agency's request-signing certificate: ``x5c`` (the leaf, base64 DER, as the JOSE
    header carries it: the anchor is left out), the demo CA's certificate (``anchor``, DER;
    given to nobody but a tool that insists on a chain) and the ``x509_hash:`` client id."""

    x5c: tuple[str, ...]
    anchor: bytes
    client_id: str

    @property
    def leaf(self) -> bytes:
        """The leaf certificate, DER."""
        return base64.b64decode(self.x5c[0])


def x509_hash(der: bytes) -> str:
    """The client id of the leaf certificate ``der``: ``x509_hash:`` + base64url SHA-256."""
    return PREFIX + b64url_encode(hashlib.sha256(der).digest())


def issue_client_certificate(
    key: SigningKey, *, name: str, uri: str | None = None, now: datetime, days: int = 365
) -> ClientCertificate:
    """A leaf certificate for ``key`` (the agency's request-signing key) with common name
    ``name`` and, when given, ``uri`` (the agency id) as a subject alternative name, valid
    from five minutes before ``now`` for ``days``, issued by a fresh demo CA (P-256) whose
    private key is dropped when this returns.

    Raises ``vp.bad_certificate`` for a ``now`` without a time zone or a name that X.509
    cannot carry.
    """
    if now.tzinfo is None:
        raise BadCertificate("RFC 5280 §4.1.2.5: validity is in UTC")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    try:
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kluis demo CA for {name}")])
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    except ValueError:
        raise BadCertificate("RFC 5280 §4.1.2.6: a common name of 1-64 characters") from None
    start, end = now - CLOCK_SKEW, now + timedelta(days=days)
    anchor = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_name)
        .public_key(key.public.key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
    )
    if uri is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
    leaf = builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.DER)
    return ClientCertificate(
        x5c=(base64.b64encode(leaf).decode("ascii"),),
        anchor=anchor.public_bytes(Encoding.DER),
        client_id=x509_hash(leaf),
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def verify_client_certificate(
    header: Mapping[str, Any], client_id: str, *, now: datetime
) -> VerifyingKey:
    """The key that must have signed a Request Object of ``client_id`` (an ``x509_hash:``
    client id) whose JOSE ``header`` carries ``x5c``: the leaf certificate's public key.

    Checks, in order: ``x5c`` is an array of 1-8 base64 strings (RFC 7515 §4.1.6); the
    SHA-256 of the first (the leaf) is the client id (§5.9.3); it is an X.509 certificate
    valid at ``now`` (five minutes of clock skew allowed) that is not self-signed (HAIP 1.0
    §5) and holds a P-256 or Ed25519 key. Raises ``vp.no_certificate``,
    ``vp.bad_certificate``, ``vp.certificate_mismatch``, ``vp.certificate_expired`` and
    ``vp.self_signed_certificate``. Whether the client id may ask at all is the trust list's
    question, not this one's.
    """
    if not client_id.startswith(PREFIX):
        raise CertificateMismatch(f"{SPEC}: the client id is not an x509_hash")
    chain = header.get("x5c")
    if chain is None:
        raise NoCertificate(f"{SPEC}: an x509_hash request carries x5c")
    leaf_der = _leaf(chain)
    expected = client_id.removeprefix(PREFIX).encode("ascii", "replace")
    actual = x509_hash(leaf_der).removeprefix(PREFIX).encode("ascii")
    if not hmac.compare_digest(expected, actual):
        raise CertificateMismatch(f"{SPEC}: x509_hash is the SHA-256 of the x5c leaf")
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
        start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        self_signed = leaf.issuer == leaf.subject
        public = leaf.public_key()
    except ValueError:
        raise BadCertificate("RFC 5280 §4.1: the x5c leaf is not a certificate") from None
    if not start - CLOCK_SKEW <= now <= end + CLOCK_SKEW:
        raise CertificateExpired("RFC 5280 §4.1.2.5: the leaf is not valid now")
    if self_signed:
        raise SelfSignedCertificate("HAIP 1.0 §5: the request's certificate is not self-signed")
    return _verifying_key(public)


def _leaf(chain: object) -> bytes:
    if not isinstance(chain, list) or not 1 <= len(chain) <= MAX_CHAIN:
        raise BadCertificate(f"RFC 7515 §4.1.6: x5c is an array of 1 to {MAX_CHAIN}")
    if any(type(item) is not str or len(item) > MAX_CERTIFICATE_BYTES * 2 for item in chain):
        raise BadCertificate("RFC 7515 §4.1.6: x5c holds base64 strings")
    try:
        return base64.b64decode(chain[0], validate=True)
    except (binascii.Error, ValueError):
        raise BadCertificate("RFC 7515 §4.1.6: x5c holds base64 (not base64url) DER") from None


def _verifying_key(public: object) -> VerifyingKey:
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return VerifyingKey(Alg.ES256, public)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return VerifyingKey(Alg.EDDSA, public)
    raise BadCertificate("HAIP 1.0 §5: the leaf key is P-256 (or Ed25519)")
