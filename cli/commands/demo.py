"""``kluis demo``: the whole story in one command, on this computer (DESIGN.md, "kluis demo").

A relay and three agencies start on free loopback ports (``cli.service``: real HTTP, real
encryption); Anna gets a throw-away vault, a relay mailbox with an address per agency, and
three credentials over OpenID4VCI; the municipality asks for exactly what Wmo household help
needs, she sees the consent screen and approves, and gets signed receipts; a request that asks
too much is blocked; she refuses another; finally her log is told in plain language, verified,
replayed and reconciled with the municipality's receipts (``cli.story``).

``--yes`` answers the one question (share the data?) with yes. Without a terminal to ask on,
the demo does the same and says so. Every step is checked, not only printed: the first that
fails stops the demo with one line saying why, and a non-zero exit (the error's family code,
or 7 for a check that failed). The temporary folder and the services are removed at the end,
whatever happened.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from cli import context, service
from cli.lang import lang, say, set_lang
from cli.narrator import Narrator, StepFailed
from cli.output import console, exit_code
from cli.story import Story
from vault import KluisError, VerificationFailed


class DemoFailed(VerificationFailed):
    code = "cli.demo_failed"
    en = "A step of the demo did not go as it said it would: {why}."
    nl = "Een stap van de demo ging anders dan beschreven: {why}."


def _start(folder: Path, port: int, log: BinaryIO) -> service.RunningServices:
    line = service.command(port=port, data_dir=folder / "services")
    return service.start(line, stderr=log)


def _last_lines(path: Path, count: int = 5) -> list[str]:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return []
    return lines[-count:]


def demo(
    yes: Annotated[bool, typer.Option(
        "--yes", help="Ask no questions: share when asked. / Stel geen vragen.")] = False,
    language: Annotated[str | None, typer.Option(
        "--lang", help="nl or en (default: kluis's own --lang).")] = None,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535,
        help="First port for the services (default 0: any free ports).")] = 0,
) -> None:
    """The whole story on this computer: agencies, relay and wallet. / Het hele verhaal op
    deze computer: organisaties, relay en wallet."""
    if language is not None:
        if language.lower() not in ("nl", "en"):
            raise typer.BadParameter("use 'nl' or 'en'", param_hint="--lang")
        set_lang(language.lower())  # type: ignore[arg-type]
    narrator = Narrator(console)
    console.print(say(
        en="[bold]kluis demo[/bold]: Anna, her wallet, a relay and three agencies, all on this"
           " computer. Real HTTP, real encryption; nothing leaves this computer.",
        nl="[bold]kluis demo[/bold]: Anna, haar wallet, een relay en drie organisaties, allemaal"
           " op deze computer. Echt HTTP, echte versleuteling; er gaat niets van deze computer"
           " af."))
    if not yes and not sys.stdin.isatty():
        yes = True
        console.print(say(
            en="There is no terminal to ask questions on, so the demo answers them itself, as"
               " with --yes.",
            nl="Er is geen terminal om vragen op te stellen, dus de demo beantwoordt ze zelf,"
               " zoals met --yes."))

    def ask(question: str) -> bool:
        if yes:
            console.print(f"   {question} " + say(en="yes (--yes)", nl="ja (--yes)"),
                          markup=False)
            return True
        return context.confirm("   " + question)

    with tempfile.TemporaryDirectory(prefix="kluis-demo-") as temp:
        folder = Path(temp)
        log_path = folder / "services.log"
        with log_path.open("wb") as log:
            story = Story(narrator, lambda: _start(folder, port, log), folder, ask)
            code = 0
            try:
                story.run()
            except StepFailed as failure:
                narrator.failed(failure.line)
                code = exit_code(DemoFailed(why=failure.line))
            except KluisError as error:
                narrator.failed(error.message(lang()))
                code = exit_code(error)
            except Exception as error:  # noqa: BLE001 - any surprise stops the demo plainly
                narrator.failed(f"{type(error).__name__}: {error}")
                code = 1
            finally:
                story.close()
        if code:
            for line in _last_lines(log_path):
                console.print("   " + line, markup=False, style="dim")
    console.print()
    if code:
        console.print(say(
            en="The throw-away vault is removed and the services are stopped.",
            nl="De wegwerpkluis is verwijderd en de diensten zijn gestopt."))
        raise typer.Exit(code)
    console.print(say(
        en="[bold green]Done[/bold green]: {n} checks passed in {s:.0f} seconds. The throw-away"
           " vault is removed and the services are stopped. Start your own vault with"
           " 'kluis init'.",
        nl="[bold green]Klaar[/bold green]: {n} controles geslaagd in {s:.0f} seconden. De"
           " wegwerpkluis is verwijderd en de diensten zijn gestopt. Begin uw eigen kluis met"
           " 'kluis init'.", n=narrator.checks, s=narrator.seconds))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
