"""Access grants, the citizen's side (``specs/grant.md``): an agency may keep reading named
items for one purpose until a date; the citizen can stop it at any moment.

A grant is made by approving an agency's grant request (``wallet.grant_request``, evaluated by
the consent engine like any request) or on the citizen's own initiative (``Grants.create``:
an agency on the trust list and one of its registered purposes; credential claims within the
registration, and vault items). Either way, in **one vault transaction**, the grant is kept
(component ``grants``: the agency, its registered fetch and encryption keys, the purpose,
legal basis, processing activity and end date, and two fresh Ed25519 keys of its own: the
owner key that speaks for it at the relay, and the key that signs its items), its
``grant_created`` entry is logged, and the work for the relay is queued in the **outbox**:
register the grant, put each item, send the grant notice. Nothing leaves the vault before
that commit; ``wallet.grant_sync`` does the relay's part afterwards.

**Why an outbox, and not the relay call inside the transaction.** The vault's write lock must
not wait on a network, a relay that is down must not undo (or lose) the citizen's own change,
and a wallet that stops halfway must know what is left to do. So every change that the relay
must hear about (a new grant, an item changed in the vault, a revocation) writes a row to
``grants_outbox`` in the same transaction as the change itself; ``sync`` works through the
rows after the commit, deletes each one only once the relay confirmed it, and stops at the
first relay that cannot be reached, leaving the rest for the next sync. Vault item changes
reach the outbox through a vault subscriber, inside the change's own transaction.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import InvalidInput, ItemEvent, NotFound, NotPermitted, Schema, Transaction, Vault
from vault.item import format_time, parse_time
from verifiers import log_entry as le
from verifiers._document import LegalBasis, LocalizedText
from verifiers.claim_path import ClaimPath, path_text
from verifiers.grant_notice import format_grant_notice
from verifiers.jws import (
    Alg,
    SigningKey,
    format_private_jwk,
    generate_signing_key,
    parse_jwk,
    parse_private_jwk,
)
from verifiers.sealed_item import ITEM_PATTERN, parse_encryption_jwk
from verifiers.trustlist import Agency, NotRegistered, TrustList
from wallet.consent import Consent
from wallet.consent_log import ConsentLog
from wallet.evaluation import Evaluation
from wallet.grant_item import ItemSpec, Source
from wallet.grant_request import grant_element
from wallet.openid4vp import check_url
from wallet.trust import stored_trust_list

_V1 = """
CREATE TABLE grants_grant (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    agency TEXT NOT NULL,
    client_id TEXT NOT NULL,
    fetch_key TEXT NOT NULL,
    encryption_key TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    processing_activity TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    request_id TEXT,
    request_state TEXT,
    notice_uri TEXT,
    relay TEXT NOT NULL,
    owner_key BLOB NOT NULL,
    signing_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'revoking', 'revoked')),
    registered INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT,
    served INTEGER,
    error TEXT
);
CREATE TABLE grants_item (
    grant_id TEXT NOT NULL REFERENCES grants_grant (id),
    item TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('credential', 'vault')),
    name TEXT NOT NULL,
    claims TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    error TEXT,
    PRIMARY KEY (grant_id, item)
);
CREATE INDEX grants_item_source ON grants_item (source, name);
CREATE TABLE grants_outbox (
    id INTEGER PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants_grant (id),
    job TEXT NOT NULL CHECK (job IN ('register', 'upload', 'notify', 'revoke')),
    item TEXT,
    created TEXT NOT NULL
);
CREATE TABLE grants_fetch (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants_grant (id),
    seq INTEGER NOT NULL
);
"""

GRANTS_SCHEMA = Schema("grants", (_V1,))
"""The grants, their items, the outbox and the fetches already logged, in the vault."""

MIN_PREFIX = 4


class NoSuchGrant(NotFound):
    code = "grant.no_such_grant"
    en = "There is no grant '{id}' in your wallet. See 'kluis grant list'."
    nl = "Er is geen machtiging '{id}' in uw wallet. Zie 'kluis grant list'."


class AmbiguousGrant(InvalidInput):
    code = "grant.ambiguous_id"
    en = "More than one grant starts with '{id}'. Type more of its id."
    nl = "Meer dan één machtiging begint met '{id}'. Typ meer van het nummer."


class NotAGrantRequest(InvalidInput):
    code = "grant.not_a_grant_request"
    en = "This request asks for a one-off release, not for ongoing access. Use 'kluis request'."
    nl = (
        "Dit verzoek vraagt om een eenmalige verstrekking, niet om doorlopende inzage. "
        "Gebruik 'kluis request'."
    )


class NoGrantKeys(NotPermitted):
    code = "grant.no_agency_keys"
    en = (
        "{agency} has no registered keys for grants (an Ed25519 signing key and an X25519 "
        "encryption key) on the trust list, so it cannot be given ongoing access."
    )
    nl = (
        "{agency} heeft op de vertrouwenslijst geen sleutels voor inzage (een Ed25519-sleutel "
        "en een X25519-sleutel). Doorlopende inzage is daarom niet mogelijk."
    )


class ChooseAgencyKey(InvalidInput):
    code = "grant.choose_agency_key"
    en = "{agency} has more than one key for this. Name the one to use ({kids})."
    nl = "{agency} heeft hiervoor meer dan één sleutel. Noem de sleutel die u wilt ({kids})."


class BeyondRegistration(NotPermitted):
    code = "grant.beyond_registration"
    en = "{agency} is not registered to receive '{claim}' for this purpose. It is not granted."
    nl = (
        "{agency} is niet geregistreerd om '{claim}' voor dit doel te ontvangen. "
        "Het wordt niet gedeeld."
    )


class BadGrantTerms(InvalidInput):
    code = "grant.bad_grant"
    en = "The grant cannot be made like this: {why}."
    nl = "Deze machtiging kan zo niet gemaakt worden: {why_nl}."


class Status(StrEnum):
    ACTIVE = "active"
    REVOKING = "revoking"
    """Revoked by the citizen; the relay has not confirmed it yet (the next sync will)."""
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class GrantItemState:
    spec: ItemSpec
    version: int
    sha256: str | None
    error: str | None


@dataclass(frozen=True)
class Grant:
    """One grant in the wallet."""

    id: str
    created: datetime
    agency: le.Party
    client_id: str
    fetch_key: dict[str, Any]
    encryption_key: dict[str, Any]
    purpose: le.Purpose
    legal_basis: LegalBasis
    processing_activity: str
    valid_until: datetime
    request_id: str | None
    request_state: str | None
    notice_uri: str | None
    relay: str
    state: str
    registered: bool
    revoked_at: datetime | None
    served: int | None
    error: str | None
    items: tuple[GrantItemState, ...]

    def status(self, now: datetime) -> Status:
        if self.state == "revoked":
            return Status.REVOKED
        if self.state == "revoking":
            return Status.REVOKING
        return Status.EXPIRED if now >= self.valid_until else Status.ACTIVE


@dataclass(frozen=True)
class Read:
    """One fetch of a grant as the citizen's log holds it."""

    item: str
    at: datetime
    outcome: str
    version: int | None
    error: str | None


