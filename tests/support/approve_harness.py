"""Test harness for the crash test (not product code): runs ``kluis request approve`` in this
process, on a fixed clock, and can stop dead at one named point so the test can SIGKILL it
there.

``KLUIS_TEST_PAUSE`` names the point; on reaching it the harness writes the point's name to
``KLUIS_TEST_SIGNAL`` and sleeps until it is killed. Points, in the order a run meets them:

- ``before_approve``: the consent screen is shown, nothing decided yet;
- ``approval_appended``: the ``request_approved`` entry is written inside the approval's
  transaction, which has not committed;
- ``approved``: the approval has committed, nothing is written yet;
- ``half_written``: half of the response is in the temporary file beside the target;
- ``temp_written``: the whole response is in the temporary file, not yet synced or named;
- ``written``: the response file exists, the outcome is not yet recorded;
- ``outcome_recorded``: everything is done (the process would exit next).

Without ``KLUIS_TEST_PAUSE`` it just runs (the test kills it after a delay instead).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from consent_world import NOW

from cli import context, file
from wallet import consent_log
from wallet.consent import Consent

POINT = os.environ.get("KLUIS_TEST_PAUSE", "")
SIGNAL = os.environ.get("KLUIS_TEST_SIGNAL", "")


def pause(name: str) -> None:
    if name == POINT:
        Path(SIGNAL).write_text(name)
        while True:
            time.sleep(60)


def _install() -> None:
    context.now = lambda: NOW  # type: ignore[assignment]

    append = consent_log.ConsentLog.append

    def appending(self: Any, records: Any, *, now: Any, tx: Any = None) -> Any:
        done = append(self, records, now=now, tx=tx)
        if any(record.kind == "request_approved" for record in records):
            pause("approval_appended")
        return done

    consent_log.ConsentLog.append = appending  # type: ignore[method-assign]

    approve = Consent.approve

    def approving(self: Any, *args: Any, **kwargs: Any) -> Any:
        pause("before_approve")
        release = approve(self, *args, **kwargs)
        pause("approved")
        return release

    Consent.approve = approving  # type: ignore[method-assign]

    record = Consent.record_outcome

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        done = record(self, *args, **kwargs)
        pause("outcome_recorded")
        return done

    Consent.record_outcome = recording  # type: ignore[method-assign]

    write_new = file.write_new

    def writing(path: Path, data: bytes) -> None:
        write_new(path, data)
        pause("written")

    file.write_new = writing  # type: ignore[assignment]

    # Only cli.file sees this os: its temporary file gets half the bytes, then the rest.
    real_os = file.os

    class HalfThenPause:
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def write(self, data: bytes) -> int:
            half = len(data) // 2
            self._stream.write(data[:half])
            self._stream.flush()
            pause("half_written")
            return int(self._stream.write(data[half:])) + half

        def __getattr__(self, name: str) -> Any:
            return getattr(self._stream, name)

        def __enter__(self) -> HalfThenPause:
            return self

        def __exit__(self, *exc: object) -> None:
            self._stream.close()

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return HalfThenPause(real_os.fdopen(fd, *args, **kwargs))

    def fsync(fd: int) -> None:
        pause("temp_written")
        real_os.fsync(fd)

    file.os = types.SimpleNamespace(**{**vars(real_os), "fdopen": fdopen, "fsync": fsync})


@contextlib.contextmanager
def _argv(args: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = ["kluis", *args]
    try:
        yield
    finally:
        sys.argv = saved


def main() -> None:
    _install()
    from cli.app import main as kluis

    with _argv(sys.argv[1:]):
        kluis()


if __name__ == "__main__":
    main()
