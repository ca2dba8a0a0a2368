"""A small consent-log story for the log, export, replay and reconcile tests: agencies, a
trust list, a receipt key, and builders of the entries one release produces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jwcrypto.jwk import JWK

from verifiers import LegalBasis, LocalizedText
from verifiers import log_entry as le
from verifiers.audit_export import EarlierCheckpoint, write_export
from verifiers.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from verifiers.merkle import prove_consistency, root_at
from verifiers.note import Signer, format_verifier_key
from verifiers.receipt import (
    ReceiptPurpose,
    Retention,
    hash_presentation,
    issue_receipt,
    verify_receipt,
)
from verifiers.tlog import MemoryLogStore, Record, append
from verifiers.trustlist import sign_trust_list

UTRECHT = le.Party("https://utrecht.kluis.example", "Gemeente Utrecht", "Municipality of Utrecht")
INCOME = "https://kluis.example/vct/income-statement"
PERSONAL = "https://kluis.example/vct/personal-data"
WMO = le.Purpose(
    "wmo-household-help",
    "dpv:ServiceProvision",
    LocalizedText(nl="Wmo huishoudelijke hulp", en="Wmo household help"),
)
BASIS = LegalBasis(nl="Wmo 2015 art. 2.3.2", en="Wmo 2015 art. 2.3.2")
START = datetime(2027, 3, 3, 10, 15, tzinfo=UTC)
RECEIPT_KEY = JWK.generate(kty="OKP", crv="Ed25519", kid="utrecht-1")
ANCHOR_KEY = JWK.generate(kty="OKP", crv="Ed25519", kid="anchor-1")
TRUST_LIST = sign_trust_list({
    "list_id": "https://trust.kluis.example/nl",
    "issuer": "kluis test anchor",
    "issued_at": "2027-03-01T00:00:00Z",
    "next_update": "2027-04-01T00:00:00Z",
    "sequence": 12,
    "agencies": [{
        "id": UTRECHT.id,
        "names": {"nl": "Gemeente Utrecht", "en": "Municipality of Utrecht"},
        "roles": ["verifier"],
        "jwks": {"keys": [RECEIPT_KEY.export_public(as_dict=True)]},
        "purposes": [{
            "id": WMO.id, "dpv": WMO.dpv,
            "description": {"nl": "Wmo huishoudelijke hulp", "en": "Wmo household help"},
            "legal_basis": {"nl": "Wmo 2015 art. 2.3.2", "en": "Wmo 2015 art. 2.3.2"},
            "processing_activity": "utrecht-va-0042",
            "credentials": [{"vct": INCOME, "claims": [["income_bracket"]]},
                            {"vct": PERSONAL, "claims": [["family_name"]]}],
        }],
    }],
}, ANCHOR_KEY)


@dataclass
class Story:
    """Appends a citizen's log to an in-memory store, one request at a time. The sample
    agency, types and purpose are class attributes, so tests reach them through the fixture
    (conftest modules cannot be imported in importlib mode)."""

    UTRECHT = UTRECHT
    INCOME = INCOME
    PERSONAL = PERSONAL
    WMO = WMO
    BASIS = BASIS
    RECEIPT_KEY = RECEIPT_KEY
    TRUST_LIST = TRUST_LIST

    signer: Signer
    store: MemoryLogStore = field(default_factory=MemoryLogStore)
    now: datetime = START
    tokens: dict[str, str] = field(default_factory=dict)

    def add(self, *records: Record, later: timedelta = timedelta(minutes=1)) -> None:
        append(self.store, self.signer, list(records), now=self.now)
        self.now += later

    def request(self, rid: str, *, registered: bool = True, expires: timedelta = timedelta(days=1),
                claims: tuple[tuple[str, ...], ...] = (("income_bracket",),),
                trust: bool = False) -> None:
        self.add(le.request_received(
            rid, UTRECHT, registered=registered, purpose=WMO, legal_basis=BASIS,
            retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
            expires_at=self.now + expires,
            claims=[le.ClaimRef(INCOME, path) for path in claims],
            trust_list=(12, TRUST_LIST) if trust else None,
        ))

    def approve(
        self, rid: str, claims: tuple[tuple[str, ...], ...] = (("income_bracket",),)
    ) -> None:
        self.add(le.request_approved(rid, UTRECHT, [
            le.ReleasedCredential("cred-income", INCOME, [(p, f"value of {p}") for p in claims])
        ]))

    def send(self, rid: str, claims: tuple[tuple[str, ...], ...] = (("income_bracket",),),
             outcome: le.Outcome = le.Outcome.SENT, receipt: bool = True) -> str:
        presentation = f"presentation-of-{rid}-{len(self.tokens)}"
        digest = hash_presentation(presentation)
        self.add(le.presentation_sent(
            rid, UTRECHT, [le.SentPresentation("cred-income", INCOME, digest, claims)], outcome,
            None if outcome == le.Outcome.SENT else "network.unreachable",
        ))
        if receipt and outcome == le.Outcome.SENT:
            token = issue_receipt(
                presentation, verifier=UTRECHT.id, request_id=rid, vct=INCOME, claims=claims,
                purpose=ReceiptPurpose(id=WMO.id, dpv=WMO.dpv), legal_basis=BASIS,
                retention=Retention(duration="P2Y"), processing_activity="utrecht-va-0042",
                received_at=self.now, key=RECEIPT_KEY,
            )
            self.tokens[rid] = token
            self.add(le.receipt_received(rid, token, verify_receipt(token, RECEIPT_KEY)))
        return digest

    def checkpoint_at(self, size: int) -> str:
        """A checkpoint of the first ``size`` entries, signed by the log's key."""
        checkpoint = Checkpoint(self.signer.name, size, root_at(size, self.store))
        return sign_checkpoint(checkpoint, self.signer)

    def export(self, target: Path, *, size: int | None = None,
               earlier: tuple[str, ...] = ()) -> Path:
        """Write the log (its first ``size`` entries) as an audit export at ``target``."""
        head = self.store.head()
        size = head.size if size is None else size
        note = head.checkpoint if size == head.size else self.checkpoint_at(size)
        olds = []
        for old_note in earlier:
            old = parse_checkpoint(old_note.split("\n\n")[0] + "\n")
            olds.append(EarlierCheckpoint(old_note, old.size,
                                          prove_consistency(old.size, size, self.store)))
        write_export(target, lines=self.store.lines(0, size), size=size,
                     attachments=self.store.attachments(0, size), checkpoint=note,
                     verifier_key=format_verifier_key(self.signer.verifier_key), earlier=olds)
        return target

    def release(self, rid: str) -> str:
        """The clean path: request, approval, presentation, receipt."""
        self.request(rid)
        self.approve(rid)
        return self.send(rid)


@pytest.fixture(scope="session")
def log_signer() -> Signer:
    return Signer.generate("kluis.local/log/tests")


@pytest.fixture
def story(log_signer: Signer) -> Story:
    return Story(log_signer)


@pytest.fixture
def new_story(log_signer: Signer) -> Callable[[], Story]:
    """A factory, for tests that need more than one log (with the same key)."""
    return lambda: Story(log_signer)
