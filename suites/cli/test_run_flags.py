"""The ``run`` flags that scripts use: tmpfs mounts, ``--mount`` (bind, volume,
tmpfs), environment files and variables passed through from the caller,
``--entrypoint ""``, capabilities, ``--pids-limit``, ``--user``, ``-w``,
``--name`` and ``--rm`` with ``-d``; each observed from inside the container
(/proc/mounts, /proc/self/status, the process's own view) or through the
engine's own records."""

from __future__ import annotations

import os
import re

import pytest

from .conftest import BIND_MOUNTS, RUN, RUN_EXIT_STATUS, RUNNING, TMPFS, VOLUMES

TMPFS_FLAG = f"{RUN}#tmpfs"
MOUNT_FLAG = f"{RUN}#mount"
ENV_FLAGS = f"{RUN}#env"
WORKDIR_FLAG = f"{RUN}#workdir"
NAME_FLAG = f"{RUN}#name"
DETACH_RM = f"{RUNNING}#clean-up---rm"
ENTRYPOINT = f"{RUNNING}#default-entrypoint"
CAPABILITIES = f"{RUNNING}#runtime-privilege-and-linux-capabilities"
USER = f"{RUNNING}#user"
PIDS_LIMIT = f"{RUN}#options"

#: Bit numbers of the capabilities these checks look at (linux/capability.h).
CAP_CHOWN, CAP_NET_ADMIN = 0, 12


def run_ok(engine, args: list[str], **kwargs) -> str:
    result = engine.run(["--rm", *args], **kwargs)
    assert result.ok, f"{engine.name}: expected success\n{result}"
    return result.stdout


def mount_line(engine, mounts: str, target: str) -> list[str]:
    """The fields of the /proc/mounts line of ``target``; fails when there is none."""
    lines = [line.split() for line in mounts.splitlines() if len(line.split()) > 2 and line.split()[1] == target]
    assert lines, f"{engine.name}: nothing is mounted on {target}; /proc/mounts:\n{mounts}"
    return lines[-1]


def caps(status: str, field: str = "CapEff") -> int:
    m = re.search(rf"^{field}:\s*([0-9a-f]+)$", status, re.M)
    assert m, f"no {field} line in /proc/self/status:\n{status}"
    return int(m.group(1), 16)


# -- tmpfs ---------------------------------------------------------------------


@pytest.mark.spec(TMPFS_FLAG, "--tmpfs PATH mounts an empty tmpfs at PATH, world-writable (mode 1777) by default")
def test_tmpfs_flag_mounts_a_tmpfs(engine, image):
    out = run_ok(engine, ["--tmpfs", "/t", image, "sh", "-c",
                          "cat /proc/mounts; echo mode=$(stat -c %a /t); ls -A /t | wc -l"])
    fields = mount_line(engine, out, "/t")
    assert fields[2] == "tmpfs", f"{engine.name}: --tmpfs /t mounted {fields[2]!r} there, not tmpfs: {fields}"
    assert "mode=1777" in out, f"{engine.name}: the tmpfs's mode is not 1777:\n{out}"
    assert out.rstrip().endswith("\n0"), f"{engine.name}: the tmpfs is not empty:\n{out}"


