"""The credential types kluis knows: personal data, income statement, diploma, employee card.

Each type has an SD-JWT VC Type Metadata document (draft-ietf-oauth-sd-jwt-vc-18 §4: names,
claim labels in Dutch and English, which claims are selectively disclosable) and a JSON
Schema (2020-12) of the processed payload. Both ship inside this package under ``types/``
(``importlib.resources``), because a wallet needs the labels at run time wherever it is
installed; ``specs/credentials/`` holds the same files for readers, and a test keeps the two
copies identical. Claims are validated at run time by strict pydantic models that mirror the
schemas (the tests check that schema and model agree on good and bad samples).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from vault import InvalidInput, NotFound
from verifiers._document import FullDate, HttpsUrl
from verifiers.claim_path import ClaimPath, covers

PERSONAL_DATA = "https://kluis.example/vct/personal-data"
INCOME_STATEMENT = "https://kluis.example/vct/income-statement"
DIPLOMA = "https://kluis.example/vct/diploma"
EMPLOYEE_CARD = "https://kluis.example/vct/employee-card"

FILES = {
    PERSONAL_DATA: "personal-data",
    INCOME_STATEMENT: "income-statement",
    DIPLOMA: "diploma",
    EMPLOYEE_CARD: "employee-card",
}
"""vct -> the file stem of its ``.metadata.json`` and ``.schema.json``."""


class UnknownType(NotFound):
    code = "credential_type.unknown_type"
    en = "kluis does not know this kind of document."
    nl = "kluis kent dit soort document niet."


class UnknownClaim(NotFound):
    code = "credential_type.unknown_claim"
    en = "This kind of document has no such piece of data."
    nl = "Dit soort document heeft zo'n gegeven niet."


class InvalidClaims(InvalidInput):
    code = "credential_type.invalid_claims"
    en = "The document's data does not fit its kind. Ask the organisation that issued it."
    nl = "De gegevens in het document passen niet bij het soort document. Vraag het de uitgever."


class Disclosability(StrEnum):
    """The ``sd`` of a claim (SD-JWT VC draft-18 §4.6.4)."""

    ALWAYS = "always"
    ALLOWED = "allowed"
    NEVER = "never"


@dataclass(frozen=True)
class ClaimInfo:
    """What the type metadata says of one claim: labels, descriptions, ``sd``, ``mandatory``."""

    path: ClaimPath
    labels: Mapping[str, str]
    descriptions: Mapping[str, str]
    sd: Disclosability
    mandatory: bool


@dataclass(frozen=True)
class CredentialType:
    """One credential type: its metadata, its claims and its JSON Schema."""

    vct: str
    names: Mapping[str, str]
    descriptions: Mapping[str, str]
    claims: tuple[ClaimInfo, ...]
    metadata: Mapping[str, Any]
    schema: Mapping[str, Any]

    def claim(self, path: ClaimPath) -> ClaimInfo:
        """The metadata of the claim at ``path`` (an index matches a ``null`` in the metadata).

        Raises ``credential_type.unknown_claim``.
        """
        for info in self.claims:
            if len(info.path) == len(path) and covers(info.path, path):
                return info
        raise UnknownClaim(f"SD-JWT VC draft-18 §4.6: {self.vct} describes no claim {list(path)}")


def credential_types() -> tuple[str, ...]:
    """The vct of every type kluis ships."""
    return tuple(FILES)


@cache
def credential_type(vct: str) -> CredentialType:
    """The type ``vct``, loaded from the package data; raises ``credential_type.unknown_type``."""
    stem = FILES.get(vct)
    if stem is None:
        raise UnknownType(f"kluis ships no type metadata for {vct!r}")
    folder = resources.files("verifiers") / "types"
    metadata = _TypeMetadata.model_validate_json((folder / f"{stem}.metadata.json").read_bytes())
    schema = json.loads((folder / f"{stem}.schema.json").read_text(encoding="utf-8"))
    return CredentialType(
        vct=metadata.vct,
        names=MappingProxyType({d.locale: d.name for d in metadata.display}),
        descriptions=MappingProxyType({d.locale: d.description for d in metadata.display}),
        claims=tuple(
            ClaimInfo(
                path=c.path,
                labels=MappingProxyType({d.locale: d.label for d in c.display}),
                descriptions=MappingProxyType({d.locale: d.description for d in c.display}),
                sd=Disclosability(c.sd),
                mandatory=c.mandatory,
            )
            for c in metadata.claims
        ),
        metadata=MappingProxyType(json.loads((folder / f"{stem}.metadata.json").read_bytes())),
        schema=MappingProxyType(schema),
    )


def label(vct: str, path: ClaimPath, lang: str) -> str:
    """The label of the claim at ``path`` in ``lang`` (``nl`` or ``en``; Dutch otherwise).

    The registered JWT claims (``iss``, ``iat``, ``cnf``, ...) have labels of their own, as
    they appear on consent screens as "always shared". Raises ``credential_type.unknown_type``
    or ``credential_type.unknown_claim``.
    """
    lang = "en" if lang == "en" else "nl"
    if len(path) == 1 and isinstance(path[0], str) and path[0] in REGISTERED_LABELS:
        return REGISTERED_LABELS[path[0]][lang]
    return credential_type(vct).claim(path).labels[lang]


def validate_claims(vct: str, claims: Mapping[str, Any]) -> None:
    """Check the processed payload ``claims`` of a credential of type ``vct``.

    Every mandatory claim is present, no unknown claim is, each value has the form of the
    type's JSON Schema (``specs/credentials/<type>.schema.json``). The registered JWT claims
    may be present; ``vct``, if present, must be ``vct``. Raises
    ``credential_type.unknown_type`` or ``credential_type.invalid_claims`` (detail: the claim).
    """
    model = _MODELS.get(vct)
    if model is None:
        raise UnknownType(f"kluis ships no type metadata for {vct!r}")
    if not isinstance(claims, Mapping):
        raise InvalidClaims("SD-JWT VC draft-18 §2.2.2: the payload is a JSON object")
    if nulls := [name for name, value in claims.items() if value is None]:
        raise InvalidClaims(f"specs/credentials/{FILES[vct]}.schema.json: {nulls[0]} is null")
    if "vct" in claims and claims["vct"] != vct:
        raise InvalidClaims(f"SD-JWT VC draft-18 §2.2.2.1: vct is not {vct}")
    try:
        model.model_validate(dict(claims))
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise InvalidClaims(
            f"specs/credentials/{FILES[vct]}.schema.json: {where}: {first['msg']}"
        ) from None


REGISTERED_LABELS: dict[str, dict[str, str]] = {
    "iss": {"nl": "Uitgever", "en": "Issuer"},
    "sub": {"nl": "Onderwerp", "en": "Subject"},
    "vct": {"nl": "Soort document", "en": "Type of document"},
    "iat": {"nl": "Uitgegeven op", "en": "Issued on"},
    "nbf": {"nl": "Geldig vanaf", "en": "Valid from"},
    "exp": {"nl": "Geldig tot", "en": "Valid until"},
    "cnf": {"nl": "Sleutel van de houder", "en": "Holder's key"},
    "status": {"nl": "Plek van de intrekkingsstatus", "en": "Where revocation is checked"},
}


# --- the type metadata documents (SD-JWT VC draft-18 §4.2, §4.5, §4.6) -----------------------

_CLOSED = ConfigDict(strict=True, frozen=True, extra="forbid")
Locale = Literal["nl", "en"]


class _Display(BaseModel):
    model_config = _CLOSED
    locale: Locale
    name: str
    description: str


class _ClaimDisplay(BaseModel):
    model_config = _CLOSED
    locale: Locale
    label: str
    description: str


class _ClaimMetadata(BaseModel):
    model_config = _CLOSED
    path: tuple[str | int | None, ...]
    display: tuple[_ClaimDisplay, ...]
    mandatory: bool = False
    sd: Literal["always", "allowed", "never"] = "allowed"


class _TypeMetadata(BaseModel):
    # Our own files are closed so a typo fails the tests; §4.2 has consumers of other
    # parties' metadata ignore unknown members instead.
    model_config = _CLOSED
    vct: str
    name: str
    description: str
    display: tuple[_Display, ...]
    claims: tuple[_ClaimMetadata, ...]


# --- the claims, as strict models mirroring the JSON Schemas ---------------------------------

Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Payload(BaseModel):
    """The registered JWT claims every type allows (RFC 7519 §4.1, SD-JWT VC draft-18 §2.2.2)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", populate_by_name=False)
    iss: HttpsUrl | None = None
    sub: Text | None = None
    vct: Text | None = None
    iat: Annotated[int, Field(ge=0)] | None = None
    nbf: Annotated[int, Field(ge=0)] | None = None
    exp: Annotated[int, Field(ge=0)] | None = None
    cnf: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    vct_integrity: Text | None = Field(default=None, alias="vct#integrity")


class _Address(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    street_address: Text
    house_number: Annotated[
        str, StringConstraints(pattern=r"^[1-9][0-9]{0,4}(?:[ -]?[A-Za-z0-9]{1,4})?$")
    ]
    postal_code: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{3} ?[A-Z]{2}$")]
    locality: Text
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _PersonalData(_Payload):
    given_name: Text
    family_name: Text
    birthdate: FullDate
    bsn: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
    address: _Address


class _IncomeBracket(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,8}$")]
    label: Text


class _IncomeStatement(_Payload):
    tax_year: Annotated[int, Field(ge=2000, le=2100)]
    gross_income: Annotated[int, Field(ge=0, le=10**12)]
    income_bracket: _IncomeBracket


class _Diploma(_Payload):
    institution: Text
    degree: Text
    date_awarded: FullDate


class _EmployeeCard(_Payload):
    given_name: Text
    family_name: Text
    role: Text
    organisation: Text


_MODELS: dict[str, type[_Payload]] = {
    PERSONAL_DATA: _PersonalData,
    INCOME_STATEMENT: _IncomeStatement,
    DIPLOMA: _Diploma,
    EMPLOYEE_CARD: _EmployeeCard,
}
