"""The wallet's side of OpenID4VCI 1.0 (specs/openid4vci.md): read a credential offer, then
metadata -> token -> nonce -> key proof -> credential, and hand each credential to the
consent engine's ``receive`` (``wallet.credential.receive_credential``), which verifies it
against the trust list and stores it.

Everything that arrives is untrusted (OpenID4VCI 1.0 §13.5): the offer, the metadata and
every answer are parsed strictly into ``vci.*`` errors, with a size cap on each answer. The
wallet never follows a redirect, only talks to https URLs (http only on a loopback host, for
tests and ``kluis demo``), and only to the Credential Issuer's own origin: an
``authorization_servers`` entry or an endpoint elsewhere is refused, so an offer cannot send
the transaction code to a third party behind the issuer's back.

Which key signs a credential is decided by the trust list alone. The issuer's
``/.well-known/jwt-vc-issuer`` is not fetched: the service being talked to cannot vouch for
its own key, and a key the trust list already names needs no second source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from vault import InvalidInput, NotPermitted, Unavailable, VerificationFailed
from verifiers.jws import ALGORITHMS, SigningKey, parse_jws
from verifiers.sdjwt import parse_compact
from wallet.credential_offer import (
    PRE_AUTHORIZED_GRANT,
    CredentialOffer,
    InsecureUrl,
    OfferReference,
    Unsupported,
    check_tx_code,
    check_url,
    json_object,
    parse_offer_object,
)
from wallet.proof import make_proof_jwt
from wallet.transport import Response, Transport

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_CREDENTIAL_BYTES = 512 * 1024
_JSON = "application/json"
T = TypeVar("T")


class BadMetadata(VerificationFailed):
    code = "vci.bad_metadata"
    en = "The issuer's description of itself is wrong or incomplete, so kluis stops here."
    nl = (
        "De beschrijving die de uitgever van zichzelf geeft klopt niet of is onvolledig. "
        "kluis stopt."
    )


class GrantRefused(NotPermitted):
    code = "vci.grant_refused"
    en = "The issuer did not accept the offer or the code ({reason}). Check the code or ask again."
    nl = (
        "De uitgever accepteerde het aanbod of de code niet ({reason}). Controleer de code of "
        "vraag het opnieuw."
    )


class TokenRefused(NotPermitted):
    code = "vci.token_refused"
    en = "The issuer refused the request for access ({error}). Ask the issuer for a new offer."
    nl = (
        "De uitgever weigerde het verzoek om toegang ({error}). Vraag de uitgever om een "
        "nieuw aanbod."
    )


class CredentialRefused(NotPermitted):
    code = "vci.credential_refused"
    en = "The issuer refused to issue the credential ({error}). Ask the issuer why."
    nl = "De uitgever weigerde het bewijs uit te geven ({error}). Vraag de uitgever waarom."


class BadAnswer(VerificationFailed):
    code = "vci.bad_answer"
    en = "The issuer sent an answer that kluis cannot read. Try again later."
    nl = "De uitgever stuurde een antwoord dat kluis niet kan lezen. Probeer het later opnieuw."


class AnswerTooLarge(VerificationFailed):
    code = "vci.answer_too_large"
    en = "The issuer sent an answer that is far too large, so kluis stopped reading it."
    nl = "De uitgever stuurde een veel te groot antwoord. kluis is gestopt met lezen."


class Redirected(VerificationFailed):
    code = "vci.redirected"
    en = "The issuer tried to send kluis to another address. kluis does not follow it."
    nl = "De uitgever probeerde kluis naar een ander adres te sturen. kluis volgt dat niet."


class IssuerUnavailable(Unavailable):
    code = "vci.unavailable"
    en = "The issuer is busy or not working right now. Try again later."
    nl = "De uitgever is bezet of werkt nu niet. Probeer het later opnieuw."


class WrongCredential(VerificationFailed):
    code = "vci.wrong_credential"
    en = "The issuer sent another kind of credential than it offered. It was not stored."
    nl = "De uitgever stuurde een ander soort bewijs dan aangeboden. Het is niet bewaard."


# --- talking to the issuer ----------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def fetch_credential_offer(reference: OfferReference, *, transport: Transport) -> CredentialOffer:
    """The offer behind ``credential_offer_uri`` (§4.1.3: GET, ``application/json``).

    Raises the ``_call`` errors, ``vci.bad_offer``, ``vci.insecure_url`` and
    ``vci.unsupported``.
    """
    answer = _call(transport, "GET", reference.uri, expect=200)
    return parse_offer_object(_json_answer(answer, MAX_DOCUMENT_BYTES, "the offer"))


def redeem_offer(
    offer: CredentialOffer | OfferReference, *, transport: Transport, tx_code: str | None,
    holder_key: SigningKey, receive: Callable[[str], T],
    clock: Callable[[], datetime] = utc_now,
) -> list[T]:
    """Redeem ``offer``: fetch it if by reference, read the issuer's metadata and its
    authorization server's, exchange the pre-authorized code (and ``tx_code``) for an access
    token, then per offered configuration get a ``c_nonce``, sign a key proof with
    ``holder_key`` and fetch the credential. Each credential string goes, unchanged, to
    ``receive`` (which verifies and stores it); the results come back in offer order.

    The transaction code is checked against the offer before anything is sent. Raises the
    ``vci.*`` errors and whatever ``receive`` raises.
    """
    if isinstance(offer, OfferReference):
        offer = fetch_credential_offer(offer, transport=transport)
    checked = check_tx_code(offer, tx_code)
    issuer = IssuerEndpoints.discover(offer, transport=transport)
    access_token = issuer.token(offer, checked, transport=transport)
    received: list[T] = []
    for configuration_id in offer.configuration_ids:
        credential = issuer.credential(
            configuration_id, access_token, holder_key, transport=transport, clock=clock)
        received.append(receive(credential))
    return received


@dataclass(frozen=True)
class IssuerEndpoints:
    """What the wallet learnt from the issuer's metadata (§12.2.4) and its authorization
    server's (RFC 8414): the endpoints and the ``vct`` of each configuration."""

    credential_issuer: str
    token_endpoint: str
    credential_endpoint: str
    nonce_endpoint: str
    vcts: Mapping[str, str]

    @classmethod
    def discover(cls, offer: CredentialOffer, *, transport: Transport) -> IssuerEndpoints:
        """Read and check both metadata documents. Raises ``vci.bad_metadata``,
        ``vci.unsupported`` and the ``_call`` errors."""
        issuer = offer.credential_issuer
        url = well_known_url(issuer, "openid-credential-issuer")
        metadata = _json_answer(_call(transport, "GET", url, expect=200), MAX_DOCUMENT_BYTES,
                                "the issuer metadata")
        if metadata.get("credential_issuer") != issuer:
            raise BadMetadata("OpenID4VCI 1.0 §12.2.4: credential_issuer is not the offer's")
        credential_endpoint = _endpoint(metadata, "credential_endpoint", issuer, required=True)
        nonce_endpoint = _endpoint(metadata, "nonce_endpoint", issuer, required=False)
        if nonce_endpoint is None:  # found out before the transaction code is sent
            raise Unsupported("specs/openid4vci.md: kluis needs a nonce endpoint",
                              what="no nonce endpoint")
        vcts = {cid: _configuration_vct(metadata, cid) for cid in offer.configuration_ids}
        server = _authorization_server(metadata, offer)
        as_url = well_known_url(server, "oauth-authorization-server")
        as_metadata = _json_answer(_call(transport, "GET", as_url, expect=200),
                                   MAX_DOCUMENT_BYTES, "the authorization server metadata")
        if as_metadata.get("issuer") != server:
            raise BadMetadata("RFC 8414 §3.3: issuer is not the server asked")
        token_endpoint = _endpoint(as_metadata, "token_endpoint", issuer, required=True)
        grants = as_metadata.get("grant_types_supported")
        if isinstance(grants, list) and PRE_AUTHORIZED_GRANT not in grants:
            raise Unsupported("RFC 8414 §2: no pre-authorized code grant", what="grant type")
        return cls(issuer, str(token_endpoint), str(credential_endpoint), nonce_endpoint, vcts)

    def token(self, offer: CredentialOffer, tx_code: str | None, *,
              transport: Transport) -> str:
        """The access token for the pre-authorized code (§6). Raises ``vci.grant_refused``
        (``invalid_grant``: wrong code, used or expired offer), ``vci.token_refused`` and
        the ``_call`` errors."""
        form = {"grant_type": PRE_AUTHORIZED_GRANT,
                "pre-authorized_code": offer.pre_authorized_code}
        if tx_code is not None:
            form["tx_code"] = tx_code
        answer = _call(
            transport, "POST", self.token_endpoint,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode(form, quote_via=quote).encode("ascii"), expect=None,
        )
        if answer.status != 200:
            error, description = _oauth_refusal(answer)
            if error == "invalid_grant":
                raise GrantRefused(f"OpenID4VCI 1.0 §6.3: {error}", reason=description)
            raise TokenRefused(f"RFC 6749 §5.2: {error}", error=error)
        data = _json_answer(answer, MAX_DOCUMENT_BYTES, "the token response")
        token, kind = data.get("access_token"), data.get("token_type")
        if type(token) is not str or not token or len(token) > 4096:
            raise BadAnswer("RFC 6749 §5.1: access_token is a string")
        if type(kind) is not str or kind.lower() != "bearer":
            raise Unsupported("RFC 6750: only Bearer tokens (no DPoP)", what="token type")
        return token

    def nonce(self, *, transport: Transport) -> str:
        """A fresh ``c_nonce`` (§7.2). Raises ``vci.bad_answer`` and the ``_call`` errors."""
        answer = _call(transport, "POST", self.nonce_endpoint, expect=200)
        nonce = _json_answer(answer, MAX_DOCUMENT_BYTES, "the nonce response").get("c_nonce")
        if type(nonce) is not str or not nonce or len(nonce) > 512:
            raise BadAnswer("OpenID4VCI 1.0 §7.2: c_nonce is a string")
        return nonce

    def credential(self, configuration_id: str, access_token: str, holder_key: SigningKey, *,
                   transport: Transport, clock: Callable[[], datetime]) -> str:
        """One credential of ``configuration_id`` bound to ``holder_key`` (§8). A refused
        nonce (``invalid_nonce``) is retried once with a fresh one. Raises
        ``vci.credential_refused``, ``vci.wrong_credential``, ``vci.unsupported``
        (deferred issuance), ``vci.bad_answer`` and the ``_call`` errors."""
        for attempt in range(2):
            proof = make_proof_jwt(holder_key, audience=self.credential_issuer,
                                   nonce=self.nonce(transport=transport),
                                   now=int(clock().timestamp()))
            body = {"credential_configuration_id": configuration_id, "proofs": {"jwt": [proof]}}
            answer = _call(
                transport, "POST", self.credential_endpoint,
                headers={"Content-Type": _JSON, "Authorization": f"Bearer {access_token}"},
                body=json.dumps(body).encode(), expect=None, cap=MAX_CREDENTIAL_BYTES,
            )
            if answer.status == 200:
                return self._credential_of(answer, configuration_id)
            if answer.status == 202:
                raise Unsupported("OpenID4VCI 1.0 §9", what="deferred issuance")
            error, _ = _oauth_refusal(answer)
            if error != "invalid_nonce" or attempt:
                raise CredentialRefused(f"OpenID4VCI 1.0 §8.3.1: {error}", error=error)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _credential_of(self, answer: Response, configuration_id: str) -> str:
        data = _json_answer(answer, MAX_CREDENTIAL_BYTES, "the credential response")
        items = data.get("credentials")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise BadAnswer("OpenID4VCI 1.0 §8.3: credentials holds one object per proof")
        credential = items[0].get("credential")
        if type(credential) is not str or not credential:
            raise BadAnswer("OpenID4VCI 1.0 Appendix A.3.4: a dc+sd-jwt credential is a string")
        if _vct_of(credential) != self.vcts[configuration_id]:
            raise WrongCredential("OpenID4VCI 1.0 §12.2.4: vct is not the configuration's")
        return credential


