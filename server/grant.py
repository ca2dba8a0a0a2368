"""Access grants at the relay (``specs/grant.md`` §5-§6): sealed items an agency may keep
fetching until the grant ends, and the record of every fetch.

What the relay keeps per grant, and nothing more: the grant's owner key (a fresh Ed25519 key
the wallet made for this grant alone, so grants cannot be linked to a mailbox or to each
other by key), the agency's Ed25519 public key the wallet registered for it (from the trust
list), the end of its validity, whether and when it was revoked, the item ids, each item's
latest sealed version (opaque bytes: ``verifiers.sealed_item``), and one record per fetch
(item, version, time, key id, served or refused) until the wallet collects it.

**Revocation and fetches never cross.** A fetch is one transaction that first updates the
grant row (``UPDATE ... WHERE revoked_at IS NULL AND valid_until > now``: counting the fetch
and taking the row lock), then reads the sealed item and inserts the fetch record. Revocation
is one transaction that updates the same row (setting ``revoked_at``) and deletes every sealed
item. On PostgreSQL the row lock orders them: a revocation waits for a fetch in flight to
commit (the fetch is then served *and* recorded, before the revocation), and a fetch that
waits for a revocation re-checks its condition after the revocation commits and finds the
grant revoked (refused). SQLite serialises all writers, with the same two outcomes. The
answer leaves the relay only after the fetch committed, so nothing is ever served without its
record. ``revoked_at`` is never earlier than the last served fetch, and the grant's count of
served fetches at revocation is kept, so the citizen's log can show both orders exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from server.store import Schema, Store, Transaction
from vault import Conflict, InvalidInput, NotFound, NotPermitted, Unavailable
from verifiers.http_signature import key_thumbprint

GRANT_SCHEMA = Schema(
    "grant",
    (
        "CREATE TABLE grant_grant ("
        " id TEXT PRIMARY KEY, owner_keyid TEXT NOT NULL, owner_key BLOB NOT NULL,"
        " agency_keyid TEXT NOT NULL, agency_key BLOB NOT NULL, created_at INTEGER NOT NULL,"
        " valid_until INTEGER NOT NULL, revoked_at INTEGER, updated_at INTEGER NOT NULL,"
        " served INTEGER NOT NULL DEFAULT 0, next_seq INTEGER NOT NULL DEFAULT 0,"
        " pending INTEGER NOT NULL DEFAULT 0, last_fetch_at INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX grant_grant_valid_until ON grant_grant (valid_until);"
        "CREATE TABLE grant_item ("
        " grant_id TEXT NOT NULL REFERENCES grant_grant (id), item TEXT NOT NULL,"
        " version INTEGER NOT NULL DEFAULT 0, sealed BLOB, updated_at INTEGER,"
        " PRIMARY KEY (grant_id, item));"
        "CREATE TABLE grant_fetch ("
        " id TEXT PRIMARY KEY, grant_id TEXT NOT NULL REFERENCES grant_grant (id),"
        " seq INTEGER NOT NULL, item TEXT NOT NULL, version INTEGER, number INTEGER,"
        " keyid TEXT NOT NULL, fetched_at INTEGER NOT NULL, outcome TEXT NOT NULL,"
        " error TEXT, UNIQUE (grant_id, seq))",
    ),
)

GRANT_ID_PATTERN = r"^[A-Za-z0-9_-]{22,64}$"
MAX_TIME_MS = 253402300799000  # 9999-12-31T23:59:59Z


class GrantNotFound(NotFound):
    code = "grant.not_found"
    en = "There is no grant like this at the relay. Check the grant's id."
    nl = "Er is geen machtiging zoals deze bij de relay. Controleer het nummer van de machtiging."


class GrantExists(Conflict):
    code = "grant.exists"
    en = "A grant with this id already exists with other terms. Make a new grant."
    nl = "Er bestaat al een machtiging met dit nummer en andere voorwaarden. Maak een nieuwe."


class BadGrant(InvalidInput):
    code = "grant.bad_terms"
    en = "The grant's items or end date are not valid. Check them and try again."
    nl = "De gegevens of de einddatum van de machtiging zijn niet geldig. Controleer ze."


class GrantRevoked(NotPermitted):
    code = "grant.revoked"
    en = "The citizen has withdrawn this grant. Nothing more can be read under it."
    nl = "De burger heeft deze machtiging ingetrokken. Er kan niets meer mee worden ingezien."
    http_status: ClassVar[int] = 410


class GrantExpired(NotPermitted):
    code = "grant.expired"
    en = "This grant has ended. Nothing more can be read under it; ask the citizen for a new one."
    nl = (
        "Deze machtiging is afgelopen. Er kan niets meer mee worden ingezien; "
        "vraag de burger om een nieuwe."
    )
    http_status: ClassVar[int] = 410


class ItemNotGranted(NotPermitted):
    code = "grant.item_not_granted"
    en = "This item is not part of the grant. Only the items the citizen granted can be read."
    nl = "Dit gegeven valt niet onder de machtiging. Alleen de gedeelde gegevens zijn in te zien."


class ItemUnavailable(NotFound):
    code = "grant.item_unavailable"
    en = "The citizen's wallet has not put this item at the relay (yet). Try again later."
    nl = "De wallet van de burger heeft dit gegeven (nog) niet bij de relay gezet. Probeer later."


class StaleVersion(Conflict):
    code = "grant.stale_version"
    en = "The relay already holds a newer version of this item. Nothing was changed."
    nl = "De relay heeft al een nieuwere versie van dit gegeven. Er is niets veranderd."


class ItemTooLarge(InvalidInput):
    code = "grant.item_too_large"
    en = "The sealed item is too large for the relay. Grant a smaller document."
    nl = "Het verzegelde gegeven is te groot voor de relay. Deel een kleiner document."
    http_status: ClassVar[int] = 413


class GrantBusy(Unavailable):
    code = "grant.busy"
    en = "The citizen's wallet has not yet collected the record of earlier reads. Try later."
    nl = "De wallet van de burger heeft de eerdere inzages nog niet opgehaald. Probeer het later."


@dataclass(frozen=True)
class GrantPolicy:
    """The relay's limits for grants (``specs/grant.md`` §5)."""

    max_items: int = 32
    max_sealed_bytes: int = 120 * 1024
    max_period: timedelta = timedelta(days=3 * 366)
    max_pending_fetches: int = 10_000
    """Fetch records the wallet has not collected; beyond it, fetches wait (``grant.busy``)."""
    max_pending_refusals: int = 100
    """Refused fetches are recorded only while fewer records than this wait."""
    keep_ended: timedelta = timedelta(days=30)
    """How long an ended grant's row (not its items) stays, so late fetches get 410."""


