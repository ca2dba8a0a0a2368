"""The Status List Token as a JWT (draft-ietf-oauth-status-list-20/-21 §5.1, §8.3).

A compact JWS with header ``typ: statuslist+jwt`` whose claims are ``sub`` (the list's uri,
REQUIRED), ``iat`` (REQUIRED), ``exp`` and ``ttl`` (RECOMMENDED) and ``status_list`` with
``bits`` and ``lst``. Signed and checked through jwcrypto (lists are fetched rarely, so its
generality is worth its cost), with ES256 or EdDSA only. The header is judged before jwcrypto
sees the token, and base64url must be canonical.

``verifiers.statuslist`` builds on this: the issuer's list and the relying party's checker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jwcrypto.common import JWException
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from vault.errors import VerificationFailed
from verifiers.status_array import (
    BadParameters,
    StatusArray,
    format_status_list,
    is_int,
    parse_status_list,
    unb64url,
)

TYP = "statuslist+jwt"
MAX_TOKEN_LENGTH = 1 << 24
# RFC 7518 §3.4 and RFC 8037 §3.1; HAIP requires ES256. Nothing else is accepted.
ALGORITHMS = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}


class BadStatusToken(VerificationFailed):
    code = "status.bad_token"
    en = "The status list is not a valid status list token, so the credential's status is unknown."
    nl = (
        "De statuslijst is geen geldig statuslijst-token. "
        "De status van het bewijs is daarom onbekend."
    )


class BadStatusSignature(VerificationFailed):
    code = "status.bad_signature"
    en = "The status list is not signed by its issuer, so the credential's status is unknown."
    nl = (
        "De statuslijst is niet ondertekend door de uitgever. "
        "De status van het bewijs is daarom onbekend."
    )


class WrongSubject(VerificationFailed):
    code = "status.wrong_subject"
    en = "The status list that came back is not the one the credential points to."
    nl = "De statuslijst die terugkwam is niet de lijst waarnaar het bewijs verwijst."


class ExpiredList(VerificationFailed):
    code = "status.expired_list"
    en = "The status list has expired, so the credential's status is unknown. Try again later."
    nl = (
        "De statuslijst is verlopen. De status van het bewijs is daarom onbekend. "
        "Probeer het later opnieuw."
    )


@dataclass(frozen=True, eq=False)
class StatusListToken:
    """A verified Status List Token: its list, for which ``uri``, and how long it holds."""

    uri: str
    issued_at: int
    expires_at: int | None
    ttl: int | None
    statuses: StatusArray
    issuer: str | None = None

    def fresh_until(self, fetched_at: int) -> int | None:
        """Until when a copy fetched at ``fetched_at`` may be reused; None: do not reuse.

        ``ttl`` bounds caching and ``exp`` bounds everything (§5.1); a token without ``ttl``
        gives no caching time, so it is fetched again each time.
        """
        if self.ttl is None:
            return None
        until = fetched_at + self.ttl
        return until if self.expires_at is None else min(until, self.expires_at)


def issue_status_list_token(
    uri: str,
    statuses: StatusArray,
    key: JWK,
    *,
    now: int,
    ttl: int = 3600,
    lifetime: int = 86400,
    issuer: str | None = None,
) -> str:
    """Sign ``statuses`` as the ``statuslist+jwt`` for ``uri`` (§5.1); return the compact JWT.

    Claims: ``sub`` = ``uri``, ``iat`` = ``now``, ``exp`` = ``now + lifetime``, ``ttl``,
    ``status_list``, and ``iss`` when given. Header: ``alg``, ``kid`` (the key's, else its RFC
    7638 thumbprint), ``typ``. Raises ``status.bad_parameters`` unless ``key`` is a private
    P-256 (ES256) or Ed25519 (EdDSA) JWK and ``ttl`` and ``lifetime`` are positive.
    """
    if not is_int(ttl) or not is_int(lifetime) or ttl <= 0 or lifetime <= 0:
        raise BadParameters("Token Status List §5.1: ttl is positive and exp in the future")
    alg = algorithm_for(key)
    if alg is None or not key.has_private:
        raise BadParameters("kluis signs status lists with a private P-256 or Ed25519 key")
    payload: dict[str, Any] = {
        "sub": uri,
        "iat": now,
        "exp": now + lifetime,
        "ttl": ttl,
        "status_list": format_status_list(statuses),
    }
    if issuer is not None:
        payload["iss"] = issuer
    header = {"alg": alg, "kid": key_id(key), "typ": TYP}
    jws = JWS(json.dumps(payload, separators=(",", ":")).encode())
    jws.add_signature(key, alg=alg, protected=json.dumps(header, separators=(",", ":")))
    return str(jws.serialize(compact=True))


def verify_status_list_token(
    token: str | bytes, issuer_keys: Sequence[JWK], *, uri: str, now: int
) -> StatusListToken:
    """Verify a Status List Token fetched for ``uri``, in the order of §8.3; return its list.

    Raises, in this order: ``status.bad_token`` (not a compact JWS, ``typ`` is not
    ``statuslist+jwt``, ``alg`` is not ES256/EdDSA, ``crit`` present); ``status.bad_signature``
    (no issuer key fits ``kid`` and ``alg``, or the signature fails); ``status.bad_token``
    (``sub``, ``iat`` or ``status_list`` missing, or a claim of the wrong type);
    ``status.wrong_subject`` (``sub`` != ``uri``); ``status.expired_list`` (``exp`` <= ``now``);
    ``status.bad_list`` (the list does not decode).
    """
    text = _token_text(token)
    parts = text.split(".")
    if len(parts) != 3:
        raise BadStatusToken("RFC 7515 §7.1: a compact JWS has three parts")
    header = _json_object(unb64url(parts[0], BadStatusToken), "header")
    payload = unb64url(parts[1], BadStatusToken)
    unb64url(parts[2], BadStatusToken)
    if header.get("typ") != TYP:
        raise BadStatusToken(f"Token Status List §5.1: typ must be {TYP}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise BadStatusToken("RFC 7515 §10.7: alg is not ES256 or EdDSA")
    if "crit" in header:
        raise BadStatusToken("RFC 7515 §4.1.11: no crit extension is understood")
    _check_signature(text, alg, header.get("kid"), issuer_keys)
    claims = _json_object(payload, "payload")
    sub, iat, exp, ttl, iss = (claims.get(k) for k in ("sub", "iat", "exp", "ttl", "iss"))
    if not isinstance(sub, str) or not is_int(iat) or "status_list" not in claims:
        raise BadStatusToken("Token Status List §5.1: sub, iat and status_list are required")
    if exp is not None and not is_int(exp):
        raise BadStatusToken("Token Status List §5.1: exp is a NumericDate")
    if ttl is not None and not (is_int(ttl) and ttl > 0):
        raise BadStatusToken("Token Status List §5.1: ttl is a positive number")
    if sub != uri:
        raise WrongSubject(f"Token Status List §8.3: sub is not {uri}")
    if exp is not None and exp <= now:
        raise ExpiredList(f"Token Status List §8.3: the list expired at {exp}")
    statuses = parse_status_list(claims["status_list"])
    return StatusListToken(sub, iat, exp, ttl, statuses, iss if isinstance(iss, str) else None)


def algorithm_for(key: JWK) -> str | None:
    """ES256 for a P-256 key, EdDSA for an Ed25519 key, else None."""
    kind = (key.get("kty"), key.get("crv"))
    return next((alg for alg, want in ALGORITHMS.items() if want == kind), None)


def key_id(key: JWK) -> str:
    """The key's ``kid``, or its RFC 7638 thumbprint when it has none."""
    kid = key.get("kid")
    return kid if isinstance(kid, str) and kid else str(key.thumbprint())


