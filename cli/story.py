"""The scenes of ``kluis demo``: Anna, her wallet, a relay and three agencies, over real HTTP
on this computer (DESIGN.md, "kluis demo").

The agencies run in the services' process (``cli.service``); this module plays both sides of
the counter over HTTP: the agencies' back offices (make an offer from the register, make a
request and post it to Anna's relay address, see what arrived, export the receipt log) and
Anna's wallet, which is the real wallet (``wallet``) on a throw-away vault. Every scene checks
what it claims, on both sides, with ``Narrator.check``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cli import context
from cli.commands.request import screen_lines
from cli.lang import lang, say
from cli.narrator import Narrator
from cli.service import RunningServices
from verifiers.audit_export import verify_export
from verifiers.claim_path import path_text
from verifiers.credential_type import DIPLOMA, INCOME_STATEMENT, PERSONAL_DATA
from verifiers.reconcile import reconcile_exports
from verifiers.replay import replay_export
from verifiers.trustlist import TrustAnchor
from wallet import (
    HttpxTransport,
    OfferReference,
    Wallet,
    create_wallet,
    fetch_credential_offer,
    holder_key,
    open_wallet,
    parse_credential_offer,
    redeem_offer,
    signing_key,
)
from wallet.grant_item import ItemSpec, Source
from wallet.grant_sync import sync_grants
from wallet.inbox import URI_LIST, collect
from wallet.openid4vp import approve_and_send, refuse_and_send
from wallet.relay_account import agency_address, mailbox_client, register_relay
from wallet.trail import tell
from wallet.trust import set_trust_list
from wallet.wording import format_date, type_name

MUNICIPALITY = "https://gemeente-utrecht.kluis.example"
TAX_OFFICE = "https://belastingdienst.kluis.example"
DUO = "https://duo.kluis.example"
CITIZEN = "anna"
WMO = "wmo-household-help"
JOB_APPLICATION = "job-application"


def _query(*credentials: tuple[str, str, tuple[str, ...]]) -> dict[str, Any]:
    return {"credentials": [
        {"id": ident, "format": "dc+sd-jwt", "meta": {"vct_values": [vct]},
         "claims": [{"path": [claim]} for claim in claims]}
        for ident, vct, claims in credentials]}


# Exactly what a Wmo household-help decision needs: name, address and income bracket.
WMO_QUERY = _query(("pid", PERSONAL_DATA, ("given_name", "family_name", "address")),
                   ("income", INCOME_STATEMENT, ("income_bracket",)))
# The same purpose, asking beyond the municipality's registration (BSN and gross income).
GREEDY_QUERY = _query(("pid", PERSONAL_DATA, ("given_name", "family_name", "bsn", "address")),
                      ("income", INCOME_STATEMENT, ("gross_income", "income_bracket")))
JOB_QUERY = _query(("diploma", DIPLOMA, ("institution", "degree", "date_awarded")),
                   ("pid", PERSONAL_DATA, ("given_name", "family_name")))


class Desk:
    """The agencies' back offices, reached over HTTP at the services' admin apps."""

    def __init__(self, services: RunningServices, client: httpx.Client) -> None:
        self.services = services
        self.client = client

    def _json(self, answer: httpx.Response, *expected: int) -> Any:
        if answer.status_code not in expected:
            code = _problem_code(answer)
            raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: "
                               f"HTTP {answer.status_code} {code}".strip())
        return answer.json()

    def offer(self, app: str, configuration: str) -> dict[str, Any]:
        """An offer of the citizen's record from ``app``'s register (a back office)."""
        url = f"{self.services.url(app)}/register/{CITIZEN}/offers"
        return dict(self._json(self.client.post(url, json={"configurations": [configuration]}),
                               201))

    def request(self, purpose: str, query: dict[str, Any]) -> dict[str, Any]:
        """A new request of the municipality (its verifier back office)."""
        url = f"{self.services.url('gemeente-verifier-admin')}/requests"
        return dict(self._json(self.client.post(url, json={"purpose": purpose,
                                                           "dcql_query": query}), 201))

    def deliver(self, address_url: str, uri: str) -> None:
        """Post the request's link to the citizen's address at the relay."""
        self._json(self.client.post(address_url, json={"content_type": URI_LIST, "body": uri}),
                   202)

    def status(self, request_id: str) -> dict[str, Any]:
        url = f"{self.services.url('gemeente-verifier-admin')}/requests/{request_id}"
        return dict(self._json(self.client.get(url), 200))

    def received(self, request_id: str) -> list[dict[str, Any]]:
        url = f"{self.services.url('gemeente-verifier-admin')}/received"
        data = self._json(self.client.get(url, params={"request_id": request_id}), 200)
        return list(data["received"])

    def take_notice(self, notice: dict[str, Any]) -> dict[str, Any]:
        """Give the municipality's back office the citizen's grant notice."""
        url = f"{self.services.url('gemeente-verifier-admin')}/grants"
        return dict(self._json(self.client.post(url, json=notice), 201))

    def read(self, grant: str, item: str) -> httpx.Response:
        """The municipality's caseworker reads a granted item (the answer as it came)."""
        url = (f"{self.services.url('gemeente-verifier-admin')}/grants/{grant}/items/{item}"
               "/reads")
        return self.client.post(url)

    def receipt_log_size(self) -> int:
        """How many receipts the municipality's receipt log holds."""
        url = f"{self.services.url('gemeente-verifier-admin')}/receipt-log"
        return int(self._json(self.client.get(url), 200)["size"])

    def receipt_log(self, target: Path) -> Path:
        """The municipality's receipt log as an audit export (a tar) at ``target``."""
        url = f"{self.services.url('gemeente-verifier-admin')}/receipt-log/export"
        answer = self.client.get(url)
        if answer.status_code != 200:
            self._json(answer, 200)
        target.write_bytes(answer.content)
        return target


