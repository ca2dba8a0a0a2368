"""The replay's grant rules (``specs/grant.md`` §8): a clean grant is clean; a use after the
revocation or the end date, of an item outside the grant, by another agency, or without a
grant is found with its code, whichever order the wallet logged the entries in."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from verifiers import log_entry as le
from verifiers.replay import Violation, replay_export
from verifiers.tlog import BadEntry, Record

GRANT = "gR4nT-0123456789abcdefg"
OTHER = le.Party("https://shop.example")


def _created(story, *, days: int = 30, grant: str = GRANT) -> datetime:
    """Log a grant valid for ``days`` from now; the moment it was made."""
    made = story.now
    story.add(le.grant_created(
        grant, story.UTRECHT, purpose=story.WMO, legal_basis=story.BASIS,
        processing_activity="utrecht-va-0042", valid_until=story.now + timedelta(days=days),
        items=[le.GrantItem("income", claims=[le.ClaimRef(story.INCOME, ("income_bracket",))]),
               le.GrantItem("care-plan", vault_item="zorgplan")]))
    return made


def _used(story, at: datetime, number: int, *, item: str = "income",
          agency: le.Party | None = None, grant: str = GRANT,
          outcome: le.FetchOutcome = le.FetchOutcome.SERVED) -> le.Record:
    served = outcome is le.FetchOutcome.SERVED
    return le.grant_used(grant, agency or story.UTRECHT, item=item,
                         fetch_id=f"fetch-{number:04d}-{item}-{at.timestamp():.0f}",
                         fetched_at=at, outcome=outcome, number=number if served else None,
                         version=1 if served else None,
                         error=None if served else "grant.revoked")


def _revoked(story, at: datetime, served: int) -> le.Record:
    return le.grant_revoked(GRANT, story.UTRECHT, revoked_at=at, served=served)


def _findings(story, tmp_path: Path) -> list[Violation]:
    report = replay_export(story.export(tmp_path / "export"))
    return [f.violation for f in report.findings]


def test_a_grant_read_twice_then_revoked_is_clean(story, tmp_path: Path) -> None:
    start = _created(story)
    story.add(_used(story, start + timedelta(hours=1), 1),
              _used(story, start + timedelta(hours=2), 2, item="care-plan"))
    story.add(_revoked(story, start + timedelta(hours=3), 2),
              _used(story, start + timedelta(hours=4), 0, outcome=le.FetchOutcome.REFUSED))
    report = replay_export(story.export(tmp_path / "export"))
    assert report.clean, report.findings
    assert (report.grants, report.grant_uses) == (1, 2)


def test_a_use_after_revocation_is_found_in_either_order(story, tmp_path: Path) -> None:
    start = _created(story)
    story.add(_used(story, start + timedelta(hours=1), 1))
    story.add(_revoked(story, start + timedelta(hours=2), 1))
    story.add(_used(story, start + timedelta(hours=3), 2))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_AFTER_REVOCATION]


def test_a_use_logged_before_the_revocation_but_served_after_it_is_found(
        story, tmp_path: Path) -> None:
    start = _created(story)
    story.add(_used(story, start + timedelta(hours=3), 1))
    story.add(_revoked(story, start + timedelta(hours=2), 0))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_AFTER_REVOCATION]


def test_a_fetch_numbered_beyond_the_revocation_count_is_found(story, tmp_path: Path) -> None:
    """Same second as the revocation, but the relay said it had served one fetch only."""
    start = _created(story)
    at = start + timedelta(hours=1)
    story.add(_used(story, at, 1))
    story.add(_revoked(story, at, 1))
    story.add(_used(story, at, 2))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_AFTER_REVOCATION]


def test_a_use_at_or_after_the_end_date_is_found(story, tmp_path: Path) -> None:
    start = _created(story, days=1)
    story.add(_used(story, start + timedelta(days=1) - timedelta(seconds=1), 1))
    story.add(_used(story, start + timedelta(days=1), 2))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_AFTER_EXPIRY]


def test_an_item_outside_the_grant_is_found(story, tmp_path: Path) -> None:
    start = _created(story)
    story.add(_used(story, start + timedelta(hours=1), 1, item="bank-statement"))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_OUTSIDE_GRANT]


def test_another_agency_and_no_grant_are_found(story, tmp_path: Path) -> None:
    start = _created(story)
    story.add(_used(story, start + timedelta(hours=1), 1, agency=OTHER))
    story.add(_used(story, start + timedelta(hours=1), 1, grant="no-such-grant-000000000"))
    assert _findings(story, tmp_path) == [Violation.GRANT_USE_BY_OTHER_AGENCY,
                                          Violation.GRANT_USE_WITHOUT_GRANT]


def test_a_grant_id_used_twice_is_found(story, tmp_path: Path) -> None:
    _created(story)
    _created(story)
    assert _findings(story, tmp_path) == [Violation.GRANT_REUSED]


@pytest.mark.parametrize("broken", [{"number": "1"}, {"fetched_at": "yesterday"},
                                    {"agency": "https://utrecht.kluis.example"}])
def test_a_served_fetch_missing_what_the_policy_reads_is_a_bad_entry(story, tmp_path: Path,
                                                                     broken: dict) -> None:
    start = _created(story)
    record = _used(story, start + timedelta(hours=1), 1)
    story.add(Record(record.kind, {**record.body, **broken}))
    with pytest.raises(BadEntry):
        replay_export(story.export(tmp_path / "export"))
