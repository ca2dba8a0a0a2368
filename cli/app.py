"""The ``kluis`` command: global options, the command groups, and error handling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperGroup

from cli import context
from cli.lang import from_locale, set_lang
from cli.output import fail
from vault import KluisError

class _KluisGroup(TyperGroup):
    """Turns a KluisError from any command into one plain line and its family's exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KluisError as error:
            fail(error)


app = typer.Typer(
    cls=_KluisGroup,
    name="kluis",
    help="kluis: your personal data vault with a consent wallet. / Uw persoonlijke datakluis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    lang: Annotated[
        Optional[str],
        typer.Option("--lang", help="Language: nl or en (default: from your locale, else nl)."),
    ] = None,
    home: Annotated[
        Optional[Path],
        typer.Option("--home", help="Profile folder (default: KLUIS_HOME, else the platform's data folder)."),
    ] = None,
) -> None:
    chosen = lang.lower() if lang else from_locale()
    if chosen not in ("nl", "en"):
        raise typer.BadParameter("use 'nl' or 'en'", param_hint="--lang")
    set_lang(chosen)  # type: ignore[arg-type]
    context.set_home(home)


def _register() -> None:
    """Add the command groups. Each lives in its own module under cli/."""
    from cli import commands

    commands.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app(args=sys.argv[1:], prog_name="kluis")
