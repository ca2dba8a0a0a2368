"""The wallet's side of OpenID4VP 1.0 over the network (specs/openid4vp.md §7): read an
``openid4vp://`` request URI, fetch and check the signed Request Object, and send the
citizen's answer (encrypted for ``direct_post.jwt``) to the verifier's ``response_uri``.

Everything that arrives is untrusted. The request URI is parsed strictly; the Request Object
is fetched by GET with no redirects followed and a size cap, must be ``application/
oauth-authz-req+jwt`` and signed, its ``typ`` checked, its signature verified with the key of
the ``x5c`` leaf certificate whose SHA-256 is the ``x509_hash`` client id
(``verifiers.client_certificate``), and its ``client_id`` must equal the one in the URI
(``wallet.request.parse_request``). Whether that client id may ask at all is the consent
engine's question: it looks the client id up on the trust list, and blocks (and logs) a
request from a verifier that is not there, or that asks beyond its registration.

Log first, release second: ``approve_and_send`` lets the consent engine commit the approval
before anything is posted, records the outcome (``sent`` or ``failed``) after the POST, then
verifies and logs each receipt. ``refuse_and_send`` logs the refusal, then tells the
verifier ``access_denied``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from vault import InvalidInput, KluisError, NotFound, NotPermitted, Unavailable, VerificationFailed
from verifiers.claim_path import ClaimPath
from verifiers.client_certificate import verify_client_certificate
from verifiers.encrypted_response import seal_response
from verifiers.jws import VerifyingKey
from verifiers.receipt import Receipt
from wallet.consent import Consent
from wallet.release import Refusal, Release
from wallet.request import (
    MAX_REQUEST_BYTES,
    ClientIdPrefix,
    Request,
    ResponseMode,
    UnsupportedClientId,
    parse_request,
)
from wallet.request_object import TYP
from wallet.transport import Response, Transport

SCHEMES = ("openid4vp", "haip-vp")
REQUEST_OBJECT = f"application/{TYP}"
FORM = "application/x-www-form-urlencoded"
MAX_URI = 4096
MAX_ANSWER_BYTES = 256 * 1024
MAX_RECEIPTS = 32
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class BadRequestUri(InvalidInput):
    code = "vp.bad_request_uri"
    en = "This is not a request link kluis can read (openid4vp://...). Check what you pasted."
    nl = "Dit is geen verzoeklink die kluis kan lezen (openid4vp://...). Controleer wat u plakte."


class Unsupported(InvalidInput):
    code = "vp.unsupported"
    en = "The request uses something kluis does not support ({what}). Nothing was shared."
    nl = "Het verzoek gebruikt iets dat kluis niet ondersteunt ({what}). Er is niets gedeeld."


class InsecureUrl(InvalidInput):
    code = "vp.insecure_url"
    en = "The request points to an address that is not secure (https). kluis does not go there."
    nl = (
        "Het verzoek wijst naar een adres dat niet beveiligd is (https). "
        "kluis gaat daar niet heen."
    )


class UnsignedRequest(VerificationFailed):
    code = "vp.unsigned_request"
    en = "The organisation sent an unsigned request over the network. kluis does not accept it."
    nl = "De organisatie stuurde een niet-ondertekend verzoek via het netwerk. kluis weigert het."


class Redirected(VerificationFailed):
    code = "vp.redirected"
    en = "The organisation tried to send kluis to another address. kluis does not follow it."
    nl = "De organisatie probeerde kluis naar een ander adres te sturen. kluis volgt dat niet."


class AnswerTooLarge(VerificationFailed):
    code = "vp.answer_too_large"
    en = "The organisation sent far too much data, so kluis stopped reading it."
    nl = "De organisatie stuurde veel te veel gegevens. kluis is gestopt met lezen."


class BadAnswer(VerificationFailed):
    code = "vp.bad_answer"
    en = "The organisation sent an answer that kluis cannot read. Try again later."
    nl = "De organisatie stuurde een antwoord dat kluis niet kan lezen. Probeer het later opnieuw."


class RequestGone(NotFound):
    code = "vp.request_gone"
    en = "The organisation no longer has this request (used or expired). Ask it to send a new one."
    nl = "De organisatie heeft dit verzoek niet meer (gebruikt of verlopen). Vraag om een nieuw."


class VerifierUnavailable(Unavailable):
    code = "vp.verifier_unavailable"
    en = "The organisation's service is busy or cannot be reached. Try again later."
    nl = "De dienst van de organisatie is bezet of niet bereikbaar. Probeer het later opnieuw."


class ResponseRefused(NotPermitted):
    code = "vp.response_refused"
    en = "The organisation did not accept the answer ({problem}). Your log records what happened."
    nl = (
        "De organisatie nam het antwoord niet aan ({problem}). "
        "Uw logboek legt vast wat er gebeurde."
    )


@dataclass(frozen=True)
class RequestReference:
    """A request by reference: the ``client_id`` it is announced with and where to get it."""

    client_id: str
    request_uri: str


@dataclass(frozen=True)
class Delivery:
    """A release that reached the verifier: its receipts, verified and logged, and the
    ``redirect_uri`` the verifier returned, if any (OpenID4VP 1.0 §8.2)."""

    release: Release
    receipts: tuple[Receipt, ...]
    redirect_uri: str | None


def parse_request_uri(text: str) -> RequestReference:
    """The request reference in ``text``: ``openid4vp://`` or ``haip-vp://`` (also as QR code
    text) with ``client_id`` and ``request_uri`` (OpenID4VP 1.0 §5.2, §5.10; HAIP).

    ``request_uri_method=post`` is read as a GET, which §5.1 allows a wallet without POST
    support. Raises ``vp.bad_request_uri``, ``vp.unsupported`` (a request by value: kluis
    accepts only signed requests by reference over the network) and ``vp.insecure_url``.
    """
    if type(text) is not str or len(text) > MAX_URI:
        raise BadRequestUri(f"kluis limit: a request link of at most {MAX_URI} characters")
    try:
        parts = urlsplit(text.strip())
        pairs = parse_qsl(parts.query, strict_parsing=True, max_num_fields=16)
    except ValueError:
        raise BadRequestUri("RFC 3986: not a URI with a query") from None
    if parts.scheme not in SCHEMES or parts.fragment:
        raise BadRequestUri("OpenID4VP 1.0 §13.1: an openid4vp:// (or haip-vp://) URI")
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise BadRequestUri("RFC 6749 §3.1: each parameter at most once")
    params = dict(pairs)
    if "request" in params:
        raise Unsupported("specs/openid4vp.md §7: requests by reference only", what="request")
    if params.get("request_uri_method", "get") not in ("get", "post"):
        raise BadRequestUri("OpenID4VP 1.0 §5.1: request_uri_method is get or post")
    client_id, request_uri = params.get("client_id"), params.get("request_uri")
    if not client_id or not request_uri:
        raise BadRequestUri("OpenID4VP 1.0 §5.10: client_id and request_uri are required")
    return RequestReference(client_id, check_url(request_uri))


def check_url(url: str) -> str:
    """``url`` if the wallet may send to or fetch from it: https, or http on a loopback host
    (the demo agencies); no user info, no fragment. Raises ``vp.insecure_url``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise InsecureUrl("RFC 3986: not a URL") from None
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        raise InsecureUrl("OpenID4VP 1.0 §14.3: https")
    if parts.username is not None or parts.fragment:
        raise InsecureUrl("RFC 3986 §3: no user info or fragment")
    return url


