"""``kluis audit``: your log in plain language (``show``), its export for an auditor
(``export``, ``open``), and the auditor's checks (``verify``, ``replay``, ``reconcile``,
``check-opening``), which need no vault.

Exit codes: the error families' (specs/errors.md), except ``replay`` (0 clean, 1 violations
found, 2 the export cannot be read or verified) and ``reconcile`` (0 both sides agree, 1
one side holds releases the other does not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli import context, file
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json, err_console, error_line
from vault import InvalidInput, KluisError
from verifiers.audit_export import (
    CHECKPOINT,
    ENTRIES,
    ExportReader,
    entry_blocks,
    verify_export,
)
from verifiers.checkpoint import parse_checkpoint
from verifiers.claim_path import path_text
from verifiers.note import VerifierKey, parse_verifier_key
from verifiers.opening import check_openings, format_opening, parse_opening
from verifiers.reconcile import reconcile_exports
from verifiers.replay import ReplayReport, Violation, replay_export
from verifiers.tlog import parse_entry
from wallet.trail import TrailFilter, tell

group = typer.Typer(
    name="audit",
    help="Your log, and checking it. / Uw logboek, en het controleren ervan.",
    no_args_is_help=True,
)

SinceOption = Annotated[
    Path | None,
    typer.Option("--since", help="A checkpoint file you saw before. / Een eerder gezien "
                 "controlepunt (bestand)."),
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", help="The log's verifier key you trust (text or file). / De "
                 "sleutel van het logboek die u vertrouwt (tekst of bestand)."),
]

_VIOLATIONS: dict[Violation, tuple[str, str]] = {
    Violation.RELEASE_WITHOUT_APPROVAL: ("data was sent without an approval",
                                         "er zijn gegevens verstuurd zonder toestemming"),
    Violation.RELEASE_BEYOND_APPROVAL: ("more data was sent than was approved",
                                        "er zijn meer gegevens verstuurd dan goedgekeurd"),
    Violation.RELEASE_BEYOND_REGISTRATION: (
        "data was sent that the organisation is not registered to ask for",
        "er zijn gegevens verstuurd waarvoor de organisatie niet geregistreerd is"),
    Violation.RELEASE_TO_BLOCKED_VERIFIER: ("data was sent after kluis blocked the request",
                                            "er zijn gegevens verstuurd na een blokkade"),
    Violation.RELEASE_TO_UNREGISTERED_VERIFIER: (
        "data was sent to an organisation that is not registered",
        "er zijn gegevens verstuurd aan een niet-geregistreerde organisatie"),
    Violation.RELEASE_TO_OTHER_VERIFIER: (
        "data went to another organisation than the one that asked",
        "gegevens gingen naar een andere organisatie dan de vrager"),
    Violation.RELEASE_AFTER_EXPIRY: ("data was sent after the request expired",
                                     "er zijn gegevens verstuurd na het verlopen van het verzoek"),
    Violation.RELEASE_AFTER_REFUSAL: ("data was sent after a refusal",
                                      "er zijn gegevens verstuurd na een weigering"),
    Violation.SECOND_RELEASE: ("one approval was used twice",
                               "één toestemming is twee keer gebruikt"),
    Violation.APPROVAL_WITHOUT_REQUEST: ("an approval has no request",
                                         "een toestemming hoort bij geen verzoek"),
    Violation.APPROVAL_BEYOND_REQUEST: ("more was approved than was asked",
                                        "er is meer goedgekeurd dan gevraagd"),
    Violation.APPROVAL_AFTER_DECISION: ("a request was decided twice",
                                        "over een verzoek is twee keer besloten"),
    Violation.APPROVAL_AFTER_EXPIRY: ("a request was approved after it expired",
                                      "een verzoek is goedgekeurd nadat het verlopen was"),
    Violation.REQUEST_REUSED: ("two requests have the same number",
                               "twee verzoeken hebben hetzelfde nummer"),
    Violation.RECEIPT_WITHOUT_RELEASE: ("a receipt is for data that was never sent",
                                        "een ontvangstbewijs hoort bij niets wat verstuurd is"),
    Violation.RECEIPT_BEYOND_RELEASE: (
        "the organisation signed for more data than was sent",
        "de organisatie tekende voor meer gegevens dan er verstuurd zijn"),
    Violation.GRANT_REUSED: ("two grants have the same number",
                             "twee machtigingen hebben hetzelfde nummer"),
    Violation.GRANT_USE_WITHOUT_GRANT: ("data was read without a grant",
                                        "er zijn gegevens ingezien zonder machtiging"),
    Violation.GRANT_USE_BY_OTHER_AGENCY: (
        "another organisation read data under a grant",
        "een andere organisatie heeft gegevens ingezien onder een machtiging"),
    Violation.GRANT_USE_OUTSIDE_GRANT: (
        "data was read that the grant does not cover",
        "er zijn gegevens ingezien die niet onder de machtiging vallen"),
    Violation.GRANT_USE_AFTER_EXPIRY: ("data was read after the grant ended",
                                       "er zijn gegevens ingezien nadat de machtiging afliep"),
    Violation.GRANT_USE_AFTER_REVOCATION: (
        "data was read after the grant was withdrawn",
        "er zijn gegevens ingezien nadat de machtiging was ingetrokken"),
}


class BadDate(InvalidInput):
    code = "audit.bad_date"
    en = "'{value}' is not a date. Write it as YYYY-MM-DD, for example 2027-03-31."
    nl = "'{value}' is geen datum. Schrijf hem als JJJJ-MM-DD, bijvoorbeeld 2027-03-31."


# --- the citizen's commands ----------------------------------------------------------------------


def show(
    agency: Annotated[str | None, typer.Option(
        "--agency", help="Only this organisation (name or address). / Alleen deze organisatie."
    )] = None,
    claim: Annotated[str | None, typer.Option(
        "--claim", help="Only this claim (e.g. income_bracket). / Alleen dit gegeven.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="From this date (YYYY-MM-DD). / Vanaf deze datum.")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Up to this date (YYYY-MM-DD). / Tot en met deze datum.")] = None,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Tell an export instead of your own log. / Vertel een export in "
        "plaats van uw eigen logboek.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Your log in plain language. / Uw logboek in gewone taal."""
    only = TrailFilter(agency, claim, _date(since), _date(until))
    zone = datetime.now().astimezone().tzinfo
    with _entries(export) as entries:
        sentences = list(tell(entries, lang=lang(), zone=zone, only=only))
    if json_output:
        emit_json([{"seq": s.seq, "time": s.time.isoformat(), "kind": s.kind,
                    "agency": s.agency, "text": s.text} for s in sentences])
        return
    if not sentences:
        console.print(say(en="Nothing in your log matches.",
                          nl="Niets in uw logboek past hierbij."))
    for sentence in sentences:
        console.print(sentence.text, markup=False)


