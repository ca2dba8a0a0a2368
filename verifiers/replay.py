"""Replaying a consent log against the release policy (``specs/audit-export.md`` §4).

``replay_export`` reads an export once: it hashes every line (the checks of
``verify_export``), parses every line as a canonical entry, binds every receipt and trust
list to the entry naming it, and feeds the entries to a ``Replayer``, which judges them:

- every release (``presentation_sent``) follows an approval of that request, to the same
  verifier, before the request expired, and releases only claims the approval names;
- nothing goes to a verifier the wallet blocked, or that is not registered (by the entry,
  and by the trust list the entry names, when the export carries it);
- an approval is one-off: one release per approval, no approval after a refusal or block;
- every receipt is for a release that happened, and names no claim beyond it;
- every fetch served under a grant (``grant_used``, ``specs/grant.md`` §8) belongs to a grant
  the log created, by its agency, of one of its items, before its end date, and neither after
  its revocation's moment nor beyond the number of fetches the relay had served when it
  revoked (whichever order the entries were logged in).

Memory stays flat: a request is kept while it can still change state and then shrinks to a
few flag bits under a 64-bit hash of its id, so a log of millions of entries needs about a
hundred bytes per finished request and nothing per other entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import ValidationError

from vault.errors import VerificationFailed
from verifiers.audit_export import (
    ENTRIES,
    RECEIPTS,
    SPEC,
    TRUSTLISTS,
    BadExport,
    ExportReader,
    IntegrityCheck,
    Progress,
    VerifiedExport,
    entry_blocks,
)
from verifiers.claim_path import covers
from verifiers.jws import Malformed, b64url_decode
from verifiers.log_entry import Kind, receipt_hash
from verifiers.note import VerifierKey
from verifiers.tlog import (
    BadEntry,
    BadRecord,
    canonical_json,
    lines_with_floats,
    parse_entry,
)
from verifiers.trustlist import (
    NotAVerifier,
    NotRegistered,
    TrustList,
    UnknownPurpose,
    trust_list_hash,
)

MAX_FINDINGS = 1000
"""Findings kept in the report (all are counted): a hostile log must not fill memory."""
# What an SD-JWT VC always shows, whatever was asked: the claims the holder can never
# withhold (SD-JWT VC draft-18 §3.2.2.2: iss, nbf, exp, cnf, vct, vct#integrity and status
# MUST NOT be selectively disclosable; kluis issuers keep iat plain too). Approving or
# releasing them is not beyond the request or the registration (specs/trustlist.md §4: "an
# empty list allows only what is always disclosed").
ALWAYS_DISCLOSED = frozenset({"iss", "iat", "nbf", "exp", "cnf", "vct", "vct#integrity",
                              "status"})
SWEEP_EVERY = 4096
MAX_TRUST_LIST_BYTES = 16 * 1024 * 1024
_SORT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


class Violation(StrEnum):
    """What the replay reports; the CLI explains each in Dutch and English."""

    RELEASE_WITHOUT_APPROVAL = "release_without_approval"
    RELEASE_BEYOND_APPROVAL = "release_beyond_approval"
    RELEASE_BEYOND_REGISTRATION = "release_beyond_registration"
    RELEASE_TO_BLOCKED_VERIFIER = "release_to_blocked_verifier"
    RELEASE_TO_UNREGISTERED_VERIFIER = "release_to_unregistered_verifier"
    RELEASE_TO_OTHER_VERIFIER = "release_to_other_verifier"
    RELEASE_AFTER_EXPIRY = "release_after_expiry"
    RELEASE_AFTER_REFUSAL = "release_after_refusal"
    SECOND_RELEASE = "second_release"
    APPROVAL_WITHOUT_REQUEST = "approval_without_request"
    APPROVAL_BEYOND_REQUEST = "approval_beyond_request"
    APPROVAL_AFTER_DECISION = "approval_after_decision"
    APPROVAL_AFTER_EXPIRY = "approval_after_expiry"
    REQUEST_REUSED = "request_reused"
    RECEIPT_WITHOUT_RELEASE = "receipt_without_release"
    RECEIPT_BEYOND_RELEASE = "receipt_beyond_release"
    GRANT_REUSED = "grant_reused"
    GRANT_USE_WITHOUT_GRANT = "grant_use_without_grant"
    GRANT_USE_BY_OTHER_AGENCY = "grant_use_by_other_agency"
    GRANT_USE_OUTSIDE_GRANT = "grant_use_outside_grant"
    GRANT_USE_AFTER_EXPIRY = "grant_use_after_expiry"
    GRANT_USE_AFTER_REVOCATION = "grant_use_after_revocation"


class AttachmentMismatch(VerificationFailed):
    code = "audit.attachment_mismatch"
    en = (
        "A receipt or trust list in the export does not match the log entry that names it. "
        "The export was changed."
    )
    nl = (
        "Een ontvangstbewijs of vertrouwenslijst in de export past niet bij de regel die "
        "ernaar verwijst. De export is gewijzigd."
    )


@dataclass(frozen=True)
class Finding:
    """One violation: which rule, at which entry, for which request, and a detail."""

    violation: Violation
    seq: int
    request: str | None
    detail: str


@dataclass(frozen=True)
class ReplayReport:
    """The verdict on one log. ``violations`` counts all findings; ``findings`` keeps the
    first ``MAX_FINDINGS``."""

    export: VerifiedExport | None
    entries: int
    kinds: dict[str, int]
    requests: int
    releases: int
    receipts: int
    awaiting_outcome: int
    findings: tuple[Finding, ...]
    violations: int
    grants: int = 0
    grant_uses: int = 0
    """Fetches served under grants."""

    @property
    def clean(self) -> bool:
        return self.violations == 0


# flags of a request
_RECEIVED, _BLOCKED, _REFUSED, _APPROVED, _RELEASED, _EXPIRED = 1, 2, 4, 8, 16, 32
_NEVER = "9999-12-31T23:59:59Z"
Claims = dict[str, list[tuple[Any, ...]]]
TrustLists = Callable[[str], TrustList]


class _Request:
    """What the replay keeps of a request that can still change state."""

    __slots__ = ("approved", "expires", "flags", "purpose", "registered", "requested",
                 "sent", "trust_list", "verifier")

    def __init__(self, verifier: str, registered: bool, expires: str, requested: Claims,
                 purpose: str | None, trust_list: str | None) -> None:
        self.verifier = verifier
        self.registered = registered
        self.expires = expires
        self.requested = requested
        self.purpose = purpose
        self.trust_list = trust_list
        self.flags = _RECEIVED
        self.approved: Claims = {}
        self.sent: dict[str, Claims] = {}


class _Grant:
    """What the replay keeps of a grant: who may read what until when, whether and when it
    was revoked, and the latest served fetch seen (time and number)."""

    __slots__ = ("agency", "items", "last_served", "revoked_at", "served", "top_number",
                 "until")

    def __init__(self, agency: str, until: str, items: frozenset[str]) -> None:
        self.agency = agency
        self.until = until
        self.items = items
        self.revoked_at: str | None = None
        self.served: int | None = None
        self.last_served = ""
        self.top_number = 0


class Replayer:
    """The policy of ``specs/audit-export.md`` §4 over entries fed in log order."""

    def __init__(self, trust_lists: TrustLists | None = None) -> None:
        self._grants: dict[str, _Grant] = {}
        self.grant_uses = 0
        self._open: dict[str, _Request] = {}
        self._closed: dict[int, int] = {}
        self._trust_lists = trust_lists
        self.kinds: dict[str, int] = {}
        self.findings: list[Finding] = []
        self.violations = 0
        self.requests = self.releases = self.receipts = 0
        self._time = ""
        self._fed = 0
        self._countdown = SWEEP_EVERY
        self._dispatch: dict[str, Callable[[int, dict[str, Any]], None]] = {
            Kind.REQUEST_RECEIVED: self._received,
            Kind.REQUEST_BLOCKED: self._blocked,
            Kind.REQUEST_REFUSED: self._refused,
            Kind.REQUEST_APPROVED: self._approved,
            Kind.PRESENTATION_SENT: self._sent,
            Kind.RECEIPT_RECEIVED: self._receipt,
            Kind.GRANT_CREATED: self._grant_created,
            Kind.GRANT_USED: self._grant_used,
            Kind.GRANT_REVOKED: self._grant_revoked,
        }

    def feed(self, entry: dict[str, Any]) -> None:
        """Judge one parsed entry (``tlog.parse_entry``). Raises ``log.bad_entry`` when an
        entry of a known kind lacks a member the policy reads."""
        kind: str = entry["kind"]
        kinds = self.kinds
        kinds[kind] = kinds.get(kind, 0) + 1
        self._fed += 1
        handler = self._dispatch.get(kind)
        if handler is None:
            return
        self._time = entry["time"]
        handler(entry["seq"], entry)
        self._countdown -= 1
        if not self._countdown:
            self._countdown = SWEEP_EVERY
            self._sweep()

    def report(self, export: VerifiedExport | None = None) -> ReplayReport:
        awaiting = sum(
            1 for r in self._open.values() if r.flags & _APPROVED and not r.flags & _RELEASED
        )
        return ReplayReport(export, self._fed, dict(self.kinds), self.requests, self.releases,
                            self.receipts, awaiting, tuple(self.findings), self.violations,
                            len(self._grants), self.grant_uses)

    # -- the kinds ----------------------------------------------------------------------------

    def _received(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        self.requests += 1
        if rid in self._open or _key(rid) in self._closed:
            self._find(Violation.REQUEST_REUSED, seq, rid, "a second request_received")
            self._closed.pop(_key(rid), None)
        expires = _text(entry, "expires_at", seq)
        if len(expires) != 20 or expires[-1] != "Z":
            raise BadEntry(f"entry {seq}: expires_at is YYYY-MM-DDThh:mm:ssZ")
        purpose = entry.get("purpose")
        trust = entry.get("trust_list")
        self._open[rid] = _Request(
            _verifier(entry, seq),
            entry.get("registered") is True,
            expires,
            _claims(entry.get("claims"), seq),
            purpose.get("id") if isinstance(purpose, dict) else None,
            trust.get("hash") if isinstance(trust, dict) else None,
        )

    def _blocked(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        state = self._open.pop(rid, None)
        flags = state.flags if state else self._closed.get(_key(rid), 0)
        self._closed[_key(rid)] = flags | _BLOCKED

    def _refused(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        state = self._open.pop(rid, None)
        flags = state.flags if state else self._closed.get(_key(rid), 0)
        if flags & (_APPROVED | _REFUSED | _BLOCKED):
            self._find(Violation.APPROVAL_AFTER_DECISION, seq, rid, "refused after a decision")
        self._closed[_key(rid)] = flags | _REFUSED

    def _approved(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        verifier = _verifier(entry, seq)
        approved: Claims = {}
        for credential in _list(entry.get("credentials"), seq):
            if type(credential) is not dict:
                raise BadEntry(f"entry {seq}: a credential is {{credential, vct, claims}}")
            paths = approved.setdefault(_text(credential, "vct", seq), [])
            for claim in _list(credential.get("claims"), seq):
                if type(claim) is not dict:
                    raise BadEntry(f"entry {seq}: a claim is {{path, commitment}}")
                paths.append(_path(claim.get("path"), seq))
        state = self._open.get(rid)
        if state is None:
            flags = self._closed.get(_key(rid))
            if flags is None:
                self._find(Violation.APPROVAL_WITHOUT_REQUEST, seq, rid, "no request_received")
                state = self._open[rid] = _Request(verifier, False, _NEVER, {}, None, None)
                state.flags = 0  # judged by its approval alone from here on
            elif flags & _EXPIRED:
                self._find(Violation.APPROVAL_AFTER_EXPIRY, seq, rid, "the request had expired")
                self._closed[_key(rid)] = flags | _APPROVED
                return
            else:
                self._find(Violation.APPROVAL_AFTER_DECISION, seq, rid, _decided(flags))
                return
        elif state.flags & _APPROVED:
            self._find(Violation.APPROVAL_AFTER_DECISION, seq, rid, "approved twice")
        if state.flags & _RECEIVED and self._time > state.expires:
            self._find(Violation.APPROVAL_AFTER_EXPIRY, seq, rid, f"expired {state.expires}")
        if verifier != state.verifier:
            self._find(Violation.RELEASE_TO_OTHER_VERIFIER, seq, rid, verifier)
        if state.flags & _RECEIVED:
            for vct, path in _beyond(approved, state.requested, always=ALWAYS_DISCLOSED):
                self._find(Violation.APPROVAL_BEYOND_REQUEST, seq, rid, _claim_text(vct, path))
        state.flags |= _APPROVED
        state.approved = approved

    def _sent(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        outcome = _text(entry, "outcome", seq)
        sent = outcome == "sent"
        verifier = _verifier(entry, seq)
        by_hash: dict[str, Claims] = {}
        released: Claims = {}
        for presentation in _list(entry.get("presentations"), seq):
            if type(presentation) is not dict:
                raise BadEntry(f"entry {seq}: a presentation is {{credential, vct, hash, claims}}")
            vct = _text(presentation, "vct", seq)
            paths = [_path(p, seq) for p in _list(presentation.get("claims"), seq)]
            by_hash[_text(presentation, "hash", seq)] = {vct: paths}
            released.setdefault(vct, []).extend(paths)
        if sent:
            self.releases += 1
        state = self._open.get(rid)
        if state is None:
            flags = self._closed.get(_key(rid), 0)
            self._find(_closed_release(flags, sent), seq, rid, _decided(flags))
            if sent and flags:
                self._closed[_key(rid)] = flags | _RELEASED
            return
        if not state.flags & _APPROVED:
            self._find(Violation.RELEASE_WITHOUT_APPROVAL, seq, rid, "no approval")
        elif sent and state.flags & _RELEASED:
            self._find(Violation.SECOND_RELEASE, seq, rid, "one approval, two releases")
        if state.flags & _RECEIVED and not state.registered:
            self._find(Violation.RELEASE_TO_UNREGISTERED_VERIFIER, seq, rid, state.verifier)
        if self._time > state.expires:
            self._find(Violation.RELEASE_AFTER_EXPIRY, seq, rid, f"expired {state.expires}")
        if verifier != state.verifier:
            self._find(Violation.RELEASE_TO_OTHER_VERIFIER, seq, rid, verifier)
        if state.flags & _APPROVED:
            for vct, path in _beyond(released, state.approved):
                self._find(Violation.RELEASE_BEYOND_APPROVAL, seq, rid, _claim_text(vct, path))
        self._check_registration(seq, rid, state, released)
        if sent:
            state.flags |= _RELEASED
            state.sent.update(by_hash)

    def _receipt(self, seq: int, entry: dict[str, Any]) -> None:
        rid = _text(entry, "request", seq)
        receipt = entry.get("receipt")
        if not isinstance(receipt, dict):
            raise BadEntry(f"entry {seq}: a receipt_received entry holds the receipt")
        self.receipts += 1
        digest = _text(receipt, "presentation_hash", seq)
        state = self._open.get(rid)
        if state is None:
            if not self._closed.get(_key(rid), 0) & _RELEASED:
                self._find(Violation.RECEIPT_WITHOUT_RELEASE, seq, rid, "nothing was released")
            return
        released = state.sent.pop(digest, None)
        if released is None or receipt.get("verifier") != state.verifier:
            self._find(Violation.RECEIPT_WITHOUT_RELEASE, seq, rid, f"presentation {digest}")
            return
        received = {_text(receipt, "vct", seq): [_path(p, seq) for p in
                                                 _list(receipt.get("claims"), seq)]}
        for vct, path in _beyond(received, released):
            self._find(Violation.RECEIPT_BEYOND_RELEASE, seq, rid, _claim_text(vct, path))
        if not state.sent and state.flags & _RELEASED:
            del self._open[rid]
            self._closed[_key(rid)] = state.flags

    # -- grants (specs/grant.md §8) -------------------------------------------------------------

    def _grant_created(self, seq: int, entry: dict[str, Any]) -> None:
        gid = _text(entry, "grant", seq)
        if gid in self._grants:
            self._find(Violation.GRANT_REUSED, seq, gid, "a second grant_created")
        items: set[str] = set()
        for item in _list(entry.get("items"), seq):
            if type(item) is not dict:
                raise BadEntry(f"entry {seq}: a grant item is {{id, claims | vault_item}}")
            items.add(_text(item, "id", seq))
        self._grants[gid] = _Grant(_party_id(entry, "agency", seq),
                                   _stamp(entry, "valid_until", seq), frozenset(items))

    def _grant_used(self, seq: int, entry: dict[str, Any]) -> None:
        gid = _text(entry, "grant", seq)
        if _text(entry, "outcome", seq) != "served":
            return  # a refusal is the relay doing its job
        self.grant_uses += 1
        at = _stamp(entry, "fetched_at", seq)
        item = _text(entry, "item", seq)
        number = entry.get("number")
        if type(number) is not int:
            raise BadEntry(f"entry {seq}: a served fetch has its number")
        grant = self._grants.get(gid)
        if grant is None:
            self._find(Violation.GRANT_USE_WITHOUT_GRANT, seq, gid, item)
            return
        if _party_id(entry, "agency", seq) != grant.agency:
            self._find(Violation.GRANT_USE_BY_OTHER_AGENCY, seq, gid, _party_id(entry, "agency",
                                                                                seq))
        if item not in grant.items:
            self._find(Violation.GRANT_USE_OUTSIDE_GRANT, seq, gid, item)
        if at >= grant.until:
            self._find(Violation.GRANT_USE_AFTER_EXPIRY, seq, gid, f"{at}, ended {grant.until}")
        if grant.revoked_at is not None and (at > grant.revoked_at
                                             or number > (grant.served or 0)):
            self._find(Violation.GRANT_USE_AFTER_REVOCATION, seq, gid,
                       f"{at} (fetch {number}), revoked {grant.revoked_at} after {grant.served}")
        grant.last_served = max(grant.last_served, at)
        grant.top_number = max(grant.top_number, number)

    def _grant_revoked(self, seq: int, entry: dict[str, Any]) -> None:
        gid = _text(entry, "grant", seq)
        served = entry.get("served")
        if type(served) is not int:
            raise BadEntry(f"entry {seq}: grant_revoked says how many fetches were served")
        grant = self._grants.get(gid)
        if grant is None or grant.revoked_at is not None:
            return
        grant.revoked_at = _stamp(entry, "revoked_at", seq)
        grant.served = served
        if grant.last_served > grant.revoked_at or grant.top_number > served:
            # Logged before the revocation, served after it.
            self._find(Violation.GRANT_USE_AFTER_REVOCATION, seq, gid,
                       f"served {grant.last_served} (fetch {grant.top_number}), revoked "
                       f"{grant.revoked_at} after {served}")

    # -- helpers ------------------------------------------------------------------------------

    def _check_registration(self, seq: int, rid: str, state: _Request, released: Claims) -> None:
        if self._trust_lists is None or state.trust_list is None or state.purpose is None:
            return
        trust_list = self._trust_lists(state.trust_list)
        try:
            registration = trust_list.registration(state.verifier, state.purpose)
        except (NotAVerifier, UnknownPurpose) as error:
            if state.registered:  # the entry said registered; the list says otherwise
                self._find(Violation.RELEASE_TO_UNREGISTERED_VERIFIER, seq, rid, error.code)
            return
        for vct, paths in released.items():
            try:
                allowed = registration.allowed_claims(vct)
            except NotRegistered:
                allowed = ()
            for path in paths:
                if path[:1] and path[0] in ALWAYS_DISCLOSED:
                    continue
                if not any(covers(tuple(a), path) for a in allowed):
                    self._find(Violation.RELEASE_BEYOND_REGISTRATION, seq, rid,
                               _claim_text(vct, path))

    def _find(self, violation: Violation, seq: int, rid: str | None, detail: str) -> None:
        self.violations += 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(violation, seq, rid, detail))

    def _sweep(self) -> None:
        """Close requests past their expiry: none of them may change any more."""
        now = self._time
        for rid in [rid for rid, r in self._open.items() if r.expires < now]:
            self._closed[_key(rid)] = self._open.pop(rid).flags | _EXPIRED


# --- reading an export ------------------------------------------------------------------------


def replay_export(
    path: Path,
    *,
    key: VerifierKey | None = None,
    since: str | bytes | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Verify and replay the export at ``path`` in one pass (``specs/audit-export.md`` §4).

    Returns the report (``report.clean`` when no rule is broken). Raises what
    ``verify_export`` raises, ``log.bad_entry`` for a line that is not a canonical entry of
    the right shape, and ``audit.attachment_mismatch`` / ``audit.bad_export`` for receipts
    and trust lists that do not match the entries naming them.
    """
    with ExportReader(path) as export:
        check = IntegrityCheck(export, key=key, since=since)
        lists = _TrustListFolder(export)
        replayer = Replayer(lists.get)
        seq = 0
        with export.open(ENTRIES) as stream, _Receipts(export) as receipts:
            for block in entry_blocks(stream):
                check.feed(block)
                if floats := lines_with_floats(block):
                    parse_entry(block[floats[0]], seq=seq + floats[0])  # raises log.bad_entry
                feed = replayer.feed
                for line in block:
                    entry = parse_entry(line, seq=seq, floats_checked=True)
                    feed(entry)
                    if "receipt_hash" in entry:
                        receipts.match(seq, entry)
                    if "trust_list" in entry:
                        lists.refer(seq, entry["trust_list"])
                    seq += 1
                if progress is not None:
                    progress(seq)
            verified = check.finish()
            receipts.finish()
        lists.finish()
        return replayer.report(verified)


