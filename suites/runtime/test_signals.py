"""Signals and the statuses they leave: 128 + signal number for a process
killed by a signal (130 SIGINT, 137 SIGKILL, 143 SIGTERM), stop's escalation
to SIGKILL, and the OOM killer."""

from __future__ import annotations

import signal
import subprocess

import pytest

from .conftest import INSPECT, KILL, RESOURCES, STOP, wait_exited

DOCS = "https://docs.docker.com"
STOPSIGNAL = f"{DOCS}/reference/dockerfile/#stopsignal"
STOP_SIGNAL_FLAG = f"{DOCS}/reference/cli/docker/container/run/#stop-signal"
SIG_PROXY = f"{DOCS}/reference/cli/docker/container/run/#attach"

# A PID 1 that installs no handler: the kernel drops SIGTERM/SIGINT sent to a
# namespace's init, so only SIGKILL ends it.
SLEEPER = ["sleep", "1000"]


def exit_code(engine, name: str) -> int:
    result = engine.cli("wait", name, check=True, timeout=60)
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.spec(KILL, "docker kill sends SIGKILL by default: status 137 = 128 + 9")
def test_kill_exits_137(engine, image):
    name = engine.create([image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.cli("kill", name, check=True)
    assert exit_code(engine, name) == 137
    assert engine.state(name)["ExitCode"] == 137


@pytest.mark.requires("oom-kill")
@pytest.mark.spec(RESOURCES, "a container over its --memory limit is killed by the kernel OOM killer: 137, OOMKilled")
def test_oom_kill_exits_137_and_is_reported(engine, image):
    # tail buffers a line that never ends: memory grows until the cgroup limit.
    result = engine.run(["--memory", "16m", image, "tail", "/dev/zero"], timeout=120)
    name = result.argv[result.argv.index("--name") + 1]
    assert result.returncode == 137, str(result)
    state = engine.state(name)
    assert state["OOMKilled"] is True, state
    assert state["ExitCode"] == 137, state


@pytest.mark.requires("init")
@pytest.mark.spec(STOP, "docker stop sends SIGTERM; a process that dies of it exits 143 = 128 + 15")
def test_stop_of_a_process_dying_of_sigterm_exits_143(engine, image):
    name = engine.create(["--init", image, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    assert result.duration < 20, f"stop waited for the timeout: SIGTERM did not end the process ({result.duration:.1f}s)"
    assert exit_code(engine, name) == 143


@pytest.mark.spec(STOP, "after the grace period (-t) docker stop sends SIGKILL: status 137")
def test_stop_escalates_to_sigkill_after_the_timeout(engine, image):
    name = engine.create([image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("stop", "-t", "2", name, timeout=90)
    assert result.ok, str(result)
    assert 1.9 <= result.duration <= 15, f"stop -t 2 took {result.duration:.2f}s"
    assert exit_code(engine, name) == 137


@pytest.mark.requires("init")
@pytest.mark.spec(KILL, "docker kill -s SIGINT delivers SIGINT: status 130 = 128 + 2")
@pytest.mark.parametrize("sig", ["SIGINT", "INT", "2"])
def test_kill_with_signal_exits_128_plus_signal(engine, image, sig):
    name = engine.create(["--init", image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    engine.cli("kill", "-s", sig, name, check=True)
    assert exit_code(engine, name) == 130


@pytest.mark.requires("init")
@pytest.mark.spec(STOP_SIGNAL_FLAG, "--stop-signal sets the signal docker stop sends")
def test_stop_signal_flag_is_sent_by_stop(engine, image):
    name = engine.create(["--init", "--stop-signal", "SIGINT", image, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    assert exit_code(engine, name) == 130


@pytest.mark.spec(INSPECT, "inspect shows the stop signal as Config.StopSignal, a signal name such as SIGINT")
def test_stop_signal_is_shown_by_inspect(engine, image):
    name = engine.create(["--stop-signal", "SIGINT", image, "true"])
    assert engine.inspect(name)["Config"]["StopSignal"] == "SIGINT"


@pytest.mark.requires("init")
@pytest.mark.spec(STOPSIGNAL, "the image's STOPSIGNAL is the signal docker stop sends")
def test_image_stopsignal_is_sent_by_stop(engine, test_image):
    name = engine.create(["--init", test_image.stopsignal, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    assert exit_code(engine, name) == 130


@pytest.mark.requires("init")
@pytest.mark.spec(SIG_PROXY, "an attached docker run proxies the signals it receives (SIGINT) to the container: 130")
def test_sigint_to_attached_run_is_proxied_and_exits_130(engine, image):
    name = engine.new_name()
    proc = engine.popen("run", "--name", name, "--label", engine.label, "--init", image, *SLEEPER,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        engine.wait_for(lambda: proc.poll() is None and engine.cli("inspect", name).ok and engine.state(name)["Running"],
                        timeout=30, what=f"{name} to run")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close(), proc.stderr.close()
    assert wait_exited(engine, name)["ExitCode"] == 130
