"""The run pipeline: flags -> ContainerSpec -> validate -> config -> ContainerPlan,
shared by ``refengine run`` and the builder's RUN step (issue 10)."""

from __future__ import annotations

import pytest

from reference_runtime.build.runstep import step_spec
from reference_runtime.engine import plan, spec
from reference_runtime.engine.flags import parse_command
from reference_runtime.engine.process import DEFAULT_CAPS, capability_mask
from reference_runtime.errors import ContainerError

IMAGE = {"Env": ["PATH=/usr/bin:/bin", "A=1"], "User": "", "WorkingDir": "", "Cmd": ["sh"]}


def _run_spec(*argv: str, image: dict = IMAGE) -> spec.ContainerSpec:
    p = parse_command("run", list(argv))
    return spec.from_flags(p.opts, p.args, {"id": "sha256:" + "1" * 64, "config": image, "layers": ["/l1"]},
                           "a" * 64)


def _plan(s: spec.ContainerSpec, tmp_path, name: str) -> plan.ContainerPlan:
    spec.validate(s)
    return plan.make(spec.to_config(None, s), str(tmp_path / name), str(tmp_path / "root"))


def test_run_and_run_step_share_one_plan_type_and_docker_defaults(tmp_path):
    run = _plan(_run_spec("IMG", "sh", "-c", "make"), tmp_path, "run")
    step = _plan(step_spec(["/l1"], ["sh", "-c", "make"], IMAGE["Env"], user="", workdir="",
                           container_id="b" * 64), tmp_path, "step")
    assert type(run) is type(step) is plan.ContainerPlan
    differ = {"hostname", "env", "merged", "upper", "work", "lowers", "etc"}  # the container's own id and directory
    same = {k: (getattr(run, k), getattr(step, k)) for k in plan.ContainerPlan.__slots__ if k not in differ}
    assert {k: a for k, (a, b) in same.items() if a != b} == {}, "a RUN step's plan differs from run's defaults"
    # docker's classic builder runs RUN with run's defaults: default caps and seccomp profile, no init, rw rootfs
    assert run.caps == capability_mask(list(DEFAULT_CAPS), [])
    assert step.seccomp and step.seccomp == run.seccomp
    assert (step.init, step.read_only, step.tty, step.no_new_privs, step.mounts) == (False, False, False, False, [])
    assert step.argv == run.argv == ["sh", "-c", "make"]
    assert step.hostname == "b" * 12 and step.env == {"PATH": "/usr/bin:/bin", "A": "1", "HOSTNAME": "b" * 12}
    assert step.lowers == [str(tmp_path / "step" / "init"), "/l1"]


def test_run_step_volumes_are_binds_like_run_mounts(tmp_path):
    step = _plan(step_spec([], ["true"], [], user="1:2", workdir="/w", container_id="c" * 64,
                           volumes={"/data": str(tmp_path)}), tmp_path, "step")
    assert [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in step.mounts] == [
        ("bind", str(tmp_path), "/data", True)]
    assert (step.user, step.workdir) == ("1:2", "/w")
    assert step.env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.mark.parametrize("argv, message", [
    (["--memory", "1m", "IMG"], "Minimum memory limit allowed is 6MB"),
    (["--rm", "--restart", "always", "IMG"], "Conflicting options: --restart and --rm"),
    (["-w", "rel", "IMG"], "the working directory 'rel' is invalid, it needs to be an absolute path"),
    (["--network-alias", "web", "IMG"], "network-scoped alias is supported only for containers in user defined networks"),
    (["--ip", "10.1.2.3", "IMG"], "user specified IP address is supported on user defined networks only"),
    (["-p", "80/icmp", "IMG"], "invalid proto: icmp"),
    (["--name", "-bad", "IMG"], "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
    (["--stop-signal", "SIGNOPE", "IMG"], "Invalid signal: SIGNOPE"),
    (["--cap-add", "NOPE", "IMG"], "unknown capability: 'NOPE'"),
    (["--name", "a" * 256, "IMG"], f"Invalid container name ({'a' * 40}...): longer than 255 characters"),
    (["IMG", "echo", "a\0b"], "invalid command 'a\\x00b': contains a NUL byte"),
    (["-e", "A=a\0b", "IMG"], "invalid environment variable 'A=a\\x00b': contains a NUL byte"),
])
def test_validation_refuses_before_anything_is_made(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = _run_spec(*argv, "-v", f"{tmp_path}/would-be-made:/m")
    with pytest.raises(ContainerError) as info:
        spec.validate(s)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == [], "validation created something on the host"


def test_to_config_creates_no_bind_source(tmp_path):
    s = _run_spec("-v", f"{tmp_path}/missing:/m", "IMG", "true")
    spec.validate(s)
    config = spec.to_config(None, s)
    assert config["Mounts"][0]["Source"] == f"{tmp_path}/missing"
    assert not (tmp_path / "missing").exists(), "the -v host directory is made when the container is created"


def test_every_check_has_a_name_and_runs_in_order():
    names = [c.__name__ for c in spec.CHECKS]
    assert all(n.startswith("check_") for n in names) and len(set(names)) == len(names)
    assert names[:2] == ["check_name", "check_command"]


@pytest.mark.parametrize("user, message", [("\u00b2", "unable to find user \u00b2"),
                                           ("0:\u00b2", "unable to find group \u00b2")])
def test_a_non_ascii_digit_user_is_not_found_rather_than_a_crash(user, message):
    from reference_runtime.engine.process import resolve_user

    with pytest.raises(LookupError, match=message):
        resolve_user(user, "root:x:0:0::/root:/bin/sh\n", "root:x:0:\n")
