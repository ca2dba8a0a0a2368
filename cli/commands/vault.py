"""``kluis vault``: put, get, list and remove items; export and import the whole vault."""

from __future__ import annotations

import mimetypes
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context
from cli.commands.profile import JsonOption, show_recovery_code
from cli.lang import say
from cli.output import console, emit_json
from vault import (
    DEFAULT_MEDIA_TYPE,
    FileExists,
    InvalidInput,
    Item,
    ItemInfo,
    ItemType,
    ProfileExists,
    Vault,
    export_archive,
    import_archive,
)
from verifiers.log_entry import ExportKind, export_made

group = typer.Typer(
    name="vault",
    help="The items in your vault. / De gegevens in uw kluis.",
    no_args_is_help=True,
)

_TYPE_NAMES = {
    ItemType.ATTRIBUTE: ("attribute", "kenmerk"),
    ItemType.NOTE: ("note", "notitie"),
    ItemType.DOCUMENT: ("document", "document"),
}


class DocumentToTerminal(InvalidInput):
    code = "cli.document_to_terminal"
    en = "'{name}' is a document (a file). Save it with --out FILE, or send it to a pipe."
    nl = (
        "'{name}' is een document (een bestand). Sla het op met --out BESTAND, of stuur het"
        " naar een pipe."
    )


def type_name(kind: ItemType) -> str:
    en, nl = _TYPE_NAMES[kind]
    return say(en=en, nl=nl)


def _info_json(info: ItemInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "type": info.type.value,
        "media_type": info.media_type,
        "source": info.source,
        "added": info.added.isoformat(),
        "changed": info.changed.isoformat(),
        "size": info.size,
        "sha256": info.sha256,
    }


def _text_argument(value: str) -> str:
    """``-`` means: read the text from standard input (keeps it out of the process list)."""
    return sys.stdin.read() if value == "-" else value


@group.command("put")
def put(
    name: Annotated[str, typer.Argument(help="Item name. / Naam van het gegeven.")],
    value: Annotated[
        str | None, typer.Option("--value", help="Attribute value ('-': standard input). / Waarde.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Document file. / Documentbestand.")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Note text ('-': standard input). / Notitie.")
    ] = None,
    media_type: Annotated[
        str | None,
        typer.Option("--media-type", help="e.g. application/pdf (default: from the file name)."),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Where the item comes from. / Herkomst.")
    ] = "citizen",
) -> None:
    """Store an item (replaces one with the same name). / Bewaar een gegeven."""
    given = [option for option in (value, file, note) if option is not None]
    if len(given) != 1:
        raise typer.BadParameter(
            say(
                en="give exactly one of --value, --file, --note",
                nl="geef precies één van --value, --file, --note",
            )
        )
    if media_type is not None and file is None:
        raise typer.BadParameter(
            say(en="--media-type goes with --file", nl="--media-type hoort bij --file")
        )
    with context.unlock() as vault:
        if file is not None:
            guessed = mimetypes.guess_type(file.name)[0] or DEFAULT_MEDIA_TYPE
            info = vault.put_document(name, file, media_type=media_type or guessed, source=source)
        elif note is not None:
            info = vault.put_note(name, _text_argument(note), source=source)
        else:
            info = vault.put_attribute(name, _text_argument(value or ""), source=source)
    console.print(
        say(
            en="Stored '{name}' ({kind}, {size} bytes).",
            nl="'{name}' is bewaard ({kind}, {size} bytes).",
            name=info.name,
            kind=type_name(info.type),
            size=info.size,
        ),
        markup=False,
    )