class _Receipts:
    """``receipts.jsonl`` read alongside the entries: one line per entry with a receipt_hash."""

    def __init__(self, export: ExportReader) -> None:
        self._stream: IO[bytes] | None = export.open(RECEIPTS) if export.has(RECEIPTS) else None
        self._lines: Iterator[bytes] = iter(())
        if self._stream is not None:
            self._lines = (line for block in entry_blocks(self._stream) for line in block)

    def __enter__(self) -> _Receipts:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()

    def match(self, seq: int, entry: dict[str, Any]) -> None:
        line = next(self._lines, None)
        if line is None:
            raise AttachmentMismatch(f"{SPEC} §2: entry {seq} names a receipt that is missing")
        try:
            row = orjson.loads(line)
            canonical = orjson.dumps(row, option=_SORT) if line.isascii() else canonical_json(row)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, BadRecord):
            raise BadExport(f"{SPEC} §2: a receipts.jsonl line is not JSON") from None
        if (
            canonical != line
            or type(row) is not dict
            or set(row) != {"seq", "receipt_id", "token"}
            or not isinstance(row["token"], str)
        ):
            raise BadExport(f"{SPEC} §2: a receipts.jsonl line is {{receipt_id, seq, token}}")
        if row["seq"] != seq or row["receipt_id"] != entry.get("receipt_id"):
            raise AttachmentMismatch(f"{SPEC} §2: receipts.jsonl is not in step at entry {seq}")
        if receipt_hash(row["token"]) != entry["receipt_hash"]:
            raise AttachmentMismatch(f"{SPEC} §2: the receipt of entry {seq} is not the one logged")

    def finish(self) -> None:
        if next(self._lines, None) is not None:
            raise AttachmentMismatch(f"{SPEC} §2: receipts.jsonl holds a receipt no entry names")


