"""``docker cp``: the SRC_PATH/DEST_PATH rules in both directions, ownership,
symbolic links (which are resolved inside the container's root, never on the
host), stopped containers, missing sources and tar streams on stdin/stdout.

Every rule is checked in both directions with the same expectations: one
side is a directory under ``tmp_path`` on the host, the other a directory of
a running container; :class:`HostSide` and :class:`ContainerSide` write and
list files the same way so a check reads like the documentation's table.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from conformance.testimage import SEED_TEXT

from .conftest import CP

#: Where a check's files live in its container.
WORK = "/work"

#: A script listing a tree like :meth:`HostSide.tree`: "d/" for a directory,
#: "l -> target" for a link, "f=content" for a file (one line per entry).
_LIST = r'''cd "$1" || exit 3
find . | sort | while IFS= read -r f; do
  f="${f#./}"; [ "$f" = . ] && continue
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"
  elif [ -d "$f" ]; then echo "$f/"
  else printf '%s=%s\n' "$f" "$(cat "$f")"; fi
done'''


class HostSide:
    """Files on the host, under the check's ``tmp_path``."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def ref(self, path: str) -> str:
        return str(self.root / path) + ("/" if path.endswith("/") else "")

    def write(self, path: str, content: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    def mkdir(self, path: str) -> None:
        (self.root / path).mkdir(parents=True, exist_ok=True)

    def tree(self, path: str) -> list[str] | None:
        """What lies under ``path`` (None if it does not exist); a file lists as ``=content``."""
        top = self.root / path
        if not top.exists() and not top.is_symlink():
            return None
        if not top.is_dir():
            return [f"={top.read_text().rstrip(chr(10))}"]
        lines = []
        for entry in sorted(top.rglob("*"), key=lambda p: p.relative_to(top).as_posix()):
            rel = entry.relative_to(top).as_posix()
            if entry.is_symlink():
                lines.append(f"{rel} -> {os.readlink(entry)}")
            elif entry.is_dir():
                lines.append(f"{rel}/")
            else:
                lines.append(f"{rel}={entry.read_text().rstrip(chr(10))}")
        return lines


class ContainerSide:
    """Files in a running container, under :data:`WORK`."""

    def __init__(self, engine, name: str):
        self.engine, self.name = engine, name
        self.sh(f"mkdir -p {WORK}")

    def sh(self, script: str, *args: str) -> str:
        result = self.engine.cli("exec", self.name, "sh", "-c", script, "sh", *args, check=True)
        return result.stdout

    def ref(self, path: str) -> str:
        return f"{self.name}:{WORK}/{path}"

    def write(self, path: str, content: str) -> None:
        self.sh('mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', f"{WORK}/{path}", content)

    def mkdir(self, path: str) -> None:
        self.sh('mkdir -p "$1"', f"{WORK}/{path}")

    def tree(self, path: str) -> list[str] | None:
        full = f"{WORK}/{path}"
        kind = self.sh('if [ -d "$1" ]; then echo d; elif [ -e "$1" ] || [ -L "$1" ]; then echo f; else echo -; fi',
                       full).strip()
        if kind == "-":
            return None
        if kind == "f":
            return ["=" + self.sh('cat "$1"', full).rstrip("\n")]
        return self.sh(_LIST, full).splitlines()


def running(engine, image, *extra: str) -> str:
    name = engine.new_name()
    result = engine.run(["-d", *extra, image, "sleep", "1000"], name=name)
    if not result.ok:
        raise AssertionError(f"{engine.name}: could not start a container for cp: {result}")
    return name


def sides(engine, image, tmp_path: Path, direction: str) -> tuple[HostSide | ContainerSide, HostSide | ContainerSide]:
    """(source side, destination side) for ``out`` (container to host) or ``in``."""
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    return (box, host) if direction == "out" else (host, box)


def make_source_dir(side) -> None:
    side.write("src/x", "x")
    side.write("src/sub/y", "y")


SOURCE_TREE = ["sub/", "sub/y=y", "x=x"]
DIRECTIONS = pytest.mark.parametrize("direction", ["out", "in"])


def cp(engine, *args: str, **kwargs):
    return engine.cli("cp", *args, **kwargs)


def copied(engine, *args: str) -> None:
    result = cp(engine, *args)
    assert result.ok, f"{engine.name}: cp {' '.join(args)} failed: {result}"


# -- SRC_PATH is a file -----------------------------------------------------------


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a file, DEST_PATH does not exist: the file is saved to a file created at DEST_PATH")
def test_file_to_a_missing_destination_creates_it(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    src.write("f.txt", "payload")
    dst.mkdir("out")
    copied(engine, src.ref("f.txt"), dst.ref("out/new.txt"))
    assert dst.tree("out") == ["new.txt=payload"], f"{engine.name}: copying a file {direction} to a new name"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a file, DEST_PATH exists and is a file: the destination is overwritten")
def test_file_over_an_existing_file_overwrites_it(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    src.write("f.txt", "payload")
    dst.write("out/old.txt", "old content that is longer")
    copied(engine, src.ref("f.txt"), dst.ref("out/old.txt"))
    assert dst.tree("out") == ["old.txt=payload"], f"{engine.name}: copying a file {direction} over a file"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a file, DEST_PATH an existing directory: the file is copied into it using the basename from SRC_PATH")
def test_file_into_an_existing_directory_keeps_its_name(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    src.write("f.txt", "payload")
    dst.write("out/keep.txt", "kept")
    copied(engine, src.ref("f.txt"), dst.ref("out"))
    assert dst.tree("out") == ["f.txt=payload", "keep.txt=kept"], f"{engine.name}: copying a file {direction} into a directory"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a file, DEST_PATH does not exist and ends with /: error, the destination directory must exist; docker 20.10 exits 1 (observed; the reference documents no status)")
def test_file_to_a_missing_directory_is_an_error(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    src.write("f.txt", "payload")
    dst.mkdir("out")
    result = cp(engine, src.ref("f.txt"), dst.ref("out/missing/"))
    assert result.returncode == 1, (f"{engine.name}: cp {direction} to a missing directory (trailing /) exited "
                                    f"{result.returncode}; docker 20.10 exits 1 (observed): {result}")
    assert dst.tree("out") == [], f"{engine.name}: a failed cp {direction} left {dst.tree('out')}"


# -- SRC_PATH is a directory ---------------------------------------------------------


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a directory, DEST_PATH does not exist: DEST_PATH is created and the contents of the source are copied into it")
def test_directory_to_a_missing_destination_creates_it_with_the_contents(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    make_source_dir(src)
    dst.mkdir("out")
    copied(engine, src.ref("src"), dst.ref("out/new"))
    assert dst.tree("out/new") == SOURCE_TREE, f"{engine.name}: copying a directory {direction} to a new name"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a directory not ending with /., DEST_PATH an existing directory: the source directory is copied into it")
def test_directory_into_an_existing_directory_is_nested(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    make_source_dir(src)
    dst.write("out/keep.txt", "kept")
    copied(engine, src.ref("src"), dst.ref("out"))
    assert dst.tree("out") == ["keep.txt=kept", "src/", *(f"src/{e}" for e in SOURCE_TREE)], \
        f"{engine.name}: copying a directory {direction} into a directory"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH ending with /. and DEST_PATH an existing directory: the content of the source directory is copied into it")
def test_directory_contents_with_slash_dot(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    make_source_dir(src)
    dst.write("out/keep.txt", "kept")
    copied(engine, src.ref("src") + "/.", dst.ref("out"))
    assert dst.tree("out") == ["keep.txt=kept", *SOURCE_TREE], f"{engine.name}: copying src/. {direction} into a directory"


@DIRECTIONS
@pytest.mark.spec(CP, "SRC_PATH a directory, DEST_PATH an existing file: error, cannot copy a directory to a file; docker 20.10 exits 1 (observed; the reference documents no status)")
def test_directory_over_a_file_is_an_error(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    make_source_dir(src)
    dst.write("out/file", "unchanged")
    result = cp(engine, src.ref("src"), dst.ref("out/file"))
    assert result.returncode == 1, (f"{engine.name}: cp {direction} of a directory over a file exited "
                                    f"{result.returncode}; docker 20.10 exits 1 (observed): {result}")
    assert dst.tree("out") == ["file=unchanged"], f"{engine.name}: a failed cp {direction} changed the destination"


@DIRECTIONS
@pytest.mark.spec(CP, "directories are copied recursively with permissions preserved")
def test_permissions_are_preserved(engine, image, tmp_path, direction):
    src, dst = sides(engine, image, tmp_path, direction)
    make_source_dir(src)
    if isinstance(src, HostSide):
        (src.root / "src/x").chmod(0o640)
        (src.root / "src/sub").chmod(0o750)
    else:
        src.sh(f"chmod 640 {WORK}/src/x && chmod 750 {WORK}/src/sub")
    dst.mkdir("out")
    copied(engine, src.ref("src"), dst.ref("out"))
    if isinstance(dst, HostSide):
        modes = [oct((dst.root / p).stat().st_mode & 0o7777) for p in ("out/src/x", "out/src/sub")]
    else:
        modes = ["0o" + m.lstrip("0") for m in dst.sh(f"stat -c %a {WORK}/out/src/x {WORK}/out/src/sub").split()]
    assert modes == ["0o640", "0o750"], f"{engine.name}: cp {direction}: modes of a file and a directory became {modes}"


# -- ownership -----------------------------------------------------------------------


@pytest.mark.spec(CP, "files copied to a container are created with UID:GID of the root user")
def test_files_copied_in_are_owned_by_root(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    host.write("f.txt", "payload")
    os.chown(host.root / "f.txt", 1234, 5678)
    copied(engine, host.ref("f.txt"), box.ref(""))
    owner = box.sh(f"stat -c %u:%g {WORK}/f.txt").strip()
    assert owner == "0:0", f"{engine.name}: a file of 1234:5678 copied in without -a is owned by {owner}"


@pytest.mark.spec(CP, "-a, --archive: preserve uid/gid from source when copying to container")
def test_archive_mode_keeps_the_owner_when_copying_in(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    make_source_dir(host)
    for path in ("src", "src/x", "src/sub", "src/sub/y"):
        os.chown(host.root / path, 1234, 5678)
    copied(engine, "-a", host.ref("src"), box.ref(""))
    owners = box.sh(f"cd {WORK}/src && stat -c %u:%g . x sub sub/y").split()
    assert owners == ["1234:5678"] * 4, f"{engine.name}: cp -a of a tree of 1234:5678 gave owners {owners}"


@pytest.mark.spec(CP, "files copied to the local machine are created with the UID:GID of the user which invoked docker cp")
def test_files_copied_out_are_owned_by_the_caller(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    box.write("f.txt", "payload")
    box.sh(f"chown 1234:5678 {WORK}/f.txt")
    copied(engine, box.ref("f.txt"), host.ref("f.txt"))
    st = (host.root / "f.txt").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), \
        f"{engine.name}: a file of 1234:5678 copied out is owned by {st.st_uid}:{st.st_gid}, the caller is {os.getuid()}:{os.getgid()}"


# -- symbolic links --------------------------------------------------------------------


@pytest.mark.spec(CP, "a symbolic link in SRC_PATH is copied as the link, not its target, unless -L is given")
def test_container_symlink_is_copied_out_as_a_link(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    box.sh(f"ln -s /etc/hostname {WORK}/lnk")
    copied(engine, box.ref("lnk"), host.ref("lnk"))
    out = host.root / "lnk"
    assert out.is_symlink(), f"{engine.name}: a container symlink copied out became {'a file' if out.exists() else 'nothing'}"
    assert os.readlink(out) == "/etc/hostname"


@pytest.mark.spec(CP, "if SRC_PATH is local and is a symbolic link, the symbolic link, not the target, is copied by default")
def test_local_symlink_is_copied_in_as_a_link(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    (host.root / "lnk").symlink_to("/etc/hostname")
    copied(engine, host.ref("lnk"), box.ref(""))
    assert box.tree("") == ["lnk -> /etc/hostname"], f"{engine.name}: a local symlink copied in became {box.tree('')}"


@pytest.mark.spec(CP, "-L, --follow-link: always follow symbol link in SRC_PATH (local source)")
@pytest.mark.requires("cp-follow-link")
def test_follow_link_copies_the_local_target(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    host.write("target.txt", "the target")
    (host.root / "lnk").symlink_to(host.root / "target.txt")
    copied(engine, "-L", host.ref("lnk"), box.ref("copy"))
    assert box.tree("") == ["copy=the target"], f"{engine.name}: cp -L of a local symlink gave {box.tree('')}"


@pytest.mark.spec(CP, "-L, --follow-link: a link in the container is followed inside the container's file system")
@pytest.mark.requires("cp-follow-link")
def test_follow_link_resolves_in_the_container(engine, image, tmp_path):
    # The same absolute path on both sides, different contents: only the
    # container's may come out.
    twin = tmp_path / "twin.txt"
    twin.write_text("host side")
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image, "--hostname", "cft-inside"))
    box.sh('mkdir -p "$(dirname "$1")" && echo container side > "$1"', str(twin))
    box.sh(f'ln -s "$1" {WORK}/twin && ln -s /etc/hostname {WORK}/hostname', str(twin))
    copied(engine, "-L", box.ref("twin"), host.ref("twin"))
    copied(engine, "-L", box.ref("hostname"), host.ref("hostname"))
    got = host.tree("")
    assert got == ["hostname=cft-inside", "twin=container side"], \
        f"{engine.name}: cp -L out of links to {twin} and /etc/hostname gave {got}; the container's files hold 'container side' and 'cft-inside'"


@pytest.mark.spec(CP, "container paths are relative to the container's / (root): links in the path resolve inside the container")
def test_copy_out_through_a_link_to_root_reads_the_container(engine, image, tmp_path):
    twin = tmp_path / "twin.txt"
    twin.write_text("host side")
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    box.sh('mkdir -p "$(dirname "$1")" && echo container side > "$1"', str(twin))
    box.sh(f"ln -s / {WORK}/rootlink")
    copied(engine, box.ref(f"rootlink{twin}"), host.ref("out.txt"))
    got = host.tree("out.txt")
    assert got == ["=container side"], f"{engine.name}: cp out of rootlink{twin} (rootlink -> /) gave {got}"


@pytest.mark.parametrize("through", ["parent-link-to-root", "link-to-directory"])
@pytest.mark.spec(CP, "container paths are relative to the container's / (root): a copy into a container never writes to the host")
def test_copy_in_through_container_links_stays_in_the_container(engine, image, tmp_path, through):
    target = tmp_path / "target"
    target.mkdir()
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    host.write("evil.txt", "payload")
    box.sh('mkdir -p "$1"', str(target))
    if through == "parent-link-to-root":
        box.sh(f"ln -s / {WORK}/rootlink")
        dest = box.ref(f"rootlink{target}/evil.txt")
    else:
        box.sh(f'ln -s "$1" {WORK}/hostdir', str(target))
        dest = box.ref("hostdir")
    result = cp(engine, host.ref("evil.txt"), dest)
    assert sorted(os.listdir(target)) == [], f"{engine.name}: cp into {dest} wrote to the host's {target}: {os.listdir(target)}"
    assert result.ok, f"{engine.name}: cp into {dest} failed: {result}"
    inside = box.sh('cat "$1/evil.txt"', str(target))
    assert inside == "payload", f"{engine.name}: the container's {target}/evil.txt holds {inside!r}"


# -- errors ----------------------------------------------------------------------------


@pytest.mark.spec(CP, "the command requires SRC_PATH to exist: a missing container path is an error naming it; docker 20.10 exits 1 (observed; the reference documents no status)")
def test_missing_container_source_is_an_error(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    result = cp(engine, box.ref("no-such-file"), host.ref("out"))
    assert result.returncode == 1, (f"{engine.name}: cp of a missing container path exited {result.returncode}; "
                                    f"docker 20.10 exits 1 (observed): {result}")
    assert f"{WORK}/no-such-file" in result.stderr, f"{engine.name}: the error does not name the missing path: {result}"
    assert host.tree("") == [], f"{engine.name}: a failed cp out left {host.tree('')}"


@pytest.mark.spec(CP, "the command requires SRC_PATH to exist: a missing local path is an error naming it; docker 20.10 exits 1 (observed; the reference documents no status)")
def test_missing_local_source_is_an_error(engine, image, tmp_path):
    host, box = HostSide(tmp_path / "host"), ContainerSide(engine, running(engine, image))
    result = cp(engine, host.ref("no-such-file"), box.ref(""))
    assert result.returncode == 1, (f"{engine.name}: cp of a missing local path exited {result.returncode}; "
                                    f"docker 20.10 exits 1 (observed): {result}")
    assert "no-such-file" in result.stderr, f"{engine.name}: the error does not name the missing path: {result}"
    assert box.tree("") == [], f"{engine.name}: a failed cp in left {box.tree('')}"


# -- stopped containers ------------------------------------------------------------------


@pytest.mark.spec(CP, "the CONTAINER can be a running or stopped container: copy into a created container")
def test_copy_into_a_created_container(engine, image, tmp_path):
    host = HostSide(tmp_path / "host")
    host.write("in.txt", "copied before start")
    name = engine.create([image, "cat", "/in.txt"])
    copied(engine, host.ref("in.txt"), f"{name}:/in.txt")
    result = engine.cli("start", "-a", name, timeout=60)
    assert result.ok and result.stdout == "copied before start", \
        f"{engine.name}: a file copied into a created container is not seen when it starts: {result}"


@pytest.mark.spec(CP, "the CONTAINER can be a running or stopped container: copy into an exited container")
def test_copy_into_an_exited_container(engine, image, tmp_path):
    host = HostSide(tmp_path / "host")
    host.write("in.txt", "copied after exit")
    name = engine.create([image, "sh", "-c", "cat /in.txt 2>/dev/null || echo first run"])
    first = engine.cli("start", "-a", name, timeout=60)
    assert first.stdout.strip() == "first run", f"{engine.name}: first start: {first}"
    copied(engine, host.ref("in.txt"), f"{name}:/in.txt")
    again = engine.cli("start", "-a", name, timeout=60)
    assert again.ok and again.stdout == "copied after exit", \
        f"{engine.name}: a file copied into an exited container is not seen when it starts again: {again}"


@pytest.mark.spec(CP, "the CONTAINER can be a running or stopped container: copy out of an exited container")
def test_copy_out_of_an_exited_container(engine, image, tmp_path):
    host = HostSide(tmp_path / "host")
    name = engine.new_name()
    result = engine.run([image, "sh", "-c", "echo written by the container > /out.txt"], name=name)
    assert result.ok, str(result)
    copied(engine, f"{name}:/out.txt", host.ref("out.txt"))
    assert host.tree("out.txt") == ["=written by the container"], f"{engine.name}: cp out of an exited container gave {host.tree('out.txt')}"


@pytest.mark.spec(CP, "the CONTAINER can be a running or stopped container: copy out of a created container")
def test_copy_out_of_a_created_container(engine, image, tmp_path):
    host = HostSide(tmp_path / "host")
    name = engine.create([image, "true"])
    copied(engine, f"{name}:/data/seed.txt", host.ref("seed.txt"))
    got = (host.root / "seed.txt").read_bytes() if (host.root / "seed.txt").exists() else None
    assert got == SEED_TEXT, f"{engine.name}: cp out of a created container gave {got!r}, the image holds {SEED_TEXT!r}"


# -- tar streams -----------------------------------------------------------------------


@pytest.mark.spec(CP, "using - as DEST_PATH streams the contents of the resource as a tar archive to STDOUT")
def test_copy_out_to_stdout_is_a_tar_stream(engine, image, tmp_path):
    box = ContainerSide(engine, running(engine, image))
    make_source_dir(box)
    result = engine.cli("cp", box.ref("src"), "-", text=False)
    assert result.ok, f"{engine.name}: cp to -: {result}"
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        members = {m.name.rstrip("/"): (tar.extractfile(m).read().decode() if m.isfile() else None) for m in tar}
    assert members == {"src": None, "src/sub": None, "src/sub/y": "y", "src/x": "x"}, \
        f"{engine.name}: the tar stream of {WORK}/src holds {members}"


@pytest.mark.spec(CP, "using - as SRC_PATH extracts a tar archive from STDIN into the DEST_PATH directory")
def test_copy_in_from_stdin_extracts_a_tar_stream(engine, image, tmp_path):
    box = ContainerSide(engine, running(engine, image))
    box.write("dest/keep.txt", "kept")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a.txt", b"alpha"), ("d/b.txt", b"beta")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = engine.cli("cp", "-", box.ref("dest"), input=buf.getvalue(), text=False)
    assert result.ok, f"{engine.name}: cp - into a directory: {result}"
    assert box.tree("dest") == ["a.txt=alpha", "d/", "d/b.txt=beta", "keep.txt=kept"], \
        f"{engine.name}: cp - extracted {box.tree('dest')}"
