"""The published SD-JWT examples (RFC 9901, SD-JWT VC draft-18, OpenID4VP 1.0 B.3): verified
with their published keys, and re-issued byte for byte through the issuer's private seam.

The examples carry the ``typ`` values and timestamps of their time (``example+sd-jwt``, no
``vct`` in plain SD-JWTs, KB-JWTs from 2025-2026), so they are verified under an explicit,
test-only relaxed ``Policy`` and with ``now`` set to the KB-JWT's own ``iat``: the defaults stay
strict. ECDSA signatures are never compared as bytes (they are randomised); they are verified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verifiers.disclosure import digest_of, parse_disclosure
from verifiers.holder import parse_issued
from verifiers.issuer import _pack, issue_sd_jwt, sign_sd_jwt
from verifiers.jws import (
    Alg,
    b64url_decode,
    format_jwk,
    generate_signing_key,
    parse_jwk,
    verify_jws,
)
from verifiers.keybinding import KeyBinding, check_key_binding, holder_key_of
from verifiers.sdjwt import index_disclosures, parse_compact, process_disclosures
from verifiers.verifier import IssuerKeyMap, Policy, verify_issued, verify_sd_jwt

RFC = "sdjwt/rfc9901"
VC = "sdjwt/sd-jwt-vc-18"
WITH_ISS = [
    f"{RFC}/section5_example.json",
    f"{RFC}/appendixA1_simple_structured.json",
    f"{RFC}/appendixA2_complex_structured.json",
    f"{RFC}/appendixA3_sd_jwt_vc_pid.json",
    f"{VC}/example01_identity_credential_kb.json",
    f"{VC}/example02_presentation_without_kb.json",
    f"{VC}/exampleA1_pid_kb.json",
]
# A.4 is a W3C VCDM payload: it names its issuer in 'issuer', not 'iss', and kluis finds issuer
# keys by 'iss', so it is checked piece by piece (test_vcdm_example_piece_by_piece).
A4 = f"{RFC}/appendixA4_w3c_vcdm2.json"
WITH_JWT = [*WITH_ISS, A4]
SECTION6 = [
    f"{RFC}/section6_1_flat.json",
    f"{RFC}/section6_2_structured.json",
    f"{RFC}/section6_2_structured_one_open.json",
    f"{RFC}/section6_3_recursive.json",
]
# Re-issued through the public issue_sd_jwt (SD-JWT VCs) or the private _pack (plain SD-JWTs).
VC_REISSUE = [
    f"{RFC}/appendixA3_sd_jwt_vc_pid.json",
    f"{VC}/example01_identity_credential_kb.json",
    f"{VC}/exampleA1_pid_kb.json",
]
PLAIN_REISSUE = [
    f"{RFC}/section5_example.json",
    f"{RFC}/appendixA1_simple_structured.json",
    f"{RFC}/appendixA2_complex_structured.json",
    f"{RFC}/appendixA4_w3c_vcdm2.json",
    *SECTION6,
]


def _load(vectors: Path, name: str) -> dict[str, Any]:
    return json.loads((vectors / name).read_text())


def _policy(header: dict[str, Any]) -> Policy:
    """Test-only: the example's own typ, and no exp/vct demanded of plain SD-JWT examples."""
    return Policy(accepted_typ=frozenset({header["typ"]}), require_exp=False, require_vct=False)


def _keys(example: dict[str, Any], iss: Any) -> IssuerKeyMap:
    return IssuerKeyMap.of(
        {iss: parse_jwk({k: v for k, v in example["issuer_public_jwk"].items()})}
    )


def _payload_of(jwt: str) -> dict[str, Any]:
    return json.loads(b64url_decode(jwt.split(".")[1]))


