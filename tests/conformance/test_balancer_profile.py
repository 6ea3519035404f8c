"""Balancer profiles parsed strictly, the shipped ones valid, the proxies'
rendered configurations accepted by haproxy and nginx, and the plugin's skips."""

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from conformance.balancer_profile import (KNOWN_CAPABILITIES, available_balancer_profiles, balancer_profile_by_name,
                                          parse_balancer_profile)
from conformance.balancers import HAPROXY, NGINX, SUBJECT_KINDS, HaproxySubject, NginxSubject
from conformance.checks import unrequired_capabilities
from conformance.errors import ConformanceError

GOOD = """
name = "b"
kind = "nginx"
keepalive = "per-connection"
capabilities = ["ingress-balance", "ingress-kill"]
[settings]
fail_timeout_s = 3
[deviations."ingress/test_changes.py::test_x"]
match = "failed"
evidence = "b 1.0 fails 3 requests: evidence"
"""


def test_parse_good_profile():
    p = parse_balancer_profile(GOOD)
    assert (p.name, p.kind, p.keepalive) == ("b", "nginx", "per-connection")
    assert p.has("ingress-kill") and not p.has("ingress-scale")
    assert dict(p.settings) == {"fail_timeout_s": 3}
    assert p.deviation("ingress/test_changes.py::test_x[2]").evidence == "b 1.0 fails 3 requests: evidence"


@pytest.mark.parametrize("text,message", [
    ('name = "b"\nkeepalive = "per-request"', "'kind' must be one of"),
    ('name = "b"\nkind = "traefik"\nkeepalive = "per-request"', "'kind' must be one of"),
    ('name = "b"\nkind = "nginx"', "'keepalive' must be one of"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "sticky"', "'keepalive' must be one of"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "per-request"\nchoice = "least-conn"', "'choice' must be one of"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "per-request"\ncapabilities = ["ingress-scael"]',
     "unknown balancer capability ingress-scael"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "per-request"\n[settings]\nx = [1]', "[settings] values"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "per-request"\nreplicas = 3', "unknown key(s) replicas"),
    ('name = "b"\nkind = "nginx"\nkeepalive = "per-request"\n[deviations."ingress/t.py::x"]\nmatch = "y"',
     "'evidence' must say"),
])
def test_bad_profiles_are_one_line_errors(text, message):
    with pytest.raises(ConformanceError) as info:
        parse_balancer_profile(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_shipped_profiles_are_valid_and_claim_only_checked_capabilities():
    shipped = available_balancer_profiles()
    assert {"haproxy", "nginx", "docker-mesh"} <= set(shipped)
    for name in shipped:
        profile = balancer_profile_by_name(name)
        assert unrequired_capabilities(profile) == [], f"{name} claims what no check requires"
    # docker's routing mesh needs IPVS, which these machines lack: a missing capability, not a deviation
    mesh = balancer_profile_by_name("docker-mesh")
    assert not mesh.has("ingress-balance") and not mesh.deviations
    assert "ingress-balance" in KNOWN_CAPABILITIES


def test_unknown_balancer_is_refused():
    with pytest.raises(ConformanceError, match="unknown balancer 'nope'; known: .*haproxy"):
        balancer_profile_by_name("nope")


def test_every_standalone_kind_has_a_subject_class():
    assert SUBJECT_KINDS["haproxy"] is HaproxySubject and SUBJECT_KINDS["nginx"] is NginxSubject


def _render(cls, tmp_path: Path, profile_name: str) -> Path:
    settings = cls.settings_for(balancer_profile_by_name(profile_name))
    text = jinja2.Template(cls.TEMPLATE, undefined=jinja2.StrictUndefined).render(
        dir=str(tmp_path), port=18080, servers=[("r1", "127.0.0.1:18081"), ("r2", "127.0.0.1:18082")], **settings)
    path = tmp_path / "proxy.conf"
    path.write_text(text + "\n")
    return path


@pytest.mark.skipif(not shutil.which(HAPROXY), reason="haproxy is not installed (setup.sh installs it)")
@pytest.mark.parametrize("profile,mode", [("haproxy", "http"), ("haproxy-tcp", "tcp")])
def test_haproxy_accepts_its_rendered_configuration(tmp_path, profile, mode):
    path = _render(HaproxySubject, tmp_path, profile)
    text = path.read_text()
    assert "server r1 127.0.0.1:18081" in text and f"mode {mode}\n" in text
    assert ("retry-on" in text) == (mode == "http"), "retry-on exists in mode http only"
    done = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(not shutil.which(NGINX), reason="nginx is not installed (setup.sh installs it)")
def test_nginx_accepts_its_rendered_configuration(tmp_path):
    path = _render(NginxSubject, tmp_path, "nginx")
    assert "server 127.0.0.1:18082 max_fails=1 fail_timeout=10s;  # r2" in path.read_text()
    done = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


CHECKS = """
import pytest

@pytest.mark.requires("ingress-balance")
def test_needs_a_balancer(balancer_profile):
    assert balancer_profile.name
"""


def test_without_balancer_the_checks_skip_with_the_reason(pytester):
    pytester.makepyfile(test_ingress=CHECKS)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:xdist")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a load balancer: --balancer *haproxy*"])


def test_docker_mesh_skips_as_a_missing_capability(pytester):
    pytester.makepyfile(test_ingress=CHECKS)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:xdist", "--balancer", "docker-mesh", "--report-dir", "out")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*balancer docker-mesh lacks capability ingress-balance*"])


def test_bad_balancer_is_a_usage_error(pytester):
    pytester.makepyfile(test_ingress=CHECKS)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--balancer", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown balancer 'nope'*"])
