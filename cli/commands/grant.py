"""``kluis grant``: ongoing access for an agency (machtiging tot inzage), and stopping it.

``approve`` answers an agency's grant request (it came in through ``kluis inbox`` or
``kluis request import``); ``create`` gives access on your own initiative; ``revoke`` stops it
at once; ``list`` and ``show`` say who may read what until when, and how often they did;
``sync`` brings the relay up to date and collects the record of every read into your log.
Every command that changes a grant syncs right after the change is saved (``specs/grant.md``
§6); when the relay cannot be reached, the change waits in your vault for the next sync.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context, file
from cli.commands.profile import JsonOption
from cli.commands.request import parse_path, print_screen
from cli.lang import lang, say
from cli.output import console, emit_json
from vault import InvalidInput
from verifiers.claim_path import path_text
from verifiers.credential_type import FILES
from wallet import HttpxTransport, Wallet, relay_account
from wallet.credential import claim_label
from wallet.grant import Grant, Status
from wallet.grant_item import ItemSpec, Source
from wallet.grant_sync import SyncReport, sync_grants
from wallet.wording import format_date

group = typer.Typer(
    name="grant",
    help="Ongoing access for an agency, and stopping it. / Doorlopende inzage, en die stoppen.",
    no_args_is_help=True,
)

_STATUS = {
    Status.ACTIVE: ("active", "actief"),
    Status.REVOKING: ("stopped; the relay will be told at the next sync",
                      "gestopt; de relay hoort het bij de volgende synchronisatie"),
    Status.REVOKED: ("stopped", "gestopt"),
    Status.EXPIRED: ("ended", "afgelopen"),
}


class BadDate(InvalidInput):
    code = "grant.bad_date"
    en = "'{value}' is not a date. Write it as YYYY-MM-DD, for example 2027-09-05."
    nl = "'{value}' is geen datum. Schrijf hem als JJJJ-MM-DD, bijvoorbeeld 2027-09-05."


class BadItemOption(InvalidInput):
    code = "grant.bad_item_option"
    en = "'{value}' does not name an item. Write NAME or NAME=ID, or TYPE:claim,claim."
    nl = "'{value}' noemt geen gegeven. Schrijf NAAM of NAAM=ID, of SOORT:gegeven,gegeven."


RelayOption = Annotated[str | None, typer.Option(
    "--relay", help="The relay's URL (default: your relay from 'kluis relay register'). / "
                    "De relay (standaard: uw relay).")]
NoticeOption = Annotated[Path | None, typer.Option(
    "--notice", help="Write the grant notice for the agency to this new file. / Schrijf de "
                     "melding voor de organisatie naar dit nieuwe bestand.")]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask. / Niet vragen.")]


# --- reading ------------------------------------------------------------------------------------


@group.command("list")
def list_(json_output: JsonOption = False) -> None:
    """Your grants. / Uw machtigingen."""
    now = context.now()
    with context.wallet() as wallet:
        grants = wallet.grants.grants()
        rows = [_grant_json(wallet, g, now) for g in grants]
    if json_output:
        emit_json(rows)
        return
    if not rows:
        console.print(say(en="You have given no one ongoing access.",
                          nl="U heeft niemand doorlopende inzage gegeven."))
        return
    table = Table(say(en="id", nl="nummer"), say(en="who", nl="wie"),
                  say(en="what", nl="wat"), say(en="until", nl="tot"),
                  say(en="status", nl="status"), say(en="reads", nl="inzages"))
    for row, grant in zip(rows, grants, strict=True):
        table.add_row(grant.id[:8], _who(grant), ", ".join(_item_words(grant)),
                      _day(grant.valid_until), _status(grant.status(now)), str(row["reads"]))
    console.print(table)


@group.command("show")
def show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="The grant (its start is enough).")],
    notice: NoticeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Who may read what, until when, and every read. / Wie wat mag inzien, en elke inzage."""
    now = context.now()
    with context.wallet() as wallet:
        grant = wallet.grants.find(ident)
        data = _grant_json(wallet, grant, now)
        reads = wallet.grants.reads(grant.id)
        waiting = wallet.grants.pending(grant.id)
        if notice is not None:
            _write_notice(wallet, grant, notice)
    if json_output:
        emit_json(data)
        return
    _print_grant(grant, now)
    for read in reads:
        when = f"{format_date(read.at.astimezone().date(), lang())} {read.at.astimezone():%H:%M}"
        if read.outcome == "served":
            console.print(say(en="  {when}: read '{item}' (version {v})",
                              nl="  {when}: '{item}' ingezien (versie {v})",
                              when=when, item=read.item, v=read.version), markup=False)
        else:
            console.print(say(en="  {when}: tried to read '{item}', refused ({code})",
                              nl="  {when}: probeerde '{item}' in te zien, geweigerd ({code})",
                              when=when, item=read.item, code=read.error), markup=False)
    if not reads:
        console.print(say(en="  No reads recorded yet.", nl="  Nog geen inzage vastgelegd."))
    if waiting:
        console.print(say(en="{n} change(s) wait for the relay: run 'kluis grant sync'.",
                          nl="{n} wijziging(en) wachten op de relay: gebruik 'kluis grant sync'.",
                          n=len(waiting)), markup=False)


