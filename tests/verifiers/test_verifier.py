"""verifiers.verifier: the checklist of STANDARDS.md §1.4 A-F, one tamper per check.

Every negative test starts from a valid presentation, changes one thing, re-signs whatever
must still verify (the Issuer-signed JWT and/or the KB-JWT, with ``sd_hash`` recomputed), and
asserts the exact error code, so no earlier check can catch the tamper by accident and the
test fails if its own check is removed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from vault import KluisError
from verifiers.disclosure import decoy_digest, digest_of, format_disclosure, parse_disclosure
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import Alg, SigningKey, b64url_encode, generate_signing_key, sign_jws
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import parse_compact
from verifiers.verifier import IssuerKeyMap, Policy, verify_issued, verify_sd_jwt

NOW = 1_800_000_000
ISS = "https://issuer.example"
VCT = "urn:kluis:pid:1"
NONCE = "n-0S6_WzA2Mj"
AUD = "x509_hash:Zm9vYmFy"
ISSUER = generate_signing_key(Alg.ES256, kid="issuer-1")
HOLDER = generate_signing_key(Alg.ES256)
KEYS = IssuerKeyMap.of({ISS: ISSUER.public})
BINDING = KeyBinding(NONCE, AUD, max_age=300)
STATUS = {"status_list": {"idx": 3, "uri": "https://issuer.example/status/1"}}
CLAIMS: dict[str, Any] = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "address": {"street_address": "Heidestraat 17", "locality": "Utrecht"},
    "nationalities": ["NL", "DE"],
}
DISCLOSABLE = [
    ("given_name",),
    ("family_name",),
    ("address", "street_address"),
    ("address", "locality"),
    ("nationalities", None),
]


@dataclass
class Parts:
    """A presentation taken apart, to change one thing and put it back together."""

    header: dict[str, Any]
    payload: dict[str, Any]
    disclosures: list[str]
    kb_header: dict[str, Any] = field(default_factory=lambda: {"alg": "ES256", "typ": "kb+jwt"})
    kb_payload: dict[str, Any] = field(default_factory=dict)
    issuer_key: SigningKey = ISSUER
    holder_key: SigningKey = HOLDER
    sd_hash_over: str | None = None  # None: the prefix actually sent

    def token(self, *, kb: bool = True) -> str:
        jwt = sign_jws(self.header, self.payload, self.issuer_key)
        return self.assemble(jwt, kb=kb)

    def assemble(self, jwt: str, *, kb: bool = True) -> str:
        prefix = jwt + "~" + "".join(d + "~" for d in self.disclosures)
        if not kb:
            return prefix
        claims = {
            "nonce": NONCE,
            "aud": AUD,
            "iat": NOW,
            "sd_hash": digest_of(self.sd_hash_over or prefix),
        }
        claims.update(self.kb_payload)
        claims = {k: v for k, v in claims.items() if v is not _DROP}
        return prefix + sign_jws(self.kb_header, claims, self.holder_key)


_DROP = object()


def _issued(claims: dict[str, Any] = CLAIMS, **kwargs: Any) -> str:
    options: dict[str, Any] = {
        "issuer_key": ISSUER,
        "iss": ISS,
        "vct": VCT,
        "now": NOW - 60,
        "exp": NOW + 3600,
        "holder_key": HOLDER.public,
        "disclosable": DISCLOSABLE,
        "status": STATUS,
    }
    options.update(kwargs)
    return issue_sd_jwt(claims, **options)


def _parts(token: str | None = None) -> Parts:
    parts = parse_compact(token or _issued())
    head, body, _ = parts.issuer_jwt.split(".")
    decode = lambda text: json.loads(__import__("base64").urlsafe_b64decode(text + "=="))  # noqa: E731
    return Parts(decode(head), decode(body), list(parts.disclosures))


def _verify(token: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"issuer_keys": KEYS, "now": NOW + 10, "key_binding": BINDING}
    options.update(kwargs)
    return verify_sd_jwt(token, **options)


def _code(token: str, **kwargs: Any) -> str:
    with pytest.raises(KluisError) as caught:
        _verify(token, **kwargs)
    return caught.value.code


def _disclosure_for(parts: Parts, name: str) -> str:
    return next(d for d in parts.disclosures if parse_disclosure(d).name == name)


# --- the valid case, so every tamper below starts from something that passes ---


def test_untampered_presentation_verifies() -> None:
    verified = _verify(_parts().token())
    assert {k: verified.claims[k] for k in CLAIMS} == CLAIMS
    assert verified.issuer == ISS and verified.vct == VCT and verified.key_bound
    assert verified.holder_jwk["kty"] == "EC" and verified.header["typ"] == "dc+sd-jwt"
    assert "_sd" not in json.dumps(verified.claims) and "_sd_alg" not in verified.claims
    assert ("address", "locality") in verified.disclosed and (
        "nationalities",
        1,
    ) in verified.disclosed


def test_holder_presentation_verifies_with_only_what_was_chosen() -> None:
    held = parse_issued(_issued())
    token = present_sd_jwt(
        held,
        disclose=[("address", "locality"), ("nationalities", 1)],
        holder_key=HOLDER,
        nonce=NONCE,
        aud=AUD,
        now=NOW,
    )
    verified = _verify(token)
    assert verified.claims["address"] == {"locality": "Utrecht"}
    assert verified.claims["nationalities"] == ["DE"]
    assert "given_name" not in verified.claims
    assert verified.disclosed == (("address", "locality"), ("nationalities", 0))


def test_eddsa_issuer_and_holder() -> None:
    issuer, holder = generate_signing_key(Alg.EDDSA), generate_signing_key(Alg.EDDSA)
    token = _issued(issuer_key=issuer, holder_key=holder.public)
    held = parse_issued(token)
    presented = present_sd_jwt(
        held, disclose=[("given_name",)], holder_key=holder, nonce=NONCE, aud=AUD, now=NOW
    )
    verified = _verify(presented, issuer_keys=IssuerKeyMap.of({ISS: issuer.public}))
    assert verified.claims["given_name"] == "Erika"


# --- A. policy and parsing ---


def test_missing_kb_when_required() -> None:
    assert _code(_parts().token(kb=False)) == "sdjwt.kb_missing"


def test_kb_present_but_not_asked_for() -> None:
    assert _code(_parts().token(), key_binding=None) == "sdjwt.kb_unexpected"


def test_without_key_binding_the_sd_jwt_alone_verifies() -> None:
    assert _verify(_parts().token(kb=False), key_binding=None).key_bound is False


# --- B. the Issuer-signed JWT ---


def _unsigned(parts: Parts, alg: str) -> str:
    header = b64url_encode(json.dumps({**parts.header, "alg": alg}).encode())
    return header + "." + b64url_encode(json.dumps(parts.payload).encode())


def test_alg_none() -> None:
    parts = _parts()
    assert _code(parts.assemble(_unsigned(parts, "none") + ".")) == "jws.alg_none"


def test_hmac_alg() -> None:
    """The classic confusion: HS256 keyed with the issuer's public key bytes."""
    parts = _parts()
    signing_input = _unsigned(parts, "HS256")
    mac = hmac.new(ISSUER.public.public_bytes(), signing_input.encode(), hashlib.sha256).digest()
    assert _code(parts.assemble(signing_input + "." + b64url_encode(mac))) == "jws.alg_mac"


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS256"])
def test_alg_off_the_list(alg: str) -> None:
    parts = _parts()
    forged = _unsigned(parts, alg) + "." + b64url_encode(b"\x01" * 64)
    assert _code(parts.assemble(forged)) == "jws.alg_not_allowed"


