"""The run flags of suites/cli/test_run_flags.py, below the kernel: ``--mount``
and ``--tmpfs`` grammar and docker's messages, the daemon-side checks of
``--mount``, the mount order of a start, ``--env-file`` lines."""

from __future__ import annotations

import pytest

from reference_runtime.engine import plan, spec as specs
from reference_runtime.engine.flags import parse_command, parse_mount, tmpfs_mount_options
from reference_runtime.errors import ContainerError

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8


def test_mount_keys_and_aliases():
    assert parse_mount("type=bind,source=/h,target=/c") == {"Type": "bind", "Source": "/h", "Target": "/c"}
    assert parse_mount("type=bind,src=/h,dst=/c,ro") == {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True}
    assert parse_mount("type=bind,src=/h,destination=/c,readonly=false")["ReadOnly"] is False
    assert parse_mount("src=v,target=/v")["Type"] == "volume"  # docker's CLI default
    assert parse_mount('"type=volume","src=a,b",dst=/v')["Source"] == "a,b"  # CSV, as docker reads it
    assert parse_mount("type=volume,src=v,dst=/v,volume-nocopy")["VolumeOptions"] == {"NoCopy": True}
    assert parse_mount("type=tmpfs,dst=/t,tmpfs-size=64k,tmpfs-mode=1770")["TmpfsOptions"] == {"SizeBytes": 65536,
                                                                                              "Mode": 0o1770}


@pytest.mark.parametrize("spec, message", [
    ("type=bind,src=/h", "target is required"),
    ("type=bind,dst=/c,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
    ("type=bind,dst=/c,what", "invalid field 'what' must be a key=value pair"),
    ("type=bind,dst=/c,ro=maybe", "invalid value for ro: maybe"),
    ("type=tmpfs,dst=/t,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,dst=/t,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
    ("type=bind,dst=/c,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"),
    ("type=tmpfs,dst=/t,volume-nocopy", "cannot mix 'volume-*' options with mount type 'tmpfs'"),
])
def test_mount_errors_are_dockers(spec, message):
    with pytest.raises(ValueError, match=f"^{message.replace('*', '[*]')}$"):
        parse_mount(spec)
    with pytest.raises(ContainerError, match=f'^invalid argument "{spec}" for "--mount" flag: '):
        parse_command("run", ["--mount", spec, "img"])


def test_tmpfs_options_start_from_dockers_defaults():
    assert tmpfs_mount_options("") == (MS_NOSUID | MS_NODEV | MS_NOEXEC, "")
    assert tmpfs_mount_options("size=1m,mode=0700") == (MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0700")
    assert tmpfs_mount_options("exec,suid,ro,uid=5") == (MS_NODEV | MS_RDONLY, "uid=5")
    with pytest.raises(ValueError, match=r'^invalid tmpfs option \["bogus" "1"\]$'):
        tmpfs_mount_options("bogus=1")
    with pytest.raises(ValueError, match=r'^invalid tmpfs option \["size"\]$'):
        tmpfs_mount_options("size")


def test_mount_flag_checks_like_the_daemon(tmp_path):
    bind = specs.mount_flag(parse_mount(f"type=bind,src={tmp_path}/,dst=/b/,readonly"))
    assert bind == {"Type": "bind", "Source": str(tmp_path), "Destination": "/b", "Mode": "", "RW": False,
                    "Propagation": "rprivate"}
    tmpfs = specs.mount_flag(parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700"))
    assert tmpfs["Type"] == "tmpfs" and tmpfs["Options"] == "size=1048576,mode=700" and tmpfs["RW"]
    anonymous = specs.mount_flag(parse_mount("type=volume,dst=/v"))
    assert anonymous["Anonymous"] and len(anonymous["Name"]) == 64
    for spec, message in [
        (f"type=bind,src={tmp_path}/missing,dst=/b",
         f'invalid mount config for type "bind": bind source path does not exist: {tmp_path}/missing'),
        ("type=bind,dst=/b", 'invalid mount config for type "bind": field Source must not be empty'),
        ("type=bind,src=rel,dst=/b", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
        ("type=tmpfs,src=x,dst=/t", 'invalid mount config for type "tmpfs": field Source must not be specified'),
        ("type=weird,dst=/x", 'invalid mount config for type "weird": mount type unknown'),
    ]:
        with pytest.raises(ContainerError) as info:
            specs.mount_flag(parse_mount(spec))
        assert str(info.value) == message
    assert not (tmp_path / "missing").exists()


def test_tmpfs_flag_is_checked_and_kept_as_docker_keeps_it():
    assert specs.tmpfs_flags(["/t", "/u/:size=1m,mode=0700"]) == {"/t": "", "/u": "size=1m,mode=0700"}
    with pytest.raises(ContainerError, match="^invalid mount path: 't' mount path must be absolute$"):
        specs.tmpfs_flags(["t"])
    with pytest.raises(ContainerError, match="^Duplicate mount point: /t$"):
        specs.tmpfs_flags(["/t", "/t:size=1m"])
    with pytest.raises(ContainerError, match=r"^invalid tmpfs option"):
        specs.tmpfs_flags(["/t:bogus"])


def test_mounts_of_a_start_go_shallow_to_deep():
    config = {"Mounts": [{"Type": "bind", "Source": "/h", "Destination": "/a/b/c"},
                         {"Type": "volume", "Source": "/v", "Destination": "/a"}],
              "HostConfig": {"Tmpfs": {"/a/b": "size=1m"}}}
    planned = plan.plan_mounts(config)
    assert [m["Destination"] for m in planned] == ["/a", "/a/b", "/a/b/c"]
    assert planned[1] == {"Type": "tmpfs", "Source": "", "Destination": "/a/b", "RW": True, "Options": "size=1m"}


def test_env_file_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_CALLER", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    env_file = tmp_path / "env.list"
    env_file.write_text("# comment\n\n   \n  # indented comment\nA=1\nB= spaced \n  C=left trimmed\nFROM_CALLER\nNOT_SET\n")
    assert specs.env_flags({"env_file": [str(env_file)], "env": ["A=2"]}) == [
        "A=1", "B= spaced ", "C=left trimmed", "FROM_CALLER=yes", "A=2"]
