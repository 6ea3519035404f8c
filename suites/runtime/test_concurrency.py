"""Concurrency: many CLI calls at once against one engine, and every object
accounted for afterwards.

Docker's daemon serialises access to its stores; a daemonless engine
(podman, refengine) has many processes writing the same store, each of which
must lock and replace its records atomically. The checks here drive an
engine from a pool of threads, each thread one CLI process at a time, and
then account for every object: what each call said it did, what it left,
and that nothing else changed.

What "nothing else changed" means while other checks (and other users of
the engine) add and remove objects beside this one: the snapshots before and
after the parallel phase are compared on the check's own names and the
session's test images, which no check removes. The check's bystanders (an
image sharing its base layer with every image removed, a volume and a
stopped container, all made before and never touched) and the test images
must survive unchanged; of the check's own names, only the images it loaded
or built and the bystanders may be left.

The images loaded and removed are made here: the test image's busybox layer
plus one small layer and a config of their own, so every image has a unique
ID and a top layer that ``rmi`` really deletes.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance import testimage as ti
from conformance.engine import RUN_LABEL

from .conftest import DOCS

RUN_RM = f"{DOCS}/reference/cli/docker/container/run/#rm"
#: The classic builder (DOCKER_BUILDKIT=0) is what the suite certifies, not buildx.
BUILD = f"{DOCS}/reference/cli/docker/image/build/"

#: Threads driving the engine at once (the machines have 2 cores: more only queue).
WORKERS = 8
#: Per-call bound; a call that hangs fails the check instead of the run.
CALL_TIMEOUT = 120.0
#: Where each image made here keeps its marker (in its own top layer or from a RUN).
MARKER = "conformance-marker.txt"


# ---------------------------------------------------------------- images made here

def _layer(files: dict[str, bytes]) -> bytes:
    """A deterministic ustar of regular files at the root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, ti.EPOCH
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def image_archive(base_layer: bytes, markers: dict[str, str], run_id: str) -> tuple[bytes, dict[str, str]]:
    """A ``docker save`` archive of one image per ``ref -> marker``: the base
    layer plus a layer holding ``/conformance-marker.txt``, labelled with the
    run's label like every object a check makes; returns the archive and each
    ref's image ID (the sha256 of its config)."""
    base_diff = ti.sha256(base_layer)
    members = {f"{base_diff[7:]}/layer.tar": base_layer}
    manifest, ids = [], {}
    for ref, marker in markers.items():
        top = _layer({MARKER: marker.encode() + b"\n"})
        diffs = [base_diff, ti.sha256(top)]
        config = ti.canonical_json({
            "architecture": ti.go_arch(), "os": "linux", "created": ti.CREATED,
            "config": {"Env": [ti.PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/", "Labels": {RUN_LABEL: run_id}},
            "rootfs": {"type": "layers", "diff_ids": diffs},
            "history": [{"created": ti.CREATED, "created_by": "conformance test image (base) from busybox-static"},
                        {"created": ti.CREATED, "created_by": f"conformance concurrency image {marker}"}],
        })
        ids[ref] = ti.sha256(config)
        members[f"{diffs[1][7:]}/layer.tar"] = top
        members[f"{ids[ref][7:]}.json"] = config
        manifest.append({"Config": f"{ids[ref][7:]}.json", "RepoTags": [ref],
                         "Layers": [f"{d[7:]}/layer.tar" for d in diffs]})
    members["manifest.json"] = ti.canonical_json(manifest)
    return _layer(members), ids


class ImageRefs(list):
    """Tags under this run's names that a check makes, each tracked by the
    engine too (its cleanup removes them should this fail); :meth:`remove_all`
    removes them with one ``rmi -f`` (these checks make well over a hundred)
    and checks that it did."""

    def __init__(self, engine):
        super().__init__()
        self.engine = engine

    def new(self) -> str:
        ref = self.engine.track_image(f"localhost/conformance/{self.engine.new_name('img', track=False)}:t")
        self.append(ref)
        return ref

    def listed(self) -> list[str]:
        """Which of the tags the engine lists."""
        shown = self.engine.query("images", "--format", "{{.Repository}}:{{.Tag}}", timeout=CALL_TIMEOUT)
        assert shown.ok, f"{self.engine.name}: listing images failed\n{shown}"
        mine = set(self)
        return sorted(ref for ref in shown.stdout.split() if ref in mine)

    def remove_all(self) -> None:
        """``rmi -f`` of the tags still listed (docker 20.10 exits 1 for a missing one), which must succeed
        and leave none of them."""
        present = self.listed() if self else []
        if not present:
            return
        removed = self.engine.cli("rmi", "-f", *present, timeout=300)
        assert removed.ok, f"{self.engine.name}: rmi -f of the check's {len(present)} images failed\n{removed}"
        left = self.listed()
        assert not left, f"{self.engine.name}: rmi -f of the check's images exited 0 but left {left[:10]}"


@pytest.fixture
def made(engine):
    """The image tags a check makes, all removed after it."""
    refs = ImageRefs(engine)
    yield refs
    refs.remove_all()


def load_archive(engine, path: Path) -> None:
    result = engine.cli("load", "-i", str(path), timeout=300)
    assert result.ok, f"{engine.name}: could not load the check's own images before the parallel phase\n{result}"


def full_id(image_id: str) -> str:
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


# ---------------------------------------------------------------- snapshots

@dataclass(frozen=True)
class Snapshot:
    """What the engine lists: tagged images (ref -> short ID), container names, volume names."""

    images: dict[str, str]
    containers: frozenset[str]
    volumes: frozenset[str]

    def only(self, keep) -> "Snapshot":
        """The objects whose name ``keep(name)`` accepts."""
        return Snapshot({r: i for r, i in self.images.items() if keep(r)},
                        frozenset(filter(keep, self.containers)), frozenset(filter(keep, self.volumes)))


def _listed(engine, *args: str) -> list[str]:
    result = engine.query(*args, timeout=CALL_TIMEOUT)
    assert result.ok, f"{engine.name}: listing failed\n{result}"
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def snapshot(engine) -> Snapshot:
    images = {}
    for line in _listed(engine, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"):
        ref, _, image_id = line.rpartition(" ")
        if "<none>" not in ref:
            images[ref] = image_id.removeprefix("sha256:")[:12]
    return Snapshot(images, frozenset(_listed(engine, "ps", "-a", "--format", "{{.Names}}")),
                    frozenset(_listed(engine, "volume", "ls", "-q")))


def vanished(before: Snapshot, after: Snapshot) -> list[str]:
    """What ``before`` listed that ``after`` lacks (or shows with another image ID)."""
    gone = [f"image {r} ({i})" for r, i in before.images.items() if after.images.get(r) != i]
    gone += [f"container {c}" for c in sorted(before.containers - after.containers)]
    gone += [f"volume {v}" for v in sorted(before.volumes - after.volumes)]
    return gone


# ---------------------------------------------------------------- the operations

@dataclass
class Operation:
    """One CLI action of the parallel phase and what it must have done."""

    kind: str
    name: str                      # container, image ref or volume the operation owns
    detail: str = ""               # what it must print or store ("run-<nonce>-<i>-<exit status>" for a run)
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(f"{self.kind} {self.name}: {what}")


def do_run(engine, op: Operation, image: str) -> None:
    status = int(op.detail.rsplit("-", 1)[1])
    result = engine.run(["--rm", image, "sh", "-c", f"echo {op.detail}; exit {status}"], name=op.name,
                        timeout=CALL_TIMEOUT)
    op.expect(result.returncode == status and result.stdout == f"{op.detail}\n",
              f"exited {result.returncode} printing {result.stdout!r} (stderr {result.stderr.strip()[-300:]!r}); "
              f"expected {status} and {op.detail!r}")


def do_build(engine, op: Operation, context: Path) -> None:
    # --no-cache: the RUN is new, so no cache could hit; a cache lookup racing
    # rmi is the subject of test_builds_succeed_while_unrelated_images_are_removed.
    result = engine.cli("build", "--no-cache", "-t", op.name, "--label", engine.label, str(context),
                        timeout=CALL_TIMEOUT)
    op.expect(result.ok, f"exited {result.returncode}: {(result.stderr or result.stdout).strip()[-300:]!r}")


def do_load(engine, op: Operation, archive: Path) -> None:
    result = engine.cli("load", "-i", str(archive), timeout=CALL_TIMEOUT)
    op.expect(result.ok and f"Loaded image: {op.name}" in result.stdout,
              f"exited {result.returncode}, stdout {result.stdout.strip()[-300:]!r}, "
              f"stderr {result.stderr.strip()[-300:]!r}; expected 'Loaded image: {op.name}'")


def do_rmi(engine, op: Operation, image_id: str) -> None:
    result = engine.cli("rmi", op.name, timeout=CALL_TIMEOUT)
    out = result.stdout
    op.expect(result.ok and f"Untagged: {op.name}" in out and image_id[7:] in out,
              f"exited {result.returncode}, stdout {out.strip()[-300:]!r}, stderr {result.stderr.strip()[-300:]!r}; "
              f"expected 'Untagged: {op.name}' and its ID {image_id[7:19]}")


def do_volume(engine, op: Operation) -> None:
    created = engine.cli("volume", "create", "--label", engine.label, op.name, timeout=CALL_TIMEOUT)
    op.expect(created.ok and created.stdout.strip() == op.name,
              f"create exited {created.returncode}: {created.stdout.strip()!r} {created.stderr.strip()[-300:]!r}")
    listed = engine.cli("volume", "ls", "-q", timeout=CALL_TIMEOUT)
    op.expect(listed.ok and op.name in listed.stdout.split(), f"not listed by `volume ls -q` after create: {listed}")
    removed = engine.cli("volume", "rm", op.name, timeout=CALL_TIMEOUT)
    op.expect(removed.ok and removed.stdout.strip() == op.name,
              f"rm exited {removed.returncode}: {removed.stdout.strip()!r} {removed.stderr.strip()[-300:]!r}")
    listed = engine.cli("volume", "ls", "-q", timeout=CALL_TIMEOUT)
    op.expect(listed.ok and op.name not in listed.stdout.split(), "still listed by `volume ls -q` after rm")


#: How many of each kind make the 50 operations (builds become runs on an engine without "build").
MIX = {"run": 14, "build": 8, "load": 10, "rmi": 8, "volume": 10}


@pytest.mark.spec(RUN_RM, "every run --rm, build, load, rmi and volume create/rm does exactly what it documents "
                          "when 50 of them run at once against one engine: --rm leaves no container, rmi removes "
                          "only its image, and no other object is lost")
def test_fifty_parallel_operations_lose_nothing(engine, test_image, made, tmp_path):
    image = test_image.base
    base_layer = test_image.set.layer
    mix = dict(MIX)
    if not engine.has("build"):
        mix["run"] += mix.pop("build")
    nonce = secrets.token_hex(4)

    # Before the parallel phase: what rmi will remove, and bystanders that nothing may touch.
    targets = {made.new(): f"rmi-{nonce}-{i}" for i in range(mix["rmi"])}
    bystander = made.new()
    archive, target_ids = image_archive(base_layer, {**targets, bystander: f"bystander-{nonce}"}, engine.run_id)
    (tmp_path / "targets.tar").write_bytes(archive)
    load_archive(engine, tmp_path / "targets.tar")
    bystander_volume = engine.new_name("v")
    engine.cli("volume", "create", "--label", engine.label, bystander_volume, check=True)
    bystander_container = engine.create([image, "true"])

    ops: list[Operation] = []
    work = []
    for i in range(mix["run"]):
        op = Operation("run", engine.new_name("c", track=False), f"run-{nonce}-{i}-{i % 4}")
        ops.append(op)
        work.append(lambda op=op: do_run(engine, op, image))
    for i in range(mix.get("build", 0)):
        op = Operation("build", made.new(), f"build-{nonce}-{i}")
        context = tmp_path / f"build{i}"
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {image}\nRUN echo {op.detail} > /{MARKER}\n")
        ops.append(op)
        work.append(lambda op=op, context=context: do_build(engine, op, context))
    load_ids = {}
    for i in range(mix["load"]):
        op = Operation("load", made.new(), f"load-{nonce}-{i}")
        data, ids = image_archive(base_layer, {op.name: op.detail}, engine.run_id)
        load_ids[op.name] = ids[op.name]
        path = tmp_path / f"load{i}.tar"
        path.write_bytes(data)
        ops.append(op)
        work.append(lambda op=op, path=path: do_load(engine, op, path))
    for ref in targets:
        op = Operation("rmi", ref, targets[ref])
        ops.append(op)
        work.append(lambda op=op: do_rmi(engine, op, target_ids[op.name]))
    for _ in range(mix["volume"]):
        op = Operation("volume", engine.new_name("v"))
        ops.append(op)
        work.append(lambda op=op: do_volume(engine, op))
    assert len(work) == 50
    order = list(range(len(work)))
    secrets.SystemRandom().shuffle(order)

    before = snapshot(engine)
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(work[i]) for i in order]:
            future.result()
    elapsed = time.monotonic() - started
    after = snapshot(engine)

    problems = [p for op in ops for p in op.problems]
    # run --rm: no container left under any of the names.
    problems += [f"run {op.name}: the container is still listed after run --rm returned"
                 for op in ops if op.kind == "run" and op.name in after.containers]
    # volumes: none left.
    problems += [f"volume {op.name}: still listed after volume rm"
                 for op in ops if op.kind == "volume" and op.name in after.volumes]
    # rmi: each target gone, by tag and by ID.
    for ref, image_id in target_ids.items():
        if ref == bystander:
            continue
        if ref in after.images:
            problems.append(f"rmi {ref}: the tag is still listed")
        if engine.cli("image", "inspect", image_id, timeout=CALL_TIMEOUT).ok:
            problems.append(f"rmi {ref}: image {image_id[7:19]} can still be inspected")
    # load: each tag names the image of its archive.
    for ref, image_id in load_ids.items():
        if after.images.get(ref) != image_id[7:19]:
            problems.append(f"load {ref}: listed as {after.images.get(ref)}, expected {image_id[7:19]}")
    # build: each image holds what its RUN wrote.
    builds = [op for op in ops if op.kind == "build" and not op.problems]
    with ThreadPoolExecutor(WORKERS) as pool:
        shown = list(pool.map(lambda op: engine.run(["--rm", op.name, "cat", f"/{MARKER}"], timeout=CALL_TIMEOUT),
                              builds))
    problems += [f"build {op.name}: its image shows {r.stdout!r} (exit {r.returncode}, {r.stderr.strip()[-200:]!r}), "
                 f"expected {op.detail!r}" for op, r in zip(builds, shown) if r.stdout != f"{op.detail}\n"]
    # Bystanders: unchanged.
    if after.images.get(bystander) != target_ids[bystander][7:19]:
        problems.append(f"bystander image {bystander}: listed as {after.images.get(bystander)}")
    if bystander_volume not in after.volumes:
        problems.append(f"bystander volume {bystander_volume} disappeared")
    if bystander_container not in after.containers:
        problems.append(f"bystander container {bystander_container} disappeared")
    # Nothing the parallel phase made is left but the images it loaded or built.
    own = f"cft-{engine.run_id}-"
    new = Snapshot({r: i for r, i in after.images.items() if r not in before.images},
                   after.containers - before.containers, after.volumes - before.volumes).only(lambda n: own in n)
    expected_images = {*load_ids, *(op.name for op in ops if op.kind == "build")}
    problems += [f"left behind: image {r}" for r in new.images if r not in expected_images]
    problems += [f"left behind: container {c}" for c in sorted(new.containers)]
    problems += [f"left behind: volume {v}" for v in sorted(new.volumes)]
    # Nothing it did not remove is gone (watched: its own names and the test images).
    def watched(name: str) -> bool:
        return (own in name and name not in targets) or name.startswith(f"{ti.REPOSITORY}:")

    problems += [f"disappeared: {what}" for what in vanished(before.only(watched), after)]

    assert not problems, (f"{engine.name}: {len(problems)} problems after 50 parallel operations "
                          f"({WORKERS} at a time, {elapsed:.0f}s):\n" + "\n".join(problems[:20]))


# ---------------------------------------------------------------- build against rmi

#: Rounds of the race; the check stops at the first failed build.
RACE_ROUNDS = 4
#: Images removed per round, and per `rmi` call; builders and removers at once.
RACE_IMAGES, RACE_BATCH, RACE_BUILDERS, RACE_REMOVERS = 32, 8, 3, 2


@dataclass
class RaceRound:
    """What one round of builds against removals saw."""

    builds: list = field(default_factory=list)       # (ref, CommandResult)
    removals: list = field(default_factory=list)     # (refs, CommandResult)
    lock: threading.Lock = field(default_factory=threading.Lock)


def race_round(engine, made: ImageRefs, image: str, tmp_path: Path, round_no: int, refs: list[str]) -> RaceRound:
    """Builders build FROM the test image, one build after another, until the
    removers have removed every image in ``refs`` (``rmi`` of several at once)."""
    seen = RaceRound()
    removers_done = threading.Event()

    def builder(k: int) -> None:
        n = 0
        while not removers_done.is_set() or n == 0:
            n += 1
            context = tmp_path / f"round{round_no}-builder{k}-{n}"
            context.mkdir()
            (context / "Dockerfile").write_text(f"FROM {image}\nRUN echo {secrets.token_hex(8)} > /{MARKER}\n")
            ref = made.new()
            result = engine.cli("build", "-t", ref, "--label", engine.label, str(context), timeout=CALL_TIMEOUT)
            with seen.lock:
                seen.builds.append((ref, result))
            if not result.ok:
                return

    def remover(j: int) -> None:
        mine = refs[j::RACE_REMOVERS]
        for i in range(0, len(mine), RACE_BATCH):
            batch = mine[i:i + RACE_BATCH]
            result = engine.cli("rmi", *batch, timeout=CALL_TIMEOUT)
            with seen.lock:
                seen.removals.append((batch, result))

    with ThreadPoolExecutor(RACE_BUILDERS + RACE_REMOVERS) as pool:
        builders = [pool.submit(builder, k) for k in range(RACE_BUILDERS)]
        removers = [pool.submit(remover, j) for j in range(RACE_REMOVERS)]
        try:
            for future in removers:
                future.result()
        finally:
            removers_done.set()
        for future in builders:
            future.result()
    return seen


def race_failure(engine, round_no: int, failed: list, builds: int) -> str:
    result = failed[0]
    last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
    return (f"{engine.name}: a build exited {result.returncode} while `rmi` removed other images "
            f"(round {round_no} of {RACE_ROUNDS}, {len(failed)} of {builds} builds failed): {last[0]}")


@pytest.mark.requires("build")
@pytest.mark.spec(BUILD, "a build succeeds while another client removes unrelated images: rmi removes only the "
                         "images it names (observed on docker 20.10; the reference documents no concurrency)")
def test_builds_succeed_while_unrelated_images_are_removed(engine, test_image, made, tmp_path):
    image = test_image.base
    previous: dict[str, str] = {}  # the last round's builds (children of the base image) -> image ID
    for round_no in range(1, RACE_ROUNDS + 1):
        loaded = [made.new() for _ in range(RACE_IMAGES)]
        archive, ids = image_archive(test_image.set.layer, {r: f"race-{round_no}-{i}" for i, r in enumerate(loaded)},
                                     engine.run_id)
        path = tmp_path / f"round{round_no}.tar"
        path.write_bytes(archive)
        load_archive(engine, path)
        # The builder's cache candidates too: docker's are the children of the base image.
        ids.update(previous)
        seen = race_round(engine, made, image, tmp_path, round_no, [*previous, *loaded])
        failed = [result for _, result in seen.builds if not result.ok]
        assert not failed, race_failure(engine, round_no, failed, len(seen.builds))
        for batch, result in seen.removals:
            assert result.ok, f"{engine.name}: rmi of its own unused images failed while builds ran\n{result}"
            for ref in batch:
                assert f"Untagged: {ref}" in result.stdout and ids[ref][7:] in result.stdout, \
                    f"{engine.name}: rmi did not report untagging and deleting {ref} ({ids[ref][7:19]})\n{result}"
        previous = {}
        for ref, _ in seen.builds:
            shown = engine.query("image", "inspect", "--format", "{{.Id}}", ref, timeout=CALL_TIMEOUT)
            assert shown.ok, f"{engine.name}: the build tagged {ref} but it cannot be inspected\n{shown}"
            previous[ref] = full_id(shown.stdout.strip())
