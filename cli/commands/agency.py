"""``kluis agency``: what an agency runs from the command line.

``kluis agency status``: the agency's Token Status List, kept in a state file
(``format_status_list_state``): hand out an index for a new credential, revoke, suspend and
reinstate, and sign the ``statuslist+jwt`` to publish. Every change locks the file, and the
new state replaces the old one whole, so a crash or a second command at the same moment never
loses a change or hands out an index twice; a refused change leaves the file as it was.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from jwcrypto.jwk import JWK

from cli import file
from cli.commands.profile import JsonOption
from cli.lang import say
from cli.output import console, emit_json
from verifiers import (
    StatusList,
    StatusValue,
    format_status_list_state,
    parse_status_list_state,
    verify_status_list_token,
)
from verifiers.statuslist import MIN_LIST_SIZE

group = typer.Typer(
    name="agency",
    help="Tools for an agency. / Hulpmiddelen voor een organisatie.",
    no_args_is_help=True,
)
status_group = typer.Typer(
    name="status",
    help=(
        "The agency's status list: revoke, suspend, reinstate credentials. / "
        "De statuslijst: bewijzen intrekken, schorsen, herstellen."
    ),
    no_args_is_help=True,
)
group.add_typer(status_group)

T = TypeVar("T")
_TIME = "%Y-%m-%dT%H:%M:%SZ"

StateArgument = Annotated[
    Path,
    typer.Argument(
        metavar="STATE.json", help="The status list state file. / Het statuslijstbestand."
    ),
]
IndexOption = Annotated[
    int, typer.Option("--index", min=0, help="The credential's index. / Nummer van het bewijs.")
]


@status_group.command("init")
def init(
    uri: Annotated[
        str, typer.Option("--uri", help="Where the list will be published. / Adres van de lijst.")
    ],
    out: Annotated[Path, typer.Option("--out", help="New state file. / Nieuw bestand.")],
    bits: Annotated[
        int,
        typer.Option("--bits", min=1, max=2, help="1: revoke only; 2: also suspend. / Bits."),
    ] = 2,
    size: Annotated[
        int,
        typer.Option("--size", help=f"Places (at least {MIN_LIST_SIZE}). / Aantal plekken."),
    ] = MIN_LIST_SIZE,
) -> None:
    """Start a new status list. / Begin een nieuwe statuslijst."""
    status_list = StatusList(uri, bits=bits, size=size)
    file.write_new(out, _state_bytes(status_list))
    console.print(
        say(
            en="Made a status list for {uri} with {size} places ({bits} bits each) in {path}.",
            nl="Statuslijst voor {uri} gemaakt met {size} plekken ({bits} bits per plek) in"
            " {path}.",
            uri=uri,
            size=size,
            bits=bits,
            path=out,
        ),
        markup=False,
    )


@status_group.command("allocate")
def allocate(state: StateArgument) -> None:
    """Hand out a place for a new credential; prints its status claim.
    / Geef een plek uit voor een nieuw bewijs; toont de status-claim."""
    status_list, index = _change(state, lambda s: s.allocate())
    emit_json(status_list.reference(index))


@status_group.command("revoke")
def revoke(state: StateArgument, index: IndexOption) -> None:
    """Revoke a credential, for good. / Trek een bewijs in, voorgoed."""
    status_list, _ = _change(state, lambda s: s.revoke(index))
    _changed(status_list, index)


@status_group.command("suspend")
def suspend(state: StateArgument, index: IndexOption) -> None:
    """Suspend a credential for now. / Schors een bewijs voorlopig."""
    status_list, _ = _change(state, lambda s: s.suspend(index))
    _changed(status_list, index)


@status_group.command("reinstate")
def reinstate(state: StateArgument, index: IndexOption) -> None:
    """Make a suspended credential valid again. / Maak een geschorst bewijs weer geldig."""
    status_list, _ = _change(state, lambda s: s.reinstate(index))
    _changed(status_list, index)


@status_group.command("token")
def token(
    state: StateArgument,
    key: Annotated[Path, typer.Option("--key", help="The private JWK. / De privésleutel.")],
    out: Annotated[Path, typer.Option("--out", help="The token to publish. / Het token.")],
    ttl: Annotated[
        int,
        typer.Option("--ttl", min=1, help="Seconds a copy may be reused. / Seconden."),
    ] = 3600,
) -> None:
    """Sign the status list token to publish. / Onderteken het statuslijst-token."""
    status_list = parse_status_list_state(file.read_bytes(state))
    private = file.read_private_jwk(key)
    now = int(time.time())
    signed = status_list.issue_token(private, now=now, ttl=ttl)
    # Read back as a relying party would, so what is published is known to verify.
    public = JWK(**private.export_public(as_dict=True))
    issued = verify_status_list_token(signed, [public], uri=status_list.uri, now=now)
    file.replace(out, signed.encode("ascii"))
    console.print(
        say(
            en="Signed the status list into {path}; valid until {until}. Publish it at {uri}.",
            nl="De statuslijst is ondertekend in {path}; geldig tot {until}. Publiceer het op"
            " {uri}.",
            path=out,
            until=datetime.fromtimestamp(issued.expires_at or now, UTC).strftime(_TIME),
            uri=status_list.uri,
        ),
        markup=False,
    )


@status_group.command("show")
def show(
    state: StateArgument,
    index: Annotated[
        int | None,
        typer.Option("--index", min=0, help="Show one credential. / Toon één bewijs."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show the status list, or one credential's status. / Toon de statuslijst of één bewijs."""
    status_list = parse_status_list_state(file.read_bytes(state))
    if index is not None:
        value = status_list.status(index)
        if json_output:
            emit_json({"uri": status_list.uri, "index": index, "status": _value_name(value)})
        else:
            _changed(status_list, index)
        return
    summary = _summary(status_list)
    if json_output:
        emit_json(summary)
        return
    console.print(
        say(
            en="Status list {uri}: {size} places of {bits} bits; {allocated} handed out,"
            " {free} free.\nValid {valid}, suspended {suspended}, revoked {revoked}.",
            nl="Statuslijst {uri}: {size} plekken van {bits} bits; {allocated} uitgegeven,"
            " {free} vrij.\nGeldig {valid}, geschorst {suspended}, ingetrokken {revoked}.",
            **summary,
        ),
        markup=False,
    )


