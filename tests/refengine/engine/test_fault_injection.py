"""refengine killed (SIGKILL) at each step of create, start, rm, load, build,
commit, volume rm and rmi, and on a full disk: ``system check`` shows the
damage, ``system check --repair`` leaves a clean store, nothing that was
complete before is lost, and the engine works on.

The steps are hit deterministically with ``REFENGINE_FAULT=<point>``
(reference_runtime/faults.py: the process SIGKILLs itself there); kills
after seeded random delays are the second net, for the windows no point
names. Every test has its own throwaway root (a copy of one with the test
image loaded), removed afterwards with its containers and mounts.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from reference_runtime.engine import storecheck
from reference_runtime.engine.state import Root

from .conftest import BASE, REFENGINE, kernel_ready, needs_kernel

IMAGE_VOLUME = "localhost/conformance/busybox:volume"
EXTRA = "localhost/fault/extra:1"
DOCKERFILE = f"FROM {BASE}\nRUN echo built > /built\nCOPY a /a\n"
KILL_SUPERVISOR = "<SIGKILL the supervisor of victim>"


# ---------------------------------------------------------------- pure parts of the checker


def test_index_problems_names_dangling_tags_missing_blobs_and_unused_layers():
    index = {"images": {"sha256:i1": {"diff_ids": ["sha256:d1"], "chain_ids": ["sha256:c1"]}},
             "tags": {"docker.io/library/a:latest": "sha256:i1", "docker.io/library/b:latest": "sha256:gone"},
             "layers": {"sha256:c1": {"diff_id": "sha256:d1"}, "sha256:c9": {"diff_id": "sha256:d9"}}}
    found = storecheck.index_problems(index, {"sha256:i1"})
    assert [(code, subject) for code, subject, _ in found] == [
        ("tag", "docker.io/library/b:latest"), ("blob", "sha256:i1"), ("unused-layer", "sha256:c9")], found
    assert storecheck.index_problems({**index, "tags": {}, "layers": {"sha256:c1": {}}},
                                     {"sha256:i1", "sha256:d1"}) == []


def test_mounts_under_unescapes_and_orders_deepest_first():
    text = ("22 1 0:5 / /var/lib/x rw - tmpfs t rw\n"
            "23 22 0:6 / /var/lib/x/a rw - tmpfs t rw\n"
            "24 23 0:7 / /var/lib/x/a/b\\040c rw - overlay o rw\n"
            "25 1 0:8 / /var/lib/xy rw - tmpfs t rw\n")
    assert storecheck.mounts_under(text, "/var/lib/x") == ["/var/lib/x/a/b c", "/var/lib/x/a"]


def test_missing_entries_follows_the_extractors_replacements(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in (("d/", tarfile.DIRTYPE), ("d/old", tarfile.REGTYPE), ("d/.wh.gone", tarfile.REGTYPE),
                           ("d/.wh..wh..opq", tarfile.REGTYPE), ("e", tarfile.DIRTYPE), ("e/x", tarfile.REGTYPE),
                           ("e", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = kind
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    blob = tmp_path / "layer.tar"
    blob.write_bytes(buf.getvalue())
    expected = storecheck.expected_entries(blob)
    assert expected == {"d": "dir", "d/old": "file", "d/gone": "whiteout", "e": "file"}, expected
    layer = tmp_path / "layer"
    (layer / "d").mkdir(parents=True)
    (layer / "d" / "old").write_text("")
    (layer / "e").symlink_to("nowhere")
    assert storecheck.missing_entries(layer, expected) == ["d/gone"]
    os.mknod(layer / "d" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    assert storecheck.missing_entries(layer, expected) == []


# ---------------------------------------------------------------- a throwaway engine


class Engine:
    """``refengine --root ROOT`` with helpers to see what the root holds."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, *args: str, fault: str | None = None, timeout: float = 60,
                 check: bool = False, input: bytes | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env.pop("REFENGINE_FAULT", None)
        if fault:
            env["REFENGINE_FAULT"] = fault
        r = subprocess.run([REFENGINE, "--root", str(self.root), *args], capture_output=True, text=True,
                           env=env, timeout=timeout, input=input)
        if check:
            assert r.returncode == 0, f"refengine {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}"
        return r

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([REFENGINE, "--root", str(self.root), *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def objects(self) -> dict[str, set[str]]:
        """Everything a user sees: image IDs, tags, containers ("ID name"), volumes; and under
        "_listing" the "ID tag" lines (a tag may move to another image: that loses nothing)."""
        images = self("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}", check=True)
        containers = self("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}", check=True)
        vols = self("volume", "ls", "-q", check=True)
        lines = set(images.stdout.splitlines())
        return {"images": {line.split(" ")[0] for line in lines},
                "tags": {line.split(" ")[1] for line in lines} - {"<none>:<none>"},
                "containers": set(containers.stdout.splitlines()), "volumes": set(vols.stdout.split()),
                "_listing": lines}

    def cleanup(self) -> None:
        listed = self("ps", "-a", "-q", "--no-trunc", timeout=30)
        if listed.stdout.split():
            self("rm", "-f", "-v", *listed.stdout.split(), timeout=60)
        # cgroups and mounts of what the kills left, even when the test failed before its repair
        storecheck.check(Root(str(self.root)), repair=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory, image_archive) -> dict[str, Path]:
    """A root with the test image loaded, an archive of one more image, a build context."""
    if not kernel_ready():
        pytest.skip("needs root, cgroups and /bin/busybox")
    base = tmp_path_factory.mktemp("fault-template")
    engine = Engine(base / "root")
    try:
        engine("load", "-i", str(image_archive), check=True)
        maker = Engine(base / "maker")
        maker("load", "-i", str(image_archive), check=True)
        maker("run", "--name", "maker", BASE, "sh", "-c", "echo extra > /extra", check=True)
        maker("commit", "maker", EXTRA, check=True)
        maker("save", "-o", str(base / "extra.tar"), EXTRA, check=True)
    finally:
        Engine(base / "maker").cleanup()
    context = base / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "a").write_text("a\n")
    yield {"root": base / "root", "extra": base / "extra.tar", "context": context}
    engine.cleanup()


@pytest.fixture
def engine(template, tmp_path) -> Engine:
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(template["root"]), str(root)], check=True)
    e = Engine(root)
    yield e
    e.cleanup()