def well_known_url(identifier: str, name: str) -> str:
    """The metadata URL of ``identifier``: ``/.well-known/<name>`` inserted between host and
    path (OpenID4VCI 1.0 §12.2.2; RFC 8414 §3.1)."""
    parts = urlsplit(identifier)
    return f"{parts.scheme}://{parts.netloc}/.well-known/{name}{parts.path.rstrip('/')}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _endpoint(metadata: Mapping[str, Any], name: str, issuer: str, *,
              required: bool) -> str | None:
    value = metadata.get(name)
    if value is None and not required:
        return None
    if type(value) is not str:
        raise BadMetadata(f"OpenID4VCI 1.0 §12.2.4: {name} is a URL")
    try:
        check_url(value, name)
    except InsecureUrl as error:
        raise BadMetadata(error.detail) from None
    if _origin(value) != _origin(issuer):
        raise BadMetadata(f"specs/openid4vci.md: {name} is on the issuer's own origin")
    return value


def _authorization_server(metadata: Mapping[str, Any], offer: CredentialOffer) -> str:
    """The authorization server to use: the issuer itself unless ``authorization_servers``
    names others (§12.2.4), and then only one on the issuer's origin."""
    servers = metadata.get("authorization_servers")
    issuer = offer.credential_issuer
    if servers is None:
        if offer.authorization_server is not None:
            raise BadMetadata("OpenID4VCI 1.0 §4.1.1: authorization_server without a list")
        return issuer
    if (not isinstance(servers, list) or not servers
            or any(type(s) is not str for s in servers)):
        raise BadMetadata("OpenID4VCI 1.0 §12.2.4: authorization_servers is a list of URLs")
    chosen = offer.authorization_server or servers[0]
    if chosen not in servers:
        raise BadMetadata("OpenID4VCI 1.0 §4.1.1: authorization_server is not in the list")
    if _origin(chosen) != _origin(issuer):
        raise BadMetadata("specs/openid4vci.md: the authorization server is the issuer's origin")
    return str(chosen)


