"""``kluis inbox``: collect the requests agencies left at your relay, check them, keep them in
your vault, and list the ones waiting for your decision.

Each request is fetched from the agency and checked (signature, certificate, trust list)
before it is kept; kluis blocks, and logs, a request from an agency that is not registered or
that asks for more than it may. Decide with ``kluis request show|approve|refuse ID``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context
from cli.commands.profile import JsonOption
from cli.commands.request import state_label, when_label
from cli.lang import lang, say
from cli.output import console, emit_json
from wallet import (
    HttpxTransport,
    InboxItem,
    State,
    StoredRequest,
    Wallet,
    arrived_by_network,
    collect,
    mailbox_client,
)


def _item_json(item: InboxItem) -> dict[str, Any]:
    evaluation = item.evaluation
    return {
        "message": item.message_id,
        "address_agency": item.address_agency,
        "foreign": item.foreign,
        "request": evaluation.request.id if evaluation else None,
        "status": evaluation.status.value if evaluation else None,
        "error": item.error,
        "acked": item.acked,
    }


def _pending_json(stored: StoredRequest) -> dict[str, Any]:
    request = stored.request
    name = stored.verifier.en or request.client_id
    return {"id": stored.id, "state": stored.state.value,
            "verifier": {"client_id": request.client_id,
                         "name": {"nl": stored.verifier.nl or name, "en": name}},
            "purpose": request.purpose.purpose_id,
            "purpose_text": request.purpose.description.model_dump(),
            "expires_at": request.expires_at.isoformat()}


def _network_requests(wallet: Wallet, new: set[str]) -> list[StoredRequest]:
    """Requests from the network still waiting, plus every one that came in just now."""
    return [s for s in wallet.consent.requests()
            if arrived_by_network(wallet.vault, s.id)
            and (s.state is State.PENDING or s.id in new)]


def inbox(
    json_output: JsonOption = False,
    wait: Annotated[float, typer.Option(
        "--wait", min=0, max=120,
        help="Seconds to wait for a new request. / Seconden wachten op een nieuw verzoek.")] = 0.0,
) -> None:
    """Collect new requests and list those waiting for you. / Haal nieuwe verzoeken op en
    toon de verzoeken die op u wachten."""
    with context.wallet() as wallet, HttpxTransport(timeout=wait + 15) as transport:
        client = mailbox_client(wallet.vault, transport=transport)
        collected = collect(wallet.vault, wallet.consent, client, transport=transport,
                            wait=wait, clock=context.now)
        new = {i.evaluation.request.id for i in collected.items if i.evaluation is not None}
        listed = _network_requests(wallet, new)
    if json_output:
        emit_json({"new": [_item_json(i) for i in collected.items],
                   "skipped": collected.skipped,
                   "requests": [_pending_json(s) for s in listed]})
        return
    _print_new(collected.items)
    if not listed:
        console.print(say(en="No requests are waiting for you.",
                          nl="Er wachten geen verzoeken op u."))
        return
    table = Table(say(en="id", nl="nummer"), say(en="from", nl="van"),
                  say(en="purpose", nl="doel"), say(en="state", nl="status"),
                  say(en="valid until", nl="geldig tot"))
    for stored in listed:
        name = (stored.verifier.en if lang() == "en" else stored.verifier.nl) \
            or stored.request.client_id
        table.add_row(stored.id, name, stored.request.purpose.description.text(lang()),
                      state_label(stored.state.value), when_label(stored.request.expires_at))
    console.print(table)
    console.print(say(en="See a request with 'kluis request show ID'.",
                      nl="Bekijk een verzoek met 'kluis request show NUMMER'."), markup=False)


def _print_new(items: tuple[InboxItem, ...]) -> None:
    for item in items:
        if item.error is not None:
            line = say(en="A message could not be read as a request ({code}).",
                       nl="Een bericht kon niet als verzoek worden gelezen ({code}).",
                       code=item.error)
            if not item.acked:
                line += say(en=" kluis tries again next time.",
                            nl=" kluis probeert het de volgende keer opnieuw.")
            console.print(line, markup=False)
        elif item.foreign:
            console.print(say(
                en="Note: request {id} came to the address you gave to {agency}, from another "
                   "organisation. Someone passed your address on.",
                nl="Let op: verzoek {id} kwam binnen op het adres dat u aan {agency} gaf, maar "
                   "van een andere organisatie. Iemand heeft uw adres doorgegeven.",
                id=item.evaluation.request.id if item.evaluation else "?",
                agency=item.address_agency), markup=False)


def register(app: typer.Typer) -> None:
    app.command("inbox")(inbox)
