"""``kluis vault put/get/list/rm/export/import``, in-process."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from vault import open_vault

Invoke = Callable[..., Result]
PASSPHRASE = "correct horse battery staple"
EXPORT = {"KLUIS_EXPORT_PASSPHRASE": "export passphrase"}


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_put_get_list_rm(kluis: Invoke, profile: Path, tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.7 " + os.urandom(5000))
    _ok(kluis("vault", "put", "bsn", "--value", "123456782", "--source", "BRP"))
    _ok(kluis("vault", "put", "visit", "--note", "Tuesday 10:00\nbring payslips"))
    assert "document, 5009 bytes" in _ok(kluis("vault", "put", "scan", "--file", str(scan))).stdout
    assert _ok(kluis("vault", "get", "bsn")).stdout == "123456782\n"
    assert _ok(kluis("vault", "get", "visit")).stdout == "Tuesday 10:00\nbring payslips\n"
    listing = json.loads(_ok(kluis("vault", "list", "--json")).stdout)
    assert [(i["name"], i["type"], i["media_type"], i["source"]) for i in listing] == [
        ("bsn", "attribute", None, "BRP"),
        ("scan", "document", "application/pdf", "citizen"),
        ("visit", "note", None, "citizen"),
    ]
    table = _ok(kluis("vault", "list")).stdout
    assert "bsn" in table and "application/pdf" in table
    data = json.loads(_ok(kluis("vault", "get", "bsn", "--json")).stdout)
    assert (data["text"], data["size"]) == ("123456782", 9)
    _ok(kluis("vault", "rm", "bsn"))
    assert [i["name"] for i in json.loads(kluis("vault", "list", "--json").stdout)] == [
        "scan",
        "visit",
    ]


def test_value_from_standard_input(kluis: Invoke, profile: Path) -> None:
    _ok(kluis("vault", "put", "iban", "--value", "-", input="NL91ABNA0417164300"))
    assert _ok(kluis("vault", "get", "iban")).stdout == "NL91ABNA0417164300\n"


def test_document_out_and_pipe(kluis: Invoke, profile: Path, tmp_path: Path) -> None:
    content = os.urandom(3 << 20)
    (tmp_path / "in.bin").write_bytes(content)
    _ok(
        kluis(
            "vault",
            "put",
            "blob",
            "--file",
            str(tmp_path / "in.bin"),
            "--media-type",
            "application/x-test",
        )
    )
    _ok(kluis("vault", "get", "blob", "--out", str(tmp_path / "out.bin")))
    assert (tmp_path / "out.bin").read_bytes() == content
    assert _ok(kluis("vault", "get", "blob")).stdout_bytes == content  # not a terminal: a pipe
    again = kluis("vault", "get", "blob", "--out", str(tmp_path / "out.bin"))
    assert again.exit_code == 5 and "[vault.file_exists]" in again.stderr
    meta = json.loads(_ok(kluis("vault", "get", "blob", "--json")).stdout)
    assert meta["media_type"] == "application/x-test" and "text" not in meta


def test_document_is_not_dumped_to_a_terminal(
    kluis: Invoke, profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(kluis("vault", "put", "blob", "--file", __file__))

    class Terminal:
        def isatty(self) -> bool:
            return True

        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"wrote to the terminal: {name}")

    import cli.commands.vault as commands

    monkeypatch.setattr(commands, "sys", types.SimpleNamespace(stdout=Terminal(), stdin=sys.stdin))
    result = kluis("vault", "get", "blob")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error [cli.document_to_terminal]: 'blob' is a document")


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["vault", "put", "a/b", "--value", "x"], "vault.bad_name", 3),
        (["vault", "put", "a\\b", "--value", "x"], "vault.bad_name", 3),
        (["vault", "put", "a\nb", "--value", "x"], "vault.bad_name", 3),
        (["vault", "put", "a\tb", "--value", "x"], "vault.bad_name", 3),
        (["vault", "put", "x" * 201, "--value", "x"], "vault.bad_name", 3),
        (["vault", "put", "d", "--file", "/nonexistent/file.pdf"], "vault.no_file", 4),
        (["vault", "put", "d", "--file", "/"], "vault.not_a_file", 3),
        (
            ["vault", "put", "d", "--file", __file__, "--media-type", "pdf"],
            "vault.bad_media_type",
            3,
        ),
        (["vault", "get", "missing"], "vault.no_such_item", 4),
        (["vault", "rm", "missing"], "vault.no_such_item", 4),
        (["vault", "get", "existing", "--out", "/nonexistent/dir/x"], "vault.not_a_document", 3),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_gives_one_line_and_changes_nothing(
    kluis: Invoke, profile: Path, args: list[str], code: str, exit_code: int
) -> None:
    _ok(kluis("vault", "put", "existing", "--value", "kept"))
    before = json.loads(kluis("vault", "list", "--json").stdout)
    result = kluis(*args)
    assert result.exit_code == exit_code
    assert result.stderr.startswith(f"Error [{code}]: ") and result.stderr.count("\n") == 1
    assert json.loads(kluis("vault", "list", "--json").stdout) == before


@pytest.mark.parametrize(
    "args",
    [
        ["vault", "put", "x"],
        ["vault", "put", "x", "--value", "1", "--note", "2"],
        ["vault", "put", "x", "--value", "1", "--media-type", "a/b"],
    ],
    ids=["no_content", "two_contents", "media_type_without_file"],
)
def test_put_usage_errors(kluis: Invoke, profile: Path, args: list[str]) -> None:
    assert kluis(*args).exit_code == 2


def test_wrong_passphrase_shows_no_data(kluis: Invoke, profile: Path) -> None:
    _ok(kluis("vault", "put", "bsn", "--value", "123456782"))
    result = kluis("vault", "get", "bsn", env={"KLUIS_PASSPHRASE": "not the passphrase"})
    assert result.exit_code == 6
    assert "123456782" not in result.stdout + result.stderr
    assert result.stderr.startswith(
        "Error [vault.wrong_passphrase]: The passphrase is not correct."
    )


def test_export_then_import_into_a_new_home(kluis: Invoke, profile: Path, tmp_path: Path) -> None:
    _ok(kluis("vault", "put", "bsn", "--value", "123456782"))
    _ok(kluis("vault", "put", "doc", "--file", __file__))
    archive = tmp_path / "export.kar"
    assert "Exported 2 items" in _ok(kluis("vault", "export", str(archive), env=EXPORT)).stdout
    runner_home = tmp_path / "imported"
    from typer.testing import CliRunner

    from cli.app import app

    result = CliRunner().invoke(
        app,
        ["--lang", "en", "--home", str(runner_home), "vault", "import", str(archive)],
        env={**EXPORT, "KLUIS_PASSPHRASE": "imported passphrase"},
    )
    assert result.exit_code == 0, result.output
    assert "Write this code on paper" in result.stdout
    with open_vault(runner_home, "imported passphrase") as vault:
        assert vault.get("bsn").text == "123456782"
        assert b"".join(vault.read_document("doc")) == Path(__file__).read_bytes()


def test_export_refuses_to_overwrite(kluis: Invoke, profile: Path, tmp_path: Path) -> None:
    target = tmp_path / "exists.kar"
    target.write_bytes(b"keep")
    result = kluis("vault", "export", str(target), env=EXPORT)
    assert result.exit_code == 5 and "[vault.file_exists]" in result.stderr
    assert target.read_bytes() == b"keep"


def test_import_refuses_an_existing_profile_and_bad_archives(
    kluis: Invoke, profile: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.kar"
    garbage.write_bytes(b"not an archive")
    result = kluis("vault", "import", str(garbage), env=EXPORT)
    assert result.exit_code == 5 and "[vault.profile_exists]" in result.stderr
    from typer.testing import CliRunner

    from cli.app import app

    fresh = tmp_path / "fresh"
    result = CliRunner().invoke(
        app,
        ["--lang", "en", "--home", str(fresh), "vault", "import", str(garbage)],
        env={**EXPORT, "KLUIS_PASSPHRASE": PASSPHRASE},
    )
    assert result.exit_code == 3 and "[archive.not_an_archive]" in result.stderr
    assert not fresh.exists()
