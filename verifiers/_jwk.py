"""Public JWKs as they appear in kluis documents: strict pydantic models, checked to be real keys.

Only the key types kluis uses are accepted: signing keys on P-256 (ES256) or Ed25519 (EdDSA),
and X25519 keys for encrypting to an agency (sealed boxes for access grants). Private members
(``d`` and friends) cannot appear: the models are closed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from pydantic import Field, StringConstraints, model_validator

from verifiers._document import Strict
from verifiers._jose import JoseFailure, unb64url

Coordinate = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
"""A 32-byte value in unpadded base64url (RFC 7518 §6.2.1.2, RFC 8037 §2)."""
KeyId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class SigningJwk(Strict):
    """A public signature key: EC P-256 (``x``, ``y``) or OKP Ed25519 (``x``), with a ``kid``."""

    kty: Literal["EC", "OKP"]
    crv: Literal["P-256", "Ed25519"]
    x: Coordinate
    y: Coordinate | None = None
    kid: KeyId
    alg: Literal["ES256", "EdDSA"] | None = None
    use: Literal["sig"] | None = None

    @model_validator(mode="after")
    def _real_key(self) -> SigningJwk:
        expected = {"EC": ("P-256", "ES256", True), "OKP": ("Ed25519", "EdDSA", False)}[self.kty]
        crv, alg, has_y = expected
        if self.crv != crv or (self.alg is not None and self.alg != alg):
            raise ValueError(f"kty {self.kty} goes with crv {crv} and alg {alg}")
        if (self.y is not None) != has_y:
            raise ValueError("y is present exactly for EC keys")
        try:
            for value in (self.x, self.y):
                if value is not None:
                    unb64url(value)
            self.to_jwk().get_op_key("verify")
        except (JoseFailure, JWException, ValueError, TypeError):
            raise ValueError("not a valid public key (RFC 7518 §6.2.1, RFC 8037 §2)") from None
        return self

    def to_jwk(self) -> JWK:
        """The key as a jwcrypto public JWK."""
        return JWK(**self.model_dump(exclude_none=True))


class EncryptionJwk(Strict):
    """A public X25519 key (RFC 8037 §2) an agency receives encrypted data with."""

    kty: Literal["OKP"]
    crv: Literal["X25519"]
    x: Coordinate
    kid: KeyId
    use: Literal["enc"] | None = None

    @model_validator(mode="after")
    def _canonical(self) -> EncryptionJwk:
        try:
            unb64url(self.x)
        except JoseFailure:
            raise ValueError("x is canonical base64url") from None
        return self

    def public_bytes(self) -> bytes:
        """The 32 raw bytes of the X25519 public key."""
        return unb64url(self.x)


class SigningJwks(Strict):
    """A JWK Set (RFC 7517 §5) of signing keys, at least one."""

    keys: Annotated[tuple[SigningJwk, ...], Field(min_length=1, max_length=16)]


class EncryptionJwks(Strict):
    """A JWK Set of encryption keys, at least one."""

    keys: Annotated[tuple[EncryptionJwk, ...], Field(min_length=1, max_length=16)]
