"""Receiving credentials into the wallet: only verified ones, bound to our key, of a known
type, each logged once; holder keys stay in the vault; list and show with labels."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from consent_world import CLAIMS, NOW, Citizen, World
from values import shows_value

from vault import KluisError
from verifiers.credential_type import DIPLOMA, EMPLOYEE_CARD, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.jws import Alg, format_private_jwk, generate_signing_key, parse_jwk
from wallet.credential import (
    AlreadyHeld,
    PinnedIssuerKey,
    claim_label,
    find_credential,
    held_credentials,
    list_credentials,
    receive_credential,
)
from wallet.holder_key import holder_key, holder_keys, signing_key


def _receive(citizen: Citizen, token: object, keys: object = None) -> object:
    return receive_credential(citizen.vault, citizen.log, token,
                              issuer_keys=keys or citizen.trust(), now=NOW)


def _code(error: pytest.ExceptionInfo[KluisError]) -> str:
    return error.value.code


def test_a_good_credential_is_stored_with_type_issuer_claims_and_disclosable_paths(
    citizen: Citizen,
) -> None:
    stored = citizen.receive(PERSONAL_DATA)
    assert stored.vct == PERSONAL_DATA and stored.issuer == "https://brp.kluis.example"
    assert stored.received == NOW and stored.expires == NOW + timedelta(days=365)
    assert {k: stored.claims[k] for k in CLAIMS[PERSONAL_DATA]} == CLAIMS[PERSONAL_DATA]
    assert ("address", "postal_code") in stored.disclosable and ("bsn",) in stored.disclosable
    again = find_credential(citizen.vault, stored.id[:6])
    assert again.claims == stored.claims and again.disclosable == stored.disclosable
    assert [c.id for c in list_credentials(citizen.vault)] == [stored.id]


def test_receiving_logs_credential_received_in_the_same_transaction(citizen: Citizen) -> None:
    stored = citizen.receive(INCOME_STATEMENT)
    [entry] = [e for e in citizen.entries() if e["kind"] == "credential_received"]
    assert entry["credential"] == {
        "id": stored.id, "vct": INCOME_STATEMENT,
        "issuer": {"id": "https://belastingdienst.kluis.example",
                   "name": {"nl": "Belastingdienst", "en": "Tax Administration"}},
    }
    assert ["gross_income"] in entry["claims"]
    line = json.dumps(entry)
    assert not shows_value(line, "41250") and "30.001" not in line  # names, never values


def test_the_same_credential_twice_is_refused_and_logged_once(citizen: Citizen,
                                                              world: World) -> None:
    token = world.issue(DIPLOMA, citizen.holder())
    _receive(citizen, token)
    with pytest.raises(AlreadyHeld):
        _receive(citizen, token)
    assert sum(e["kind"] == "credential_received" for e in citizen.entries()) == 1


def test_bad_signature_is_refused(citizen: Citizen, world: World) -> None:
    token = world.issue(PERSONAL_DATA, citizen.holder())
    jwt, rest = token.split("~", 1)
    head, body, sig = jwt.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(KluisError) as error:
        _receive(citizen, f"{head}.{body}.{flipped}~{rest}")
    assert _code(error) in ("sdjwt.bad_signature", "jws.malformed")
    assert list_credentials(citizen.vault) == ()


def test_signed_by_a_key_the_trust_list_does_not_give_is_refused(citizen: Citizen,
                                                                 world: World) -> None:
    stranger = generate_signing_key(Alg.ES256, kid="issuer-0")
    token = world.issue(PERSONAL_DATA, citizen.holder(), key=stranger)
    with pytest.raises(KluisError) as error:
        _receive(citizen, token)
    assert _code(error) == "sdjwt.bad_signature"


def test_unknown_issuer_is_refused(citizen: Citizen, world: World) -> None:
    token = world.issue(PERSONAL_DATA, citizen.holder(), iss="https://fake-brp.example")
    with pytest.raises(KluisError) as error:
        _receive(citizen, token)
    assert _code(error) == "trustlist.not_an_issuer"
    assert citizen.entries() == []


def test_a_verifier_only_agency_cannot_issue(citizen: Citizen, world: World) -> None:
    token = world.issue(PERSONAL_DATA, citizen.holder(), iss="https://dev.kluis.example",
                        key=world.keys.dev)
    with pytest.raises(KluisError) as error:
        _receive(citizen, token)
    assert _code(error) == "trustlist.not_an_issuer"


def test_not_bound_to_any_key_is_refused(citizen: Citizen, world: World) -> None:
    with pytest.raises(KluisError) as error:
        _receive(citizen, world.issue(PERSONAL_DATA, None))
    assert _code(error) == "credential.not_bound"


def test_bound_to_someone_elses_key_is_refused(citizen: Citizen, world: World) -> None:
    other = generate_signing_key(Alg.ES256).public
    with pytest.raises(KluisError) as error:
        _receive(citizen, world.issue(PERSONAL_DATA, other))
    assert _code(error) == "credential.not_our_key"
    assert list_credentials(citizen.vault) == ()


def test_expired_is_refused(citizen: Citizen, world: World) -> None:
    token = world.issue(PERSONAL_DATA, citizen.holder(), now=NOW - timedelta(days=400))
    with pytest.raises(KluisError) as error:
        _receive(citizen, token)
    assert _code(error) == "sdjwt.expired"


def test_an_sd_jwt_with_key_binding_from_an_issuer_is_refused(citizen: Citizen,
                                                              world: World) -> None:
    """STANDARDS.md §1.3 rule 1: an issuer never sends an SD-JWT+KB."""
    token = world.issue(DIPLOMA, citizen.holder())
    key = signing_key(citizen.vault, citizen.holder())
    with_kb = present_sd_jwt(parse_issued(token), disclose=[["degree"]], holder_key=key,
                             nonce="n" * 16, aud="x", now=int(NOW.timestamp()))
    with pytest.raises(KluisError) as error:
        _receive(citizen, with_kb)
    assert _code(error) == "sdjwt.kb_unexpected"


@pytest.mark.parametrize("garbage", ["", "   ", "not a credential", "a.b.c~", "~~~", 42, None,
                                     b"bytes", "é" * 10, "x" * 1_000_001])
def test_garbage_is_refused_with_a_code(citizen: Citizen, garbage: object) -> None:
    with pytest.raises(KluisError) as error:
        _receive(citizen, garbage)
    assert _code(error).split(".")[0] in ("credential", "sdjwt", "jws")
    assert list_credentials(citizen.vault) == () and citizen.entries() == []


def test_claims_that_do_not_fit_the_type_are_refused(citizen: Citizen, world: World) -> None:
    bad = {**CLAIMS[DIPLOMA], "date_awarded": "31-08-2009"}
    with pytest.raises(KluisError) as error:
        _receive(citizen, world.issue(DIPLOMA, citizen.holder(), claims=bad))
    assert _code(error) == "credential_type.invalid_claims"


def test_a_pinned_issuer_key_is_for_developers_and_still_checks_the_signature(
    citizen: Citizen, world: World
) -> None:
    own = generate_signing_key(Alg.EDDSA)
    token = world.issue(DIPLOMA, citizen.holder(), key=own, iss="https://my-test-issuer.example")
    stored = _receive(citizen, token, PinnedIssuerKey(own.public))
    assert stored.issuer == "https://my-test-issuer.example"  # type: ignore[attr-defined]
    with pytest.raises(KluisError) as error:
        _receive(citizen, world.issue(DIPLOMA, citizen.holder()),
                 PinnedIssuerKey(generate_signing_key(Alg.ES256).public))
    assert _code(error) == "sdjwt.bad_signature"


def test_an_eddsa_holder_key_works_too(citizen: Citizen, world: World) -> None:
    key = holder_key(citizen.vault, Alg.EDDSA, now=NOW)
    stored = _receive(citizen, world.issue(EMPLOYEE_CARD, key.public))
    assert stored.holder_kid == key.kid  # type: ignore[attr-defined]


def test_expired_credentials_are_not_offered(citizen: Citizen, world: World) -> None:
    stored = citizen.receive(DIPLOMA, lifetime=timedelta(days=1))
    assert [c.id for c in held_credentials(citizen.vault, now=NOW)] == [stored.id]
    assert held_credentials(citizen.vault, now=NOW + timedelta(days=2)) == ()


def test_find_refuses_unknown_short_and_ambiguous_ids(citizen: Citizen) -> None:
    citizen.receive(DIPLOMA)
    for bad in ("zz", "abc", "0000000000000000", "not-hex!", "0" * 40):
        with pytest.raises(KluisError) as error:
            find_credential(citizen.vault, bad)
        assert _code(error) == "credential.not_found"


def test_views_follow_the_type_with_labels_in_both_languages(citizen: Citizen) -> None:
    stored = citizen.receive(PERSONAL_DATA)
    views = stored.views()
    assert [v.path for v in views] == [("given_name",), ("family_name",), ("birthdate",),
                                       ("bsn",), ("address",)]
    assert views[3].label == {"nl": "Burgerservicenummer (BSN)",
                              "en": "Citizen service number (BSN)"}
    assert all(v.disclosable for v in views)
    assert claim_label(PERSONAL_DATA, ("address", "postal_code")) == {
        "nl": "Adres – Postcode", "en": "Address – Postal code"}


# --- holder keys ------------------------------------------------------------------------


def test_holder_key_is_made_once_and_only_its_public_half_is_shown(citizen: Citizen) -> None:
    first = holder_key(citizen.vault, now=NOW)
    assert holder_key(citizen.vault, now=NOW + timedelta(days=1)) == first
    jwk = first.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid"} and "d" not in jwk
    assert parse_jwk(jwk).public_bytes() == first.public.public_bytes()
    assert [k.kid for k in holder_keys(citizen.vault)] == [first.kid]
    secret = format_private_jwk(signing_key(citizen.vault, first.public))["d"]
    assert secret not in repr(first) and secret not in json.dumps(jwk)


def test_the_private_key_is_in_the_vault_and_signs_for_the_public_one(citizen: Citizen) -> None:
    public = holder_key(citizen.vault, now=NOW).public
    private = signing_key(citizen.vault, public)
    signature = private.sign(b"hello")
    public.verify(b"hello", signature)
    citizen.vault.close()
    raw = (citizen.root / "vault.db").read_bytes()
    assert len(raw) > 4096 and b"holderkey" not in raw  # encrypted at rest: not even a name


def test_signing_key_for_a_foreign_key_is_not_found(citizen: Citizen) -> None:
    with pytest.raises(KluisError) as error:
        signing_key(citizen.vault, generate_signing_key(Alg.ES256).public)
    assert _code(error) == "holder_key.not_found"