class _TrustListFolder:
    """``trustlists/<hash>.jws``: each checked against its name once, parsed when needed."""

    def __init__(self, export: ExportReader) -> None:
        self._export = export
        self._referred: set[str] = set()
        self._parsed: dict[str, TrustList] = {}

    def refer(self, seq: int, member: object) -> None:
        digest = member.get("hash") if isinstance(member, dict) else None
        if not isinstance(digest, str):
            raise BadEntry(f"entry {seq}: trust_list is {{sequence, hash}}")
        self._referred.add(digest)

    def get(self, digest: str) -> TrustList:
        if digest not in self._parsed:
            self._parsed[digest] = self._load(digest)
        return self._parsed[digest]

    def _load(self, digest: str) -> TrustList:
        name = f"{TRUSTLISTS}/{digest}.jws"
        if not self._export.has(name):
            raise AttachmentMismatch(f"{SPEC} §2: trust list {digest} is missing")
        raw = self._export.read(name, MAX_TRUST_LIST_BYTES)
        try:
            signed = raw.decode("ascii")
        except UnicodeDecodeError:
            raise AttachmentMismatch(f"{SPEC} §2: {name} is not a compact JWS") from None
        if trust_list_hash(signed) != digest:
            raise AttachmentMismatch(f"{SPEC} §2: {name} does not match its hash")
        try:
            payload = b64url_decode(signed.split(".")[1], "payload")
            return TrustList.model_validate_json(payload)
        except (IndexError, Malformed, ValidationError):
            raise BadExport(f"{SPEC} §2: {name} is not a trust list") from None

    def finish(self) -> None:
        for name in self._export.names(TRUSTLISTS + "/"):
            digest = name.removeprefix(TRUSTLISTS + "/").removesuffix(".jws")
            if digest not in self._referred:
                raise AttachmentMismatch(f"{SPEC} §2: {name} is named by no entry")
            self.get(digest)
        for digest in self._referred:
            self.get(digest)


