"""The kluis RFC 9421 profile: what a signature covers, and every way a request is refused."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import HTTPMessageSigner, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers.http_signature import (
    BadKey,
    BadSignature,
    DigestMismatch,
    HttpRequest,
    SignedBy,
    StaleSignature,
    UnknownKey,
    Unsigned,
    format_ed25519_jwk,
    key_thumbprint,
    nonce_expiry,
    parse_ed25519_jwk,
    sign_request,
    verify_request,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TAG = "kluis-wallet"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYID = key_thumbprint(KEY.public_key())
POST = HttpRequest(
    "POST",
    "https://relay.example:8443/mailbox/acks?x=1",
    (("Content-Type", "application/json"), ("Accept", "application/json")),
    b'{"ids":["a"]}',
)
GET = HttpRequest("GET", "http://127.0.0.1:8470/mailbox/messages?after=3&wait=10")


def _known(keyid: str) -> Ed25519PublicKey | None:
    return KEY.public_key() if keyid == KEYID else None


def _verify(request: HttpRequest, **overrides: Any) -> SignedBy:
    arguments: dict[str, Any] = {"public_key": _known, "tag": TAG, "now": NOW}
    arguments.update(overrides)
    return verify_request(request, **arguments)


def _with_header(request: HttpRequest, name: str, value: str) -> HttpRequest:
    lines = tuple((k, v) for k, v in request.headers if k.lower() != name.lower())
    return dataclasses.replace(request, headers=(*lines, (name, value)))


# --- what a signature covers -------------------------------------------------------------------


def test_signed_post_verifies_and_names_its_signer() -> None:
    signed = sign_request(POST, KEY, tag=TAG, now=NOW)
    by = _verify(signed)
    assert (by.keyid, by.tag, by.created) == (KEYID, TAG, NOW)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", by.nonce)  # 128 random bits
    assert nonce_expiry(by, window_seconds=60) == NOW + timedelta(seconds=120)


def test_signature_base_is_the_one_rfc_9421_describes() -> None:
    """A naive reference: rebuild the §2.5 signature base by hand and check the Ed25519
    signature over it with the raw primitive, so the profile interoperates with any
    RFC 9421 implementation, not just the one we use."""
    signed = sign_request(POST, KEY, tag=TAG, now=NOW)
    params = signed.header("signature-input")
    assert params is not None and params.startswith("kluis=")
    digest = base64.b64encode(hashlib.sha256(POST.body).digest()).decode()
    assert signed.header("content-digest") == f"sha-256=:{digest}:"
    base = "\n".join(
        [
            '"@method": POST',
            '"@authority": relay.example:8443',
            '"@path": /mailbox/acks',
            '"@query": ?x=1',
            f'"content-digest": sha-256=:{digest}:',
            f'"@signature-params": {params.removeprefix("kluis=")}',
        ]
    )
    assert ';alg="ed25519"' in params and f';keyid="{KEYID}"' in params
    assert f";created={int(NOW.timestamp())}" in params and f';tag="{TAG}"' in params
    signature = signed.header("signature")
    assert signature is not None
    raw = base64.b64decode(signature.removeprefix("kluis=:").removesuffix(":"))
    KEY.public_key().verify(raw, base.encode())


def test_get_without_body_carries_no_digest() -> None:
    signed = sign_request(GET, KEY, tag=TAG, now=NOW)
    assert signed.header("content-digest") is None
    assert _verify(signed).keyid == KEYID


def test_signing_replaces_old_signature_headers() -> None:
    once = sign_request(POST, KEY, tag=TAG, now=NOW)
    twice = sign_request(once, KEY, tag=TAG, now=NOW + timedelta(seconds=1))
    assert [k for k, _ in twice.headers].count("Signature") == 1
    assert _verify(twice, now=NOW + timedelta(seconds=1)).created == NOW + timedelta(seconds=1)


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.lists(st.from_regex(r"[A-Za-z0-9_.~-]{1,12}", fullmatch=True), max_size=4),
    query=st.one_of(st.none(), st.from_regex(r"[a-z]{1,5}=[A-Za-z0-9]{0,8}", fullmatch=True)),
    body=st.binary(max_size=300),
)
def test_round_trip(method: str, path: list[str], query: str | None, body: bytes) -> None:
    url = "http://127.0.0.1:9/" + "/".join(path) + (f"?{query}" if query is not None else "")
    signed = sign_request(HttpRequest(method, url, (), body), KEY, tag=TAG, now=NOW)
    assert _verify(signed).keyid == KEYID


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_signature_or_body_is_caught(data: st.DataObject) -> None:
    signed = sign_request(POST, KEY, tag=TAG, now=NOW)
    where = data.draw(st.sampled_from(["signature", "body"]))
    if where == "body":
        bit = data.draw(st.integers(0, len(signed.body) * 8 - 1))
        flipped = bytearray(signed.body)
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered = dataclasses.replace(signed, body=bytes(flipped))
        with pytest.raises(DigestMismatch):
            _verify(tampered)
        return
    value = signed.header("signature") or ""
    raw = bytearray(base64.b64decode(value.removeprefix("kluis=:").removesuffix(":")))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    forged = f"kluis=:{base64.b64encode(bytes(raw)).decode()}:"
    with pytest.raises(BadSignature):
        _verify(_with_header(signed, "Signature", forged))


# --- refusals, named after the tamper ----------------------------------------------------------

TAMPERS: dict[str, Callable[[HttpRequest], HttpRequest]] = {
    "method_changed": lambda r: dataclasses.replace(r, method="PUT"),
    "path_changed": lambda r: dataclasses.replace(r, url=r.url.replace("/acks", "/ack")),
    "query_changed": lambda r: dataclasses.replace(r, url=r.url.replace("x=1", "x=2")),
    "query_added": lambda r: dataclasses.replace(r, url=r.url.replace("?x=1", "?x=1&y=2")),
    "authority_changed": lambda r: dataclasses.replace(r, url=r.url.replace(":8443", ":9443")),
    "host_changed": lambda r: dataclasses.replace(r, url=r.url.replace("relay.", "evil.")),
    "params_rewritten": lambda r: _with_header(
        r, "Signature-Input", (r.header("signature-input") or "").replace("created=", "created=1")
    ),
    "signature_garbled": lambda r: _with_header(r, "Signature", "kluis=:AAAA:"),
    "signature_input_garbled": lambda r: _with_header(r, "Signature-Input", "kluis=(((("),
    "label_mismatch": lambda r: _with_header(
        r, "Signature", (r.header("signature") or "").replace("kluis=", "other=")
    ),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_request_is_refused(tamper: str) -> None:
    signed = sign_request(POST, KEY, tag=TAG, now=NOW)
    with pytest.raises((BadSignature, StaleSignature)):
        _verify(TAMPERS[tamper](signed))


def test_body_swapped_with_matching_digest_is_refused() -> None:
    """Recomputing Content-Digest for a new body does not help: the digest is signed."""
    signed = sign_request(POST, KEY, tag=TAG, now=NOW)
    other = b'{"ids":["b"]}'
    digest = base64.b64encode(hashlib.sha256(other).digest()).decode()
    swapped = _with_header(dataclasses.replace(signed, body=other), "Content-Digest",
                           f"sha-256=:{digest}:")
    with pytest.raises(BadSignature):
        _verify(swapped)


def test_body_added_to_a_signed_get_is_refused() -> None:
    signed = sign_request(GET, KEY, tag=TAG, now=NOW)
    with pytest.raises(BadSignature):
        _verify(dataclasses.replace(signed, body=b"{}"))


def test_unsigned_request_is_refused() -> None:
    with pytest.raises(Unsigned):
        _verify(POST)
    only_input = _with_header(POST, "Signature-Input", "kluis=();created=1")
    with pytest.raises(Unsigned):
        _verify(only_input)


def test_unknown_key_is_refused() -> None:
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(UnknownKey):
        _verify(sign_request(POST, stranger, tag=TAG, now=NOW))


def test_wrong_tag_is_refused() -> None:
    """A wallet's relay request cannot be replayed where an agency fetch is expected."""
    with pytest.raises(BadSignature):
        _verify(sign_request(POST, KEY, tag="kluis-agency", now=NOW))