def _change(state: Path, change: Callable[[StatusList], T]) -> tuple[StatusList, T]:
    """Apply ``change`` to the list in ``state`` under its lock, then replace the file.

    When ``change`` raises, nothing is written.
    """
    with file.locked(state) as data:
        status_list = parse_status_list_state(data)
        result = change(status_list)
        file.replace(state, _state_bytes(status_list))
    return status_list, result


def _state_bytes(status_list: StatusList) -> bytes:
    return (json.dumps(format_status_list_state(status_list), indent=2) + "\n").encode()


def _summary(status_list: StatusList) -> dict[str, Any]:
    counts = Counter(value for _, value in status_list.statuses.nonzero())
    allocated = len(status_list.allocated)
    invalid, suspended = counts[StatusValue.INVALID], counts[StatusValue.SUSPENDED]
    return {
        "uri": status_list.uri,
        "bits": status_list.bits,
        "size": status_list.size,
        "allocated": allocated,
        "free": status_list.size - allocated,
        "valid": allocated - sum(counts.values()),
        "suspended": suspended,
        "revoked": invalid,
    }


def _value_name(value: int) -> str:
    """The draft's name of a status value (§7.1), or its hex for an application value."""
    try:
        return StatusValue(value).name
    except ValueError:
        return f"0x{value:02X}"


def _changed(status_list: StatusList, index: int) -> None:
    value = status_list.status(index)
    words: dict[int, str] = {
        StatusValue.VALID: say(en="valid", nl="geldig"),
        StatusValue.INVALID: say(en="revoked", nl="ingetrokken"),
        StatusValue.SUSPENDED: say(en="suspended", nl="geschorst"),
    }
    console.print(
        say(
            en="Credential {index} of {uri} is {status} ({name}).",
            nl="Bewijs {index} van {uri} is {status} ({name}).",
            index=index,
            uri=status_list.uri,
            status=words.get(value, say(en="in another state", nl="in een andere staat")),
            name=_value_name(value),
        ),
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group)