# ---------------------------------------------------------------- SIGKILL at each named step

# point -> (setup, the command killed, what `system check` must then report (regex, or None: nothing),
#           the object the command creates or removes, which may be present or absent afterwards)
SCENARIOS = {
    "create:after-dir": ("", "create --name victim {volume} true", r"container directory without config\.json", "victim"),
    "create:after-prepare": ("", "create --name victim {volume} true", r"container directory without config\.json",
                             "victim"),
    "create:after-config": ("", "create --name victim {volume} true", r"config\.json written but no state\.json",
                            "victim"),
    "start:locked": ("create --name victim {base} sleep 60", "start victim", None, None),
    "start:after-spawn": ("create --name victim {base} sleep 60", "start victim", None, None),
    "supervisor:after-cgroup": ("create --name victim {base} sleep 60", "start victim",
                                r"cgroup left behind by a container that does not run", None),
    # the CLI sees the supervisor die and records the truth itself
    "supervisor:after-start": ("create --name victim {base} sleep 60", "start victim", None, None),
    # no CLI is there when the supervisor of a running container is killed from outside
    "supervisor:killed": ("run -d --name victim {base} sleep 60", KILL_SUPERVISOR,
                          r"state says running but its supervisor \(pid \d+\) is gone", None),
    "rm:after-config-unlink": ("create --name victim {base} true", "rm -v victim",
                               r"container directory without config\.json", "victim"),
    "rm:after-rename": ("create --name victim {base} true", "rm -v victim", r"containers/\.trash-[0-9a-f]{64}: "
                        r"container removal cut short", "victim"),
    "load:read": ("", "load -i {extra}", r"image/tmp/load-\d+-\S*: staging of an image writer that died", EXTRA),
    "store:staged": ("", "load -i {extra}", r"image/layers/\.tmp-\d+-\S*: staging", EXTRA),
    "store:installed-blobs": ("", "load -i {extra}", r"image/blobs/sha256/[0-9a-f]{64}: blob that no image needs",
                              EXTRA),
    "store:installed-layers": ("", "load -i {extra}", r"image/layers/[0-9a-f]{64}: layer directory the index does "
                               r"not name", EXTRA),
    "build:step-committed": ("", "build -t fault/built:1 {context}", r"build/tmp/run-\d+-\S*: work directory of a "
                             r"build that died", "fault/built:1"),
    "build/store:installed-layers": ("", "build -t fault/built:1 {context}", r"layer directory the index does not "
                                     r"name", "fault/built:1"),
    "commit:layer-written": ("run --name victim {base} sh -c 'echo c > /c'", "commit victim fault/snap:1",
                             r"image/tmp/blob-\d+-\S*: staging of an image writer that died", "fault/snap:1"),
    "commit/store:installed-blobs": ("run --name victim {base} sh -c 'echo c > /c'", "commit victim fault/snap:1",
                                     r"blob that no image needs", "fault/snap:1"),
    "volume-rm:after-meta": ("volume create victim", "volume rm victim",
                             r"volumes/victim: volume directory without volume\.json", "victim"),
    "store:discarded": ("load -i {extra}", f"rmi {EXTRA}", r"image/tmp/trash-\d+-\S*: staging", EXTRA),
}


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                break
        time.sleep(0.01)