@pytest.mark.parametrize("offset", [-61, 61, -3600, 86400])
def test_created_outside_the_window_is_stale(offset: int) -> None:
    signed = sign_request(POST, KEY, tag=TAG, now=NOW + timedelta(seconds=offset))
    with pytest.raises(StaleSignature):
        _verify(signed, window_seconds=60)


@pytest.mark.parametrize("offset", [-60, 0, 60])
def test_created_at_the_window_edge_is_accepted(offset: int) -> None:
    signed = sign_request(POST, KEY, tag=TAG, now=NOW + timedelta(seconds=offset))
    assert _verify(signed, window_seconds=60).keyid == KEYID


def _library_signed(**params: Any) -> HttpRequest:
    """Signed by the library directly, to build signatures our signer never makes."""
    from verifiers import http_signature as hs

    headers = hs._Headers([])
    message = hs._Message("GET", GET.url, headers)
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=hs._Signer(KEY))
    options: dict[str, Any] = {
        "key_id": KEYID, "created": NOW, "label": "kluis", "tag": TAG,
        "covered_component_ids": ("@method", "@authority", "@path", "@query"),
    }
    options.update(params)
    signer.sign(message, **options)
    return dataclasses.replace(GET, headers=tuple(headers.lines))


def test_missing_nonce_is_refused() -> None:
    with pytest.raises(BadSignature, match="nonce"):
        _verify(_library_signed())