def export(
    path: Annotated[Path, typer.Argument(help="New folder, or a file ending in .tar. / Nieuwe "
                                         "map, of een bestand dat eindigt op .tar.")],
    json_output: JsonOption = False,
) -> None:
    """Export your log for an auditor. / Exporteer uw logboek voor een controleur."""
    with context.wallet() as wallet:
        summary = wallet.log.export(path, now=context.now())
        key = wallet.log.verifier_key_text
    if json_output:
        emit_json({"path": str(summary.path), "entries": summary.size, "receipts":
                   summary.receipts, "trust_lists": summary.trust_lists,
                   "earlier_checkpoints": summary.checkpoints, "verifier_key": key})
        return
    console.print(say(
        en="Exported {n} entries to {path}. The auditor can check it with this key: {key}",
        nl="{n} regels geëxporteerd naar {path}. De controleur kan de export controleren met "
           "deze sleutel: {key}", n=summary.size, path=summary.path, key=key), markup=False)


def open_entry(
    seq: Annotated[int, typer.Argument(help="The entry's number. / Het nummer van de regel.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write to this new file. / Schrijf naar dit nieuwe bestand.")] = None,
) -> None:
    """Reveal the values behind one entry, for an auditor. / Toon de waarden achter één
    regel, voor een controleur."""
    with context.wallet() as wallet:
        data = format_opening(wallet.log.open_entry(seq))
    if out is None:
        typer.echo(data.decode(), nl=False)
        return
    file.write_new(out, data)
    err_console.print(say(
        en="Written to {path}. It shows personal data: give it only to the auditor.",
        nl="Geschreven naar {path}. Er staan persoonsgegevens in: geef het alleen aan de "
           "controleur.", path=out), markup=False)


