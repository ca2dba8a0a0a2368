"""``kluis credential receive OFFER``: fetch the documents an agency offers you over
OpenID4VCI (specs/openid4vci.md) and keep them in your wallet.

Joins the ``credential`` group of ``cli.commands.credential``; its own module keeps the
network client apart from the wallet's local commands.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli import context
from cli.commands.credential import credential_json, group
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json, err_console
from wallet import (
    CredentialOffer,
    HttpxTransport,
    OfferReference,
    StoredCredential,
    fetch_credential_offer,
    holder_key,
    parse_credential_offer,
    redeem_offer,
    signing_key,
)
from wallet.wording import type_name


def _offer_text(offer: str) -> str:
    return sys.stdin.read() if offer == "-" else offer


def _ask_tx_code(offer: CredentialOffer) -> str | None:
    """The transaction code: ``--tx-code``, else ``KLUIS_TX_CODE``, else asked, after saying
    which address will receive it (OpenID4VCI §13.6.2: the citizen can check it)."""
    if offer.tx_code is None:
        return None
    spec = offer.tx_code
    err_console.print(say(
        en="{issuer} asks for the code it sent you separately.",
        nl="{issuer} vraagt om de code die u apart kreeg.",
        issuer=offer.credential_issuer,
    ), markup=False)
    if spec.description:
        err_console.print(spec.description, markup=False)
    return context.tx_code(say(en="Code", nl="Code"))


def receive(
    offer: Annotated[str, typer.Argument(
        help="The offer: an openid-credential-offer:// link, the text of its QR code, or its "
             "JSON ('-': standard input).")],
    tx_code: Annotated[
        str | None,
        typer.Option("--tx-code", help="The code the issuer sent you separately "
                                       "(else KLUIS_TX_CODE, else asked)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Fetch the documents an agency offers you and keep them in your wallet.
    / Haal de documenten op die een organisatie u aanbiedt en bewaar ze in uw wallet."""
    parsed = parse_credential_offer(_offer_text(offer))
    with HttpxTransport() as transport:
        if isinstance(parsed, OfferReference):
            parsed = fetch_credential_offer(parsed, transport=transport)
        code = tx_code if tx_code is not None or parsed.tx_code is None else _ask_tx_code(parsed)
        with context.wallet() as wallet:
            now = context.now()
            public = holder_key(wallet.vault, now=now).public
            stored: list[StoredCredential] = redeem_offer(
                parsed, transport=transport, tx_code=code,
                holder_key=signing_key(wallet.vault, public),
                receive=lambda token: wallet.receive_credential(token, now=context.now()),
                clock=context.now,
            )
    if json_output:
        emit_json([credential_json(item, with_claims=False) for item in stored])
        return
    for item in stored:
        console.print(say(
            en="Stored: {kind} from {issuer} (id {id}).",
            nl="Bewaard: {kind} van {issuer} (nummer {id}).",
            kind=type_name(item.vct).text(lang()), issuer=item.issuer, id=item.id,
        ), markup=False)


def register(app: typer.Typer) -> None:
    """Add ``receive`` to the ``credential`` group (which ``cli.commands.credential`` puts on
    the app)."""
    group.command("receive")(receive)
