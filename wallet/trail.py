"""The consent log told in plain Dutch or English (B1): one dated sentence per entry.

``tell`` turns entries (from the vault, or from an export) into ``Sentence`` values, e.g.

    3 March 2027 — Gemeente Utrecht received your income bracket for 'Wmo household help'
    (legal basis: Wmo 2015 art. 2.3.2); they keep it until 3 March 2029.

Claims are named by their labels in the credential type's metadata
(``verifiers.credential_type.label``), else by their path. Every kind has a sentence; a kind
this version does not know says so. Pure: no I/O, the caller picks language and time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from vault import KluisError, Lang
from verifiers.claim_path import path_text
from verifiers.credential_type import label
from verifiers.log_entry import Kind
from verifiers.receipt import Retention
from verifiers.replay import ALWAYS_DISCLOSED
from wallet.wording import format_date, type_name

DASH = "\u2014"
_BLOCK_REASONS = {
    "not_registered": ("they are not on the list of trusted organisations",
                       "zij staan niet op de lijst van vertrouwde organisaties"),
    "unknown_purpose": ("they are not registered for this purpose",
                        "zij zijn niet geregistreerd voor dit doel"),
    "over_asking": ("they asked for more than they are allowed to ask",
                    "zij vroegen om meer dan zij mogen vragen"),
    "invalid_request": ("the request was not valid", "het verzoek was niet geldig"),
}
_REFUSALS = {
    "grant.revoked": ("you had stopped their access", "u had de inzage gestopt"),
    "grant.expired": ("their access had ended", "de inzage was afgelopen"),
    "grant.item_not_granted": ("you did not give access to it",
                               "u had daar geen inzage in gegeven"),
    "grant.item_unavailable": ("it was not available", "het was niet beschikbaar"),
    "": ("this was not allowed", "dit was niet toegestaan"),
}
_GRANT_MOMENT: dict[str, str] = {Kind.GRANT_USED: "fetched_at", Kind.GRANT_REVOKED: "revoked_at"}
MAX_CONTEXT = 100_000
"""Requests remembered for the sentences of their later entries (oldest forgotten first)."""


@dataclass(frozen=True)
class Sentence:
    """One entry told: when, what kind, which agency and claims (for filtering), the text."""

    seq: int
    time: datetime
    kind: str
    agency: str | None
    agency_names: tuple[str, ...]
    claims: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class TrailFilter:
    """Which sentences to keep: by agency (id or name, any part, any case), by claim
    (path such as ``income_bracket`` or label), and by local date (inclusive)."""

    agency: str | None = None
    claim: str | None = None
    since: date | None = None
    until: date | None = None

    def keeps(self, sentence: Sentence, zone: tzinfo) -> bool:
        day = sentence.time.astimezone(zone).date()
        if self.since is not None and day < self.since:
            return False
        if self.until is not None and day > self.until:
            return False
        if self.agency is not None:
            wanted = self.agency.casefold()
            names = (sentence.agency or "", *sentence.agency_names)
            if not any(wanted in name.casefold() for name in names):
                return False
        if self.claim is not None:
            wanted = self.claim.casefold()
            if not any(wanted in claim.casefold() for claim in sentence.claims):
                return False
        return True


def tell(
    entries: Iterable[Mapping[str, Any]],
    *,
    lang: Lang = "nl",
    zone: tzinfo = UTC,
    only: TrailFilter | None = None,
) -> Iterator[Sentence]:
    """The sentences of ``entries`` (parsed, in log order) in ``lang``, dated in ``zone``.

    Never raises for an entry's content: what a sentence needs and the entry lacks is left
    out, and an unknown kind gets a sentence saying so.
    """
    teller = _Teller(lang, zone)
    for entry in entries:
        sentence = teller.tell(entry)
        if only is None or only.keeps(sentence, zone):
            yield sentence


class _Teller:
    def __init__(self, lang: Lang, zone: tzinfo) -> None:
        self.lang = lang
        self.zone = zone
        self.requests: dict[str, Mapping[str, Any]] = {}
        self.grants: dict[str, Mapping[str, Any]] = {}

    def say(self, en: str, nl: str) -> str:
        return en if self.lang == "en" else nl

    def tell(self, entry: Mapping[str, Any]) -> Sentence:
        kind = str(entry.get("kind", ""))
        time = _time(entry.get("time"))
        if kind in _GRANT_MOMENT and entry.get(_GRANT_MOMENT[kind]) is not None:
            # A grant's use and end are told at the relay's moment, not when the wallet
            # heard of them.
            time = _time(entry.get(_GRANT_MOMENT[kind]))
        agency, names = self._agency(entry)
        claims = self._claim_refs(entry)
        body = _capital(self._body(kind, entry))
        text = f"{format_date(time.astimezone(self.zone).date(), self.lang)} {DASH} {body}"
        seq = entry.get("seq")
        return Sentence(seq if isinstance(seq, int) else -1, time, kind, agency, names,
                        tuple(_claim_key(vct, path, self.lang) for vct, path in claims), text)

    # -- the sentences ------------------------------------------------------------------------

    def _body(self, kind: str, entry: Mapping[str, Any]) -> str:
        who = self._who(entry)
        if kind == Kind.CREDENTIAL_RECEIVED:
            credential = _dict(entry.get("credential"))
            issuer = _dict(credential.get("issuer"))
            name = self._type_name(str(credential.get("vct", "")))
            return self.say(f"You stored the credential '{name}' from {self._name(issuer)}.",
                            f"U hebt het bewijs '{name}' van {self._name(issuer)} opgeslagen.")
        if kind == Kind.REQUEST_RECEIVED:
            rid = entry.get("request")
            if isinstance(rid, str):
                self._remember(rid, entry)
            what = self._claims_text(self._claim_refs(entry))
            text = self.say(f"{who} asked for your {what}{self._why(entry)}.",
                            f"{who} vroeg om uw {what}{self._why(entry)}.")
            if entry.get("registered") is not True:
                text += " " + self.say(
                    f"Warning: {who} is not registered for this purpose.",
                    f"Let op: {who} is niet geregistreerd voor dit doel.")
            return text
        if kind == Kind.REQUEST_BLOCKED:
            en, nl = _BLOCK_REASONS.get(str(entry.get("reason")), _BLOCK_REASONS["invalid_request"])
            text = self.say(f"kluis stopped a request from {who}: {en}.",
                            f"kluis hield een verzoek van {who} tegen: {nl}.")
            over = self._claim_refs(entry)
            if over:
                what = self._claims_text(over)
                text += " " + self.say(f"Asked for too much: {what}.",
                                       f"Te veel gevraagd: {what}.")
            return text + " " + self.say("Nothing was sent.", "Er is niets verstuurd.")
        if kind == Kind.REQUEST_APPROVED:
            what = self._claims_text(self._claim_refs(entry))
            return self.say(f"You agreed that {who} may receive your {what}.",
                            f"U gaf {who} toestemming om uw {what} te ontvangen.")
        if kind == Kind.REQUEST_REFUSED:
            return self.say(f"You refused the request from {who}. Nothing was sent.",
                            f"U weigerde het verzoek van {who}. Er is niets verstuurd.")
        if kind == Kind.PRESENTATION_SENT:
            return self._sent(entry, who)
        if kind == Kind.RECEIPT_RECEIVED:
            what = self._claims_text(self._claim_refs(entry))
            return self.say(
                f"{who} confirmed with a signed receipt that they received your {what}.",
                f"{who} bevestigde met een ondertekend ontvangstbewijs dat zij uw {what} "
                "hebben ontvangen.")
        if kind == Kind.RECEIPT:
            what = self._claims_text(self._claim_refs(entry))
            return self.say(f"{who} signed a receipt for receiving {what}.",
                            f"{who} ondertekende een ontvangstbewijs voor {what}.")
        if kind in (Kind.ITEM_ADDED, Kind.ITEM_CHANGED, Kind.ITEM_REMOVED):
            name = str(_dict(entry.get("item")).get("name", "?"))
            return {
                Kind.ITEM_ADDED: self.say(f"You added '{name}' to your vault.",
                                          f"U hebt '{name}' aan uw kluis toegevoegd."),
                Kind.ITEM_CHANGED: self.say(f"You changed '{name}' in your vault.",
                                            f"U hebt '{name}' in uw kluis gewijzigd."),
                Kind.ITEM_REMOVED: self.say(f"You removed '{name}' from your vault.",
                                            f"U hebt '{name}' uit uw kluis verwijderd."),
            }[Kind(kind)]
        if kind in (Kind.GRANT_CREATED, Kind.GRANT_USED, Kind.GRANT_REVOKED):
            return self._grant(kind, entry, who)
        if kind == Kind.KEY_ROTATED:
            if entry.get("key") == "log":
                return self.say("kluis replaced the key that signs your log.",
                                "kluis heeft de sleutel vervangen waarmee uw logboek wordt "
                                "ondertekend.")
            return self.say("kluis replaced the key of your wallet.",
                            "kluis heeft de sleutel van uw wallet vervangen.")
        if kind == Kind.EXPORT_MADE:
            if entry.get("export") == "archive":
                return self.say("You exported your whole vault.",
                                "U hebt uw hele kluis geëxporteerd.")
            return self.say("You exported your log for an auditor.",
                            "U hebt uw logboek geëxporteerd voor een controleur.")
        return self.say(f"An event this version of kluis does not know ('{kind}').",
                        f"Een gebeurtenis die deze versie van kluis niet kent ('{kind}').")

    def _grant(self, kind: str, entry: Mapping[str, Any], who: str) -> str:
        grant = entry.get("grant")
        if kind == Kind.GRANT_CREATED:
            if isinstance(grant, str):
                self._remember_grant(grant, entry)
            what = self._grant_items_text(entry, None)
            until = _day(entry.get("valid_until"))
            text = self.say(f"You gave {who} access to your {what}{self._why(entry)}",
                            f"U gaf {who} inzage in uw {what}{self._why(entry)}")
            if until is not None:
                day = format_date(until, self.lang)
                text += self.say(f", until {day}. Until then they can read it whenever they "
                                 "need it, and you can stop this at any moment",
                                 f", tot {day}. Tot dan kunnen zij het inzien wanneer zij het "
                                 "nodig hebben. U kunt dit op elk moment stoppen")
            return text + "."
        created = self.grants.get(str(grant), {})
        what = self._grant_items_text(created, entry.get("item"))
        if kind == Kind.GRANT_USED:
            if entry.get("outcome") == "served":
                return self.say(f"{who} read your {what}.", f"{who} heeft uw {what} ingezien.")
            en, nl = _REFUSALS.get(str(entry.get("error")), _REFUSALS[""])
            return self.say(f"{who} tried to read your {what}, but this was refused: {en}.",
                            f"{who} probeerde uw {what} in te zien, maar dat werd geweigerd: "
                            f"{nl}.")
        served = entry.get("served")
        times = served if isinstance(served, int) else 0
        return self.say(
            f"You stopped the access of {who} to your {what}. Nothing more can be read; "
            f"they read it {times} {'time' if times == 1 else 'times'}.",
            f"U hebt de inzage van {who} in uw {what} gestopt. Er kan niets meer worden "
            f"ingezien; zij hebben het {times} keer ingezien.")

    def _grant_items_text(self, created: Mapping[str, Any], only: object) -> str:
        """The items of a grant in words: claim labels, and vault items by their name."""
        refs: list[tuple[str, tuple[Any, ...]]] = []
        names: list[str] = []
        for item in _list(created.get("items")):
            item = _dict(item)
            if only is not None and item.get("id") != only:
                continue
            if isinstance(item.get("vault_item"), str):
                names.append(f"'{item['vault_item']}'")
            refs += [(str(_dict(c).get("vct", "")), _path(_dict(c).get("path")))
                     for c in _list(item.get("claims"))]
        labels: list[str] = []
        for vct, path in refs:
            text = _lower_first(_label(vct, path, self.lang)) if path else ""
            if text and text not in labels:
                labels.append(text)
        labels += names
        if not labels:
            if isinstance(only, str):
                return self.say(f"data ('{only}')", f"gegevens ('{only}')")
            return self.say("data", "gegevens")
        if len(labels) == 1:
            return labels[0]
        return ", ".join(labels[:-1]) + self.say(" and ", " en ") + labels[-1]

    def _remember_grant(self, grant: str, entry: Mapping[str, Any]) -> None:
        if len(self.grants) >= MAX_CONTEXT:
            self.grants.pop(next(iter(self.grants)))
        self.grants[grant] = entry

    def _sent(self, entry: Mapping[str, Any], who: str) -> str:
        what = self._claims_text(self._claim_refs(entry))
        if entry.get("outcome") != "sent":
            return self.say(f"Sending your {what} to {who} failed.",
                            f"Het versturen van uw {what} aan {who} is mislukt.")
        request = self.requests.get(str(entry.get("request")), {})
        text = self.say(f"{who} received your {what}{self._why(request)}",
                        f"{who} heeft uw {what} ontvangen{self._why(request)}")
        until = _keep_until(request.get("retention"), _time(entry.get("time")))
        if until is not None:
            day = format_date(until, self.lang)
            text += self.say(f"; they keep it until {day}", f"; zij bewaren dit tot {day}")
        return text + "."

    # -- parts --------------------------------------------------------------------------------

    def _why(self, request: Mapping[str, Any]) -> str:
        purpose = _dict(_dict(request.get("purpose")).get("description")).get(self.lang)
        basis = _dict(request.get("legal_basis")).get(self.lang)
        text = ""
        if isinstance(purpose, str):
            text += self.say(f" for '{purpose}'", f" voor '{purpose}'")
        if isinstance(basis, str):
            text += self.say(f" (legal basis: {basis})", f" (grondslag: {basis})")
        return text

    def _remember(self, rid: str, entry: Mapping[str, Any]) -> None:
        if len(self.requests) >= MAX_CONTEXT:
            self.requests.pop(next(iter(self.requests)))
        self.requests[rid] = entry

    def _who(self, entry: Mapping[str, Any]) -> str:
        party = entry.get("verifier") or entry.get("agency")
        if party is None and entry.get("kind") == Kind.RECEIPT_RECEIVED:
            # the receipt names the agency by id; its names come with the request
            request = self.requests.get(str(entry.get("request")), {})
            party = request.get("verifier") or _dict(entry.get("receipt")).get("verifier")
        if isinstance(party, str):  # an agency's receipt names its id only
            party = {"id": party}
        return self._name(_dict(party))

    def _name(self, party: Mapping[str, Any]) -> str:
        name = _dict(party.get("name")).get(self.lang)
        if isinstance(name, str):
            return name
        ident = party.get("id")
        if isinstance(ident, str):
            return self.say(f"the organisation {ident}", f"de organisatie {ident}")
        return self.say("an unknown organisation", "een onbekende organisatie")

    def _agency(self, entry: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        party = entry.get("verifier") or entry.get("agency")
        if party is None and entry.get("kind") == Kind.RECEIPT_RECEIVED:
            request = self.requests.get(str(entry.get("request")), {})
            party = request.get("verifier") or _dict(entry.get("receipt")).get("verifier")
        if isinstance(party, str):
            return party, ()
        party = _dict(party) or _dict(_dict(entry.get("credential")).get("issuer"))
        names = tuple(n for n in _dict(party.get("name")).values() if isinstance(n, str))
        ident = party.get("id")
        return (ident if isinstance(ident, str) else None), names

    def _claim_refs(self, entry: Mapping[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        """(vct, path) of the claims an entry names, whatever its kind."""
        kind = entry.get("kind")
        refs: list[tuple[str, tuple[Any, ...]]] = []
        if kind == Kind.REQUEST_APPROVED:
            for credential in _list(entry.get("credentials")):
                vct = str(_dict(credential).get("vct", ""))
                refs += [(vct, _path(_dict(c).get("path")))
                         for c in _list(_dict(credential).get("claims"))]
        elif kind == Kind.PRESENTATION_SENT:
            for presentation in _list(entry.get("presentations")):
                vct = str(_dict(presentation).get("vct", ""))
                refs += [(vct, _path(p)) for p in _list(_dict(presentation).get("claims"))]
        elif kind in (Kind.RECEIPT_RECEIVED, Kind.RECEIPT):
            receipt = _dict(entry.get("receipt")) if kind == Kind.RECEIPT_RECEIVED else entry
            vct = str(receipt.get("vct", ""))
            refs += [(vct, _path(p)) for p in _list(receipt.get("claims"))]
        elif kind in (Kind.GRANT_CREATED, Kind.GRANT_USED, Kind.GRANT_REVOKED):
            created = entry if kind == Kind.GRANT_CREATED else self.grants.get(
                str(entry.get("grant")), {})
            only = entry.get("item") if kind == Kind.GRANT_USED else None
            for item in _list(created.get("items")):
                if only is None or _dict(item).get("id") == only:
                    refs += [(str(_dict(c).get("vct", "")), _path(_dict(c).get("path")))
                             for c in _list(_dict(item).get("claims"))]
        elif kind == Kind.CREDENTIAL_RECEIVED:
            vct = str(_dict(entry.get("credential")).get("vct", ""))
            refs += [(vct, _path(p)) for p in _list(entry.get("claims"))]
        else:
            refs += [(str(_dict(c).get("vct", "")), _path(_dict(c).get("path")))
                     for c in _list(entry.get("claims"))]
        return [(vct, path) for vct, path in refs if path]

    def _claims_text(self, refs: Sequence[tuple[str, tuple[Any, ...]]]) -> str:
        # The claims every document always shows (issuer, dates, key, status) are named once
        # as a group: listing them one by one would bury what the citizen actually shared.
        labels: list[str] = []
        technical = False
        for vct, path in refs:
            if path[:1] and path[0] in ALWAYS_DISCLOSED:
                technical = True
                continue
            text = _lower_first(_label(vct, path, self.lang))
            if text not in labels:
                labels.append(text)
        if not labels:
            return self.say("data", "gegevens")
        text = labels[0] if len(labels) == 1 else (
            ", ".join(labels[:-1]) + self.say(" and ", " en ") + labels[-1])
        if technical:
            text += self.say(" (with the document details that always go along)",
                             " (met de gegevens die altijd meegaan met een bewijs)")
        return text

    def _type_name(self, vct: str) -> str:
        return type_name(vct).text(self.lang)


def _label(vct: str, path: tuple[Any, ...], lang: Lang) -> str:
    try:
        return label(vct, path, lang)
    except (KluisError, TypeError):
        return path_text(path)


def _claim_key(vct: str, path: tuple[Any, ...], lang: Lang) -> str:
    """What a claim filter matches: the path and the label."""
    return f"{path_text(path)} {_label(vct, path, lang)}"


def _capital(text: str) -> str:
    # A sentence starts with a capital; the name "kluis" is always written small.
    return text if text.startswith("kluis ") else text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    # "Inkomensklasse" reads "inkomensklasse" mid-sentence; "BSN" stays "BSN".
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _keep_until(retention: object, received: datetime) -> date | None:
    if not isinstance(retention, dict):
        return None
    try:
        return Retention.model_validate(retention).keep_until(received)
    except (ValidationError, KluisError):
        return None


def _day(value: object) -> date | None:
    moment = _time(value)
    return None if moment.year == 1970 else moment.date()


def _time(value: object) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)


def _path(value: object) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list) else ()


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
