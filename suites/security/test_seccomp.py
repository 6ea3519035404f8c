"""Docker's default seccomp profile: a filter is installed, the syscalls the
documentation lists as blocked answer EPERM, ``--security-opt
seccomp=unconfined`` and ``--privileged`` lift it, ``--cap-add`` opens what
the profile gates on a capability, and ``seccomp=PROFILE.json`` applies a
profile of the user's."""

from __future__ import annotations

import errno
import json

import pytest

from .conftest import PROBES, SECCOMP, SECURITY_OPT, probe_results, proc_status

#: Syscalls docker's seccomp page lists as blocked by the default profile.
BLOCKED = ("keyctl", "add_key", "perf_event_open", "kexec_load", "open_by_handle_at", "bpf", "clock_settime",
           "unshare_user")
#: Of those, the ones the kernel itself allows an unconfined root without the
#: capability (or answers with another errno): here the profile is the only guard.
ONLY_SECCOMP = {"keyctl": 0, "add_key": 0, "perf_event_open": errno.EFAULT, "unshare_user": 0}


def _probe_all(engine, image, probes, *options: str) -> dict[str, tuple[int, int]]:
    script = " ; ".join(f"{PROBES}/sysprobe {name}" for name in BLOCKED)
    r = engine.run(["--rm", "-v", f"{probes}:{PROBES}:ro", *options, image, "sh", "-c", script])
    assert r.returncode == 0, f"{engine.name}: the syscall probes did not run:\n{r}"
    got = probe_results(r.stdout)
    assert set(got) == set(BLOCKED), f"{engine.name}: probe output is missing lines:\n{r}"
    return got


@pytest.mark.spec(SECCOMP, "Docker's default seccomp profile ... is applied by default to containers "
                  "(Seccomp: 2, filter mode, in /proc/self/status)")
def test_default_profile_is_installed(engine, image):
    r = engine.run(["--rm", image, "cat", "/proc/self/status"])
    status = proc_status(r.stdout)
    assert status.get("Seccomp") == "2", f"{engine.name}: a default container has Seccomp: {status.get('Seccomp')}"
    assert int(status.get("Seccomp_filters", "0")) >= 1, f"{engine.name}: no seccomp filter: {status}"


@pytest.mark.spec(SECCOMP, "Significant syscalls blocked by the default profile: keyctl, add_key, perf_event_open, "
                  "kexec_load, open_by_handle_at, bpf, clock_settime, unshare ... the default action is to "
                  "return EPERM (kexec_load, open_by_handle_at, bpf and clock_settime also get EPERM from the "
                  "kernel without their capability: for them this checks the errno, not the filter; "
                  "test_unconfined_lifts_the_profile shows the filter is what refuses the others)")
def test_blocked_syscalls_answer_eperm(engine, image, probes):
    got = _probe_all(engine, image, probes)
    wrong = {name: res for name, res in got.items() if res != (-1, errno.EPERM)}
    assert not wrong, (f"{engine.name}: under the default profile these syscalls did not fail with EPERM "
                       f"(result, errno): {wrong}")


@pytest.mark.spec(SECCOMP, "unshare: Deny cloning new namespaces for processes ... (busybox unshare -U)")
def test_unshare_user_namespace_is_refused(engine, image):
    r = engine.run(["--rm", image, "unshare", "-U", "true"])
    assert r.returncode != 0, f"{engine.name}: unshare -U succeeded under the default seccomp profile:\n{r}"
    assert "Operation not permitted" in r.stderr, f"{engine.name}: unshare -U failed but not with EPERM:\n{r}"


