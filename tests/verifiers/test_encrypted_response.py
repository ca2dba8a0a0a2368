"""Encrypted responses (direct_post.jwt): sealed by the wallet to the request's ephemeral key,
opened by the verifier; the HAIP profile only (ECDH-ES on P-256, A128GCM/A256GCM), and every
tamper, wrong key and header trick refused before or by decryption."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwe import JWE
from jwcrypto.jwk import JWK

from vault import KluisError
from verifiers.encrypted_response import (
    new_response_key,
    open_response,
    parse_response_key,
    response_kid,
    response_metadata,
    seal_response,
)

KEY = new_response_key()
PAYLOAD = {"vp_token": {"pid": ["eyJ...~"]}, "state": "wmo-2027-0001"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def _code(token: str, key: Any = KEY) -> str:
    with pytest.raises(KluisError) as caught:
        open_response(token, key)
    return caught.value.code


def _raw_jwe(header: dict[str, Any], plaintext: bytes, key: JWK = KEY.jwk) -> str:
    token = JWE(plaintext, protected=json.dumps(header))
    token.add_recipient(JWK(**key.export_public(as_dict=True)))
    return str(token.serialize(compact=True))


def test_the_metadata_offers_the_public_key_with_its_kid_and_both_encs() -> None:
    metadata = response_metadata(KEY)
    [jwk] = metadata["jwks"]["keys"]
    assert jwk["kid"] == KEY.kid and jwk["alg"] == "ECDH-ES" and jwk["use"] == "enc"
    assert jwk["crv"] == "P-256" and "d" not in jwk
    assert metadata["encrypted_response_enc_values_supported"] == ["A128GCM", "A256GCM"]


def test_a_sealed_response_opens_with_its_key_and_prefers_a256gcm() -> None:
    token = seal_response(PAYLOAD, response_metadata(KEY))
    header = _header(token)
    assert (header["alg"], header["enc"], header["kid"]) == ("ECDH-ES", "A256GCM", KEY.kid)
    assert response_kid(token) == KEY.kid
    assert open_response(token, KEY) == PAYLOAD


@pytest.mark.parametrize(("offered", "chosen"), [(["A128GCM"], "A128GCM"), (None, "A128GCM")])
def test_the_enc_follows_what_the_verifier_offers(offered: Any, chosen: str) -> None:
    metadata = response_metadata(KEY)
    if offered is None:
        del metadata["encrypted_response_enc_values_supported"]  # default A128GCM (§5.1)
    else:
        metadata["encrypted_response_enc_values_supported"] = offered
    token = seal_response(PAYLOAD, metadata)
    assert _header(token)["enc"] == chosen
    assert open_response(token, KEY) == PAYLOAD


@pytest.mark.parametrize("metadata", [
    None, {}, {"jwks": {"keys": []}},
    {"jwks": {"keys": [{**response_metadata(KEY)["jwks"]["keys"][0], "alg": "ECDH-ES+A128KW"}]}},
    {"jwks": {"keys": [{k: v for k, v in response_metadata(KEY)["jwks"]["keys"][0].items()
                        if k != "kid"}]}},
    {**response_metadata(KEY), "encrypted_response_enc_values_supported": ["A128CBC-HS256"]},
])
def test_a_verifier_without_a_haip_key_or_enc_gets_no_answer(metadata: Any) -> None:
    with pytest.raises(KluisError) as caught:
        seal_response(PAYLOAD, metadata)
    assert caught.value.code == "vp.unsupported_encryption"


def test_a_response_encrypted_to_another_key_with_the_same_kid_does_not_open() -> None:
    other = new_response_key()
    metadata = response_metadata(other)
    metadata["jwks"]["keys"][0]["kid"] = KEY.kid
    assert _code(seal_response(PAYLOAD, metadata)) == "vp.undecryptable"


def test_a_response_for_another_requests_key_is_refused() -> None:
    other = new_response_key()
    assert _code(seal_response(PAYLOAD, response_metadata(other))) == "vp.undecryptable"


@pytest.mark.parametrize("header", [
    {"alg": "ECDH-ES+A128KW", "enc": "A128GCM", "kid": KEY.kid},
    {"alg": "ECDH-ES", "enc": "A128CBC-HS256", "kid": KEY.kid},
    {"alg": "ECDH-ES", "enc": "A128GCM", "kid": KEY.kid, "zip": "DEF"},
    {"alg": "ECDH-ES", "enc": "A128GCM"},
], ids=["key-wrapping", "cbc", "compressed", "no-kid"])
def test_a_header_outside_the_profile_is_refused_unopened(header: dict[str, Any]) -> None:
    assert _code(_raw_jwe(header, b"{}")) == "vp.bad_jwe"


@pytest.mark.parametrize("text", ["", "a.b.c.d", "a.b.c.d.e.f", "%%%.a.b.c.d",
                                  _b64(b"[1]") + ".a.b.c.d"])
def test_text_that_is_not_a_compact_jwe_is_refused(text: str) -> None:
    assert _code(text) == "vp.bad_jwe"


@pytest.mark.parametrize("plaintext", [b"[1,2]", b"not json", b"\xff\xfe", b'{"a": NaN}'])
def test_a_payload_that_is_not_a_json_object_is_refused(plaintext: bytes) -> None:
    token = _raw_jwe({"alg": "ECDH-ES", "enc": "A128GCM", "kid": KEY.kid}, plaintext)
    assert _code(token) == "vp.bad_response"


TOKEN = seal_response(PAYLOAD, response_metadata(KEY))


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_any_changed_character_after_the_header_is_caught(data: st.DataObject) -> None:
    """The IV, ciphertext and tag: AES-GCM refuses any change (the key part is empty)."""
    start = TOKEN.index(".") + 2  # the encrypted key part is empty for ECDH-ES
    position = data.draw(st.integers(start, len(TOKEN) - 1))
    original = TOKEN[position]
    if original == ".":
        return
    replacement = data.draw(st.sampled_from([c for c in "AQgw_-" if c != original]))
    tampered = TOKEN[:position] + replacement + TOKEN[position + 1:]
    with pytest.raises(KluisError) as caught:
        open_response(tampered, KEY)
    assert caught.value.code in ("vp.undecryptable", "vp.bad_jwe")


def test_a_last_character_with_other_unused_bits_is_refused() -> None:
    """Base64url's last character may carry bits no byte uses; a spelling that differs only
    there decodes to the same bytes, so only a strict reading refuses it."""
    parts = TOKEN.split(".")
    for index in (2, 3, 4):  # IV, ciphertext, tag
        part = parts[index]
        if len(part) % 4 in (2, 3):
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            value = alphabet.index(part[-1]) | 1  # set the lowest, unused bit
            variant = [*parts]
            variant[index] = part[:-1] + alphabet[value]
            assert variant[index] != part
            assert _code(".".join(variant)) == "vp.bad_jwe"


def test_a_changed_protected_header_is_caught_by_the_tag() -> None:
    header = _header(TOKEN)
    header["epk"]["x"], header["epk"]["y"] = (
        new_response_key().public_jwk()["x"], new_response_key().public_jwk()["y"])
    rest = TOKEN.split(".", 1)[1]
    assert _code(_b64(json.dumps(header).encode()) + "." + rest) == "vp.undecryptable"


def test_a_stored_key_comes_back_whole_and_junk_is_refused() -> None:
    again = parse_response_key(KEY.private_json())
    assert again.kid == KEY.kid and open_response(TOKEN, again) == PAYLOAD
    for junk in ("", "{}", json.dumps(KEY.public_jwk())):
        with pytest.raises(KluisError) as caught:
            parse_response_key(junk)
        assert caught.value.code == "vp.bad_jwe"
