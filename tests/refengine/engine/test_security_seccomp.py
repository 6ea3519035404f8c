"""refengine's seccomp logic without the kernel: --security-opt parsing, docker's
includes/excludes, docker's gating over containers-common's profile, the BPF
compile and its cache. Installing the filter is checked by suites/security."""

from __future__ import annotations

import json
import os

import pytest

from reference_runtime.engine import seccomp
from reference_runtime.engine.process import capability_mask, capability_names

DEFAULT_CAPS = capability_names(capability_mask([], []))


def test_security_opts():
    assert seccomp.security_opts([]) == (None, False)
    assert seccomp.security_opts(["seccomp=unconfined"]) == ("unconfined", False)
    assert seccomp.security_opts(["seccomp:unconfined", "no-new-privileges:true"]) == ("unconfined", True)
    assert seccomp.security_opts(["no-new-privileges=false"]) == (None, False)
    assert seccomp.security_opts(['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}'])[0].startswith("{")
    assert seccomp.security_opts(["label=disable", "apparmor=unconfined"]) == (None, False)
    with pytest.raises(seccomp.ProfileError, match="Invalid --security-opt: \"bogus\""):
        seccomp.security_opts(["bogus"])
    with pytest.raises(seccomp.ProfileError):
        seccomp.security_opts(["no-new-privileges:maybe"])


def test_capability_names():
    assert len(DEFAULT_CAPS) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPS and "CAP_MKNOD" in DEFAULT_CAPS


@pytest.mark.parametrize(("rule", "caps", "machine", "kernel", "applies"), [
    ({}, set(), "x86_64", "6.1.0", True),
    ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT_CAPS, "x86_64", "6.1.0", False),
    ({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "x86_64", "6.1.0", True),
    ({"excludes": {"caps": ["CAP_SYS_ADMIN"]}}, DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "x86_64", "6.1.0", False),
    ({"includes": {"arches": ["amd64", "x32"]}}, set(), "x86_64", "6.1.0", True),
    ({"includes": {"arches": ["arm64"]}}, set(), "x86_64", "6.1.0", False),
    ({"includes": {"arches": ["arm64"]}}, set(), "aarch64", "6.1.0", True),
    ({"excludes": {"arches": ["s390x"]}}, set(), "x86_64", "6.1.0", True),
    ({"includes": {"minKernel": "4.8"}}, set(), "x86_64", "4.19.0-amd64", True),
    ({"includes": {"minKernel": "4.8"}}, set(), "x86_64", "4.4.0", False),
    ({"includes": {"minKernel": "5.10"}}, set(), "x86_64", "6.18.44-fc-v657", True),
])
def test_rule_applies(rule, caps, machine, kernel, applies):
    assert seccomp.rule_applies(rule, caps, machine, kernel) is applies


def _allowed(profile: dict, name: str, caps: set[str]) -> bool:
    """Whether some applicable ALLOW rule names ``name`` without argument conditions."""
    return any(name in r["names"] and r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               and seccomp.rule_applies(r, caps, "x86_64", "6.1.0") for r in profile["syscalls"])


def test_dockerize_gates_what_docker_gates():
    podman_like = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["read", "unshare", "mount", "keyctl", "setns", "clone"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    ]}
    docker = seccomp.dockerize(podman_like)
    assert docker["defaultErrnoRet"] == 1
    assert _allowed(docker, "read", DEFAULT_CAPS)
    for name in ("unshare", "mount", "setns", "bpf", "clone"):
        assert not _allowed(docker, name, DEFAULT_CAPS), name
        assert _allowed(docker, name, DEFAULT_CAPS | {"CAP_SYS_ADMIN"}), name
    assert not _allowed(docker, "keyctl", DEFAULT_CAPS | {"CAP_SYS_ADMIN"})
    clone_rules = [r for r in docker["syscalls"] if r["names"] == ["clone"] and r.get("args")]
    assert clone_rules and clone_rules[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert not [r for r in docker["syscalls"] if "bpf" in r["names"] and r["action"] == "SCMP_ACT_ERRNO"]


def _has_libseccomp() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return False
    return True


needs_libseccomp = pytest.mark.skipif(not _has_libseccomp(), reason="libseccomp.so.2 is not installed")


@needs_libseccomp
def test_compile_is_a_bpf_program_that_depends_on_caps():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write", "exit_group", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    ]}
    without = seccomp.compile_bpf(profile, DEFAULT_CAPS, "x86_64", "6.1.0")
    with_admin = seccomp.compile_bpf(profile, DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "x86_64", "6.1.0")
    assert without and len(without) % 8 == 0  # struct sock_filter is 8 bytes
    assert with_admin != without


def test_unknown_action_is_a_profile_error():
    with pytest.raises(seccomp.ProfileError, match="SCMP_ACT_BOGUS"):
        seccomp.compile_bpf({"defaultAction": "SCMP_ACT_BOGUS"}, set(), "x86_64", "6.1.0")


@needs_libseccomp
def test_filter_for_caches_per_profile_and_caps(tmp_path):
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}]})
    host = {"SecurityOpt": [f"seccomp={profile}"]}
    first = seccomp.filter_for(str(tmp_path), host, DEFAULT_CAPS)
    cached = list((tmp_path / "seccomp").iterdir())
    assert len(cached) == 1 and cached[0].read_bytes() == first
    assert seccomp.filter_for(str(tmp_path), host, DEFAULT_CAPS) == first
    seccomp.filter_for(str(tmp_path), host, DEFAULT_CAPS | {"CAP_SYS_ADMIN"})
    assert len(list((tmp_path / "seccomp").iterdir())) == 2
    assert seccomp.filter_for(str(tmp_path), {"SecurityOpt": ["seccomp=unconfined"]}, DEFAULT_CAPS) is None
    assert seccomp.filter_for(str(tmp_path), {"Privileged": True}, DEFAULT_CAPS) is None


@pytest.mark.skipif(not os.path.exists(seccomp.DEFAULT_PROFILE), reason="containers-common is not installed")
@needs_libseccomp
def test_default_profile_compiles(tmp_path):
    bpf = seccomp.filter_for(str(tmp_path), {}, DEFAULT_CAPS)
    assert bpf and len(bpf) % 8 == 0
