"""The command groups of ``kluis``, one module each."""

from __future__ import annotations

import importlib

import typer

# Each module named here has a ``register(app)`` that adds its commands or its group.
GROUPS: tuple[str, ...] = (
    "profile", "vault", "demo", "sdjwt", "trustlist", "agency", "trust", "credential",
    "credential_receive", "request", "audit", "serve", "relay", "inbox", "agency_request",
    "grant", "agency_fetch",
)


def register(app: typer.Typer) -> None:
    """Attach every command group to the root app."""
    for name in GROUPS:
        importlib.import_module(f"cli.commands.{name}").register(app)