# --- the auditor's commands ----------------------------------------------------------------------


def verify(
    path: Annotated[Path, typer.Argument(help="The export (folder or .tar).")],
    since: SinceOption = None,
    key: KeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check the integrity of an export. / Controleer of een export ongeschonden is."""
    with _progress(path) as step:
        result = verify_export(path, key=_key(key), since=_since(since), progress=step)
    data = {"origin": result.origin, "verifier_key": result.verifier_key,
            "size": result.checkpoint.size, "root": result.checkpoint.root_hash.hex(),
            "earlier_checkpoints": list(result.earlier),
            "since": result.since.size if result.since else None}
    if json_output:
        emit_json({"ok": True, **data})
        return
    console.print(say(
        en="The log is intact: {n} entries, signed by {origin}.",
        nl="Het logboek is ongeschonden: {n} regels, ondertekend door {origin}.",
        n=result.checkpoint.size, origin=result.origin), markup=False)
    if result.since is not None or result.earlier:
        sizes = ", ".join(str(s) for s in sorted({*result.earlier, *(
            [result.since.size] if result.since else [])}))
        console.print(say(en="It extends the earlier checkpoints at sizes {sizes}.",
                          nl="Het is een voortzetting van de eerdere controlepunten bij "
                             "{sizes} regels.", sizes=sizes), markup=False)


def replay(
    path: Annotated[Path, typer.Argument(help="The export (folder or .tar).")],
    since: SinceOption = None,
    key: KeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check an export against the release rules. / Controleer een export op de regels voor
    verstrekking."""
    try:
        with _progress(path) as step:
            report = replay_export(path, key=_key(key), since=_since(since), progress=step)
    except KluisError as error:
        if json_output:
            emit_json({"ok": False, "unreadable": True, "code": error.code,
                       "message": error.message(lang()), "detail": error.detail})
        else:
            err_console.print(error_line(error), markup=False)
        raise typer.Exit(2) from None
    if json_output:
        emit_json(_report_json(report))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.clean else 1)


