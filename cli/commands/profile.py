"""Profile commands: ``kluis init``, ``kluis status``, ``kluis passphrase change``,
``kluis recover``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli import context
from cli.lang import say
from cli.output import console, emit_json
from vault import (
    ProfileExists,
    RecoveryCode,
    change_passphrase,
    create_profile,
    inspect_profile,
    recover,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON. / Toon JSON.")]


def _refuse_taken(root: Path) -> None:
    """Fail before asking for a passphrase when ``root`` cannot become a new profile."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ProfileExists(path=str(root))


def show_recovery_code(code: RecoveryCode) -> None:
    """The recovery code, once, with what to do with it."""
    console.print()
    console.print(say(en="Your recovery code:", nl="Uw herstelcode:"))
    console.print(f"\n    {code}\n", markup=False)
    console.print(
        say(
            en=(
                "Write this code on paper now and keep it somewhere safe. It is shown only"
                " this once. If you forget your passphrase, 'kluis recover' uses this code to"
                " set a new one. Anyone who has this code and your profile folder can open"
                " your vault, so do not store it on this computer."
            ),
            nl=(
                "Schrijf deze code nu op papier en bewaar die op een veilige plek. U ziet hem"
                " maar één keer. Vergeet u uw wachtwoord, dan stelt 'kluis recover' met deze"
                " code een nieuw wachtwoord in. Wie deze code en uw profielmap heeft, kan uw"
                " kluis openen: bewaar hem dus niet op deze computer."
            ),
        ),
        markup=False,
    )


def init(json_output: JsonOption = False) -> None:
    """Create your vault. / Maak uw kluis aan."""
    root = context.home()
    _refuse_taken(root)
    code = create_profile(root, context.new_passphrase())
    if json_output:
        emit_json({"profile": str(root), "recovery_code": str(code)})
        return
    console.print(
        say(en="Your vault is ready in {path}.", nl="Uw kluis staat klaar in {path}.", path=root),
        markup=False,
    )
    show_recovery_code(code)


def status(
    unlock: Annotated[
        bool,
        typer.Option(
            "--unlock", help="Also open the vault (asks the passphrase). / Open ook de kluis."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """What kluis knows about your profile. / Wat kluis weet over uw profiel."""
    root = context.home()
    found = inspect_profile(root)
    data: dict[str, Any] = {"profile": str(root), "exists": found.exists}
    if found.exists and found.kdf is not None:
        data |= {
            "created": found.created,
            "database_bytes": found.database_bytes,
            "failed_attempts": found.failed_attempts,
            "in_use": found.in_use,
            "argon2id": {"opslimit": found.kdf.opslimit, "memlimit": found.kdf.memlimit},
        }
        if unlock:
            with context.unlock() as vault:
                data |= {"items": vault.count(), "schemas": vault.schema_versions()}
    if json_output:
        emit_json(data)
        return
    _print_status(data)


def _print_status(data: dict[str, Any]) -> None:
    def line(en: str, nl: str, value: object) -> None:
        console.print(f"{say(en=en, nl=nl)}: {value}", markup=False)

    line("Profile", "Profiel", data["profile"])
    if not data["exists"]:
        console.print(
            say(
                en="There is no vault here yet. Create one with 'kluis init'.",
                nl="Hier is nog geen kluis. Maak er een met 'kluis init'.",
            ),
            markup=False,
        )
        return
    yes, no = say(en="yes", nl="ja"), say(en="no", nl="nee")
    line("Created", "Aangemaakt", data["created"])
    line("Database size", "Grootte database", f"{data['database_bytes']} bytes")
    line(
        "In use by another program",
        "In gebruik door een ander programma",
        yes if data["in_use"] else no,
    )
    line("Failed unlock attempts in a row", "Mislukte pogingen op rij", data["failed_attempts"])
    kdf = data["argon2id"]
    line(
        "Passphrase protection",
        "Wachtwoordbeveiliging",
        f"Argon2id, {kdf['opslimit']} x {kdf['memlimit'] >> 20} MiB",
    )
    if "items" in data:
        line("Items", "Gegevens", data["items"])
        versions = ", ".join(f"{c} {v}" for c, v in sorted(data["schemas"].items()))
        line("Schema versions", "Schemaversies", versions)
    else:
        console.print(
            say(
                en="Add --unlock to see the number of items (asks your passphrase).",
                nl="Voeg --unlock toe om het aantal gegevens te zien (vraagt uw wachtwoord).",
            ),
            markup=False,
        )


def change() -> None:
    """Choose a new passphrase. / Kies een nieuw wachtwoord."""
    root = context.existing_home()
    old = context.passphrase(prompt=say(en="Current passphrase", nl="Huidig wachtwoord"))
    new = context.new_passphrase(env="KLUIS_NEW_PASSPHRASE")
    change_passphrase(root, old, new)
    console.print(
        say(
            en="Your passphrase is changed. Your recovery code stays the same.",
            nl="Uw wachtwoord is gewijzigd. Uw herstelcode blijft hetzelfde.",
        ),
        markup=False,
    )


def recover_command() -> None:
    """Set a new passphrase with your recovery code. / Nieuw wachtwoord met uw herstelcode."""
    root = context.existing_home()
    code = context.recovery_code()
    new = context.new_passphrase(env="KLUIS_NEW_PASSPHRASE")
    recover(root, code, new)
    console.print(
        say(
            en="Your new passphrase is set. Keep using the same recovery code.",
            nl="Uw nieuwe wachtwoord is ingesteld. Uw herstelcode blijft geldig.",
        ),
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.command("recover")(recover_command)
    group = typer.Typer(
        name="passphrase",
        help="Your passphrase. / Uw wachtwoord.",
        no_args_is_help=True,
    )
    group.command("change")(change)
    app.add_typer(group)
