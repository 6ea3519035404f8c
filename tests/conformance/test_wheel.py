"""The framework as people install it: a wheel in a fresh virtualenv, used
from a directory outside the checkout.

Offline and fast: the wheel is built with the project venv's setuptools and
wheel (``--no-build-isolation``) from a copy of the sources (nothing is
written into the checkout), and the throwaway venv reuses the project venv's
dependencies through a ``.pth`` line (its own ``.pth`` files, such as the
editable install's path to the checkout, are not processed from there), so
only the wheel itself is installed, with ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conformance import IN_CHECKOUT, PROJECT_ROOT

SOURCES = ("pyproject.toml", "README.md", "conformance", "reference_runtime", "suites", "fixtures")

pytestmark = pytest.mark.skipif(not IN_CHECKOUT, reason="builds the wheel from a source checkout")


def test_every_package_of_the_checkout_is_in_the_wheel():
    """pyproject.toml lists packages by name (suites/ and fixtures/ are mapped
    to other names): a new subpackage must be added there or it won't ship."""
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(PROJECT_ROOT).parts)
             for top in ("conformance", "reference_runtime") for p in (PROJECT_ROOT / top).rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"] == {"conformance_suites": "suites", "conformance_fixtures": "fixtures"}


def test_installed_wheel_works_outside_the_checkout(tmp_path: Path):
    """One test, so that pytest-xdist builds and installs the wheel once."""
    installed = install_wheel(tmp_path)
    uses_its_own_suites_and_reports_to_the_current_directory(installed)
    conformance_list_finds_every_check_and_profile(installed)
    pytest_pyargs_finds_every_check_of_a_suite(installed)
    conformance_run_runs_a_suite(installed)


def install_wheel(root: Path) -> dict:
    """A wheel installed into a throwaway venv; returns its bin dir, a work
    dir outside the checkout, and the environment to run commands with."""
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    # What the copied sources hold (other suites may change in the checkout meanwhile).
    expected = subprocess.run([sys.executable, "-m", "conformance.cli", "list", "--json"], cwd=src,
                              env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True, timeout=300)
    assert expected.returncode == 0, expected.stderr[-2000:]
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", "-w", str(dist), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, f"pip wheel exited {build.returncode}: {build.stderr[-2000:]}"
    (wheel,) = dist.glob("container_conformance-*.whl")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True, timeout=60).stdout.strip())
    (purelib / "project-venv-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed",
                              "--disable-pip-version-check", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, f"pip install exited {install.returncode}: {install.stderr[-2000:]}"

    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("CONFORMANCE_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"bin": venv / "bin", "purelib": purelib, "work": work, "env": env,
            "checks": {c["id"]: c["spec_url"] for c in json.loads(expected.stdout)["checks"]}}


def _run(installed: dict, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=installed["work"], env=installed["env"], capture_output=True, text=True,
                          timeout=timeout)


def uses_its_own_suites_and_reports_to_the_current_directory(installed: dict) -> None:
    probe = _run(installed, str(installed["bin"] / "python"), "-c",
                 "import conformance as c, json; print(json.dumps([c.__file__, str(c.SUITES_DIR), "
                 "str(c.FIXTURES_DIR), str(c.REPORTS_DIR), c.IN_CHECKOUT]))")
    assert probe.returncode == 0, probe.stderr
    module, suites_dir, fixtures_dir, reports_dir, in_checkout = json.loads(probe.stdout)
    purelib = str(installed["purelib"])
    assert module.startswith(purelib), f"conformance imported from {module}, not the installed wheel in {purelib}"
    assert (suites_dir, fixtures_dir) == (f"{purelib}/conformance_suites", f"{purelib}/conformance_fixtures")
    assert reports_dir == str(installed["work"] / "reports") and in_checkout is False


def conformance_list_finds_every_check_and_profile(installed: dict) -> None:
    done = _run(installed, str(installed["bin"] / "conformance"), "list", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    listed = json.loads(done.stdout)
    from_wheel = {c["id"]: c["spec_url"] for c in listed["checks"]}
    assert from_wheel == installed["checks"]
    assert all(from_wheel.values()), "a check without a spec reference"
    names = {(p["kind"], p["name"]) for p in listed["profiles"]}
    assert {("engine", "docker"), ("engine", "podman"), ("engine", "refengine"), ("registry", "refregistry")} <= names
    text = _run(installed, str(installed["bin"] / "conformance"), "list", "runtime")
    assert text.returncode == 0 and "runtime/test_exit_status.py::test_exit_status_is_taken_modulo_256" in text.stdout
    assert "https://docs.docker.com/" in text.stdout and "profiles:" in text.stdout


def pytest_pyargs_finds_every_check_of_a_suite(installed: dict) -> None:
    done = _run(installed, str(installed["bin"] / "python"), "-m", "pytest", "--pyargs", "conformance_suites.runtime",
                "--engine", "refengine", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    expected = sum(1 for check in installed["checks"] if check.startswith("runtime/"))
    assert f"{expected} tests collected" in done.stdout, done.stdout[-500:]


def conformance_run_runs_a_suite(installed: dict) -> None:
    done = _run(installed, str(installed["bin"] / "conformance"), "run", "--engine", "refengine", "runtime",
                "--pytest-args", "-k", "modulo_256")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (results,) = (installed["work"] / "reports").glob("engine-refengine-*.json")
    checks = {c["id"]: c["outcome"] for c in json.loads(results.read_text())["checks"]}
    assert checks == {"runtime/test_exit_status.py::test_exit_status_is_taken_modulo_256": "passed"}
    assert (installed["work"] / "reports" / "index.html").exists()
    written = [p for p in installed["purelib"].rglob("*") if p.name in (".pytest_cache", "reports")]
    assert written == [], f"the run wrote into site-packages: {written}"
