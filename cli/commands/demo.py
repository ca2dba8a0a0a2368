"""``kluis demo``: a short tour on a throw-away vault (until the end-to-end demo replaces it).

It creates a vault in a temporary folder, stores an attribute, a note and a small document,
lists them, exports the vault, imports the export into a second throw-away vault, checks
that the copy is identical, and removes everything. Real encryption, nothing mocked.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.commands.vault import type_name
from cli.lang import say
from cli.output import console
from vault import (
    ItemType,
    Vault,
    VerificationFailed,
    create_profile,
    export_archive,
    import_archive,
    open_vault,
)


class DemoFailed(VerificationFailed):
    code = "cli.demo_failed"
    en = "The demo found a difference between the vault and its imported copy. Please report this."
    nl = (
        "De demo vond een verschil tussen de kluis en de geïmporteerde kopie. Meld dit alstublieft."
    )


def _step(number: int, en: str, nl: str, **fields: object) -> None:
    console.print(f"[bold]{number}.[/bold] " + say(en=en, nl=nl, **fields).replace("[", r"\["))


def _snapshot(vault: Vault) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for info in vault.items():
        content = (
            b"".join(vault.read_document(info.name))
            if info.type == ItemType.DOCUMENT
            else vault.get(info.name).text
        )
        rows.append((info, content))
    return rows


def _list(vault: Vault) -> None:
    table = Table(show_edge=False, header_style="bold")
    for en, nl in (("Name", "Naam"), ("Type", "Soort"), ("Size", "Grootte")):
        table.add_column(say(en=en, nl=nl))
    for info in vault.items():
        kind = type_name(info.type) + (f" ({info.media_type})" if info.media_type else "")
        table.add_row(info.name, kind, str(info.size))
    console.print(table)


def demo(
    yes: Annotated[
        bool, typer.Option("--yes", help="Ask no questions. / Stel geen vragen.")
    ] = False,
) -> None:
    """A short tour on a throw-away vault. / Een korte rondleiding met een wegwerpkluis."""
    del yes  # the demo asks nothing yet; the flag keeps scripts working when it will
    passphrase = secrets.token_urlsafe(16)  # throw-away secrets: nobody needs to remember them
    export_passphrase = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="kluis-demo-") as temp:
        folder = Path(temp)
        create_profile(folder / "vault", passphrase)
        _step(
            1,
            en="Created a throw-away vault in {path}, locked with a random passphrase.",
            nl="Een wegwerpkluis gemaakt in {path}, op slot met een willekeurig wachtwoord.",
            path=folder / "vault",
        )
        letter = folder / "letter.txt"
        letter.write_text(
            say(
                en="Dear citizen, your benefit is approved.",
                nl="Beste burger, uw toeslag is toegekend.",
            )
        )
        started = time.perf_counter()
        with open_vault(folder / "vault", passphrase) as vault:
            unlock = time.perf_counter() - started
            vault.put_attribute(
                say(en="date of birth", nl="geboortedatum"), "1970-01-01", source="demo"
            )
            vault.put_note(
                say(en="kitchen table", nl="keukentafel"),
                say(en="Visit on Tuesday.", nl="Bezoek op dinsdag."),
                source="demo",
            )
            vault.put_document(
                say(en="decision letter", nl="beschikking"),
                letter,
                media_type="text/plain",
                source="demo",
            )
            _step(
                2,
                en="Unlocked it (Argon2id took {seconds:.2f} s) and stored an attribute, a note"
                " and a document:",
                nl="Geopend (Argon2id duurde {seconds:.2f} s) en een kenmerk, een notitie en een"
                " document bewaard:",
                seconds=unlock,
            )
            _list(vault)
            export_archive(vault, folder / "export.kar", export_passphrase)
            original = _snapshot(vault)
        _step(
            3,
            en="Exported the whole vault to one encrypted file ({size} bytes).",
            nl="De hele kluis geëxporteerd naar één versleuteld bestand ({size} bytes).",
            size=(folder / "export.kar").stat().st_size,
        )
        import_archive(folder / "export.kar", folder / "copy", export_passphrase, passphrase)
        with open_vault(folder / "copy", passphrase) as copy:
            if _snapshot(copy) != original:
                raise DemoFailed()
        _step(
            4,
            en="Imported the export into a second vault: all {count} items are identical,"
            " byte for byte.",
            nl="De export geïmporteerd in een tweede kluis: alle {count} gegevens zijn gelijk,"
            " byte voor byte.",
            count=len(original),
        )
    _step(
        5,
        en="Removed both throw-away vaults. Start your own with 'kluis init'.",
        nl="Beide wegwerpkluizen verwijderd. Begin uw eigen kluis met 'kluis init'.",
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