def _argv(template: dict[str, Path], line: str) -> list[str]:
    import shlex

    return shlex.split(line.format(base=BASE, volume=IMAGE_VOLUME, extra=template["extra"],
                                   context=template["context"]))


def _assert_works(engine: Engine, template: dict[str, Path], *, build: bool) -> None:
    """A container runs, an image loads and is removed, (a build runs), and the store is clean."""
    r = engine("load", "-i", str(template["extra"]))
    assert r.returncode == 0 and EXTRA in r.stdout, f"load after repair exited {r.returncode}: {r.stderr.strip()}"
    r = engine("run", "--rm", EXTRA, "cat", "/extra")
    assert r.returncode == 0 and r.stdout == "extra\n", f"run after repair: {r.returncode} {r.stderr.strip()}"
    if build:
        r = engine("build", "-q", "-t", "fault/after:1", str(template["context"]))
        assert r.returncode == 0, f"build after repair exited {r.returncode}: {r.stderr.strip()}"
        r = engine("run", "--rm", "fault/after:1", "cat", "/built", "/a")
        assert r.stdout == "built\na\n", f"the built image holds {r.stdout!r} ({r.stderr.strip()})"
    r = engine("rmi", EXTRA)
    assert r.returncode == 0, f"rmi after repair exited {r.returncode}: {r.stderr.strip()}"
    r = engine("system", "check")
    assert (r.returncode, r.stdout) == (0, ""), f"check after normal work exited {r.returncode}:\n{r.stdout}"


def _assert_nothing_lost(before: dict[str, set[str]], after: dict[str, set[str]], victim: str | None,
                         engine: Engine) -> None:
    """Everything listed before is listed after, but the command's own object, which is wholly
    there (usable) or wholly gone."""
    _assert_kept(before, after, victim)
    if victim is None:
        return
    if victim in after["tags"]:
        r = engine("run", "--rm", victim, "true")
        assert r.returncode == 0, f"image {victim} is listed but does not run: {r.stderr.strip()}"
    if any(line.split(" ")[1] == victim for line in after["containers"]):
        r = engine("inspect", "--format", "{{.State.Status}}", victim)
        assert r.returncode == 0, f"container {victim} is listed but inspect fails: {r.stderr.strip()}"
        r = engine("start", "-a", victim)
        assert r.returncode in (0, 1), f"container {victim} is listed but does not start: {r.stderr.strip()}"
    if victim in after["volumes"]:
        r = engine("volume", "inspect", victim)
        assert r.returncode == 0, f"volume {victim} is listed but inspect fails: {r.stderr.strip()}"