# --- entry fields -------------------------------------------------------------------------------


def _key(rid: str) -> int:
    # Python's string hash: 64 bits, stable within the one process a replay runs in; two of
    # a million ids collide with a chance of about 3 in 10**8.
    return hash(rid)


def _text(obj: dict[str, Any], name: str, seq: int) -> str:
    value = obj.get(name)
    if type(value) is not str:
        raise BadEntry(f"entry {seq}: {name} is a string")
    return value


def _list(value: object, seq: int) -> list[Any]:
    if type(value) is not list:
        raise BadEntry(f"entry {seq}: a list is missing")
    return value


def _verifier(entry: dict[str, Any], seq: int) -> str:
    party = entry.get("verifier")
    if type(party) is not dict:
        raise BadEntry(f"entry {seq}: verifier is {{id, name?}}")
    return _text(party, "id", seq)


def _party_id(entry: dict[str, Any], name: str, seq: int) -> str:
    party = entry.get(name)
    if type(party) is not dict:
        raise BadEntry(f"entry {seq}: {name} is {{id, name?}}")
    return _text(party, "id", seq)


def _stamp(entry: dict[str, Any], name: str, seq: int) -> str:
    """A time member, checked to compare as text: YYYY-MM-DDThh:mm:ssZ."""
    value = _text(entry, name, seq)
    if len(value) != 20 or value[-1] != "Z" or value[10] != "T":
        raise BadEntry(f"entry {seq}: {name} is YYYY-MM-DDThh:mm:ssZ")
    return value