def test_short_nonce_is_refused() -> None:
    with pytest.raises(BadSignature, match="nonce"):
        _verify(_library_signed(nonce="abc"))


def test_too_few_components_are_refused() -> None:
    signed = _library_signed(nonce="n" * 22, covered_component_ids=("@method", "@path"))
    with pytest.raises(BadSignature, match="covered"):
        _verify(signed)


def test_expired_signature_is_stale() -> None:
    signed = _library_signed(nonce="n" * 22, expires=NOW - timedelta(seconds=1))
    with pytest.raises(StaleSignature):
        _verify(signed)


def test_two_signatures_with_our_tag_are_refused() -> None:
    signed = sign_request(GET, KEY, tag=TAG, now=NOW)
    value_input = signed.header("signature-input") or ""
    value_sig = signed.header("signature") or ""
    second_input = value_input.replace("kluis=", "k2=")
    second_sig = value_sig.replace("kluis=", "k2=")
    doubled = _with_header(
        _with_header(signed, "Signature-Input", f"{value_input}, {second_input}"),
        "Signature", f"{value_sig}, {second_sig}",
    )
    with pytest.raises(BadSignature):
        _verify(doubled)


# --- keys ---------------------------------------------------------------------------------------


def test_thumbprint_matches_rfc_8037_appendix_a3() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert key_thumbprint(parse_ed25519_jwk(jwk)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwk_round_trip() -> None:
    public = KEY.public_key()
    assert key_thumbprint(parse_ed25519_jwk(format_ed25519_jwk(public))) == KEYID


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "key",
        [],
        {},
        {"kty": "EC", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": 7},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
         "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"},
    ],
)
def test_malformed_jwk_is_refused(jwk: object) -> None:
    with pytest.raises(BadKey):
        parse_ed25519_jwk(jwk)


def test_worked_example_in_the_relay_spec_verifies() -> None:
    """specs/relay.md shows a signed request and its signature base: both must be right."""
    spec = (Path(__file__).resolve().parents[2] / "specs" / "relay.md").read_text()
    wire = spec.split("```http\n", 1)[1].split("```", 1)[0]
    base = spec.split("without a final newline:\n\n```\n", 1)[1].split("\n```", 1)[0]
    head, _, body = wire.partition("\n\n")
    start, *lines = head.splitlines()
    method, path, _ = start.split(" ")
    headers = tuple(tuple(line.split(": ", 1)) for line in lines)
    host = dict(headers)["Host"]
    request = HttpRequest(method, f"https://{host}{path}",
                          tuple((k, v) for k, v in headers if k != "Host"), body.strip().encode())
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    by = _verify(request, now=at)
    assert (by.keyid, by.nonce) == (KEYID, "b2lJ7LXq2fTqZuH7mTR9Xw")
    assert format_ed25519_jwk(KEY.public_key())["x"] in spec
    # The base shown is the one signed: the published signature verifies over it.
    signature = (request.header("signature") or "").removeprefix("kluis=:").removesuffix(":")
    KEY.public_key().verify(base64.b64decode(signature), base.encode())
    # And our signer, given the same nonce, writes exactly the published headers.
    unsigned = dataclasses.replace(request, headers=(("Content-Type", "application/json"),))
    again = sign_request(unsigned, KEY, tag=TAG, now=at, _nonce=by.nonce)
    assert again.headers == request.headers
