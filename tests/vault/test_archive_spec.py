"""specs/archive.md's worked example opens with its passphrase: the spec and the code agree."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from vault import WrongArchivePassphrase
from vault.envelope import open_stream

SPEC = Path(__file__).resolve().parents[2] / "specs" / "archive.md"


def _example() -> bytes:
    text = SPEC.read_text()
    section = text[text.index("### 3.2 Worked example") :]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    return bytes.fromhex("".join(block.group(1).split()))


def test_worked_example_opens_and_is_empty() -> None:
    example = _example()
    assert len(example) == 117 and example.startswith(b"KLUISARC")
    reader = open_stream(io.BytesIO(example), "example export passphrase")
    assert reader.read() == b""


def test_worked_example_refuses_another_passphrase() -> None:
    with pytest.raises(WrongArchivePassphrase):
        open_stream(io.BytesIO(_example()), "Example export passphrase")
