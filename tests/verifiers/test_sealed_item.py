"""Sealed grant items: what the wallet seals, only the agency opens, and nobody (the relay
included) can forge, swap or change unnoticed; the fetch receipt and the relay's answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PublicKey, SealedBox

from verifiers.grant_fetch import (
    BadAnswer,
    BadReceipt,
    FetchAnswer,
    FetchRefused,
    RelayUnavailable,
    issue_fetch_receipt,
    parse_fetch_answer,
    verify_fetch_receipt,
)
from verifiers.jws import Alg, b64url_encode, encode_json, generate_signing_key, sign_jws
from verifiers.sealed_item import (
    TYP,
    BadEncryptionKey,
    BadItem,
    CannotOpen,
    EncryptionKey,
    GrantedItem,
    format_encryption_jwk,
    open_item,
    parse_encryption_jwk,
    parse_private_encryption_jwk,
    seal_item,
)

NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
GRANT = "pP5uYjKjR1m4Yq8v0gQ2wA"
SIGNER = generate_signing_key(Alg.EDDSA)
AGENCY = EncryptionKey.generate()


def _item(content: bytes = b'{"tax_year":2026}', **changes: object) -> GrantedItem:
    fields: dict[str, object] = {"grant": GRANT, "item": "income", "version": 1,
                                 "media_type": "application/json", "content": content,
                                 "sealed_at": NOW}
    fields.update(changes)
    return GrantedItem(**fields)  # type: ignore[arg-type]


def _open(sealed: bytes, **expect: object) -> GrantedItem:
    options: dict[str, object] = {"key": AGENCY, "wallet_key": SIGNER.public, "grant": GRANT,
                                  "item": "income", "version": 1}
    options.update(expect)
    return open_item(sealed, **options)  # type: ignore[arg-type]


def _seal(item: GrantedItem) -> bytes:
    return seal_item(item, signer=SIGNER, recipient=AGENCY.public_bytes)


@settings(max_examples=40, deadline=None)
@given(content=st.binary(max_size=2048), version=st.integers(1, 2**53 - 1))
def test_what_is_sealed_opens_unchanged(content: bytes, version: int) -> None:
    item = _item(content, version=version)
    assert _open(_seal(item), version=version) == item


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_changed_bit_is_caught(data: st.DataObject) -> None:
    sealed = bytearray(_seal(_item()))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CannotOpen):
        _open(bytes(sealed))


def test_another_agencys_key_cannot_open_and_says_nothing_more() -> None:
    with pytest.raises(CannotOpen) as caught:
        open_item(_seal(_item()), key=EncryptionKey.generate(), wallet_key=SIGNER.public,
                  grant=GRANT, item="income")
    assert caught.value.detail == ""


def test_a_box_sealed_by_the_relay_is_refused() -> None:
    """A sealed box is anonymous: the relay could seal its own content to the agency. The
    grant's signature is what gives it away."""
    forger = generate_signing_key(Alg.EDDSA)
    forged = seal_item(_item(b'{"tax_year":1999}'), signer=forger,
                       recipient=AGENCY.public_bytes)
    with pytest.raises(BadItem):
        _open(forged)


def test_an_item_swapped_to_another_grant_item_or_version_is_refused() -> None:
    sealed = _seal(_item())
    with pytest.raises(BadItem):
        _open(sealed, grant="xxxxxxxxxxxxxxxxxxxxxx")
    with pytest.raises(BadItem):
        _open(sealed, item="payslip")
    with pytest.raises(BadItem):
        _open(sealed, version=2)
    assert _open(sealed, version=None).version == 1


def _box(document: dict[str, object]) -> bytes:
    return bytes(SealedBox(PublicKey(AGENCY.public_bytes)).encrypt(encode_json(document)))


def _statement(**changes: object) -> dict[str, object]:
    item = _item()
    claims: dict[str, object] = {"grant": GRANT, "item": "income", "version": 1,
                                 "media_type": "application/json", "size": len(item.content),
                                 "sha256": item.sha256, "sealed_at": "2027-03-05T12:00:00Z"}
    claims.update(changes)
    return claims


