"""Issuing SD-JWT VCs (RFC 9901 §4, §5; SD-JWT VC draft-18 §2): the agency's side.

``issue_sd_jwt`` hides the chosen claims behind salted digests (object properties, nested
objects and array elements, recursively), adds decoy digests if asked, sorts every ``_sd``
array so the order tells nothing, and signs the result as ``typ: dc+sd-jwt`` with ES256 or
EdDSA. Claims the verifier needs to judge the credential (``iss``, ``exp``, ``cnf``, ``vct``,
``status``, ...) are never made disclosable.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from vault import InvalidInput
from verifiers.claim_path import ClaimPath, parse_claim_path, path_text
from verifiers.disclosure import (
    DEFAULT_HASH,
    HASHES,
    RESERVED_NAMES,
    Disclosure,
    decoy_digest,
    format_disclosure,
    new_salts,
)
from verifiers.jws import SigningKey, VerifyingKey, format_jwk, sign_jws
from verifiers.sdjwt import NEVER_DISCLOSABLE, BadClaims, NoSuchClaim, format_compact

SD_JWT_VC_TYP = "dc+sd-jwt"

# Filled in by the issuer from its own arguments, so they may not come in with the claims.
SET_BY_ISSUER = frozenset({"iss", "iat", "nbf", "exp", "vct", "cnf", "status"})
_STRUCTURAL = RESERVED_NAMES | {"_sd_alg"}


class ClaimReserved(InvalidInput):
    code = "sdjwt.claim_reserved"
    en = "The claims use a name that the issuer sets itself or that SD-JWT reserves: '{name}'."
    nl = (
        "De claims gebruiken een naam die de uitgever zelf invult of die SD-JWT voor "
        "zichzelf houdt: '{name}'."
    )


class ClaimNotDisclosable(InvalidInput):
    code = "sdjwt.claim_not_disclosable"
    en = "The claim '{name}' must stay visible to every verifier, so it cannot be hidden."
    nl = (
        "De claim '{name}' moet voor elke ontvanger zichtbaar blijven en kan dus niet "
        "verborgen worden."
    )


class _Spec:
    """Which claims below one node are disclosable: a small trie built from claim paths."""

    __slots__ = ("sd", "children", "path", "sources")

    def __init__(self, path: ClaimPath, sources: tuple[_Spec, ...] = ()) -> None:
        self.sd = False
        self.children: dict[str | int | None, _Spec] = {}
        self.path = path
        self.sources = sources or (self,)  # the specs a merged spec stands for


def _spec_for(claims: Mapping[str, Any], disclosable: Iterable[Sequence[Any]] | None) -> _Spec:
    """The trie of ``disclosable`` paths; None means every top-level claim that SD-JWT VC
    allows to be hidden."""
    root = _Spec(())
    if disclosable is None:  # every top-level claim that may be hidden: one shared leaf
        root.children = dict.fromkeys((n for n in claims if n not in NEVER_DISCLOSABLE), _LEAF)
        return root
    for raw in disclosable:
        if type(raw) is tuple and len(raw) == 1 and type(raw[0]) is str:
            path: ClaimPath = raw  # a top-level name, the common case: no need for the parser
        elif isinstance(raw, str | bytes):
            raise BadClaims("OpenID4VP 1.0 §7: a claim path is a list, not a string")
        else:
            path = parse_claim_path(list(raw), fail=BadClaims)
        if not isinstance(path[0], str):
            raise BadClaims("OpenID4VP 1.0 §7: a path into the claims starts with a name")
        if not _STRUCTURAL.isdisjoint(path):
            raise ClaimReserved("RFC 9901 §4.2.1", name=path_text(path))
        if path[0] in NEVER_DISCLOSABLE:
            raise ClaimNotDisclosable("SD-JWT VC draft-18 §2.2.2.3", name=path_text(path))
        node = root
        for depth, part in enumerate(path, 1):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Spec(path[:depth])
            node = child
        node.sd = True
    return root


_LEAF = _Spec(())
_LEAF.sd = True


def _merge(one: _Spec, other: _Spec) -> _Spec:
    """One spec for an array element named both by its index and by ``None``."""
    merged = _Spec(one.path, one.sources + other.sources)
    merged.sd = one.sd or other.sd
    for part in one.children.keys() | other.children.keys():
        a, b = one.children.get(part), other.children.get(part)
        if a is not None and b is not None:
            merged.children[part] = _merge(a, b)
        else:
            merged.children[part] = a or b  # type: ignore[assignment]
    return merged


class _Pack:
    """One run of RFC 9901 §4.2: builds the payload and its disclosures, post-order (children
    first, since a parent's disclosure holds its children's digests)."""

    __slots__ = ("hash_alg", "decoys", "salts", "decoy_digests", "disclosures", "used", "_pool")

    def __init__(self, hash_alg: str, decoys: int, salts: Iterator[str] | None,
                 decoy_digests: Mapping[ClaimPath, Sequence[str]] | None) -> None:
        self.hash_alg = hash_alg
        self.decoys = decoys
        self.salts = salts
        self.decoy_digests = decoy_digests
        self.disclosures: list[Disclosure] = []
        self.used: set[_Spec] = set()
        self._pool: list[str] = []

    def salt(self) -> str:
        if self.salts is not None:
            return next(self.salts)
        if not self._pool:
            self._pool = new_salts(16)
        return self._pool.pop()

    def _decoys_at(self, path: ClaimPath) -> Sequence[str]:
        if self.decoy_digests is not None:
            return self.decoy_digests.get(path, ())
        count = secrets.randbelow(self.decoys + 1) if self.decoys else 0
        return [decoy_digest(self.hash_alg) for _ in range(count)]

    def disclose(self, spec: _Spec, name: str | None, value: Any) -> str:
        if spec is not _LEAF:  # the shared leaf of "every top-level claim" needs no tracking
            self.used.update(spec.sources)
        disclosure = format_disclosure(self.salt(), name, value, self.hash_alg)
        self.disclosures.append(disclosure)
        return disclosure.digest

    def value(self, node: Any, spec: _Spec | None) -> Any:
        if type(node) is not dict and type(node) is not list:
            return node  # a scalar: nothing to hide or check below it
        if spec is None or not spec.children:
            return _plain(node)
        if type(node) is dict:
            return self.object(node, spec)
        if type(node) is list:
            return self.array(node, spec)
        return node  # a path that goes below a scalar: its spec stays unused and is reported

    def object(self, node: dict[str, Any], spec: _Spec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        children = spec.children
        for key, item in node.items():
            if type(key) is not str:
                raise BadClaims("RFC 8259 §4: object member names are strings")
            if key in _STRUCTURAL:
                raise ClaimReserved("RFC 9901 §4.2.1", name=key)
            child = children.get(key)
            packed = self.value(item, child)
            if child is not None and child.sd:
                digests.append(self.disclose(child, key, packed))
            else:
                out[key] = packed
        if not digests:
            return out
        digests.extend(self._decoys_at(spec.path))
        digests.sort()  # hides the claims' order (RFC 9901 §4.2.4.1)
        return {"_sd": digests, **out}

    def array(self, node: list[Any], spec: _Spec) -> list[Any]:
        out: list[Any] = []
        children = spec.children
        every = children.get(None)
        hidden = False
        for index, item in enumerate(node):
            child = children.get(index)
            if every is not None:
                child = every if child is None else _merge(child, every)
            packed = self.value(item, child)
            if child is not None and child.sd:
                out.append({"...": self.disclose(child, None, packed)})
                hidden = True
            else:
                out.append(packed)
        if hidden:
            for decoy in self._decoys_at(spec.path):
                out.insert(secrets.randbelow(len(out) + 1), {"...": decoy})
        return out


def _plain(node: Any) -> Any:
    """``node`` unchanged, once no object in it uses a reserved or non-string name."""
    if type(node) is dict:
        for key, item in node.items():
            if type(key) is not str:
                raise BadClaims("RFC 8259 §4: object member names are strings")
            if key in _STRUCTURAL:
                raise ClaimReserved("RFC 9901 §4.2.1", name=key)
            _plain(item)
    elif type(node) is list:
        for item in node:
            _plain(item)
    return node


def _pack(
    claims: Mapping[str, Any], disclosable: Iterable[Sequence[Any]] | None, *,
    hash_alg: str = DEFAULT_HASH, decoys: int = 0, salts: Iterator[str] | None = None,
    decoy_digests: Mapping[ClaimPath, Sequence[str]] | None = None,
) -> tuple[dict[str, Any], list[Disclosure]]:
    """The SD-JWT payload for ``claims`` (without ``_sd_alg`` and ``cnf``) and its
    disclosures in creation order. ``salts`` and ``decoy_digests`` are the private seam that
    reproduces published examples; in use both come from ``secrets``.

    Raises ``BadClaims``, ``ClaimReserved``, ``ClaimNotDisclosable`` and ``NoSuchClaim``.
    """
    if not isinstance(claims, Mapping):
        raise BadClaims("RFC 7519 §7.1: the claims are a JSON object")
    if type(decoys) is not int or not 0 <= decoys <= 64:
        raise BadClaims("kluis limit: 0 to 64 decoys per level")
    spec = _spec_for(claims, disclosable)
    run = _Pack(hash_alg, decoys, salts, decoy_digests)
    try:
        payload = run.object(dict(claims), spec)
    except (TypeError, ValueError):
        raise BadClaims("RFC 8259: every claim value must be JSON") from None
    if disclosable is not None:
        for missing in _unused(spec, run.used):
            raise NoSuchClaim("RFC 9901 §4.2", name=path_text(missing.path))
    return payload, run.disclosures


def _unused(spec: _Spec, used: set[_Spec]) -> Iterator[_Spec]:
    if spec.sd and spec not in used:
        yield spec
    for child in spec.children.values():
        yield from _unused(child, used)


def _check_time(name: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise BadClaims(f"RFC 7519 §2: '{name}' is a NumericDate (whole seconds)")
    return value


def issue_sd_jwt(
    claims: Mapping[str, Any], *, issuer_key: SigningKey, iss: str, vct: str, now: int,
    exp: int, nbf: int | None = None, holder_key: VerifyingKey | None = None,
    disclosable: Iterable[Sequence[Any]] | None = None, decoys: int = 0,
    status: Mapping[str, Any] | None = None, hash_alg: str = DEFAULT_HASH,
    _salts: Iterator[str] | None = None,
    _decoys: Mapping[ClaimPath, Sequence[str]] | None = None,
) -> str:
    """A compact SD-JWT VC (``typ: dc+sd-jwt``, trailing ``~``) signed by ``issuer_key``.

    ``disclosable`` lists claim paths (keys, array indices, ``None`` for every element) that
    the holder may disclose one by one; None makes every top-level claim disclosable. A path
    below a disclosable claim makes that part disclosable too, inside its parent's
    disclosure. ``decoys`` is the most decoy digests added to each object or array that hides
    something (a random number from 0 to ``decoys``). ``holder_key`` goes into ``cnf.jwk``;
    ``status`` is the Token Status List reference, copied as given. ``iat`` is ``now``.

    Raises ``BadClaims`` (times, ``hash_alg``, values that are not JSON), ``ClaimReserved``
    (``iss``, ``vct``, ... in ``claims``, or ``_sd``/``...``/``_sd_alg`` anywhere),
    ``ClaimNotDisclosable`` (SD-JWT VC draft-18 §2.2.2.3) and ``NoSuchClaim``.
    """
    for name in SET_BY_ISSUER.intersection(claims) if isinstance(claims, Mapping) else ():
        raise ClaimReserved("SD-JWT VC draft-18 §2.2.2.3: set by the issuer", name=name)
    if type(iss) is not str or not iss or type(vct) is not str or not vct:
        raise BadClaims("SD-JWT VC draft-18 §2.2.2.3: 'iss' and 'vct' are non-empty strings")
    if hash_alg not in HASHES:
        raise BadClaims(f"RFC 9901 §4.1.1: unknown '_sd_alg' {hash_alg!r}")
    _check_time("iat", now)
    if _check_time("exp", exp) <= now or (nbf is not None and _check_time("nbf", nbf) >= exp):
        raise BadClaims("RFC 7519 §4.1.4: 'exp' must come after 'iat' and 'nbf'")
    if status is not None and not isinstance(status, Mapping):
        raise BadClaims("Token Status List §6.1: 'status' is a JSON object")
    packed, disclosures = _pack(claims, disclosable, hash_alg=hash_alg, decoys=decoys,
                                salts=_salts, decoy_digests=_decoys)
    payload: dict[str, Any] = {}
    if "_sd" in packed:
        payload["_sd"] = packed.pop("_sd")
    payload["iss"] = iss
    payload["iat"] = now
    if nbf is not None:
        payload["nbf"] = nbf
    payload["exp"] = exp
    payload["vct"] = vct
    if status is not None:
        payload["status"] = dict(status)
    payload.update(packed)
    payload["_sd_alg"] = hash_alg
    if holder_key is not None:
        payload["cnf"] = {"jwk": format_jwk(holder_key, with_kid=False)}
    return sign_sd_jwt(payload, disclosures, issuer_key)


def sign_sd_jwt(
    payload: Mapping[str, Any], disclosures: Iterable[Disclosure], issuer_key: SigningKey,
    *, typ: str = SD_JWT_VC_TYP,
) -> str:
    """The compact SD-JWT of an already packed ``payload`` and its ``disclosures``: header
    ``alg``, ``typ`` and (when the key has one) ``kid``; trailing ``~`` (RFC 9901 §4).

    Raises ``BadClaims`` when ``payload`` is not JSON.
    """
    header = {"alg": issuer_key.alg.value, "typ": typ}
    if issuer_key.kid is not None:
        header["kid"] = issuer_key.kid
    try:
        jwt = sign_jws(header, payload, issuer_key)
    except (TypeError, ValueError):
        raise BadClaims("RFC 8259: every claim value must be JSON") from None
    return format_compact(jwt, [d.encoded for d in disclosures])
