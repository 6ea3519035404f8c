"""``--security-opt`` at create: checked before anything is written, a seccomp
profile file stored by content (docker's client sends the file's JSON)."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine import runtime
from reference_runtime.engine.flags import parse_command
from reference_runtime.engine.state import Root
from reference_runtime.errors import ContainerError

BASE = "localhost/conformance/busybox:base"


def _create(root: Root, *argv: str) -> dict:
    p = parse_command("create", list(argv))
    return root.read_config(runtime.create(root, p.opts, p.args))


def test_default_has_no_security_opt(root):
    assert _create(root, BASE)["HostConfig"]["SecurityOpt"] is None


def test_profile_file_is_stored_by_content(root, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    opts = _create(root, "--security-opt", f"seccomp={path}", "--security-opt", "no-new-privileges", BASE)
    stored = opts["HostConfig"]["SecurityOpt"]
    assert stored[1] == "no-new-privileges"
    assert stored[0].startswith("seccomp=") and json.loads(stored[0][len("seccomp="):]) == profile


@pytest.mark.parametrize(("opt", "message"), [
    ("bogus", 'Invalid --security-opt: "bogus"'),
    ("seccomp=/no/such/profile.json",
     "opening seccomp profile (/no/such/profile.json) failed: open /no/such/profile.json: no such file or directory"),
])
def test_bad_security_opt_is_refused_before_anything_is_written(root, opt, message):
    with pytest.raises(ContainerError) as info:
        _create(root, "--security-opt", opt, BASE)
    assert str(info.value) == message
    assert root.container_ids() == []


def test_unreadable_json_is_refused(root, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{bad")
    with pytest.raises(ContainerError, match=r"^compacting json for seccomp profile \(.*bad.json\) failed: "):
        _create(root, "--security-opt", f"seccomp={path}", BASE)