@dataclass(frozen=True)
class GrantTerms:
    """A grant as the wallet registers it at the relay."""

    grant_id: str
    owner: Ed25519PublicKey
    agency: Ed25519PublicKey
    valid_until: datetime
    items: tuple[str, ...]


@dataclass(frozen=True)
class GrantState:
    grant_id: str
    valid_until: datetime
    revoked_at: datetime | None
    served: int
    pending: int
    items: tuple[tuple[str, int, bool], ...]
    """(item, latest version, whether a sealed version is held)."""


@dataclass(frozen=True)
class Served:
    """One item handed out: what the agency receives, as recorded."""

    grant_id: str
    item: str
    version: int
    sealed: bytes
    fetch_id: str
    fetched_at: datetime


@dataclass(frozen=True)
class FetchRecord:
    """The relay's record of one fetch, as the wallet collects it."""

    id: str
    seq: int
    item: str
    keyid: str
    fetched_at: datetime
    outcome: str
    version: int | None
    number: int | None
    error: str | None


@dataclass(frozen=True)
class Revocation:
    revoked_at: datetime
    served: int


class _Refusal(Exception):
    """Inside ``fetch``: leave the transaction (rolling it back) with why, if known."""

    def __init__(self, error: Exception | None) -> None:
        super().__init__()
        self.error = error


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class GrantRelay:
    """The grants side of one relay over its store."""

    def __init__(self, store: Store, policy: GrantPolicy | None = None) -> None:
        self._store = store
        self.policy = policy or GrantPolicy()

    # --- keys, for the authenticator ------------------------------------------------------------

    def owner_key(self, grant_id: str, keyid: str) -> Ed25519PublicKey | None:
        """The grant's owner key when ``keyid`` names it (else None: an unknown key)."""
        return self._key(grant_id, keyid, "owner")

    def agency_key(self, grant_id: str, keyid: str) -> Ed25519PublicKey | None:
        """The agency key registered on the grant when ``keyid`` names it, else None."""
        return self._key(grant_id, keyid, "agency")

    def _key(self, grant_id: str, keyid: str, whose: str) -> Ed25519PublicKey | None:
        with self._store.transaction(readonly=True) as tx:
            rows = tx.execute(
                f"SELECT {whose}_key FROM grant_grant WHERE id = ? AND {whose}_keyid = ?",  # noqa: S608
                (grant_id, keyid),
            )
        return Ed25519PublicKey.from_public_bytes(bytes(rows[0][0])) if rows else None

    # --- the wallet's side ------------------------------------------------------------------------

    def create(self, terms: GrantTerms, *, now: datetime) -> tuple[GrantState, bool]:
        """Register ``terms`` (idempotent: the same terms again change nothing); the grant
        and whether this call created it. Raises ``grant.bad_terms``, ``grant.exists``."""
        items = terms.items
        if not 1 <= len(items) <= self.policy.max_items or len(set(items)) != len(items):
            raise BadGrant(f"specs/grant.md §5: 1 to {self.policy.max_items} distinct items")
        until = _ms(terms.valid_until)
        if until <= _ms(now) or terms.valid_until > now + self.policy.max_period:
            raise BadGrant("specs/grant.md §5: valid_until lies ahead, within the relay's limit")
        owner = key_thumbprint(terms.owner)
        agency = key_thumbprint(terms.agency)
        with self._store.transaction() as tx:
            created = tx.execute(
                "INSERT INTO grant_grant (id, owner_keyid, owner_key, agency_keyid, agency_key,"
                " created_at, valid_until, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                (terms.grant_id, owner, _raw(terms.owner), agency, _raw(terms.agency), _ms(now),
                 until, _ms(now)),
            )
            if created:
                tx.executemany("INSERT INTO grant_item (grant_id, item) VALUES (?, ?)",
                               [(terms.grant_id, item) for item in items])
            else:
                self._same_terms(tx, terms.grant_id, (owner, agency, until), items)
            state = self._state(tx, terms.grant_id)
        return state, bool(created)

    def _same_terms(self, tx: Transaction, grant_id: str, keys: tuple[str, str, int],
                    items: Sequence[str]) -> None:
        row = tx.execute("SELECT owner_keyid, agency_keyid, valid_until FROM grant_grant"
                         " WHERE id = ?", (grant_id,))
        held = {str(r[0]) for r in tx.execute("SELECT item FROM grant_item WHERE grant_id = ?",
                                              (grant_id,))}
        if (str(row[0][0]), str(row[0][1]), int(row[0][2])) != keys or held != set(items):
            raise GrantExists()

    def upload(self, grant_id: str, item: str, *, owner_keyid: str, version: int,
               sealed: bytes, now: datetime) -> int:
        """Keep ``sealed`` as ``version`` of ``item`` (replacing an older version); the
        version held. Raises ``grant.not_found``, ``grant.revoked``, ``grant.expired``,
        ``grant.item_not_granted``, ``grant.stale_version``, ``grant.item_too_large``."""
        if len(sealed) > self.policy.max_sealed_bytes:
            raise ItemTooLarge(f"at most {self.policy.max_sealed_bytes} bytes")
        with self._store.transaction() as tx:
            self._lock_live(tx, grant_id, owner_keyid, now)
            rows = tx.execute(
                "UPDATE grant_item SET version = ?, sealed = ?, updated_at = ?"
                " WHERE grant_id = ? AND item = ? AND version <= ? RETURNING version",
                (version, sealed, _ms(now), grant_id, item, version),
            )
            if not rows:
                self._item_missing_or_stale(tx, grant_id, item)
        return version

    def withdraw(self, grant_id: str, item: str, *, owner_keyid: str, now: datetime) -> None:
        """Drop the sealed version of ``item`` (the item left the vault); fetches then get
        ``grant.item_unavailable``. Raises ``grant.not_found``, ``grant.revoked``,
        ``grant.expired``, ``grant.item_not_granted``."""
        with self._store.transaction() as tx:
            self._lock_live(tx, grant_id, owner_keyid, now)
            rows = tx.execute("UPDATE grant_item SET sealed = NULL, updated_at = ?"
                              " WHERE grant_id = ? AND item = ? RETURNING item",
                              (_ms(now), grant_id, item))
            if not rows:
                raise ItemNotGranted()

    def revoke(self, grant_id: str, *, owner_keyid: str, now: datetime) -> Revocation:
        """Revoke the grant and delete its sealed items, in one transaction; when and after
        how many served fetches. Revoking again gives the first revocation. Raises
        ``grant.not_found``."""
        moment = _ms(now)
        with self._store.transaction() as tx:
            rows = tx.execute(
                "UPDATE grant_grant SET revoked_at = CASE WHEN last_fetch_at > ?"
                " THEN last_fetch_at ELSE ? END, updated_at = ?"
                " WHERE id = ? AND owner_keyid = ? AND revoked_at IS NULL"
                " RETURNING revoked_at, served",
                (moment, moment, moment, grant_id, owner_keyid),
            )
            if rows:
                tx.execute("DELETE FROM grant_item WHERE grant_id = ?", (grant_id,))
            else:
                rows = tx.execute("SELECT revoked_at, served FROM grant_grant"
                                  " WHERE id = ? AND owner_keyid = ?", (grant_id, owner_keyid))
                if not rows or rows[0][0] is None:
                    raise GrantNotFound()
        return Revocation(_time(int(rows[0][0])), int(rows[0][1]))

    def state(self, grant_id: str, *, owner_keyid: str) -> GrantState:
        """The grant as the relay holds it; raises ``grant.not_found``."""
        with self._store.transaction(readonly=True) as tx:
            if not tx.execute("SELECT 1 FROM grant_grant WHERE id = ? AND owner_keyid = ?",
                              (grant_id, owner_keyid)):
                raise GrantNotFound()
            return self._state(tx, grant_id)

    def fetches(self, grant_id: str, *, owner_keyid: str, limit: int = 100) -> list[FetchRecord]:
        """The oldest fetch records the wallet has not acknowledged, in order."""
        with self._store.transaction(readonly=True) as tx:
            if not tx.execute("SELECT 1 FROM grant_grant WHERE id = ? AND owner_keyid = ?",
                              (grant_id, owner_keyid)):
                raise GrantNotFound()
            rows = tx.execute(
                "SELECT id, seq, item, keyid, fetched_at, outcome, version, number, error"
                " FROM grant_fetch WHERE grant_id = ? ORDER BY seq LIMIT ?", (grant_id, limit))
        return [FetchRecord(str(i), int(s), str(it), str(k), _time(int(at)), str(o),
                            None if v is None else int(v), None if n is None else int(n),
                            None if e is None else str(e))
                for i, s, it, k, at, o, v, n, e in rows]

    def ack(self, grant_id: str, ids: Sequence[str], *, owner_keyid: str) -> int:
        """Delete the fetch records ``ids`` of this grant; how many went (idempotent)."""
        unique = sorted(set(ids))
        marks = ", ".join("?" for _ in unique)  # only placeholders go into the SQL text
        with self._store.transaction() as tx:
            owned = tx.execute("UPDATE grant_grant SET updated_at = updated_at"
                               " WHERE id = ? AND owner_keyid = ? RETURNING id",
                               (grant_id, owner_keyid))
            if not owned:
                raise GrantNotFound()
            if not unique:
                return 0
            gone = tx.execute(
                f"DELETE FROM grant_fetch WHERE grant_id = ? AND id IN ({marks}) RETURNING 1",  # noqa: S608
                (grant_id, *unique),
            )
            if gone:
                tx.execute("UPDATE grant_grant SET pending = pending - ? WHERE id = ?",
                           (len(gone), grant_id))
        return len(gone)

    # --- the agency's side --------------------------------------------------------------------

    def fetch(self, grant_id: str, item: str, *, keyid: str, now: datetime) -> Served:
        """Hand out ``item`` to the grant's agency (``keyid``, already authenticated) and
        record it, in one transaction (module docstring). Raises ``grant.revoked``,
        ``grant.expired``, ``grant.item_not_granted``, ``grant.item_unavailable``,
        ``grant.busy`` (each refusal recorded for the citizen while few wait),
        ``grant.not_found``."""
        moment = _ms(now)
        fetch_id = secrets.token_urlsafe(16)
        try:
            with self._store.transaction() as tx:
                counted = tx.execute(
                    "UPDATE grant_grant SET served = served + 1, next_seq = next_seq + 1,"
                    " pending = pending + 1, last_fetch_at = CASE WHEN last_fetch_at > ?"
                    " THEN last_fetch_at ELSE ? END WHERE id = ? AND agency_keyid = ?"
                    " AND revoked_at IS NULL AND valid_until > ? AND pending < ?"
                    " RETURNING served, next_seq",
                    (moment, moment, grant_id, keyid, moment, self.policy.max_pending_fetches),
                )
                if not counted:
                    raise _Refusal(None)
                number, seq = int(counted[0][0]), int(counted[0][1])
                held = tx.execute("SELECT version, sealed FROM grant_item"
                                  " WHERE grant_id = ? AND item = ?", (grant_id, item))
                if not held or held[0][1] is None:
                    # Raising inside the block rolls the count back.
                    raise _Refusal(ItemUnavailable() if held else ItemNotGranted())
                version = int(held[0][0])
                tx.execute(
                    "INSERT INTO grant_fetch (id, grant_id, seq, item, version, number, keyid,"
                    " fetched_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'served')",
                    (fetch_id, grant_id, seq, item, version, number, keyid, moment),
                )
        except _Refusal as refusal:
            raise self._refuse(grant_id, item, keyid, now, known=refusal.error) from None
        return Served(grant_id, item, version, bytes(held[0][1]), fetch_id, _time(moment))

    def _refuse(self, grant_id: str, item: str, keyid: str, now: datetime,
                known: Exception | None) -> Exception:
        moment = _ms(now)
        with self._store.transaction() as tx:
            rows = tx.execute("SELECT revoked_at, valid_until, pending FROM grant_grant"
                              " WHERE id = ? AND agency_keyid = ?", (grant_id, keyid))
            if not rows:
                return GrantNotFound()
            revoked, until, pending = rows[0]
            error: Exception
            if known is not None:
                error = known
            elif revoked is not None:
                error = GrantRevoked()
            elif int(until) <= moment:
                error = GrantExpired()
            else:
                return GrantBusy(f"{pending} fetch records wait for the wallet")
            if int(pending) < self.policy.max_pending_refusals:
                ((seq,),) = tx.execute(
                    "UPDATE grant_grant SET next_seq = next_seq + 1, pending = pending + 1"
                    " WHERE id = ? RETURNING next_seq", (grant_id,))
                tx.execute(
                    "INSERT INTO grant_fetch (id, grant_id, seq, item, keyid, fetched_at,"
                    " outcome, error) VALUES (?, ?, ?, ?, ?, ?, 'refused', ?)",
                    (secrets.token_urlsafe(16), grant_id, int(seq), item, keyid, moment,
                     getattr(error, "code", "")),
                )
        return error

    # --- housekeeping ---------------------------------------------------------------------------

    def sweep(self, *, now: datetime) -> int:
        """Delete the sealed items of expired grants, and ended grants whose records were
        collected ``keep_ended`` ago; how many rows went."""
        moment = _ms(now)
        cutoff = _ms(now - self.policy.keep_ended)
        with self._store.transaction() as tx:
            items = tx.execute(
                "DELETE FROM grant_item WHERE grant_id IN"
                " (SELECT id FROM grant_grant WHERE valid_until <= ?) RETURNING 1", (moment,))
            ended = tx.execute(
                "DELETE FROM grant_grant WHERE pending = 0 AND (valid_until <= ?"
                " OR (revoked_at IS NOT NULL AND revoked_at <= ?)) RETURNING 1",
                (cutoff, cutoff))
        return len(items) + len(ended)

    # --- inside ---------------------------------------------------------------------------------

    def _lock_live(self, tx: Transaction, grant_id: str, owner_keyid: str, now: datetime) -> None:
        """Take the grant's row lock (so uploads and revocation never interleave) and check
        it is live."""
        rows = tx.execute("UPDATE grant_grant SET updated_at = ? WHERE id = ? AND owner_keyid = ?"
                          " RETURNING revoked_at, valid_until", (_ms(now), grant_id, owner_keyid))
        if not rows:
            raise GrantNotFound()
        if rows[0][0] is not None:
            raise GrantRevoked()
        if int(rows[0][1]) <= _ms(now):
            raise GrantExpired()

    def _item_missing_or_stale(self, tx: Transaction, grant_id: str, item: str) -> None:
        if tx.execute("SELECT 1 FROM grant_item WHERE grant_id = ? AND item = ?",
                      (grant_id, item)):
            raise StaleVersion()
        raise ItemNotGranted()

    def _state(self, tx: Transaction, grant_id: str) -> GrantState:
        ((until, revoked, served, pending),) = tx.execute(
            "SELECT valid_until, revoked_at, served, pending FROM grant_grant WHERE id = ?",
            (grant_id,))
        items = tx.execute("SELECT item, version, sealed IS NOT NULL FROM grant_item"
                           " WHERE grant_id = ? ORDER BY item", (grant_id,))
        return GrantState(grant_id, _time(int(until)),
                          None if revoked is None else _time(int(revoked)), int(served),
                          int(pending), tuple((str(i), int(v), bool(h)) for i, v, h in items))

