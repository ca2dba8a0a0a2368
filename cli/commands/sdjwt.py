"""``kluis sdjwt``: file-based SD-JWT VC tools for developers. They need no vault.

``keygen`` makes a key pair, ``issue`` signs claims into an SD-JWT VC, ``present`` makes a
presentation (with a KB-JWT when ``--nonce`` and ``--aud`` are given), ``verify`` checks one
and ``decode`` shows what is inside without checking anything. TOKEN is a file, or ``-`` for
standard input.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.lang import say
from cli.output import console, emit_json
from vault import FileExists, NoFile, NotAFile
from verifiers.holder import parse_issued, present_sd_jwt
from verifiers.issuer import issue_sd_jwt
from verifiers.jws import (
    Alg,
    BadKey,
    SigningKey,
    VerifyingKey,
    format_jwk,
    format_private_jwk,
    generate_signing_key,
    parse_jwk,
    parse_private_jwk,
    thumbprint,
)
from verifiers.keybinding import KeyBinding
from verifiers.sdjwt import BadClaims, NoSuchClaim, parse_sd_jwt
from verifiers.verifier import verify_sd_jwt

group = typer.Typer(
    name="sdjwt",
    help="SD-JWT VC tools for developers, no vault needed. / SD-JWT-hulpmiddelen (ontwikkelaars).",
    no_args_is_help=True,
)

DAY = 86_400

TokenArgument = Annotated[str, typer.Argument(help="Token file, or '-' for standard input.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable output. / Uitvoer als JSON.")
]


class _PinnedKey:
    """``IssuerKeys`` for a developer who names the issuer's key file: whatever ``iss`` says,
    this is the only key that counts."""

    def __init__(self, key: VerifyingKey) -> None:
        self.key = key

    def key_for(self, iss: str, header: Mapping[str, Any]) -> VerifyingKey:
        return self.key


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    file = Path(path)
    if not file.exists():
        raise NoFile(path=path)
    if not file.is_file():
        raise NotAFile(path=path)
    return file.read_text(encoding="utf-8", errors="replace")


def _json_file(path: Path, fail: type[BadKey] | type[BadClaims]) -> Any:
    try:
        return json.loads(_read(str(path)))
    except ValueError:
        raise fail(f"{path} is not JSON") from None


def _token(path: str) -> str:
    return _read(path).strip()


def _signing_key(path: Path) -> SigningKey:
    return parse_private_jwk(_json_file(path, BadKey))


def _public_key(path: Path) -> VerifyingKey:
    jwk = _json_file(path, BadKey)
    if isinstance(jwk, dict) and "d" in jwk:  # a private file given where a public one fits
        return parse_private_jwk(jwk).public
    return parse_jwk(jwk)


def _write(path: Path, text: str, mode: int) -> None:
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise FileExists(path=str(path)) from None
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)


def _public_path(out: Path) -> Path:
    stem = out.name[: -len(".jwk")] if out.name.endswith(".jwk") else out.name
    return out.with_name(stem + ".pub.jwk")


@group.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Private key file (KEY.jwk). / Sleutelbestand.")
    ],
    alg: Annotated[Alg, typer.Option("--alg", help="ES256 or EdDSA.")] = Alg.ES256,
    as_json: JsonOption = False,
) -> None:
    """Make a key pair: the private JWK (mode 0600) and the public one beside it (KEY.pub.jwk)."""
    key = generate_signing_key(alg)
    kid = thumbprint(key.public)
    private = {**format_private_jwk(key), "kid": kid, "alg": alg.value}
    public = {**format_jwk(key.public), "kid": kid, "alg": alg.value}
    public_path = _public_path(out)
    if public_path.exists():
        raise FileExists(path=str(public_path))
    _write(out, json.dumps(private, indent=2) + "\n", 0o600)
    _write(public_path, json.dumps(public, indent=2) + "\n", 0o644)
    if as_json:
        emit_json({"private": str(out), "public": str(public_path), "kid": kid, "alg": alg.value})
        return
    console.print(
        say(en="Private key: {p} (keep it secret)", nl="Privésleutel: {p} (houd geheim)", p=out),
        markup=False,
    )
    console.print(
        say(en="Public key: {p}", nl="Publieke sleutel: {p}", p=public_path), markup=False
    )


@group.command("issue")
def issue(
    key: Annotated[Path, typer.Option("--key", help="Issuer's private key (KEY.jwk).")],
    iss: Annotated[str, typer.Option("--iss", help="Issuer identifier (an https URL).")],
    vct: Annotated[str, typer.Option("--vct", help="Credential type (vct).")],
    claims: Annotated[Path, typer.Option("--claims", help="Claims as a JSON object file.")],
    holder_key: Annotated[
        Path | None, typer.Option("--holder-key", help="Holder's public key (cnf).")
    ] = None,
    plain: Annotated[
        list[str] | None, typer.Option("--plain", help="A top-level claim to keep visible.")
    ] = None,
    exp_days: Annotated[
        int, typer.Option("--exp-days", min=1, help="Days until it expires.")
    ] = 365,
) -> None:
    """Sign CLAIMS into an SD-JWT VC; every top-level claim is disclosable unless --plain."""
    content = _json_file(claims, BadClaims)
    if not isinstance(content, dict):
        raise BadClaims(f"{claims} does not hold a JSON object")
    visible = set(plain or ())
    if unknown := sorted(visible - set(content)):
        raise NoSuchClaim("--plain", name=unknown[0])
    now = int(time.time())
    token = issue_sd_jwt(
        content,
        issuer_key=_signing_key(key),
        iss=iss,
        vct=vct,
        now=now,
        exp=now + exp_days * DAY,
        holder_key=_public_key(holder_key) if holder_key else None,
        disclosable=[(name,) for name in content if name not in visible],
    )
    sys.stdout.write(token + "\n")


def _path(text: str) -> list[Any]:
    """``name`` for a top-level claim, or a JSON claims path like ``["address","locality"]``."""
    if text.startswith("["):
        try:
            path = json.loads(text)
        except ValueError:
            raise BadClaims(f"--disclose {text!r} is not a JSON array") from None
        return path if isinstance(path, list) else [text]
    return [text]


@group.command("present")
def present(
    token: TokenArgument,
    disclose: Annotated[
        list[str] | None,
        typer.Option(
            "--disclose", help='Claim to show: a name, or a path like ["address","locality"].'
        ),
    ] = None,
    holder_key: Annotated[
        Path | None, typer.Option("--holder-key", help="Holder's private key (for the KB-JWT).")
    ] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="The verifier's nonce.")] = None,
    aud: Annotated[str | None, typer.Option("--aud", help="The verifier's client id.")] = None,
) -> None:
    """Print a presentation of TOKEN that shows only the --disclose claims (KB-JWT with --nonce
    and --aud)."""
    if (nonce is None) != (aud is None):
        raise typer.BadParameter(
            say(
                en="give both --nonce and --aud, or neither",
                nl="geef --nonce en --aud samen, of geen van beide",
            )
        )
    if nonce is not None and holder_key is None:
        raise typer.BadParameter(
            say(en="key binding needs --holder-key", nl="sleutelbinding vraagt om --holder-key")
        )
    held = parse_issued(_token(token))
    paths = [_path(text) for text in disclose or ()]
    if nonce is None:
        presented = present_sd_jwt(held, disclose=paths)
    else:
        presented = present_sd_jwt(
            held,
            disclose=paths,
            holder_key=_signing_key(holder_key),  # type: ignore[arg-type]
            nonce=nonce,
            aud=aud,
            now=int(time.time()),
        )
    sys.stdout.write(presented + "\n")


@group.command("verify")
def verify(
    token: TokenArgument,
    issuer_key: Annotated[Path, typer.Option("--issuer-key", help="Issuer's public key.")],
    nonce: Annotated[
        str | None, typer.Option("--nonce", help="Require a KB-JWT with this nonce.")
    ] = None,
    aud: Annotated[
        str | None, typer.Option("--aud", help="Require a KB-JWT for this client id.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify TOKEN and print its claims, or fail naming the error code. With --nonce and --aud
    a KB-JWT is required; without them, none may be present."""
    if (nonce is None) != (aud is None):
        raise typer.BadParameter(
            say(
                en="give both --nonce and --aud, or neither",
                nl="geef --nonce en --aud samen, of geen van beide",
            )
        )
    binding = KeyBinding(nonce, aud) if nonce is not None and aud is not None else None
    verified = verify_sd_jwt(
        _token(token),
        issuer_keys=_PinnedKey(_public_key(issuer_key)),
        now=int(time.time()),
        key_binding=binding,
    )
    if as_json:
        emit_json(
            {
                "verified": True,
                "issuer": verified.issuer,
                "vct": verified.vct,
                "key_bound": verified.key_bound,
                "disclosed": [list(p) for p in verified.disclosed],
                "claims": verified.claims,
            }
        )
        return
    console.print(
        say(
            en="VERIFIED: issuer {iss}, type {vct}",
            nl="GECONTROLEERD: uitgever {iss}, type {vct}",
            iss=verified.issuer,
            vct=verified.vct,
        ),
        markup=False,
    )
    if verified.key_bound:
        console.print(
            say(
                en="Key binding checked (nonce and aud).",
                nl="Sleutelbinding gecontroleerd (nonce en aud).",
            ),
            markup=False,
        )
    console.print(json.dumps(verified.claims, indent=2, ensure_ascii=False), markup=False)


@group.command("decode")
def decode(token: TokenArgument, as_json: JsonOption = False) -> None:
    """Show the header, payload and disclosures of TOKEN WITHOUT checking anything."""
    parsed = parse_sd_jwt(_token(token))
    content: dict[str, Any] = {
        "verified": False,
        "warning": "UNVERIFIED / NIET GECONTROLEERD",
        "header": parsed.issuer.header,
        "payload": parsed.issuer.payload,
        "disclosures": [
            {"digest": d.digest, "salt": d.salt, "name": d.name, "value": d.value}
            for d in parsed.disclosures
        ],
    }
    if parsed.kb is not None:
        content["kb_jwt"] = {"header": parsed.kb.header, "payload": parsed.kb.payload}
    if as_json:
        emit_json(content)
        return
    warning = say(
        en="UNVERIFIED: nothing below has been checked (signatures, digests, dates).",
        nl="NIET GECONTROLEERD: niets hieronder is gecontroleerd (handtekeningen, hashes, data).",
    )
    console.print(warning, style="bold red", markup=False)
    console.print(json.dumps(content, indent=2, ensure_ascii=False), markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
