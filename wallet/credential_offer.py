"""Credential offers as a wallet receives them (OpenID4VCI 1.0 §4.1): a link, the text of a
QR code, or the offer's JSON; and the transaction code the citizen types for one.

An offer is untrusted (§13.5): it is parsed strictly into ``vci.*`` errors, unknown members
are ignored as the spec says, and only the pre-authorized code flow is accepted
(specs/openid4vci.md). ``wallet.openid4vci`` redeems what this module parses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vault import InvalidInput, VerificationFailed

OFFER_SCHEME = "openid-credential-offer"
PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_OFFER_TEXT = 16 * 1024


class BadOffer(InvalidInput):
    code = "vci.bad_offer"
    en = "This is not a credential offer kluis can read. Check that you copied all of it."
    nl = "Dit is geen aanbod van een bewijs dat kluis kan lezen. Controleer of u alles kopieerde."


class InsecureUrl(InvalidInput):
    code = "vci.insecure_url"
    en = "The issuer's address is not a secure (https) address, so kluis will not use it."
    nl = (
        "Het adres van de uitgever is geen beveiligd (https) adres. kluis gebruikt het daarom "
        "niet."
    )


class Unsupported(InvalidInput):
    code = "vci.unsupported"
    en = "The issuer asks for a way of issuing that kluis does not support ({what})."
    nl = "De uitgever vraagt een manier van uitgeven die kluis niet ondersteunt ({what})."


class TxCodeRequired(InvalidInput):
    code = "vci.tx_code_required"
    en = "This offer needs the code the issuer sent you separately. Enter it with --tx-code."
    nl = "Voor dit aanbod is de code nodig die de uitgever u apart stuurde. Geef die met --tx-code."


class TxCodeUnexpected(InvalidInput):
    code = "vci.tx_code_unexpected"
    en = "This offer needs no extra code. Try again without one."
    nl = "Voor dit aanbod is geen extra code nodig. Probeer het zonder."


class BadTxCode(InvalidInput):
    code = "vci.bad_tx_code"
    en = "The code does not have the form the issuer asked for ({form}). Check it."
    nl = "De code heeft niet de vorm die de uitgever vraagt ({form}). Controleer de code."


# --- the offer (§4.1) --------------------------------------------------------------------------


@dataclass(frozen=True)
class TxCodeSpec:
    """What the offer says of its transaction code (§4.1.1): how to type it, how long it
    is, and where the citizen gets it (untrusted text: show it as text, never as markup)."""

    input_mode: str = "numeric"
    length: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class CredentialOffer:
    """A credential offer with a pre-authorized code (OpenID4VCI 1.0 §4.1.1)."""

    credential_issuer: str
    configuration_ids: tuple[str, ...]
    pre_authorized_code: str = field(repr=False)
    tx_code: TxCodeSpec | None
    authorization_server: str | None = None


@dataclass(frozen=True)
class OfferReference:
    """An offer by reference (§4.1.3): ``fetch_credential_offer`` gets the offer itself."""

    uri: str


def check_url(url: str, what: str = "URL") -> str:
    """``url`` if the wallet may talk to it: https with a host, or http on a loopback host;
    no user info and no fragment. Raises ``vci.insecure_url``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise InsecureUrl(f"RFC 3986: the {what} is not a URL") from None
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise InsecureUrl(f"OpenID4VCI 1.0 §13.9: the {what} uses https")
    if parts.username is not None or parts.fragment:
        raise InsecureUrl(f"RFC 3986 §3: the {what} has no user info or fragment")
    return url


def parse_credential_offer(text: str) -> CredentialOffer | OfferReference:
    """The offer in ``text``: an ``openid-credential-offer://`` URI (also as QR code text)
    with ``credential_offer`` or ``credential_offer_uri``, or the offer's JSON itself.

    Raises ``vci.bad_offer``, ``vci.insecure_url`` (a reference that is not https) and
    ``vci.unsupported`` (an offer without a pre-authorized code).
    """
    if type(text) is not str or len(text) > MAX_OFFER_TEXT:
        raise BadOffer(f"kluis limit: an offer is text of at most {MAX_OFFER_TEXT} characters")
    text = text.strip()
    if text.startswith("{"):
        return parse_offer_object(json_object(text.encode(), BadOffer, "the offer"))
    parts = urlsplit(text)
    if parts.scheme not in (OFFER_SCHEME, "https", "http") or parts.fragment:
        raise BadOffer("OpenID4VCI 1.0 §4.1: an openid-credential-offer:// URI")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise BadOffer("OpenID4VCI 1.0 §4.1: the URI's query is not a form") from None
    query = dict(pairs)
    by_value, by_reference = "credential_offer" in query, "credential_offer_uri" in query
    if len(query) != len(pairs) or by_value == by_reference:
        raise BadOffer("OpenID4VCI 1.0 §4.1: exactly one of credential_offer, credential_offer_uri")
    if "credential_offer_uri" in query:
        return OfferReference(check_url(query["credential_offer_uri"], "credential_offer_uri"))
    return parse_offer_object(json_object(query["credential_offer"].encode(), BadOffer,
                                            "credential_offer"))