@pytest.mark.spec(TMPFS, "--tmpfs PATH:size=N,mode=M sets the tmpfs's size limit in bytes and its file mode in octal")
def test_tmpfs_flag_options_set_size_and_mode(engine, image):
    script = ("grep ' /t ' /proc/mounts; echo mode=$(stat -c %a /t); "
              "dd if=/dev/zero of=/t/small bs=1024 count=512 2>/dev/null && echo small=ok; rm -f /t/small; "
              "dd if=/dev/zero of=/t/big bs=1024 count=2048; echo big=$?; echo bytes=$(stat -c %s /t/big)")
    result = engine.run(["--rm", "--tmpfs", "/t:size=1m,mode=0700", image, "sh", "-c", script])
    assert result.ok, str(result)
    out = result.stdout
    assert "mode=700\n" in out, f"{engine.name}: mode=0700 gave the tmpfs another mode:\n{result}"
    assert "small=ok" in out, f"{engine.name}: 512 KiB could not be written to a 1 MiB tmpfs:\n{result}"
    assert "big=0" not in out, f"{engine.name}: 2 MiB fit into a tmpfs of size=1m:\n{result}"
    written = int(re.search(r"bytes=(\d+)", out).group(1))
    assert written <= 1 << 20, f"{engine.name}: {written} bytes landed on a tmpfs of size=1m:\n{result}"
    assert "no space left on device" in result.stderr.lower(), f"{engine.name}: the write past size=1m failed otherwise:\n{result}"


@pytest.mark.spec(TMPFS, "--mount type=tmpfs,destination=PATH mounts a tmpfs, mode 1777 unless tmpfs-mode says otherwise")
def test_mount_flag_tmpfs(engine, image):
    out = run_ok(engine, ["--mount", "type=tmpfs,destination=/t", image, "sh", "-c",
                          "cat /proc/mounts; echo mode=$(stat -c %a /t)"])
    assert mount_line(engine, out, "/t")[2] == "tmpfs", f"{engine.name}: no tmpfs on /t:\n{out}"
    assert "mode=1777" in out, f"{engine.name}: the tmpfs's mode is not 1777:\n{out}"
    out = run_ok(engine, ["--mount", "type=tmpfs,target=/t,tmpfs-size=1048576,tmpfs-mode=0700", image, "sh", "-c",
                          "echo mode=$(stat -c %a /t); dd if=/dev/zero of=/t/big bs=1024 count=2048 2>/dev/null; "
                          "echo bytes=$(stat -c %s /t/big)"])
    assert "mode=700" in out, f"{engine.name}: tmpfs-mode=0700 was not applied:\n{out}"
    assert int(re.search(r"bytes=(\d+)", out).group(1)) <= 1 << 20, f"{engine.name}: tmpfs-size=1048576 not enforced:\n{out}"


@pytest.mark.spec(TMPFS, "inspect lists a --mount type=tmpfs in Mounts (Type tmpfs, no source) and a --tmpfs "
                        "in HostConfig.Tmpfs with its options")
def test_tmpfs_mounts_are_shown_by_inspect(engine, image):
    name = engine.create(["--mount", "type=tmpfs,destination=/t", "--tmpfs", "/u:size=1m", image, "true"])
    doc = engine.inspect(name)
    tmpfs_mounts = [m for m in doc.get("Mounts") or [] if m.get("Destination") == "/t"]
    assert tmpfs_mounts and tmpfs_mounts[0]["Type"] == "tmpfs" and not tmpfs_mounts[0]["Source"], \
        f"{engine.name}: inspect's Mounts has no tmpfs on /t: Mounts {doc.get('Mounts')!r}"
    assert "size=1m" in ((doc["HostConfig"].get("Tmpfs") or {}).get("/u") or ""), \
        f"{engine.name}: --tmpfs /u:size=1m shows as HostConfig.Tmpfs {doc['HostConfig'].get('Tmpfs')!r}"


# -- --mount bind and volume ------------------------------------------------------


@pytest.mark.spec(BIND_MOUNTS, "--mount type=bind,source=HOSTDIR,target=PATH shares the host directory read-write")
def test_mount_flag_bind(engine, image, tmp_path):
    (tmp_path / "from-host").write_text("host\n")
    out = run_ok(engine, ["--mount", f"type=bind,source={tmp_path},target=/b", image, "sh", "-c",
                          "cat /b/from-host; echo container > /b/from-container"])
    assert out == "host\n", f"{engine.name}: the host's file read as {out!r} through the bind mount"
    assert (tmp_path / "from-container").read_text() == "container\n", \
        f"{engine.name}: a file written to the bind mount did not reach the host directory"