def _problem_code(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return ""
    return str(data.get("code", "")) if isinstance(data, dict) else ""


def _claims(received: list[dict[str, Any]]) -> set[str]:
    """The claim names an agency says it kept, e.g. ``{"given_name", "income_bracket"}``."""
    names: set[str] = set()
    for item in received:
        names |= {path_text(tuple(json.loads(path))) for path in item["claims"]}
    return names


@dataclass
class Story:
    """One run of the demo. ``ask`` puts a yes/no question to the citizen (``--yes``
    answers yes without asking); ``folder`` is the throw-away folder for the vault and the
    exports."""

    narrator: Narrator
    start: Callable[[], RunningServices]
    folder: Path
    ask: Callable[[str], bool]

    def __post_init__(self) -> None:
        # The back offices answer problems in the language the demo speaks.
        self.http = httpx.Client(timeout=30, follow_redirects=False,
                                 headers={"Accept-Language": lang()})
        self.transport = HttpxTransport(timeout=30)
        self.services: RunningServices | None = None
        self.passphrase = secrets.token_urlsafe(18)  # throw-away: nobody needs to know it
        self.wallet: Wallet | None = None
        self.shared = False

    def close(self) -> None:
        """Close the wallet and stop the services (whatever got started)."""
        if self.wallet is not None:
            self.wallet.close()
        self.transport.close()
        self.http.close()
        if self.services is not None:
            self.services.stop()

    @property
    def running(self) -> RunningServices:
        if self.services is None:
            raise RuntimeError("the services have not started")
        return self.services

    @property
    def w(self) -> Wallet:
        if self.wallet is None:
            raise RuntimeError("the wallet is not open yet")
        return self.wallet

    def run(self) -> None:
        """Every scene in order; raises ``StepFailed`` or a ``KluisError`` at the first that
        fails."""
        self.start_services()
        self.make_vault()
        self.trust_agencies()
        self.open_mailbox()
        self.receive(MUNICIPALITY, "gemeente-issuer-admin", "personal-data",
                     en_channel="by letter", nl_channel="per brief")
        self.receive(TAX_OFFICE, "belastingdienst-issuer-admin", "income-statement",
                     en_channel="by text message (SMS)", nl_channel="per sms")
        self.receive(DUO, "duo-issuer-admin", "diploma",
                     en_channel="by e-mail", nl_channel="per e-mail")
        self.wmo_request()
        self.over_asking_request()
        self.refused_request()
        self.grant()
        self.audit()

    # --- the scenes -------------------------------------------------------------------------

    def start_services(self) -> None:
        n = self.narrator
        n.step(en="The relay and three agencies start on this computer",
               nl="De relay en drie organisaties starten op deze computer")
        self.services = self.start()
        self.desk = Desk(self.services, self.http)
        for app in self.running.apps.values():
            if app.admin:
                continue
            who = app.agency_names.get(lang(), app.name) if app.agency else ""
            what = app.role.get(lang(), app.name)
            n.say(en="{who}{what}: {url}", nl="{who}{what}: {url}",
                  who=f"{who}, " if who else "", what=what, url=app.url)
        n.check(all(name in self.running.apps for name in
                    ("relay", "gemeente-issuer", "gemeente-verifier", "belastingdienst-issuer",
                     "duo-issuer")),
                en="{n} services answer on loopback, each on its own port.",
                nl="{n} diensten antwoorden op loopback, elk op een eigen poort.",
                n=len(self.running.apps))

    def make_vault(self) -> None:
        n = self.narrator
        n.step(en="Anna makes a throw-away vault", nl="Anna maakt een wegwerpkluis")
        root = self.folder / "vault"
        create_wallet(root, self.passphrase)
        started = time.perf_counter()
        self.wallet = open_wallet(root, self.passphrase)
        seconds = time.perf_counter() - started
        n.say(en="It is in {path}, locked with a random passphrase.",
              nl="Hij staat in {path}, op slot met een willekeurig wachtwoord.", path=root)
        n.check(self.w.log.size >= 0,
                en="Unlocked: Argon2id at its normal cost took {s:.2f} s.",
                nl="Geopend: Argon2id op de gewone sterkte duurde {s:.2f} s.", s=seconds)

    def trust_agencies(self) -> None:
        n = self.narrator
        n.step(en="Anna's wallet learns whom to trust", nl="Anna's wallet leert wie te vertrouwen")
        anchor = TrustAnchor.from_jwk(self.running.anchor_name,
                                      json.loads(self.running.anchor.read_text()))
        stored = set_trust_list(self.w.vault, self.running.trust_list.read_text(), anchor,
                                now=context.now())
        names = [a.names.text(lang()) for a in stored.trust_list.agencies]
        n.say(en="The trust list is signed by '{anchor}' and names: {names}.",
              nl="De vertrouwenslijst is ondertekend door '{anchor}' en noemt: {names}.",
              anchor=self.running.anchor_name, names=", ".join(names))
        n.check(len(names) == 3,
                en="The list's signature verifies with the anchor's key.",
                nl="De handtekening van de lijst klopt met de sleutel van het anker.")

    def open_mailbox(self) -> None:
        n = self.narrator
        n.step(en="Anna opens a mailbox at the relay", nl="Anna opent een postbus bij de relay")
        now = context.now()
        account = register_relay(self.w.vault, self.running.url("relay"),
                                 transport=self.transport, now=now)
        municipality = agency_address(self.w.vault, MUNICIPALITY, transport=self.transport,
                                      now=now)
        tax = agency_address(self.w.vault, TAX_OFFICE, transport=self.transport, now=now)
        n.say(en="The relay knows her only by a key: mailbox {id}.",
              nl="De relay kent haar alleen aan de hand van een sleutel: postbus {id}.",
              id=account.mailbox[:12] + "…")
        n.say(en="The municipality gets address {a}; the tax office gets {b}.",
              nl="De gemeente krijgt adres {a}; de Belastingdienst krijgt {b}.",
              a=municipality.address, b=tax.address)
        n.check(municipality.address != tax.address,
                en="Each agency has its own address, so they cannot link her by it.",
                nl="Elke organisatie heeft een eigen adres, dus ze kunnen haar er niet aan "
                   "koppelen.")
        self.municipality_address = municipality

    def receive(self, agency: str, admin: str, configuration: str, *, en_channel: str,
                nl_channel: str) -> None:
        n = self.narrator
        name = self.running.apps[admin].agency_names.get(lang(), agency)
        kind = _lower_first(type_name(_VCTS[configuration]).text(lang()))
        n.step(en="{agency} offers Anna her {kind}", nl="{agency} biedt Anna haar {kind} aan",
               agency=name, kind=kind)
        offer = self.desk.offer(admin, configuration)
        n.say(en="The offer comes as a link (or a QR code); the code {code} came apart, {ch}.",
              nl="Het aanbod komt als link (of QR-code); de code {code} kwam apart, {ch}.",
              code=offer["tx_code"], ch=en_channel if lang() == "en" else nl_channel)
        parsed = parse_credential_offer(offer["credential_offer_by_reference"])
        if isinstance(parsed, OfferReference):
            parsed = fetch_credential_offer(parsed, transport=self.transport)
        wallet = self.w
        public = holder_key(wallet.vault, now=context.now()).public
        stored = redeem_offer(
            parsed, transport=self.transport, tx_code=offer["tx_code"],
            holder_key=signing_key(wallet.vault, public),
            receive=lambda token: wallet.receive_credential(token, now=context.now()),
            clock=context.now)
        n.check(len(stored) == 1 and stored[0].vct == _VCTS[configuration],
                en="Stored: {kind} ({id}). Signed by a listed issuer, bound to a key in her "
                   "vault.",
                nl="Bewaard: {kind} ({id}). Ondertekend door een uitgever op de lijst, "
                   "gebonden aan een sleutel in haar kluis.",
                kind=kind, id=stored[0].id if stored else "-")

    def _send_request(self, purpose: str, query: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The municipality makes a request and posts it to Anna's address; her wallet takes
        it from the relay. Returns the agency's request and the wallet's evaluation."""
        created = self.desk.request(purpose, query)
        self.desk.deliver(self.municipality_address.url, created["uri"])
        client = mailbox_client(self.w.vault, transport=self.transport)
        collected = collect(self.w.vault, self.w.consent, client, transport=self.transport,
                            wait=5.0, clock=context.now)
        items = [item for item in collected.items if item.evaluation is not None]
        if len(items) != 1:
            errors = ", ".join(str(item.error) for item in collected.items if item.error)
            raise RuntimeError(f"inbox: {len(items)} requests arrived {errors}".strip())
        return created, items[0].evaluation

    def wmo_request(self) -> None:
        n = self.narrator
        n.step(en="The municipality asks for data for Wmo household help",
               nl="De gemeente vraagt gegevens voor hulp bij het huishouden (Wmo)")
        created, evaluation = self._send_request(WMO, WMO_QUERY)
        n.say(en="Its request went to Anna's relay address; her wallet fetched and checked it. "
                 "This is what she sees:",
              nl="Het verzoek ging naar Anna's adres bij de relay; haar wallet haalde het op "
                 "en controleerde het. Dit ziet zij:")
        stored = self.w.consent.find(evaluation.request.id)
        n.lines(_screen(evaluation, stored))
        question = say(en="Share this with {who}?", nl="Dit delen met {who}?",
                       who=evaluation.verifier_name().text(lang()))
        if not self.ask(question):
            refuse_and_send(self.w.consent, stored.id, transport=self.transport,
                            now=context.now())
            n.say(en="Anna said no: nothing was shared. The demo goes on without this answer.",
                  nl="Anna zei nee: er is niets gedeeld. De demo gaat verder zonder dit antwoord.")
            return
        delivery = approve_and_send(self.w.consent, stored.id, transport=self.transport,
                                    now=context.now(), clock=context.now)
        self.shared = True
        status = self.desk.status(created["id"])
        kept = _claims(self.desk.received(created["id"]))
        for receipt in delivery.receipts:
            n.say(en="Receipt {id}: {claims}.", nl="Ontvangstbewijs {id}: {claims}.",
                  id=receipt.receipt_id,
                  claims=", ".join(path_text(tuple(c)) for c in receipt.claims))
        n.check(status["status"] == "received" and len(delivery.receipts) == 2,
                en="The municipality verified the answer and signed {n} receipts; her wallet "
                   "checked and kept them.",
                nl="De gemeente controleerde het antwoord en ondertekende {n} "
                   "ontvangstbewijzen; haar wallet controleerde en bewaarde ze.",
                n=len(delivery.receipts))
        wanted = {"given_name", "family_name", "address", "income_bracket"}
        n.check(kept == wanted,
                en="It received exactly name, address and income bracket: {got}.",
                nl="Zij ontving precies naam, adres en inkomensgroep: {got}.",
                got=", ".join(sorted(kept)))

    def over_asking_request(self) -> None:
        n = self.narrator
        n.step(en="A request that asks too much is blocked",
               nl="Een verzoek dat te veel vraagt, wordt tegengehouden")
        created, evaluation = self._send_request(WMO, GREEDY_QUERY)
        n.say(en="This time the municipality also asks for her BSN and gross income.",
              nl="Nu vraagt de gemeente ook om haar BSN en bruto-inkomen.")
        if evaluation.block is not None:
            n.lines([say(en="BLOCKED", nl="TEGENGEHOUDEN"),
                     "  " + evaluation.block.explanation.text(lang())])
        stored = self.w.consent.find(evaluation.request.id)
        n.check(evaluation.block is not None and stored.state.value == "blocked",
                en="kluis blocked it: it asks beyond the municipality's registration "
                   "({claims}).",
                nl="kluis hield het tegen: het vraagt meer dan waarvoor de gemeente "
                   "geregistreerd is ({claims}).",
                claims=", ".join(item.rsplit(" ", 1)[-1] for item in created["over_asked"]))
        n.check(self.desk.received(created["id"]) == [],
                en="Nothing reached the municipality.", nl="Er kwam niets bij de gemeente aan.")

    def refused_request(self) -> None:
        n = self.narrator
        n.step(en="Anna refuses a request", nl="Anna weigert een verzoek")
        created, evaluation = self._send_request(JOB_APPLICATION, JOB_QUERY)
        n.say(en="{who} asks for her diploma, for: {why}. Anna does not want that now.",
              nl="{who} vraagt om haar diploma, voor: {why}. Dat wil Anna nu niet.",
              who=evaluation.verifier_name().text(lang()),
              why=evaluation.request.purpose.description.text(lang()))
        refuse_and_send(self.w.consent, evaluation.request.id, transport=self.transport,
                        now=context.now())
        status = self.desk.status(created["id"])
        n.check(status["status"] == "refused" and status["outcome"] == "access_denied",
                en="The municipality recorded her answer: access_denied.",
                nl="De gemeente legde haar antwoord vast: access_denied.")
        kinds = [entry["kind"] for entry in self.w.log.entries()]
        n.check(bool(kinds) and kinds[-1] == "request_refused",
                en="Her own log records the refusal too.",
                nl="Haar eigen logboek legt de weigering ook vast.")

    def grant(self) -> None:
        n = self.narrator
        n.step(en="Anna lets the municipality read her income statement, then stops it",
               nl="Anna laat de gemeente haar inkomensverklaring inzien, en stopt dat dan")
        now = context.now()
        grants = self.w.grants
        item = ItemSpec("income", Source.CREDENTIAL, INCOME_STATEMENT,
                        (("income_bracket",), ("tax_year",)))
        grant = grants.create(agency_id=MUNICIPALITY, purpose_id=WMO, items=[item],
                              valid_until=now + timedelta(days=183),
                              relay=self.running.url("relay"), now=now)
        first = sync_grants(grants, self.transport, now=context.now(), clock=context.now)
        until = format_date(grant.valid_until.date(), lang())
        n.check(first.registered == 1 and first.uploaded == 1 and first.stopped is None,
                en="For the Wmo case, until {until}: her wallet sealed the income bracket and "
                   "tax year to the municipality's key and put them at the relay, which cannot "
                   "open them.",
                nl="Voor de Wmo-zaak, tot {until}: haar wallet verzegelde inkomensklasse en "
                   "belastingjaar met de sleutel van de gemeente en zette ze bij de relay, die "
                   "ze niet kan openen.", until=until)
        self.desk.take_notice(grants.notice(grant))
        for number in (1, 2):
            answer = self.desk.read(grant.id, "income")
            read = self.desk._json(answer, 200)
            claims = {tuple(c["path"]): c["value"] for c in json.loads(read["content"])["claims"]}
            bracket = claims.get(("income_bracket",), {})
            n.check(bool(bracket) and claims.get(("tax_year",)) is not None,
                    en="Read {n}: the municipality sees income bracket {b} ({label}), tax year "
                       "{year}, and keeps a signed receipt.",
                    nl="Inzage {n}: de gemeente ziet inkomensklasse {b} ({label}), belastingjaar "
                       "{year}, en bewaart een ondertekend ontvangstbewijs.",
                    n=number, b=bracket.get("code", "?"), label=bracket.get("label", "?"),
                    year=claims.get(("tax_year",)))
        seen = sync_grants(grants, self.transport, now=context.now(), clock=context.now)
        n.check(seen.logged == 2, en="Both reads are in her log.",
                nl="Beide inzagen staan in haar logboek.")
        grants.revoke(grant.id, now=context.now())
        stopped = sync_grants(grants, self.transport, now=context.now(), clock=context.now)
        n.check(stopped.revoked == [grant.id],
                en="Anna stops the access with one action; the relay drops the sealed data.",
                nl="Anna stopt de inzage met één handeling; de relay gooit de verzegelde "
                   "gegevens weg.")
        third = self.desk.read(grant.id, "income")
        problem = third.json() if third.headers.get("content-type", "").endswith("json") else {}
        n.check(third.status_code != 200 and "grant.revoked" in str(problem.get("title", "")),
                en="Read 3 is refused: {why}",
                nl="Inzage 3 wordt geweigerd: {why}", why=problem.get("title", third.status_code))
        after = sync_grants(grants, self.transport, now=context.now(), clock=context.now)
        kinds = [entry["kind"] for entry in self.w.log.entries()][-5:]
        n.check(after.logged == 1 and kinds == ["grant_created", "grant_used", "grant_used",
                                                "grant_revoked", "grant_used"],
                en="Her log holds the grant, both reads, the revocation and the refused try.",
                nl="Haar logboek bevat de machtiging, beide inzagen, de intrekking en de "
                   "geweigerde poging.")

    def audit(self) -> None:
        n = self.narrator
        n.step(en="Anna reads her log; an auditor checks it",
               nl="Anna leest haar logboek; een controleur controleert het")
        zone = datetime.now().astimezone().tzinfo
        sentences = [s.text for s in tell(self.w.log.entries(), lang=lang(), zone=zone)]
        n.say(en="kluis audit show:", nl="kluis audit show:")
        n.lines(sentences)
        export = self.folder / "audit-export"
        summary = self.w.log.export(export, now=context.now())
        verified = verify_export(export)
        n.check(verified.checkpoint.size == summary.size,
                en="kluis audit verify: the log is intact, {n} entries signed by {origin}.",
                nl="kluis audit verify: het logboek is ongeschonden, {n} regels ondertekend "
                   "door {origin}.", n=verified.checkpoint.size, origin=verified.origin)
        report = replay_export(export)
        n.check(report.clean,
                en="kluis audit replay: every release was approved and none went beyond its "
                   "approval (releases: {r}; violations: {v}).",
                nl="kluis audit replay: elke verstrekking was goedgekeurd en geen enkele ging "
                   "verder dan dat (verstrekkingen: {r}; overtredingen: {v}).",
                r=report.releases, v=report.violations)
        if not self.shared:
            n.check(self.desk.receipt_log_size() == 0,
                    en="Anna shared nothing, so the municipality holds no receipt: there is "
                       "nothing to reconcile.",
                    nl="Anna heeft niets gedeeld, dus de gemeente heeft geen ontvangstbewijs: er "
                       "valt niets te vergelijken.")
            return
        agency = self.desk.receipt_log(self.folder / "receipt-log.tar")
        result = reconcile_exports(export, agency)
        n.check(result.consistent and result.matched == 2,
                en="kluis audit reconcile: the municipality's receipts and Anna's log agree "
                   "({n} releases on both sides).",
                nl="kluis audit reconcile: de ontvangstbewijzen van de gemeente en Anna's "
                   "logboek komen overeen ({n} verstrekkingen aan beide kanten).",
                n=result.matched)


_VCTS = {"personal-data": PERSONAL_DATA, "income-statement": INCOME_STATEMENT,
         "diploma": DIPLOMA}


def _lower_first(text: str) -> str:
    """A type name inside a sentence: 'Personal data' -> 'personal data' (not 'DUO')."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _screen(evaluation: Any, stored: Any) -> list[str]:
    """The consent screen, without the command lines it ends with (the demo asks itself)."""
    lines = screen_lines(evaluation, stored)
    cut = say(en="What can you do?", nl="Wat kunt u doen?")
    return lines[:lines.index(cut)] if cut in lines else lines
