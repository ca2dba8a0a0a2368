"""verifiers.holder: choosing disclosures by claim path (a child needs its parent, nothing
twice, nothing invented) and the KB-JWT over exactly what is sent."""

from __future__ import annotations

from typing import Any

import pytest

from vault import KluisError
from verifiers.disclosure import digest_of, parse_disclosure
from verifiers.holder import parse_issued, present_sd_jwt, select_disclosures
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, generate_signing_key, verify_jws
from verifiers.sdjwt import parse_compact

NOW = 1_800_000_000
ISSUER = generate_signing_key(Alg.ES256)
CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "address": {"street_address": "Heidestraat 17", "locality": "Utrecht", "country": "NL"},
    "nationalities": ["NL", "DE", "FR"],
    "degrees": [{"type": "BSc", "year": 2010}, {"type": "MSc", "year": 2012}],
}
DISCLOSABLE = [
    ("given_name",),
    ("address",),
    ("address", "locality"),
    ("address", "country"),
    ("nationalities", None),
    ("degrees", 1),
    ("degrees", 1, "year"),
]


def _issue(holder: Any = None, disclosable: Any = DISCLOSABLE) -> str:
    return issue_sd_jwt(
        CLAIMS,
        issuer_key=ISSUER,
        iss="https://issuer.example",
        vct="urn:kluis:test",
        now=NOW,
        exp=NOW + 3600,
        holder_key=holder,
        disclosable=disclosable,
    )


def _names(held: Any, texts: tuple[str, ...]) -> list[Any]:
    by_text = {e.disclosure.encoded: e.path for e in held.disclosures}
    return [by_text[t] for t in texts]


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(KluisError) as caught:
        call()
    return caught.value.code


def test_held_credential_knows_every_claim() -> None:
    held = parse_issued(_issue())
    assert {k: held.claims[k] for k in CLAIMS} == CLAIMS
    assert len(held.disclosable_paths()) == len(held.disclosures) == 9


def test_a_child_pulls_in_its_parent() -> None:
    held = parse_issued(_issue())
    chosen = select_disclosures(held, [("address", "locality")])
    assert _names(held, chosen) == [("address", "locality"), ("address",)]


def test_a_plain_claim_inside_a_hidden_one_pulls_in_the_parent() -> None:
    held = parse_issued(_issue())
    assert _names(held, select_disclosures(held, [("address", "street_address")])) == [("address",)]


def test_a_parent_brings_everything_inside_it() -> None:
    held = parse_issued(_issue())
    chosen = _names(held, select_disclosures(held, [("address",)]))
    assert sorted(chosen) == [("address",), ("address", "country"), ("address", "locality")]


def test_array_elements_by_index_and_all() -> None:
    held = parse_issued(_issue())
    assert _names(held, select_disclosures(held, [("nationalities", 1)])) == [("nationalities", 1)]
    assert len(select_disclosures(held, [("nationalities", None)])) == 3
    year = _names(held, select_disclosures(held, [("degrees", 1, "year")]))
    assert year == [("degrees", 1, "year"), ("degrees", 1)]


def test_nothing_twice_and_issuer_order_kept() -> None:
    held = parse_issued(_issue())
    chosen = select_disclosures(
        held, [("address", "locality"), ("address",), ("address", "locality"), ("given_name",)]
    )
    assert len(chosen) == len(set(chosen)) == 4
    order = [e.disclosure.encoded for e in held.disclosures]
    assert list(chosen) == sorted(chosen, key=order.index)


def test_plain_claims_need_no_disclosure() -> None:
    held = parse_issued(_issue(disclosable=[("given_name",)]))
    assert select_disclosures(held, [("address", "locality"), ("nationalities",)]) == ()


@pytest.mark.parametrize(
    ("paths", "code"),
    [
        ([("middle_name",)], "sdjwt.no_such_claim"),
        ([("nationalities", 9)], "sdjwt.no_such_claim"),
        (["given_name"], "sdjwt.bad_claims"),
        ([()], "sdjwt.bad_claims"),
    ],
    ids=["unknown", "index-out-of-range", "string", "empty"],
)
def test_bad_selections(paths: Any, code: str) -> None:
    held = parse_issued(_issue())
    assert _code(lambda: select_disclosures(held, paths)) == code


def test_presentation_without_key_binding() -> None:
    token = _issue()
    presented = present_sd_jwt(parse_issued(token), disclose=[("given_name",)])
    parts = parse_compact(presented)
    assert presented.endswith("~") and parts.kb_jwt is None
    assert [parse_disclosure(d).name for d in parts.disclosures] == ["given_name"]
    assert presented.startswith(token.split("~")[0] + "~")


@pytest.mark.parametrize("alg", [Alg.ES256, Alg.EDDSA])
def test_key_binding_covers_exactly_what_is_sent(alg: Alg) -> None:
    holder = generate_signing_key(alg)
    held = parse_issued(_issue(holder.public))
    presented = present_sd_jwt(
        held,
        disclose=[("address", "locality")],
        holder_key=holder,
        nonce="n-1",
        aud="x509_hash:abc",
        now=NOW + 5,
    )
    parts = parse_compact(presented)
    assert parts.kb_jwt is not None
    kb = verify_jws(parts.kb_jwt, holder.public)
    assert kb.header == {"alg": alg.value, "typ": "kb+jwt"}
    assert kb.payload == {
        "nonce": "n-1",
        "aud": "x509_hash:abc",
        "iat": NOW + 5,
        "sd_hash": digest_of(parts.signed_prefix),
    }
    assert parts.signed_prefix == presented[: presented.rindex("~") + 1]


@pytest.mark.parametrize(
    "binding",
    [
        {"nonce": "n"},
        {"nonce": "n", "aud": "a"},
        {"nonce": "n", "aud": "a", "now": NOW},
        {"nonce": "", "aud": "a", "now": NOW, "key": True},
    ],
    ids=["nonce-only", "no-key-no-time", "no-key", "empty-nonce"],
)
def test_incomplete_key_binding_is_refused(binding: dict[str, Any]) -> None:
    holder = generate_signing_key(Alg.ES256)
    held = parse_issued(_issue(holder.public))
    key = holder if binding.pop("key", False) else None
    assert _code(lambda: present_sd_jwt(held, disclose=[], holder_key=key, **binding)) == (
        "sdjwt.bad_claims"
    )


def test_only_the_bound_key_can_present() -> None:
    holder, other = generate_signing_key(Alg.ES256), generate_signing_key(Alg.ES256)
    held = parse_issued(_issue(holder.public))
    present = lambda key: present_sd_jwt(  # noqa: E731
        held, disclose=[], holder_key=key, nonce="n", aud="a", now=NOW
    )
    assert _code(lambda: present(other)) == "sdjwt.wrong_holder_key"
    unbound = parse_issued(_issue())
    assert (
        _code(
            lambda: present_sd_jwt(
                unbound, disclose=[], holder_key=holder, nonce="n", aud="a", now=NOW
            )
        )
        == "sdjwt.no_holder_key"
    )


def test_an_issuer_sends_no_kb_jwt() -> None:
    holder = generate_signing_key(Alg.ES256)
    bound = present_sd_jwt(
        parse_issued(_issue(holder.public)),
        disclose=[],
        holder_key=holder,
        nonce="n",
        aud="a",
        now=NOW,
    )
    assert _code(lambda: parse_issued(bound)) == "sdjwt.kb_unexpected"
