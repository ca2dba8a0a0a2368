"""verifiers.issuer: what an issued SD-JWT VC contains, what the issuer refuses, and that
processing every disclosure gives back exactly the claims put in (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import KluisError
from verifiers.disclosure import parse_disclosure
from verifiers.issuer import _pack, issue_sd_jwt
from verifiers.jws import Alg, b64url_decode, generate_signing_key, verify_jws
from verifiers.sdjwt import NEVER_DISCLOSABLE, index_disclosures, parse_compact, process_disclosures

NOW = 1_800_000_000
KEY = generate_signing_key(Alg.ES256, kid="issuer-1")
HOLDER = generate_signing_key(Alg.EDDSA)
CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "address": {"street_address": "Heidestraat 17", "locality": "Utrecht"},
    "nationalities": ["NL", "DE"],
}


def _issue(claims: dict[str, Any] = CLAIMS, **kwargs: Any) -> str:
    options: dict[str, Any] = {
        "issuer_key": KEY,
        "iss": "https://issuer.example",
        "vct": "urn:kluis:pid:1",
        "now": NOW,
        "exp": NOW + 3600,
    }
    options.update(kwargs)
    return issue_sd_jwt(claims, **options)


def _open(token: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    parts = parse_compact(token)
    jws = verify_jws(parts.issuer_jwt, KEY.public)
    return jws.header, jws.payload, list(parts.disclosures)


def _processed(token: str) -> dict[str, Any]:
    _, payload, disclosures = _open(token)
    return process_disclosures(payload, index_disclosures(disclosures, "sha-256")).claims


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


def test_header_and_registered_claims() -> None:
    status = {"status_list": {"idx": 7, "uri": "https://issuer.example/status/1"}}
    token = _issue(holder_key=HOLDER.public, nbf=NOW, status=status)
    assert token.endswith("~")
    header, payload, disclosures = _open(token)
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-1"}
    assert list(payload)[:7] == ["_sd", "iss", "iat", "nbf", "exp", "vct", "status"]
    assert payload["iat"] == NOW and payload["exp"] == NOW + 3600 and payload["status"] == status
    assert payload["_sd_alg"] == "sha-256"
    assert payload["cnf"] == {
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": payload["cnf"]["jwk"]["x"]}
    }
    assert len(disclosures) == 4 and not set(CLAIMS) & set(payload)


def test_every_top_level_claim_is_disclosable_by_default() -> None:
    claims = _processed(_issue())
    assert {k: claims[k] for k in CLAIMS} == CLAIMS


def test_plain_claims_stay_in_the_payload() -> None:
    _, payload, disclosures = _open(_issue(disclosable=[("given_name",)]))
    assert payload["family_name"] == "Mustermann" and payload["address"] == CLAIMS["address"]
    assert [parse_disclosure(d).name for d in disclosures] == ["given_name"]


def test_nested_and_recursive_disclosures() -> None:
    token = _issue(disclosable=[("address",), ("address", "locality"), ("nationalities", 1)])
    _, payload, disclosures = _open(token)
    parsed = {parse_disclosure(d).name: parse_disclosure(d) for d in disclosures}
    assert set(parsed["address"].value) == {"_sd", "street_address"}
    assert payload["nationalities"][0] == "NL" and set(payload["nationalities"][1]) == {"..."}
    assert {k: v for k, v in _processed(token).items() if k in CLAIMS} == CLAIMS


def test_every_element_and_one_element_paths_merge() -> None:
    claims = {"degrees": [{"type": "BSc", "year": 2010}, {"type": "MSc", "year": 2012}]}
    token = _issue(claims, disclosable=[("degrees", None), ("degrees", 0, "year")])
    _, payload, disclosures = _open(token)
    assert all(set(item) == {"..."} for item in payload["degrees"])
    assert len(disclosures) == 3
    assert _processed(token)["degrees"] == claims["degrees"]


def test_salts_are_fresh_for_every_claim() -> None:
    claims = {"a": {"x": 1}, "b": {"x": 1}, "c": [1, 1, 1]}
    token = _issue(claims, disclosable=[("a", "x"), ("b", "x"), ("c", None), ("a",), ("b",)])
    salts = [parse_disclosure(d).salt for d in _open(token)[2]]
    assert len(salts) == 7 == len(set(salts))


def test_digests_are_sorted_and_decoys_added() -> None:
    seen = set()
    for _ in range(20):
        _, payload, disclosures = _open(
            _issue(decoys=4, disclosable=[("given_name",), ("nationalities", 0)])
        )
        digests = payload["_sd"]
        assert digests == sorted(digests)
        real = {parse_disclosure(d).digest for d in disclosures}
        seen.add(len(digests) - 1)
        assert len(payload["nationalities"]) >= 2 and real <= set(digests) | {
            item["..."] for item in payload["nationalities"] if isinstance(item, dict)
        }
    assert seen <= set(range(5)) and len(seen) > 1  # a random number of decoys, 0..4


def test_no_decoys_unless_asked() -> None:
    _, payload, _ = _open(_issue(disclosable=[("given_name",)]))
    assert len(payload["_sd"]) == 1


@pytest.mark.parametrize("name", sorted(NEVER_DISCLOSABLE - {"_sd_alg"}))
def test_validity_claims_are_never_disclosable(name: str) -> None:
    claims = {name: "x"} if name not in ("iss", "nbf", "exp", "cnf", "vct", "status") else {}
    code = _code(lambda: _issue({**CLAIMS, **claims}, disclosable=[(name,)]))
    assert code == "sdjwt.claim_not_disclosable"


def test_sub_claims_of_status_are_never_disclosable() -> None:
    assert (
        _code(lambda: _issue(disclosable=[("status", "status_list")]))
        == "sdjwt.claim_not_disclosable"
    )


@pytest.mark.parametrize("name", ["iss", "iat", "nbf", "exp", "vct", "cnf", "status"])
def test_claims_the_issuer_sets_are_refused(name: str) -> None:
    assert _code(lambda: _issue({**CLAIMS, name: 1})) == "sdjwt.claim_reserved"


@pytest.mark.parametrize(
    "claims",
    [
        {"a": {"_sd": []}},
        {"a": [{"...": "x"}]},
        {"_sd_alg": "sha-256"},
        {"a": {"b": {"_sd_alg": 1}}},
    ],
    ids=["nested-_sd", "dots-in-array", "top-_sd_alg", "deep-_sd_alg"],
)
def test_sd_jwt_names_are_refused_in_claims(claims: dict[str, Any]) -> None:
    assert _code(lambda: _issue(claims, disclosable=[])) == "sdjwt.claim_reserved"
    assert _code(lambda: _issue(claims)) == "sdjwt.claim_reserved"


@pytest.mark.parametrize(
    ("claims", "disclosable", "code"),
    [
        (CLAIMS, [("middle_name",)], "sdjwt.no_such_claim"),
        (CLAIMS, [("address", "country")], "sdjwt.no_such_claim"),
        (CLAIMS, [("given_name", "x")], "sdjwt.no_such_claim"),
        (CLAIMS, ["given_name"], "sdjwt.bad_claims"),
        (CLAIMS, [()], "sdjwt.bad_claims"),
        (CLAIMS, [(0,)], "sdjwt.bad_claims"),
        (CLAIMS, [("nationalities", -1)], "sdjwt.bad_claims"),
        ({"a": float("nan")}, None, "sdjwt.bad_claims"),
        ({"a": {1: "x"}}, None, "sdjwt.bad_claims"),
        ({"a": object()}, None, "sdjwt.bad_claims"),
        ({"a": {"b": {2, 3}}}, [("a",)], "sdjwt.bad_claims"),
    ],
    ids=[
        "unknown",
        "unknown-nested",
        "below-scalar",
        "string-not-path",
        "empty-path",
        "index-first",
        "negative-index",
        "nan",
        "int-key",
        "object",
        "set",
    ],
)
def test_bad_input_is_refused(claims: Any, disclosable: Any, code: str) -> None:
    assert _code(lambda: _issue(claims, disclosable=disclosable)) == code


@pytest.mark.parametrize(
    "options",
    [
        {"exp": NOW},
        {"exp": NOW - 1},
        {"now": -1},
        {"exp": "soon"},
        {"nbf": NOW + 7200},
        {"iss": ""},
        {"vct": None},
        {"hash_alg": "md5"},
        {"decoys": -1},
        {"status": "revoked"},
    ],
    ids=[
        "exp-now",
        "exp-past",
        "negative-now",
        "exp-text",
        "nbf-after-exp",
        "empty-iss",
        "no-vct",
        "bad-hash",
        "negative-decoys",
        "status-text",
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any]) -> None:
    assert _code(lambda: _issue(**options)) == "sdjwt.bad_claims"


def test_eddsa_issuer() -> None:
    key = generate_signing_key(Alg.EDDSA)
    parts = parse_compact(_issue(issuer_key=key))
    assert verify_jws(parts.issuer_jwt, key.public).header["alg"] == "EdDSA"


def test_private_seam_fixes_salts_and_decoys() -> None:
    payload, disclosures = _pack(
        {"a": 1, "b": {"c": 2}},
        [("a",), ("b", "c")],
        salts=iter(["s1", "s2"]),
        decoy_digests={(): ["D0"], ("b",): ["D1", "D2"]},
    )
    assert [json.loads(b64url_decode(d.encoded)) for d in disclosures] == [
        ["s1", "a", 1],
        ["s2", "c", 2],
    ]
    assert "D0" in payload["_sd"] and payload["b"]["_sd"] == sorted(
        ["D1", "D2", disclosures[1].digest]
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(st.characters(codec="utf-8"), min_size=1, max_size=6).filter(
                lambda k: k not in ("_sd", "...", "_sd_alg")
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), JSON, max_size=4), st.data())
def test_processing_every_disclosure_gives_back_the_claims(
    claims: dict[str, Any], data: Any
) -> None:
    paths = _paths(claims)
    chosen = data.draw(st.lists(st.sampled_from(paths), unique=True) if paths else st.just([]))
    payload, disclosures = _pack(claims, chosen, decoys=data.draw(st.integers(0, 3)))
    by_digest = {d.digest: parse_disclosure(d.encoded) for d in disclosures}
    assert process_disclosures(payload, by_digest).claims == claims
