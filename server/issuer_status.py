"""An issuing agency's Token Status Lists kept in the server store (Token Status List
draft-20/21; STANDARDS.md §3), so every node allocates from and serves the same list.

Two tables share the work. ``issuer_issued`` is the allocation: one row per issued
credential, keyed by (agency, list, index), so an index can never be handed out twice, on any
node, without a lock: a node draws a random index (``secrets``, as HAIP asks: unique and
unpredictable) and inserts it; the rare collision just draws again. A new index is VALID,
which is the list's default value, so issuing never touches the list itself.
``issuer_status_list`` holds each list's statuses as ``bits`` and ``lst`` (§4.2), changed
only by a status change, under the list's lock. The list's ``uri`` is built from the
service's current public URL.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from jwcrypto.jwk import JWK

from server.issuer_agency import IssuerAgency
from server.store import Schema, Store, Transaction
from vault import NotFound
from verifiers.jws import format_private_jwk
from verifiers.status_array import StatusArray, decode_lst, encode_lst
from verifiers.status_token import issue_status_list_token
from verifiers.statuslist import MIN_LIST_SIZE, ListFull, StatusList

STATUS_SCHEMA = Schema(
    "issuer_status",
    (
        "CREATE TABLE issuer_issued ("
        " issuer TEXT NOT NULL, list_id TEXT NOT NULL, idx INTEGER NOT NULL,"
        " offer_id TEXT NOT NULL, configuration TEXT NOT NULL, issued_at INTEGER NOT NULL,"
        " PRIMARY KEY (issuer, list_id, idx), UNIQUE (issuer, offer_id, configuration));"
        "CREATE TABLE issuer_status_list ("
        " issuer TEXT NOT NULL, list_id TEXT NOT NULL, bits INTEGER NOT NULL,"
        " lst TEXT NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (issuer, list_id))",
    ),
)

BITS = 2  # VALID, INVALID and SUSPENDED (§7.1)
LIST_SIZE = MIN_LIST_SIZE
_DRAWS = 64


class UnknownStatusList(NotFound):
    code = "issuer.unknown_status_list"
    en = "This issuer has no status list with that name. Check the address in the credential."
    nl = "Deze uitgever heeft geen statuslijst met die naam. Controleer het adres in het bewijs."


class StatusLists:
    """The agency's status lists in ``store``; ``public_url`` is the service's own URL."""

    def __init__(self, store: Store, agency: IssuerAgency, public_url: str) -> None:
        self._store = store
        self._agency = agency
        self._public_url = public_url
        # jwcrypto signs the status list token (verifiers.status_token); parse the key once.
        self._jwk = JWK(**format_private_jwk(agency.signing_key))

    def uri(self, list_id: str) -> str:
        """Where the list's token is served: ``<public_url>/status/<list_id>``."""
        return f"{self._public_url}/status/{list_id}"

    def allocate(self, tx: Transaction, *, offer_id: str, configuration: str,
                 now: datetime) -> dict[str, Any]:
        """A fresh random index in the agency's list, recorded as issued for ``offer_id`` and
        ``configuration`` inside the caller's transaction (so it commits with the credential);
        the ``status`` claim pointing to it (§6.1).

        Raises ``status.list_full`` when 64 draws in a row hit used indices (the list is then
        nearly full: start a new one well before).
        """
        list_id = self._agency.status_list
        for _ in range(_DRAWS):
            index = secrets.randbelow(LIST_SIZE)
            taken = tx.execute(
                "INSERT INTO issuer_issued (issuer, list_id, idx, offer_id, configuration,"
                " issued_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (issuer, list_id, idx) DO NOTHING RETURNING idx",
                (self._agency.id, list_id, index, offer_id, configuration, int(now.timestamp())),
            )
            if taken:
                return {"status_list": {"idx": index, "uri": self.uri(list_id)}}
        raise ListFull(f"Token Status List §12.5: no free index found in {self.uri(list_id)}")

    def _statuses(self, tx: Transaction, list_id: str) -> StatusArray:
        rows = tx.execute(
            "SELECT bits, lst FROM issuer_status_list WHERE issuer = ? AND list_id = ?",
            (self._agency.id, list_id),
        )
        if not rows:
            return StatusArray(BITS, LIST_SIZE)  # every index VALID: nothing changed yet
        return decode_lst(str(rows[0][1]), bits=int(rows[0][0]))

    def change(self, tx: Transaction, list_id: str, index: int, action: str, *,
               now: datetime) -> int:
        """Apply ``action`` (``revoke``, ``suspend`` or ``reinstate``) to the issued
        ``index`` inside the caller's transaction, under the list's lock; return the new
        status value. The rules are ``StatusList``'s (§7.1): revoking is final.

        Raises ``status.already_revoked`` and ``status.bad_transition``.
        """
        tx.lock(f"issuer.status:{self._agency.id}:{list_id}")
        statuses = self._statuses(tx, list_id)
        # The indices StatusList must know as handed out: this one and every one with a
        # status (only issued indices ever get one).
        changed = {i for i, _ in statuses.nonzero()} | {index}
        status_list = StatusList.restore(self.uri(list_id), statuses, changed)
        {"revoke": status_list.revoke, "suspend": status_list.suspend,
         "reinstate": status_list.reinstate}[action](index)
        tx.execute(
            "INSERT INTO issuer_status_list (issuer, list_id, bits, lst, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer, list_id) DO UPDATE SET"
            " bits = excluded.bits, lst = excluded.lst, updated_at = excluded.updated_at",
            (self._agency.id, list_id, status_list.bits, encode_lst(status_list.statuses),
             int(now.timestamp())),
        )
        return status_list.status(index)

    def token(self, list_id: str, *, now: datetime, ttl: int, lifetime: int) -> str:
        """The signed Status List Token (``statuslist+jwt``, §5.1) of ``list_id`` as it is now:
        ``sub`` is its uri, ``iss`` the agency, ``ttl`` and ``exp`` from the arguments.

        Raises ``issuer.unknown_status_list`` for a list this agency does not keep.
        """
        if list_id != self._agency.status_list:
            raise UnknownStatusList(f"Token Status List §8.1: no list {list_id[:40]!r}")
        with self._store.transaction(readonly=True) as tx:
            statuses = self._statuses(tx, list_id)
        return issue_status_list_token(
            self.uri(list_id), statuses, self._jwk, now=int(now.timestamp()), ttl=ttl,
            lifetime=lifetime, issuer=self._agency.id,
        )
