"""Results files and their merge into a check x subject matrix. Pure apart
from :func:`load_run`, which reads one file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConformanceError

OUTCOMES = ("passed", "failed", "error", "skipped", "deviation")


@dataclass(frozen=True)
class CheckResult:
    id: str
    outcome: str
    reason: str = ""
    spec_url: str = ""
    spec_text: str = ""
    duration: float = 0.0
    #: the actual failure message (failed, error, deviation)
    message: str = ""
    #: the deviation the subject's profile records for this check, if any
    deviation: str = ""


@dataclass(frozen=True)
class Run:
    """One results file: one subject (engine or registry) in one session."""

    kind: str
    name: str
    version: str
    started: str
    checks: tuple[CheckResult, ...]
    source: str = ""

    @property
    def column(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_run(data: dict, *, source: str = "<results>") -> Run:
    try:
        subject = data["subject"]
        checks = tuple(
            CheckResult(
                id=c["id"], outcome=c["outcome"], reason=c.get("reason", ""),
                spec_url=c.get("spec", {}).get("url", ""), spec_text=c.get("spec", {}).get("text", ""),
                duration=float(c.get("duration", 0.0)),
                message=str(c.get("message", "")), deviation=str(c.get("deviation", "")),
            )
            for c in data["checks"]
        )
        run = Run(subject["kind"], subject["name"], subject.get("version", ""), data["started"], checks, source)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConformanceError(f"{source}: not a conformance results file (missing or bad {exc})") from None
    bad = {c.outcome for c in checks} - set(OUTCOMES)
    if bad:
        raise ConformanceError(f"{source}: unknown outcome(s) {', '.join(sorted(bad))}")
    return run


def load_run(path: Path) -> Run:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConformanceError(f"cannot read results file {path}: {exc}") from None
    return parse_run(data, source=str(path))


@dataclass
class Row:
    check_id: str
    spec_url: str = ""
    spec_text: str = ""
    cells: dict[str, CheckResult] = field(default_factory=dict)

    @property
    def suite(self) -> str:
        return self.check_id.split("/", 1)[0] if "/" in self.check_id.split("::")[0] else ""


@dataclass
class Matrix:
    columns: list[Run]
    rows: list[Row]

    def counts(self, column: str) -> dict[str, int]:
        out = {o: 0 for o in OUTCOMES}
        for row in self.rows:
            if column in row.cells:
                out[row.cells[column].outcome] += 1
        return out


def merge(runs: list[Run]) -> Matrix:
    """One column per subject (the latest run of each wins), one row per check.

    Several runs of the same subject that cover different suites are combined:
    a check keeps the result of the latest run that has it.
    """
    by_column: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.started):
        by_column.setdefault(run.column, []).append(run)
    columns = [group[-1] for _, group in sorted(by_column.items())]
    rows: dict[str, Row] = {}
    for column, group in by_column.items():
        for run in group:  # oldest first, so later runs overwrite
            for check in run.checks:
                row = rows.setdefault(check.id, Row(check.id))
                row.cells[column] = check
                row.spec_url = check.spec_url or row.spec_url
                row.spec_text = check.spec_text or row.spec_text
    return Matrix(columns, [rows[k] for k in sorted(rows)])
