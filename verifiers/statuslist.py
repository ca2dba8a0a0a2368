"""IETF Token Status List (draft-ietf-oauth-status-list-20/-21): the issuer's list and the
relying party's check.

Issuer side: ``StatusList`` hands out random, never reused indices from a list of at least
2**17 entries, so an index tells nothing about issuance order or count (§12.5; HAIP wants a
unique, unpredictable index per credential), and moves them between VALID, SUSPENDED and
INVALID. INVALID is final. ``StatusList.issue_token`` signs the Status List Token.

Relying-party side: ``StatusListChecker.check`` resolves one credential's ``status`` claim
through an injected ``fetch(uri)`` in the order of §8.3 (typ, signature, ``sub`` == uri,
``exp``, ``ttl`` caching, decompression, index in bounds, value), returning VALID or raising.
Its signature fits the SD-JWT verifier's ``status_checker`` hook.

Why revoked and suspended are VerificationFailed, not NotPermitted: the status is a property
of the presented artefact, checked like its signature and expiry (STANDARDS §1.4 F, step 28),
and it makes the presentation fail verification the same way an expired credential does.
NotPermitted is about the caller's own rights (a passphrase, a registration, a grant).

Stored state: ``format_status_list_state`` / ``parse_status_list_state`` write and read an
issuer's list (uri, statuses, which indices were handed out) as one JSON object, so a file
(``kluis agency status``) and later a server store keep the same state.

The bit array and ``lst`` are in ``verifiers.status_array``; the JWT in
``verifiers.status_token``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from jwcrypto.jwk import JWK

from vault.errors import (
    Conflict,
    InvalidInput,
    KluisError,
    NotFound,
    Unavailable,
    VerificationFailed,
)
from verifiers.status_array import (
    BadParameters,
    StatusArray,
    StatusValue,
    format_status_list,
    is_int,
    parse_status_list,
)
from verifiers.status_token import (
    StatusListToken,
    issue_status_list_token,
    verify_status_list_token,
)

# Large enough that an index tells nothing about how many credentials were issued, or when.
MIN_LIST_SIZE = 1 << 17


class ListFull(Conflict):
    code = "status.list_full"
    en = "Every place in this status list is in use. Start a new status list."
    nl = "Alle plekken in deze statuslijst zijn in gebruik. Begin een nieuwe statuslijst."


class NotAllocated(NotFound):
    code = "status.not_allocated"
    en = "No credential was issued with this status list index. Check the number."
    nl = "Er is geen bewijs uitgegeven met dit nummer in de statuslijst. Controleer het nummer."


class AlreadyRevoked(Conflict):
    code = "status.already_revoked"
    en = (
        "This credential is revoked, and revoking cannot be undone. "
        "Issue a new credential if needed."
    )
    nl = (
        "Dit bewijs is ingetrokken, en intrekken kan niet ongedaan worden gemaakt. "
        "Geef zo nodig een nieuw bewijs uit."
    )


class BadTransition(Conflict):
    code = "status.bad_transition"
    en = "The status of this credential cannot change this way. Check its current status first."
    nl = "De status van dit bewijs kan niet zo veranderen. Bekijk eerst de huidige status."


class BadReference(InvalidInput):
    code = "status.bad_reference"
    en = "The credential's reference to its status list is not valid, so its status is unknown."
    nl = (
        "De verwijzing van het bewijs naar de statuslijst is niet geldig. "
        "De status is daarom onbekend."
    )


class FetchFailed(Unavailable):
    code = "status.fetch_failed"
    en = (
        "The status list could not be fetched, so the credential cannot be checked now. "
        "Try again later."
    )
    nl = (
        "De statuslijst kon niet worden opgehaald, dus het bewijs kan nu niet worden "
        "gecontroleerd. Probeer het later opnieuw."
    )


class Revoked(VerificationFailed):
    code = "status.revoked"
    en = "This credential has been revoked by its issuer. It can no longer be used."
    nl = "Dit bewijs is ingetrokken door de uitgever. Het kan niet meer worden gebruikt."


class Suspended(VerificationFailed):
    code = "status.suspended"
    en = (
        "This credential is suspended by its issuer for now. Ask the issuer when it is valid again."
    )
    nl = (
        "Dit bewijs is tijdelijk geschorst door de uitgever. "
        "Vraag de uitgever wanneer het weer geldig is."
    )


class UnknownStatus(VerificationFailed):
    code = "status.unknown_value"
    en = "The credential has a status that kluis does not understand, so it is not accepted."
    nl = "Het bewijs heeft een status die kluis niet begrijpt. Het wordt daarom niet geaccepteerd."


class StatusList:
    """An issuer's status list at ``uri``: allocation and status changes (§12.5, §7.1).

    Indices are drawn with ``secrets`` among the never-allocated ones, so an index is never
    handed out twice, not even after its credential is revoked.
    """

    def __init__(self, uri: str, *, bits: int = 2, size: int = MIN_LIST_SIZE) -> None:
        if not isinstance(uri, str) or not uri:
            raise BadParameters("Token Status List §6.1: uri is a non-empty string")
        if size < MIN_LIST_SIZE:
            raise BadParameters(f"kluis: a status list has at least {MIN_LIST_SIZE} entries")
        self.uri = uri
        self._statuses = StatusArray(bits, size)
        self._allocated: set[int] = set()

    @classmethod
    def restore(cls, uri: str, statuses: StatusArray, allocated: Iterable[int]) -> StatusList:
        """A list as stored: its array and the indices handed out so far (both copied).

        Raises ``status.bad_parameters`` if an allocated index lies outside the list or an
        index that was never handed out has a status other than VALID.
        """
        status_list = cls(uri, bits=statuses.bits, size=len(statuses))
        status_list._statuses = StatusArray.from_bytes(statuses.bits, statuses.to_bytes())
        status_list._allocated = set(allocated)
        if any(not 0 <= i < len(statuses) for i in status_list._allocated):
            raise BadParameters("an allocated index lies outside the list")
        if any(i not in status_list._allocated for i, _ in statuses.nonzero()):
            raise BadParameters("an index that was never handed out has a status")
        return status_list

    @property
    def bits(self) -> int:
        return self._statuses.bits

    @property
    def size(self) -> int:
        return len(self._statuses)

    @property
    def statuses(self) -> StatusArray:
        """A copy of the packed array, e.g. to store it."""
        return StatusArray.from_bytes(self.bits, self._statuses.to_bytes())

    @property
    def allocated(self) -> frozenset[int]:
        return frozenset(self._allocated)

    def allocate(self) -> int:
        """A fresh random index, VALID. Raises ``status.list_full`` when none is left."""
        free = self.size - len(self._allocated)
        if free <= 0:
            raise ListFull(f"all {self.size} indices of {self.uri} are used")
        for _ in range(64):  # rejection sampling: uniform over the free indices
            index = secrets.randbelow(self.size)
            if index not in self._allocated:
                break
        else:  # a nearly full list: pick among the free ones directly, still uniformly
            index = secrets.choice([i for i in range(self.size) if i not in self._allocated])
        self._allocated.add(index)
        self._statuses[index] = StatusValue.VALID
        return index

    def status(self, index: int) -> int:
        """The status of an allocated index. Raises ``status.not_allocated``."""
        self._require_allocated(index)
        return self._statuses[index]

    def reference(self, index: int) -> dict[str, Any]:
        """The ``status`` claim for the credential at ``index`` (§6.1)."""
        self._require_allocated(index)
        return {"status_list": {"idx": index, "uri": self.uri}}

    def revoke(self, index: int) -> None:
        """VALID or SUSPENDED -> INVALID, for good. Raises ``status.already_revoked``."""
        self._require_changeable(index)
        self._statuses[index] = StatusValue.INVALID

    def suspend(self, index: int) -> None:
        """VALID -> SUSPENDED. Raises ``status.bad_transition`` from another status or on a
        1-bit list, which cannot hold SUSPENDED, and ``status.already_revoked``."""
        current = self._require_changeable(index)
        if self.bits == 1:
            raise BadTransition("Token Status List §7.1: a 1-bit list has no SUSPENDED")
        if current != StatusValue.VALID:
            raise BadTransition(f"only a VALID credential can be suspended, not {current}")
        self._statuses[index] = StatusValue.SUSPENDED

    def reinstate(self, index: int) -> None:
        """SUSPENDED -> VALID. Raises ``status.already_revoked`` for a revoked credential and
        ``status.bad_transition`` for one that is not suspended."""
        current = self._require_changeable(index)
        if current != StatusValue.SUSPENDED:
            raise BadTransition(f"only a SUSPENDED credential can be reinstated, not {current}")
        self._statuses[index] = StatusValue.VALID

    def issue_token(
        self,
        key: JWK,
        *,
        now: int,
        ttl: int = 3600,
        lifetime: int = 86400,
        issuer: str | None = None,
    ) -> str:
        """The signed Status List Token of this list: see ``issue_status_list_token``."""
        return issue_status_list_token(
            self.uri, self._statuses, key, now=now, ttl=ttl, lifetime=lifetime, issuer=issuer
        )

    def _require_allocated(self, index: int) -> None:
        if index not in self._allocated:
            raise NotAllocated(f"index {index} of {self.uri} was never handed out")

    def _require_changeable(self, index: int) -> int:
        self._require_allocated(index)
        current = self._statuses[index]
        if current == StatusValue.INVALID:
            raise AlreadyRevoked(f"index {index} of {self.uri} is revoked")
        return current


# --- the issuer's stored state ------------------------------------------------------------------

STATE_FORMAT = "kluis-status-list-state"
STATE_VERSION = 1
_STATE_MEMBERS = frozenset({"format", "version", "uri", "status_list", "allocated"})
MAX_URI_LENGTH = 2048


class BadState(InvalidInput):
    code = "status.bad_state"
    en = (
        "The saved status list is damaged or not in the right format. "
        "Use your last good copy of it."
    )
    nl = (
        "De opgeslagen statuslijst is beschadigd of heeft niet de juiste vorm. "
        "Gebruik uw laatste goede kopie."
    )


def format_status_list_state(status_list: StatusList) -> dict[str, Any]:
    """The issuer's list as one JSON object, read back by ``parse_status_list_state``.

    ``{"format": "kluis-status-list-state", "version": 1, "uri": ...,
    "status_list": {"bits", "lst"}, "allocated": {"bits": 1, "lst"}}``: the statuses in the
    form the token carries (Token Status List §4.2), and one bit per index, set when it was
    handed out, packed and compressed the same way (padded to whole bytes). Keeping the
    allocated set is what lets an index never be handed out twice.
    """
    size = status_list.size
    allocated = StatusArray.from_bytes(1, bytes(-(-size // 8)))
    for index in status_list.allocated:
        allocated[index] = 1
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "uri": status_list.uri,
        "status_list": format_status_list(status_list.statuses),
        "allocated": format_status_list(allocated),
    }


def parse_status_list_state(state: object) -> StatusList:
    """The issuer's list in ``state``: an object from ``format_status_list_state``, or its
    JSON text (``str`` or ``bytes``). Members are exactly the five written, nothing else.

    Raises ``status.bad_state`` for anything else: not JSON, duplicate or unknown members,
    another format or version, an empty or over-long uri, a list that does not decode
    (§4.2), fewer than ``MIN_LIST_SIZE`` entries, an allocation bitmap of the wrong length,
    or a status on an index that was never handed out.
    """
    if isinstance(state, str | bytes):
        state = _state_json(state)
    if not isinstance(state, Mapping) or set(state) != _STATE_MEMBERS:
        raise BadState(f"kluis: the state has exactly the members {sorted(_STATE_MEMBERS)}")
    if state["format"] != STATE_FORMAT or not is_int(state["version"]):
        raise BadState(f"kluis: format is {STATE_FORMAT!r} and version a number")
    if state["version"] != STATE_VERSION:
        raise BadState(f"kluis: state version {state['version']} is not {STATE_VERSION}")
    uri = state["uri"]
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_URI_LENGTH:
        raise BadState(f"Token Status List §6.1: uri is a string of 1-{MAX_URI_LENGTH}")
    try:
        statuses = parse_status_list(state["status_list"])
        bitmap = parse_status_list(state["allocated"])
    except KluisError as error:
        raise BadState(f"status_list or allocated: {error.detail}") from None
    if bitmap.bits != 1 or len(bitmap) != -(-len(statuses) // 8) * 8:
        raise BadState("kluis: allocated has one bit per index, padded to whole bytes")
    try:
        return StatusList.restore(uri, statuses, (i for i, _ in bitmap.nonzero()))
    except KluisError as error:
        raise BadState(error.detail) from None


def _state_json(text: str | bytes) -> object:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            raise ValueError("duplicate member name")
        return members

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadState("RFC 8259: the state is JSON without duplicate members") from None


# --- the relying party's checker (§8) -----------------------------------------------------------

Fetch = Callable[[str], bytes]


class StatusListChecker:
    """Resolves a credential's ``status`` claim to VALID or an error (§8.3).

    ``fetch(uri)`` returns the Status List Token's bytes (HTTP is the caller's business).
    ``issuer_keys`` are the keys the list may be signed with. ``cache`` maps a uri to
    ``(fresh_until, token)``; pass a shared dict to share it, or let each checker keep its own.
    """

    def __init__(
        self,
        fetch: Fetch,
        issuer_keys: Sequence[JWK],
        *,
        cache: MutableMapping[str, tuple[int, StatusListToken]] | None = None,
    ) -> None:
        self._fetch = fetch
        self._keys = tuple(issuer_keys)
        self._cache: MutableMapping[str, tuple[int, StatusListToken]] = (
            {} if cache is None else cache
        )

    def check(self, status_claim: Mapping[str, Any], *, now: int) -> StatusValue:
        """Return VALID for the credential whose ``status`` claim this is, or raise.

        Raises ``status.bad_reference`` for a malformed claim; ``status.fetch_failed`` when
        the list cannot be fetched; the ``verify_status_list_token`` errors; then
        ``status.index_out_of_range``; and for the value found ``status.revoked`` (INVALID),
        ``status.suspended`` (SUSPENDED) or ``status.unknown_value`` (anything else).
        """
        index, uri = _reference(status_claim)
        token = self._token(uri, now)
        value = token.statuses[index]
        if value == StatusValue.VALID:
            return StatusValue.VALID
        if value == StatusValue.INVALID:
            raise Revoked(f"Token Status List §7.1: {uri} index {index} is INVALID")
        if value == StatusValue.SUSPENDED:
            raise Suspended(f"Token Status List §7.1: {uri} index {index} is SUSPENDED")
        raise UnknownStatus(f"Token Status List §7.1: value {value:#04x} is not understood")

    def check_status(self, status: Mapping[str, Any], *, now: int) -> None:
        """``check`` returning nothing: the shape of the SD-JWT verifier's ``StatusChecker``."""
        self.check(status, now=now)

    def _token(self, uri: str, now: int) -> StatusListToken:
        cached = self._cache.get(uri)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            raw = self._fetch(uri)
        except KluisError:
            raise
        except Exception as error:  # any transport failure: the list is not known
            raise FetchFailed(f"fetching {uri}: {type(error).__name__}") from error
        token = verify_status_list_token(raw, self._keys, uri=uri, now=now)
        fresh_until = token.fresh_until(now)
        if fresh_until is not None and fresh_until > now:
            self._cache[uri] = (fresh_until, token)
        else:
            self._cache.pop(uri, None)
        return token


def _reference(claim: Mapping[str, Any]) -> tuple[int, str]:
    reference = claim.get("status_list") if isinstance(claim, Mapping) else None
    if not isinstance(reference, Mapping):
        raise BadReference("Token Status List §6.1: status.status_list is a JSON object")
    index, uri = reference.get("idx"), reference.get("uri")
    if not is_int(index) or index < 0 or not isinstance(uri, str) or not uri:
        raise BadReference("Token Status List §6.1: idx is a non-negative number, uri a string")
    return index, uri
