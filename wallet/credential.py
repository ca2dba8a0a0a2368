"""The credentials the citizen holds: received into the vault, listed and shown with labels.

A credential arrives as an issued SD-JWT VC string. It is kept only if it passes the full
RFC 9901 §7.1 verification (``verifiers.verifier.verify_issued``: issuer key from the trust
list, or a pinned key for developers; no KB-JWT, STANDARDS.md §1.3 rule 1), it is bound
(``cnf.jwk``) to one of this wallet's holder keys, and its claims fit its credential type.
The vault keeps the token, its type, issuer, validity, the processed claims (for display) and
which claims are selectively disclosable; the consent log records the receipt in the same
transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vault import Conflict, InvalidInput, NotFound, Schema, Transaction, Vault, VerificationFailed
from vault.item import format_time, parse_time
from verifiers import log_entry as le
from verifiers.claim_path import ClaimPath, ConcretePath, sort_key
from verifiers.credential_type import REGISTERED_LABELS, credential_type, validate_claims
from verifiers.dcql import SD_JWT_VC
from verifiers.dcql_match import HeldCredential
from verifiers.holder import HeldSdJwt, parse_issued
from verifiers.jws import VerifyingKey
from verifiers.keybinding import holder_key_of
from verifiers.sdjwt import MAX_LENGTH
from verifiers.trustlist import TrustList
from verifiers.verifier import IssuerKeys, StatusChecker, verify_issued
from wallet.consent_log import ConsentLog
from wallet.holder_key import NoHolderKey, find_holder_key

_V1 = """
CREATE TABLE credential_held (
    id TEXT PRIMARY KEY,
    vct TEXT NOT NULL,
    issuer TEXT NOT NULL,
    received TEXT NOT NULL,
    issued_at INTEGER,
    expires INTEGER,
    holder_kid TEXT NOT NULL,
    claims TEXT NOT NULL,
    disclosable TEXT NOT NULL,
    token TEXT NOT NULL
);
"""

CREDENTIAL_SCHEMA = Schema("credential", (_V1,))
"""The held credentials' table in the vault."""

ID_LENGTH = 16
"""Hex characters of a credential id: the start of the SHA-256 of the token."""
MIN_PREFIX = 4


class NotText(InvalidInput):
    code = "credential.malformed"
    en = "This is not a credential kluis can read. Check that you chose the right file."
    nl = "Dit is geen document dat kluis kan lezen. Controleer of u het juiste bestand koos."


class NotBound(VerificationFailed):
    code = "credential.not_bound"
    en = (
        "The document is not bound to a key of yours, so anyone holding it could use it. "
        "It was not stored; ask the issuer to bind it to your key ('kluis credential key')."
    )
    nl = (
        "Het document is niet aan een sleutel van u gebonden, dus iedereen die het heeft kan "
        "het gebruiken. Het is niet bewaard; vraag de uitgever het aan uw sleutel te binden "
        "('kluis credential key')."
    )


class NotOurKey(VerificationFailed):
    code = "credential.not_our_key"
    en = (
        "The document is bound to someone else's key, not to yours. It was not stored; "
        "give the issuer the key from 'kluis credential key'."
    )
    nl = (
        "Het document is aan de sleutel van iemand anders gebonden, niet aan die van u. Het is "
        "niet bewaard; geef de uitgever de sleutel uit 'kluis credential key'."
    )


class AlreadyHeld(Conflict):
    code = "credential.already_held"
    en = "You already have this document in your wallet ({id})."
    nl = "Dit document zit al in uw wallet ({id})."


class NoSuchCredential(NotFound):
    code = "credential.not_found"
    en = "Your wallet has no document '{id}'. See 'kluis credential list'."
    nl = "Uw wallet heeft geen document '{id}'. Zie 'kluis credential list'."


class AmbiguousId(InvalidInput):
    code = "credential.ambiguous_id"
    en = "More than one document starts with '{id}'. Type more of its id."
    nl = "Meer dan één document begint met '{id}'. Typ meer van het nummer."


@dataclass(frozen=True)
class PinnedIssuerKey:
    """``IssuerKeys`` that trusts one given public key for any issuer: for developers testing
    their own issuer without a trust list. Never the default."""

    key: VerifyingKey

    def key_for(self, iss: str, header: Mapping[str, Any]) -> VerifyingKey:
        """The pinned key, whoever ``iss`` is (the signature check still applies)."""
        return self.key


