"""Integration tests of the kernel parts (namespaces, overlay, cgroups,
supervisor) with throwaway roots. Each removes what it made (the
``refengine`` fixture force-removes every container of its root)."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest


from .conftest import BASE, needs_kernel

pytestmark = needs_kernel


def _cgroup_dirs(cid: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/refengine/{cid}")] + \
        [p for p in Path("/sys/fs/cgroup").glob(f"refengine/{cid}")]


def _host_mounts_under(root: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in line]


def _wait(predicate, what: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_run_isolates_and_cleans_up_with_rm(refengine):
    script = ("echo pid=$$; hostname; cat /etc/hostname; ls /dev; grep -c . /proc/self/mountinfo >/dev/null; "
              "ip link 2>/dev/null | grep -c '^[0-9]' || cat /proc/net/dev | tail -n +3 | wc -l; exit 5")
    result = refengine("run", "--rm", "--hostname", "box", BASE, "sh", "-c", script)
    assert result.returncode == 5, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "pid=1" and lines[1] == "box" and lines[2] == "box"
    assert {"null", "zero", "urandom", "pts", "shm"} <= set(result.stdout.split())
    assert lines[-2].strip() == "2"  # lo and eth0 on the default bridge
    assert refengine("ps", "-a", "-q").stdout == ""
    # The container is gone when the CLI returns; its files are purged right after the CLI
    # has its status (supervisor._remove), so the directory empties within moments.
    deadline = time.monotonic() + 10
    while list((refengine.root / "containers").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((refengine.root / "containers").iterdir())
    assert _host_mounts_under(refengine.root) == []


def test_read_only_sys_default_capabilities_and_no_new_privs(refengine):
    result = refengine("run", "--rm", BASE, "sh", "-c",
                       "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status; touch /sys/x 2>&1; echo done")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t") for line in result.stdout.splitlines() if ":\t" in line)
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == 0xA80425FB  # docker's default set
    assert fields["NoNewPrivs"].strip() == "0"  # docker sets it only with --security-opt no-new-privileges
    assert "Read-only file system" in result.stdout


def test_killed_supervisor_is_detected_and_rm_f_cleans_everything(refengine):
    name = "victim"
    assert refengine("run", "-d", "--name", name, "-m", "32m", BASE, "sleep", "1000").returncode == 0
    state_file = next((refengine.root / "containers").glob("*/state.json"))
    cid = state_file.parent.name
    import json

    state = json.loads(state_file.read_text())
    assert _cgroup_dirs(cid)
    os.kill(state["Supervisor"]["Pid"], signal.SIGKILL)
    # The container dies with its supervisor (PR_SET_PDEATHSIG) and the next call says so.
    _wait(lambda: not os.path.exists(f"/proc/{state['Pid']}") or
          Path(f"/proc/{state['Pid']}/stat").read_text().split()[2] == "Z", "the container to die")
    inspected = json.loads(refengine("inspect", name).stdout)[0]["State"]
    assert inspected["Status"] == "exited" and inspected["Running"] is False
    assert inspected["ExitCode"] == 137 and "supervisor" in inspected["Error"]
    assert refengine("ps", "-q").stdout == ""
    assert refengine("rm", "-f", name).returncode == 0
    assert _cgroup_dirs(cid) == []
    assert not (refengine.root / "containers" / cid).exists()
    assert _host_mounts_under(refengine.root) == []


def test_pause_freezes_and_unpause_thaws(refengine):
    assert refengine("run", "-d", "--name", "pz", BASE, "sleep", "1000").returncode == 0
    assert refengine("pause", "pz").returncode == 0
    assert refengine("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz").stdout.strip() == "paused true"
    cid = refengine("inspect", "-f", "{{.Id}}", "pz").stdout.strip()
    freezer = Path(f"/sys/fs/cgroup/freezer/refengine/{cid}/freezer.state")
    if freezer.exists():
        assert freezer.read_text().strip() == "FROZEN"
    assert refengine("unpause", "pz").returncode == 0
    assert refengine("inspect", "-f", "{{.State.Status}}", "pz").stdout.strip() == "running"


def test_exec_joins_the_container(refengine):
    assert refengine("run", "-d", "--name", "ex", "-e", "FOO=bar", BASE, "sleep", "1000").returncode == 0
    result = refengine("exec", "-e", "X=1", "-w", "/tmp", "ex", "sh", "-c", "echo $FOO $X $(pwd); cat /proc/1/cmdline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bar 1 /tmp\nsleep")
    assert refengine("exec", "ex", "sh", "-c", "exit 4").returncode == 4
    missing = refengine("exec", "ex", "no-such-command")
    assert missing.returncode == 127 and missing.stderr.strip()


def test_cp_never_writes_outside_the_container(refengine, tmp_path):
    # The container's /escape is a symlink to a host path: cp must resolve it inside the container.
    outside = tmp_path / "outside"
    outside.mkdir()
    made = refengine("create", "--name", "cp", BASE, "sh", "-c", f"mkdir -p {outside}; ln -s {outside} /escape")
    assert made.returncode == 0
    assert refengine("start", "-a", "cp").returncode == 0
    payload = tmp_path / "payload"
    payload.write_text("payload\n")
    result = refengine("cp", str(payload), "cp:/escape/")
    assert result.returncode == 0, result.stderr
    assert list(outside.iterdir()) == [], "cp followed a container symlink onto the host"
    back = tmp_path / "back"
    back.mkdir()
    assert refengine("cp", f"cp:{outside}/payload", str(back)).returncode == 0
    assert (back / "payload").read_text() == "payload\n"
    assert refengine("cp", "cp:/etc/passwd", str(back / "passwd")).returncode == 0
    assert (back / "passwd").read_text().startswith("root:")


def test_commit_and_run_the_committed_image(refengine):
    assert refengine("create", "--name", "cm", BASE, "sh", "-c", "echo kept > /kept; rm /data/seed.txt").returncode == 0
    assert refengine("start", "-a", "cm").returncode == 0
    committed = refengine("commit", "-a", "me", "-m", "msg", "cm", "localhost/committed:1")
    assert committed.returncode == 0, committed.stderr
    out = refengine("run", "--rm", "localhost/committed:1", "sh", "-c", "cat /kept; ls -A /data")
    assert out.stdout == "kept\n", out.stderr
    assert refengine("rmi", "localhost/committed:1").returncode == 0


def test_read_only_rootfs(refengine):
    result = refengine("run", "--rm", "--read-only", BASE, "touch", "/x")
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert refengine("run", "--rm", "--read-only", BASE, "touch", "/dev/shm/x").returncode == 0


def test_no_module_is_imported_after_pivot_root(refengine, tmp_path):
    """A bare interpreter (-S: no site, no editable-install finder importing half the
    stdlib) finds every module the container process needs before pivot_root."""
    import subprocess
    import sys

    repo = str(Path(__file__).resolve().parents[3])
    boot = f"import sys; sys.path.insert(0, {repo!r}); from reference_runtime.engine.cli import main; main()"

    def bare(*args: str) -> subprocess.CompletedProcess:
        # --network none: a bridge network has the supervisor (never the container) load
        # pyroute2 from site-packages, which -S hides
        if args[0] == "run":
            args = ("run", "--network", "none", *args[1:])
        return subprocess.run([sys.executable, "-S", "-c", boot, "--root", str(refengine.root), *args],
                              capture_output=True, text=True, timeout=60)

    assert bare("run", "--rm", BASE, "sh", "-c", "exit 3").returncode == 3
    assert bare("run", "--rm", "--init", "-u", "nobody", BASE, "true").returncode == 0
    missing = bare("run", "--rm", BASE, "no-such-command")
    assert missing.returncode == 127 and "no-such-command" in missing.stderr
    assert bare("run", "-d", "--name", "bare", BASE, "sleep", "100").returncode == 0
    assert bare("exec", "-u", "nobody", "bare", "true").returncode == 0


def _openable_char_device(tmp_path) -> tuple[int, int] | None:
    """A device outside docker's standard set that this host lets root open."""
    for major, minor in ((7, 0), (1, 11), (10, 237), (4, 0)):  # vcs, kmsg, loop-control, tty0
        node = tmp_path / f"probe-{major}-{minor}"
        try:
            os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(major, minor))
            os.close(os.open(node, os.O_RDONLY | os.O_NONBLOCK))
            return major, minor
        except OSError:
            continue
        finally:
            node.unlink(missing_ok=True)
    return None


def test_device_nodes_can_be_made_but_not_opened(refengine, tmp_path):
    # docker's devices cgroup allows mknod but denies opening other devices;
    # refengine's nodev mounts must give the same, on every writable place.
    device = _openable_char_device(tmp_path)
    if device is None:
        pytest.skip("this host lets root open no device outside the standard set")
    volume_dir = tmp_path / "bind"
    volume_dir.mkdir()
    script = (f"for d in /tmp /dev /dev/shm /bind /vol; do mknod $d/node c {device[0]} {device[1]} && "
              "( (: < $d/node) 2>/dev/null && echo OPENED $d || echo denied $d); done; "
              "echo x > /dev/null && head -c 4 /dev/zero | wc -c")
    result = refengine("run", "--rm", "-v", f"{volume_dir}:/bind", "-v", "devvol:/vol", BASE, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["denied", "/tmp", "denied", "/dev", "denied", "/dev/shm", "denied", "/bind",
                                     "denied", "/vol", "4"]
    refengine("volume", "rm", "devvol")
