"""``kluis agency request`` and ``kluis agency received``: an agency asks a citizen for data
through its verifier service (specs/openid4vp.md), and reads what it received.

``request`` asks the agency's verifier back office (``--verifier URL``, or ``verifier_admin_url``
in ``--agency-config FILE``) for a new signed request, then posts its ``openid4vp://`` link to
the citizen's relay address (``--to``, the URL the citizen got from ``kluis relay address``).
What to ask is ``--claims TYPE:PATH,PATH`` (repeat per credential type; TYPE is a type name
such as ``personal-data``) or a DCQL query in ``--dcql FILE``. Both commands are thin: the
service signs, keeps and verifies; this only carries the request and shows the answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import file
from cli.commands.agency import group
from cli.commands.profile import JsonOption
from cli.commands.request import parse_path
from cli.lang import lang, say
from cli.output import console, emit_json, err_console
from vault import InvalidInput, NotPermitted
from verifiers.claim_path import format_claim_path
from verifiers.credential_type import FILES, label
from wallet import URI_LIST, HttpxTransport, Response, Transport
from wallet.wording import type_name

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


class ServiceRefused(NotPermitted):
    code = "cli.service_refused"
    en = "The service refused the call ({problem}). Check the address and what you sent."
    nl = "De dienst weigerde de aanvraag ({problem}). Controleer het adres en wat u stuurde."


class NoVerifier(InvalidInput):
    code = "cli.no_verifier"
    en = "Say which verifier service to use: --verifier URL or --agency-config FILE."
    nl = "Zeg welke controledienst u gebruikt: --verifier URL of --agency-config BESTAND."


VerifierOption = Annotated[str | None, typer.Option(
    "--verifier", help="The verifier's back office URL. / Adres van de backoffice.")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--agency-config", help="JSON file with verifier_admin_url. / JSON-bestand met "
                            "verifier_admin_url.")]


def admin_url(verifier: str | None, agency_config: Path | None) -> str:
    """The back office URL: ``--verifier``, else ``verifier_admin_url`` in the config file.
    Raises ``cli.no_verifier``, ``cli.bad_json``."""
    if verifier:
        return verifier.rstrip("/")
    if agency_config is not None:
        config = file.read_json(agency_config)
        url = config.get("verifier_admin_url") if isinstance(config, dict) else None
        if isinstance(url, str) and url:
            return url.rstrip("/")
    raise NoVerifier()


def dcql_of(claims: list[str]) -> dict[str, Any]:
    """A DCQL query from ``TYPE:PATH,PATH`` arguments: one credential query per type, named
    after it, asking for each path (``address.postal_code``)."""
    by_name = {stem: vct for vct, stem in FILES.items()}
    credentials = []
    for argument in claims:
        name, _, paths = argument.partition(":")
        vct = by_name.get(name.strip(), name.strip())
        if vct not in FILES or not paths.strip():
            raise typer.BadParameter(say(
                en="use TYPE:PATH,PATH with TYPE one of {types}",
                nl="gebruik TYPE:PAD,PAD met TYPE een van {types}",
                types=", ".join(sorted(by_name))), param_hint="--claims")
        credentials.append({
            "id": FILES[vct], "format": "dc+sd-jwt", "meta": {"vct_values": [vct]},
            "claims": [{"path": format_claim_path(parse_path(p))}
                       for p in paths.split(",") if p.strip()],
        })
    return {"credentials": credentials}


def call(transport: Transport, method: str, url: str, payload: Any = None) -> Any:
    """One JSON call to an agency service or the relay; its JSON answer. Raises
    ``cli.service_refused`` with the service's problem code, ``transport.unreachable``."""
    body = b"" if payload is None else json.dumps(payload).encode()
    answer = transport.request(method, url, headers=_JSON, body=body, timeout=30)
    if answer.status >= 300:
        raise _refusal(answer)
    return json.loads(answer.body) if answer.body else {}


