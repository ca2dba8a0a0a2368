"""``kluis agency fetch`` and ``kluis agency grant-keys``: an agency reads an item a citizen
granted it (``specs/grant.md`` §5, §7), and makes the keys it reads with.

``fetch`` reads the grant notice the citizen's wallet sent (``NOTICE.json``), signs the fetch
with the agency's Ed25519 key (``--key``, the private half of the key registered on the trust
list), opens the sealed item with its X25519 key (``--encryption-key``), checks it was signed
by the grant's key from the notice, writes the content (``--out``, or standard output for text
and JSON) and keeps a signed receipt of the fetch: one line per fetch appended to
``--receipts`` (default ``grant-receipts.jsonl`` beside the notice), naming the relay's fetch
id that the citizen's log names too.

``grant-keys`` writes a new Ed25519 key (fetches) and X25519 key (sealing) as JWK files, with
their public halves beside them for the trust list's ``jwks`` and ``encryption_jwks``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context, file
from cli.commands.agency import group
from cli.commands.profile import JsonOption
from cli.lang import say
from cli.output import console, emit_json
from vault import FileExists, InvalidInput
from verifiers.grant_fetch import Fetched, fetch_item
from verifiers.grant_notice import parse_grant_notice
from verifiers.jws import (
    Alg,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_private_jwk,
)
from verifiers.sealed_item import (
    EncryptionKey,
    format_encryption_jwk,
    parse_private_encryption_jwk,
)
from wallet import HttpxTransport

_TEXT = ("text/", "application/json")


class UnknownItem(InvalidInput):
    code = "grant.unknown_item"
    en = "The grant notice has no item '{item}'. Its items are: {items}."
    nl = "De melding van de machtiging heeft geen gegeven '{item}'. De gegevens zijn: {items}."


class BinaryNeedsOut(InvalidInput):
    code = "grant.needs_out"
    en = "This item is a document ({media_type}). Write it to a file with --out FILE."
    nl = "Dit gegeven is een document ({media_type}). Schrijf het naar een bestand met --out."


@group.command("fetch")
def fetch(
    notice_path: Annotated[Path, typer.Argument(metavar="NOTICE.json",
                                                help="The grant notice from the citizen.")],
    item: Annotated[str, typer.Option("--item", help="Which item to read. / Welk gegeven.")],
    key: Annotated[Path, typer.Option("--key", help="The agency's private Ed25519 JWK.")],
    encryption_key: Annotated[Path, typer.Option(
        "--encryption-key", help="The agency's private X25519 JWK.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the content here (new).")]
    = None,
    receipts: Annotated[Path | None, typer.Option(
        "--receipts", help="Receipts file (default: grant-receipts.jsonl beside the notice).")]
    = None,
    json_output: JsonOption = False,
) -> None:
    """Read a granted item with the agency's keys. / Lees een gedeeld gegeven in."""
    notice = parse_grant_notice(file.read_bytes(notice_path))
    if notice.item(item) is None:
        raise UnknownItem(item=item[:64], items=", ".join(i.id for i in notice.items))
    signing = parse_private_jwk(file.read_json(key))
    sealing = parse_private_encryption_jwk(file.read_json(encryption_key))
    with HttpxTransport() as transport:
        fetched = fetch_item(transport, notice.relay, notice.grant, item, agency=notice.agency,
                             signing_key=signing, encryption_key=sealing,
                             wallet_key=notice.verifying_key(), now=context.now())
    _keep_receipt(receipts or notice_path.parent / "grant-receipts.jsonl", fetched)
    content = fetched.item
    if out is not None:
        file.write_new(out, content.content)
    if json_output:
        emit_json(_fetched_json(fetched, out))
        return
    if out is None:
        if not content.media_type.startswith(_TEXT):
            raise BinaryNeedsOut(media_type=content.media_type)
        sys.stdout.write(content.content.decode("utf-8", "replace") + "\n")
        return
    console.print(say(
        en="Read '{item}' version {v} of grant {grant} ({size} bytes) into {path}; fetch {f}.",
        nl="'{item}' versie {v} van machtiging {grant} ({size} bytes) ingezien in {path}; "
           "inzage {f}.",
        item=item, v=content.version, grant=notice.grant[:8], size=len(content.content),
        path=str(out), f=fetched.answer.fetch_id), markup=False)


@group.command("grant-keys")
def grant_keys(
    out_dir: Annotated[Path, typer.Argument(metavar="FOLDER", help="Where to write the keys.")],
    kid: Annotated[str, typer.Option("--kid", help="Key id prefix, e.g. utrecht-grants.")]
    = "grants",
) -> None:
    """Make the agency's keys for grants. / Maak de sleutels voor inzage."""
    signing = generate_signing_key(Alg.EDDSA, kid=kid)
    sealing = EncryptionKey.generate()
    files: dict[str, dict[str, Any]] = {
        "grant-fetch.jwk": format_private_jwk(signing),
        "grant-fetch.pub.jwk": format_jwk(signing.public),
        "grant-encryption.jwk": format_encryption_jwk(sealing, kid=f"{kid}-x25519",
                                                      private=True),
        "grant-encryption.pub.jwk": format_encryption_jwk(sealing, kid=f"{kid}-x25519"),
    }
    for name, jwk in files.items():
        path = out_dir / name
        file.write_new(path, (json.dumps(jwk, indent=2) + "\n").encode())
        if not name.endswith(".pub.jwk"):
            path.chmod(0o600)
    console.print(say(
        en="Wrote the grant keys to {dir}. Put grant-fetch.pub.jwk in the agency's jwks and "
           "grant-encryption.pub.jwk in its encryption_jwks on the trust list.",
        nl="De sleutels voor inzage staan in {dir}. Zet grant-fetch.pub.jwk in de jwks van de "
           "organisatie en grant-encryption.pub.jwk in haar encryption_jwks op de "
           "vertrouwenslijst.", dir=str(out_dir)), markup=False)


def _keep_receipt(path: Path, fetched: Fetched) -> None:
    """Append one receipt line; the file is locked and replaced whole, so lines never mix."""
    line = json.dumps({"fetch": fetched.answer.fetch_id, "grant": fetched.answer.grant,
                       "item": fetched.answer.item, "receipt": fetched.receipt},
                      separators=(",", ":")) + "\n"
    if not path.exists():
        try:
            file.write_new(path, line.encode())
            return
        except FileExists:
            pass  # another fetch made it just now: append below
    with file.locked(path) as old:
        file.replace(path, old + line.encode())


def _fetched_json(fetched: Fetched, out: Path | None) -> dict[str, Any]:
    item = fetched.item
    data: dict[str, Any] = {
        "grant": item.grant, "item": item.item, "version": item.version,
        "media_type": item.media_type, "size": len(item.content), "sha256": item.sha256,
        "fetch": fetched.answer.fetch_id, "fetched_at": fetched.answer.fetched_at.isoformat(),
        "receipt": fetched.receipt,
    }
    if out is not None:
        data["out"] = str(out)
    elif item.media_type.startswith(_TEXT):
        data["content"] = item.content.decode("utf-8", "replace")
    return data


def register(app: typer.Typer) -> None:
    """Add ``fetch`` and ``grant-keys`` to the ``agency`` group (``cli.commands.agency``)."""