@pytest.mark.parametrize("typ", ["JWT", "vc+sd-jwt", "example+sd-jwt", "kb+jwt", None, 7])
def test_unknown_typ(typ: Any) -> None:
    parts = _parts()
    parts.header["typ"] = typ
    if typ is None:
        del parts.header["typ"]
    assert _code(parts.token()) == "sdjwt.bad_typ"


def test_typ_media_type_forms_are_equivalent() -> None:
    parts = _parts()
    parts.header["typ"] = "application/DC+SD-JWT"
    assert _verify(parts.token()).claims["given_name"] == "Erika"


def test_bad_signature_changed_payload() -> None:
    parts = _parts()
    jwt = sign_jws(parts.header, parts.payload, ISSUER)
    head, _, sig = jwt.split(".")
    changed = dict(parts.payload, vct="urn:kluis:other")
    body = b64url_encode(json.dumps(changed).encode())
    assert _code(parts.assemble(f"{head}.{body}.{sig}")) == "sdjwt.bad_signature"


def test_bad_signature_other_key() -> None:
    parts = _parts()
    parts.issuer_key = generate_signing_key(Alg.ES256, kid="issuer-1")
    assert _code(parts.token()) == "sdjwt.bad_signature"


def test_untrusted_issuer() -> None:
    parts = _parts()
    parts.payload["iss"] = "https://evil.example"
    assert _code(parts.token()) == "sdjwt.unknown_issuer"


