"""Results of a run: ``reports/<kind>-<name>-<stamp>.json`` and JUnit XML.

Each check's report carries, as ``user_properties``, its check id, its spec
reference and the subject it ran against (``engine:docker``,
``registry:distribution``), so the results come out right under
pytest-xdist, where only the controller writes files.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest

from . import REPORTS_DIR, provenance
from .checks import check_id, spec_of

#: kind -> function(config, name) giving the subject's description (version...).
DESCRIBERS_KEY = pytest.StashKey[dict[str, Callable[[pytest.Config, str], dict]]]()


SCHEMA = 1


def register_describer(config: pytest.Config, kind: str, describe: Callable[[pytest.Config, str], dict]) -> None:
    """Let a subject plugin describe its subject (version, profile) in the results."""
    config.stash.setdefault(DESCRIBERS_KEY, {})[kind] = describe


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--report-dir", metavar="DIR", default=None,
                    help=f"where results JSON and JUnit XML go (default: {REPORTS_DIR})")


def _report_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("report_dir") or REPORTS_DIR)


def _subject_option(config: pytest.Config) -> str | None:
    """The subject named on the command line, for the JUnit file name."""
    for opt in ("engine", "engine_profile", "registry", "registry_impl", "registry_profile", "balancer",
                "balancer_profile", "cluster"):
        value = getattr(config.option, opt, None)
        if value:
            return Path(value).stem if opt.endswith("_profile") else value
    return None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if not hasattr(config, "workerinput"):  # under xdist only the controller writes
        config.pluginmanager.register(ResultsRecorder(config, stamp), "conformance-results")
    subject = _subject_option(config)
    # JUnit next to the JSON whenever a subject was named, unless the user chose a path.
    if subject and not getattr(config.option, "xmlpath", None) and not hasattr(config, "workerinput"):
        _report_dir(config).mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(_report_dir(config) / f"{_slug(subject)}-{stamp}.xml")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(key == "subject" for key, _ in item.user_properties):
            continue
        item.user_properties.append(("check_id", check_id(item)))
        spec = spec_of(item)
        if spec:
            item.user_properties += [("spec_url", spec.url), ("spec_text", spec.text)]


def outcome_of(report: pytest.TestReport) -> tuple[str, str] | None:
    """(outcome, reason) of one phase's report, or None if the phase adds nothing."""
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "deviation", report.wasxfail
        if report.passed:  # a strict xfail that passed is reported as failed; be explicit
            return "failed", f"known deviation no longer happens: {report.wasxfail}"
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    if report.failed:
        message = getattr(report.longrepr, "reprcrash", None)
        text = message.message if message else str(report.longrepr).strip().splitlines()[-1:]
        return ("failed" if report.when == "call" else "error"), (text if isinstance(text, str) else " ".join(text))
    if report.when == "call":
        return "passed", ""
    return None


#: How bad an outcome is: a check reported in several phases keeps its worst.
OUTCOME_RANK = {"passed": 0, "skipped": 1, "deviation": 1, "failed": 2, "error": 3}


class ResultsRecorder:
    """Collects one entry per (subject, check) and writes the results files.

    Registered as a plugin object (like pytest's own LogXML) so the hooks that
    pytest calls without a config still reach the run's state.
    """

    def __init__(self, config: pytest.Config, stamp: str):
        self.config = config
        self.stamp = stamp
        self.started = time.time()
        self.checks: dict[tuple[str, str], dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        outcome = outcome_of(report) if "subject" in props else None
        if outcome is None:
            return
        key = (props["subject"], props["check_id"])
        previous = self.checks.get(key)
        if previous and OUTCOME_RANK[previous["outcome"]] >= OUTCOME_RANK[outcome[0]]:
            previous["duration"] += report.duration
            return
        entry = {
            "id": props["check_id"],
            "outcome": outcome[0],
            "reason": outcome[1],
            "spec": {"url": props.get("spec_url", ""), "text": props.get("spec_text", "")},
            "duration": report.duration + (previous["duration"] if previous else 0.0),
        }
        # The failure as it happened, beside the deviation recorded for the
        # check: a reader sees both what was expected and what occurred.
        if props.get("failure_message"):
            entry["message"] = props["failure_message"]
        if props.get("deviation"):
            entry["deviation"] = props["deviation"]
        self.checks[key] = entry

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for path in self.write():
            session.config.get_terminal_writer().line(f"conformance results: {path}")

    def write(self) -> list[Path]:
        written = []
        suite = provenance.suite_version() if self.checks else {}
        for subject in sorted({s for s, _ in self.checks}):
            kind, _, name = subject.partition(":")
            describe = self.config.stash.get(DESCRIBERS_KEY, {}).get(kind)
            checks = sorted((c for (s, _), c in self.checks.items() if s == subject), key=lambda c: c["id"])
            summary: dict[str, int] = {}
            for c in checks:
                summary[c["outcome"]] = summary.get(c["outcome"], 0) + 1
            subject_doc = {"kind": kind, "name": name, **(describe(self.config, name) if describe else {})}
            # What the run was made with, so a validation bundle can be tied to it.
            subject_doc["profile_sha256"] = provenance.profile_sha256(subject_doc.get("profile"))
            doc = {
                "schema": SCHEMA,
                "subject": subject_doc,
                "suite": suite,
                "host": provenance.host(),
                "started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(),
                "duration": round(time.time() - self.started, 3),
                "argv": sys.argv,
                "summary": summary,
                "checks": checks,
            }
            out = _report_dir(self.config)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{_slug(kind)}-{_slug(name)}-{self.stamp}.json"
            # not "*.json" until whole: the report of another run in parallel reads them all
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
            written.append(path)
        return written