def _claims(items: object, seq: int) -> Claims:
    """``[{"vct", "path"}]`` as vct -> paths (tuples)."""
    out: Claims = {}
    for item in _list(items, seq):
        if type(item) is not dict:
            raise BadEntry(f"entry {seq}: a claim is {{vct, path}}")
        out.setdefault(_text(item, "vct", seq), []).append(_path(item.get("path"), seq))
    return out


def _path(path: object, seq: int) -> tuple[Any, ...]:
    if type(path) is not list or not path:
        raise BadEntry(f"entry {seq}: a claim path is a non-empty list")
    return tuple(path)


def _beyond(claims: Claims, allowed: Claims, *,
            always: frozenset[str] = frozenset()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The claims not covered by ``allowed`` (same type, an equal or enclosing path), not
    counting top-level claims named in ``always``."""
    for vct, paths in claims.items():
        permitted = allowed.get(vct, [])
        for path in paths:
            if path[:1] and path[0] in always:
                continue
            if path not in permitted and not any(covers(a, path) for a in permitted):
                yield vct, path


def _claim_text(vct: str, path: tuple[Any, ...]) -> str:
    return f"{vct} {orjson.dumps(list(path)).decode()}"


def _decided(flags: int) -> str:
    for flag, word in ((_BLOCKED, "blocked"), (_REFUSED, "refused"), (_RELEASED, "released"),
                       (_EXPIRED, "expired")):
        if flags & flag:
            return f"the request was {word}"
    return "no such request"


def _closed_release(flags: int, sent: bool) -> Violation:
    if flags & _BLOCKED:
        return Violation.RELEASE_TO_BLOCKED_VERIFIER
    if flags & _REFUSED:
        return Violation.RELEASE_AFTER_REFUSAL
    if flags & _RELEASED and sent:
        return Violation.SECOND_RELEASE
    if flags & _EXPIRED and flags & _APPROVED:
        return Violation.RELEASE_AFTER_EXPIRY
    return Violation.RELEASE_WITHOUT_APPROVAL
