"""The wallet's key proof for OpenID4VCI (1.0 Appendix F.1): a ``jwt`` proof that it holds
the key an issuer is asked to bind a credential to.

The issuer's check of it is ``verifiers.proof.verify_proof_jwt``. The proof carries only the
public half of the holder key (in the ``jwk`` header, never ``kid`` or ``x5c``) and no
``iss``: kluis redeems pre-authorized codes anonymously, and then the spec says to leave it
out.
"""

from __future__ import annotations

from verifiers.jws import SigningKey, format_jwk, sign_jws
from verifiers.proof import PROOF_TYP


def make_proof_jwt(holder_key: SigningKey, *, audience: str, nonce: str, now: int) -> str:
    """The compact ``openid4vci-proof+jwt`` signed by ``holder_key`` for the Credential Issuer
    ``audience`` and its ``c_nonce`` ``nonce``, issued at ``now`` (OpenID4VCI 1.0 Appendix
    F.1). The header holds the public JWK (without ``kid``), never a private member.
    """
    header = {
        "typ": PROOF_TYP,
        "alg": holder_key.alg.value,
        "jwk": format_jwk(holder_key.public, with_kid=False),
    }
    payload = {"aud": audience, "iat": now, "nonce": nonce}
    return sign_jws(header, payload, holder_key)
