"""verifiers.disclosure: RFC 9901 §4.2 known answers, the exact bytes we write, and refusal of
every malformed disclosure."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from vault import KluisError
from verifiers.disclosure import (
    SALT_BYTES,
    decoy_digest,
    digest_of,
    format_disclosure,
    hash_function,
    new_salts,
    parse_disclosure,
)
from verifiers.jws import b64url_encode


def _known(vectors: Path) -> dict[str, Any]:
    return json.loads((vectors / "sdjwt/rfc9901/known_answers.json").read_text())


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


def test_object_property_known_answer(vectors: Path) -> None:
    item = _known(vectors)["object_property_disclosure"]
    parsed = parse_disclosure(item["disclosure"])
    assert parsed.digest == item["digest"] == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
    assert [parsed.salt, parsed.name, parsed.value] == item["contents"]


def test_equivalent_encodings_differ_in_digest_only(vectors: Path) -> None:
    item = _known(vectors)["object_property_disclosure"]
    for variant in item["equivalent_encodings"]:
        parsed = parse_disclosure(variant["disclosure"])
        assert [parsed.salt, parsed.name, parsed.value] == item["contents"], variant["variant"]
        assert parsed.digest == variant["digest"] != item["digest"]


def test_we_write_the_ascii_escaped_variant(vectors: Path) -> None:
    """Our encoding is json.dumps's default (the RFC examples' generator): the §4.2.1
    'unicode_escape' variant, byte for byte."""
    item = _known(vectors)["object_property_disclosure"]
    salt, name, value = item["contents"]
    made = format_disclosure(salt, name, value)
    expected = next(v for v in item["equivalent_encodings"] if v["variant"] == "unicode_escape")
    assert (made.encoded, made.digest) == (expected["disclosure"], expected["digest"])


def test_array_element_known_answer(vectors: Path) -> None:
    item = _known(vectors)["array_element_disclosure"]
    salt, value = item["contents"]
    made = format_disclosure(salt, None, value)
    assert (made.encoded, made.digest) == (item["disclosure"], item["digest"])
    parsed = parse_disclosure(item["disclosure"])
    assert (parsed.name, parsed.value) == (None, "FR")


def test_recursive_array_element_digests(vectors: Path) -> None:
    for entry in _known(vectors)["recursive_array_elements_4_2_6"]["entries"]:
        parsed = parse_disclosure(entry["disclosure_reconstructed"])
        assert parsed.digest == entry["digest"]
        assert [parsed.salt, parsed.value] == entry["contents"]


def test_digest_is_over_the_text_as_sent() -> None:
    assert digest_of("abc") == b64url_encode(__import__("hashlib").sha256(b"abc").digest())
    assert digest_of("abc", "sha-512") != digest_of("abc")


def _b64(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("encoded", "code"),
    [
        ("not base64!", "sdjwt.bad_disclosure"),
        (_b64("not json"), "sdjwt.bad_disclosure"),
        (_b64({"salt": "s"}), "sdjwt.bad_disclosure"),
        (_b64(["only-salt"]), "sdjwt.bad_disclosure"),
        (_b64(["s", "a", 1, 2]), "sdjwt.bad_disclosure"),
        (_b64([1, "a", 1]), "sdjwt.bad_disclosure"),
        (_b64(["s", 5, 1]), "sdjwt.bad_disclosure"),
        (_b64('["s", "a", NaN]'), "sdjwt.bad_disclosure"),
        (
            base64.urlsafe_b64encode(b'["s", "a", "\xff"]').decode().rstrip("="),
            "sdjwt.bad_disclosure",
        ),
        (_b64(["s", "_sd", ["x"]]), "sdjwt.reserved_claim_name"),
        (_b64(["s", "...", "x"]), "sdjwt.reserved_claim_name"),
    ],
    ids=[
        "not-base64",
        "not-json",
        "object",
        "one-element",
        "four-elements",
        "salt-not-string",
        "name-not-string",
        "nan",
        "bad-utf8",
        "name-_sd",
        "name-dots",
    ],
)
def test_malformed_disclosures_are_refused(encoded: str, code: str) -> None:
    assert _code(lambda: parse_disclosure(encoded)) == code


def test_salts_are_fresh_and_long() -> None:
    salts = new_salts(100) + new_salts(100)
    assert len(set(salts)) == 200
    assert all(len(base64.urlsafe_b64decode(s)) == SALT_BYTES >= 16 for s in salts)


def test_decoys_look_like_digests() -> None:
    decoys = {decoy_digest() for _ in range(50)}
    assert len(decoys) == 50 and {len(d) for d in decoys} == {len(digest_of("x"))}


@pytest.mark.parametrize("name", ["sha-256-32", "sha-256-128", "md5", "SHA-256", None, 256])
def test_unacceptable_sd_alg(name: object) -> None:
    assert _code(lambda: hash_function(name)) == "sdjwt.bad_sd_alg"
