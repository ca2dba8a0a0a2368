"""The kluis services (relay and demo agencies) as a child process: ``python -m server``.

The CLI never imports the server package (DESIGN.md, layers): it starts the server as its own
process, waits for the one JSON line that says every app answers (or why starting failed),
and from then on speaks to the apps over HTTP only. The line also names the signed trust list
and the anchor's key the server wrote, which a wallet needs before it trusts anyone.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vault import Unavailable

READY_SECONDS = 90.0


class ServicesNotStarted(Unavailable):
    code = "service.not_started"
    en = "The kluis services did not start ({reason_en}). Solve that and try again."
    nl = "De kluis-diensten zijn niet gestart ({reason_nl}). Los dat op en probeer opnieuw."


@dataclass(frozen=True)
class ServiceApp:
    """One app the services run: its URL, the agency behind it (None for the relay), what it
    does in Dutch and English, and whether it is a back office."""

    name: str
    url: str
    agency: str | None
    agency_names: Mapping[str, str]
    role: Mapping[str, str]
    admin: bool


@dataclass
class RunningServices:
    """The running child process and what its ready line said."""

    process: subprocess.Popen[bytes]
    apps: dict[str, ServiceApp]
    trust_list: Path
    anchor: Path
    anchor_name: str
    store: str
    workers: int

    def url(self, name: str) -> str:
        return self.apps[name].url

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """Ask the process to stop (SIGTERM), wait, and kill it if it does not; returns its
        exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return int(self.process.returncode)


def _reason(en: str, nl: str) -> ServicesNotStarted:
    return ServicesNotStarted(reason_en=en.strip().rstrip("."), reason_nl=nl.strip().rstrip("."))


def command(
    *, host: str | None = None, port: int | None = None, db: str | None = None,
    data_dir: Path | None = None, workers: int = 1, only: tuple[str, ...] = (),
) -> list[str]:
    """The command line of the services' process."""
    line = [sys.executable, "-m", "server", "--ready-json", "--exit-with-parent",
            "--workers", str(workers)]
    for option, value in (("--host", host), ("--port", port), ("--db", db),
                          ("--data-dir", data_dir)):
        if value is not None:
            line += [option, str(value)]
    for name in only:
        line += ["--only", name]
    return line


def start(line: list[str], *, stderr: IO[Any] | int | None = None,
          env: Mapping[str, str] | None = None) -> RunningServices:
    """Start the services with ``line`` (``command(...)``) and wait until they answer.

    Raises ``service.not_started`` with the server's own reason (a port in use, a database
    out of reach, ...) when it stops or says it failed, or after 90 seconds of silence.
    """
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        line, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
        env=dict(env) if env is not None else None,
    )
    try:
        ready = _ready_line(process)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise
    apps = {name: ServiceApp(name, str(a["url"]), a.get("agency"),
                             dict(a.get("agency_names") or {}), dict(a.get("role") or {}),
                             bool(a.get("admin")))
            for name, a in ready["apps"].items()}
    return RunningServices(process, apps, Path(ready["trust_list"]), Path(ready["anchor"]),
                           str(ready["anchor_name"]), str(ready["store"]),
                           int(ready.get("workers", 1)))


def _ready_line(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The ``ready`` member of the first JSON line; raises ``service.not_started``."""
    stream = process.stdout
    if stream is None:  # pragma: no cover - start() always asks for a pipe
        raise _reason("no output", "geen uitvoer")
    deadline = time.monotonic() + READY_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        buffer = b""
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _reason("no answer within 90 seconds", "geen antwoord binnen 90 seconden")
            if not selector.select(left):
                continue
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                code = process.wait()
                raise _reason(f"the process stopped (exit status {code})",
                              f"het proces stopte (afsluitcode {code})")
            buffer += chunk
    try:
        said = json.loads(buffer.split(b"\n", 1)[0])
    except ValueError:
        raise _reason("an answer kluis cannot read", "een antwoord dat kluis niet kan lezen") \
            from None
    if isinstance(said, dict) and isinstance(said.get("error"), dict):
        message = said["error"].get("message") or {}
        code = said["error"].get("code", "")
        raise _reason(f"{message.get('en', '').rstrip('.')} [{code}]",
                      f"{message.get('nl', '').rstrip('.')} [{code}]")
    if not isinstance(said, dict) or not isinstance(said.get("ready"), dict):
        raise _reason("an answer kluis cannot read", "een antwoord dat kluis niet kan lezen")
    ready: dict[str, Any] = said["ready"]
    return ready


@contextlib.contextmanager
def running(line: list[str], *, stderr: IO[Any] | int | None = None,
            env: Mapping[str, str] | None = None) -> Iterator[RunningServices]:
    """``start(line)`` for a ``with`` block; the services stop when it ends."""
    services = start(line, stderr=stderr, env=env)
    try:
        yield services
    finally:
        services.stop()