@pytest.mark.spec(SECCOMP, "mount, umount: Deny mounting/unmounting ... Also gated by CAP_SYS_ADMIN")
def test_mount_is_refused(engine, image):
    r = engine.run(["--rm", image, "sh", "-c", "echo ran; mkdir -p /mnt && mount -t tmpfs cft /mnt"])
    assert "ran" in r.stdout.split(), f"{engine.name}: the container did not run:\n{r}"
    assert r.returncode != 0, f"{engine.name}: mount of a tmpfs succeeded in a default container:\n{r}"
    # busybox mount reports EPERM (and EACCES) as "permission denied (are you root?)".
    assert "mount: permission denied" in r.stderr, f"{engine.name}: mount failed, but not with EPERM:\n{r}"


@pytest.mark.spec(SECCOMP, "--security-opt seccomp=unconfined: run a container without the default seccomp profile")
def test_unconfined_lifts_the_profile(engine, image, probes):
    got = _probe_all(engine, image, probes, "--security-opt", "seccomp=unconfined")
    wrong = {name: got[name] for name, want in ONLY_SECCOMP.items()
             if (want == 0 and got[name][0] < 0) or (want != 0 and got[name] != (-1, want))}
    assert not wrong, (f"{engine.name}: with seccomp=unconfined these syscalls were still refused (result, errno): "
                       f"{wrong}; the kernel itself allows them")
    r = engine.run(["--rm", "--security-opt", "seccomp=unconfined", image, "grep", "^Seccomp:", "/proc/self/status"])
    assert r.stdout.split() == ["Seccomp:", "0"], f"{engine.name}: seccomp=unconfined gave {r.stdout.strip()!r}"


@pytest.mark.spec(SECCOMP, "The default profile ... allows syscalls gated by a capability when the container "
                  "has it: with --cap-add SYS_ADMIN, mount and unshare are allowed")
def test_cap_add_sys_admin_opens_what_the_profile_gates(engine, image):
    r = engine.run(["--rm", "--cap-add", "SYS_ADMIN", image, "sh", "-c",
                    "mkdir -p /mnt && mount -t tmpfs cft /mnt && unshare -U true && echo opened"])
    assert r.stdout.strip() == "opened", f"{engine.name}: with CAP_SYS_ADMIN, mount/unshare were still refused:\n{r}"


@pytest.mark.spec(SECURITY_OPT, "--security-opt seccomp=profile.json: the JSON file is used as the seccomp filter")
def test_custom_profile_is_applied(engine, image, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["chmod", "fchmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EPERM}]}
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    r = engine.run(["--rm", "--security-opt", f"seccomp={path}", image, "sh", "-c",
                    "touch /tmp/f && chmod 600 /tmp/f; echo chmod=$?; unshare -U true && echo unshared"])
    assert "chmod=1" in r.stdout, f"{engine.name}: a profile refusing chmod did not refuse it:\n{r}"
    assert "unshared" in r.stdout, f"{engine.name}: a profile allowing everything else refused unshare:\n{r}"
    assert "Operation not permitted" in r.stderr, f"{engine.name}: chmod failed, but not with EPERM:\n{r}"


@pytest.mark.spec(SECURITY_OPT, "--security-opt seccomp=profile.json: a profile that cannot be read is an error")
def test_missing_profile_file_is_an_error(engine, image, tmp_path):
    r = engine.run(["--rm", "--security-opt", f"seccomp={tmp_path / 'missing.json'}", image, "true"])
    assert r.returncode == 125, \
        f"{engine.name}: a missing seccomp profile gave exit {r.returncode}, docker's is 125:\n{r}"


@pytest.mark.spec(SECCOMP, "The default seccomp profile applies to every process of the container, "
                  "those started with docker exec too")
def test_exec_runs_under_the_containers_profile(engine, image):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, "sleep", "300", check=True)
    r = engine.cli("exec", name, "grep", "^Seccomp:", "/proc/self/status")
    assert r.stdout.split() == ["Seccomp:", "2"], f"{engine.name}: an exec'd process has {r.stdout.strip()!r}"
    r = engine.cli("exec", name, "unshare", "-U", "true")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, \
        f"{engine.name}: unshare -U in an exec'd process was not refused with EPERM:\n{r}"