@dataclass(frozen=True)
class ClaimView:
    """One claim for display: its path, label in Dutch and English, value, and whether the
    citizen can share it on its own (selectively disclosable)."""

    path: ConcretePath
    label: Mapping[str, str]
    value: Any
    disclosable: bool


@dataclass(frozen=True)
class StoredCredential:
    """A credential in the wallet. ``token`` is the issued SD-JWT; handle it as a secret."""

    id: str
    vct: str
    issuer: str
    received: datetime
    issued_at: datetime | None
    expires: datetime | None
    holder_kid: str
    claims: Mapping[str, Any]
    disclosable: frozenset[ConcretePath]
    token: str = field(repr=False)

    def expired(self, now: datetime) -> bool:
        """Whether the credential's ``exp`` has passed at ``now``."""
        return self.expires is not None and now >= self.expires

    def held(self) -> HeldCredential:
        """The credential as DCQL matching sees it (OpenID4VP 1.0 §6.4)."""
        return HeldCredential(
            id=self.id,
            format=SD_JWT_VC,
            vct=self.vct,
            claims=self.claims,
            selectively_disclosable=self.disclosable,
            holder_binding=True,
        )

    def paths(self) -> tuple[ConcretePath, ...]:
        """The claims the credential holds, as the log names them: every top-level claim
        and every selectively disclosable part, in a stable order."""
        top = {(name,) for name in self.claims}
        return tuple(sorted(top | self.disclosable, key=sort_key))

    def issued(self) -> HeldSdJwt:
        """The credential organised for presenting (``verifiers.holder``)."""
        return parse_issued(self.token)

    def views(self) -> tuple[ClaimView, ...]:
        """The type's own claims present in the credential, in the type metadata's order,
        top-level claims only (an object such as the address is one value)."""
        out = []
        for info in credential_type(self.vct).claims:
            if len(info.path) != 1 or info.path[0] not in self.claims:
                continue
            name = str(info.path[0])
            path: ConcretePath = (name,)
            label = claim_label(self.vct, path)
            out.append(ClaimView(path, label, self.claims[name], path in self.disclosable))
        return tuple(out)


def claim_label(vct: str, path: ClaimPath) -> dict[str, str]:
    """The label of the claim at ``path`` in ``nl`` and ``en``; a nested claim is named with
    its parents' labels (``Adres – Postcode``). A claim the type does not describe keeps its
    path as its label. Never raises."""
    words: dict[str, list[str]] = {"nl": [], "en": []}
    for end in range(1, len(path) + 1):
        part = path[:end]
        if isinstance(part[-1], int) or part[-1] is None:
            continue
        for lang in ("nl", "en"):
            words[lang].append(_label_or_name(vct, part, lang))
    return {lang: " – ".join(parts) or "?" for lang, parts in words.items()}


def _label_or_name(vct: str, path: ClaimPath, lang: str) -> str:
    if len(path) == 1 and path[0] in REGISTERED_LABELS:
        return REGISTERED_LABELS[str(path[0])][lang]
    try:
        return credential_type(vct).claim(path).labels[lang]
    except (NotFound, KeyError):
        return str(path[-1])