@dataclass(frozen=True)
class GrantKeys:
    """The private keys of one grant (only ever in the vault)."""

    owner: Ed25519PrivateKey
    signer: SigningKey


class Grants:
    """The grants of one open vault (``Wallet.grants``)."""

    def __init__(self, vault: Vault, log: ConsentLog, consent: Consent) -> None:
        self._vault = vault
        self._log = log
        self._consent = consent

    def install(self) -> None:
        """Queue a new version of every granted vault item that changes, inside the change's
        own transaction."""
        self._vault.subscribe(self._on_item_event)

    def _on_item_event(self, event: ItemEvent, tx: Transaction) -> None:
        rows = tx.query(
            "SELECT i.grant_id, i.item FROM grants_item i JOIN grants_grant g"
            " ON g.id = i.grant_id WHERE i.source = 'vault' AND i.name = ? AND g.state = 'active'",
            (event.name,))
        for grant_id, item in rows:
            _enqueue(tx, str(grant_id), "upload", str(item), event.time)

    # -- making grants -------------------------------------------------------------------------

    def create(self, *, agency_id: str, purpose_id: str, items: Sequence[ItemSpec],
               valid_until: datetime, relay: str, now: datetime,
               fetch_kid: str | None = None, encryption_kid: str | None = None) -> Grant:
        """A grant on the citizen's own initiative: ``agency_id`` (on the trust list, as a
        verifier) may read ``items`` for its registered purpose ``purpose_id`` until
        ``valid_until``, through the relay at ``relay``. Credential claims must lie within
        the registration; vault items must exist. The agency's keys are those named by
        ``fetch_kid`` / ``encryption_kid``, or its only Ed25519 and X25519 key. Raises
        ``trustlist.*`` lookups, ``grant.beyond_registration``, ``grant.no_agency_keys``,
        ``grant.choose_agency_key``, ``grant.bad_grant``, ``vault.no_such_item``."""
        trust = stored_trust_list(self._vault, now=now).trust_list
        agency = trust.agency(agency_id)
        client_id = agency.client_id or agency.id
        registration = trust.registration(client_id, purpose_id)
        for spec in items:
            self._check_item(trust, agency, client_id, purpose_id, spec)
        purpose = le.Purpose(registration.id, registration.dpv, registration.description)
        with self._vault.transaction() as tx:
            return self._insert(tx, agency, client_id, purpose, registration.legal_basis,
                                registration.processing_activity, items, valid_until,
                                relay, now, keys=_agency_keys(agency, fetch_kid, encryption_kid))

    def approve(self, request_id: str, *, relay: str, now: datetime) -> Grant:
        """Approve the grant request ``request_id`` (kept by the consent engine): decided once,
        as any request, and only when the engine finds it ready; each credential query becomes
        an item holding the claims it asks for. Raises ``grant.not_a_grant_request``,
        ``grant.bad_request``, ``grant.no_agency_keys``, ``grant.bad_grant`` and what
        ``Consent.decide_grant`` raises."""
        stored = self._consent.find(request_id)
        element = grant_element(stored.request)
        if element is None:
            raise NotAGrantRequest()

        def create(tx: Transaction, evaluation: Evaluation) -> Grant:
            agency = evaluation.verifier
            if agency is None or evaluation.registration is None:
                raise NotAGrantRequest("specs/grant.md §3: the agency is not registered")
            request = evaluation.request
            specs = [ItemSpec(line.query_id, Source.CREDENTIAL, line.vct,
                              tuple(line.match.requested)) for line in evaluation.lines]
            purpose = le.Purpose(request.purpose.purpose_id, request.purpose.dpv,
                                 request.purpose.description)
            keys = _agency_keys(agency, element.fetch_kid, element.encryption_kid)
            return self._insert(tx, agency, request.client_id, purpose,
                                request.purpose.legal_basis, request.purpose.processing_activity,
                                specs, element.valid_until, relay, now, keys=keys,
                                request=(request.id, request.state, element.notice_uri))

        return self._consent.decide_grant(stored.id, now=now, create=create)

    def trusted_agency(self, agency_id: str, *, now: datetime) -> Agency:
        """The agency ``agency_id`` on the wallet's trust list (to name it before a grant is
        made). Raises ``trust.no_list`` and ``trustlist.unknown_agency``."""
        return stored_trust_list(self._vault, now=now).trust_list.agency(agency_id)

    def _check_item(self, trust: TrustList, agency: Agency, client_id: str, purpose_id: str,
                    spec: ItemSpec) -> None:
        if spec.source is Source.VAULT:
            self._vault.get(spec.name)  # raises vault.no_such_item
            return
        try:
            over = trust.excess_claims(client_id, purpose_id, spec.name, spec.claims)
        except NotRegistered:
            over = spec.claims or (("vct",),)
        if over or not spec.claims:
            claim = path_text(over[0]) if over else spec.name
            raise BeyondRegistration(f"specs/trustlist.md §4: {claim}",
                                     agency=agency.names.en, claim=claim)

    def _insert(self, tx: Transaction, agency: Agency, client_id: str, purpose: le.Purpose,
                legal_basis: LegalBasis, activity: str, items: Sequence[ItemSpec],
                valid_until: datetime, relay: str, now: datetime, *,
                keys: tuple[dict[str, Any], dict[str, Any]],
                request: tuple[str, str | None, str | None] | None = None) -> Grant:
        _check_terms(items, valid_until, relay, now)
        # Hex, not base64url: a citizen types the id's start at the CLI, and an id starting
        # with '-' would read as an option there.
        grant_id = secrets.token_hex(16)
        owner = Ed25519PrivateKey.generate()
        signer = generate_signing_key(Alg.EDDSA)
        party = le.Party.of(agency)
        request_id, state, notice_uri = request or (None, None, None)
        if notice_uri is not None:
            check_url(notice_uri)
        tx.execute(
            "INSERT INTO grants_grant (id, created, agency, client_id, fetch_key, encryption_key,"
            " purpose, legal_basis, processing_activity, valid_until, request_id, request_state,"
            " notice_uri, relay, owner_key, signing_key, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            (grant_id, format_time(now), json.dumps(party.json()), client_id,
             json.dumps(keys[0]), json.dumps(keys[1]), json.dumps(purpose.json()),
             legal_basis.model_dump_json(exclude_none=True), activity, format_time(valid_until),
             request_id, state, notice_uri, relay.rstrip("/"), owner.private_bytes_raw(),
             json.dumps(format_private_jwk(signer))),
        )
        tx.executemany(
            "INSERT INTO grants_item (grant_id, item, source, name, claims) VALUES (?, ?, ?, ?, ?)",
            [(grant_id, s.item, s.source.value, s.name, json.dumps([list(p) for p in s.claims]))
             for s in items])
        record = le.grant_created(
            grant_id, party, purpose=purpose, legal_basis=legal_basis,
            processing_activity=activity, valid_until=valid_until,
            items=[_log_item(s) for s in items], request_id=request_id)
        self._log.append([record], now=now, tx=tx)
        _enqueue(tx, grant_id, "register", None, now)
        for spec in items:
            _enqueue(tx, grant_id, "upload", spec.item, now)
        if notice_uri is not None:
            _enqueue(tx, grant_id, "notify", None, now)
        return _grant_in(tx, grant_id)

    # -- revoking ------------------------------------------------------------------------------

    def revoke(self, ident: str, *, now: datetime) -> Grant:
        """Stop the grant: from now on nothing of it is uploaded, and the revocation is queued
        for the relay (``sync`` sends it first, then logs ``grant_revoked`` with the relay's
        time). Revoking a grant that is revoked or being revoked changes nothing. Raises
        ``grant.no_such_grant``, ``grant.ambiguous_id``."""
        grant = self.find(ident)
        if grant.state != "active":
            return grant
        with self._vault.transaction() as tx:
            tx.execute("DELETE FROM grants_outbox WHERE grant_id = ? AND job != 'register'",
                       (grant.id,))
            tx.execute("UPDATE grants_grant SET state = 'revoking' WHERE id = ? AND"
                       " state = 'active'", (grant.id,))
            _enqueue(tx, grant.id, "revoke", None, now)
            return _grant_in(tx, grant.id)

    # -- reading -------------------------------------------------------------------------------

    def grants(self) -> tuple[Grant, ...]:
        """Every grant in the wallet, newest first."""
        reader = self._vault.reader()
        rows = reader.query("SELECT id FROM grants_grant ORDER BY created DESC, id")
        return tuple(_grant_in(reader, str(row[0])) for row in rows)

    def find(self, ident: str) -> Grant:
        """The grant whose id is ``ident`` or starts with it (at least 4 characters).
        Raises ``grant.no_such_grant`` or ``grant.ambiguous_id``."""
        wanted = ident.strip()
        if not MIN_PREFIX <= len(wanted) <= 64 or not all(c.isalnum() or c in "-_"
                                                          for c in wanted):
            raise NoSuchGrant(id=ident[:40])
        reader = self._vault.reader()
        rows = reader.query("SELECT id FROM grants_grant WHERE substr(id, 1, ?) = ? LIMIT 2",
                            (len(wanted), wanted))
        if not rows:
            raise NoSuchGrant(id=ident)
        if len(rows) > 1:
            raise AmbiguousGrant(id=ident)
        return _grant_in(reader, str(rows[0][0]))

    def reads(self, grant_id: str) -> tuple[Read, ...]:
        """The fetches of the grant that reached the log, oldest first (from their
        ``grant_used`` entries)."""
        rows = self._vault.reader().query(
            "SELECT seq FROM grants_fetch WHERE grant_id = ? ORDER BY seq", (grant_id,))
        out = []
        for (seq,) in rows:
            entry = self._log.entry(int(seq))
            at = datetime.strptime(str(entry["fetched_at"]), "%Y-%m-%dT%H:%M:%SZ")
            out.append(Read(str(entry.get("item")), at.replace(tzinfo=UTC),
                            str(entry.get("outcome")), entry.get("version"), entry.get("error")))
        return tuple(out)

    def pending(self, grant_id: str) -> tuple[tuple[str, str | None], ...]:
        """The outbox rows of the grant not yet done: (job, item)."""
        rows = self._vault.reader().query(
            "SELECT job, item FROM grants_outbox WHERE grant_id = ? ORDER BY id", (grant_id,))
        return tuple((str(job), None if item is None else str(item)) for job, item in rows)

    def keys(self, grant_id: str) -> GrantKeys:
        """The grant's private keys; raises ``grant.no_such_grant``."""
        row = self._vault.reader().query_one(
            "SELECT owner_key, signing_key FROM grants_grant WHERE id = ?", (grant_id,))
        if row is None:
            raise NoSuchGrant(id=grant_id)
        return GrantKeys(Ed25519PrivateKey.from_private_bytes(bytes(row[0])),
                         parse_private_jwk(json.loads(str(row[1]))))

    def notice(self, grant: Grant) -> dict[str, Any]:
        """The grant notice for the agency (``specs/grant.md`` §3.2)."""
        items: list[dict[str, Any]] = []
        for state in grant.items:
            spec = state.spec
            if spec.source is Source.VAULT:
                items.append({"id": spec.item, "vault_item": spec.name})
            else:
                items.append({"id": spec.item, "vct": spec.name,
                              "claims": [list(p) for p in spec.claims]})
        return format_grant_notice(
            grant=grant.id, relay=grant.relay, agency=grant.agency.id,
            valid_until=grant.valid_until, fetch_kid=str(grant.fetch_key.get("kid", "")),
            encryption_kid=str(grant.encryption_key.get("kid", "")),
            wallet_key=self.keys(grant.id).signer.public, items=items,
            request=grant.request_id, state=grant.request_state)

    @property
    def vault(self) -> Vault:
        return self._vault

    @property
    def log(self) -> ConsentLog:
        return self._log