@dataclass(frozen=True)
class X509HashKeys:
    """``wallet.request_object.VerifierKeys`` for ``x509_hash`` client ids (HAIP): the key of
    the ``x5c`` leaf certificate whose SHA-256 is the client id, valid at ``now``."""

    now: datetime

    def request_key(self, client_id: str, header: Mapping[str, Any]) -> VerifyingKey:
        """Raises ``request.unsupported_client_id`` for another prefix and the
        ``verify_client_certificate`` errors."""
        if not client_id.startswith(f"{ClientIdPrefix.X509_HASH.value}:"):
            raise UnsupportedClientId("HAIP 1.0 §5: signed requests use x509_hash client ids")
        return verify_client_certificate(header, client_id, now=self.now)


def fetch_request(reference: RequestReference, *, transport: Transport,
                  now: datetime) -> Request:
    """The request behind ``reference``, fetched and checked (module docstring).

    Raises ``vp.redirected``, ``vp.answer_too_large``, ``vp.request_gone`` (404, 409, 410),
    ``vp.verifier_unavailable``, ``vp.bad_answer``, ``vp.unsigned_request``, the
    ``parse_request`` errors (``request.wrong_type``, ``request.bad_signature``,
    ``request.mismatch`` for a ``client_id`` other than the URI's, ...) and the
    ``verify_client_certificate`` errors.
    """
    answer = _call(transport, "GET", reference.request_uri, headers={"Accept": REQUEST_OBJECT})
    if answer.status in (404, 409, 410):
        raise RequestGone(f"RFC 9101 §5.2: HTTP {answer.status}")
    if answer.status != 200:
        raise BadAnswer(f"RFC 9101 §5.2: HTTP {answer.status}")
    media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != REQUEST_OBJECT:
        raise BadAnswer(f"RFC 9101 §5.2: the Request Object is {REQUEST_OBJECT}")
    try:
        text = answer.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadAnswer("RFC 7515 §7.1: a compact JWS is ASCII") from None
    if text.startswith("{"):
        raise UnsignedRequest("HAIP 1.0 §5: requests over the network are signed")
    return parse_request(text, verifier_keys=X509HashKeys(now),
                         expected_client_id=reference.client_id)


# --- answering -------------------------------------------------------------------------------


