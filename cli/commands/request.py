"""``kluis request``: requests for your data, given as files (``import``, ``list``) or
collected from your relay (``kluis inbox``), the consent screen (``show``: who asks, what, why,
on which legal basis, how long, and what to watch out for), and your decision (``approve``,
``refuse``): sent to the agency over the network for a request that came that way, or written
as the OpenID4VP response to a file you choose (``--out``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context, file
from cli.commands.credential import format_value
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json
from vault import KluisError
from verifiers.claim_path import ClaimPath, path_text
from wallet import (
    Evaluation,
    GrantElement,
    HttpxTransport,
    Request,
    Status,
    StoredRequest,
    TrustListVerifierKeys,
    Wallet,
    approve_and_send,
    arrived_by_network,
    grant_element,
    parse_request,
    refuse_and_send,
)
from wallet.credential import claim_label
from wallet.release import Release
from wallet.trust import trust_list
from wallet.wording import format_date, type_name

group = typer.Typer(
    name="request",
    help="Requests for your data. / Verzoeken om uw gegevens.",
    no_args_is_help=True,
)

_STATES = {
    "pending": ("waiting for your decision", "wacht op uw besluit"),
    "blocked": ("blocked by kluis", "tegengehouden door kluis"),
    "expired": ("expired", "verlopen"),
    "approved": ("approved", "goedgekeurd"),
    "refused": ("refused", "geweigerd"),
}


def state_label(state: str) -> str:
    en, nl = _STATES[state]
    return say(en=en, nl=nl)


def when_label(moment: datetime) -> str:
    local = moment.astimezone()
    return f"{format_date(local.date(), lang())} {local:%H:%M}"


def _receive(wallet: Wallet, source: Path) -> Evaluation:
    """Read a request file (JSON or a signed Request Object) and let the engine receive it."""
    now = context.now()
    text = file.read_bytes(source)
    keys = TrustListVerifierKeys(trust_list(wallet.vault, now=now))
    return wallet.consent.receive(parse_request(text, verifier_keys=keys), now=now)


def _target(wallet: Wallet, ident: str) -> Evaluation:
    """An id (or its start) of a stored request, or a request file to receive first."""
    path = Path(ident)
    if path.is_file():
        return _receive(wallet, path)
    return wallet.consent.evaluation(ident, now=context.now())


@group.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="The request file ('-': standard input).")],
    json_output: JsonOption = False,
) -> None:
    """Receive a request from a file and check it. / Ontvang een verzoek uit een bestand."""
    with context.wallet() as wallet:
        evaluation = _receive(wallet, path)
        stored = wallet.consent.find(evaluation.request.id)
    if json_output:
        emit_json(screen_json(evaluation, stored))
        return
    console.print(say(
        en="Request {id} from {who}: {state}. See it with 'kluis request show {id}'.",
        nl="Verzoek {id} van {who}: {state}. Bekijk het met 'kluis request show {id}'.",
        id=stored.id, who=evaluation.verifier_name().text(lang()), state=state_label(stored.state),
    ), markup=False)


@group.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List the requests you received. / Toon de verzoeken die u kreeg."""
    with context.wallet() as wallet:
        stored = wallet.consent.requests()
    rows = [_row(s) for s in stored]
    if json_output:
        emit_json(rows)
        return
    if not rows:
        console.print(say(en="You have received no requests.", nl="U heeft geen verzoeken."))
        return
    table = Table(say(en="id", nl="nummer"), say(en="from", nl="van"),
                  say(en="purpose", nl="doel"), say(en="state", nl="status"),
                  say(en="valid until", nl="geldig tot"))
    for item, s in zip(rows, stored, strict=True):
        table.add_row(item["id"], item["verifier"]["name"][lang()],
                      s.request.purpose.description.text(lang()), state_label(item["state"]),
                      when_label(s.request.expires_at))
    console.print(table)


def _row(stored: StoredRequest) -> dict[str, Any]:
    request = stored.request
    name = stored.verifier.en or request.client_id
    return {
        "id": stored.id,
        "received": stored.received.isoformat(),
        "state": stored.state.value,
        "verifier": {"client_id": request.client_id,
                     "name": {"nl": stored.verifier.nl or name, "en": name}},
        "purpose": request.purpose.purpose_id,
        "expires_at": request.expires_at.isoformat(),
    }


