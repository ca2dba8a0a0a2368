"""``kluis trustlist``: write, sign and check a trust list of agencies (for developers and the
trust anchor; no vault needed). The format is ``specs/trustlist.md``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from jwcrypto.jwk import JWK

from cli import file
from cli.commands.profile import JsonOption
from cli.lang import lang, say
from cli.output import console, emit_json, err_console
from vault import KluisError
from verifiers import (
    INCOME_STATEMENT,
    PERSONAL_DATA,
    Agency,
    Role,
    TrustAnchor,
    TrustList,
    format_trust_list,
    label,
    parse_trust_list,
    path_text,
    sign_trust_list,
    trust_list_hash,
    verify_trust_list,
)
from verifiers.jws import b64url_decode, parse_jwk, thumbprint

group = typer.Typer(
    name="trustlist",
    help=(
        "Write, sign and check a trust list of agencies (for developers). / "
        "Maak, onderteken en controleer een vertrouwenslijst (voor ontwikkelaars)."
    ),
    no_args_is_help=True,
)

_TIME = "%Y-%m-%dT%H:%M:%SZ"


@group.command("create")
def create(
    anchor_name: Annotated[
        str,
        typer.Option("--anchor-name", help="The trust anchor's name. / Naam van het anker."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="New file for the unsigned list. / Nieuw bestand.")
    ],
    agency: Annotated[
        list[Path] | None,
        typer.Option(
            "--agency",
            help="A file with one agency (repeat). / Bestand met één organisatie (herhaal).",
        ),
    ] = None,
    valid_days: Annotated[
        int,
        typer.Option("--valid-days", min=1, max=3660, help="Days until next_update. / Dagen."),
    ] = 30,
    sequence: Annotated[
        int,
        typer.Option("--sequence", min=0, max=2**53 - 1, help="Version number. / Versienummer."),
    ] = 1,
    list_id: Annotated[
        str | None,
        typer.Option("--list-id", help="Which list (default: the anchor name). / Welke lijst."),
    ] = None,
) -> None:
    """Write an unsigned trust list; without --agency, a template to edit.
    / Maak een niet-ondertekende lijst; zonder --agency een voorbeeld."""
    now = datetime.now(UTC).replace(microsecond=0)
    agencies = [_agency_file(path) for path in agency or ()] or _example_agencies()
    doc = {
        "list_id": list_id or anchor_name,
        "issuer": anchor_name,
        "issued_at": now.strftime(_TIME),
        "next_update": (now + timedelta(days=valid_days)).strftime(_TIME),
        "sequence": sequence,
        "agencies": agencies,
    }
    trust_list = parse_trust_list(doc)
    file.write_new(out, _document_bytes(trust_list))
    if not agency:
        _explain_template(out)
        return
    console.print(
        say(
            en="Wrote the unsigned trust list {path} with {count} agencies, valid until {until}."
            " Check it, then sign it with 'kluis trustlist sign'.",
            nl="De niet-ondertekende vertrouwenslijst {path} is gemaakt, met {count}"
            " organisaties, geldig tot {until}. Controleer haar en onderteken haar dan met"
            " 'kluis trustlist sign'.",
            path=out,
            count=len(trust_list.agencies),
            until=doc["next_update"],
        ),
        markup=False,
    )


@group.command("sign")
def sign(
    document: Annotated[
        Path, typer.Argument(metavar="DOC.json", help="The unsigned list. / De lijst.")
    ],
    key: Annotated[
        Path, typer.Option("--key", help="The anchor's private JWK. / Privésleutel van het anker.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The signed list. / De ondertekende lijst.")],
) -> None:
    """Check and sign a trust list. / Controleer en onderteken een vertrouwenslijst."""
    trust_list = parse_trust_list(file.read_bytes(document))
    signed = sign_trust_list(trust_list, file.read_private_jwk(key))
    file.replace(out, signed.encode("ascii"))
    if trust_list.next_update <= datetime.now(UTC):
        err_console.print(
            say(
                en="Note: this list is out of date already (next_update has passed).",
                nl="Let op: deze lijst is al verouderd (next_update is voorbij).",
            ),
            markup=False,
        )
    console.print(
        say(
            en="Signed {count} agencies, sequence {sequence}, valid until {until}, into {path}."
            " Hash of this version: {hash}",
            nl="{count} organisaties ondertekend, volgnummer {sequence}, geldig tot {until},"
            " in {path}. Hash van deze versie: {hash}",
            count=len(trust_list.agencies),
            sequence=trust_list.sequence,
            until=trust_list.next_update.strftime(_TIME),
            path=out,
            hash=trust_list_hash(signed),
        ),
        markup=False,
    )


@group.command("verify")
def verify(
    signed_list: Annotated[
        str,
        typer.Argument(metavar="LIST.jws", help="The signed list ('-': stdin). / De lijst."),
    ],
    anchor: Annotated[
        Path, typer.Option("--anchor", help="The anchor's public JWK. / Publieke sleutel.")
    ],
    anchor_name: Annotated[
        str | None,
        typer.Option(
            "--anchor-name",
            help="Also require this anchor name (default: only the key is checked). / Naam.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check a signed trust list and show its agencies.
    / Controleer een vertrouwenslijst en toon de organisaties."""
    signed = file.read_bytes(signed_list).decode("ascii", "replace").removesuffix("\n")
    key = file.read_public_jwk(anchor)
    name = anchor_name if anchor_name is not None else _claimed_issuer(signed)
    trust_list = verify_trust_list(signed, TrustAnchor.from_jwk(name, key), now=datetime.now(UTC))
    if json_output:
        emit_json({"hash": trust_list_hash(signed), "list": format_trust_list(trust_list)})
        return
    _show(trust_list, trust_list_hash(signed))