def response_body(parameters: Mapping[str, Any], request: Request) -> bytes:
    """The form body of the Authorization Response (OpenID4VP 1.0 §8.2, §8.3): ``response``
    = the parameters sealed to the verifier's key for ``direct_post.jwt``; otherwise each
    parameter, objects as JSON. Raises the ``seal_response`` errors."""
    if request.response_mode is ResponseMode.DIRECT_POST_JWT:
        form = {"response": seal_response(parameters, request.client_metadata)}
    else:
        form = {name: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                for name, value in parameters.items()}
    return urlencode(form, quote_via=quote).encode("ascii")


def send_release(release: Release, request: Request, *,
                 transport: Transport) -> tuple[tuple[str, ...], str | None]:
    """POST the release's response to the request's ``response_uri``; the receipt tokens and
    ``redirect_uri`` of the verifier's answer. Raises the ``_call`` errors,
    ``vp.response_refused`` (the verifier refused it; its code in ``problem``) and
    ``vp.bad_answer``."""
    body = response_body(release.response(), request)
    answer = _call(transport, "POST", check_url(release.response_uri),
                   headers={"Content-Type": FORM, "Accept": "application/json"}, body=body)
    data = _answer(answer)
    receipts = data.get("receipts", [])
    if (not isinstance(receipts, list) or len(receipts) > MAX_RECEIPTS
            or any(type(r) is not str for r in receipts)):
        raise BadAnswer("specs/openid4vp.md §6: receipts is a list of compact JWS")
    redirect = data.get("redirect_uri")
    return tuple(receipts), redirect if type(redirect) is str else None


def send_refusal(refusal: Refusal, *, transport: Transport) -> None:
    """POST the ``access_denied`` error response (OpenID4VP 1.0 §8.5) to the request's
    ``response_uri``, unencrypted as §8.3.1 allows for errors. Raises as ``send_release``."""
    body = urlencode(refusal.response(), quote_via=quote).encode("ascii")
    answer = _call(transport, "POST", check_url(refusal.response_uri),
                   headers={"Content-Type": FORM, "Accept": "application/json"}, body=body)
    _answer(answer)


def approve_and_send(
    consent: Consent, request_id: str, *, transport: Transport, now: datetime,
    clock: Callable[[], datetime], leave_out: Iterable[ClaimPath] = (),
    skip: Iterable[str] = (),
) -> Delivery:
    """Approve ``request_id`` and send the release: the approval is committed (log first)
    before the POST; the outcome (``sent``, or ``failed`` with the error code) is recorded
    after it; then every receipt is verified against the trust list and logged.

    Raises the ``Consent.approve`` errors, the ``send_release`` errors (after recording the
    failure) and the ``Consent.record_receipt`` errors.
    """
    request = consent.find(request_id).request
    release = consent.approve(request_id, leave_out=leave_out, skip=skip, now=now)
    try:
        receipts, redirect = send_release(release, request, transport=transport)
    except KluisError as error:
        code = str(error.fields.get("problem") or error.code)
        consent.record_outcome(release, sent=False, error=code, now=clock())
        raise
    consent.record_outcome(release, sent=True, now=clock())
    verified = tuple(consent.record_receipt(release, token, now=clock()) for token in receipts)
    return Delivery(release, verified, redirect)


def refuse_and_send(consent: Consent, request_id: str, *, transport: Transport,
                    now: datetime) -> Refusal:
    """Refuse ``request_id`` (logged first) and tell the verifier ``access_denied``. Raises
    the ``Consent.refuse`` errors, then the ``send_refusal`` errors (the refusal stands)."""
    refusal = consent.refuse(request_id, now=now)
    send_refusal(refusal, transport=transport)
    return refusal


# --- HTTP plumbing --------------------------------------------------------------------------


def _call(transport: Transport, method: str, url: str, *, headers: Mapping[str, str],
          body: bytes = b"") -> Response:
    """One request: no redirect followed, the answer capped, 429 and 5xx unavailable."""
    answer = transport.request(method, url, headers=headers, body=body)
    declared = answer.headers.get("content-length", "")
    cap = max(MAX_REQUEST_BYTES, MAX_ANSWER_BYTES)
    if len(answer.body) > cap or (declared.isdigit() and int(declared) > cap):
        raise AnswerTooLarge(f"kluis limit: {cap} bytes")
    if 300 <= answer.status < 400:
        raise Redirected(f"specs/openid4vp.md §7: HTTP {answer.status} is not followed")
    if answer.status == 429 or answer.status >= 500:
        raise VerifierUnavailable(f"HTTP {answer.status}")
    return answer


def _answer(answer: Response) -> dict[str, Any]:
    """The verifier's JSON answer to a response (§8.2: 200 and a JSON object)."""
    try:
        data = json.loads(answer.body) if answer.body else {}
    except (ValueError, RecursionError):
        data = None
    if answer.status != 200:
        code = data.get("code") if isinstance(data, dict) else None
        problem = code[:80] if type(code) is str else f"HTTP {answer.status}"
        raise ResponseRefused(f"HTTP {answer.status}", problem=problem)
    if not isinstance(data, dict):
        raise BadAnswer("OpenID4VP 1.0 §8.2: the answer is a JSON object")
    return data