def _check_signature(token: str, alg: str, kid: object, keys: Sequence[JWK]) -> None:
    fitting = [k for k in keys if algorithm_for(k) == alg]
    if kid is not None:
        fitting = [k for k in fitting if key_id(k) == kid]
    for key in fitting:
        jws = JWS()
        try:
            jws.deserialize(token)
            jws.allowed_algs = [alg]
            jws.verify(key, alg=alg)
        except (JWException, ValueError, TypeError):
            continue
        return
    why = "the signature does not verify" if fitting else "no trusted key fits kid and alg"
    raise BadStatusSignature(f"Token Status List §8.3, RFC 7515 §5.2: {why}")


def _token_text(token: str | bytes) -> str:
    if len(token) > MAX_TOKEN_LENGTH:
        raise BadStatusToken(f"kluis limit: a status list token has at most {MAX_TOKEN_LENGTH}")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise BadStatusToken("RFC 7515 §7.1: a compact JWS is ASCII") from None
    # A fetched body may end in a newline; nothing else around the token is tolerated.
    return token.removesuffix("\n")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            raise ValueError("duplicate member name")
        return members

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadStatusToken(f"RFC 7519 §7.2: the {what} is JSON without duplicates") from None
    if not isinstance(value, dict):
        raise BadStatusToken(f"RFC 7519 §7.2: the {what} is a JSON object")
    return value