def reconcile(
    citizen: Annotated[Path, typer.Argument(help="The citizen's export.")],
    agency: Annotated[Path, typer.Argument(help="The agency's export.")],
    citizen_key: Annotated[str | None, typer.Option("--citizen-key")] = None,
    agency_key: Annotated[str | None, typer.Option("--agency-key")] = None,
    json_output: JsonOption = False,
) -> None:
    """Compare a citizen's log with an agency's receipts. / Vergelijk het logboek van een
    burger met de ontvangstbewijzen van een organisatie."""
    result = reconcile_exports(citizen, agency, citizen_key=_key(citizen_key),
                               agency_key=_key(agency_key))
    data = {
        "consistent": result.consistent,
        "matched": result.matched,
        "citizen_only": [{"seq": r.seq, "request": r.request, "verifier": r.verifier,
                          "presentation_hash": r.presentation_hash, "time": r.time,
                          "claims": [list(c) for c in r.claims]} for r in result.citizen_only],
        "agency_only": [{"seq": r.seq, "request": r.request, "receipt_id": r.receipt_id,
                         "presentation_hash": r.presentation_hash, "time": r.time,
                         "claims": [list(c) for c in r.claims]} for r in result.agency_only],
        "receipts_not_logged": list(result.receipts_not_logged),
        "claims_differ": [{"presentation_hash": d.release.presentation_hash,
                           "sent": [list(c) for c in d.release.claims],
                           "received": [list(c) for c in d.record.claims]}
                          for d in result.claims_differ],
        "other_receipts": result.other_receipts,
    }
    if json_output:
        emit_json(data)
    else:
        console.print(say(en="{n} releases are on both sides.", nl="{n} verstrekkingen staan "
                          "aan beide kanten.", n=result.matched), markup=False)
        for r in result.citizen_only:
            console.print(say(
                en="Entry {seq}: sent to {who} on {time}; the agency has no record of it.",
                nl="Regel {seq}: verstuurd aan {who} op {time}; de organisatie heeft er geen "
                   "verslag van.", seq=r.seq, who=r.verifier, time=r.time), markup=False)
        for a in result.agency_only:
            console.print(say(
                en="Agency entry {seq}: a receipt for request {rid} that the citizen's log "
                   "does not show as sent.",
                nl="Regel {seq} van de organisatie: een ontvangstbewijs voor verzoek {rid} dat "
                   "volgens het logboek van de burger niet verstuurd is.",
                seq=a.seq, rid=a.request), markup=False)
        for rid in result.receipts_not_logged:
            console.print(say(en="Receipt {rid} is with the citizen but not in the agency's "
                                 "log.", nl="Ontvangstbewijs {rid} heeft de burger wel, maar "
                              "staat niet in het logboek van de organisatie.", rid=rid),
                          markup=False)
        for d in result.claims_differ:
            console.print(say(
                en="Presentation {h}: sent {sent}, the agency says it received {got}.",
                nl="Presentatie {h}: verstuurd {sent}, de organisatie zegt {got} te hebben "
                   "ontvangen.", h=d.release.presentation_hash,
                sent=", ".join(path_text(c) for c in d.release.claims),
                got=", ".join(path_text(c) for c in d.record.claims)), markup=False)
        if result.consistent:
            console.print(say(en="Both sides agree.", nl="Beide kanten komen overeen."))
    raise typer.Exit(0 if result.consistent else 1)


