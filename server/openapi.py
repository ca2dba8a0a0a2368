"""The OpenAPI documents of kluis's apps, written to ``specs/openapi/<app>.json``.

``python -m server.openapi`` rewrites them; ``python -m server.openapi --check`` only says
which are stale (exit 1), as the test does. Each app is built by its own factory (the agency
apps with the demo world's municipality as their agency: the routes are the same for every
agency, only the title names it) on a throw-away store. The documents are JSON with sorted
keys, so a change in a route shows as a small diff.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from server.demo_world import MUNICIPALITY, DemoWorld, load_world
from server.issuer_app import create_issuer_admin_app, create_issuer_app
from server.relay_app import create_relay_app
from server.settings import Settings
from server.store import Store, open_store
from server.verifier_app import create_verifier_admin_app, create_verifier_app

SPEC_FOLDER = Path(__file__).resolve().parent.parent / "specs" / "openapi"
PUBLIC_URL = "http://127.0.0.1:8470"

Builder = Callable[[Settings, DemoWorld, Store], FastAPI]

BUILDERS: dict[str, Builder] = {
    "relay": lambda settings, world, store: create_relay_app(settings, store),
    "issuer": lambda settings, world, store: create_issuer_app(
        settings, world.issuer(MUNICIPALITY), store),
    "issuer-admin": lambda settings, world, store: create_issuer_admin_app(
        settings, world.issuer(MUNICIPALITY), store),
    "verifier": lambda settings, world, store: create_verifier_app(
        settings, world.municipality, store, trust=world.trust_list),
    "verifier-admin": lambda settings, world, store: create_verifier_admin_app(
        settings, world.municipality, store, trust=world.trust_list),
}


def format_document(document: dict[str, Any]) -> str:
    """The committed form of a document: sorted keys, two-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@contextmanager
def _scratch() -> Iterator[tuple[Settings, DemoWorld, Store]]:
    with tempfile.TemporaryDirectory(prefix="kluis-openapi-") as folder:
        settings = Settings(data_dir=Path(folder), public_url=PUBLIC_URL, port=8470)
        store = open_store(settings.db_url)
        try:
            yield settings, load_world(Path(folder) / "world"), store
        finally:
            store.close()


def documents() -> dict[str, str]:
    """Every app's OpenAPI document in its committed form, by app name."""
    with _scratch() as (settings, world, store):
        return {name: format_document(build(settings, world, store).openapi())
                for name, build in BUILDERS.items()}


def stale(folder: Path | None = None) -> list[str]:
    """The documents in ``folder`` (default ``specs/openapi``) that differ from the apps (or
    are missing), and files there that belong to no app."""
    folder = folder or SPEC_FOLDER
    wanted = documents()
    found = {path.stem: path for path in folder.glob("*.json")} if folder.is_dir() else {}
    differ = [name for name, text in wanted.items()
              if name not in found or found[name].read_text(encoding="utf-8") != text]
    return sorted(differ + [name for name in found if name not in wanted])


def write(folder: Path | None = None) -> list[Path]:
    """Write every document to ``folder`` (default ``specs/openapi``); returns the paths."""
    folder = folder or SPEC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in documents().items():
        path = folder / f"{name}.json"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.openapi",
                                     description="Write (or --check) specs/openapi/*.json.")
    parser.add_argument("--check", action="store_true", help="only report stale documents")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"stale: specs/openapi/{name}.json", file=sys.stderr)
        return 1 if names else 0
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