@pytest.mark.parametrize("tamper", [
    "content_changed", "size_changed", "extra_member", "wrong_typ", "not_json",
    "no_token", "version_zero", "bad_media_type", "bad_time",
])
def test_a_wrong_document_inside_a_good_box_is_refused(tamper: str) -> None:
    content = b64url_encode(_item().content)
    claims = _statement()
    typ = TYP
    if tamper == "size_changed":
        claims = _statement(size=3)
    elif tamper == "extra_member":
        claims = _statement(agency="x")
    elif tamper == "wrong_typ":
        typ = "JWT"
    elif tamper == "version_zero":
        claims = _statement(version=0)
    elif tamper == "bad_media_type":
        claims = _statement(media_type="json")
    elif tamper == "bad_time":
        claims = _statement(sealed_at="yesterday")
    token = sign_jws({"alg": "EdDSA", "typ": typ}, claims, SIGNER)
    document: dict[str, object] = {"content": content, "token": token}
    if tamper == "content_changed":
        document["content"] = b64url_encode(b'{"tax_year":1999}')
    elif tamper == "no_token":
        document = {"content": content}
    sealed = (bytes(SealedBox(PublicKey(AGENCY.public_bytes)).encrypt(b"[1,2"))
              if tamper == "not_json" else _box(document))
    with pytest.raises(BadItem):
        _open(sealed, version=None if tamper == "version_zero" else 1)


def test_sealing_refuses_bad_names_and_keys() -> None:
    with pytest.raises(BadItem):
        _seal(_item(item="../income"))
    with pytest.raises(BadItem):
        seal_item(_item(), signer=generate_signing_key(Alg.ES256), recipient=AGENCY.public_bytes)
    with pytest.raises(BadEncryptionKey):
        seal_item(_item(), signer=SIGNER, recipient=b"short")


def test_encryption_jwks_round_trip_and_refuse_what_is_not_x25519() -> None:
    private = format_encryption_jwk(AGENCY, kid="enc-1", private=True)
    assert parse_private_encryption_jwk(private).public_bytes == AGENCY.public_bytes
    public = format_encryption_jwk(AGENCY, kid="enc-1")
    assert "d" not in public and parse_encryption_jwk(public) == AGENCY.public_bytes
    for bad in ({**public, "crv": "Ed25519"}, {**public, "x": "AAAA"}, private, "text"):
        with pytest.raises(BadEncryptionKey):
            parse_encryption_jwk(bad)
    other_d = format_encryption_jwk(EncryptionKey.generate(), private=True)["d"]
    for bad in (public, {**private, "d": other_d}, {**private, "d": "AAAA"}):
        with pytest.raises(BadEncryptionKey):
            parse_private_encryption_jwk(bad)


# --- the relay's answer and the agency's receipt ------------------------------------------------


def _answer(**changes: object) -> bytes:
    body: dict[str, object] = {"grant": GRANT, "item": "income", "version": 1,
                               "sealed": b64url_encode(b"box"), "fetch": "f" * 22,
                               "fetched_at": "2027-03-05T12:00:00Z"}
    body.update(changes)
    return json.dumps(body).encode()


def test_the_relays_answer_is_read_strictly() -> None:
    answer = parse_fetch_answer(200, _answer(), grant=GRANT, item="income")
    assert (answer.sealed, answer.version, answer.fetched_at) == (b"box", 1, NOW)
    for bad in (_answer(item="payslip"), _answer(version="1"), _answer(fetch="short"),
                _answer(sealed="a+b"), _answer(fetched_at="now"), b"[]", b"{"):
        with pytest.raises(BadAnswer):
            parse_fetch_answer(200, bad, grant=GRANT, item="income")


@pytest.mark.parametrize(("status", "error"), [(410, FetchRefused), (403, FetchRefused),
                                                (429, RelayUnavailable), (503, RelayUnavailable),
                                                (302, BadAnswer)])
def test_refusals_name_the_relays_code(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        parse_fetch_answer(status, b'{"code": "grant.revoked"}', grant=GRANT, item="income")
    if error is not BadAnswer:
        assert caught.value.fields["problem"] == "grant.revoked"  # type: ignore[attr-defined]


def test_a_fetch_receipt_verifies_only_with_the_agencys_key() -> None:
    key = generate_signing_key(Alg.EDDSA, kid="utrecht-grants")
    answer = FetchAnswer(GRANT, "income", 1, b"box", "f" * 22, NOW)
    token = issue_fetch_receipt(_item(), answer, agency="https://utrecht.kluis.example",
                                relay="http://127.0.0.1:1/", key=key, now=NOW)
    receipt = verify_fetch_receipt(token, key.public)
    assert (receipt.fetch_id, receipt.sha256, receipt.relay) == ("f" * 22, _item().sha256,
                                                                "http://127.0.0.1:1")
    with pytest.raises(BadReceipt):
        verify_fetch_receipt(token, generate_signing_key(Alg.EDDSA).public)
    head, body, sig = token.split(".")
    with pytest.raises(BadReceipt):
        verify_fetch_receipt(f"{head}.{body[:-2]}AA.{sig}", key.public)
    with pytest.raises(BadReceipt):
        verify_fetch_receipt(sign_jws({"alg": "EdDSA", "typ": "JWT"}, {}, key), key.public)
