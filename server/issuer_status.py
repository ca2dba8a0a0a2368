"""An issuing agency's Token Status Lists kept in the server store (Token Status List
draft-20/21; STANDARDS.md §3), so every node allocates from and serves the same list.

Each list is one row holding its state as ``verifiers.statuslist.format_status_list_state``
writes it (statuses plus the allocation bitmap), changed only under the list's lock: index
allocation and status changes on two nodes serialise, and an index is never handed out twice.
Indices are random (``StatusList.allocate``), as HAIP asks. The list's ``uri`` is rebuilt
from the service's current public URL, so a service that moves keeps serving its list.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jwcrypto.jwk import JWK

from server.issuer_agency import IssuerAgency
from server.store import Schema, Store, Transaction
from vault import NotFound
from verifiers.jws import format_private_jwk
from verifiers.status_token import issue_status_list_token
from verifiers.statuslist import (
    StatusList,
    format_status_list_state,
    parse_status_list_state,
)

STATUS_SCHEMA = Schema(
    "issuer_status",
    (
        "CREATE TABLE issuer_status_list ("
        " issuer TEXT NOT NULL, list_id TEXT NOT NULL, state TEXT NOT NULL,"
        " updated_at INTEGER NOT NULL, PRIMARY KEY (issuer, list_id))",
    ),
)


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

    def _read(self, tx: Transaction, list_id: str) -> StatusList | None:
        rows = tx.execute(
            "SELECT state FROM issuer_status_list WHERE issuer = ? AND list_id = ?",
            (self._agency.id, list_id),
        )
        return parse_status_list_state(str(rows[0][0])) if rows else None

    def _load(self, tx: Transaction, list_id: str, *, now: datetime) -> StatusList:
        """The list, created empty on first use; the caller holds its lock."""
        stored = self._read(tx, list_id)
        if stored is not None:
            return stored
        fresh = StatusList(self.uri(list_id))
        tx.execute(
            "INSERT INTO issuer_status_list (issuer, list_id, state, updated_at) "
            "VALUES (?, ?, ?, ?)",
            (self._agency.id, list_id, _text(fresh), int(now.timestamp())),
        )
        return fresh

    def _save(self, tx: Transaction, list_id: str, status_list: StatusList, now: datetime) -> None:
        tx.execute(
            "UPDATE issuer_status_list SET state = ?, updated_at = ? "
            "WHERE issuer = ? AND list_id = ?",
            (_text(status_list), int(now.timestamp()), self._agency.id, list_id),
        )

    def _lock(self, tx: Transaction, list_id: str) -> None:
        tx.lock(f"issuer.status:{self._agency.id}:{list_id}")

    def allocate(self, tx: Transaction, *, now: datetime) -> tuple[int, dict[str, Any]]:
        """A fresh random index in the agency's list, inside the caller's transaction (so it
        commits with the issued credential), and the ``status`` claim pointing to it (§6.1).

        Raises ``status.list_full``.
        """
        list_id = self._agency.status_list
        self._lock(tx, list_id)
        status_list = self._load(tx, list_id, now=now)
        index = status_list.allocate()
        self._save(tx, list_id, status_list, now)
        return index, {"status_list": {"idx": index, "uri": self.uri(list_id)}}

    def change(self, tx: Transaction, list_id: str, index: int, action: str, *,
               now: datetime) -> int:
        """Apply ``action`` (``revoke``, ``suspend`` or ``reinstate``) to ``index`` inside the
        caller's transaction; return the new status value (Token Status List §7.1).

        Raises ``status.not_allocated``, ``status.already_revoked`` and
        ``status.bad_transition``.
        """
        self._lock(tx, list_id)
        status_list = self._load(tx, list_id, now=now)
        {"revoke": status_list.revoke, "suspend": status_list.suspend,
         "reinstate": status_list.reinstate}[action](index)
        self._save(tx, list_id, status_list, now)
        return status_list.status(index)

    def token(self, list_id: str, *, now: datetime, ttl: int, lifetime: int) -> str:
        """The signed Status List Token (``statuslist+jwt``, §5.1) of ``list_id`` as it is now:
        ``sub`` is its uri, ``iss`` the agency, ``ttl`` and ``exp`` from the arguments.

        Raises ``issuer.unknown_status_list`` for a list this agency does not keep.
        """
        if list_id != self._agency.status_list:
            raise UnknownStatusList(f"Token Status List §8.1: no list {list_id[:40]!r}")
        with self._store.transaction(readonly=True) as tx:
            status_list = self._read(tx, list_id) or StatusList(self.uri(list_id))
        return issue_status_list_token(
            self.uri(list_id), status_list.statuses, self._jwk, now=int(now.timestamp()),
            ttl=ttl, lifetime=lifetime, issuer=self._agency.id,
        )


def _text(status_list: StatusList) -> str:
    return json.dumps(format_status_list_state(status_list), separators=(",", ":"))
