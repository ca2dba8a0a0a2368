"""Presentation requests: the OpenID4VP 1.0 authorization request a verifier sends, parsed.

A request arrives as the JSON object of its parameters (the file form, for requests handed
over as files) or as a signed Request Object (``wallet.request_object``). kluis reads
``client_id`` (prefix ``x509_hash:`` or ``redirect_uri:``), ``response_type`` (``vp_token``),
``response_mode`` (``direct_post`` / ``direct_post.jwt``), ``response_uri``, ``nonce``,
``state``, ``dcql_query``, ``client_metadata``, refuses ``transaction_data``, and takes the
purpose, legal basis, retention, processing activity and expiry from its ``verifier_info``
element (``wallet.purpose``). Unknown parameters are ignored (OpenID4VP 1.0 §5). The format
is ``specs/request.md``.

Parsing decides nothing about the verifier: whether it is registered, and asks only what its
registration allows, is the consent engine's evaluation (``wallet.consent``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import rfc8785

from vault import InvalidInput, KluisError, NotFound
from verifiers.claim_path import ClaimPath, path_text
from verifiers.credential_type import credential_type
from verifiers.dcql import SD_JWT_VC, DcqlQuery, parse_dcql
from verifiers.jcs import canonicalize
from wallet.purpose import Purpose, parse_purpose
from wallet.request_object import Mismatch, VerifierKeys, open_request_object

SPEC = "specs/request.md"
MAX_REQUEST_BYTES = 128 * 1024
"""The largest request kluis reads (JSON text or Request Object), checked before parsing."""
_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_X509_HASH = re.compile(r"[A-Za-z0-9_-]{43}")
MIN_NONCE = 16
MAX_TOKEN = 256
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class ClientIdPrefix(StrEnum):
    """The Client Identifier Prefixes kluis accepts (OpenID4VP 1.0 §5.9.3)."""

    X509_HASH = "x509_hash"
    REDIRECT_URI = "redirect_uri"


class ResponseMode(StrEnum):
    DIRECT_POST = "direct_post"
    DIRECT_POST_JWT = "direct_post.jwt"


class _RequestError(InvalidInput):
    """The parts every ``request.*`` refusal shares."""


class Malformed(_RequestError):
    code = "request.malformed"
    en = "The request is damaged or not in the expected form. Ask the organisation for a new one."
    nl = (
        "Het verzoek is beschadigd of niet in de verwachte vorm. Vraag de organisatie "
        "om een nieuw."
    )


class TooLarge(_RequestError):
    code = "request.too_large"
    en = "The request is too large to handle. Ask the organisation for a smaller one."
    nl = "Het verzoek is te groot om te verwerken. Vraag de organisatie om een kleiner verzoek."


class UnsupportedClientId(_RequestError):
    code = "request.unsupported_client_id"
    en = "The request names the organisation in a way kluis does not accept. Nothing was shared."
    nl = (
        "Het verzoek noemt de organisatie op een manier die kluis niet accepteert. Er "
        "is niets gedeeld."
    )


class BadClientId(_RequestError):
    code = "request.bad_client_id"
    en = "The request names the organisation incorrectly. Ask the organisation for a new request."
    nl = "Het verzoek noemt de organisatie verkeerd. Vraag de organisatie om een nieuw verzoek."


class BadResponseType(_RequestError):
    code = "request.bad_response_type"
    en = "The request asks for an answer kluis does not give (only 'vp_token'). Nothing was shared."
    nl = (
        "Het verzoek vraagt om een antwoord dat kluis niet geeft (alleen 'vp_token'). "
        "Er is niets gedeeld."
    )


class BadResponseMode(_RequestError):
    code = "request.bad_response_mode"
    en = "The request asks for the answer to be sent in a way kluis does not support."
    nl = "Het verzoek vraagt het antwoord te sturen op een manier die kluis niet kent."


class BadResponseUri(_RequestError):
    code = "request.bad_response_uri"
    en = "The request does not say correctly where the answer must go. Ask for a new request."
    nl = "Het verzoek zegt niet goed waar het antwoord heen moet. Vraag om een nieuw verzoek."


class BadNonce(_RequestError):
    code = "request.bad_nonce"
    en = "The request lacks a good one-time code (nonce). Ask the organisation for a new request."
    nl = (
        "Het verzoek heeft geen goede eenmalige code (nonce). Vraag de organisatie om "
        "een nieuw verzoek."
    )


class BadState(_RequestError):
    code = "request.bad_state"
    en = "The request has an invalid or missing reference (state). Ask for a new request."
    nl = "Het verzoek heeft een ongeldig of ontbrekend kenmerk (state). Vraag om een nieuw verzoek."


class NoQuery(_RequestError):
    code = "request.no_query"
    en = "The request does not say which data it wants. Ask the organisation for a new one."
    nl = "Het verzoek zegt niet welke gegevens het wil. Vraag de organisatie om een nieuw verzoek."


class TransactionData(_RequestError):
    code = "request.transaction_data"
    en = (
        "The request asks you to approve a transaction, which kluis does not support. "
        "Nothing was shared."
    )
    nl = (
        "Het verzoek vraagt u een transactie goed te keuren. Dat kan kluis niet. Er is "
        "niets gedeeld."
    )


class NoExpiry(_RequestError):
    code = "request.no_expiry"
    en = "The request does not say until when it is valid. kluis refuses it."
    nl = "Het verzoek zegt niet tot wanneer het geldig is. kluis weigert het."


class UnsupportedFormat(_RequestError):
    code = "request.unsupported_format"
    en = "The request asks for a kind of document kluis cannot hold. Nothing was shared."
    nl = "Het verzoek vraagt om een soort document dat kluis niet kan bewaren. Er is niets gedeeld."


class UnknownType(_RequestError):
    code = "request.unknown_type"
    en = "The request asks for a kind of document kluis does not know. Nothing was shared."
    nl = "Het verzoek vraagt om een soort document dat kluis niet kent. Er is niets gedeeld."


class UnknownClaim(_RequestError):
    code = "request.unknown_claim"
    en = "The request asks for data ('{claim}') that this kind of document does not have."
    nl = "Het verzoek vraagt om een gegeven ('{claim}') dat dit soort document niet heeft."


class NoSuchRequest(NotFound):
    code = "request.not_found"
    en = "There is no request '{id}' in your wallet. See 'kluis request list'."
    nl = "Er is geen verzoek '{id}' in uw wallet. Zie 'kluis request list'."


@dataclass(frozen=True)
class Request:
    """A parsed request. ``id`` is the wallet's stable name for it (the start of the SHA-256
    of its RFC 8785 parameters): the same request read twice has the same id."""

    id: str
    client_id: str
    prefix: ClientIdPrefix
    response_mode: ResponseMode
    response_uri: str
    nonce: str
    state: str | None
    dcql: DcqlQuery
    purpose: Purpose
    expires_at: datetime
    signed: bool
    client_metadata: Mapping[str, Any] | None
    parameters: Mapping[str, Any] = field(repr=False)
    source: str = field(repr=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def parse_request(
    source: object,
    *,
    verifier_keys: VerifierKeys | None = None,
    expected_client_id: str | None = None,
    wallet_nonce: str | None = None,
) -> Request:
    """The request in ``source``: a mapping of parameters, their JSON text (str or bytes),
    or a signed Request Object (compact JWS) checked with ``verifier_keys``.

    ``expected_client_id`` is the ``client_id`` the request was announced with (it must equal
    the request's, OpenID4VP 1.0 §5); ``wallet_nonce`` the one sent when fetching it (§5.10).
    Raises the ``request.*`` errors (detail: the rule broken), ``dcql.*`` for a bad query,
    the ``open_request_object`` errors, and whatever ``verifier_keys`` raises.
    """
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("RFC 8259 §8.1: a request is UTF-8") from None
    if isinstance(source, str):
        text = source.strip()
        if len(text.encode("utf-8", "replace")) > MAX_REQUEST_BYTES:
            raise TooLarge(f"kluis limit: {MAX_REQUEST_BYTES} bytes")
        if text.startswith("{"):
            params = _json_object(text)
            return _build(params, text, signed=False, expected=expected_client_id)
        if not _COMPACT_JWS.fullmatch(text):
            raise Malformed("OpenID4VP 1.0 §5: neither a JSON object nor a Request Object")
        params = open_request_object(text, verifier_keys, wallet_nonce=wallet_nonce)
        return _build(params, text, signed=True, expected=expected_client_id)
    if isinstance(source, Mapping):
        text = _canonical(source)
        if len(text.encode("utf-8")) > MAX_REQUEST_BYTES:
            raise TooLarge(f"kluis limit: {MAX_REQUEST_BYTES} bytes")
        return _build(dict(source), text, signed=False, expected=expected_client_id)
    raise Malformed("OpenID4VP 1.0 §5: a request is a JSON object or a Request Object")


def restore_request(parameters: Mapping[str, Any], *, signed: bool, source: str) -> Request:
    """A request the wallet stored after :func:`parse_request` accepted it (a signature is
    not checked again). Raises as :func:`parse_request` would for changed parameters."""
    return _build(dict(parameters), source, signed=signed, expected=None)


def _build(params: dict[str, Any], source: str, *, signed: bool, expected: str | None) -> Request:
    """Every parameter check of OpenID4VP 1.0 §5 and ``specs/request.md`` §2, in order."""
    if "transaction_data" in params:
        raise TransactionData("OpenID4VP 1.0 §5.1: transaction_data is not supported")
    client_id, prefix = _client_id(params.get("client_id"))
    if signed and prefix is ClientIdPrefix.REDIRECT_URI:
        raise UnsupportedClientId("OpenID4VP 1.0 §5.9.3: redirect_uri requests are not signed")
    if expected is not None and expected != client_id:
        raise Mismatch("OpenID4VP 1.0 §5: client_id differs from the one announced")
    if params.get("response_type") != "vp_token":
        raise BadResponseType("OpenID4VP 1.0 §5.4: response_type is vp_token")
    mode = params.get("response_mode")
    if mode not in tuple(ResponseMode):
        raise BadResponseMode("OpenID4VP 1.0 §8.2: response_mode direct_post or direct_post.jwt")
    response_uri = _response_uri(params, client_id, prefix)
    nonce = _nonce(params.get("nonce"))
    dcql = _dcql(params)
    state = _state(params.get("state"), dcql)
    metadata = _json_member(params, "client_metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise Malformed("OpenID4VP 1.0 §5.1: client_metadata is an object")
    info = params.get("verifier_info")
    purpose = parse_purpose(_json_array(info) if isinstance(info, str) else info)
    return Request(
        id=request_id(params),
        client_id=client_id,
        prefix=prefix,
        response_mode=ResponseMode(mode),
        response_uri=response_uri,
        nonce=nonce,
        state=state,
        dcql=dcql,
        purpose=purpose,
        expires_at=_expiry(purpose, params.get("exp") if signed else None),
        signed=signed,
        client_metadata=metadata,
        parameters=params,
        source=source,
    )


def _nonce(value: object) -> str:
    if type(value) is not str or not _SAFE.fullmatch(value) or len(value) > MAX_TOKEN:
        raise BadNonce("OpenID4VP 1.0 §5.2: nonce is A-Z a-z 0-9 - . _ ~")
    if len(value) < MIN_NONCE:
        raise BadNonce(f"{SPEC} §2: nonce has at least {MIN_NONCE} characters")
    return value


def request_id(params: Mapping[str, Any]) -> str:
    """The wallet's id of a request: the start of the hex SHA-256 of its RFC 8785 form."""
    return hashlib.sha256(_canonical(params).encode("utf-8")).hexdigest()[:16]


def _canonical(params: Mapping[str, Any]) -> str:
    try:
        return canonicalize(params).decode("utf-8")
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        raise Malformed("RFC 8785: the request holds values JSON cannot carry") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Malformed("RFC 8259: not JSON without duplicate members") from None
    if not isinstance(value, dict):
        raise Malformed("OpenID4VP 1.0 §5: the request is a JSON object")
    return value


def _json_member(params: Mapping[str, Any], name: str) -> Any:
    """A parameter that is a JSON object, given as an object or (form-encoded) as its text."""
    value = params.get(name)
    if isinstance(value, str):
        return _json_object(value) if value.lstrip().startswith("{") else _bad_json(name)
    return value


def _json_array(text: str) -> list[Any]:
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Malformed("RFC 8259: verifier_info is not JSON") from None
    if not isinstance(value, list):
        raise Malformed("OpenID4VP 1.0 §5.1: verifier_info is an array")
    return value


def _bad_json(name: str) -> Any:
    raise Malformed(f"OpenID4VP 1.0 §5.1: {name} is a JSON object")


def _client_id(value: object) -> tuple[str, ClientIdPrefix]:
    if type(value) is not str or not value or len(value) > 512:
        raise BadClientId("OpenID4VP 1.0 §5.2: client_id is a non-empty string")
    prefix, colon, rest = value.partition(":")
    if not colon or prefix not in tuple(ClientIdPrefix):
        raise UnsupportedClientId(f"OpenID4VP 1.0 §5.9: prefix {prefix[:30]!r} is not supported")
    if prefix == ClientIdPrefix.X509_HASH and not _X509_HASH.fullmatch(rest):
        raise BadClientId("OpenID4VP 1.0 §5.9.3: x509_hash is base64url SHA-256 (43 characters)")
    return value, ClientIdPrefix(prefix)


def _response_uri(params: Mapping[str, Any], client_id: str, prefix: ClientIdPrefix) -> str:
    if "redirect_uri" in params:
        raise BadResponseUri("OpenID4VP 1.0 §8.2: no redirect_uri with direct_post")
    uri = params.get("response_uri")
    own = client_id.partition(":")[2]
    if prefix is ClientIdPrefix.REDIRECT_URI:
        if uri is None:
            uri = own
        elif uri != own:
            raise BadClientId("OpenID4VP 1.0 §5.9.3: redirect_uri client id is the response_uri")
    if type(uri) is not str or not _web_url(uri):
        raise BadResponseUri("OpenID4VP 1.0 §8.2: response_uri is an https URL")
    return uri


def _web_url(uri: str) -> bool:
    """An https URL, or http to this machine (the demo agencies on loopback)."""
    if len(uri) > 2048 or any(c.isspace() or ord(c) < 32 for c in uri):
        return False
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK)