def _configuration_vct(metadata: Mapping[str, Any], configuration_id: str) -> str:
    supported = metadata.get("credential_configurations_supported")
    item = supported.get(configuration_id) if isinstance(supported, dict) else None
    if not isinstance(item, dict):
        raise BadMetadata(f"OpenID4VCI 1.0 §4.1.1: {configuration_id[:60]!r} is not described")
    if item.get("format") != "dc+sd-jwt" or type(item.get("vct")) is not str:
        raise Unsupported("OpenID4VCI 1.0 Appendix A.3", what="a format other than dc+sd-jwt")
    methods = item.get("cryptographic_binding_methods_supported")
    if methods is not None and (not isinstance(methods, list) or "jwk" not in methods):
        raise Unsupported("OpenID4VCI 1.0 §12.2.4", what="key binding without jwk")
    proof_types = item.get("proof_types_supported")
    algs = proof_types.get("jwt", {}) if isinstance(proof_types, dict) else {}
    allowed = algs.get("proof_signing_alg_values_supported") if isinstance(algs, dict) else None
    if proof_types is not None and (not isinstance(allowed, list)
                                    or not {a.value for a in ALGORITHMS} & set(map(str, allowed))):
        raise Unsupported("OpenID4VCI 1.0 Appendix F.1", what="a proof type other than jwt")
    return str(item["vct"])


