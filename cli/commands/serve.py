"""``kluis serve``: the relay and the three demo agencies (the municipality, the tax office and
DUO), each app on its own port, until Ctrl-C.

The services run as their own process (``python -m server``, see ``cli.service``); this
command starts it, shows where everything answers and how a wallet trusts the agencies, and
waits. Settings come from ``KLUIS_*`` variables (``KLUIS_DB_URL``, ``KLUIS_DATA_DIR``,
``KLUIS_RATE_LIMIT_PER_CLIENT``, ...); the options win over them.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli import service
from cli.lang import lang, say
from cli.output import console, err_console

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _warn_exposed(host: str) -> None:
    err_console.print(say(
        en="Warning: you asked to listen on {host}, so other machines may reach these services."
           " The back offices have no login: whoever reaches them can make offers and revoke"
           " documents. Use this only on a network you trust. The agencies still announce"
           " loopback addresses (http://127.0.0.1:...), so wallets on other machines need a"
           " TLS proxy in front.",
        nl="Let op: u luistert op {host}, dus andere computers kunnen deze diensten bereiken."
           " De backoffices hebben geen inlog: wie ze bereikt, kan aanbiedingen maken en"
           " documenten intrekken. Doe dit alleen op een netwerk dat u vertrouwt. De"
           " organisaties noemen nog steeds loopback-adressen (http://127.0.0.1:...), dus"
           " wallets op andere computers hebben een TLS-proxy ervoor nodig.",
        host=host), markup=False)


def _show(running: service.RunningServices) -> None:
    table = Table(say(en="address", nl="adres"), say(en="service", nl="dienst"),
                  show_edge=False, header_style="bold")
    for app in running.apps.values():
        what = app.role.get(lang(), app.name)
        if app.agency_names:
            what = f"{app.agency_names.get(lang(), app.agency)}: {what}"
        if app.admin:
            what += say(en=" (never expose)", nl=" (nooit openstellen)")
        table.add_row(app.url, what)
    console.print(table)
    console.print(say(
        en="Store: {store}. Workers: {workers}.\nThe signed trust list is {list}. Let your wallet"
           " trust these agencies with:\n  kluis trust set {list} --anchor {anchor}\n"
           "Stop with Ctrl-C.",
        nl="Opslag: {store}. Werkprocessen: {workers}.\nDe ondertekende vertrouwenslijst is"
           " {list}. Laat uw wallet deze organisaties vertrouwen met:\n"
           "  kluis trust set {list} --anchor {anchor}\nStoppen met Ctrl-C.",
        store=running.store, workers=running.workers, list=running.trust_list,
        anchor=running.anchor), markup=False)


def serve(
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (default 127.0.0.1, this computer only).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=0, max=65535,
        help="First port; each app takes the next one (default 8470; 0: any free ports).")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="Store: sqlite:///path (default: in the data folder) or "
                     "postgresql://user@host/db.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder for the store and the demo world's keys "
                           "(default: KLUIS_DATA_DIR, else the platform's data folder).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=32, help="Server processes sharing the ports.")] = 1,
) -> None:
    """Run the relay and the demo agencies on this computer. / Start de relay en de
    demo-organisaties op deze computer."""
    if host is not None and host not in LOOPBACK:
        _warn_exposed(host)
    line = service.command(host=host, port=port, db=db, data_dir=data_dir, workers=workers)
    # Ctrl-C and SIGTERM are passed on to the server process, which stops all its apps; one
    # that arrives while it starts stops it as soon as it is up.
    holder: list[service.RunningServices] = []
    stopping: list[int] = []

    def forward(signum: int, frame: object) -> None:
        stopping.append(signum)
        if holder and holder[0].alive():
            holder[0].process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        running = service.start(line)
        holder.append(running)
        if stopping:
            running.process.send_signal(signal.SIGTERM)
        else:
            _show(running)
        running.process.wait()
        code = running.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if holder:
            holder[0].stop()
    console.print(say(en="The services have stopped.", nl="De diensten zijn gestopt."))
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise typer.Exit(code if code > 0 else 1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
