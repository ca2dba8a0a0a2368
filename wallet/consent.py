"""The consent engine: requests received, evaluated, decided once, released, followed up.

Every request the wallet receives is kept in the vault (component ``requests``) and logged
once as ``request_received``, with ``request_blocked`` when the verifier may not ask it or it
has expired. The citizen then decides once: :meth:`Consent.approve` or :meth:`Consent.refuse`;
a second decision is refused (``request.already_decided``).

**Log first, release second.** ``approve`` builds the presentations from the approval alone
(only the claims approved, KB-JWT bound to this verifier and this request) and commits the
``request_approved`` entry, with commitments to the released values, in the same vault
transaction that marks the request approved and keeps the release. Only after that commit
does it return the :class:`~wallet.release.Release`; a process killed before then leaves no
release behind, only (at most) a committed approval. The caller sends the release, then
records the outcome (``presentation_sent``) and, later, the verifier's receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from vault import Conflict, InvalidInput, NotFound, NotPermitted, Schema, Transaction, Vault
from vault.item import format_time, parse_time
from verifiers import log_entry as le
from verifiers.claim_path import ClaimPath, ConcretePath, select
from verifiers.receipt import HashMismatch, Receipt, Retention, verify_receipt
from wallet.consent_log import ConsentLog
from wallet.credential import held_credentials
from wallet.evaluation import Evaluation, Status, evaluate
from wallet.grant_request import is_grant_request
from wallet.release import Refusal, Release, choose, format_release, parse_release, present
from wallet.request import NoSuchRequest, Request, restore_request
from wallet.trust import stored_trust_list

_V1 = """
CREATE TABLE requests_request (
    id TEXT PRIMARY KEY,
    received TEXT NOT NULL,
    client_id TEXT NOT NULL,
    verifier TEXT NOT NULL,
    parameters TEXT NOT NULL,
    source TEXT NOT NULL,
    signed INTEGER NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'blocked', 'expired', 'approved', 'refused')),
    decided TEXT
);
CREATE TABLE requests_release (
    request_id TEXT PRIMARY KEY REFERENCES requests_request (id),
    release TEXT NOT NULL,
    outcome TEXT CHECK (outcome IN ('sent', 'failed')),
    receipts INTEGER NOT NULL DEFAULT 0
);
"""

REQUESTS_SCHEMA = Schema("requests", (_V1,))
"""The requests and releases tables in the vault."""

MIN_PREFIX = 4
T = TypeVar("T")


class State(StrEnum):
    PENDING = "pending"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    APPROVED = "approved"
    REFUSED = "refused"


class AlreadyDecided(Conflict):
    code = "request.already_decided"
    en = "You already decided on this request ({state}). Each request is decided once."
    nl = "U heeft al over dit verzoek beslist ({state}). Over elk verzoek beslist u één keer."


class RequestExpired(NotPermitted):
    code = "request.expired"
    en = "This request has expired, so nothing can be shared. Ask the organisation for a new one."
    nl = "Dit verzoek is verlopen. Er kan niets meer gedeeld worden. Vraag om een nieuw verzoek."


class AmbiguousRequest(InvalidInput):
    code = "request.ambiguous_id"
    en = "More than one request starts with '{id}'. Type more of its id."
    nl = "Meer dan één verzoek begint met '{id}'. Typ meer van het nummer."


class Blocked(NotPermitted):
    code = "consent.blocked"
    en = "kluis blocked this request, so it cannot be approved. See 'kluis request show'."
    nl = "kluis heeft dit verzoek tegengehouden. Het kan niet goedgekeurd worden."


class Unsatisfiable(Conflict):
    code = "consent.unsatisfiable"
    en = "You do not have the documents this request needs. You can only refuse it."
    nl = "U heeft de documenten niet die dit verzoek nodig heeft. U kunt het alleen weigeren."


class GrantRequest(InvalidInput):
    code = "grant.needs_grant_approval"
    en = "This request asks for ongoing access. Approve it with 'kluis grant approve'."
    nl = "Dit verzoek vraagt om doorlopende inzage. Keur het goed met 'kluis grant approve'."


class NoRelease(NotFound):
    code = "consent.no_release"
    en = "Nothing was released for this request, so there is nothing to follow up."
    nl = "Voor dit verzoek is niets verstrekt. Er is dus niets om op te volgen."


class AlreadySent(Conflict):
    code = "consent.already_sent"
    en = "This release was already recorded as sent. Each release is sent once."
    nl = "Deze verstrekking is al als verstuurd vastgelegd. Elke verstrekking gaat één keer weg."


@dataclass(frozen=True)
class StoredRequest:
    """A request in the wallet, its state and when it arrived and was decided."""

    request: Request
    received: datetime
    state: State
    decided: datetime | None
    verifier: le.Party

    @property
    def id(self) -> str:
        return self.request.id


class Consent:
    """The consent engine over one open vault and its consent log."""

    def __init__(self, vault: Vault, log: ConsentLog) -> None:
        self._vault = vault
        self._log = log

    # -- receiving and evaluating -----------------------------------------------------------

    def receive(self, request: Request, *, now: datetime) -> Evaluation:
        """Keep ``request`` and evaluate it at ``now``; its evaluation.

        The first time a request arrives it is stored and logged (``request_received``, and
        ``request_blocked`` when blocked or expired), in one transaction; receiving it again
        logs nothing. Raises ``trust.no_list`` and the trust list's errors.
        """
        with self._vault.transaction() as tx:
            evaluation = self._evaluate(request, now)
            if _row(tx, request.id) is None:
                party = _party(evaluation)
                tx.execute(
                    "INSERT INTO requests_request (id, received, client_id, verifier, parameters,"
                    " source, signed, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (request.id, format_time(now), request.client_id, json.dumps(party.json()),
                     json.dumps(dict(request.parameters)), request.source, int(request.signed),
                     State.PENDING.value),
                )
                self._log.append([self._received(evaluation, party)], now=now, tx=tx)
                self._settle(tx, evaluation, party, now)
        return evaluation

    def evaluation(self, request_id: str, *, now: datetime) -> Evaluation:
        """The stored request ``request_id`` evaluated again at ``now`` (credentials and trust
        list may have changed since). Raises ``request.not_found``."""
        return self._evaluate(self.find(request_id).request, now)

    def requests(self) -> tuple[StoredRequest, ...]:
        """Every request in the wallet, newest first."""
        rows = self._vault.reader().query(f"SELECT {_COLUMNS} FROM requests_request"  # noqa: S608
                                          " ORDER BY received DESC, id")
        return tuple(_stored(row) for row in rows)

    def find(self, ident: str) -> StoredRequest:
        """The request whose id is ``ident`` or starts with it (at least 4 characters).

        Raises ``request.not_found`` or ``request.ambiguous_id``.
        """
        wanted = ident.strip().lower()
        if not MIN_PREFIX <= len(wanted) <= 16 or any(c not in "0123456789abcdef" for c in wanted):
            raise NoSuchRequest(id=ident[:40])
        rows = self._vault.reader().query(
            f"SELECT {_COLUMNS} FROM requests_request WHERE substr(id, 1, ?) = ? LIMIT 2",  # noqa: S608
            (len(wanted), wanted),
        )
        if not rows:
            raise NoSuchRequest(id=ident)
        if len(rows) > 1:
            raise AmbiguousRequest(id=ident)
        return _stored(rows[0])

    # -- deciding ---------------------------------------------------------------------------

    def approve(
        self,
        request_id: str,
        *,
        leave_out: Iterable[ClaimPath] = (),
        skip: Iterable[str] = (),
        now: datetime,
    ) -> Release:
        """Approve the request: build the presentations, log the approval, keep the release;
        the release, returned only after all of that committed.

        ``leave_out`` names optional claims the citizen withholds, ``skip`` the query ids of
        optional credentials not to send. Raises ``request.not_found``,
        ``request.already_decided``, ``request.expired``, ``consent.blocked`` (the last two
        after recording that state), ``consent.unsatisfiable``, ``consent.not_optional``,
        ``consent.not_in_request``, ``holder_key.not_found``.
        """
        stored = self.find(request_id)
        if is_grant_request(stored.request):
            raise GrantRequest()
        refused: Exception | None = None
        with self._vault.transaction() as tx:
            self._require_pending(tx, stored.id)
            evaluation = self._evaluate(stored.request, now)
            if evaluation.status in (Status.BLOCKED, Status.EXPIRED):
                self._settle(tx, evaluation, stored.verifier, now)
                refused = RequestExpired() if evaluation.status is Status.EXPIRED else Blocked()
            else:
                release = self._release(tx, stored, evaluation, leave_out, skip, now)
        if refused is not None:
            raise refused
        return release

    def decide_grant(
        self, request_id: str, *, now: datetime, create: Callable[[Transaction, Evaluation], T]
    ) -> T:
        """Approve a grant request (``specs/grant.md`` §3): the checks of :meth:`approve`
        (pending, not blocked, not expired, ready), then ``create(tx, evaluation)`` makes the
        grant (and logs ``grant_created``) in the transaction that marks the request approved.
        No presentation is built: what leaves is sealed per item later. Raises as
        :meth:`approve` does, and what ``create`` raises (nothing is then recorded)."""
        stored = self.find(request_id)
        refused: Exception | None = None
        with self._vault.transaction() as tx:
            self._require_pending(tx, stored.id)
            evaluation = self._evaluate(stored.request, now)
            if evaluation.status in (Status.BLOCKED, Status.EXPIRED):
                self._settle(tx, evaluation, stored.verifier, now)
                refused = RequestExpired() if evaluation.status is Status.EXPIRED else Blocked()
            elif evaluation.status is not Status.READY:
                raise Unsatisfiable()
            else:
                made = create(tx, evaluation)
                _set_state(tx, stored.id, State.APPROVED, now)
        if refused is not None:
            raise refused
        return made

    def refuse(self, request_id: str, *, now: datetime) -> Refusal:
        """Refuse the request: log ``request_refused``; nothing leaves. The refusal carries
        the ``access_denied`` response for the verifier. Raises ``request.not_found`` and
        ``request.already_decided``."""
        stored = self.find(request_id)
        with self._vault.transaction() as tx:
            self._require_pending(tx, stored.id)
            self._log.append([le.request_refused(stored.id, stored.verifier)], now=now, tx=tx)
            _set_state(tx, stored.id, State.REFUSED, now)
        request = stored.request
        return Refusal(request.id, request.client_id, request.response_uri, request.state)

    # -- following up -----------------------------------------------------------------------

    def release(self, request_id: str) -> Release:
        """The release kept for an approved request; raises ``consent.no_release``."""
        stored = self.find(request_id)
        row = self._vault.reader().query_one(
            "SELECT release FROM requests_release WHERE request_id = ?", (stored.id,)
        )
        if row is None:
            raise NoRelease()
        return parse_release(json.loads(str(row[0])))

    def record_outcome(
        self, release: Release, *, sent: bool, error: str | None = None, now: datetime
    ) -> None:
        """Log how sending ``release`` went (``presentation_sent``, ``sent`` or ``failed`` with
        an error code). A failed send may be tried again; a sent one is final. Raises
        ``consent.no_release`` and ``consent.already_sent``."""
        outcome = le.Outcome.SENT if sent else le.Outcome.FAILED
        with self._vault.transaction() as tx:
            row = tx.query_one(
                "SELECT outcome FROM requests_release WHERE request_id = ?", (release.request_id,)
            )
            if row is None:
                raise NoRelease()
            if row[0] == le.Outcome.SENT:
                raise AlreadySent()
            stored = _stored_in(tx, release.request_id)
            record = le.presentation_sent(
                release.request_id, stored.verifier, [p.sent() for p in release.presentations],
                outcome, None if sent else (error or "unknown"),
            )
            self._log.append([record], now=now, tx=tx)
            tx.execute("UPDATE requests_release SET outcome = ? WHERE request_id = ?",
                       (outcome.value, release.request_id))

    def record_receipt(self, release: Release, token: str, *, now: datetime) -> Receipt:
        """Verify the verifier's receipt for ``release`` with its key from the trust list and
        log it (``receipt_received``); the receipt. Raises the ``verify_receipt`` errors
        (``receipt.hash_mismatch`` when it is for no presentation of this release),
        ``trustlist.not_a_verifier`` and ``consent.no_release``."""
        agency = stored_trust_list(self._vault, now=now).trust_list.verifier(release.client_id)
        receipt = verify_receipt(token, agency)
        if receipt.presentation_hash not in release.hashes():
            raise HashMismatch("specs/receipt.md §4 step 7: no presentation of this release")
        with self._vault.transaction() as tx:
            if _row(tx, release.request_id) is None:
                raise NoRelease()
            self._log.append([le.receipt_received(release.request_id, token, receipt)],
                             now=now, tx=tx)
            tx.execute("UPDATE requests_release SET receipts = receipts + 1 WHERE request_id = ?",
                       (release.request_id,))
        return receipt

    # -- inside -----------------------------------------------------------------------------

    def _evaluate(self, request: Request, now: datetime) -> Evaluation:
        trust = stored_trust_list(self._vault, now=now).trust_list
        return evaluate(request, held_credentials(self._vault, now=now), trust, now=now)

    def _received(self, evaluation: Evaluation, party: le.Party) -> Any:
        request = evaluation.request
        purpose = request.purpose
        stored = stored_trust_list(self._vault, now=evaluation.at)
        return le.request_received(
            request.id, party,
            registered=evaluation.registered,
            purpose=le.Purpose(purpose.purpose_id, purpose.dpv, purpose.description),
            legal_basis=purpose.legal_basis,
            retention=Retention(duration=purpose.retention.duration),
            processing_activity=purpose.processing_activity,
            expires_at=request.expires_at,
            claims=evaluation.requested_claims(),
            trust_list=(stored.trust_list.sequence, stored.token),
        )

    def _settle(self, tx: Transaction, evaluation: Evaluation, party: le.Party,
                now: datetime) -> None:
        """Record a block or an expiry: the log entry and the request's final state."""
        if evaluation.status is Status.BLOCKED and evaluation.block is not None:
            block = evaluation.block
            record = le.request_blocked(evaluation.request.id, party, block.reason,
                                        block.over_asked)
            state = State.BLOCKED
        elif evaluation.status is Status.EXPIRED:
            record = le.request_blocked(evaluation.request.id, party,
                                        le.BlockReason.INVALID_REQUEST)
            state = State.EXPIRED
        else:
            return
        self._log.append([record], now=now, tx=tx)
        _set_state(tx, evaluation.request.id, state, now)

    def _require_pending(self, tx: Transaction, request_id: str) -> None:
        state = _stored_in(tx, request_id).state
        if state is State.BLOCKED:
            raise Blocked()
        if state is State.EXPIRED:
            raise RequestExpired()
        if state is not State.PENDING:
            raise AlreadyDecided(state=state.value)

    def _release(
        self, tx: Transaction, stored: StoredRequest, evaluation: Evaluation,
        leave_out: Iterable[ClaimPath], skip: Iterable[str], now: datetime,
    ) -> Release:
        if evaluation.status is not Status.READY:
            raise Unsatisfiable()
        chosen, left_out = choose(evaluation, leave_out, skip)
        request = stored.request
        presentations = tuple(
            present(self._vault, request, line.query_id, line.credential, match.requested,
                    match.requested + match.always_disclosed,
                    holder_binding=line.holder_binding, now=int(now.timestamp()))
            for line, match in chosen
        )
        released = [
            le.ReleasedCredential(p.credential_id, p.vct, [
                (path, _value(line.credential.claims, path)) for path in p.claims
            ])
            for p, (line, _) in zip(presentations, chosen, strict=True)
        ]
        record = le.request_approved(stored.id, stored.verifier, released, left_out)
        appended = self._log.append([record], now=now, tx=tx)
        release = Release(request.id, request.client_id, request.response_uri,
                          request.response_mode, request.state, presentations,
                          appended.entries[0].seq)
        _set_state(tx, stored.id, State.APPROVED, now)
        tx.execute("INSERT INTO requests_release (request_id, release) VALUES (?, ?)",
                   (stored.id, json.dumps(format_release(release))))
        return release