@pytest.mark.spec(BIND_MOUNTS, "--mount type=bind,...,readonly mounts the bind mount read-only: writes fail")
def test_mount_flag_bind_readonly(engine, image, tmp_path):
    (tmp_path / "file").write_text("original\n")
    result = engine.run(["--rm", "--mount", f"type=bind,source={tmp_path},target=/b,readonly", image, "sh", "-c",
                         "cat /b/file && echo changed > /b/file"])
    assert result.returncode != 0 and result.stdout == "original\n", f"{engine.name}: {result}"
    assert "read-only" in result.stderr.lower(), f"{engine.name}: the write failed for another reason:\n{result}"
    assert (tmp_path / "file").read_text() == "original\n", f"{engine.name}: a readonly bind mount was written through"


@pytest.mark.spec(BIND_MOUNTS, "with --mount, a bind source that does not exist is an error and is not created")
def test_mount_flag_bind_missing_source_is_an_error(engine, image, tmp_path):
    missing = tmp_path / "missing"
    result = engine.run(["--rm", "--mount", f"type=bind,source={missing},target=/b", image, "true"])
    assert result.returncode == 125, f"{engine.name}: a missing --mount bind source exited {result.returncode}; docker 125\n{result}"
    assert f"bind source path does not exist: {missing}" in result.stderr, \
        f"{engine.name}: docker says 'bind source path does not exist: {missing}'\n{result}"
    assert not missing.exists(), f"{engine.name}: --mount created the missing bind source {missing}"


@pytest.mark.spec(BIND_MOUNTS, "with -v, a bind source that does not exist is created on the host, as a directory")
def test_volume_flag_creates_a_missing_bind_source(engine, image, tmp_path):
    missing = tmp_path / "created"
    result = engine.run(["--rm", "-v", f"{missing}:/b", image, "sh", "-c", "echo x > /b/file"])
    assert result.ok, f"{engine.name}: -v with a missing host directory failed; docker creates it\n{result}"
    assert missing.is_dir(), f"{engine.name}: -v did not create the missing directory {missing}"
    assert (missing / "file").read_text() == "x\n"


@pytest.mark.spec(VOLUMES, "--mount type=volume,source=NAME,target=PATH creates the named volume if it does not exist")
def test_mount_flag_volume_creates_the_volume(engine, image):
    volume = engine.new_name("v")
    assert not engine.cli("volume", "inspect", volume).ok, f"{engine.name}: {volume} exists before the check"
    out = run_ok(engine, ["--mount", f"type=volume,source={volume},target=/v", image, "sh", "-c",
                          "grep -c ' /v ' /proc/mounts; echo kept > /v/file"])
    assert out == "1\n", f"{engine.name}: /v is not a mount point of its own:\n{out}"
    assert engine.cli("volume", "inspect", volume).ok, f"{engine.name}: --mount type=volume did not create {volume}"
    out = run_ok(engine, ["--mount", f"type=volume,src={volume},dst=/other", image, "cat", "/other/file"])
    assert out == "kept\n", f"{engine.name}: the volume (mounted again with src=, dst=) did not keep the file: {out!r}"


# -- environment --------------------------------------------------------------------


@pytest.mark.spec(ENV_FLAGS, "--env-file: VAR=VAL lines like -e, # comments and blank lines ignored, VAR alone takes "
                             "the caller's value or is left unset, and -e flags override the file")
