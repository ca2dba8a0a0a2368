"""Hypothesis: the SD-JWT parsers and the verifier raise nothing but coded KluisErrors on
random, mutated and hostile (even validly signed) input, and no change to any character of a
signed part of a presentation is ever accepted."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.disclosure import format_disclosure, parse_disclosure
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, b64url_encode, generate_signing_key, parse_jwk, sign_jws
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import parse_sd_jwt
from verifiers.verifier import IssuerKeyMap, Policy, verify_sd_jwt

NOW = 1_800_000_000
ISS = "https://issuer.example"
ISSUER = generate_signing_key(Alg.ES256)
HOLDER = generate_signing_key(Alg.EDDSA)
KEYS = IssuerKeyMap.of({ISS: ISSUER.public})
BINDING = KeyBinding("n-1", "x509_hash:YQ")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

_ISSUED = issue_sd_jwt(
    {"given_name": "Erika", "address": {"locality": "Utrecht", "zip": "3511"}, "nat": ["NL", "DE"]},
    issuer_key=ISSUER,
    iss=ISS,
    vct="urn:kluis:pid:1",
    now=NOW - 10,
    exp=NOW + 3600,
    holder_key=HOLDER.public,
    disclosable=[("given_name",), ("address",), ("address", "zip"), ("nat", None)],
    decoys=2,
)
_HELD = parse_issued(_ISSUED)
BOUND = present_sd_jwt(
    _HELD,
    disclose=[("address", "zip"), ("nat", 1), ("given_name",)],
    holder_key=HOLDER,
    nonce=BINDING.nonce,
    aud=BINDING.aud,
    now=NOW,
)
UNBOUND = present_sd_jwt(_HELD, disclose=[("address", "zip"), ("nat", 0)])


def _verify(token: Any, key_binding: KeyBinding | None = BINDING) -> Any:
    return verify_sd_jwt(token, issuer_keys=KEYS, now=NOW + 5, key_binding=key_binding)


def test_the_untouched_presentations_verify() -> None:
    assert _verify(BOUND).claims["address"] == {"locality": "Utrecht", "zip": "3511"}
    assert _verify(UNBOUND, None).claims["nat"] == ["NL"]


def _only_kluis_errors(call: Any) -> None:
    try:
        call()
    except KluisError as error:
        assert error.code, type(error)


@settings(max_examples=300)
@given(st.text(max_size=300))
@example("~")
@example("a.b.c~")
@example("e30.e30.~")
@example("e30.e30.AA~~")
@example("~~~~")
def test_random_text_only_raises_kluis_errors(text: str) -> None:
    _only_kluis_errors(lambda: _verify(text))
    _only_kluis_errors(lambda: _verify(text, None))
    _only_kluis_errors(lambda: parse_sd_jwt(text))
    _only_kluis_errors(lambda: parse_issued(text))
    _only_kluis_errors(lambda: parse_disclosure(text))


MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "swap"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from(ALPHABET + '=+/ é{}"\\\x00'),
)


def _mutate(token: str, steps: list[tuple[str, int, int, str]]) -> str:
    for kind, a, b, char in steps:
        if not token:
            break
        i = a % len(token)
        if kind == "replace":
            token = token[:i] + char + token[i + 1 :]
        elif kind == "insert":
            token = token[:i] + char + token[i:]
        elif kind == "delete":
            token = token[:i] + token[i + 1 :]
        else:
            parts = token.split("~")
            x, y = a % len(parts), b % len(parts)
            parts[x], parts[y] = parts[y], parts[x]
            token = "~".join(parts)
    return token


@settings(max_examples=300)
@given(st.sampled_from([BOUND, UNBOUND]), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_presentations_only_raise_kluis_errors(token: str, steps: Any) -> None:
    mutated = _mutate(token, steps)
    _only_kluis_errors(lambda: _verify(mutated))
    _only_kluis_errors(lambda: _verify(mutated, None))
    _only_kluis_errors(lambda: parse_sd_jwt(mutated))


@settings(max_examples=500)
@given(
    st.sampled_from([(BOUND, BINDING), (UNBOUND, None)]),
    st.integers(0, 10**6),
    st.sampled_from(ALPHABET + "=é "),
)
def test_no_changed_character_is_accepted(
    case: tuple[str, KeyBinding | None], where: int, char: str
) -> None:
    token, binding = case
    i = where % len(token)
    assume(token[i] != char)
    changed = token[:i] + char + token[i + 1 :]
    try:
        _verify(changed, binding)
    except KluisError:
        return
    raise AssertionError(f"a change at {i} ({token[i]!r} -> {char!r}) was accepted")


def test_every_position_changed_is_refused() -> None:
    """Exhaustive companion of the property above: each character, changed to its neighbour
    in the base64url alphabet (so it stays well-formed where it can), is refused."""
    for token, binding in ((BOUND, BINDING), (UNBOUND, None)):
        for i, char in enumerate(token):
            changed = (
                token[:i] + ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)] + token[i + 1 :]
            )
            try:
                _verify(changed, binding)
            except KluisError:
                continue
            raise AssertionError(f"a change at {i} of {len(token)} was accepted")


@settings(max_examples=100)
@given(
    st.sampled_from(
        [(BOUND, BINDING, "drop"), (BOUND, BINDING, "repeat"), (UNBOUND, None, "repeat")]
    ),
    st.data(),
)
def test_no_dropped_or_repeated_part_is_accepted(
    case: tuple[str, KeyBinding | None, str], data: Any
) -> None:
    """Dropping a disclosure is the holder's right, so only a KB-JWT (sd_hash) can catch it;
    a repeated disclosure is always refused."""
    token, binding, action = case
    parts = token.split("~")
    index = data.draw(st.integers(1, len(parts) - 2))
    if action == "drop":
        del parts[index]
    else:
        parts.insert(index, parts[index])
    try:
        _verify("~".join(parts), binding)
    except KluisError:
        return
    raise AssertionError(f"{action} of part {index} was accepted")


# --- hostile content under a valid issuer signature ---

NAMES = st.sampled_from(
    [
        "_sd",
        "...",
        "_sd_alg",
        "iss",
        "exp",
        "nbf",
        "iat",
        "vct",
        "cnf",
        "status",
        "aka_vcts",
        "a",
        "b",
        "jwk",
        "kty",
        "crv",
        "x",
        "y",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["EC", "P-256", "OKP", "Ed25519", "sha-256", ISS])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=5),
    max_leaves=25,
)


def _hostile(data: Any) -> str:
    disclosures = []
    digests = []
    for _ in range(data.draw(st.integers(0, 4))):
        name = data.draw(st.none() | NAMES)
        made = format_disclosure(
            data.draw(st.text(ALPHABET, min_size=1, max_size=4)), name, data.draw(JSON)
        )
        disclosures.append(made.encoded)
        digests.append(made.digest)
    if data.draw(st.booleans()):
        disclosures.append(b64url_encode(json.dumps(data.draw(JSON)).encode()))
    payload = data.draw(
        st.dictionaries(NAMES, JSON | st.lists(st.sampled_from(digests or ["d"])), max_size=8)
    )
    payload.setdefault("iss", ISS)
    if digests and data.draw(st.booleans()):
        payload["_sd"] = data.draw(st.lists(st.sampled_from(digests), max_size=6))
    if digests and data.draw(st.booleans()):
        payload["a"] = [
            {"...": d} for d in data.draw(st.lists(st.sampled_from(digests), max_size=4))
        ]
    header = {"alg": "ES256", "typ": data.draw(st.sampled_from(["dc+sd-jwt", "JWT"]))}
    jwt = sign_jws(header, payload, ISSUER)
    return jwt + "~" + "".join(d + "~" for d in disclosures)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_signed_hostile_content_only_raises_kluis_errors(data: Any) -> None:
    token = _hostile(data)
    lax = Policy(require_exp=False, require_vct=False)
    _only_kluis_errors(
        lambda: verify_sd_jwt(token, issuer_keys=KEYS, now=NOW, key_binding=None, policy=lax)
    )
    _only_kluis_errors(
        lambda: verify_sd_jwt(
            token + "x.y.z", issuer_keys=KEYS, now=NOW, key_binding=BINDING, policy=lax
        )
    )
    _only_kluis_errors(lambda: parse_issued(token))


@settings(max_examples=150)
@given(st.dictionaries(NAMES, JSON, max_size=6) | JSON)
def test_random_jwks_only_raise_kluis_errors(jwk: Any) -> None:
    _only_kluis_errors(lambda: parse_jwk(jwk))