def _refusal(answer: Response) -> ServiceRefused:
    try:
        problem = json.loads(answer.body)
    except ValueError:
        problem = {}
    problem = problem if isinstance(problem, dict) else {}
    title = str(problem.get("title") or "")[:300]
    return ServiceRefused(f"HTTP {answer.status}" + (f": {title}" if title else ""),
                          problem=str(problem.get("code") or f"HTTP {answer.status}")[:80])


@group.command("request")
def request_command(
    to: Annotated[str, typer.Option("--to", help="The citizen's relay address URL. / "
                                                  "Het relay-adres van de burger.")],
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="A registered purpose id. / Een geregistreerd doel.")] = None,
    claims: Annotated[list[str] | None, typer.Option(
        "--claims", help="TYPE:PATH,PATH, e.g. personal-data:given_name,address (repeat).")
    ] = None,
    dcql: Annotated[Path | None, typer.Option(
        "--dcql", help="A DCQL query, or a template {purpose, dcql_query}, as a JSON file.")
    ] = None,
    verifier: VerifierOption = None,
    agency_config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ask a citizen for data through their relay. / Vraag een burger om gegevens via de
    relay."""
    admin = admin_url(verifier, agency_config)
    template = file.read_json(dcql) if dcql is not None else {}
    if not isinstance(template, dict):
        raise typer.BadParameter(say(en="not a JSON object", nl="geen JSON-object"),
                                 param_hint="--dcql")
    query = template.get("dcql_query", template if "credentials" in template else None)
    if claims:
        query = dcql_of(claims)
    chosen = purpose or template.get("purpose")
    if not query or not chosen:
        raise typer.BadParameter(say(en="give --purpose and --claims (or --dcql)",
                                     nl="geef --purpose en --claims (of --dcql)"))
    with HttpxTransport() as transport:
        created = call(transport, "POST", f"{admin}/requests",
                       {"purpose": chosen, "dcql_query": query})
        posted = call(transport, "POST", to, {"content_type": URI_LIST, "body": created["uri"]})
    if json_output:
        emit_json({**created, "message": posted.get("id")})
        return
    for claim in created.get("over_asked", []):
        err_console.print(say(
            en="Warning: '{claim}' is beyond your registration; wallets will block this request.",
            nl="Let op: '{claim}' valt buiten uw registratie; wallets houden dit verzoek tegen.",
            claim=claim), markup=False)
    console.print(say(
        en="Request {id} sent to the citizen's mailbox. It is valid until {until}.",
        nl="Verzoek {id} staat in de postbus van de burger. Het is geldig tot {until}.",
        id=created["id"], until=created["expires_at"]), markup=False)


@group.command("received")
def received_command(
    verifier: VerifierOption = None,
    agency_config: ConfigOption = None,
    request_id: Annotated[str | None, typer.Option(
        "--request", help="Only this request. / Alleen dit verzoek.")] = None,
    json_output: JsonOption = False,
) -> None:
    """What the agency received (verified and kept). / Wat de organisatie ontving."""
    admin = admin_url(verifier, agency_config)
    url = f"{admin}/received" + (f"?request_id={request_id}" if request_id else "")
    with HttpxTransport() as transport:
        items = call(transport, "GET", url).get("received", [])
    if json_output:
        emit_json(items)
        return
    if not items:
        console.print(say(en="Nothing received yet.", nl="Nog niets ontvangen."))
        return
    table = Table(say(en="received", nl="ontvangen"), say(en="request", nl="verzoek"),
                  say(en="document", nl="document"), say(en="data", nl="gegevens"))
    for item in items:
        names = [label(item["vct"], tuple(json.loads(path)), lang()) for path in item["claims"]]
        table.add_row(item["received_at"], item["request_id"],
                      type_name(item["vct"]).text(lang()), ", ".join(names))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``request`` and ``received`` to the ``agency`` group (``cli.commands.agency``)."""
