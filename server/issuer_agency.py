"""Who an issuing agency is, and the metadata documents it publishes (specs/openid4vci.md).

``IssuerAgency`` is the configuration of one agency's issuer service: its identifier (the
``iss`` of every credential it signs and its id on the trust list), its names in Dutch and
English, its signing key and the credential configurations it offers. The demo makes one per
agency: the municipality issues personal data and employee cards, the tax office the income
statement, DUO the diploma.

Two identifiers meet here. The agency ``id`` is an https URL on the trust list and the
``iss`` in its credentials. The Credential Issuer Identifier (OpenID4VCI 1.0 §12.2.1) is
where the service answers, ``public_url``; in production both are the same URL. On loopback
(tests, ``kluis demo``) the service answers at ``http://127.0.0.1:<port>`` while the
credentials still name the agency's https id, and the wallet trusts the key through the
trust list, never through the service it happens to talk to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from vault import InvalidInput
from verifiers.claim_path import ClaimPath
from verifiers.credential_type import FILES, Disclosability, credential_type
from verifiers.jws import ALGORITHMS, SigningKey, VerifyingKey, format_jwk, thumbprint

SD_JWT_VC_FORMAT = "dc+sd-jwt"
PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
DEFAULT_LIFETIME = 365 * 86400
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SIGNING_ALGS = sorted(alg.value for alg in ALGORITHMS)


class BadAgency(InvalidInput):
    code = "issuer.bad_agency"
    en = "The issuing agency's configuration is not valid. Check its id, names and credentials."
    nl = (
        "De instellingen van de uitgevende organisatie zijn niet geldig. Controleer de id, de "
        "namen en de documenten."
    )


@dataclass(frozen=True)
class CredentialConfiguration:
    """One kind of credential the agency issues (an entry of
    ``credential_configurations_supported``): its id, its SD-JWT VC type and how long a
    credential of it stays valid, in seconds."""

    id: str
    vct: str
    lifetime: int = DEFAULT_LIFETIME

    def disclosable(self) -> tuple[ClaimPath, ...]:
        """The claim paths the type metadata lets the holder disclose one by one: every claim
        whose ``sd`` is ``always`` or ``allowed`` (SD-JWT VC draft-18 §4.6.4)."""
        return tuple(
            info.path for info in credential_type(self.vct).claims
            if info.sd is not Disclosability.NEVER
        )


def configuration(vct: str, *, lifetime: int = DEFAULT_LIFETIME) -> CredentialConfiguration:
    """The configuration of a type kluis ships, named after its file (``personal-data``, ...).

    Raises ``credential_type.unknown_type``.
    """
    credential_type(vct)
    return CredentialConfiguration(FILES[vct], vct, lifetime)


def _https_url(value: object) -> bool:
    if type(value) is not str or not value.startswith("https://"):
        return False
    parts = urlsplit(value)
    return bool(parts.hostname) and not parts.query and not parts.fragment and not parts.username


@dataclass(frozen=True)
class IssuerAgency:
    """An issuing agency's configuration. ``signing_key`` signs credentials and status lists;
    when it has no ``kid`` its RFC 7638 thumbprint becomes one. ``status_list`` names the
    agency's status list (one list of 2**17 entries is plenty for a demo agency).

    Raises ``issuer.bad_agency`` for an id that is not an https URL, names without Dutch and
    English, no or duplicate configurations, or a bad lifetime, and
    ``credential_type.unknown_type`` for a type kluis does not ship.
    """

    id: str
    names: Mapping[str, str]
    signing_key: SigningKey = field(repr=False)
    configurations: tuple[CredentialConfiguration, ...]
    status_list: str = "1"

    def __post_init__(self) -> None:
        if not _https_url(self.id):
            raise BadAgency("specs/trustlist.md §3: an agency id is an https URL")
        if not all(type(self.names.get(lang)) is str and self.names[lang] for lang in ("nl", "en")):
            raise BadAgency("specs/openid4vci.md: names in 'nl' and 'en'")
        ids = [c.id for c in self.configurations]
        if not ids or len(set(ids)) != len(ids):
            raise BadAgency("OpenID4VCI 1.0 §12.2.4: unique credential configuration ids")
        for item in self.configurations:
            credential_type(item.vct)
            if type(item.lifetime) is not int or item.lifetime <= 0:
                raise BadAgency("RFC 7519 §4.1.4: a credential lifetime is positive seconds")
        if not self.status_list.isalnum():
            raise BadAgency("specs/openid4vci.md: a status list id is letters and digits")
        if self.signing_key.kid is None:
            key = self.signing_key
            kid = thumbprint(key.public)
            keyed = SigningKey(key.alg, key.key, VerifyingKey(key.alg, key.public.key, kid), kid)
            object.__setattr__(self, "signing_key", keyed)

    def configuration(self, configuration_id: str) -> CredentialConfiguration | None:
        """The configuration with this id, or None."""
        return next((c for c in self.configurations if c.id == configuration_id), None)

    @property
    def public_jwk(self) -> dict[str, str]:
        """The signing key's public JWK with ``kid``, ``use`` and ``alg``, as the trust list
        and the JWKS publish it."""
        return {**format_jwk(self.signing_key.public), "use": "sig",
                "alg": self.signing_key.alg.value}


def check_public_url(url: str) -> str:
    """``url`` (without a trailing ``/``) if it can be a Credential Issuer Identifier: an
    https origin, or an http origin on a loopback host (kluis's one departure from §12.2.1,
    for tests and the demo). It has no path, so the well-known documents sit at the root.

    Raises ``issuer.bad_agency``.
    """
    url = url.rstrip("/")
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise BadAgency("RFC 3986: the public URL is not a URL") from None
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" or loopback) or not parts.hostname or not port_ok:
        raise BadAgency("OpenID4VCI 1.0 §12.2.1: an https URL (http only on loopback)")
    if parts.path or parts.query or parts.fragment or parts.username:
        raise BadAgency("specs/openid4vci.md: the public URL is an origin, without a path")
    return url


# --- the published documents ----------------------------------------------------------------


def _display(names: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": names[lang], "locale": lang} for lang in ("nl", "en") if lang in names]


def _claims_description(item: CredentialConfiguration) -> list[dict[str, Any]]:
    return [
        {"path": list(info.path), "mandatory": info.mandatory, "display": _display(info.labels)}
        for info in credential_type(item.vct).claims
    ]


def _configuration_document(item: CredentialConfiguration) -> dict[str, Any]:
    kind = credential_type(item.vct)
    return {
        "format": SD_JWT_VC_FORMAT,
        "vct": item.vct,
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": _SIGNING_ALGS,
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": _SIGNING_ALGS}},
        "credential_metadata": {
            "display": [
                {"name": kind.names[lang], "locale": lang,
                 **({"description": kind.descriptions[lang]} if lang in kind.descriptions else {})}
                for lang in ("nl", "en") if lang in kind.names
            ],
            "claims": _claims_description(item),
        },
    }


def credential_issuer_metadata(agency: IssuerAgency, public_url: str) -> dict[str, Any]:
    """The Credential Issuer Metadata (OpenID4VCI 1.0 §12.2.4) served unsigned at
    ``/.well-known/openid-credential-issuer``. No ``authorization_servers``: the issuer is its
    own authorization server, so its AS metadata is at its own
    ``/.well-known/oauth-authorization-server`` (§12.2.4, RFC 8414 §3)."""
    return {
        "credential_issuer": public_url,
        "credential_endpoint": f"{public_url}/credential",
        "nonce_endpoint": f"{public_url}/nonce",
        "display": _display(agency.names),
        "credential_configurations_supported": {
            item.id: _configuration_document(item) for item in agency.configurations
        },
    }


def authorization_server_metadata(public_url: str) -> dict[str, Any]:
    """The OAuth 2.0 Authorization Server Metadata (RFC 8414 §2; OpenID4VCI 1.0 §12.3):
    the pre-authorized code grant only, anonymous (no client authentication), so no
    authorization endpoint and no ``response_types_supported``."""
    return {
        "issuer": public_url,
        "token_endpoint": f"{public_url}/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def jwt_vc_issuer_metadata(agency: IssuerAgency) -> dict[str, Any]:
    """The JWT VC Issuer Metadata (SD-JWT VC draft-18, "JWT VC Issuer Metadata"): ``issuer``
    equals the ``iss`` of the credentials, and ``jwks`` holds the public signing key."""
    return {"issuer": agency.id, "jwks": {"keys": [agency.public_jwk]}}
