"""The CI examples under examples/ci/ are parsed, and their ``conformance``
commands run as written, in a throwaway repository laid out as their
comments ask (a baseline, a key pair), against a fake engine profile named
``docker`` and a fake suite ($CONFORMANCE_FIXTURES, $CONFORMANCE_SUITES): the
gate passes on an unchanged run and fails on a regression, and the bundle is
made and verified.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conformance import IN_CHECKOUT, PROJECT_ROOT
from conformance.bundle import generate_keypair

EXAMPLES = PROJECT_ROOT / "examples" / "ci"

pytestmark = pytest.mark.skipif(not IN_CHECKOUT, reason="the examples ship with the checkout")

FAKE_DOCKER = """
name = "docker"
description = "a stand-in that answers every call"
argv = ["true"]
[deviations."runtime/test_fake.py::test_known_deviation"]
match = "exit 2 instead of 0"
evidence = "the stand-in exits 2 here"
"""

RUNTIME = """
import pytest

@pytest.mark.spec("https://docs.docker.com/reference/cli/docker/container/run/#exit-status", "exit status")
def test_passes(engine):
    BODY

def test_known_failure(engine):
    assert False, "stand-in: still broken"

def test_known_deviation(engine):
    assert 1 == 2, "stand-in: exit 2 instead of 0"
"""

CLI = """
def test_passes_too(engine):
    pass
"""


def steps_of(path: Path) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """The job's environment and every shell line with its step's environment,
    in order, from a GitHub Actions workflow or a GitLab CI file."""
    doc = yaml.safe_load(path.read_text())
    if "jobs" in doc:  # GitHub Actions
        (job,) = doc["jobs"].values()
        lines = [(line, {k: str(v) for k, v in step.get("env", {}).items()})
                 for step in job["steps"] if "run" in step for line in step["run"].splitlines()]
        return {k: str(v) for k, v in job.get("env", {}).items()}, lines
    (job,) = (v for k, v in doc.items() if isinstance(v, dict) and "script" in v)
    lines = [(line, {}) for part in ("before_script", "script", "after_script") for line in job.get(part, [])]
    return {k: str(v) for k, v in job.get("variables", {}).items()}, lines


def conformance_commands(path: Path) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    env, lines = steps_of(path)
    return env, [(line.strip(), step_env) for line, step_env in lines if line.strip().startswith("conformance ")]


@pytest.mark.parametrize("example", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_parses_and_uses_the_gate_and_the_bundle(example):
    _, commands = conformance_commands(EXAMPLES / example)
    verbs = [shlex.split(line)[1] for line, _ in commands]
    assert "run" in verbs and "bundle" in verbs and "verify" in verbs
    (run,) = [line for line, _ in commands if shlex.split(line)[1] == "run"]
    assert "--baseline" in shlex.split(run)


@pytest.fixture
def repository(tmp_path: Path) -> dict:
    """A repository laid out as the examples ask, with a baseline recorded
    from the fake suite, and the environment that points the harness at the
    fakes."""
    suites = tmp_path / "fakes" / "suites"
    for suite, text in (("runtime", RUNTIME.replace("BODY", "pass")), ("cli", CLI)):
        (suites / suite).mkdir(parents=True)
        (suites / suite / "__init__.py").write_text("")
        (suites / suite / f"test_fake.py").write_text(text)
    engines = tmp_path / "fakes" / "fixtures" / "engines"
    engines.mkdir(parents=True)
    (engines / "docker.toml").write_text(FAKE_DOCKER)
    work = tmp_path / "repo"
    (work / "ci").mkdir(parents=True)
    env = {**os.environ, "CONFORMANCE_SUITES": str(suites), "CONFORMANCE_FIXTURES": str(engines.parent),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CONFORMANCE_REPORTS", None)
    recorded = subprocess.run(["conformance", "run", "--engine", "docker", "--report-dir", str(tmp_path / "accepted"),
                               "runtime", "cli"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert recorded.returncode == 1, recorded.stdout[-2000:]  # a known failure: red without a baseline
    (accepted,) = (tmp_path / "accepted").glob("engine-docker-*.json")
    shutil.copy(accepted, work / "ci" / "baseline-engine-docker.json")
    generate_keypair(tmp_path / "signer")
    shutil.copy(tmp_path / "signer.pub", work / "ci" / "bundle-key.pub")
    shutil.copy(tmp_path / "signer", work / "bundle.key")  # what the workflow's printf writes from its secret
    secrets = {"CONFORMANCE_BUNDLE_KEY": str(tmp_path / "signer")}
    return {"work": work, "env": env, "secrets": secrets, "suites": suites}


def run_line(line: str, repository: dict, job_env: dict[str, str], step_env: dict[str, str]) -> subprocess.CompletedProcess:
    step_env = {k: re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: repository["secrets"][m.group(1)], v)
                for k, v in step_env.items()}
    env = {**repository["env"], **job_env, **step_env, **repository["secrets"]}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=repository["work"], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("example", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_commands_run_against_a_fake_results_file(example, repository):
    job_env, commands = conformance_commands(EXAMPLES / example)
    for line, step_env in commands:
        done = run_line(line, repository, job_env, step_env)
        assert done.returncode == 0, f"{example}: `{line}` exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        if shlex.split(line)[1] == "run":
            assert "conformance: baseline gate passed: no regression" in done.stdout
        if shlex.split(line)[1] == "verify":
            assert done.stdout.startswith("verified: reports/bundle.tar.gz")
    assert (repository["work"] / "reports" / "bundle.tar.gz").exists()

    # The same job on an engine that regressed: the gate fails it.
    test_file = repository["suites"] / "runtime" / "test_fake.py"
    test_file.write_text(RUNTIME.replace("BODY", 'assert False, "stand-in: regressed"'))
    (run, step_env), = [(line, e) for line, e in commands if shlex.split(line)[1] == "run"]
    done = run_line(run, repository, job_env, step_env)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "runtime/test_fake.py::test_passes: now fails [passed -> failed]" in done.stdout