@pytest.mark.parametrize("name", WITH_JWT)
def test_issuer_signature_and_payload(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    jws = verify_jws(example["issuer_signed_jwt"], parse_jwk(example["issuer_public_jwk"]))
    assert jws.payload == example["sd_jwt_payload"]
    assert jws.header == example["issuer_signed_jwt_header"]


@pytest.mark.parametrize("name", WITH_JWT + SECTION6)
def test_every_disclosure_digest(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    for item in example.get("disclosures", []):
        parsed = parse_disclosure(item["disclosure"])
        assert parsed.digest == item["digest"] == digest_of(item["disclosure"])
        expected = (
            [parsed.salt, parsed.value]
            if parsed.name is None
            else [parsed.salt, parsed.name, parsed.value]
        )
        assert expected == item["contents"] and parsed.name == item["claim"]


@pytest.mark.parametrize("name", WITH_ISS)
def test_presentation_verifies_to_the_processed_payload(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    shown = example["presentation"]
    header = example["issuer_signed_jwt_header"]
    iss = example["sd_jwt_payload"].get("iss")
    binding, now = None, example["sd_jwt_payload"].get("iat", 1683000000)
    if shown.get("kb_jwt"):
        binding = KeyBinding(shown["nonce"], shown["aud"])
        now = _payload_of(shown["kb_jwt"])["iat"]
    verified = verify_sd_jwt(
        shown["compact"],
        issuer_keys=_keys(example, iss),
        now=now,
        key_binding=binding,
        policy=_policy(header),
    )
    assert verified.claims == example["processed_payload"]
    assert verified.key_bound is (binding is not None)


@pytest.mark.parametrize("name", [n for n in WITH_ISS if "example02" not in n])
def test_issued_form_processes_to_the_user_claims(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    iss = example["sd_jwt_payload"].get("iss")
    issued = example.get("sd_jwt") or example["issuer_signed_jwt"] + "~" + "".join(
        d["disclosure"] + "~" for d in example["disclosures"]
    )
    verified = verify_issued(
        issued,
        issuer_keys=_keys(example, iss),
        now=example["sd_jwt_payload"].get("iat", 0),
        policy=_policy(example["issuer_signed_jwt_header"]),
    )
    for key, value in example["user_claims"].items():
        assert verified.claims[key] == value, key
    assert len(parse_issued(issued).disclosures) == len(example["disclosures"])


@pytest.mark.parametrize("name", SECTION6)
def test_section6_payloads_process_to_the_user_claims(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    by_digest = index_disclosures([d["disclosure"] for d in example["disclosures"]], "sha-256")
    claims = process_disclosures(example["sd_jwt_payload"], by_digest).claims
    for key, value in example["user_claims"].items():
        assert claims[key] == value, key


def test_vcdm_example_piece_by_piece(vectors: Path) -> None:
    example = _load(vectors, A4)
    shown = example["presentation"]
    parts = parse_compact(shown["compact"])
    jws = verify_jws(parts.issuer_jwt, parse_jwk(example["issuer_public_jwk"]))
    processed = process_disclosures(jws.payload, index_disclosures(parts.disclosures, "sha-256"))
    assert processed.claims == example["processed_payload"]
    assert parts.kb_jwt is not None
    check_key_binding(
        parts.kb_jwt,
        signed_prefix=parts.signed_prefix,
        holder_key=holder_key_of(processed.claims),
        expected=KeyBinding(shown["nonce"], shown["aud"]),
        now=_payload_of(parts.kb_jwt)["iat"],
        hash_alg="sha-256",
    )
    with pytest.raises(Exception) as caught:
        verify_sd_jwt(
            shown["compact"],
            issuer_keys=_keys(example, None),
            now=0,
            key_binding=None,
            policy=_policy(example["issuer_signed_jwt_header"]),
        )
    assert getattr(caught.value, "code", None) == "sdjwt.kb_unexpected"


def test_openid4vp_presentation(vectors: Path) -> None:
    example = _load(vectors, "openid4vp/sd_jwt_vcld_01_vector.json")
    verified = verify_sd_jwt(
        example["presentation"],
        issuer_keys=_keys(example, example["sd_jwt_payload"]["iss"]),
        now=example["kb_jwt_iat"],
        key_binding=KeyBinding(example["expected_nonce"], example["expected_aud"]),
    )
    assert verified.claims == example["processed_payload"]
    expected = json.loads(
        (vectors / "openid4vp/examples/sd_jwt_vcld/01/verified_contents.json").read_text()
    )
    assert verified.claims == expected


def test_openid4vp_presentation_is_bound_to_its_nonce(vectors: Path) -> None:
    example = _load(vectors, "openid4vp/sd_jwt_vcld_01_vector.json")
    with pytest.raises(Exception) as caught:
        verify_sd_jwt(
            example["presentation"],
            issuer_keys=_keys(example, example["sd_jwt_payload"]["iss"]),
            now=example["kb_jwt_iat"],
            key_binding=KeyBinding("0987654321", example["expected_aud"]),
        )
    assert getattr(caught.value, "code", None) == "sdjwt.kb_wrong_nonce"


@pytest.mark.parametrize("form", ["section8_2_json_flattened", "section8_3_json_general"])
def test_json_serialization_examples_as_compact(vectors: Path, form: str) -> None:
    """kluis reads the compact form only; RFC 9901 §8.1 defines sd_hash over the compact form
    rebuilt from the JSON one, so the §8 examples verify once rebuilt."""
    example = _load(vectors, f"{RFC}/{form}.json")
    keys = _load(vectors, f"{RFC}/keys.json")
    doc = example["sd_jwt_kb_json"]
    signatures = doc.get("signatures") or [doc]
    unprotected = signatures[0]["header"]
    jwt = f"{signatures[0]['protected']}.{doc['payload']}.{signatures[0]['signature']}"
    compact = (
        jwt + "~" + "".join(d + "~" for d in unprotected["disclosures"]) + unprotected["kb_jwt"]
    )
    shown = example["presentation_kb"]
    verified = verify_sd_jwt(
        compact,
        issuer_keys=IssuerKeyMap.of(
            {"https://issuer.example.com": parse_jwk(keys["issuer_public_jwk"])}
        ),
        now=shown["kb_jwt_payload"]["iat"],
        key_binding=KeyBinding(shown["nonce"], shown["aud"]),
        policy=_policy(json.loads(b64url_decode(signatures[0]["protected"]))),
    )
    assert {verified.claims[k] for k in ("given_name", "family_name")} == {"John", "Doe"}
    if len(signatures) == 2:  # the General form's second signer
        second = f"{signatures[1]['protected']}.{doc['payload']}.{signatures[1]['signature']}"
        assert verify_jws(
            second, parse_jwk(keys["issuer_key_2_public_jwk"])
        ).payload == _payload_of(jwt)


# --- re-issuing the examples byte for byte (payload, header and disclosures) ---


def _disclosed_paths(example: dict[str, Any]) -> list[tuple[Any, ...]]:
    by_digest = index_disclosures([d["disclosure"] for d in example["disclosures"]], "sha-256")
    processed = process_disclosures(example["sd_jwt_payload"], by_digest)
    order = [d["disclosure"] for d in example["disclosures"]]
    return [
        e.path for e in sorted(processed.disclosed, key=lambda e: order.index(e.disclosure.encoded))
    ]


def _decoys_by_path(
    node: Any, decoys: set[str], path: tuple[Any, ...] = ()
) -> dict[Any, list[str]]:
    found: dict[Any, list[str]] = {}
    if isinstance(node, dict):
        mine = [d for d in node.get("_sd", []) if d in decoys]
        if mine:
            found[path] = mine
        for key, value in node.items():
            found.update(_decoys_by_path(value, decoys, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.update(_decoys_by_path(value, decoys, (*path, index)))
    return found


@pytest.mark.parametrize("name", PLAIN_REISSUE)
def test_reissue_plain_examples(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    target = example["sd_jwt_payload"]
    registered = {k: target[k] for k in ("iss", "iat", "exp") if k in target}
    claims = {**registered, **example["user_claims"]}
    salts = iter([d["contents"][0] for d in example["disclosures"]])
    decoys = _decoys_by_path(target, set(example.get("decoy_digests") or []))
    payload, disclosures = _pack(
        claims, _disclosed_paths(example), salts=salts, decoy_digests=decoys
    )
    payload["_sd_alg"] = "sha-256"
    if "cnf" in target:
        payload["cnf"] = {"jwk": format_jwk(parse_jwk(target["cnf"]["jwk"]))}
    assert [d.encoded for d in disclosures] == [d["disclosure"] for d in example["disclosures"]]
    assert payload == target
    if "issuer_signed_jwt" in example:
        key = generate_signing_key(Alg.ES256)
        token = sign_sd_jwt(
            payload, disclosures, key, typ=example["issuer_signed_jwt_header"]["typ"]
        )
        ours, theirs = token.split("~")[0].split("."), example["issuer_signed_jwt"].split(".")
        assert ours[:2] == theirs[:2]  # header and payload bytes; the signature is verified
        verify_jws(token.split("~")[0], key.public)


@pytest.mark.parametrize("name", VC_REISSUE)
def test_reissue_sd_jwt_vc_examples(vectors: Path, name: str) -> None:
    example = _load(vectors, name)
    target = example["sd_jwt_payload"]
    header = example["issuer_signed_jwt_header"]
    key = generate_signing_key(Alg.ES256, kid=header.get("kid"))
    claims = {k: v for k, v in example["user_claims"].items() if k not in ("iss", "vct")}
    token = issue_sd_jwt(
        claims,
        issuer_key=key,
        iss=target["iss"],
        vct=target["vct"],
        now=target["iat"],
        exp=target["exp"],
        holder_key=parse_jwk(target["cnf"]["jwk"]),
        disclosable=_disclosed_paths(example),
        _salts=iter([d["contents"][0] for d in example["disclosures"]]),
    )
    parts = parse_compact(token)
    assert parts.issuer_jwt.split(".")[:2] == example["issuer_signed_jwt"].split(".")[:2]
    assert list(parts.disclosures) == [d["disclosure"] for d in example["disclosures"]]
    if "sd_jwt" in example:
        assert token.split("~")[1:] == example["sd_jwt"].split("~")[1:]
    verify_jws(parts.issuer_jwt, key.public)