def _agency_file(path: Path) -> Any:
    """One agency object from ``path``; a key without ``kid`` gets its RFC 7638 thumbprint,
    as each key on the list needs one (specs/trustlist.md §3) and the keygen may not set it."""
    agency = file.read_json(path)
    keys = agency.get("jwks", {}).get("keys") if isinstance(agency, dict) else None
    for jwk in keys if isinstance(keys, list) else ():
        if isinstance(jwk, dict) and "kid" not in jwk:
            try:
                jwk["kid"] = thumbprint(parse_jwk(jwk))
            except KluisError:
                pass  # left as it is: the schema check names the bad key
    return agency


def _document_bytes(trust_list: TrustList) -> bytes:
    text = json.dumps(format_trust_list(trust_list), ensure_ascii=False, indent=2)
    return (text + "\n").encode()


def _claimed_issuer(signed: str) -> str:
    """The ``issuer`` the list claims, to name the anchor when only its key was given.

    Read before verification only to fill in the name: every check still runs, and the
    anchor's key is what decides. Unreadable input gives "", and verification says why.
    """
    parts = signed.split(".")
    try:
        claimed = json.loads(b64url_decode(parts[1])) if len(parts) == 3 else None
    except (KluisError, ValueError, RecursionError):
        return ""
    issuer = claimed.get("issuer") if isinstance(claimed, dict) else None
    return issuer if isinstance(issuer, str) else ""


def _example_agencies() -> list[dict[str, Any]]:
    """An issuer and a verifier to edit. Their keys are made now and the private halves
    dropped, so a forgotten example can never sign anything."""
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519", kid="example-issuer-1")
    verifier_key = JWK.generate(kty="EC", crv="P-256", kid="example-verifier-1")
    return [
        {
            "id": "https://issuer.example",
            "names": {"nl": "Voorbeelduitgever (vervang dit)", "en": "Example issuer (replace)"},
            "roles": ["issuer"],
            "jwks": {"keys": [issuer_key.export_public(as_dict=True)]},
        },
        {
            "id": "https://verifier.example",
            "names": {"nl": "Voorbeeldvrager (vervang dit)", "en": "Example verifier (replace)"},
            "roles": ["verifier"],
            "jwks": {"keys": [verifier_key.export_public(as_dict=True)]},
            "purposes": [
                {
                    "id": "example-purpose",
                    "dpv": "dpv:ServiceProvision",
                    "description": {
                        "nl": "Waarvoor de organisatie de gegevens vraagt",
                        "en": "What the agency asks the data for",
                    },
                    "legal_basis": {
                        "nl": "De wet en het artikel",
                        "en": "The law and the article",
                        "reference": "https://wetten.overheid.nl/",
                    },
                    "processing_activity": "register-id-of-the-processing-activity",
                    "credentials": [
                        {"vct": PERSONAL_DATA, "claims": [["given_name"], ["family_name"]]},
                        {"vct": INCOME_STATEMENT, "claims": [["income_bracket"]]},
                    ],
                }
            ],
        },
    ]


