"""``conformance report``: the HTML matrix of several runs, one file that a
browser opens without a server (inline CSS, no scripts)."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path

from .results import OUTCOMES, Matrix, Run, load_run, merge

LABELS = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "deviation": "known deviation"}


def render_html(matrix: Matrix, *, generated: str | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )
    groups = [(suite, list(rows)) for suite, rows in itertools.groupby(matrix.rows, key=lambda r: r.suite)]
    return env.get_template("report.html.j2").render(
        matrix=matrix, groups=groups, outcomes=OUTCOMES, labels=LABELS,
        generated=generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def latest_runs(directory: Path) -> list[Run]:
    """Every results file in a directory (merge keeps the latest per subject)."""
    return [load_run(p) for p in sorted(Path(directory).glob("*.json")) if not p.name.startswith("bench-")]


def write_report(runs: list[Run], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(merge(runs)))
    return out