def test_unknown_kid() -> None:
    parts = _parts()
    parts.header["kid"] = "issuer-2"
    assert _code(parts.token()) == "sdjwt.unknown_key"


def test_iss_must_be_signed() -> None:
    parts = _parts()
    del parts.payload["iss"]
    assert _code(parts.token()) == "sdjwt.missing_claim"


@pytest.mark.parametrize("sd_alg", ["sha-256-32", "md5", 256])
def test_unacceptable_sd_alg(sd_alg: Any) -> None:
    parts = _parts()
    parts.payload["_sd_alg"] = sd_alg
    assert _code(parts.token()) == "sdjwt.bad_sd_alg"


def test_sd_alg_outside_policy() -> None:
    parts = _parts()
    narrow = Policy(hash_algs=frozenset({"sha-512"}))
    assert _code(parts.token(), policy=narrow) == "sdjwt.bad_sd_alg"


# --- C. disclosures and digests ---


def test_digest_without_disclosure_is_a_decoy() -> None:
    parts = _parts()
    parts.payload["_sd"] = sorted([*parts.payload["_sd"], decoy_digest()])
    parts.payload["nationalities"].append({"...": decoy_digest()})
    verified = _verify(parts.token())
    assert verified.claims["nationalities"] == ["NL", "DE"]
    assert {k: verified.claims[k] for k in CLAIMS} == CLAIMS


def test_unreferenced_disclosure() -> None:
    parts = _parts()
    parts.disclosures.append(format_disclosure("c2FsdHNhbHRzYWx0", "middle_name", "Anna").encoded)
    assert _code(parts.token()) == "sdjwt.disclosure_not_referenced"


def test_duplicate_digest_in_sd() -> None:
    parts = _parts()
    decoy = decoy_digest()
    parts.payload["_sd"] = sorted([*parts.payload["_sd"], decoy, decoy])
    assert _code(parts.token()) == "sdjwt.duplicate_digest"


def test_duplicate_digest_in_array_elements() -> None:
    parts = _parts()
    decoy = decoy_digest()
    parts.payload["nationalities"] += [{"...": decoy}, {"...": decoy}]
    assert _code(parts.token()) == "sdjwt.duplicate_digest"


def test_duplicate_digest_across_payload_and_disclosure() -> None:
    parts = _parts()
    element = next(d for d in parts.disclosures if parse_disclosure(d).name is None)
    parts.payload["nationalities"].append({"...": parse_disclosure(element).digest})
    assert _code(parts.token()) == "sdjwt.duplicate_digest"


def test_duplicate_disclosure() -> None:
    parts = _parts()
    parts.disclosures.append(parts.disclosures[0])
    assert _code(parts.token()) == "sdjwt.duplicate_disclosure"


@pytest.mark.parametrize("name", ["_sd", "..."])
def test_reserved_claim_name(name: str) -> None:
    parts = _parts()
    sneaky = format_disclosure("c2FsdHNhbHRzYWx0", name, ["x"])
    parts.payload["_sd"] = sorted([*parts.payload["_sd"], sneaky.digest])
    parts.disclosures.append(sneaky.encoded)
    assert _code(parts.token()) == "sdjwt.reserved_claim_name"


