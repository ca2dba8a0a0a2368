"""``kluis trust``: the trust list this wallet goes by (``set`` from a signed file and the
trust anchor's public key, ``show``). Every credential received and every request evaluated
is checked against it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context, file
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json
from verifiers import TrustAnchor
from wallet import StoredTrustList, set_trust_list, stored_trust_list
from wallet.trust import anchor_name_of, format_anchor
from wallet.wording import format_date

group = typer.Typer(
    name="trust",
    help="The trust list your wallet uses. / De vertrouwenslijst van uw wallet.",
    no_args_is_help=True,
)


def _summary(stored: StoredTrustList) -> dict[str, Any]:
    listed = stored.trust_list
    return {
        "list_id": listed.list_id,
        "issuer": listed.issuer,
        "sequence": listed.sequence,
        "issued_at": listed.issued_at.isoformat(),
        "next_update": listed.next_update.isoformat(),
        "stored": stored.stored.isoformat(),
        "anchor": format_anchor(stored.anchor),
        "agencies": [
            {"id": a.id, "names": {"nl": a.names.nl, "en": a.names.en},
             "roles": [r.value for r in a.roles],
             "purposes": [p.id for p in a.purposes or ()]}
            for a in listed.agencies
        ],
    }


def _print(stored: StoredTrustList) -> None:
    listed = stored.trust_list
    console.print(say(
        en="Trust list {id} (version {seq}), signed by {anchor}; valid until {until}.",
        nl="Vertrouwenslijst {id} (versie {seq}), ondertekend door {anchor}; geldig tot {until}.",
        id=listed.list_id, seq=listed.sequence, anchor=listed.issuer,
        until=format_date(listed.next_update.date(), lang()),
    ), markup=False)
    for agency in listed.agencies:
        roles = ", ".join(
            say(en="issues documents", nl="geeft documenten uit") if r.value == "issuer"
            else say(en="may ask for data", nl="mag gegevens vragen") for r in agency.roles
        )
        console.print(f"  - {agency.name(lang())} ({agency.id}): {roles}", markup=False)


@group.command("set")
def set_(
    path: Annotated[Path, typer.Argument(help="The signed trust list. / De ondertekende lijst.")],
    anchor: Annotated[
        Path,
        typer.Option("--anchor", help="The anchor's public key (JWK). / Sleutel van het anker."),
    ],
    anchor_name: Annotated[
        str | None,
        typer.Option("--anchor-name", help="The anchor's name (default: as the list says)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check a signed trust list and make it your wallet's. / Stel de vertrouwenslijst in."""
    signed = file.read_bytes(path).decode("ascii", "replace").strip()
    key = file.read_public_jwk(anchor)
    trust_anchor = TrustAnchor.from_jwk(anchor_name or anchor_name_of(signed), key)
    with context.wallet() as wallet:
        stored = set_trust_list(wallet.vault, signed, trust_anchor, now=context.now())
    if json_output:
        emit_json(_summary(stored))
        return
    console.print(say(en="The trust list is checked and set.",
                      nl="De vertrouwenslijst is gecontroleerd en ingesteld."))
    _print(stored)


@group.command("show")
def show(json_output: JsonOption = False) -> None:
    """Show your wallet's trust list. / Toon de vertrouwenslijst van uw wallet."""
    with context.wallet() as wallet:
        stored = stored_trust_list(wallet.vault, now=context.now())
    if json_output:
        emit_json(_summary(stored))
    else:
        _print(stored)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
