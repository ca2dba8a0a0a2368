"""``server.grant.GrantRelay`` without HTTP, on both stores: the limits that keep a relay's
records bounded, and the sweeper."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.grant import (
    GRANT_SCHEMA,
    GrantBusy,
    GrantExpired,
    GrantNotFound,
    GrantPolicy,
    GrantRelay,
    GrantRevoked,
    GrantTerms,
    ItemNotGranted,
)
from server.store import Store
from verifiers.http_signature import key_thumbprint

NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)


def _relay(store: Store, **limits: object) -> GrantRelay:
    store.migrate([GRANT_SCHEMA])
    return GrantRelay(store, GrantPolicy(**limits))  # type: ignore[arg-type]


def _grant(relay: GrantRelay, days: int = 30) -> tuple[str, str, str]:
    owner, agency = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    grant_id = secrets.token_urlsafe(16)
    relay.create(GrantTerms(grant_id, owner.public_key(), agency.public_key(),
                            NOW + timedelta(days=days), ("income",)), now=NOW)
    owner_id, agency_id = key_thumbprint(owner.public_key()), key_thumbprint(agency.public_key())
    relay.upload(grant_id, "income", owner_keyid=owner_id, version=1, sealed=b"\x01" * 80,
                 now=NOW)
    return grant_id, owner_id, agency_id


def _count(store: Store, sql: str) -> int:
    with store.transaction(readonly=True) as tx:
        return int(tx.execute(sql)[0][0])


def test_fetches_wait_when_the_wallet_has_not_collected_the_records(store: Store) -> None:
    relay = _relay(store, max_pending_fetches=3, max_pending_refusals=2)
    grant, owner, agency = _grant(relay)
    for _ in range(3):
        relay.fetch(grant, "income", keyid=agency, now=NOW)
    with pytest.raises(GrantBusy):
        relay.fetch(grant, "income", keyid=agency, now=NOW)
    ids = [r.id for r in relay.fetches(grant, owner_keyid=owner)]
    assert len(ids) == 3
    relay.ack(grant, ids, owner_keyid=owner)
    assert relay.fetch(grant, "income", keyid=agency, now=NOW).version == 1


def test_refusals_are_recorded_only_while_few_wait(store: Store) -> None:
    relay = _relay(store, max_pending_refusals=2)
    grant, owner, agency = _grant(relay)
    for _ in range(5):
        with pytest.raises(ItemNotGranted):
            relay.fetch(grant, "payslip", keyid=agency, now=NOW)
    records = relay.fetches(grant, owner_keyid=owner)
    assert [r.outcome for r in records] == ["refused", "refused"]


def test_revocation_is_never_dated_before_a_served_fetch(store: Store) -> None:
    relay = _relay(store)
    grant, owner, agency = _grant(relay)
    served = relay.fetch(grant, "income", keyid=agency, now=NOW + timedelta(seconds=5))
    revoked = relay.revoke(grant, owner_keyid=owner, now=NOW)  # a slow clock at the wallet
    assert revoked.revoked_at >= served.fetched_at and revoked.served == 1
    with pytest.raises(GrantRevoked):
        relay.fetch(grant, "income", keyid=agency, now=NOW + timedelta(seconds=6))
    with pytest.raises(GrantNotFound):
        relay.revoke(grant, owner_keyid=agency, now=NOW)


def test_the_sweeper_drops_expired_items_then_ended_grants(store: Store) -> None:
    relay = _relay(store, keep_ended=timedelta(days=1))
    grant, owner, agency = _grant(relay, days=2)
    live, _, _ = _grant(relay, days=30)
    later = NOW + timedelta(days=2)
    with pytest.raises(GrantExpired):
        relay.fetch(grant, "income", keyid=agency, now=later)
    relay.sweep(now=later)
    assert _count(store, "SELECT count(*) FROM grant_item WHERE sealed IS NOT NULL") == 1
    relay.sweep(now=later + timedelta(days=2))
    assert _count(store, "SELECT count(*) FROM grant_grant") == 2  # a refusal waits
    relay.ack(grant, [r.id for r in relay.fetches(grant, owner_keyid=owner)], owner_keyid=owner)
    relay.sweep(now=later + timedelta(days=2))
    assert _count(store, "SELECT count(*) FROM grant_grant") == 1
    with pytest.raises(GrantNotFound):
        relay.fetch(grant, "income", keyid=agency, now=later)
    assert relay.state(live, owner_keyid=relay_owner(store, live)).items[0][2] is True


def relay_owner(store: Store, grant: str) -> str:
    with store.transaction(readonly=True) as tx:
        return str(tx.execute("SELECT owner_keyid FROM grant_grant WHERE id = ?", (grant,))[0][0])