def test_name_clash() -> None:
    parts = _parts()
    parts.payload["given_name"] = "Mallory"
    assert _code(parts.token()) == "sdjwt.claim_name_clash"


def test_array_disclosure_referenced_as_claim() -> None:
    parts = _parts()
    element = parse_disclosure(
        next(d for d in parts.disclosures if parse_disclosure(d).name is None)
    )
    parts.payload["nationalities"] = [
        i for i in parts.payload["nationalities"] if i["..."] != element.digest
    ]
    parts.payload["_sd"] = sorted([*parts.payload["_sd"], element.digest])
    assert _code(parts.token()) == "sdjwt.disclosure_misplaced"


def test_claim_disclosure_referenced_as_array_element() -> None:
    parts = _parts()
    claim = parse_disclosure(_disclosure_for(parts, "given_name"))
    parts.payload["_sd"] = [d for d in parts.payload["_sd"] if d != claim.digest]
    parts.payload["nationalities"].append({"...": claim.digest})
    assert _code(parts.token()) == "sdjwt.disclosure_misplaced"


def test_malformed_sd_array() -> None:
    parts = _parts()
    parts.payload["address"]["_sd"] = "not-an-array"
    assert _code(parts.token()) == "sdjwt.malformed"


# --- D. validity and the SD-JWT VC payload ---


@pytest.mark.parametrize(
    "name", ["nbf", "exp", "cnf", "vct", "vct#integrity", "aka_vcts", "status"]
)
def test_non_disclosable_claim_in_a_disclosure(name: str) -> None:
    parts = _parts()
    value = parts.payload.pop(name, None)
    value = {
        "nbf": NOW - 60,
        "exp": NOW + 3600,
        "vct#integrity": "sha256-x",
        "aka_vcts": [VCT],
    }.get(name, value)
    hidden = format_disclosure("c2FsdHNhbHRzYWx0", name, value)
    parts.payload["_sd"] = sorted([*parts.payload["_sd"], hidden.digest])
    parts.disclosures.append(hidden.encoded)
    lax = Policy(require_vct=False)
    assert (
        _code(parts.token(kb=False), key_binding=None, policy=lax) == "sdjwt.non_disclosable_claim"
    )


def test_non_disclosable_sub_claim() -> None:
    parts = _parts()
    hidden = format_disclosure(
        "c2FsdHNhbHRzYWx0", "status_list", parts.payload["status"]["status_list"]
    )
    parts.payload["status"] = {"_sd": [hidden.digest]}
    parts.disclosures.append(hidden.encoded)
    assert _code(parts.token()) == "sdjwt.non_disclosable_claim"


def test_expired() -> None:
    parts = _parts()
    parts.payload["exp"] = NOW - Policy().leeway
    assert _code(parts.token()) == "sdjwt.expired"


def test_expiry_boundary() -> None:
    leeway = Policy().leeway
    parts = _parts()
    parts.payload["exp"] = NOW + 10 - leeway + 1
    assert _verify(parts.token()).claims["exp"] == parts.payload["exp"]
    parts.payload["exp"] -= 1
    assert _code(parts.token()) == "sdjwt.expired"


@pytest.mark.parametrize("name", ["nbf", "iat"])
def test_not_yet_valid(name: str) -> None:
    parts = _parts()
    parts.payload[name] = NOW + 10 + Policy().leeway + 1
    assert _code(parts.token()) == "sdjwt.not_yet_valid"


def test_missing_exp() -> None:
    parts = _parts()
    del parts.payload["exp"]
    assert _code(parts.token()) == "sdjwt.missing_claim"
    assert _verify(parts.token(), policy=Policy(require_exp=False)).claims["vct"] == VCT


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
def test_validity_claims_must_be_numbers(name: str) -> None:
    parts = _parts()
    parts.payload[name] = "tomorrow"
    assert _code(parts.token()) == "sdjwt.malformed"