def _assert_kept(before: dict[str, set[str]], after: dict[str, set[str]], victim: str | None = None,
                 note: str = "") -> None:
    """Every image, tag, container and volume listed before is listed after, but *victim*."""
    victim_ids = {line.split(" ")[0] for line in before["_listing"] if line.split(" ")[1] == victim}
    for kind in ("images", "tags", "containers", "volumes"):
        lost = {item for item in before[kind] - after[kind]
                if item not in victim_ids and victim not in (item, item.split(" ")[-1])}
        assert not lost, f"{kind} lost by the crash and repair: {sorted(lost)}{note}"


@needs_kernel
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sigkill_at_each_step_is_repaired(engine, template, scenario):
    setup, command, damage, victim = SCENARIOS[scenario]
    point = scenario.split("/", 1)[-1]
    if setup:
        engine(*_argv(template, setup), check=True)
    before = engine.objects()

    if command == KILL_SUPERVISOR:
        cid = engine("inspect", "--format", "{{.Id}}", "victim", check=True).stdout.strip()
        state = json.loads((engine.root / "containers" / cid / "state.json").read_text())
        os.kill(state["Supervisor"]["Pid"], signal.SIGKILL)
        _wait_gone(state["Supervisor"]["Pid"])
    else:
        r = engine(*_argv(template, command), fault=point)
    if command == KILL_SUPERVISOR:
        pass
    elif point.startswith("supervisor:"):
        # the supervisor killed itself: the CLI must say so (docker start exits 1 when a start
        # fails), not report a started container
        assert r.returncode == 1 and "supervisor" in r.stderr, (
            f"start whose supervisor died exited {r.returncode}: {r.stderr.strip()}")
    else:
        assert r.returncode == -signal.SIGKILL, (
            f"refengine {command} with REFENGINE_FAULT={point} exited {r.returncode}, not by SIGKILL: "
            f"{r.stderr.strip()} (is the point still in the code?)")

    found = engine("system", "check")
    if damage is None:
        assert (found.returncode, found.stdout) == (0, ""), f"check after {scenario}:\n{found.stdout}"
    else:
        assert found.returncode == 1 and re.search(damage, found.stdout), (
            f"check after a kill at {scenario} exited {found.returncode} and did not report /{damage}/:\n"
            f"{found.stdout}{found.stderr}")
        assert all(": " in line for line in found.stdout.splitlines()), found.stdout
    repaired = engine("system", "check", "--repair")
    assert repaired.returncode == 0 and "(repaired: " in repaired.stdout if damage else True, (
        f"repair after {scenario} exited {repaired.returncode}:\n{repaired.stdout}{repaired.stderr}")
    again = engine("system", "check")
    assert (again.returncode, again.stdout) == (0, ""), f"check after the repair of {scenario}:\n{again.stdout}"

    _assert_nothing_lost(before, engine.objects(), victim, engine)
    _assert_works(engine, template, build=point.startswith("build") or scenario.startswith("build"))


