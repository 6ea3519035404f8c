"""Shared helpers of the monitoring suite: docker's documentation addresses,
bounded ``events`` queries over a time window, and table parsing.

Docker's events are global to the daemon (and other runs share it): every
query here filters to this check's own containers, by name or by a label
with a value no other check uses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from conformance.engine import CommandResult, EngineCallFailed
from conformance.suite_support import CLI_DOCS

EVENTS = f"{CLI_DOCS}/system/events/"
STATS = f"{CLI_DOCS}/container/stats/"
SYSTEM_DF = f"{CLI_DOCS}/system/df/"

#: How long after "now" a window's ``--until`` lies: events of the past are
#: read, then the stream ends by itself (an ``--until`` already past is its
#: own check, ``test_until_in_the_past_returns_at_once``).
UNTIL_MARGIN = 1.5


@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image."""
    return test_image.base


def unix(t: float) -> str:
    """A Unix timestamp as docker's --since/--until take it: seconds[.nanoseconds]."""
    return f"{t:.9f}"


def name_of(result: CommandResult) -> str:
    """The ``--name`` an ``engine.run`` gave its container."""
    return result.argv[result.argv.index("--name") + 1]


def events(engine, *filters: str, since: float | str, until: float | str | None = None,
           fmt: str | None = "{{json .}}", timeout: float = 60) -> CommandResult:
    """``events --since S --until U --filter F... [--format FMT]``; ``until``
    defaults to a moment just ahead, so the stream ends by itself. A call that
    does not end within ``timeout`` fails the check (an assertion: ending at
    ``--until`` is documented behaviour)."""
    if until is None:
        until = time.time() + UNTIL_MARGIN
    args = ["events", "--since", since if isinstance(since, str) else unix(since),
            "--until", until if isinstance(until, str) else unix(until)]
    for f in filters:
        args += ["--filter", f]
    if fmt is not None:
        args += ["--format", fmt]
    try:
        return engine.cli(*args, timeout=timeout)
    except EngineCallFailed as exc:
        raise AssertionError(f"{engine.name}: `events` did not end at its --until: {exc}") from None


def event_docs(engine, result: CommandResult) -> list[dict]:
    """The events of a ``--format '{{json .}}'`` call, one JSON object a line (JSON Lines)."""
    assert result.ok, f"{engine.name}: events exited {result.returncode}\n{result}"
    docs = []
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{engine.name}: events --format '{{{{json .}}}}' printed a line that is not JSON: "
                                 f"{line!r}") from None
    return docs


def action(doc: dict) -> str | None:
    return doc.get("Action")


def attributes(doc: dict) -> dict:
    return (doc.get("Actor") or {}).get("Attributes") or {}


def actions(docs: list[dict]) -> list[str | None]:
    return [action(d) for d in docs]


def summary(docs: list[dict]) -> str:
    """The events, short, for assertion messages."""
    return "; ".join(f"{d.get('Type')} {d.get('Action', d.get('Status', d.get('status')))} {attributes(d)}"
                     for d in docs) or "(none)"


def split_columns(line: str) -> list[str]:
    """A row of docker's tables: columns are separated by at least two spaces
    (tabwriter pads with three), cells may hold single spaces ("CPU %")."""
    return [c for c in re.split(r"\s{2,}", line.strip()) if c]


class Streaming:
    """A CLI call left running (``events`` or ``stats`` without an end), always
    stopped: ``with Streaming(engine, args) as s: ...; s.stop()``."""

    def __init__(self, engine, *args: str):
        self.engine, self.args = engine, args
        self.proc: subprocess.Popen | None = None
        self.out = ""

    def __enter__(self) -> "Streaming":
        self.proc = self.engine.popen(*self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def stop(self, after: float = 0.0) -> str:
        """Wait up to ``after`` seconds for the call to end by itself, then end it; its stdout."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=after) if after else (None, None)
        except subprocess.TimeoutExpired:
            out = None
        if out is None:
            self._kill()
            out, err = self.proc.communicate(timeout=30)
        self.out = out.decode(errors="replace")
        self.err = err.decode(errors="replace") if err else ""
        return self.out

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)  # its own session: the engine's helpers too
        except ProcessLookupError:
            pass

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._kill()
            self.proc.communicate(timeout=30)