def test_wrong_vct() -> None:
    token = _parts().token()
    assert _code(token, expected_vct="urn:kluis:diploma:1") == "sdjwt.wrong_vct"
    assert _verify(token, expected_vct=["urn:kluis:diploma:1", VCT]).vct == VCT


def test_aka_vcts_count_as_the_type() -> None:
    parts = _parts()
    parts.payload["aka_vcts"] = ["urn:kluis:pid:0"]
    assert _verify(parts.token(), expected_vct="urn:kluis:pid:0").vct == VCT


def test_missing_vct() -> None:
    parts = _parts()
    del parts.payload["vct"]
    assert _code(parts.token()) == "sdjwt.missing_claim"


# --- E. the Key Binding JWT ---


def test_kb_signed_by_another_key() -> None:
    parts = _parts()
    parts.holder_key = generate_signing_key(Alg.ES256)
    assert _code(parts.token()) == "sdjwt.kb_bad_signature"


def test_kb_wrong_nonce() -> None:
    parts = _parts()
    parts.kb_payload["nonce"] = "n-old"
    assert _code(parts.token()) == "sdjwt.kb_wrong_nonce"


def test_kb_wrong_aud() -> None:
    parts = _parts()
    parts.kb_payload["aud"] = "Zm9vYmFy"  # the same client id without its prefix
    assert _code(parts.token()) == "sdjwt.kb_wrong_aud"


def test_kb_aud_array_is_not_a_single_string() -> None:
    parts = _parts()
    parts.kb_payload["aud"] = [AUD]
    assert _code(parts.token()) == "sdjwt.kb_malformed"


def test_kb_stale_iat() -> None:
    parts = _parts()
    parts.kb_payload["iat"] = NOW + 10 - BINDING.max_age - Policy().leeway - 1
    assert _code(parts.token()) == "sdjwt.kb_stale"


def test_kb_iat_in_the_future() -> None:
    parts = _parts()
    parts.kb_payload["iat"] = NOW + 10 + Policy().leeway + 1
    assert _code(parts.token()) == "sdjwt.kb_stale"


def test_kb_expired() -> None:
    parts = _parts()
    parts.kb_payload["exp"] = NOW + 10 - Policy().leeway
    assert _code(parts.token()) == "sdjwt.kb_stale"


def test_kb_wrong_sd_hash_disclosure_removed_after_binding() -> None:
    parts = _parts()
    bound = parts.token()
    prefix = bound[: bound.rindex("~") + 1]
    parts.disclosures = parts.disclosures[1:]
    parts.sd_hash_over = prefix
    assert _code(parts.token()) == "sdjwt.kb_bad_sd_hash"


@pytest.mark.parametrize("typ", ["JWT", "dc+sd-jwt", None])
def test_kb_bad_typ(typ: Any) -> None:
    parts = _parts()
    parts.kb_header = {"alg": "ES256"} if typ is None else {"alg": "ES256", "typ": typ}
    assert _code(parts.token()) == "sdjwt.kb_bad_typ"


def test_kb_alg_none() -> None:
    parts = _parts()
    prefix = parts.token(kb=False)
    head = b64url_encode(json.dumps({"alg": "none", "typ": "kb+jwt"}).encode())
    body = b64url_encode(
        json.dumps({"nonce": NONCE, "aud": AUD, "iat": NOW, "sd_hash": digest_of(prefix)}).encode()
    )
    assert _code(prefix + f"{head}.{body}.") == "jws.alg_none"


def test_kb_alg_must_fit_the_cnf_key() -> None:
    parts = _parts()
    parts.kb_header = {"alg": "EdDSA", "typ": "kb+jwt"}
    assert _code(parts.token()) == "jws.key_alg_mismatch"


@pytest.mark.parametrize("name", ["iat", "nonce", "sd_hash"])
def test_kb_claims_are_required(name: str) -> None:
    parts = _parts()
    parts.kb_payload[name] = _DROP
    assert _code(parts.token()) == "sdjwt.kb_malformed"


