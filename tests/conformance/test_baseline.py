"""The CI gate: a run compared with a baseline fails only on regressions.

The comparison is pure and tested directly; ``conformance run --baseline``
and ``conformance diff`` are driven end to end on a throwaway suite against
a fake engine profile (as tests/conformance/test_plugin.py does), so the results
files they compare are real ones.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.baseline import compare, classify, format_comparison, gate
from conformance.errors import ConformanceError
from conformance.results import CheckResult, Run


def result(outcome: str, reason: str = "", message: str = "") -> CheckResult:
    return CheckResult("s/test_a.py::test_x", outcome, reason=reason, message=message)


@pytest.mark.parametrize("before, after, expected", [
    ("passed", None, ("regression", "disappeared")),
    ("failed", None, ("regression", "disappeared")),
    ("passed", "failed", ("regression", "now fails")),
    ("passed", "error", ("regression", "now errors")),
    ("skipped", "failed", ("regression", "was skipped, now fails")),
    ("deviation", "failed", ("regression", "fails otherwise than its recorded deviation")),
    ("passed", "deviation", ("regression", "new deviation")),
    ("skipped", "deviation", ("regression", "new deviation")),
    ("passed", "skipped", ("regression", "no longer verified (now skipped)")),
    ("failed", "passed", ("improvement", "fixed")),
    ("error", "passed", ("improvement", "fixed")),
    ("deviation", "passed", ("improvement", "fixed")),
    ("skipped", "passed", ("improvement", "newly verified")),
    ("failed", "error", ("other", "still failing (error)")),
    ("failed", "deviation", ("other", "failure now recorded as a deviation")),
    ("failed", "skipped", ("other", "was failed, now skipped")),
    ("deviation", "skipped", ("other", "was deviation, now skipped")),
    (None, "failed", ("new", "new check, failed")),
    (None, "passed", ("new", "new check, passed")),
])
def test_classify(before, after, expected):
    assert classify(before and result(before), after and result(after)) == expected


@pytest.mark.parametrize("outcome", ["passed", "failed", "error", "skipped", "deviation"])
def test_an_unchanged_outcome_is_no_change(outcome):
    assert classify(result(outcome), result(outcome, message="another message")) is None


def test_a_deviation_that_no_longer_happens_is_an_improvement():
    stale = result("failed", "[XPASS(strict)] known deviation of fake no longer happens; remove it from the profile")
    assert classify(result("deviation"), stale) == ("improvement", "recorded deviation no longer happens")
    assert classify(result("passed"), stale) == ("other", "deviation recorded for a passing check")


def run_of(name: str, started: str, **outcomes: str) -> Run:
    return Run("engine", name, "1.0", started,
               tuple(CheckResult(check.replace("__", "/test_a.py::"), o, message=f"{check}: boom" if o == "failed" else "")
                     for check, o in outcomes.items()), source=f"{name}-{started}.json")


def test_compare_groups_and_counts():
    baseline = run_of("e", "t0", rt__a="passed", rt__b="failed", rt__c="passed", cli__d="passed")
    current = run_of("e", "t1", rt__a="passed", rt__b="passed", rt__c="failed", rt__e="failed", cli__d="passed")
    c = compare(baseline, current)
    assert [(ch.check_id, ch.what) for ch in c.regressions] == [("rt/test_a.py::c", "now fails")]
    assert [(ch.check_id, ch.what) for ch in c.improvements] == [("rt/test_a.py::b", "fixed")]
    assert [ch.check_id for ch in c.new] == ["rt/test_a.py::e"] and c.unchanged == 2 and not c.ok
    text = "\n".join(format_comparison(c))
    assert "REGRESSIONS (1):\n  rt/test_a.py::c: now fails [passed -> failed]\n      rt__c: boom" in text
    assert "improvements (1):\n  rt/test_a.py::b: fixed [failed -> passed]" in text
    assert text.endswith("1 regression, 1 improvement, 0 other changes, 1 new, 2 unchanged")


def test_compare_limited_to_the_suites_run():
    baseline = run_of("e", "t0", rt__a="passed", cli__d="passed")
    current = run_of("e", "t1", rt__a="passed")
    assert [ch.check_id for ch in compare(baseline, current).regressions] == ["cli/test_a.py::d"]
    assert compare(baseline, current, suites=("rt",)).ok


def test_gate_matches_subjects_and_refuses_a_missing_one():
    baseline = run_of("e", "t0", rt__a="passed")
    status, lines = gate([baseline], [run_of("other", "t1", rt__a="failed"), run_of("e", "t1", rt__a="passed")])
    assert status == 0 and lines[-1] == "conformance: baseline gate passed: no regression"
    status, lines = gate([baseline], [run_of("e", "t1", rt__a="failed")])
    assert status == 1 and lines[-1] == "conformance: baseline gate FAILED: regressions above"
    with pytest.raises(ConformanceError, match=r"this run wrote no results for engine:e, .*\(it wrote: engine:other\)"):
        gate([baseline], [run_of("other", "t1", rt__a="passed")])


# End to end: `conformance run --baseline` on a throwaway suite.

FAKE_ENGINE = """
name = "fake"
argv = ["true"]
[deviations."gated/test_checks.py::test_known_deviation"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here"
"""

CHECKS = """
import pytest

@pytest.mark.spec("https://docs.example/run#exit", "exit status is propagated")
def test_stays_green(engine):
    pass

def test_regresses(engine):
    REGRESSES

def test_known_failure(engine):
    assert False, "fake: still broken"

def test_improves(engine):
    IMPROVES

def test_known_deviation(engine):
    assert 1 == 2, "fake: exit 2 instead of 0"
"""

PASS, FAIL = "pass", 'assert False, "fake: broken"'


@pytest.fixture
def gated(tmp_path: Path):
    """A suite `gated` of five checks and a function that runs it with
    ``conformance run`` (the checks' bodies chosen per run)."""
    suite = tmp_path / "suites" / "gated"
    suite.mkdir(parents=True)
    (suite / "__init__.py").write_text("")
    (tmp_path / "fake.toml").write_text(FAKE_ENGINE)
    env = {**os.environ, "CONFORMANCE_SUITES": str(tmp_path / "suites")}

    def run(*, regresses: str, improves: str, baseline: Path | None = None, out: str = "out"):
        (suite / "test_checks.py").write_text(CHECKS.replace("REGRESSES", regresses).replace("IMPROVES", improves))
        argv = [sys.executable, "-m", "conformance.cli", "run", "--engine-profile", str(tmp_path / "fake.toml"),
                "--jobs", "1", "--report-dir", str(tmp_path / out), "gated"]
        argv += ["--baseline", str(baseline)] if baseline else []
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        written = sorted((tmp_path / out).glob("engine-fake-*.json"))
        return done, written[-1] if written else None

    return run


def test_run_with_a_baseline_fails_only_on_regressions(gated, tmp_path):
    first, baseline = gated(regresses=PASS, improves=FAIL, out="baseline")
    assert first.returncode == 1, first.stdout[-2000:]  # two checks fail: without a baseline the run is red
    assert {c["id"]: c["outcome"] for c in json.loads(baseline.read_text())["checks"]} == {
        "gated/test_checks.py::test_stays_green": "passed", "gated/test_checks.py::test_regresses": "passed",
        "gated/test_checks.py::test_known_failure": "failed", "gated/test_checks.py::test_improves": "failed",
        "gated/test_checks.py::test_known_deviation": "deviation"}

    unchanged, _ = gated(regresses=PASS, improves=FAIL, baseline=baseline)
    assert unchanged.returncode == 0, unchanged.stdout[-3000:] + unchanged.stderr[-2000:]
    assert "0 regressions, 0 improvements, 0 other changes, 0 new, 5 unchanged" in unchanged.stdout
    assert "conformance: baseline gate passed: no regression" in unchanged.stdout

    regressed, _ = gated(regresses=FAIL, improves=FAIL, baseline=baseline)
    assert regressed.returncode == 1, regressed.stdout[-3000:]
    assert ("REGRESSIONS (1):\n  gated/test_checks.py::test_regresses: now fails [passed -> failed]\n"
            "      fake: broken") in regressed.stdout
    assert "conformance: baseline gate FAILED: regressions above" in regressed.stdout

    improved, latest = gated(regresses=PASS, improves=PASS, baseline=baseline)
    assert improved.returncode == 0, improved.stdout[-3000:]
    assert "improvements (1):\n  gated/test_checks.py::test_improves: fixed [failed -> passed]" in improved.stdout
    assert "REGRESSIONS" not in improved.stdout

    diff = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", str(baseline), str(latest)],
                          capture_output=True, text=True, timeout=60)
    assert diff.returncode == 0 and "test_improves: fixed [failed -> passed]" in diff.stdout
    back = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", str(latest), str(baseline)],
                          capture_output=True, text=True, timeout=60)
    assert back.returncode == 1 and "test_improves: now fails [passed -> failed]" in back.stdout


def test_a_baseline_that_is_not_a_results_file_is_exit_2_before_running(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"checks": []}')
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--engine", "refengine", "runtime",
                           "--baseline", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a conformance results file" in done.stderr
    assert "$ " not in done.stdout, "the run started although its baseline is unreadable"
    diff = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", str(bad), str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert diff.returncode == 2 and diff.stderr.startswith("conformance: ") and "Traceback" not in diff.stderr