def test_env_file(engine, image, tmp_path, monkeypatch):
    passed = f"CFT_PASSED_{os.getpid()}"
    unset = f"CFT_UNSET_{os.getpid()}"
    monkeypatch.setenv(passed, "from the caller")
    monkeypatch.delenv(unset, raising=False)
    env_file = tmp_path / "env.list"
    env_file.write_text("# a comment line\n\nCFT_A=1\n   # an indented comment\nCFT_B=two words = and more\n"
                        f"CFT_C= spaced \nCFT_OVER=file\n{passed}\n{unset}\n")
    out = run_ok(engine, ["--env-file", str(env_file), "-e", "CFT_OVER=flag", image, "env"])
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env.get("CFT_A") == "1" and env.get("CFT_B") == "two words = and more", f"{engine.name}: {env}"
    assert env.get("CFT_C") == " spaced ", f"{engine.name}: CFT_C= spaced  arrived as {env.get('CFT_C')!r}"
    assert env.get(passed) == "from the caller", f"{engine.name}: {passed} alone arrived as {env.get(passed)!r}"
    assert unset not in env and unset not in out, f"{engine.name}: {unset}, unset in the caller, is in the container:\n{out}"
    assert env.get("CFT_OVER") == "flag", f"{engine.name}: -e did not override the env file: {env.get('CFT_OVER')!r}"
    assert not any(k.lstrip().startswith("#") for k in env) and "comment" not in out, \
        f"{engine.name}: a comment line became a variable:\n{out}"


@pytest.mark.spec(ENV_FLAGS, "-e NAME without a value passes the caller's value of NAME into the container")
def test_env_name_alone_passes_the_callers_value(engine, image, monkeypatch):
    name = f"CFT_FROM_CALLER_{os.getpid()}"
    monkeypatch.setenv(name, "caller value with spaces")
    out = run_ok(engine, ["-e", name, image, "sh", "-c", f'printf "%s|" "${{{name}-absent}}"'])
    assert out == "caller value with spaces|", f"{engine.name}: -e {name} gave {out!r} in the container"


@pytest.mark.spec(ENV_FLAGS, "-e NAME for a variable the caller has not set leaves NAME unset in the container")
def test_env_name_unset_in_the_caller_is_absent(engine, image, monkeypatch):
    name = f"CFT_NOT_IN_CALLER_{os.getpid()}"
    monkeypatch.delenv(name, raising=False)
    out = run_ok(engine, ["-e", name, image, "sh", "-c", f'printf "%s|" "${{{name}-absent}}"; env'])
    assert out.startswith("absent|"), f"{engine.name}: -e {name} (unset in the caller) is set in the container: {out!r}"
    assert name not in out, f"{engine.name}: {name} is in the container's environment:\n{out}"


# -- entrypoint ------------------------------------------------------------------------


@pytest.fixture
def entrypoint_image(engine, image) -> str:
    """The test image with ENTRYPOINT ["echo", "from-entrypoint"] and CMD ["from-cmd"] (made by commit)."""
    source = engine.create([image, "true"])
    ref = engine.track_image(f"localhost/{engine.new_name('img', track=False)}:entrypoint")
    engine.cli("commit", "--change", 'ENTRYPOINT ["echo", "from-entrypoint"]', "--change", 'CMD ["from-cmd"]',
               source, ref, check=True)
    return ref


@pytest.mark.requires("commit")
@pytest.mark.spec(ENTRYPOINT, '--entrypoint "" clears the image\'s entrypoint and its default command: the '
                              "command given runs directly, and none at all is an error")
def test_empty_entrypoint_clears_the_images_entrypoint(engine, entrypoint_image):
    assert run_ok(engine, [entrypoint_image]) == "from-entrypoint from-cmd\n", f"{engine.name}: the image is not as made"
    out = run_ok(engine, ["--entrypoint", "", entrypoint_image, "echo", "direct"])
    assert out == "direct\n", f"{engine.name}: --entrypoint \"\" ran {out!r}; docker runs the command alone"
    result = engine.run(["--rm", "--entrypoint", "", entrypoint_image])
    assert result.returncode == 125, (f"{engine.name}: --entrypoint \"\" without a command exited {result.returncode}; "
                                      f"docker 125 (the image's CMD is cleared too)\n{result}")
    assert "no command" in result.stderr.lower(), f"{engine.name}: docker says 'No command specified'\n{result}"