@group.command("get")
def get(
    name: Annotated[str, typer.Argument(help="Item name. / Naam van het gegeven.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Save a document to this new file. / Sla een document op."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show an item, or save a document. / Toon een gegeven, of sla een document op."""
    with context.unlock() as vault:
        item = vault.get(name)
        if item.type == ItemType.DOCUMENT:
            _document(vault, item, out, json_output)
            return
        if out is not None:
            vault.save_document(item.name, out)  # raises NotADocument
    if json_output:
        emit_json(_info_json(item) | {"text": item.text})
    else:
        sys.stdout.write((item.text or "") + ("" if (item.text or "").endswith("\n") else "\n"))


def _document(vault: Vault, item: Item, out: Path | None, json_output: bool) -> None:
    if out is not None:
        vault.save_document(item.name, out)
        if json_output:
            emit_json(_info_json(item) | {"saved_to": str(out)})
        else:
            console.print(
                say(
                    en="Saved '{name}' to {path}.",
                    nl="'{name}' is opgeslagen in {path}.",
                    name=item.name,
                    path=out,
                ),
                markup=False,
            )
        return
    if json_output:
        emit_json(_info_json(item))
        return
    if sys.stdout.isatty():
        raise DocumentToTerminal(name=item.name)
    sys.stdout.flush()
    for piece in vault.read_document(item.name):
        sys.stdout.buffer.write(piece)
    sys.stdout.buffer.flush()


@group.command("list")
def list_items(json_output: JsonOption = False) -> None:
    """List the items in your vault. / Toon de gegevens in uw kluis."""
    with context.unlock() as vault:
        items = vault.items()
    if json_output:
        emit_json([_info_json(info) for info in items])
        return
    if not items:
        console.print(say(en="Your vault is empty.", nl="Uw kluis is leeg."), markup=False)
        return
    table = Table(show_edge=False, header_style="bold")
    for en, nl in (
        ("Name", "Naam"),
        ("Type", "Soort"),
        ("Size", "Grootte"),
        ("Source", "Herkomst"),
        ("Changed", "Gewijzigd"),
    ):
        table.add_column(say(en=en, nl=nl), overflow="fold")
    for info in items:
        kind = type_name(info.type) + (f" ({info.media_type})" if info.media_type else "")
        table.add_row(
            info.name,
            kind,
            str(info.size),
            info.source,
            info.changed.astimezone().strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@group.command("rm")
def remove(name: Annotated[str, typer.Argument(help="Item name. / Naam van het gegeven.")]) -> None:
    """Remove an item. / Verwijder een gegeven."""
    with context.unlock() as vault:
        info = vault.remove(name)
    console.print(
        say(en="Removed '{name}'.", nl="'{name}' is verwijderd.", name=info.name), markup=False
    )


@group.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="The new archive file. / Het nieuwe exportbestand.")],
) -> None:
    """Export your whole vault to one encrypted file. / Exporteer uw hele kluis."""
    if path.exists():
        raise FileExists(path=str(path))
    with context.wallet() as wallet:
        secret = context.export_passphrase(confirm=True)
        # Log first: the archive carries the entry that records it.
        wallet.log.append([export_made(ExportKind.ARCHIVE)], now=context.now())
        summary = export_archive(wallet.vault, path, secret)
    console.print(
        say(
            en="Exported {items} items ({documents} documents) to {path}. You need the export"
            " passphrase to import it.",
            nl="{items} gegevens ({documents} documenten) geëxporteerd naar {path}. Voor"
            " importeren hebt u het exportwachtwoord nodig.",
            items=summary.items,
            documents=summary.documents,
            path=path,
        ),
        markup=False,
    )


@group.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="The archive file. / Het exportbestand.")],
) -> None:
    """Make a new vault from an export (at --home, which must be new). / Maak een nieuwe
    kluis uit een export."""
    root = context.home()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ProfileExists(path=str(root))
    archive_passphrase = context.export_passphrase(confirm=False)
    new = context.new_passphrase()
    result = import_archive(path, root, archive_passphrase, new, schemas=context.SCHEMAS)
    console.print(
        say(
            en="Imported {items} items into a new vault in {path}.",
            nl="{items} gegevens geïmporteerd in een nieuwe kluis in {path}.",
            items=result.summary.items,
            path=root,
        ),
        markup=False,
    )
    show_recovery_code(result.recovery_code)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
