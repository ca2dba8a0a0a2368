"""Running a set of apps, each on its own port, in one or more worker processes.

``bind`` takes the ports first (in the process that starts, so a port in use is one clear
error before anything runs, and a port of 0 becomes a free port whose number the apps can put
in their public URLs). ``serve`` then builds the apps and serves them with uvicorn: one
``uvicorn.Server`` per app, all in one event loop per worker. With more than one worker, each
is a spawned process that inherits the bound sockets, so the kernel spreads connections over
the workers, as uvicorn's own ``--workers`` does for a single app.

Every worker loads the demo world from its seed folder and opens one store for all its apps
(one connection pool per process, not one per app). ``ready`` is called once every app of
every worker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import uvicorn

from server.demo_world import build_app, load_world
from server.settings import Settings
from server.store import open_store
from vault import InvalidInput, Unavailable

log = logging.getLogger("kluis.server")

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a binding
READY_SECONDS = 60.0


class PortInUse(Unavailable):
    code = "server.port_in_use"
    en = "Port {port} on {host} is already in use. Stop what uses it, or choose another port."
    nl = "Poort {port} op {host} is al in gebruik. Stop wat hem gebruikt, of kies een andere."


class CannotBind(InvalidInput):
    code = "server.cannot_bind"
    en = "kluis cannot listen on {host} port {port}. Check the address and the port number."
    nl = "kluis kan niet luisteren op {host} poort {port}. Controleer het adres en het poortnummer."


class WorkerFailed(Unavailable):
    code = "server.worker_failed"
    en = "A server process stopped before it was ready. See the lines above for the reason."
    nl = "Een serverproces stopte voordat het klaar was. Zie de regels hierboven voor de reden."


class BadExtraApp(InvalidInput):
    code = "server.bad_extra_app"
    en = "There is no app factory '{target}'. Give it as module:function."
    nl = "Er is geen app-fabriek '{target}'. Geef hem als module:functie."


@dataclass(frozen=True)
class Listener:
    """A bound socket for app ``name`` and the URL clients use to reach it."""

    name: str
    sock: socket.socket
    url: str

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


def public_host(host: str) -> str:
    """The host the apps put in their URLs: the bound loopback address, or 127.0.0.1 when
    bound elsewhere (an issuer's http URL must be on loopback: OpenID4VCI 1.0 §12.2.1 allows
    only https otherwise)."""
    if host in LOOPBACK:
        return "[::1]" if host == "::1" else host
    return "127.0.0.1"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port). Raises
    ``server.port_in_use`` or ``server.cannot_bind``."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError):
        raise CannotBind(host=host, port=port) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise PortInUse(host=host, port=port) from None
        raise CannotBind(type(error).__name__, host=host, port=port) from None
    sock.set_inheritable(True)
    return sock


def bind_all(host: str, base_port: int, names: Sequence[str]) -> list[Listener]:
    """One listener per name: ports ``base_port``, ``base_port + 1``, ... in order, or free
    ports when ``base_port`` is 0. Closes what it bound when one port fails, and raises."""
    bound: list[Listener] = []
    try:
        for offset, name in enumerate(names):
            sock = bind(host, base_port + offset if base_port else 0)
            url = f"http://{public_host(host)}:{sock.getsockname()[1]}"
            bound.append(Listener(name, sock, url))
    except BaseException:
        for listener in bound:
            listener.sock.close()
        raise
    return bound


# --- the workers ------------------------------------------------------------------------------


ExtraApp = Callable[[Settings], Any]
"""An app outside the world (benchmarks): a module-level function of the app's Settings that
gives an ASGI app. Workers get it by reference, so it must be importable by name."""


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to the worker, which stops all its servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker serves: the settings, the world's seed folder, and per app its name,
    socket and URL; ``extra`` builds the apps outside the world, by name."""

    settings: Settings
    world_folder: Path
    listeners: tuple[Listener, ...]
    extra: Mapping[str, ExtraApp]


def load_extra(target: str) -> ExtraApp:
    """The factory named by the import string ``module:function``; raises
    ``server.bad_extra_app``."""
    module, _, attribute = target.partition(":")
    try:
        factory: ExtraApp = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError):
        raise BadExtraApp(target=target) from None
    return factory


async def _run(plan: WorkerPlan, started: Callable[[], None]) -> None:
    settings = plan.settings
    world = load_world(plan.world_folder)
    store = open_store(settings.db_url, pool_size=settings.db_pool_size)
    servers: list[_QuietServer] = []
    try:
        urls = {listener.name: listener.url for listener in plan.listeners}
        for listener in plan.listeners:
            if listener.name in plan.extra:
                own = settings.model_copy(update={"port": listener.port,
                                                  "public_url": listener.url})
                app = plan.extra[listener.name](own)
            else:
                app = build_app(listener.name, settings, world, store, urls=urls)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=3)
            servers.append(_QuietServer(config))
        def stop_all() -> None:
            for server in servers:
                server.should_exit = True

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        tasks = [asyncio.create_task(server.serve(sockets=[listener.sock]))
                 for server, listener in zip(servers, plan.listeners, strict=True)]
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)
        else:
            started()
        await asyncio.gather(*tasks)
    finally:
        store.close()


def exit_with_parent() -> None:
    """Stop (SIGTERM to this process) once its parent is gone, so services whose starter was
    killed do not linger on their ports: ``python -m server --exit-with-parent`` under the
    CLI, and every worker under its supervisor."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="kluis-parent-watch", daemon=True).start()


def _worker(plan: WorkerPlan, ready: Event | None) -> None:
    """A worker process's body (spawned): serve until SIGTERM or SIGINT, or until the
    supervisor is gone."""
    exit_with_parent()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(plan, ready.set if ready is not None else lambda: None))


def serve(plan: WorkerPlan, *, workers: int = 1, ready: Callable[[], None]) -> int:
    """Serve ``plan`` in ``workers`` processes (1: in this one) until SIGINT or SIGTERM;
    ``ready`` is called once all of them answer. Returns the exit status (0: stopped on a
    signal; 1: a worker failed)."""
    if workers <= 1:
        asyncio.run(_run(plan, ready))
        return 0
    context = multiprocessing.get_context("spawn")
    events = [context.Event() for _ in range(workers)]
    processes = [context.Process(target=_worker, args=(plan, event), daemon=False)
                 for event in events]
    for process in processes:
        process.start()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _await_ready(events, processes):
            stop(signal.SIGTERM, None)
            for process in processes:
                process.join(10)
            raise WorkerFailed()
        ready()
        while not stopping and all(p.is_alive() for p in processes):
            processes[0].join(0.2)
        stop(signal.SIGTERM, None)
        for process in processes:
            process.join(10)
        return 0 if all(p.exitcode in (0, -signal.SIGTERM) for p in processes) else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _await_ready(events: Sequence[Event], processes: Sequence[Any]) -> bool:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if all(event.is_set() for event in events):
            return True
        if any(not process.is_alive() for process in processes):
            return False
        time.sleep(0.02)
    return False