# --- inside -------------------------------------------------------------------------------------


def _agency_keys(agency: Agency, fetch_kid: str | None,
                 encryption_kid: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The agency's Ed25519 signing key (fetches) and X25519 key (sealing) from the trust
    list: those named by kid, else the first of each kind."""
    fetch = [k for k in agency.jwks.keys if k.crv == "Ed25519"
             and (fetch_kid is None or k.kid == fetch_kid)]
    sealing = agency.encryption_jwks.keys if agency.encryption_jwks else ()
    encryption = [k for k in sealing if encryption_kid is None or k.kid == encryption_kid]
    if not fetch or not encryption:
        raise NoGrantKeys("specs/grant.md §3: jwks (Ed25519) and encryption_jwks (X25519)",
                          agency=agency.names.en)
    if len(fetch) > 1 or len(encryption) > 1:
        raise ChooseAgencyKey("specs/grant.md §3: name the keys by kid",
                              agency=agency.names.en,
                              kids=", ".join([k.kid for k in fetch] + [k.kid for k in encryption]))
    fetch_jwk = fetch[0].model_dump(exclude_none=True)
    encryption_jwk = encryption[0].model_dump(exclude_none=True)
    parse_jwk(fetch_jwk)
    parse_encryption_jwk(encryption_jwk)
    return fetch_jwk, encryption_jwk


def _check_terms(items: Sequence[ItemSpec], valid_until: datetime, relay: str,
                 now: datetime) -> None:
    ids = [s.item for s in items]
    if not ids:
        raise BadGrantTerms(why="it has no items", why_nl="er zijn geen gegevens gekozen")
    if len(set(ids)) != len(ids) or not all(re.match(ITEM_PATTERN, i) for i in ids):
        raise BadGrantTerms(why="each item needs its own short name (letters, digits, - . _ ~)",
                            why_nl="elk gegeven heeft een eigen korte naam nodig (letters, "
                                   "cijfers, - . _ ~)")
    if valid_until <= now:
        raise BadGrantTerms(why="its end date has passed", why_nl="de einddatum is voorbij")
    check_url(relay)


def _log_item(spec: ItemSpec) -> le.GrantItem:
    if spec.source is Source.VAULT:
        return le.GrantItem(spec.item, vault_item=spec.name)
    return le.GrantItem(spec.item, claims=[le.ClaimRef(spec.name, p) for p in spec.claims])


def _enqueue(tx: Transaction, grant_id: str, job: str, item: str | None,
             now: datetime) -> None:
    tx.execute("INSERT INTO grants_outbox (grant_id, job, item, created) VALUES (?, ?, ?, ?)",
               (grant_id, job, item, format_time(now)))


_COLUMNS = ("id, created, agency, client_id, fetch_key, encryption_key, purpose, legal_basis,"
            " processing_activity, valid_until, request_id, request_state, notice_uri, relay,"
            " state, registered, revoked_at, served, error")


def _grant_in(tx: Transaction, grant_id: str) -> Grant:
    row = tx.query_one(f"SELECT {_COLUMNS} FROM grants_grant WHERE id = ?",  # noqa: S608
                       (grant_id,))
    if row is None:
        raise NoSuchGrant(id=grant_id)
    (ident, created, agency, client_id, fetch_key, encryption_key, purpose, basis, activity,
     until, request_id, request_state, notice_uri, relay, state, registered, revoked_at, served,
     error) = row
    items = tx.query("SELECT item, source, name, claims, version, sha256, error FROM grants_item"
                     " WHERE grant_id = ? ORDER BY item", (grant_id,))
    party = json.loads(str(agency))
    names = party.get("name", {})
    purpose_doc = json.loads(str(purpose))
    return Grant(
        id=str(ident), created=parse_time(str(created)),
        agency=le.Party(str(party["id"]), names.get("nl"), names.get("en")),
        client_id=str(client_id), fetch_key=json.loads(str(fetch_key)),
        encryption_key=json.loads(str(encryption_key)),
        purpose=le.Purpose(str(purpose_doc["id"]), str(purpose_doc["dpv"]),
                           LocalizedText.model_validate(purpose_doc["description"])),
        legal_basis=LegalBasis.model_validate_json(str(basis)),
        processing_activity=str(activity), valid_until=parse_time(str(until)),
        request_id=_opt(request_id), request_state=_opt(request_state),
        notice_uri=_opt(notice_uri), relay=str(relay), state=str(state),
        registered=bool(registered),
        revoked_at=None if revoked_at is None else parse_time(str(revoked_at)),
        served=None if served is None else int(served), error=_opt(error),
        items=tuple(_item_state(r) for r in items),
    )


def _item_state(row: Sequence[Any]) -> GrantItemState:
    item, source, name, claims, version, sha256, error = row
    paths: tuple[ClaimPath, ...] = tuple(tuple(p) for p in json.loads(str(claims)))
    return GrantItemState(ItemSpec(str(item), Source(str(source)), str(name), paths),
                          int(version), _opt(sha256), _opt(error))


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
