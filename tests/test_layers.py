"""The architecture rules of DESIGN.md, checked on the source: who may import whom, and what
the core must never touch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vault", "verifiers", "wallet", "cli", "server")

ALLOWED = {
    "vault": {"vault"},
    "verifiers": {"vault", "verifiers"},
    "wallet": {"vault", "verifiers", "wallet"},
    "cli": {"vault", "verifiers", "wallet", "cli"},
    "server": {"vault", "verifiers", "wallet", "server"},
}
CORE = ("vault", "verifiers", "wallet")
# The core knows nothing about HTTP servers or terminals.
SHELL_LIBRARIES = {"fastapi", "starlette", "uvicorn", "httpx", "typer", "click", "rich"}
# The wallet's protocol clients speak HTTP through one injected transport; its default
# implementation is the only core module that may touch an HTTP client library.
HTTP_CLIENT_MODULE = Path("wallet/transport.py")


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_top_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package: str) -> None:
    forbidden = set(PACKAGES) - ALLOWED[package]
    offenders = []
    for path in _sources(package):
        bad = _imported_top_names(ast.parse(path.read_text())) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


@pytest.mark.parametrize("package", CORE)
def test_core_knows_no_http_or_terminal(package: str) -> None:
    offenders = []
    for path in _sources(package):
        tree = ast.parse(path.read_text())
        bad = _imported_top_names(tree) & SHELL_LIBRARIES
        if path.relative_to(ROOT) == HTTP_CLIENT_MODULE:
            bad -= {"httpx"}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} prints")
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} reads the environment")
    assert offenders == []


@pytest.mark.parametrize("package", PACKAGES)
def test_package_says_what_it_is_for(package: str) -> None:
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 10


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rule above is only worth something if it can fail."""
    tree = ast.parse("from wallet.consent import x\nimport server.app\nfrom . import sibling\n")
    assert _imported_top_names(tree) == {"wallet", "server"}
