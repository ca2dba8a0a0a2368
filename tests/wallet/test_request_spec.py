"""specs/request.md: every example parses, and the purpose element reads as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from wallet.purpose import parse_purpose
from wallet.request import ClientIdPrefix, parse_request

SPEC = (Path(__file__).resolve().parents[2] / "specs" / "request.md").read_text()
BLOCKS = re.findall(r"```json\n(.*?)```", SPEC, re.S)


def _examples() -> list[dict]:
    section = SPEC[SPEC.index("## 7. Examples"):SPEC.index("## 8.")]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


def test_there_is_an_example_for_each_credential_type() -> None:
    examples = _examples()
    vcts = {q["meta"]["vct_values"][0] for e in examples for q in e["dcql_query"]["credentials"]}
    assert len(examples) == 4 and {v.rsplit("/", 1)[1] for v in vcts} == {
        "personal-data", "income-statement", "diploma", "employee-card"}


def test_every_example_is_a_valid_request() -> None:
    for example in _examples():
        request = parse_request(example)
        assert request.purpose.retention.duration
        assert request.prefix in (ClientIdPrefix.X509_HASH, ClientIdPrefix.REDIRECT_URI)


def test_the_purpose_element_example_parses() -> None:
    element = json.loads(BLOCKS[0])
    purpose = parse_purpose([element])
    assert purpose.purpose_id == "wmo-household-help"
    assert purpose.legal_basis.reference == "https://wetten.overheid.nl/BWBR0035362"


def test_the_income_example_makes_the_gross_income_optional() -> None:
    income = next(e for e in _examples() if e["state"] == "huur-2027-118")
    sets = income["dcql_query"]["credentials"][0]["claim_sets"]
    assert set(sets[0]) - set(sets[1]) == {"gross"}
