"""``python -m server``: the relay and the demo agencies (``server.demo_world``), each app on
its own port, until Ctrl-C or SIGTERM. ``kluis serve`` and ``kluis demo`` run this as a child
process, so the CLI never imports the server.

Settings come from ``KLUIS_*`` variables (``server.settings``); the options override them.
With ``--ready-json`` one JSON line goes to standard output once every app answers
(``{"ready": {...}}``: the apps' URLs, the trust list and the anchor key), or, when starting
fails, ``{"error": {...}}`` with the error's code and its sentences in Dutch and English.
Everything else (warnings, the uvicorn log) goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.demo_world import ANCHOR_NAME, APPS, NAMES, load_world
from server.launcher import WorkerPlan, bind_all, exit_with_parent, load_extra, serve
from server.settings import Settings
from vault import KluisError

WORLD_FOLDER = "demo-world"


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="address to listen on (KLUIS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="first port; the apps take the ports after it"
                        " (KLUIS_PORT, default 8470; 0: free ports)")
    parser.add_argument("--db", help="sqlite:///path or postgresql://... (KLUIS_DB_URL)")
    parser.add_argument("--data-dir", type=Path, help="where the store and the world live"
                        " (KLUIS_DATA_DIR)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--only", action="append", default=[], metavar="APP",
                        help="serve only this app (repeatable)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=MODULE:FACTORY",
                        help="also serve an app by import string (benchmarks)")
    parser.add_argument("--ready-json", action="store_true",
                        help="print one JSON line on standard output when ready")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started this one is gone")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.db:
        overrides["db_url"] = args.db
    return Settings(**overrides)


def _store_name(url: str) -> str:
    """The store for people to read: the SQLite path, or PostgreSQL without its password."""
    if url.startswith("sqlite:///"):
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _error_line(error: KluisError) -> dict[str, Any]:
    return {"error": {"code": error.code, "detail": error.detail,
                      "message": {"en": error.message("en"), "nl": error.message("nl")}}}


def _report(error: KluisError, *, as_json: bool) -> None:
    """The error as the JSON line for the process that started us, else as a line for people."""
    if as_json:
        print(json.dumps(_error_line(error)), flush=True)
    else:
        print(f"error [{error.code}]: {error.message('en')}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the world's apps; returns the exit status (0 after Ctrl-C or SIGTERM)."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if args.exit_with_parent:
        exit_with_parent()
    try:
        settings = _settings(args)
        extra = {name: load_extra(target)
                 for name, _, target in (item.partition("=") for item in args.extra)}
        wanted = set(args.only)
        wanted |= {spec.public for spec in APPS if spec.name in wanted and spec.public}
        names = [spec.name for spec in APPS if not wanted or spec.name in wanted]
        names += [name for name in extra if name not in names]
        folder = settings.data_dir / WORLD_FOLDER
        world = load_world(folder)
        trust_list = world.publish(now=datetime.now(UTC))
        listeners = bind_all(settings.host, settings.port, names)
    except KluisError as error:
        _report(error, as_json=args.ready_json)
        return 1
    specs = {spec.name: spec for spec in APPS}
    apps = {
        listener.name: {
            "url": listener.url,
            "agency": specs[listener.name].agency if listener.name in specs else None,
            "agency_names": NAMES.get(specs[listener.name].agency or "", {})
            if listener.name in specs else {},
            "role": dict(specs[listener.name].role) if listener.name in specs else {},
            "admin": specs[listener.name].admin if listener.name in specs else False,
        }
        for listener in listeners
    }
    ready_line = {"ready": {
        "apps": apps, "trust_list": str(trust_list), "anchor": str(folder / "anchor.pub.jwk"),
        "anchor_name": ANCHOR_NAME, "store": _store_name(settings.db_url),
        "host": settings.host, "workers": max(1, args.workers),
    }}

    def ready() -> None:
        if args.ready_json:
            print(json.dumps(ready_line), flush=True)
            return
        for name, app in apps.items():
            print(f"kluis: {name} at {app['url']}", file=sys.stderr, flush=True)

    plan = WorkerPlan(settings, folder, tuple(listeners), extra)
    try:
        return serve(plan, workers=max(1, args.workers), ready=ready)
    except KluisError as error:
        _report(error, as_json=args.ready_json)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
