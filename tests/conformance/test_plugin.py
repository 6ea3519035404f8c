"""The pytest plugin driven through throwaway pytest runs (pytester)."""

import json

import pytest

FAKE_ENGINE = """
name = "fake"
argv = ["true"]
capabilities = ["volumes"]
[deviations."test_checks.py::test_known_deviation"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here: evidence log 42"
[deviations."test_checks.py::test_fixed_deviation"]
match = "anything"
evidence = "was broken in fake 1.0"
[deviations."test_checks.py::test_other_message"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here too"
[deviations."test_checks.py::test_engine_error"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here too"
[deviations."test_checks.py::test_fixture_error"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here too"
[deviations."test_checks.py::test_other_type"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here too"
"""

CHECKS = """
import pytest

@pytest.mark.spec("https://docs.example/run#exit", "exit status is propagated")
def test_passes(engine):
    assert engine.name == "fake"

@pytest.mark.requires("swarm")
def test_needs_swarm(engine):
    raise AssertionError("must not run")

@pytest.mark.requires("volumes")
def test_needs_volumes(engine):
    pass

def test_known_deviation(engine):
    assert 1 == 2, "fake: exit 2 instead of 0"

def test_fixed_deviation(engine):
    pass

def test_fails(engine):
    assert "docker" == "fake"

def test_not_an_engine_check():
    pass
"""

#: Checks whose deviation is recorded but which fail for another reason.
OTHER_FAILURES = """
import pytest
from conformance.engine import EngineCallFailed

@pytest.fixture
def broken():
    raise RuntimeError("fixture could not start its container")

def test_other_message(engine):
    assert 1 == 3, "fake: exit 3 instead of 0"

def test_engine_error(engine):
    engine.cli("no-such-subcommand", check=True)  # fake's argv is `false` here: the call fails

def test_fixture_error(engine, broken):
    assert 1 == 2, "fake: exit 2 instead of 0"

def test_other_type(engine):
    raise ValueError("fake: exit 2 instead of 0")
"""


@pytest.fixture
def checks(pytester):
    pytester.makefile(".toml", fake=FAKE_ENGINE)
    pytester.makepyfile(test_checks=CHECKS)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("--engine-profile", "fake.toml", "--report-dir", "out", "-rsxX", *args)


def test_capability_skip_prints_the_reason(checks):
    result = run(checks)
    result.stdout.fnmatch_lines(["SKIPPED*test_checks.py*engine fake lacks capability swarm*"])
    result.assert_outcomes(passed=3, skipped=1, xfailed=1, failed=2)


def test_a_deviation_excuses_only_the_failure_it_names(pytester):
    """Recorded deviations whose checks fail otherwise (another message, an
    engine error, a fixture error, another exception type) are failures, and
    the results show the actual message next to the recorded deviation."""
    # `test version = ARG`: answers the version probe, fails every other call
    pytester.makefile(".toml", fake=FAKE_ENGINE.replace('argv = ["true"]', 'argv = ["test", "version", "="]'))
    pytester.makepyfile(test_checks=OTHER_FAILURES)
    result = run(pytester)
    result.assert_outcomes(failed=3, errors=1)
    result.stdout.fnmatch_lines(["*known deviation not matched*", "*recorded to fail this check with AssertionError matching /exit 2 instead of 0/*"])
    (path,) = (pytester.path / "out").glob("engine-fake-*.json")
    by_id = {c["id"]: c for c in json.loads(path.read_text())["checks"]}
    expected = "expects AssertionError matching /exit 2 instead of 0/: fake engine exits 2 here too"
    assert by_id["test_checks.py::test_other_message"]["outcome"] == "failed"
    assert "exit 3 instead of 0" in by_id["test_checks.py::test_other_message"]["message"]
    assert by_id["test_checks.py::test_other_message"]["deviation"] == expected
    assert by_id["test_checks.py::test_engine_error"]["outcome"] == "failed"
    assert "no-such-subcommand" in by_id["test_checks.py::test_engine_error"]["message"]
    assert by_id["test_checks.py::test_fixture_error"]["outcome"] == "error"
    assert "fixture could not start its container" in by_id["test_checks.py::test_fixture_error"]["message"]
    assert by_id["test_checks.py::test_other_type"]["outcome"] == "failed"
    assert by_id["test_checks.py::test_other_type"]["message"] == "fake: exit 2 instead of 0"


def test_a_deviation_with_a_missing_engine_is_a_failure(pytester):
    pytester.makefile(".toml", fake=FAKE_ENGINE.replace('argv = ["true"]', 'argv = ["/nonexistent/engine"]'))
    pytester.makepyfile(test_checks=CHECKS)
    result = run(pytester)
    result.assert_outcomes(passed=1, skipped=1, errors=5)
    (path,) = (pytester.path / "out").glob("engine-fake-*.json")
    by_id = {c["id"]: c for c in json.loads(path.read_text())["checks"]}
    known = by_id["test_checks.py::test_known_deviation"]
    assert known["outcome"] == "error"
    assert "cannot start the engine" in known["message"] and "/nonexistent/engine" in known["message"]
    assert known["deviation"].startswith("expects AssertionError matching /exit 2 instead of 0/")