def check_opening(
    export: Annotated[Path, typer.Argument(help="The export (folder or .tar).")],
    opening: Annotated[Path, typer.Argument(help="The opening file from 'kluis audit open'.")],
    key: KeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check revealed values against an export. / Controleer getoonde waarden tegen een
    export."""
    parsed = parse_opening(file.read_bytes(opening))
    opened = check_openings(export, parsed, key=_key(key))
    if json_output:
        emit_json({"ok": True, "seq": parsed.seq, "kind": opened[0].kind, "values": [
            {"credential": o.credential, "vct": o.vct,
             "path": list(o.path) if o.path is not None else None,
             "value": o.value} for o in opened]})
        return
    console.print(say(en="The values match entry {seq} of the log:",
                      nl="De waarden passen bij regel {seq} van het logboek:",
                      seq=parsed.seq), markup=False)
    for o in opened:
        what = path_text(o.path) if o.path is not None else say(en="content SHA-256",
                                                                  nl="SHA-256 van de inhoud")
        console.print(f"  {what}: {o.value!r}", markup=False)


# --- helpers --------------------------------------------------------------------------------------


def _print_report(report: ReplayReport) -> None:
    if report.export is not None:
        console.print(say(en="The log is intact: {n} entries, signed by {origin}.",
                          nl="Het logboek is ongeschonden: {n} regels, ondertekend door "
                             "{origin}.", n=report.entries, origin=report.export.origin),
                      markup=False)
    console.print(say(
        en="{r} requests, {s} releases, {c} receipts.",
        nl="{r} verzoeken, {s} verstrekkingen, {c} ontvangstbewijzen.",
        r=report.requests, s=report.releases, c=report.receipts), markup=False)
    if report.awaiting_outcome:
        console.print(say(en="{n} approvals have no outcome logged yet.",
                          nl="Van {n} toestemmingen is nog geen uitkomst gelogd.",
                          n=report.awaiting_outcome), markup=False)
    if report.clean:
        console.print(say(en="No rule was broken.", nl="Er is geen regel overtreden."))
        return
    console.print(say(en="{n} violations:", nl="{n} overtredingen:", n=report.violations))
    for finding in report.findings:
        en, nl = _VIOLATIONS[finding.violation]
        grant = finding.violation.value.startswith("grant_")
        console.print(say(
            en="  entry {seq}: {what} ({about} {rid}; {detail}) [{code}]",
            nl="  regel {seq}: {what} ({about} {rid}; {detail}) [{code}]",
            seq=finding.seq, what=say(en=en, nl=nl), rid=finding.request or "-",
            about=say(en="grant", nl="machtiging") if grant else say(en="request",
                                                                      nl="verzoek"),
            detail=finding.detail, code=finding.violation.value), markup=False)
    if report.violations > len(report.findings):
        console.print(say(en="  ... and {n} more.", nl="  ... en nog {n}.",
                          n=report.violations - len(report.findings)))


def _report_json(report: ReplayReport) -> dict[str, Any]:
    return {
        "ok": report.clean,
        "origin": report.export.origin if report.export else None,
        "entries": report.entries,
        "kinds": report.kinds,
        "requests": report.requests,
        "releases": report.releases,
        "receipts": report.receipts,
        "awaiting_outcome": report.awaiting_outcome,
        "violations": report.violations,
        "findings": [{"violation": f.violation.value, "seq": f.seq, "request": f.request,
                      "detail": f.detail,
                      "message": say(en=_VIOLATIONS[f.violation][0],
                                     nl=_VIOLATIONS[f.violation][1])}
                     for f in report.findings],
    }


@contextmanager
def _entries(export: Path | None) -> Iterator[Iterator[dict[str, Any]]]:
    if export is None:
        with context.wallet() as wallet:
            yield wallet.log.entries()
        return
    verify_export(export)

    def lines() -> Iterator[dict[str, Any]]:
        with ExportReader(export) as reader, reader.open(ENTRIES) as stream:
            seq = 0
            for block in entry_blocks(stream):
                for line in block:
                    yield parse_entry(line, seq=seq)
                    seq += 1

    yield lines()


@contextmanager
def _progress(path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on standard error, sized by the export's checkpoint (read unverified,
    for the bar only); none when standard error is not a terminal."""
    if not err_console.is_terminal:
        yield None
        return
    try:
        with ExportReader(path) as reader:
            total = parse_checkpoint(reader.read(CHECKPOINT).decode().split("\n\n")[0] + "\n").size
    except (KluisError, UnicodeDecodeError):
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task(say(en="entries", nl="regels"), total=total)
        yield lambda done: bar.update(task, completed=done)


def _key(value: str | None) -> VerifierKey | None:
    if value is None:
        return None
    candidate = Path(value)
    if candidate.is_file():
        value = file.read_bytes(candidate).decode("ascii", "replace").strip()
    return parse_verifier_key(value)


def _since(path: Path | None) -> bytes | None:
    return None if path is None else file.read_bytes(path)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadDate(value=value) from None


def register(app: typer.Typer) -> None:
    group.command("show")(show)
    group.command("export")(export)
    group.command("open")(open_entry)
    group.command("verify")(verify)
    group.command("replay")(replay)
    group.command("reconcile")(reconcile)
    group.command("check-opening")(check_opening)
    app.add_typer(group)