# -- capabilities -------------------------------------------------------------------------


@pytest.mark.spec(CAPABILITIES, "--cap-drop CHOWN removes CAP_CHOWN from the default set: root's chown fails")
def test_cap_drop_chown(engine, image):
    script = "grep Cap /proc/self/status; touch /f; chown 1:1 /f && echo chown=ok"
    default = run_ok(engine, [image, "sh", "-c", script])
    assert caps(default) & (1 << CAP_CHOWN) and "chown=ok" in default, f"{engine.name}: no CAP_CHOWN by default:\n{default}"
    result = engine.run(["--rm", "--cap-drop", "CHOWN", image, "sh", "-c", script])
    assert caps(result.stdout) == caps(default) & ~(1 << CAP_CHOWN), \
        f"{engine.name}: --cap-drop CHOWN gave CapEff {caps(result.stdout):#x}; default {caps(default):#x} minus bit 0\n{result}"
    assert "chown=ok" not in result.stdout and "operation not permitted" in result.stderr.lower(), \
        f"{engine.name}: chown worked without CAP_CHOWN:\n{result}"


@pytest.mark.spec(CAPABILITIES, "--cap-drop ALL leaves the container's root with no capability at all")
def test_cap_drop_all(engine, image):
    result = engine.run(["--rm", "--cap-drop", "ALL", image, "sh", "-c",
                         "grep Cap /proc/self/status; touch /f; chown 1:1 /f && echo chown=ok"])
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert caps(result.stdout, field) == 0, f"{engine.name}: --cap-drop ALL left {field} {caps(result.stdout, field):#x}\n{result}"
    assert "chown=ok" not in result.stdout, f"{engine.name}: chown worked with no capabilities:\n{result}"


@pytest.mark.spec(CAPABILITIES, "--cap-add NET_ADMIN adds CAP_NET_ADMIN: network configuration works")
def test_cap_add_net_admin(engine, image):
    script = "grep Cap /proc/self/status; ip link add cft0 type veth peer name cft1 && echo added=ok"
    without = engine.run(["--rm", image, "sh", "-c", script])
    assert not caps(without.stdout) & (1 << CAP_NET_ADMIN) and "added=ok" not in without.stdout, \
        f"{engine.name}: network configuration worked without --cap-add NET_ADMIN:\n{without}"
    result = engine.run(["--rm", "--cap-add", "NET_ADMIN", image, "sh", "-c", script])
    assert caps(result.stdout) == caps(without.stdout) | (1 << CAP_NET_ADMIN), \
        f"{engine.name}: --cap-add NET_ADMIN gave CapEff {caps(result.stdout):#x}; default {caps(without.stdout):#x} plus bit 12\n{result}"
    assert "added=ok" in result.stdout, f"{engine.name}: `ip link add` failed with CAP_NET_ADMIN:\n{result}"


# -- pids limit, user, workdir, name ----------------------------------------------------------


@pytest.mark.spec(PIDS_LIMIT, "--pids-limit N caps the container's processes at N: forking past it fails; inspect shows it")
def test_pids_limit(engine, image):
    # The shell is one of the 5; each background sleep is one more (echo and the
    # arithmetic are builtins), so exactly 4 start before the fifth fork fails.
    # Started detached and read back through logs: podman 4.3 sometimes loses the
    # attach of a container this quick ("failed to connect to container's attach socket").
    name = engine.create(["--pids-limit", "5", image, "sh", "-c",
                          "i=0; while [ $i -lt 20 ]; do sleep 30 & i=$((i+1)); echo started $i; done"])
    engine.cli("start", name, check=True)
    status = engine.cli("wait", name, check=True, timeout=60).stdout.strip()
    result = engine.cli("logs", name, check=True)
    started = result.stdout.count("started")
    assert started == 4, (f"{engine.name}: {started} background processes started under --pids-limit 5 beside "
                          f"the shell; the limit leaves room for exactly 4\n{result}")
    assert status != "0" and "fork" in result.stderr.lower(), \
        f"{engine.name}: forking past the limit did not fail (exit {status})\n{result}"
    limit = engine.inspect(name)["HostConfig"]["PidsLimit"]
    assert limit == 5, f"{engine.name}: inspect shows HostConfig.PidsLimit {limit!r} for --pids-limit 5"