def _value(claims: Any, path: ConcretePath) -> Any:
    found = select(path, claims)
    return found[0].value if found else None


def _party(evaluation: Evaluation) -> le.Party:
    if evaluation.verifier is not None:
        return le.Party.of(evaluation.verifier)
    return le.Party(evaluation.request.client_id)


_COLUMNS = "id, received, client_id, verifier, parameters, source, signed, state, decided"


def _row(tx: Transaction, request_id: str) -> Sequence[Any] | None:
    return tx.query_one(f"SELECT {_COLUMNS} FROM requests_request WHERE id = ?",  # noqa: S608
                        (request_id,))


def _stored_in(tx: Transaction, request_id: str) -> StoredRequest:
    row = _row(tx, request_id)
    if row is None:
        raise NoSuchRequest(id=request_id)
    return _stored(row)


def _stored(row: Sequence[Any]) -> StoredRequest:
    ident, received, _, verifier, parameters, source, signed, state, decided = row
    party = json.loads(str(verifier))
    names = party.get("name", {})
    return StoredRequest(
        request=restore_request(json.loads(str(parameters)), signed=bool(signed),
                                source=str(source)),
        received=parse_time(str(received)),
        state=State(str(state)),
        decided=None if decided is None else parse_time(str(decided)),
        verifier=le.Party(str(party["id"]), names.get("nl"), names.get("en")),
    )


def _set_state(tx: Transaction, request_id: str, state: State, now: datetime) -> None:
    tx.execute("UPDATE requests_request SET state = ?, decided = ? WHERE id = ?",
               (state.value, format_time(now), request_id))