def parse_offer_object(data: Mapping[str, Any]) -> CredentialOffer:
    """The ``CredentialOffer`` in an offer's JSON object (§4.1.1); unknown members are
    ignored, as the spec says. Raises ``vci.bad_offer``, ``vci.insecure_url`` and
    ``vci.unsupported``."""
    issuer = data.get("credential_issuer")
    ids = data.get("credential_configuration_ids")
    if type(issuer) is not str or not issuer:
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: credential_issuer is a URL")
    check_url(issuer, "credential_issuer")
    if urlsplit(issuer).query:
        raise BadOffer("OpenID4VCI 1.0 §12.2.1: the issuer identifier has no query")
    if (not isinstance(ids, list) or not ids or len(ids) > 16
            or any(type(i) is not str or not i for i in ids) or len(set(ids)) != len(ids)):
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: credential_configuration_ids is a non-empty "
                       "array of unique strings")
    grants = data.get("grants")
    grant = grants.get(PRE_AUTHORIZED_GRANT) if isinstance(grants, dict) else None
    if not isinstance(grant, dict):
        raise Unsupported("specs/openid4vci.md: only the pre-authorized code flow",
                          what="authorization code flow")
    code = grant.get("pre-authorized_code")
    if type(code) is not str or not code or len(code) > 512:
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: pre-authorized_code is a string")
    server = grant.get("authorization_server")
    if server is not None and type(server) is not str:
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: authorization_server is a string")
    return CredentialOffer(issuer, tuple(ids), code, _tx_code_spec(grant), server)


def _tx_code_spec(grant: Mapping[str, Any]) -> TxCodeSpec | None:
    if "tx_code" not in grant:
        return None
    spec = grant["tx_code"]
    if not isinstance(spec, dict):
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: tx_code is an object (present means required)")
    mode = spec.get("input_mode", "numeric")
    length = spec.get("length")
    description = spec.get("description")
    if mode not in ("numeric", "text"):
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: input_mode is numeric or text")
    if length is not None and (type(length) is not int or not 1 <= length <= 64):
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: length is a small positive integer")
    if description is not None and (type(description) is not str or len(description) > 300):
        raise BadOffer("OpenID4VCI 1.0 §4.1.1: description is text of at most 300 characters")
    return TxCodeSpec(mode, length, description)


def check_tx_code(offer: CredentialOffer, tx_code: str | None) -> str | None:
    """``tx_code`` if the offer asks for one and it fits the offer's form (§4.1.1, §6.1);
    None if the offer asks for none. Raises ``vci.tx_code_required``,
    ``vci.tx_code_unexpected`` and ``vci.bad_tx_code``."""
    spec = offer.tx_code
    if spec is None:
        if tx_code is not None:
            raise TxCodeUnexpected("OpenID4VCI 1.0 §6.1: tx_code only when the offer has one")
        return None
    if tx_code is None:
        raise TxCodeRequired("OpenID4VCI 1.0 §6.1: the offer has a tx_code object")
    form = f"{spec.length or 'any'} {'digits' if spec.input_mode == 'numeric' else 'characters'}"
    if not tx_code or len(tx_code) > 64 or not tx_code.isprintable():
        raise BadTxCode("OpenID4VCI 1.0 §4.1.1", form=form)
    if spec.input_mode == "numeric" and not (tx_code.isascii() and tx_code.isdigit()):
        raise BadTxCode("OpenID4VCI 1.0 §4.1.1: input_mode numeric", form=form)
    if spec.length is not None and len(tx_code) != spec.length:
        raise BadTxCode("OpenID4VCI 1.0 §4.1.1: length", form=form)
    return tx_code


def json_object(data: bytes, error: type[InvalidInput] | type[VerificationFailed],
                 what: str) -> dict[str, Any]:
    def no_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise error(f"RFC 8259: {what} is not UTF-8 JSON") from None
    if type(value) is not dict:
        raise error(f"RFC 8259: {what} is not a JSON object")
    return value
