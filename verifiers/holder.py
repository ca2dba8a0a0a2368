"""The holder's side of SD-JWT (RFC 9901 §7.2): keep an issued credential, choose what to
disclose, and present it with a Key Binding JWT.

The wallet verifies a credential on receipt with ``verifiers.verifier.verify_issued`` and
then keeps it as a ``HeldSdJwt``; ``present_sd_jwt`` never checks the issuer's signature
again, it only reorganises what the holder already has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from verifiers.claim_path import ClaimPath, parse_claim_path, path_text, select
from verifiers.jws import SigningKey, VerifyingKey, parse_jws
from verifiers.keybinding import (
    KbUnexpected,
    WrongHolderKey,
    holder_key_of,
    prove_key_binding,
)
from verifiers.sdjwt import (
    MAX_LENGTH,
    BadClaims,
    DisclosedClaim,
    NoSuchClaim,
    index_disclosures,
    parse_compact,
    process_disclosures,
    sd_alg_of,
)


@dataclass(frozen=True, slots=True)
class HeldSdJwt:
    """An issued SD-JWT as the wallet keeps it: the Issuer-signed JWT, every disclosure in
    the issuer's order, the claims with all of them put back, and where each one lands.

    ``holder_key`` is the key in ``cnf.jwk``, None when the credential is not key-bound.
    """

    issuer_jwt: str
    hash_alg: str
    claims: dict[str, Any]
    disclosures: tuple[DisclosedClaim, ...]
    holder_key: VerifyingKey | None
    # Derived once so that presenting is cheap: the disclosures under each top-level claim,
    # and each disclosure by digest (to walk up to its ancestors).
    by_name: dict[str, tuple[DisclosedClaim, ...]] = field(repr=False, compare=False)
    by_digest: dict[str, DisclosedClaim] = field(repr=False, compare=False)

    def disclosable_paths(self) -> tuple[ClaimPath, ...]:
        """The paths of every selectively disclosable claim, in the issuer's order."""
        return tuple(entry.path for entry in self.disclosures)


def parse_issued(token: str, *, max_length: int = MAX_LENGTH) -> HeldSdJwt:
    """The credential in issued SD-JWT ``token``, organised for presenting.

    Checks the structure (RFC 9901 §7.1 steps 3-5) but NOT the issuer's signature: call
    ``verify_issued`` first. Raises ``KbUnexpected`` for an SD-JWT+KB (an issuer sends none,
    §7.2), the ``parse_compact``/``process_disclosures`` errors, and ``jws.bad_key`` for a
    malformed ``cnf.jwk``.
    """
    parts = parse_compact(token, max_length=max_length)
    if parts.kb_jwt is not None:
        raise KbUnexpected("RFC 9901 §7.2: an issued SD-JWT has no KB-JWT")
    payload = parse_jws(parts.issuer_jwt, "Issuer-signed JWT").payload
    hash_alg = sd_alg_of(payload)
    by_digest = index_disclosures(parts.disclosures, hash_alg)
    processed = process_disclosures(payload, by_digest)
    rank = {text: i for i, text in enumerate(parts.disclosures)}
    ordered = sorted(processed.disclosed, key=lambda entry: rank[entry.disclosure.encoded])
    holder_key = holder_key_of(processed.claims) if "cnf" in processed.claims else None
    by_name: dict[str, list[DisclosedClaim]] = {}
    for entry in ordered:
        by_name.setdefault(str(entry.path[0]), []).append(entry)
    return HeldSdJwt(
        parts.issuer_jwt, hash_alg, processed.claims, tuple(ordered), holder_key,
        {name: tuple(entries) for name, entries in by_name.items()},
        {entry.disclosure.digest: entry for entry in ordered},
    )


def _related(concrete: ClaimPath, wanted: ClaimPath) -> bool:
    """Whether one path lies on the other's way: ancestor, itself or descendant (``None`` in
    ``wanted`` matches any index)."""
    for mine, theirs in zip(concrete, wanted, strict=False):
        if theirs is None:
            if type(mine) is not int:
                return False
        elif type(mine) is not type(theirs) or mine != theirs:
            return False
    return True


def select_disclosures(held: HeldSdJwt, paths: Iterable[Sequence[Any]]) -> tuple[str, ...]:
    """The disclosures to send so that the claims at ``paths`` are shown, in the issuer's
    order and each once (RFC 9901 §7.2): the claim's own disclosure, those of everything
    inside it, and those of its ancestors (a child disclosure needs its parent).

    Raises ``BadClaims`` for a malformed path and ``NoSuchClaim`` for a path that names
    nothing in the credential.
    """
    chosen: set[str] = set()
    for raw in paths:
        if type(raw) is tuple and len(raw) == 1 and type(raw[0]) is str:
            path: ClaimPath = raw  # a top-level name, the common case: no need for the parser
            if path[0] not in held.claims:
                raise NoSuchClaim("OpenID4VP 1.0 §7.1", name=path[0])
        elif isinstance(raw, str | bytes):
            raise BadClaims("OpenID4VP 1.0 §7: a claim path is a list, not a string")
        else:
            path = parse_claim_path(list(raw), fail=BadClaims)
            if not select(path, held.claims):
                raise NoSuchClaim("OpenID4VP 1.0 §7.1", name=path_text(path))
        for entry in held.by_name.get(str(path[0]), ()):
            if len(path) == 1 or _related(entry.path, path):
                digest: str | None = entry.disclosure.digest
                while digest is not None and digest not in chosen:
                    chosen.add(digest)
                    digest = held.by_digest[digest].parent
    return tuple(e.disclosure.encoded for e in held.disclosures if e.disclosure.digest in chosen)


def present_sd_jwt(
    held: HeldSdJwt, *, disclose: Iterable[Sequence[Any]],
    holder_key: SigningKey | None = None, nonce: str | None = None, aud: str | None = None,
    now: int | None = None,
) -> str:
    """The presentation of ``held`` showing the claims at ``disclose``.

    Without ``nonce`` and ``aud`` it is an SD-JWT (ending in ``~``). With them it is an
    SD-JWT+KB whose KB-JWT, signed by ``holder_key`` at time ``now``, covers exactly the
    string sent (RFC 9901 §4.3, §7.2). Raises ``BadClaims`` when only some of the key binding
    arguments are given, ``NoHolderKey``/``WrongHolderKey`` when ``holder_key`` is not the key
    the credential is bound to, and the ``select_disclosures`` errors.
    """
    chosen = select_disclosures(held, disclose)
    prefix = held.issuer_jwt + "~" + "".join(text + "~" for text in chosen)
    binding = (holder_key, nonce, aud, now)
    if all(part is None for part in binding):
        return prefix
    if holder_key is None or nonce is None or aud is None or now is None:
        raise BadClaims("RFC 9901 §4.3: key binding needs the holder key, nonce, aud and time")
    if type(nonce) is not str or type(aud) is not str or not nonce or not aud:
        raise BadClaims("RFC 9901 §4.3: 'nonce' and 'aud' are non-empty strings")
    bound = held.holder_key if held.holder_key is not None else holder_key_of({})
    if bound.public_bytes() != holder_key.public.public_bytes():
        raise WrongHolderKey("RFC 9901 §4.1.2: the KB-JWT must be signed with the 'cnf' key")
    kb_jwt = prove_key_binding(
        prefix, holder_key=holder_key, nonce=nonce, aud=aud, now=now, hash_alg=held.hash_alg
    )
    return prefix + kb_jwt
