"""verifiers.sdjwt: the compact form and RFC 9901 §7.1 steps 3-5 on hand-built payloads."""

from __future__ import annotations

from typing import Any

import pytest

from vault import KluisError
from verifiers.disclosure import Disclosure, format_disclosure
from verifiers.sdjwt import (
    MAX_DEPTH,
    format_compact,
    index_disclosures,
    parse_compact,
    process_disclosures,
)


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


def _by_digest(*disclosures: Disclosure) -> dict[str, Disclosure]:
    return {d.digest: d for d in disclosures}


def test_compact_round_trip() -> None:
    token = format_compact("h.p.s", ["d1", "d2"])
    assert token == "h.p.s~d1~d2~"
    parts = parse_compact(token)
    assert (parts.issuer_jwt, parts.disclosures, parts.kb_jwt) == ("h.p.s", ("d1", "d2"), None)
    bound = parse_compact(token + "k.b.j")
    assert bound.kb_jwt == "k.b.j" and bound.signed_prefix == token


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("h.p.s", "sdjwt.malformed"),
        ("h.p.s~d1~~", "sdjwt.malformed"),
        ("h.p.s~é~", "sdjwt.malformed"),
        (None, "sdjwt.malformed"),
        ("x" * 1_000_001, "sdjwt.too_large"),
    ],
    ids=["no-tilde", "empty-disclosure", "non-ascii", "not-a-string", "too-large"],
)
def test_bad_compact_forms(token: Any, code: str) -> None:
    assert _code(lambda: parse_compact(token)) == code


def test_undisclosed_digests_are_decoys_and_array_elements_vanish() -> None:
    shown = format_disclosure("s1", None, "FR")
    payload = {"_sd": ["decoy-digest"], "nat": ["DE", {"...": shown.digest}, {"...": "hidden"}]}
    processed = process_disclosures(payload, _by_digest(shown))
    assert processed.claims == {"nat": ["DE", "FR"]}
    assert [entry.path for entry in processed.disclosed] == [("nat", 1)]


def test_recursive_disclosures_record_their_parent() -> None:
    inner = format_disclosure("s1", "city", "Utrecht")
    outer = format_disclosure("s2", "address", {"_sd": [inner.digest], "zip": "3511"})
    processed = process_disclosures(
        {"_sd": [outer.digest], "_sd_alg": "sha-256"}, _by_digest(inner, outer)
    )
    assert processed.claims == {"address": {"zip": "3511", "city": "Utrecht"}}
    parents = {entry.path: entry.parent for entry in processed.disclosed}
    assert parents == {("address",): None, ("address", "city"): outer.digest}


def test_empty_objects_stay() -> None:
    assert process_disclosures({"a": {"_sd": []}}, {}).claims == {"a": {}}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"_sd": "abc"}, "sdjwt.malformed"),
        ({"_sd": [5]}, "sdjwt.malformed"),
        ({"a": [{"...": 5}]}, "sdjwt.malformed"),
        ({"a": [{"...": "x", "b": 1}]}, "sdjwt.malformed"),
        ({"a": {"_sd_alg": "sha-256"}}, "sdjwt.malformed"),
        ({"_sd": ["x", "x"]}, "sdjwt.duplicate_digest"),
        ({"_sd": ["x"], "a": [{"...": "x"}]}, "sdjwt.duplicate_digest"),
    ],
    ids=[
        "sd-not-array",
        "digest-not-string",
        "dots-not-string",
        "dots-with-more",
        "nested-sd-alg",
        "twice-in-sd",
        "sd-and-array",
    ],
)
def test_structure_errors(payload: dict[str, Any], code: str) -> None:
    assert _code(lambda: process_disclosures(payload, {})) == code


def test_element_disclosure_in_sd_and_claim_disclosure_in_array() -> None:
    element = format_disclosure("s", None, 1)
    claim = format_disclosure("s", "a", 1)
    assert _code(lambda: process_disclosures({"_sd": [element.digest]}, _by_digest(element))) == (
        "sdjwt.disclosure_misplaced"
    )
    assert _code(
        lambda: process_disclosures({"x": [{"...": claim.digest}]}, _by_digest(claim))
    ) == ("sdjwt.disclosure_misplaced")


def test_name_clash_with_plain_and_with_another_disclosure() -> None:
    one, two = format_disclosure("s1", "a", 1), format_disclosure("s2", "a", 2)
    assert _code(lambda: process_disclosures({"_sd": [one.digest], "a": 0}, _by_digest(one))) == (
        "sdjwt.claim_name_clash"
    )
    assert _code(
        lambda: process_disclosures({"_sd": [one.digest, two.digest]}, _by_digest(one, two))
    ) == ("sdjwt.claim_name_clash")


def test_unreferenced_disclosure() -> None:
    stray = format_disclosure("s", "a", 1)
    assert _code(lambda: process_disclosures({"b": 2}, _by_digest(stray))) == (
        "sdjwt.disclosure_not_referenced"
    )


def test_duplicate_disclosure() -> None:
    text = format_disclosure("s", "a", 1).encoded
    assert _code(lambda: index_disclosures([text, text], "sha-256")) == "sdjwt.duplicate_disclosure"


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_DEPTH + 1):
        node["a"] = {}
        node = node["a"]
    assert _code(lambda: process_disclosures(deep, {})) == "sdjwt.malformed"


def test_nesting_through_disclosures_is_bounded() -> None:
    disclosures = [format_disclosure("s0", "a", 0)]
    for i in range(1, MAX_DEPTH + 2):
        disclosures.append(format_disclosure(f"s{i}", "a", {"_sd": [disclosures[-1].digest]}))
    payload = {"_sd": [disclosures[-1].digest]}
    assert (
        _code(lambda: process_disclosures(payload, _by_digest(*disclosures))) == "sdjwt.malformed"
    )
