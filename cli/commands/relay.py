"""``kluis relay``: your mailbox at a relay, where agencies leave their requests.

``register --relay URL`` makes the mailbox (its key stays in your vault); ``address AGENCY``
gives the pairwise address for one agency on your trust list (give it to that agency, and to
no one else); ``show`` lists the relay and the addresses handed out. ``kluis inbox`` reads the
mailbox.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json
from wallet import (
    AgencyAddress,
    HttpxTransport,
    agency_address,
    agency_addresses,
    register_relay,
    relay_account,
    trust_list,
)

group = typer.Typer(
    name="relay",
    help="Your mailbox for requests from agencies. / Uw postbus voor verzoeken van organisaties.",
    no_args_is_help=True,
)


def _address_json(address: AgencyAddress) -> dict[str, Any]:
    return {"agency": address.agency, "address": address.address, "url": address.url,
            "created": address.created.isoformat()}


@group.command("register")
def register_command(
    relay: Annotated[str, typer.Option("--relay", help="The relay's URL. / Adres van de relay.")],
    json_output: JsonOption = False,
) -> None:
    """Open your mailbox at a relay. / Open uw postbus bij een relay."""
    with context.wallet() as wallet, HttpxTransport() as transport:
        account = register_relay(wallet.vault, relay, transport=transport, now=context.now())
    if json_output:
        emit_json({"relay": account.url, "mailbox": account.mailbox})
        return
    console.print(say(
        en="Your mailbox at {relay} is ready. Give each agency its own address with "
           "'kluis relay address AGENCY'.",
        nl="Uw postbus bij {relay} is klaar. Geef elke organisatie een eigen adres met "
           "'kluis relay address ORGANISATIE'.",
        relay=account.url), markup=False)


@group.command("address")
def address_command(
    agency: Annotated[str, typer.Argument(help="The agency's id on your trust list. / Id van "
                                               "de organisatie op uw vertrouwenslijst.")],
    json_output: JsonOption = False,
) -> None:
    """The address to give to one agency. / Het adres voor één organisatie."""
    with context.wallet() as wallet, HttpxTransport() as transport:
        now = context.now()
        known = trust_list(wallet.vault, now=now).agency(agency)
        address = agency_address(wallet.vault, known.id, transport=transport, now=now)
    if json_output:
        emit_json(_address_json(address))
        return
    console.print(say(
        en="Give this address to {name} only:", nl="Geef dit adres alleen aan {name}:",
        name=known.name(lang())), markup=False)
    console.print(address.url, markup=False)


@group.command("show")
def show_command(json_output: JsonOption = False) -> None:
    """Your relay and the addresses you handed out. / Uw relay en de uitgegeven adressen."""
    with context.wallet() as wallet:
        account = relay_account(wallet.vault)
        addresses = agency_addresses(wallet.vault)
    if json_output:
        emit_json({"relay": account.url, "mailbox": account.mailbox,
                   "registered": account.registered.isoformat(),
                   "addresses": [_address_json(a) for a in addresses]})
        return
    console.print(say(en="Relay: {url}", nl="Relay: {url}", url=account.url), markup=False)
    if not addresses:
        console.print(say(en="No addresses handed out yet.", nl="Nog geen adressen uitgegeven."))
        return
    table = Table(say(en="agency", nl="organisatie"), say(en="address", nl="adres"))
    for address in addresses:
        table.add_row(address.agency, address.url)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
