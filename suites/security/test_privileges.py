"""Privilege changes inside a container: ``--security-opt no-new-privileges``
sets the kernel's no_new_privs bit (off by default, so setuid programs work),
``--user`` with a numeric id absent from the image's passwd file runs as that
id."""

from __future__ import annotations

import pytest

from .conftest import SECURITY_OPT, USER, proc_status


@pytest.mark.spec(SECURITY_OPT, "--security-opt no-new-privileges: Disable container processes from gaining "
                  "new privileges (NoNewPrivs: 1); without it the bit is not set")
@pytest.mark.parametrize("option", [None, "no-new-privileges", "no-new-privileges:true"])
def test_no_new_privileges(engine, image, option):
    args = ["--security-opt", option] if option else []
    r = engine.run(["--rm", *args, image, "cat", "/proc/self/status"])
    assert r.returncode == 0, f"{engine.name}: run failed:\n{r}"
    got = proc_status(r.stdout).get("NoNewPrivs")
    want = "1" if option else "0"
    how = f"with --security-opt {option}" if option else "by default"
    assert got == want, f"{engine.name}: {how}, NoNewPrivs is {got}; want {want}"


@pytest.mark.spec(SECURITY_OPT, "no-new-privileges binds processes started with docker exec too")
def test_no_new_privileges_binds_exec(engine, image):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, "--security-opt", "no-new-privileges",
               image, "sleep", "300", check=True)
    r = engine.cli("exec", name, "cat", "/proc/self/status")
    got = proc_status(r.stdout).get("NoNewPrivs")
    assert got == "1", f"{engine.name}: an exec'd process of a no-new-privileges container has NoNewPrivs {got}"


@pytest.mark.spec(USER, "--user UID: a numeric uid that the image's /etc/passwd does not know is used as is "
                  "(primary group 0)")
def test_numeric_user_absent_from_the_image(engine, image):
    r = engine.run(["--rm", "--user", "12345", image, "sh", "-c", "id -u; id -g; cat /proc/self/status"])
    assert r.returncode == 0, f"{engine.name}: --user 12345 failed:\n{r}"
    lines = r.stdout.splitlines()
    assert lines[:2] == ["12345", "0"], f"{engine.name}: --user 12345 ran as uid/gid {lines[:2]}"
    status = proc_status(r.stdout)
    assert status["Uid"].split() == ["12345"] * 4, f"{engine.name}: --user 12345 has Uid {status['Uid']}"
    assert int(status["CapEff"], 16) == 0, \
        f"{engine.name}: a non-root user kept effective capabilities {status['CapEff']}"
