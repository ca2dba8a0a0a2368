"""Telling a story in the terminal, step by step: what ``kluis demo`` prints.

A story is a row of numbered steps. Each step says in one plain sentence what happens, then
shows what came of it (indented), and ends with a check mark once what it claims has been
checked. A step that fails says so in one line, with the reason, and the story stops.
Every sentence is given in Dutch and English at the call site (``cli.lang.say``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from cli.lang import say
from cli.output import console as default_console


class StepFailed(Exception):
    """A check of the story found something else than it said would happen; ``line`` says
    what, in the current language."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class Narrator:
    """Numbers the steps and prints them; counts the checks that passed."""

    def __init__(self, console: Console = default_console) -> None:
        self.console = console
        self.number = 0
        self.checks = 0
        self._started = time.perf_counter()

    def step(self, en: str, nl: str, **fields: object) -> None:
        """A new step: its number and what happens, in bold."""
        self.number += 1
        text = escape(say(en=en, nl=nl, **fields))
        self.console.print()
        self.console.print(f"[bold]{self.number}. {text}[/bold]")

    def say(self, en: str, nl: str, **fields: object) -> None:
        """A sentence inside the current step."""
        self.console.print("   " + say(en=en, nl=nl, **fields), markup=False)

    def lines(self, lines: Iterable[str], *, indent: int = 6) -> None:
        """Text shown as it is (a consent screen, the log's sentences), indented."""
        pad = " " * indent
        for line in lines:
            self.console.print(pad + line if line else "", markup=False, highlight=False)

    def check(self, passed: bool, en: str, nl: str, **fields: object) -> None:
        """A check mark with what was checked; raises ``StepFailed`` when it did not pass."""
        text = say(en=en, nl=nl, **fields)
        if not passed:
            raise StepFailed(text)
        self.checks += 1
        self.console.print(f"   [green]✓[/green] {escape(text)}")

    def failed(self, line: str) -> None:
        """The story stops here: say which step failed and why."""
        self.console.print()
        self.console.print(
            "[bold red]✗ " + escape(say(en="Step {n} failed: {why}", nl="Stap {n} mislukt: {why}",
                                        n=self.number, why=line)) + "[/bold red]")

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._started