def _explain_template(out: Path) -> None:
    console.print(
        say(
            en="""Wrote a template trust list to {path},
with one example issuer and one example verifier.
Edit it (the format is in specs/trustlist.md):
  - id: the agency's https address; it is the 'iss' of the credentials it issues.
  - names: the name citizens see, in Dutch (nl) and English (en).
  - roles: issuer, verifier, or both.
  - jwks: the agency's public keys, e.g. KEY.pub.jwk from 'kluis sdjwt keygen', each with a kid.
    The example keys were made just now without keeping their private halves: nothing can be
    signed with them.
  - purposes (verifiers only): per purpose, its DPV term, description, legal basis, the id in
    the agency's processing register, and per credential type (vct) the claims it may ask for.
Or build the list from files that each hold one agency object:
  kluis trustlist create --anchor-name NAME --agency A.json --agency B.json --out {path}
Then sign it: kluis trustlist sign {path} --key ANCHOR.jwk --out LIST.jws""",
            nl="""Een voorbeeld-vertrouwenslijst staat in {path},
met één voorbeelduitgever en één voorbeeldvrager.
Pas haar aan (het formaat staat in specs/trustlist.md):
  - id: het https-adres van de organisatie; dit is de 'iss' van de bewijzen die zij uitgeeft.
  - names: de naam die burgers zien, in het Nederlands (nl) en het Engels (en).
  - roles: issuer (uitgever), verifier (vrager), of beide.
  - jwks: de publieke sleutels van de organisatie, bijvoorbeeld KEY.pub.jwk van
    'kluis sdjwt keygen', elk met een kid. De voorbeeldsleutels zijn net gemaakt zonder hun
    privédeel te bewaren: er kan niets mee worden ondertekend.
  - purposes (alleen vragers): per doel de DPV-term, de beschrijving, de grondslag, het nummer
    in het verwerkingsregister, en per soort bewijs (vct) de gegevens die gevraagd mogen worden.
Of maak de lijst uit bestanden met elk één organisatie:
  kluis trustlist create --anchor-name NAAM --agency A.json --agency B.json --out {path}
Onderteken haar daarna: kluis trustlist sign {path} --key ANKER.jwk --out LIJST.jws""",
            path=out,
        ),
        markup=False,
    )


def _role(role: Role) -> str:
    if role is Role.ISSUER:
        return say(en="issuer", nl="uitgever")
    return say(en="verifier", nl="vrager")


def _claim(vct: str, path: tuple[Any, ...]) -> str:
    text = path_text(path)
    try:
        return f"{text} ({label(vct, path, lang())})"
    except KluisError:  # a type kluis ships no labels for: the path says enough
        return text


def _show(trust_list: TrustList, version_hash: str) -> None:
    lines = [
        say(
            en="Trust list {id}, sequence {sequence}, signed by '{anchor}'.",
            nl="Vertrouwenslijst {id}, volgnummer {sequence}, ondertekend door '{anchor}'.",
            id=trust_list.list_id,
            sequence=trust_list.sequence,
            anchor=trust_list.issuer,
        ),
        say(
            en="Issued {issued}, valid until {until}. Hash: {hash}",
            nl="Uitgegeven {issued}, geldig tot {until}. Hash: {hash}",
            issued=trust_list.issued_at.strftime(_TIME),
            until=trust_list.next_update.strftime(_TIME),
            hash=version_hash,
        ),
    ]
    if not trust_list.agencies:
        lines.append(say(en="The list names no agencies.", nl="De lijst noemt geen organisaties."))
    for agency in trust_list.agencies:
        lines += ["", *_agency_lines(agency)]
    console.print("\n".join(lines), markup=False)


def _agency_lines(agency: Agency) -> list[str]:
    lines = [
        f"{agency.names.nl} / {agency.names.en}",
        f"  id: {agency.id}",
        say(
            en="  roles: {roles}", nl="  rollen: {roles}", roles=", ".join(map(_role, agency.roles))
        ),
        say(
            en="  keys: {kids}",
            nl="  sleutels: {kids}",
            kids=", ".join(k.kid for k in agency.jwks.keys),
        ),
    ]
    for purpose in agency.purposes or ():
        lines += [
            say(
                en="  purpose {id} ({dpv}): {text}",
                nl="  doel {id} ({dpv}): {text}",
                id=purpose.id,
                dpv=purpose.dpv,
                text=purpose.description.text(lang()),
            ),
            say(
                en="    legal basis: {text}",
                nl="    grondslag: {text}",
                text=purpose.legal_basis.text(lang()),
            ),
        ]
        for registration in purpose.credentials:
            claims = [_claim(registration.vct, path) for path in registration.claims]
            allowed = ", ".join(claims) or say(
                en="only what is always shared", nl="alleen wat altijd gedeeld wordt"
            )
            lines.append(f"    {registration.vct}: {allowed}")
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(group)