def credential_id(token: str) -> str:
    """The wallet's id of a credential: the start of the hex SHA-256 of its token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:ID_LENGTH]


def receive_credential(
    vault: Vault,
    log: ConsentLog,
    token: object,
    *,
    issuer_keys: IssuerKeys,
    now: datetime,
    status_checker: StatusChecker | None = None,
) -> StoredCredential:
    """Verify the issued SD-JWT VC ``token`` and keep it in the vault; the stored credential.

    ``issuer_keys`` is the trust list (or a ``PinnedIssuerKey`` for developers); the status
    is checked only when ``status_checker`` is given. The ``credential_received`` entry is
    appended to ``log`` in the transaction that stores the credential.

    Raises ``credential.malformed`` (not text), every ``verify_issued`` error (``sdjwt.*``,
    ``jws.*``, ``trustlist.*``; ``sdjwt.kb_unexpected`` for an SD-JWT+KB, STANDARDS.md §1.3
    rule 1), ``credential.not_bound``, ``credential.not_our_key``, the ``credential_type``
    errors, and ``credential.already_held``.
    """
    if type(token) is not str or not token.strip():
        raise NotText("RFC 9901 §4: an SD-JWT is text")
    token = token.strip()
    if len(token) > MAX_LENGTH:
        raise NotText(f"kluis limit: {MAX_LENGTH} characters")
    verified = verify_issued(
        token, issuer_keys=issuer_keys, now=int(now.timestamp()), status_checker=status_checker
    )
    if verified.holder_jwk is None:
        raise NotBound("RFC 9901 §4.1.2: the credential has no 'cnf.jwk'")
    try:
        key = find_holder_key(vault, holder_key_of(verified.claims))
    except NoHolderKey:
        raise NotOurKey("RFC 9901 §4.1.2: 'cnf.jwk' is none of this wallet's keys") from None
    vct = verified.vct or ""
    validate_claims(vct, verified.claims)
    issued = parse_issued(token)
    stored = StoredCredential(
        id=credential_id(token),
        vct=vct,
        issuer=verified.issuer,
        received=now,
        issued_at=_moment(verified.claims.get("iat")),
        expires=_moment(verified.claims.get("exp")),
        holder_kid=key.kid,
        claims=verified.claims,
        disclosable=frozenset(_concrete(issued.disclosable_paths())),
        token=token,
    )
    with vault.transaction() as tx:
        if tx.query_one("SELECT 1 FROM credential_held WHERE id = ?", (stored.id,)):
            raise AlreadyHeld(id=stored.id)
        _insert(tx, stored)
        issuer = _issuer_party(issuer_keys, stored.issuer)
        log.append([le.credential_received(stored.id, vct, issuer, stored.paths())], now=now,
                   tx=tx)
    return stored


def _issuer_party(issuer_keys: IssuerKeys, iss: str) -> le.Party:
    """The issuer as the log names it: with its names when the trust list knows it."""
    if isinstance(issuer_keys, TrustList):
        for agency in issuer_keys.agencies:
            if agency.id == iss:
                return le.Party.of(agency)
    return le.Party(iss)


def _insert(tx: Transaction, stored: StoredCredential) -> None:
    tx.execute(
        "INSERT INTO credential_held (id, vct, issuer, received, issued_at, expires, holder_kid,"
        " claims, disclosable, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            stored.id,
            stored.vct,
            stored.issuer,
            format_time(stored.received),
            _seconds(stored.issued_at),
            _seconds(stored.expires),
            stored.holder_kid,
            json.dumps(stored.claims, ensure_ascii=False),
            json.dumps([list(p) for p in sorted(stored.disclosable, key=sort_key)]),
            stored.token,
        ),
    )


def _concrete(paths: Iterable[ClaimPath]) -> Iterable[ConcretePath]:
    for path in paths:
        if all(part is not None for part in path):
            yield tuple(part for part in path if part is not None)


def _moment(value: object) -> datetime | None:
    if type(value) is int:
        return datetime.fromtimestamp(value, UTC)
    return None


def _seconds(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


_COLUMNS = "id, vct, issuer, received, issued_at, expires, holder_kid, claims, disclosable, token"


def _row(row: Sequence[Any]) -> StoredCredential:
    ident, vct, issuer, received, issued_at, expires, kid, claims, disclosable, token = row
    return StoredCredential(
        id=str(ident),
        vct=str(vct),
        issuer=str(issuer),
        received=parse_time(str(received)),
        issued_at=_moment(issued_at),
        expires=_moment(expires),
        holder_kid=str(kid),
        claims=json.loads(str(claims)),
        disclosable=frozenset(tuple(p) for p in json.loads(str(disclosable))),
        token=str(token),
    )


def list_credentials(vault: Vault) -> tuple[StoredCredential, ...]:
    """Every credential in the wallet, newest first."""
    rows = vault.reader().query(
        f"SELECT {_COLUMNS} FROM credential_held ORDER BY received DESC, id"  # noqa: S608
    )
    return tuple(_row(row) for row in rows)


def find_credential(vault: Vault, ident: str) -> StoredCredential:
    """The credential whose id is ``ident`` or starts with it (at least 4 characters).

    Raises ``credential.not_found`` or ``credential.ambiguous_id``.
    """
    wanted = ident.strip().lower()
    if len(wanted) < MIN_PREFIX or len(wanted) > ID_LENGTH or not _hex(wanted):
        raise NoSuchCredential(id=ident[:40])
    rows = vault.reader().query(
        f"SELECT {_COLUMNS} FROM credential_held WHERE substr(id, 1, ?) = ? LIMIT 2",  # noqa: S608
        (len(wanted), wanted),
    )
    if not rows:
        raise NoSuchCredential(id=ident)
    if len(rows) > 1:
        raise AmbiguousId(id=ident)
    return _row(rows[0])


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def held_credentials(vault: Vault, *, now: datetime) -> tuple[StoredCredential, ...]:
    """The credentials that can still be shown at ``now`` (not expired), newest first."""
    return tuple(c for c in list_credentials(vault) if not c.expired(now))
