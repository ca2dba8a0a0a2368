"""Bringing the relay in step with the wallet's grants, and the relay's records into the log
(``specs/grant.md`` §6).

``sync_grants`` does three things, in this order:

1. it queues a new version of every credential-backed item whose content changed (a newer
   credential arrived; vault items are queued by the vault subscriber as they change);
2. it works through the outbox (``wallet.grant``) in order: register a grant, seal and put
   an item (or withdraw it when it left the vault), post the grant notice, revoke. Each row
   is deleted only after the relay confirmed it; a relay that cannot be reached stops the
   round and leaves the rest for the next sync; a refusal that will not change (the grant
   ended, the item is too large) is noted on the grant or item and the row dropped;
3. it collects the relay's record of every fetch of every live (or recently ended) grant,
   appends one ``grant_used`` entry per fetch not logged before (the relay's fetch id is the
   key), and only then acknowledges them at the relay, so a crash in between logs nothing
   twice and loses nothing.

A revocation is sent before anything else of its grant; once the relay confirms it, the
fetch records up to it, the ``grant_revoked`` entry (with the relay's time and its count of
served fetches) and any refused attempts after it are appended in one batch, in time order.

``kluis grant sync`` runs it, and so does every ``kluis grant`` command that changes a grant,
right after its own change committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault import KluisError, Unavailable
from vault.item import format_time
from verifiers import log_entry as le
from verifiers.grant_fetch import BadAnswer
from verifiers.jws import parse_jwk
from verifiers.sealed_item import GrantedItem, parse_encryption_jwk, seal_item
from verifiers.tlog import Record
from wallet.grant import Grant, Grants, NoGrantKeys, Status
from wallet.grant_item import ItemContent, Source, TooLarge, item_content
from wallet.grant_relay import GrantClient, GrantRefused, RelayFetch, refusal
from wallet.transport import Transport

KEEP_COLLECTING = timedelta(days=30)
"""How long after a grant ended the wallet still collects refused attempts (the relay keeps
an ended grant as long)."""
MAX_ROUNDS = 100


@dataclass
class SyncReport:
    """What one sync did. ``stopped``: the code that stopped it (the relay out of reach),
    leaving ``waiting`` outbox rows for the next sync."""

    registered: int = 0
    uploaded: int = 0
    withdrawn: int = 0
    notified: int = 0
    revoked: list[str] = field(default_factory=list)
    logged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    waiting: int = 0
    stopped: str | None = None


class _Stop(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def utc_now() -> datetime:
    return datetime.now(UTC)


def sync_grants(grants: Grants, transport: Transport, *, now: datetime,
                clock: Callable[[], datetime] = utc_now) -> SyncReport:
    """One round of ``specs/grant.md`` §6 (module docstring); what it did. Never raises for
    the relay: an unreachable relay is ``report.stopped``; raises only what the vault and the
    log raise."""
    report = SyncReport()
    run = _Run(grants, transport, now, clock, report)
    try:
        run.refresh_credentials()
        run.work_outbox()
        run.collect_all()
    except _Stop as stop:
        report.stopped = stop.code
    row = grants.vault.reader().query_one("SELECT count(*) FROM grants_outbox")
    report.waiting = 0 if row is None else int(row[0])
    return report


class _Run:
    def __init__(self, grants: Grants, transport: Transport, now: datetime,
                 clock: Callable[[], datetime], report: SyncReport) -> None:
        self.grants = grants
        self.vault = grants.vault
        self.transport = transport
        self.now = now
        self.clock = clock
        self.report = report

    def client(self, grant: Grant) -> GrantClient:
        return GrantClient(grant.relay, grant.id, self.grants.keys(grant.id).owner,
                           self.transport, clock=self.clock)

    # -- 1. credentials ------------------------------------------------------------------------

    def refresh_credentials(self) -> None:
        for grant in self.grants.grants():
            if grant.status(self.now) is not Status.ACTIVE:
                continue
            for state in grant.items:
                if state.spec.source is not Source.CREDENTIAL:
                    continue
                try:
                    content = item_content(self.vault, state.spec, now=self.now)
                except TooLarge:
                    continue  # noted when the upload is tried
                digest = content.sha256 if content is not None else None
                if digest != state.sha256 and not self._queued(grant.id, state.spec.item):
                    with self.vault.transaction() as tx:
                        tx.execute("INSERT INTO grants_outbox (grant_id, job, item, created)"
                                   " VALUES (?, 'upload', ?, ?)",
                                   (grant.id, state.spec.item, format_time(self.now)))

    def _queued(self, grant_id: str, item: str) -> bool:
        return self.vault.reader().query_one(
            "SELECT 1 FROM grants_outbox WHERE grant_id = ? AND job = 'upload' AND item = ?",
            (grant_id, item)) is not None

    # -- 2. the outbox -------------------------------------------------------------------------

    def work_outbox(self) -> None:
        jobs = self.vault.reader().query(
            "SELECT id, grant_id, job, item FROM grants_outbox ORDER BY id")
        done: set[tuple[str, str, str]] = set()
        for job_id, grant_id, job, item in jobs:
            key = (str(grant_id), str(job), str(item))
            if key in done or not self._exists(int(job_id)):
                continue  # coalesced with an earlier row, or dropped by a revocation
            grant = self.grants.find(str(grant_id))
            try:
                self._do(grant, str(job), None if item is None else str(item))
            except GrantRefused as error:
                problem = str(error.fields.get("problem", error.code))
                if problem.startswith("httpsig."):
                    # The relay did not accept our signature (a clock far off, ...): nothing
                    # about the job itself; try again next round.
                    raise _Stop(problem) from None
                self._failed(grant, str(job), item, problem)
                if job == "revoke":
                    continue  # a revocation is never given up: it stays for the next sync
            except TooLarge as error:
                self._failed(grant, str(job), item, error.code)
            except (Unavailable, BadAnswer) as error:
                raise _Stop(str(error.fields.get("problem", error.code))) from None
            done.add(key)
            with self.vault.transaction() as tx:
                tx.execute("DELETE FROM grants_outbox WHERE id <= ? AND grant_id = ? AND job = ?"
                           " AND (item = ? OR (item IS NULL AND ? IS NULL))",
                           (int(job_id), grant_id, job, item, item))

    def _exists(self, job_id: int) -> bool:
        return self.vault.reader().query_one(
            "SELECT 1 FROM grants_outbox WHERE id = ?", (job_id,)) is not None

    def _do(self, grant: Grant, job: str, item: str | None) -> None:
        if job == "revoke":
            self._revoke(grant)
            return
        if grant.state != "active" or grant.status(self.now) is not Status.ACTIVE:
            return  # an ended grant gets nothing more
        if job == "register":
            self._register(grant)
        elif job == "notify":
            self._notify(grant)
        elif job == "upload" and item is not None and grant.registered:
            self._upload(grant, item)

    def _register(self, grant: Grant) -> None:
        agency = parse_jwk(grant.fetch_key).key
        if not isinstance(agency, Ed25519PublicKey):
            raise NoGrantKeys("RFC 9421 §3.3.6: fetches are signed with Ed25519",
                              agency=grant.agency.en or grant.agency.id)
        self.client(grant).create(agency_key=agency, valid_until=grant.valid_until,
                                  items=[s.spec.item for s in grant.items])
        with self.vault.transaction() as tx:
            tx.execute("UPDATE grants_grant SET registered = 1 WHERE id = ?", (grant.id,))
        self.report.registered += 1

    def _upload(self, grant: Grant, item: str) -> None:
        state = next((s for s in grant.items if s.spec.item == item), None)
        if state is None:
            return
        content = item_content(self.vault, state.spec, now=self.now)
        client = self.client(grant)
        if content is None:
            if state.sha256 is not None:
                client.withdraw(item)
                self._set_item(grant.id, item, state.version, None)
                self.report.withdrawn += 1
            return
        if content.sha256 == state.sha256:
            return
        version = state.version + 1
        client.upload(item, version=version, sealed=self._seal(grant, item, version, content))
        self._set_item(grant.id, item, version, content.sha256)
        self.report.uploaded += 1

    def _seal(self, grant: Grant, item: str, version: int, content: ItemContent) -> bytes:
        granted = GrantedItem(grant.id, item, version, content.media_type, content.content,
                              self.now)
        return seal_item(granted, signer=self.grants.keys(grant.id).signer,
                         recipient=parse_encryption_jwk(grant.encryption_key))

    def _set_item(self, grant_id: str, item: str, version: int, sha256: str | None) -> None:
        with self.vault.transaction() as tx:
            tx.execute("UPDATE grants_item SET version = ?, sha256 = ?, error = NULL"
                       " WHERE grant_id = ? AND item = ?", (version, sha256, grant_id, item))

    def _notify(self, grant: Grant) -> None:
        if grant.notice_uri is None:
            return
        body = json.dumps(self.grants.notice(grant), separators=(",", ":")).encode()
        answer = self.transport.request(
            "POST", grant.notice_uri,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=body, timeout=15.0)
        if not 200 <= answer.status < 300:
            raise refusal(answer)
        self.report.notified += 1

    def _revoke(self, grant: Grant) -> None:
        if not grant.registered:
            self._log_revocation(grant, self.now, 0, [])
            return
        client = self.client(grant)
        try:
            done = client.revoke()
            revoked_at, served = done.revoked_at, done.served
        except GrantRefused as error:
            if error.fields.get("problem") != "grant.not_found":
                raise
            revoked_at, served = self.now, 0  # the relay already forgot it (long ended)
        later: list[RelayFetch] = []
        for _ in range(MAX_ROUNDS):
            # Records come in the relay's commit order: every fetch up to the revocation,
            # then the attempts it refused.
            batch = client.fetches(limit=100)
            before = [r for r in batch if r.fetched_at <= revoked_at]
            later = [r for r in batch if r.fetched_at > revoked_at]
            if before:
                self._log_used(grant, before)
                client.ack([r.id for r in before])
            if later or len(batch) < 100:
                break
        self._log_revocation(grant, revoked_at, served, later)
        client.ack([r.id for r in later])
        self.report.revoked.append(grant.id)

    def _log_revocation(self, grant: Grant, revoked_at: datetime, served: int,
                        records: Sequence[RelayFetch]) -> None:
        revocation = le.grant_revoked(grant.id, grant.agency, revoked_at=revoked_at,
                                      served=served)
        with self.vault.transaction() as tx:
            new = [r for r in records if tx.query_one(
                "SELECT 1 FROM grants_fetch WHERE id = ?", (r.id,)) is None]
            before = [r for r in new if r.fetched_at <= revoked_at]
            after = [r for r in new if r.fetched_at > revoked_at]
            batch = ([_used(grant, r) for r in before] + [revocation]
                     + [_used(grant, r) for r in after])
            appended = self.grants.log.append(batch, now=self.now, tx=tx)
            seqs = [e.seq for e in appended.entries]
            fetch_seqs = seqs[:len(before)] + seqs[len(before) + 1:]
            tx.executemany("INSERT INTO grants_fetch (id, grant_id, seq) VALUES (?, ?, ?)",
                           [(r.id, grant.id, s) for r, s in zip(before + after, fetch_seqs,
                                                                strict=True)])
            tx.execute("UPDATE grants_grant SET state = 'revoked', revoked_at = ?, served = ?"
                       " WHERE id = ?", (format_time(revoked_at), served, grant.id))
            tx.execute("DELETE FROM grants_outbox WHERE grant_id = ?", (grant.id,))
        self.report.logged += len(new)

    def _failed(self, grant: Grant, job: str, item: Any, code: str) -> None:
        with self.vault.transaction() as tx:
            if job == "upload" and item is not None:
                tx.execute("UPDATE grants_item SET error = ? WHERE grant_id = ? AND item = ?",
                           (code, grant.id, str(item)))
            else:
                tx.execute("UPDATE grants_grant SET error = ? WHERE id = ?", (code, grant.id))
            if job == "register":  # nothing else of this grant can reach the relay
                tx.execute("DELETE FROM grants_outbox WHERE grant_id = ? AND job != 'revoke'",
                           (grant.id,))
        self.report.failed.append((grant.id, code))

    # -- 3. the record of fetches --------------------------------------------------------------

    def collect_all(self) -> None:
        for grant in self.grants.grants():
            if not grant.registered or grant.state == "revoking":
                continue
            ended = grant.revoked_at or grant.valid_until
            if grant.status(self.now) is not Status.ACTIVE and self.now - ended > KEEP_COLLECTING:
                continue
            self.collect(grant)

    def collect(self, grant: Grant) -> None:
        client = self.client(grant)
        try:
            for _ in range(MAX_ROUNDS):
                records = client.fetches(limit=100)
                if not records:
                    return
                self._log_used(grant, records)
                client.ack([r.id for r in records])
        except GrantRefused as error:
            if error.fields.get("problem") not in ("grant.not_found", "httpsig.unknown_key"):
                self.report.failed.append((grant.id, str(error.fields.get("problem"))))
        except (Unavailable, BadAnswer) as error:
            raise _Stop(str(error.fields.get("problem", error.code))) from None
        except KluisError as error:
            self.report.failed.append((grant.id, error.code))

    def _log_used(self, grant: Grant, records: Sequence[RelayFetch]) -> None:
        with self.vault.transaction() as tx:
            new = [r for r in records if tx.query_one(
                "SELECT 1 FROM grants_fetch WHERE id = ?", (r.id,)) is None]
            if not new:
                return
            appended = self.grants.log.append([_used(grant, r) for r in new], now=self.now,
                                              tx=tx)
            tx.executemany("INSERT INTO grants_fetch (id, grant_id, seq) VALUES (?, ?, ?)",
                           [(r.id, grant.id, e.seq) for r, e in zip(new, appended.entries,
                                                                    strict=True)])
        self.report.logged += len(new)


def _used(grant: Grant, record: RelayFetch) -> Record:
    outcome = le.FetchOutcome.SERVED if record.outcome == "served" else le.FetchOutcome.REFUSED
    return le.grant_used(grant.id, grant.agency, item=record.item, fetch_id=record.id,
                         fetched_at=record.fetched_at, outcome=outcome, number=record.number,
                         version=record.version, error=record.error)
