"""``kluis credential``: your holder key (``key``), and the documents in your wallet
(``import``, ``list``, ``show``). This is your own screen, so values are shown."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context, file
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json, err_console
from vault import KluisError
from verifiers import TrustAnchor, credential_type, verify_trust_list
from verifiers.jws import Alg, parse_jwk
from verifiers.verifier import IssuerKeys
from wallet import PinnedIssuerKey, StoredCredential, find_credential, holder_key, list_credentials
from wallet.trust import anchor_name_of, trust_list
from wallet.wording import format_date, type_name

group = typer.Typer(
    name="credential",
    help="The documents in your wallet. / De documenten in uw wallet.",
    no_args_is_help=True,
)

_DATES = frozenset({"iat", "exp", "nbf"})


def format_value(vct: str, path: tuple[Any, ...], value: Any) -> str:
    """A claim's value as a citizen reads it: dates written out, an object (an address) on
    one line with its parts in the type's order, the holder key as 'your key'."""
    name = path[-1] if path else ""
    if len(path) == 1 and name in _DATES and type(value) is int:
        return format_date(datetime.fromtimestamp(value, UTC).date(), lang())
    if path == ("cnf",):
        return say(en="your key", nl="uw sleutel")
    if path == ("vct",) and isinstance(value, str):
        return type_name(value).text(lang())
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: _rank(vct, (*path, k)))
        return ", ".join(format_value(vct, (*path, k), value[k]) for k in keys)
    if isinstance(value, list):
        return ", ".join(format_value(vct, (*path, i), v) for i, v in enumerate(value))
    return str(value)


def _rank(vct: str, path: tuple[Any, ...]) -> int:
    """Where the type metadata lists the claim at ``path`` (unknown claims last)."""
    try:
        claims = credential_type(vct).claims
    except KluisError:
        return 0
    return next((n for n, info in enumerate(claims) if info.path == path), len(claims))


def credential_json(stored: StoredCredential, *, with_claims: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": stored.id,
        "vct": stored.vct,
        "type": type_name(stored.vct).json(),
        "issuer": stored.issuer,
        "received": stored.received.isoformat(),
        "expires": stored.expires.isoformat() if stored.expires else None,
    }
    if with_claims:
        out["claims"] = [
            {"path": list(v.path), "label": dict(v.label), "value": v.value,
             "disclosable": v.disclosable}
            for v in stored.views()
        ]
    return out


@group.command("key")
def key(
    alg: Annotated[str, typer.Option("--alg", help="ES256 (default) or EdDSA.")] = "ES256",
    json_output: JsonOption = False,
) -> None:
    """Print your holder key's PUBLIC half, for an issuer to bind documents to.
    / Toon het PUBLIEKE deel van uw sleutel."""
    if alg not in ("ES256", "EdDSA"):
        raise typer.BadParameter(say(en="use ES256 or EdDSA", nl="gebruik ES256 of EdDSA"),
                                 param_hint="--alg")
    with context.wallet() as wallet:
        found = holder_key(wallet.vault, Alg(alg), now=context.now())
    jwk = found.public_jwk()
    if json_output:
        emit_json({"kid": found.kid, "alg": found.alg.value, "jwk": jwk})
        return
    sys.stdout.write(json.dumps(jwk) + "\n")
    err_console.print(say(
        en="This is the public half of your key: give it to an issuer to bind a document to "
           "you. The private half never leaves your vault.",
        nl="Dit is het publieke deel van uw sleutel: geef het aan een uitgever om een document "
           "aan u te binden. Het geheime deel verlaat uw kluis nooit.",
    ), markup=False)


@group.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="The SD-JWT VC ('-': standard input).")],
    issuer_key: Annotated[
        Path | None,
        typer.Option("--issuer-key", help="For developers: trust this issuer public key."),
    ] = None,
    trust_list_file: Annotated[
        Path | None, typer.Option("--trust-list", help="Check against this signed trust list.")
    ] = None,
    trust_anchor: Annotated[
        Path | None, typer.Option("--trust-anchor", help="The anchor's public key (JWK).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check a document and keep it in your wallet. / Controleer een document en bewaar het."""
    token = file.read_bytes(path).decode("ascii", "replace").strip()
    now = context.now()
    with context.wallet() as wallet:
        keys = _issuer_keys(issuer_key, trust_list_file, trust_anchor, now) or trust_list(
            wallet.vault, now=now)
        stored = wallet.receive_credential(token, now=now, issuer_keys=keys)
    if json_output:
        emit_json(credential_json(stored, with_claims=False))
        return
    console.print(say(
        en="Stored: {kind} from {issuer} (id {id}).",
        nl="Bewaard: {kind} van {issuer} (nummer {id}).",
        kind=type_name(stored.vct).text(lang()), issuer=stored.issuer, id=stored.id,
    ), markup=False)


def _issuer_keys(
    issuer_key: Path | None, listed: Path | None, anchor: Path | None, now: datetime
) -> IssuerKeys | None:
    if issuer_key is not None and (listed or anchor):
        raise typer.BadParameter(say(en="use --issuer-key or --trust-list, not both",
                                     nl="gebruik --issuer-key of --trust-list, niet beide"))
    if issuer_key is not None:
        return PinnedIssuerKey(parse_jwk(file.read_json(issuer_key)))
    if (listed is None) != (anchor is None):
        raise typer.BadParameter(say(en="--trust-list goes with --trust-anchor",
                                     nl="--trust-list hoort bij --trust-anchor"))
    if listed is None or anchor is None:
        return None
    signed = file.read_bytes(listed).decode("ascii", "replace").strip()
    key = TrustAnchor.from_jwk(anchor_name_of(signed), file.read_public_jwk(anchor))
    return verify_trust_list(signed, key, now=now)


@group.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List the documents in your wallet. / Toon de documenten in uw wallet."""
    with context.wallet() as wallet:
        held = list_credentials(wallet.vault)
    if json_output:
        emit_json([credential_json(c, with_claims=False) for c in held])
        return
    if not held:
        console.print(say(en="Your wallet holds no documents yet.",
                          nl="Uw wallet bevat nog geen documenten."))
        return
    table = Table(say(en="id", nl="nummer"), say(en="document", nl="document"),
                  say(en="issuer", nl="uitgever"), say(en="valid until", nl="geldig tot"))
    for stored in held:
        until = format_date(stored.expires.date(), lang()) if stored.expires else "-"
        table.add_row(stored.id, type_name(stored.vct).text(lang()), stored.issuer, until)
    console.print(table)


@group.command("show")
def show(
    ident: Annotated[str, typer.Argument(help="The document's id (or its start).")],
    json_output: JsonOption = False,
) -> None:
    """Show one document with all its data. / Toon één document met al zijn gegevens."""
    with context.wallet() as wallet:
        stored = find_credential(wallet.vault, ident)
    if json_output:
        emit_json(credential_json(stored, with_claims=True))
        return
    console.print(f"{type_name(stored.vct).text(lang())} ({stored.id})", markup=False)
    console.print(say(en="Issued by: {iss}", nl="Uitgegeven door: {iss}", iss=stored.issuer),
                  markup=False)
    if stored.expires:
        console.print(say(en="Valid until: {d}", nl="Geldig tot: {d}",
                          d=format_date(stored.expires.date(), lang())), markup=False)
    for view in stored.views():
        mark = "" if view.disclosable else say(en="  (always shared)", nl="  (gaat altijd mee)")
        text = format_value(stored.vct, view.path, view.value)
        console.print(f"  {view.label[lang()]}: {text}{mark}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