def test_known_deviation_is_a_strict_xfail_with_the_evidence(checks):
    result = run(checks)
    result.stdout.fnmatch_lines(["XFAIL*test_known_deviation*known deviation of fake: fake engine exits 2 here: evidence log 42*"])
    # a deviation that no longer happens fails the run, so profiles cannot go stale
    result.stdout.re_match_lines([r".*\[XPASS\(strict\)\] known deviation of fake no longer happens; remove it from the profile: was broken in fake 1\.0"])


RACY_ENGINE = """
name = "fake"
argv = ["true"]
[deviations."test_checks.py::test_race_not_seen"]
match = "lost the race"
evidence = "fails in 1 run of 3"
intermittent = true
[deviations."test_checks.py::test_race_seen"]
match = "lost the race"
evidence = "fails in 1 run of 3"
intermittent = true
[deviations."test_checks.py::test_race_other_failure"]
match = "lost the race"
evidence = "fails in 1 run of 3"
intermittent = true
"""

RACY_CHECKS = """
def test_race_not_seen(engine):
    pass

def test_race_seen(engine):
    raise AssertionError("fake: build lost the race")

def test_race_other_failure(engine):
    raise AssertionError("fake: exit 3")
"""


def test_an_intermittent_deviation_may_pass_and_still_names_its_failure(pytester):
    """A race recorded as intermittent: a pass is a pass, its failure is the
    deviation, any other failure is a failure."""
    pytester.makefile(".toml", fake=RACY_ENGINE)
    pytester.makepyfile(test_checks=RACY_CHECKS)
    result = run(pytester)
    result.assert_outcomes(passed=1, xfailed=1, failed=1)
    (path,) = (pytester.path / "out").glob("engine-fake-*.json")
    by_id = {c["id"]: c["outcome"] for c in json.loads(path.read_text())["checks"]}
    assert by_id == {"test_checks.py::test_race_not_seen": "passed", "test_checks.py::test_race_seen": "deviation",
                     "test_checks.py::test_race_other_failure": "failed"}
    result.stdout.fnmatch_lines(["*known deviation not matched*", "*lost the race*"])


def test_results_file_records_outcomes_spec_and_subject(checks):
    run(checks)
    files = list((checks.path / "out").glob("engine-fake-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc["subject"]["kind"] == "engine" and doc["subject"]["name"] == "fake"
    assert doc["subject"]["deviations"]["test_checks.py::test_known_deviation"] == (
        "expects AssertionError matching /exit 2 instead of 0/: fake engine exits 2 here: evidence log 42")
    by_id = {c["id"]: c for c in doc["checks"]}
    assert set(by_id) == {f"test_checks.py::{n}" for n in (
        "test_passes", "test_needs_swarm", "test_needs_volumes", "test_known_deviation", "test_fixed_deviation", "test_fails")}
    assert by_id["test_checks.py::test_passes"]["outcome"] == "passed"
    assert by_id["test_checks.py::test_passes"]["spec"] == {"url": "https://docs.example/run#exit", "text": "exit status is propagated"}
    assert by_id["test_checks.py::test_needs_swarm"] | {"duration": 0} == {
        "id": "test_checks.py::test_needs_swarm", "outcome": "skipped", "reason": "engine fake lacks capability swarm",
        "spec": {"url": "", "text": ""}, "duration": 0}
    assert by_id["test_checks.py::test_known_deviation"]["outcome"] == "deviation"
    assert "evidence log 42" in by_id["test_checks.py::test_known_deviation"]["reason"]
    assert by_id["test_checks.py::test_known_deviation"]["message"].startswith("fake: exit 2 instead of 0")
    assert by_id["test_checks.py::test_fixed_deviation"]["outcome"] == "failed"
    assert by_id["test_checks.py::test_fails"]["outcome"] == "failed"
    assert doc["summary"] == {"passed": 2, "skipped": 1, "deviation": 1, "failed": 2}


def test_junit_xml_is_written_beside_the_results(checks):
    run(checks)
    xml = list((checks.path / "out").glob("fake-*.xml"))
    assert len(xml) == 1
    assert 'name="check_id" value="test_checks.py::test_passes"' in xml[0].read_text()


def test_results_are_the_same_under_xdist(checks):
    run(checks, "-p", "xdist", "-n", "2")
    (path,) = (checks.path / "out").glob("engine-fake-*.json")
    doc = json.loads(path.read_text())
    assert doc["summary"] == {"passed": 2, "skipped": 1, "deviation": 1, "failed": 2}


def test_unknown_engine_is_a_usage_error(pytester):
    pytester.makepyfile(test_x="def test_x(engine): pass")
    result = pytester.runpytest_subprocess("--engine", "no-such-engine")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown engine 'no-such-engine'; known: *docker*"])


def test_engine_that_does_not_answer_fails_every_check_with_the_cause(pytester):
    pytester.makefile(".toml", dead='name = "dead"\nargv = ["false"]\n')
    pytester.makepyfile(test_x="def test_x(engine): pass\ndef test_y(engine): pass")
    result = pytester.runpytest_subprocess("--engine-profile", "dead.toml", "--report-dir", "out")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*engine dead does not answer*"])


def test_runs_without_engine_checks_write_no_results(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--report-dir", "out")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()