@needs_kernel
def test_repair_of_the_index_keeps_every_image(engine):
    """Damage no crash makes but a hand edit may: a tag naming no image, a layer without its record."""
    index_path = engine.root / "image" / "index.json"
    index = json.loads(index_path.read_text())
    index["tags"]["docker.io/library/ghost:latest"] = "sha256:" + "0" * 64
    chain = next(iter(index["layers"]))
    del index["layers"][chain]
    index_path.write_text(json.dumps(index))
    before = engine.objects()
    found = engine("system", "check")
    assert found.returncode == 1 and "tag names image sha256:000" in found.stdout and \
        f"image/{chain}: index: layer of image" in found.stdout, found.stdout
    repaired = engine("system", "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    again = engine("system", "check")
    assert (again.returncode, again.stdout) == (0, ""), again.stdout
    _assert_kept(before, engine.objects(), victim="ghost:latest")
    r = engine("run", "--rm", BASE, "true")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- SIGKILL after random delays


@needs_kernel
def test_sigkill_after_random_delays_is_repaired(engine, template):
    """The second net: kills at seeded random moments, not at named points (5 of them)."""
    rnd = random.Random(9)
    commands = {"load": ["load", "-i", str(template["extra"])],
                "build": ["build", "-q", "-t", "fault/r:1", str(template["context"])],
                "run": ["run", "-d", BASE, "sleep", "60"], "commit": ["commit", "victim", "fault/rc:1"]}
    engine("run", "--name", "victim", BASE, "sh", "-c", "echo c > /c", check=True)
    took = {}
    for name, argv in commands.items():  # once whole, to learn how long each takes
        start = time.monotonic()
        engine(*argv, check=True)
        took[name] = time.monotonic() - start
    engine("rmi", EXTRA, "fault/r:1", "fault/rc:1", check=True)
    for _ in range(5):
        name = rnd.choice(sorted(commands))
        before = engine.objects()
        proc = engine.popen(*commands[name])
        try:
            time.sleep(rnd.uniform(0.02, took[name]))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        repaired = engine("system", "check", "--repair")
        assert repaired.returncode == 0, f"repair after killing {name}:\n{repaired.stdout}{repaired.stderr}"
        again = engine("system", "check")
        assert (again.returncode, again.stdout) == (0, ""), f"check after killing {name}:\n{again.stdout}"
        _assert_kept(before, engine.objects(), note=f" (killing {name}); the repair said:\n{repaired.stdout}")
    r = engine("run", "--rm", BASE, "true")
    assert r.returncode == 0, f"run after the kills exited {r.returncode}: {r.stderr.strip()}"


# ---------------------------------------------------------------- a full disk


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the disk but *leave* bytes."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        left = max(0, free - leave)
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    return filler


def _big_image(engine: Engine, template: dict[str, Path], out: Path) -> None:
    """An image whose layer holds 12 MiB of random bytes, saved to *out*."""
    engine("run", "--name", "big", BASE, "sh", "-c", "head -c 12582912 /dev/urandom > /big", check=True)
    engine("commit", "big", "fault/big:1", check=True)
    engine("save", "-o", str(out), "fault/big:1", check=True)
    engine("rm", "big", check=True)
    engine("rmi", "fault/big:1", check=True)


@needs_kernel
def test_full_disk_during_load_and_build(template, small_disk, tmp_path):
    engine = Engine(small_disk / "root")
    try:
        subprocess.run(["cp", "-a", str(template["root"]), str(engine.root)], check=True)
        big = tmp_path / "big.tar"
        _big_image(engine, template, big)
        context = tmp_path / "bigctx"
        context.mkdir()
        # the step's 4 MiB fit in the 6 MiB left; the layer made of them (tar + unpacked copy) does not
        (context / "Dockerfile").write_text(f"FROM {BASE}\nRUN head -c 4194304 /dev/urandom > /big\n")
        before = engine.objects()
        filler = _fill(small_disk, leave=6 << 20)
        for argv, what in ((["load", "-i", str(big)], "load"), (["build", "-q", "-t", "fault/full:1", str(context)],
                                                               "build")):
            r = engine(*argv)
            err = r.stderr.strip().splitlines()
            assert r.returncode == 1, f"{what} on a full disk exited {r.returncode}; docker exits 1: {r.stderr}"
            assert "Traceback" not in r.stderr and err and "no space left on device" in err[-1].lower(), (
                f"{what} on a full disk: not one clear line: {r.stderr!r}")
        filler.unlink()
        found = engine("system", "check")
        assert (found.returncode, found.stdout) == (0, ""), f"check after the full disk:\n{found.stdout}"
        assert engine.objects() == before, "the failed load/build changed what is listed"
        engine("load", "-i", str(big), check=True)
        engine("build", "-q", "-t", "fault/full:1", str(context), check=True)
        r = engine("run", "--rm", "fault/full:1", "sh", "-c", "wc -c < /big")
        assert r.stdout.strip() == "4194304", f"the image built once space was freed holds {r.stdout!r}"
    finally:
        engine.cleanup()