@pytest.mark.spec(RUN_EXIT_STATUS, "a --user name missing from the image's /etc/passwd is an error of the engine: "
                                   "125, 'unable to find user NAME'")
def test_unknown_user_is_an_engine_error(engine, image):
    result = engine.run(["--rm", "--user", "cftnosuchuser", image, "true"])
    assert result.returncode == 125, f"{engine.name}: an unknown --user exited {result.returncode}; docker 125\n{result}"
    assert "unable to find user cftnosuchuser" in result.stderr, f"{engine.name}: docker says 'unable to find user NAME'\n{result}"


@pytest.mark.spec(USER, "--user with a numeric uid missing from /etc/passwd runs as that uid")
def test_numeric_user_without_passwd_entry(engine, image):
    out = run_ok(engine, ["--user", "4321", image, "sh", "-c", "id -u; id -g"])
    assert out.split() == ["4321", "0"], f"{engine.name}: --user 4321 ran as uid/gid {out.split()}"


@pytest.mark.spec(WORKDIR_FLAG, "-w needs an absolute path: a relative one is an engine error (125) that says so "
                                "(the wording and status observed with docker 20.10; the reference documents neither)")
def test_relative_workdir_is_an_error(engine, image):
    result = engine.run(["--rm", "-w", "rel/path", image, "pwd"])
    assert result.returncode == 125, f"{engine.name}: -w rel/path exited {result.returncode}; docker 125\n{result}"
    assert "the working directory 'rel/path' is invalid, it needs to be an absolute path" in result.stderr, \
        f"{engine.name}: docker says \"the working directory 'rel/path' is invalid, it needs to be an absolute path\"\n{result}"


@pytest.mark.parametrize("bad", ["bad/name", "-leading-dash", "spa ce"])
@pytest.mark.spec(NAME_FLAG, "a container name must match [a-zA-Z0-9][a-zA-Z0-9_.-]+: another is refused with 125")
def test_invalid_container_name(engine, image, bad):
    result = engine.cli("run", "--rm", "--name", bad, "--label", engine.label, image, "true")
    assert result.returncode == 125, f"{engine.name}: --name {bad!r} exited {result.returncode}; docker 125\n{result}"
    assert "[a-zA-Z0-9][a-zA-Z0-9_.-]" in result.stderr, f"{engine.name}: the message does not say which names are allowed\n{result}"
    assert not engine.cli("inspect", "--type", "container", "--", bad).ok, f"{engine.name}: a container named {bad!r} exists"


@pytest.mark.spec(DETACH_RM, "--rm with -d: the container is removed when it exits, without a client attached")
def test_detached_rm_leaves_nothing(engine, image):
    name = engine.new_name(track=False)
    result = engine.run(["-d", "--rm", image, "sh", "-c", "sleep 1"], name=name)
    assert result.ok and re.fullmatch(r"[0-9a-f]{64}\n", result.stdout), f"{engine.name}: run -d printed no ID\n{result}"
    engine.wait_for(lambda: not engine.cli("inspect", "--type", "container", name).ok, timeout=30,
                    what=f"{name} (--rm -d) to be removed after it exited")
    listed = engine.cli("ps", "-a", "-q", "--no-trunc", "--filter", f"label={engine.label}", check=True).stdout.split()
    assert result.stdout.strip() not in listed, f"{engine.name}: ps -a still lists the --rm container"