def _state(value: object, dcql: DcqlQuery) -> str | None:
    unbound = any(not q.require_cryptographic_holder_binding for q in dcql.credentials)
    if value is None:
        if unbound:
            raise BadState("OpenID4VP 1.0 §5.3: state is required without holder binding")
        return None
    if type(value) is not str or not _SAFE.fullmatch(value) or len(value) > MAX_TOKEN:
        raise BadState("OpenID4VP 1.0 §5.2: state is A-Z a-z 0-9 - . _ ~")
    return value


def _dcql(params: Mapping[str, Any]) -> DcqlQuery:
    if "dcql_query" not in params:
        raise NoQuery("OpenID4VP 1.0 §5.1: dcql_query is required (scope is not supported)")
    if "scope" in params:
        raise Malformed("OpenID4VP 1.0 §5.1: dcql_query and scope, not both")
    query = parse_dcql(params["dcql_query"])
    for credential in query.credentials:
        if credential.format != SD_JWT_VC:
            raise UnsupportedFormat(f"OpenID4VP 1.0 §B.3: format {credential.format[:40]!r}")
        known = [vct for vct in credential.vct_values if _known_type(vct)]
        if not known:
            raise UnknownType(f"specs/credentials: no known vct in {credential.id!r}")
        for claim in credential.claims or ():
            if not any(_known_claim(vct, claim.path) for vct in known):
                raise UnknownClaim(
                    "SD-JWT VC draft-18 §4.6: not a claim of the type", claim=path_text(claim.path)
                )
    return query


def _known_type(vct: str) -> bool:
    try:
        credential_type(vct)
    except KluisError:
        return False
    return True


def _known_claim(vct: str, path: ClaimPath) -> bool:
    try:
        credential_type(vct).claim(path)
    except KluisError:
        return False
    return True


def _expiry(purpose: Purpose, exp: object) -> datetime:
    """The earlier of the Request Object's ``exp`` and the purpose's ``expires_at``."""
    ends = []
    if exp is not None and (type(exp) is not int or exp < 0):
        raise Malformed("RFC 7519 §4.1.4: exp is a NumericDate")
    if type(exp) is int:
        try:
            ends.append(datetime.fromtimestamp(exp, UTC))
        except (OverflowError, OSError, ValueError):
            raise Malformed("RFC 7519 §4.1.4: exp is out of range") from None
    if purpose.expires_at is not None:
        ends.append(purpose.expires_at)
    if not ends:
        raise NoExpiry(f"{SPEC} §3: exp (Request Object) or data.expires_at (file form)")
    return min(ends)