@group.command("show")
def show(
    ident: Annotated[str, typer.Argument(help="Request id (or its start), or a request file.")],
    json_output: JsonOption = False,
) -> None:
    """The consent screen: who asks what, why, and for how long. / Het toestemmingsscherm."""
    with context.wallet() as wallet:
        evaluation = _target(wallet, ident)
        stored = wallet.consent.find(evaluation.request.id)
        network = arrived_by_network(wallet.vault, stored.id)
    if json_output:
        emit_json(screen_json(evaluation, stored))
    else:
        print_screen(evaluation, stored, network=network)


@group.command("approve")
def approve(
    ident: Annotated[str, typer.Argument(help="Request id (or its start), or a request file.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the response to this new file instead of sending it."
                                   " / Schrijf het antwoord naar dit nieuwe bestand."),
    ] = None,
    leave_out: Annotated[
        list[str] | None,
        typer.Option("--leave-out", help="An optional claim not to share, e.g. address.street."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="An optional document (its query id) not to share."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm. / Niet vragen.")] = (
        False
    ),
) -> None:
    """Share what the request asks (after you confirm). / Deel wat het verzoek vraagt."""
    if out is not None and out.exists():
        raise typer.BadParameter(say(en="the file exists", nl="het bestand bestaat al"),
                                 param_hint="--out")
    with context.wallet() as wallet:
        evaluation = _target(wallet, ident)
        stored = wallet.consent.find(evaluation.request.id)
        network = out is None and arrived_by_network(wallet.vault, stored.id)
        if out is None and not network:
            raise typer.BadParameter(say(
                en="this request came as a file: give --out FILE for the answer",
                nl="dit verzoek kwam als bestand: geef --out BESTAND voor het antwoord"),
                param_hint="--out")
        print_screen(evaluation, stored, network=network)
        if not yes and not context.confirm(say(en="Share this data?", nl="Deze gegevens delen?")):
            console.print(say(en="Nothing was shared.", nl="Er is niets gedeeld."))
            raise typer.Exit(1)
        paths = [parse_path(p) for p in leave_out or ()]
        if network:
            with HttpxTransport() as transport:
                delivery = approve_and_send(wallet.consent, stored.id, transport=transport,
                                            now=context.now(), clock=context.now,
                                            leave_out=paths, skip=skip or ())
        else:
            release = wallet.consent.approve(stored.id, leave_out=paths, skip=skip or (),
                                             now=context.now())
            _send(wallet, release, out)  # type: ignore[arg-type]
    who = evaluation.verifier_name().text(lang())
    if network:
        console.print(say(
            en="Approved and sent to {who}. They confirmed receipt ({count} receipt(s)); your "
               "log records what was shared.",
            nl="Goedgekeurd en verstuurd naar {who}. Zij bevestigden de ontvangst ({count} "
               "ontvangstbewijs/-bewijzen); uw logboek legt vast wat gedeeld is.",
            who=who, count=len(delivery.receipts)), markup=False)
        return
    console.print(say(
        en="Approved. The answer for {who} is in {out}. Your log records what was shared.",
        nl="Goedgekeurd. Het antwoord voor {who} staat in {out}. Uw logboek legt vast wat "
           "gedeeld is.",
        who=who, out=str(out),
    ), markup=False)


def _send(wallet: Wallet, release: Release, out: Path) -> None:
    """The 'send' of a file-based request: write the response, then record the outcome."""
    data = (json.dumps(release.response(), indent=2) + "\n").encode()
    try:
        file.write_new(out, data)
    except KluisError as error:
        wallet.consent.record_outcome(release, sent=False, error=error.code, now=context.now())
        raise
    wallet.consent.record_outcome(release, sent=True, now=context.now())


@group.command("refuse")
def refuse(
    ident: Annotated[str, typer.Argument(help="Request id (or its start), or a request file.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="New file for the 'access_denied' answer.")
    ] = None,
) -> None:
    """Refuse a request: nothing is shared. / Weiger een verzoek: er wordt niets gedeeld."""
    with context.wallet() as wallet:
        evaluation = _target(wallet, ident)
        request_id = evaluation.request.id
        if out is None and arrived_by_network(wallet.vault, request_id):
            with HttpxTransport() as transport:
                refuse_and_send(wallet.consent, request_id, transport=transport,
                                now=context.now())
            console.print(say(en="Refused. Nothing was shared; the agency was told.",
                              nl="Geweigerd. Er is niets gedeeld; de organisatie weet het."))
            return
        refusal = wallet.consent.refuse(request_id, now=context.now())
    if out is not None:
        file.write_new(out, (json.dumps(refusal.response(), indent=2) + "\n").encode())
    console.print(say(en="Refused. Nothing was shared.", nl="Geweigerd. Er is niets gedeeld."))


def parse_path(text: str) -> ClaimPath:
    """``address.postal_code`` or ``degrees[0]`` as a claims path pointer."""
    parts: list[str | int | None] = []
    for piece in text.strip().split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(None if index == "*" else int(index) if index.isdigit() else index)
            rest = rest.removeprefix("[")
    if not parts:
        raise typer.BadParameter(say(en="empty claim path", nl="leeg claimpad"))
    return tuple(parts)


# --- the consent screen ---------------------------------------------------------------------


def print_screen(evaluation: Evaluation, stored: StoredRequest, *, network: bool = False) -> None:
    """The consent screen in the current language (B1 plain language); ``network``: the
    request came over the network, so the answer goes back that way."""
    for line in screen_lines(evaluation, stored, network=network):
        console.print(line, markup=False, highlight=False)


def screen_lines(evaluation: Evaluation, stored: StoredRequest, *,
                 network: bool = False) -> list[str]:
    request, purpose, tongue = evaluation.request, evaluation.request.purpose, lang()
    registered = (say(en="on the trust list", nl="staat op de vertrouwenslijst")
                  if evaluation.verifier is not None
                  else say(en="NOT on the trust list", nl="staat NIET op de vertrouwenslijst"))
    keep = format_date(evaluation.keep_until, tongue)
    basis = purpose.legal_basis.text(tongue)
    if purpose.legal_basis.reference:
        basis += f" ({purpose.legal_basis.reference})"
    lines = [
        say(en="Request {id} — {state}", nl="Verzoek {id} — {state}", id=stored.id,
            state=state_label(stored.state)),
        "",
        say(en="Who is asking?", nl="Wie vraagt het?"),
        f"  {evaluation.verifier_name().text(tongue)} ({registered})",
        say(en="  Identifier: {id}", nl="  Kenmerk: {id}", id=request.client_id),
        say(en="Why?", nl="Waarvoor?"),
        f"  {purpose.description.text(tongue)}",
        say(en="  Purpose (DPV): {dpv}", nl="  Doel (DPV): {dpv}", dpv=purpose.dpv),
        say(en="Legal basis:", nl="Wettelijke grondslag:"),
        f"  {basis}",
        say(en="How long will they keep it?", nl="Hoe lang bewaren ze het?"),
        say(en="  Until {date}", nl="  Tot {date}", date=keep)
        + (f" ({purpose.retention.description.text(tongue)})"
           if purpose.retention.description else ""),
        say(en="Their processing activity: {id}", nl="Verwerking in hun register: {id}",
            id=purpose.processing_activity),
        say(en="This request is valid until {when}.", nl="Dit verzoek is geldig tot {when}.",
            when=when_label(request.expires_at)),
        "",
    ]
    grant = _grant_terms(request)
    if grant is not None:
        lines += [say(en="ONGOING ACCESS: they ask to keep reading this until {day}, whenever "
                         "they need it. You can stop it at any moment.",
                      nl="DOORLOPENDE INZAGE: ze vragen dit tot {day} te mogen blijven inzien, "
                         "wanneer zij het nodig hebben. U kunt dit op elk moment stoppen.",
                      day=format_date(grant.valid_until.astimezone().date(), tongue)), ""]
    if evaluation.block is not None:
        lines += [say(en="BLOCKED", nl="TEGENGEHOUDEN"),
                  f"  {evaluation.block.explanation.text(tongue)}", ""]
    if evaluation.status is Status.EXPIRED:
        lines += [say(en="This request has expired. Nothing can be shared.",
                      nl="Dit verzoek is verlopen. Er kan niets gedeeld worden."), ""]
    lines += _what(evaluation)
    if evaluation.warnings:
        lines += [say(en="Please note:", nl="Let op:")]
        lines += [f"  ! {w.text.text(tongue)}" for w in evaluation.warnings]
        lines.append("")
    if stored.state.value == "pending" and evaluation.status is Status.READY and grant:
        lines += [say(en="What can you do?", nl="Wat kunt u doen?"),
                  f"  kluis grant approve {stored.id}", f"  kluis request refuse {stored.id}"]
    elif stored.state.value == "pending" and evaluation.status is Status.READY:
        lines += [say(en="What can you do?", nl="Wat kunt u doen?"),
                  f"  kluis request approve {stored.id}"
                  + ("" if network else " --out "
                     + say(en="answer.json", nl="antwoord.json")),
                  f"  kluis request refuse {stored.id}"]
    elif stored.state.value == "pending" and evaluation.status is Status.UNMATCHED:
        lines += [say(en="You can only refuse:", nl="U kunt alleen weigeren:"),
                  f"  kluis request refuse {stored.id}"]
    return lines


def _grant_terms(request: Request) -> GrantElement | None:
    """The grant terms of a grant request (``specs/grant.md`` §3), or None; a malformed
    element shows as none here (approving it says why)."""
    try:
        return grant_element(request)
    except KluisError:
        return None


def _what(evaluation: Evaluation) -> list[str]:
    tongue = lang()
    if evaluation.status is not Status.READY:
        lines = [say(en="What do they ask for?", nl="Wat vragen ze?")]
        for ref in evaluation.requested_claims():
            label = claim_label(ref.vct, ref.path)[tongue]
            lines.append(f"  - {label} ({type_name(ref.vct).text(tongue)})")
        return [*lines, ""]
    lines = [say(en="What will be shared?", nl="Wat wordt er gedeeld?")]
    for line in evaluation.lines:
        optional = say(en=" — optional, you may leave it out (--skip {q})",
                       nl=" — niet verplicht, u mag het weglaten (--skip {q})",
                       q=line.query_id) if line.optional else ""
        lines.append(say(en="  From your {kind} ({issuer}){opt}:",
                         nl="  Uit uw {kind} ({issuer}){opt}:",
                         kind=type_name(line.vct).text(tongue), issuer=line.issuer.text(tongue),
                         opt=optional))
        for claim in line.claims:
            if claim.always:
                continue
            mark = say(en="  (optional: --leave-out {p})", nl="  (niet verplicht: --leave-out {p})",
                       p=path_text(claim.path)) if claim.optional else ""
            value = format_value(line.vct, claim.path, claim.value)
            lines.append(f"    {claim.label.text(tongue)}: {value}{mark}")
        always = [c for c in line.claims if c.always]
        if always:
            lines.append(say(en="    Always shared with it:", nl="    Gaat altijd mee:"))
            lines += [f"      {c.label.text(tongue)}: {format_value(line.vct, c.path, c.value)}"
                      for c in always]
    return [*lines, ""]


def screen_json(evaluation: Evaluation, stored: StoredRequest) -> dict[str, Any]:
    """The consent screen as data (``--json``): everything shown, in both languages."""
    request, purpose = evaluation.request, evaluation.request.purpose
    return {
        "id": stored.id,
        "state": stored.state.value,
        "status": evaluation.status.value,
        "verifier": {"client_id": request.client_id, "name": evaluation.verifier_name().json(),
                     "registered": evaluation.registered,
                     "on_trust_list": evaluation.verifier is not None},
        "purpose": {"id": purpose.purpose_id, "dpv": purpose.dpv,
                    "description": purpose.description.model_dump()},
        "legal_basis": purpose.legal_basis.model_dump(exclude_none=True),
        "retention": {"duration": purpose.retention.duration,
                      "until": evaluation.keep_until.isoformat(),
                      **({"description": purpose.retention.description.model_dump()}
                         if purpose.retention.description else {})},
        "processing_activity": purpose.processing_activity,
        "expires_at": request.expires_at.isoformat(),
        "signed": request.signed,
        "block": None if evaluation.block is None else {
            "reason": evaluation.block.reason.value,
            "explanation": evaluation.block.explanation.json(),
            "claims": [{"vct": r.vct, "path": list(r.path)}
                       for r in evaluation.block.over_asked],
        },
        "credentials": [
            {"query_id": line.query_id, "credential": line.credential.id, "vct": line.vct,
             "type": type_name(line.vct).json(), "issuer": line.issuer.json(),
             "optional": line.optional,
             "claims": [{"path": list(c.path), "label": c.label.json(), "value": c.value,
                         "always": c.always, "optional": c.optional} for c in line.claims]}
            for line in evaluation.lines
        ],
        "missing": list(evaluation.missing),
        "warnings": [{"code": w.code, "text": w.text.json()} for w in evaluation.warnings],
    }


def register(app: typer.Typer) -> None:
    app.add_typer(group)