# --- changing -----------------------------------------------------------------------------------


@group.command("approve")
def approve(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST", help="The grant request.")],
    relay: RelayOption = None,
    notice: NoticeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Give an agency the ongoing access it asked for. / Geef de gevraagde inzage."""
    now = context.now()
    with context.wallet() as wallet:
        evaluation = wallet.consent.evaluation(request_id, now=now)
        stored = wallet.consent.find(request_id)
        if not json_output:
            print_screen(evaluation, stored, network=True)
        if not yes and not context.confirm(say(
                en="Give {who} ongoing access to this until the date in the request?",
                nl="{who} doorlopende inzage hierin geven tot de datum in het verzoek?",
                who=evaluation.verifier_name().text(lang()))):
            raise typer.Exit(1)
        grant = wallet.grants.approve(stored.id, relay=_relay(wallet, relay), now=now)
        report = _sync(wallet)
        _after_change(wallet, grant, report, notice, json_output)


@group.command("create")
def create(
    agency: Annotated[str, typer.Option("--agency", help="The agency's id on the trust list.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Its registered purpose (id).")],
    until: Annotated[str, typer.Option("--until", help="Last day, YYYY-MM-DD. / Laatste dag.")],
    item: Annotated[list[str] | None, typer.Option(
        "--item", help="A vault item: NAME or NAME=ID. / Een gegeven uit uw kluis.")] = None,
    claims: Annotated[list[str] | None, typer.Option(
        "--claims", help="Claims of your newest credential: TYPE:claim,claim[@ID], e.g. "
                         "income-statement:income_bracket,tax_year.")] = None,
    agency_key: Annotated[str | None, typer.Option(
        "--agency-key", help="The agency's Ed25519 key id for reading (when it has several).")]
    = None,
    relay: RelayOption = None,
    notice: NoticeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Give an agency ongoing access on your own initiative. / Geef uit uzelf inzage."""
    now = context.now()
    specs = [_vault_item(text) for text in item or ()] + [_claims(text) for text in claims or ()]
    valid_until = _end_of(until)
    with context.wallet() as wallet:
        agency_entry = wallet.grants.trusted_agency(agency, now=now)
        if not json_output:
            console.print(say(
                en="{who} may read {what} until {day}, for '{why}'. You can stop it at any time.",
                nl="{who} mag {what} inzien tot {day}, voor '{why}'. U kunt dit altijd stoppen.",
                who=agency_entry.names.text(lang()),
                what=", ".join(_spec_words(s) for s in specs) or "-",
                day=_day(valid_until), why=purpose), markup=False)
        if not yes and not context.confirm(say(en="Give this access?",
                                               nl="Deze inzage geven?")):
            raise typer.Exit(1)
        grant = wallet.grants.create(agency_id=agency, purpose_id=purpose, items=specs,
                                     valid_until=valid_until, relay=_relay(wallet, relay),
                                     now=now, fetch_kid=agency_key)
        report = _sync(wallet)
        _after_change(wallet, grant, report, notice, json_output)


@group.command("revoke")
def revoke(
    ident: Annotated[str, typer.Argument(metavar="ID", help="The grant (its start is enough).")],
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Stop a grant now: the next read is refused. / Stop een machtiging: nu direct."""
    now = context.now()
    with context.wallet() as wallet:
        grant = wallet.grants.find(ident)
        if not yes and not context.confirm(say(
                en="Stop the access of {who}? This cannot be undone.",
                nl="De inzage van {who} stoppen? Dit is niet terug te draaien.",
                who=_who(grant))):
            raise typer.Exit(1)
        wallet.grants.revoke(grant.id, now=now)
        report = _sync(wallet)
        grant = wallet.grants.find(grant.id)
        if json_output:
            emit_json({**_grant_json(wallet, grant, context.now()), "sync": _report_json(report)})
            return
    if grant.status(now) is Status.REVOKED and not grant.registered:
        console.print(say(
            en="Stopped. Nothing of it had reached the relay yet, so nothing can be read.",
            nl="Gestopt. Er was nog niets van bij de relay, dus er kan niets worden ingezien."))
    elif grant.status(now) is Status.REVOKED:
        console.print(say(
            en="Stopped. The relay refuses every read of {who} from now on and has deleted "
               "what it held; your log records it.",
            nl="Gestopt. De relay weigert vanaf nu elke inzage door {who} en heeft de "
               "gegevens verwijderd; uw logboek legt het vast.",
            who=_who(grant)), markup=False)
    else:
        console.print(say(
            en="Stopped in your wallet, but the relay could not be reached ({code}). Run "
               "'kluis grant sync' as soon as you are online: until then the relay still hands "
               "out the last version.",
            nl="Gestopt in uw wallet, maar de relay was niet bereikbaar ({code}). Gebruik "
               "'kluis grant sync' zodra u online bent: tot dan geeft de relay de laatste "
               "versie nog af.",
            code=report.stopped or "-"), markup=False)


@group.command("sync")
def sync(json_output: JsonOption = False) -> None:
    """Update the relay and log every read. / Werk de relay bij en log elke inzage."""
    with context.wallet() as wallet:
        report = _sync(wallet)
    if json_output:
        emit_json(_report_json(report))
        return
    _print_report(report)


# --- helpers ------------------------------------------------------------------------------------


def _sync(wallet: Wallet) -> SyncReport:
    with HttpxTransport() as transport:
        return sync_grants(wallet.grants, transport, now=context.now(), clock=context.now)


def _relay(wallet: Wallet, given: str | None) -> str:
    return given if given else relay_account(wallet.vault).url


def _after_change(wallet: Wallet, grant: Grant, report: SyncReport, notice: Path | None,
                  json_output: bool) -> None:
    grant = wallet.grants.find(grant.id)
    if notice is not None:
        _write_notice(wallet, grant, notice)
    if json_output:
        emit_json({**_grant_json(wallet, grant, context.now()), "sync": _report_json(report),
                   "notice": wallet.grants.notice(grant)})
        return
    _print_grant(grant, context.now())
    _print_report(report)
    if notice is not None:
        console.print(say(en="The notice for {who} is in {path}.",
                          nl="De melding voor {who} staat in {path}.",
                          who=_who(grant), path=str(notice)), markup=False)


def _write_notice(wallet: Wallet, grant: Grant, path: Path) -> None:
    text = json.dumps(wallet.grants.notice(grant), indent=2, ensure_ascii=False) + "\n"
    file.write_new(path, text.encode("utf-8"))


def _print_grant(grant: Grant, now: datetime) -> None:
    lines = [
        say(en="Grant {id}: {who} — {status}", nl="Machtiging {id}: {who} — {status}",
            id=grant.id, who=_who(grant), status=_status(grant.status(now))),
        say(en="  may read: {what}", nl="  mag inzien: {what}",
            what=", ".join(_item_words(grant))),
        say(en="  why: {why} ({dpv})", nl="  waarom: {why} ({dpv})",
            why=grant.purpose.description.text(lang()), dpv=grant.purpose.dpv),
        say(en="  legal basis: {basis}", nl="  grondslag: {basis}",
            basis=grant.legal_basis.text(lang())),
        say(en="  processing activity: {pa}", nl="  verwerking: {pa}",
            pa=grant.processing_activity),
        say(en="  until: {day}", nl="  tot: {day}", day=_day(grant.valid_until)),
    ]
    for line in lines:
        console.print(line, markup=False)


def _print_report(report: SyncReport) -> None:
    console.print(say(
        en="Relay: {r} grant(s) registered, {u} item(s) sent, {w} withdrawn, {v} stopped; "
           "{l} read(s) added to your log.",
        nl="Relay: {r} machtiging(en) aangemeld, {u} gegeven(s) verstuurd, {w} ingetrokken, "
           "{v} gestopt; {l} inzage(s) aan uw logboek toegevoegd.",
        r=report.registered, u=report.uploaded, w=report.withdrawn, v=len(report.revoked),
        l=report.logged), markup=False)
    if report.stopped:
        console.print(say(en="The relay could not be reached ({code}); {n} change(s) wait.",
                          nl="De relay was niet bereikbaar ({code}); {n} wijziging(en) "
                             "wachten.", code=report.stopped, n=report.waiting), markup=False)
    for grant_id, code in report.failed:
        console.print(say(en="Grant {id}: {code}", nl="Machtiging {id}: {code}",
                          id=grant_id[:8], code=code), markup=False)


def _grant_json(wallet: Wallet, grant: Grant, now: datetime) -> dict[str, Any]:
    reads = wallet.grants.reads(grant.id)
    return {
        "id": grant.id, "agency": grant.agency.json(), "status": grant.status(now).value,
        "purpose": grant.purpose.json(), "legal_basis": grant.legal_basis.model_dump(),
        "processing_activity": grant.processing_activity,
        "valid_until": grant.valid_until.isoformat(), "relay": grant.relay,
        "request": grant.request_id,
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "items": [{"id": i.spec.item, "source": i.spec.source.value, "name": i.spec.name,
                   "claims": [list(p) for p in i.spec.claims], "version": i.version,
                   "error": i.error} for i in grant.items],
        "reads": sum(1 for r in reads if r.outcome == "served"),
        "refused": sum(1 for r in reads if r.outcome != "served"),
        "waiting": len(wallet.grants.pending(grant.id)),
    }


def _report_json(report: SyncReport) -> dict[str, Any]:
    return {"registered": report.registered, "uploaded": report.uploaded,
            "withdrawn": report.withdrawn, "notified": report.notified,
            "revoked": report.revoked, "logged": report.logged,
            "failed": [{"grant": g, "code": c} for g, c in report.failed],
            "waiting": report.waiting, "stopped": report.stopped}


def _who(grant: Grant) -> str:
    return (grant.agency.en if lang() == "en" else grant.agency.nl) or grant.agency.id


def _status(status: Status) -> str:
    en, nl = _STATUS[status]
    return say(en=en, nl=nl)


def _day(moment: datetime) -> str:
    return format_date(moment.astimezone().date(), lang())


def _item_words(grant: Grant) -> list[str]:
    return [_spec_words(i.spec) for i in grant.items]


def _spec_words(spec: ItemSpec) -> str:
    if spec.source is Source.VAULT:
        return f"'{spec.name}'"
    labels = [claim_label(spec.name, p)[lang()] for p in spec.claims]
    return ", ".join(labels) or path_text(("vct",))


def _end_of(text: str) -> datetime:
    """The end of day ``text`` (YYYY-MM-DD) on this computer's clock, in UTC."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise BadDate(value=text[:40]) from None
    zone = datetime.now().astimezone().tzinfo
    return datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


def _vault_item(text: str) -> ItemSpec:
    name, _, ident = text.partition("=")
    name = name.strip()
    if not name:
        raise BadItemOption(value=text[:40])
    ident = ident.strip() or _slug(name)
    return ItemSpec(ident, Source.VAULT, name)


def _claims(text: str) -> ItemSpec:
    kind, _, rest = text.rpartition(":")
    paths, _, ident = rest.partition("@")
    vct = next((v for v, stem in FILES.items() if kind.strip() in (stem, v)), None)
    if vct is None or not paths.strip():
        raise BadItemOption(value=text[:40])
    parsed = tuple(parse_path(p) for p in paths.split(",") if p.strip())
    return ItemSpec(ident.strip() or FILES[vct], Source.CREDENTIAL, vct, parsed)


def _slug(name: str) -> str:
    """An item id from a vault item's name: letters and digits kept, the rest '-'."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "._~-") else "-" for c in name)
    return slug.strip("-.~_")[:64] or "item"


def register(app: typer.Typer) -> None:
    app.add_typer(group)
