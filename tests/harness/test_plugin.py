"""The pytest plugin driven through throwaway pytest runs (pytester)."""

import json

import pytest

FAKE_ENGINE = """
name = "fake"
argv = ["true"]
capabilities = ["volumes"]
[deviations]
"test_checks.py::test_known_deviation" = "fake engine exits 2 here: evidence log 42"
"test_checks.py::test_fixed_deviation" = "was broken in fake 1.0"
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
    assert 1 == 2

def test_fixed_deviation(engine):
    pass

def test_fails(engine):
    assert "docker" == "fake"

def test_not_an_engine_check():
    pass
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


def test_known_deviation_is_a_strict_xfail_with_the_evidence(checks):
    result = run(checks)
    result.stdout.fnmatch_lines(["XFAIL*test_known_deviation*known deviation of fake: fake engine exits 2 here: evidence log 42*"])
    # a deviation that no longer happens fails the run, so profiles cannot go stale
    result.stdout.re_match_lines([r".*\[XPASS\(strict\)\] known deviation of fake: was broken in fake 1\.0"])


def test_results_file_records_outcomes_spec_and_subject(checks):
    run(checks)
    files = list((checks.path / "out").glob("engine-fake-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc["subject"]["kind"] == "engine" and doc["subject"]["name"] == "fake"
    assert doc["subject"]["deviations"]["test_checks.py::test_known_deviation"].startswith("fake engine exits 2")
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


def test_engine_that_does_not_answer_stops_the_session(pytester):
    pytester.makefile(".toml", dead='name = "dead"\nargv = ["false"]\n')
    pytester.makepyfile(test_x="def test_x(engine): pass")
    result = pytester.runpytest_subprocess("--engine-profile", "dead.toml", "--report-dir", "out")
    assert result.ret == 3
    result.stdout.fnmatch_lines(["*engine dead does not answer*"])


def test_runs_without_engine_checks_write_no_results(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--report-dir", "out")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()