def _vct_of(credential: str) -> object:
    """The ``vct`` the issuer-signed JWT claims (not verified here: ``receive`` verifies)."""
    try:
        return parse_jws(parse_compact(credential).issuer_jwt, "credential").payload.get("vct")
    except (InvalidInput, VerificationFailed):
        raise BadAnswer("RFC 9901 §4: the credential is not an SD-JWT") from None


# --- HTTP plumbing --------------------------------------------------------------------------


def _call(
    transport: Transport, method: str, url: str, *, expect: int | None,
    headers: Mapping[str, str] | None = None, body: bytes = b"", cap: int = MAX_DOCUMENT_BYTES,
) -> Response:
    """One request. Refuses to follow a redirect (``vci.redirected``), turns 429/5xx into
    ``vci.unavailable``, a body over ``cap`` into ``vci.answer_too_large``, and any status
    other than ``expect`` (when given) into ``vci.bad_answer``."""
    check_url(url)
    sent = {"Accept": _JSON, **(headers or {})}
    answer = transport.request(method, url, headers=sent, body=body)
    declared = answer.headers.get("content-length", "")
    if len(answer.body) > cap or (declared.isdigit() and int(declared) > cap):
        raise AnswerTooLarge(f"kluis limit: {cap} bytes")
    if 300 <= answer.status < 400:
        raise Redirected(f"specs/openid4vci.md: HTTP {answer.status} is not followed")
    if answer.status == 429 or answer.status >= 500:
        raise IssuerUnavailable(f"HTTP {answer.status}")
    if expect is not None and answer.status != expect:
        raise BadAnswer(f"HTTP {answer.status}, not {expect}")
    return answer


def _json_answer(answer: Response, cap: int, what: str) -> dict[str, Any]:
    media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _JSON:
        raise BadAnswer(f"OpenID4VCI 1.0: {what} is application/json, not {media[:40]!r}")
    if len(answer.body) > cap:
        raise AnswerTooLarge(f"kluis limit: {cap} bytes")
    return json_object(answer.body, BadAnswer, what)


def _oauth_refusal(answer: Response) -> tuple[str, str]:
    """The ``error`` and ``error_description`` of a 4xx answer (RFC 6749 §5.2; OpenID4VCI
    §8.3.1.2, also inside a problem document); ``vci.bad_answer`` without them."""
    if not 400 <= answer.status < 500:
        raise BadAnswer(f"HTTP {answer.status}")
    try:
        data = json.loads(answer.body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if type(error) is not str or not error.isascii() or not 0 < len(error) <= 64:
        # RFC 6750 §3: a Bearer refusal may carry its error only in the header.
        if answer.status == 401:
            return "invalid_token", "the access token was refused"
        raise BadAnswer(f"RFC 6749 §5.2: HTTP {answer.status} without an error code")
    description = data.get("error_description") if isinstance(data, dict) else None
    text = description if type(description) is str and description.isascii() else error
    return error, text[:300]