def test_kb_needs_a_cnf() -> None:
    parts = _parts()
    del parts.payload["cnf"]
    assert _code(parts.token()) == "sdjwt.no_holder_key"


def test_kb_cnf_must_be_a_public_key() -> None:
    parts = _parts()
    parts.payload["cnf"] = {"jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    assert _code(parts.token()) == "jws.bad_key"


# --- F. status, through the injected checker ---


class _Revoked(Exception):
    """A test stand-in for status.revoked (not a KluisError: the catalogue stays exact)."""


class _Suspended(Exception):
    """A test stand-in for status.suspended."""


class _Checker:
    def __init__(self, error: type[Exception] | None = None) -> None:
        self.error = error
        self.calls: list[tuple[dict[str, Any], int]] = []

    def check_status(self, status: Any, *, now: int) -> None:
        self.calls.append((copy.deepcopy(status), now))
        if self.error is not None:
            raise self.error("status list says no")


@pytest.mark.parametrize("error", [_Revoked, _Suspended])
def test_status_hook_can_reject(error: type[Exception]) -> None:
    checker = _Checker(error)
    with pytest.raises(error):
        _verify(_parts().token(), status_checker=checker)
    assert checker.calls == [(STATUS, NOW + 10)]


def test_status_hook_is_asked_last() -> None:
    for tamper in (
        lambda p: p.payload.update(exp=NOW - 3600),
        lambda p: p.kb_payload.update(nonce="n-old"),
        lambda p: p.disclosures.append(p.disclosures[0]),
    ):
        parts = _parts()
        tamper(parts)
        checker = _Checker(_Revoked)
        with pytest.raises(KluisError):
            _verify(parts.token(), status_checker=checker)
        assert checker.calls == []


def test_status_hook_passes_and_is_skipped_without_status() -> None:
    checker = _Checker()
    _verify(_parts().token(), status_checker=checker)
    assert len(checker.calls) == 1
    without = _parts(_issued(status=None)).token()
    _verify(without, status_checker=checker)
    assert len(checker.calls) == 1


# --- the wallet on receipt ---


def test_verify_issued() -> None:
    token = _issued()
    verified = verify_issued(token, issuer_keys=KEYS, now=NOW, holder_key=HOLDER.public)
    assert {k: verified.claims[k] for k in CLAIMS} == CLAIMS


def test_verify_issued_refuses_a_kb_jwt() -> None:
    with pytest.raises(KluisError) as caught:
        verify_issued(_parts().token(), issuer_keys=KEYS, now=NOW)
    assert caught.value.code == "sdjwt.kb_unexpected"


def test_verify_issued_checks_the_holder_key() -> None:
    other = generate_signing_key(Alg.ES256).public
    for token, key, code in (
        (_issued(), other, "sdjwt.wrong_holder_key"),
        (_issued(holder_key=None), HOLDER.public, "sdjwt.no_holder_key"),
    ):
        with pytest.raises(KluisError) as caught:
            verify_issued(token, issuer_keys=KEYS, now=NOW, holder_key=key)
        assert caught.value.code == code


def test_verify_issued_runs_the_full_check() -> None:
    parts = _parts()
    parts.disclosures.append(format_disclosure("c2FsdHNhbHRzYWx0", "x", 1).encoded)
    with pytest.raises(KluisError) as caught:
        verify_issued(parts.token(kb=False), issuer_keys=KEYS, now=NOW)
    assert caught.value.code == "sdjwt.disclosure_not_referenced"


def test_issuer_key_map_by_kid() -> None:
    second = generate_signing_key(Alg.EDDSA, kid="issuer-2")
    keys = IssuerKeyMap.of({ISS: [ISSUER.public, second.public]})
    parts = _parts()
    parts.header = {"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": "issuer-2"}
    parts.issuer_key = second
    assert _verify(parts.token(), issuer_keys=keys).issuer == ISS
    del parts.header["kid"]
    assert _code(parts.token(), issuer_keys=keys) == "sdjwt.unknown_key"
