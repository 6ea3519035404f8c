"""Registry throughput: refregistry vs docker-registry (CNCF distribution),
both started on loopback with the same configuration, measured with the same
client.

Two views. "Typical Python client" (httpx, aiohttp): one 100 MiB blob pushed
and pulled, 50 small layers pushed and pulled (4 parallel requests like
docker's pushes), manifest GETs at 16 concurrent keep-alive clients
(requests/s and p99 latency). "The server's rate" (:func:`large_blob_cases`):
100 MiB and 1 GiB pushes (one PUT, and chunked PATCHes) from a raw-socket
client that sends by sendfile, pulls by that client and by curl, 8 parallel
100 MiB pushes, whole images copied by skopeo, and the registries' peak
resident memory.
Each of those cases also measures the same client against a null registry
that discards what it is sent and serves blobs by sendfile ("client alone"):
a case shows the server's rate only when that row is several times the
registries'. Every pushed blob is new (it ends in a counter), so neither
registry can skip the work; pushed blobs are deleted from the registries'
storage after each round, and temp files (1 GiB of random bytes, written in
chunks) are removed in teardown.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
import json
import random
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import aiohttp
import httpx

from ..errors import ConformanceError
from ..registry_client import OCI_MANIFEST, digest
from ..registry_profile import registry_profile_by_name
from ..registry_server import RunningRegistry, start_registry
from .blobclient import BlobClient, BlobSource, NullRegistryProcess, TransferError
from .core import Case, Unavailable

SUBJECTS = ("docker-registry", "refregistry")
PROFILES = {"docker-registry": "distribution", "refregistry": "refregistry"}
MIB = 1024 * 1024
BIG = 100 * MIB
SMALL, SMALL_COUNT, PARALLEL = 64 * 1024, 50, 4
CONCURRENCY, REQUESTS = 16, 3000


class Registries:
    """Both registries for one case: started in setup, stopped in teardown."""

    def __init__(self) -> None:
        self.running: dict[str, RunningRegistry] = {}
        self.errors: dict[str, str] = {}
        self.counter = itertools.count()

    def setup(self) -> None:
        for subject in SUBJECTS:
            try:
                self.running[subject] = start_registry(registry_profile_by_name(PROFILES[subject]), "plain")
            except (ConformanceError, OSError) as exc:
                self.errors[subject] = str(exc).splitlines()[0]

    def teardown(self) -> None:
        for running in self.running.values():
            running.stop()
        self.running.clear()

    def url(self, subject: str) -> str:
        if subject not in self.running:
            raise Unavailable(self.errors.get(subject, f"{subject} did not start"))
        return self.running[subject].url

    def fresh(self, template: bytes) -> bytes:
        """``template`` with a new 8-byte prefix: a blob neither registry has seen."""
        return next(self.counter).to_bytes(8, "big") + template[8:]


def push(client: httpx.Client, repo: str, data: bytes) -> str:
    d = digest(data)
    started = client.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    location = started.headers["Location"]
    location += ("&" if "?" in location else "?") + f"digest={d}"
    done = client.put(location, content=data, headers={"Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise Unavailable(f"push answered {done.status_code}: {done.text[:200]}")
    return d


def pull(client: httpx.Client, repo: str, d: str) -> int:
    size = 0
    with client.stream("GET", f"/v2/{repo}/blobs/{d}") as response:
        if response.status_code != 200:
            raise Unavailable(f"pull answered {response.status_code}")
        for chunk in response.iter_bytes(MIB):
            size += len(chunk)
    return size


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=300, limits=httpx.Limits(max_connections=PARALLEL * 2))


def blob_cases(regs: Registries) -> list[Case]:
    big = random.Random(1).randbytes(BIG)
    small = [random.Random(i).randbytes(SMALL) for i in range(SMALL_COUNT)]
    pulled: dict[str, tuple[str, list[str]]] = {}

    def push_big(subject: str) -> Callable[[], float]:
        def once() -> float:
            data = regs.fresh(big)
            with _client(regs.url(subject)) as c:
                start = time.perf_counter()
                push(c, "bench/big", data)
                return BIG / MIB / (time.perf_counter() - start)
        return once

    def push_small(subject: str) -> Callable[[], float]:
        def once() -> float:
            blobs = [regs.fresh(b) for b in small]
            with _client(regs.url(subject)) as c, ThreadPoolExecutor(PARALLEL) as pool:
                start = time.perf_counter()
                list(pool.map(lambda b: push(c, "bench/small", b), blobs))
                return SMALL * SMALL_COUNT / MIB / (time.perf_counter() - start)
        return once

    def prepare_pulls() -> None:
        regs.setup()
        for subject in regs.running:
            with _client(regs.url(subject)) as c:
                pulled[subject] = (push(c, "bench/pull", big), [push(c, "bench/pull", b) for b in small])

    def pull_big(subject: str) -> Callable[[], float]:
        def once() -> float:
            with _client(regs.url(subject)) as c:
                d = pulled[subject][0]
                start = time.perf_counter()
                size = pull(c, "bench/pull", d)
                return size / MIB / (time.perf_counter() - start)
        return once

    def pull_small(subject: str) -> Callable[[], float]:
        def once() -> float:
            with _client(regs.url(subject)) as c, ThreadPoolExecutor(PARALLEL) as pool:
                start = time.perf_counter()
                sizes = list(pool.map(lambda d: pull(c, "bench/pull", d), pulled[subject][1]))
                return sum(sizes) / MIB / (time.perf_counter() - start)
        return once

    def each(make):
        return {s: make(s) for s in SUBJECTS}

    return [
        Case("registry: push one 100 MiB blob (POST+PUT)", "MB/s", True, each(push_big), "docker-registry",
             setup=regs.setup, teardown=regs.teardown, description="httpx, one request body from memory"),
        Case("registry: push 50 layers of 64 KiB (4 parallel)", "MB/s", True, each(push_small), "docker-registry",
             setup=regs.setup, teardown=regs.teardown, description="POST+PUT per layer, shared keep-alive client"),
        Case("registry: pull one 100 MiB blob (httpx)", "MB/s", True, each(pull_big), "docker-registry",
             setup=prepare_pulls, teardown=regs.teardown, description="httpx streaming GET, 1 MiB reads"),
        Case("registry: pull 50 layers of 64 KiB (4 parallel)", "MB/s", True, each(pull_small), "docker-registry",
             setup=prepare_pulls, teardown=regs.teardown, description="GET per layer, shared keep-alive client"),
    ]


async def _manifest_load(url: str, path: str) -> list[float]:
    """REQUESTS GETs spread over CONCURRENCY keep-alive connections; latencies in ms."""
    latencies: list[float] = []
    remaining = iter(range(REQUESTS))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    headers = {"Accept": OCI_MANIFEST}
    async with aiohttp.ClientSession(url, connector=connector) as session:
        async def worker() -> None:
            for _ in remaining:
                start = time.perf_counter()
                async with session.get(path, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise Unavailable(f"manifest GET answered {response.status}")
                latencies.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        latencies.append(time.perf_counter() - start)  # the last entry: wall time in seconds
    return latencies


# -- the server's rate: clients that are not the bottleneck ------------------

NULL = "client alone (null registry)"
GIB = 1024 * MIB
PATCH_CHUNK = {BIG: 16 * MIB, GIB: 64 * MIB}
PARALLEL_PUSHES = 8
IMAGE_LAYERS = (80 * MIB, 20 * MIB)  # skopeo's image: two gzip layers and a config
SUBPROCESS_TIMEOUT = 600  # seconds for one curl or skopeo call (a 1 GiB transfer at 2 MB/s)


def _size_name(size: int) -> str:
    return f"{size // GIB} GiB" if size >= GIB else f"{size // MIB} MiB"


def _storage_blob_paths(root: Path, digest: str) -> list[Path]:
    """Where either registry keeps a blob's bytes (refregistry's layout, distribution's)."""
    algorithm, hex_ = digest.split(":", 1)
    tail = Path("blobs") / algorithm / hex_[:2] / hex_ / "data"
    return [root / tail, root / "docker" / "registry" / "v2" / tail]


def peak_rss_reset(pid: int) -> None:
    """Reset the kernel's high-water mark of the process's resident memory (VmHWM)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        raise Unavailable(f"cannot reset VmHWM of pid {pid}: {exc.strerror}") from None


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise Unavailable(f"no VmHWM for pid {pid}")


class LargeBlobs:
    """What one server-rate case owns: a temp dir with a blob source, both
    registries, and the null registry serving that source."""

    def __init__(self, regs: Registries, size: int):
        self.regs, self.size = regs, size
        self.directory: Path | None = None
        self.source: BlobSource | None = None
        self.null: NullRegistryProcess | None = None
        self.counter = itertools.count()
        self.pulled: dict[str, str] = {}

    def setup(self, pulls: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="conformance-bench-blobs-"))
        try:
            self.source = BlobSource(self.directory / "blob", self.size)
            self.null = NullRegistryProcess(self.directory / "blob")
        except (OSError, TransferError) as exc:
            self.teardown()
            raise Unavailable(f"cannot prepare {_size_name(self.size)} of blob data: {exc}") from None
        self.regs.setup()
        if pulls:
            for subject in list(self.regs.running):
                blob = self.blob()
                try:
                    BlobClient(self.url(subject)).push("bench/pull", blob)
                except (OSError, TransferError) as exc:
                    self.regs.errors[subject] = f"push for the pulls failed: {exc}"
                    self.regs.running.pop(subject).stop()
                    continue
                self.pulled[subject] = blob.digest
            self.pulled[NULL] = "sha256:" + "0" * 64  # the null registry serves its source for any digest

    def teardown(self) -> None:
        self.regs.teardown()
        if self.null:
            self.null.stop()
        if self.source:
            self.source.close()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.null = self.source = self.directory = None
        self.pulled.clear()

    def url(self, subject: str) -> str:
        if subject == NULL:
            if self.null is None:
                raise Unavailable("the null registry did not start")
            return self.null.url
        return self.regs.url(subject)

    def blob(self):
        return self.source.blob(next(self.counter))

    def drop(self, subject: str, digest: str) -> None:
        """Delete a measured blob's bytes from the registry's storage (1 GiB a round adds up)."""
        running = self.regs.running.get(subject)
        if running is None:
            return
        for path in _storage_blob_paths(running.directory / "storage", digest):
            path.unlink(missing_ok=True)

    def push(self, subject: str, chunk: int | None = None) -> float:
        """One new blob pushed; seconds it took."""
        blob = self.blob()
        client = BlobClient(self.url(subject))
        start = time.perf_counter()
        try:
            if chunk is None:
                client.push("bench/large", blob)
            else:
                client.push_chunked("bench/large", blob, chunk)
        except (OSError, TransferError) as exc:
            raise Unavailable(f"push failed: {exc}") from None
        elapsed = time.perf_counter() - start
        self.drop(subject, blob.digest)
        return elapsed

    def push_parallel(self, subject: str, count: int) -> float:
        """``count`` new blobs pushed at once, each on its own connection; seconds for all."""
        blobs = [self.blob() for _ in range(count)]
        client = BlobClient(self.url(subject))
        with ThreadPoolExecutor(count) as pool:
            start = time.perf_counter()
            futures = [pool.submit(client.push, "bench/parallel", b) for b in blobs]
            errors = [f.exception() for f in futures]
            elapsed = time.perf_counter() - start
        for b in blobs:
            self.drop(subject, b.digest)
        if any(errors):
            raise Unavailable(f"parallel push failed: {next(e for e in errors if e)}")
        return elapsed

    def pull_curl(self, subject: str) -> float:
        if not shutil.which("curl"):
            raise Unavailable("curl is not installed")
        url = f"{self.url(subject)}/v2/bench/pull/blobs/{self.pulled[subject]}"
        try:
            out = subprocess.run(["curl", "-sf", "--max-time", str(SUBPROCESS_TIMEOUT), "-o", "/dev/null",
                                  "-w", "%{size_download} %{time_total}", url],
                                 capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"curl GET took over {SUBPROCESS_TIMEOUT}s") from None
        size, seconds = out.stdout.split() if out.returncode == 0 else ("0", "0")
        if out.returncode != 0 or int(size) != self.size:
            raise Unavailable(f"curl GET failed ({out.returncode}, {size} bytes): {out.stderr.strip()[:200]}")
        return float(seconds)

    def pull_raw(self, subject: str) -> float:
        start = time.perf_counter()
        try:
            size = BlobClient(self.url(subject)).pull("bench/pull", self.pulled[subject])
        except (OSError, TransferError) as exc:
            raise Unavailable(f"GET failed: {exc}") from None
        if size != self.size:
            raise Unavailable(f"GET gave {size} bytes, not {self.size}")
        return time.perf_counter() - start

    def peak_rss(self, subject: str, work: Callable[[str], object]) -> float:
        """MiB: the registry's peak resident memory while ``work(subject)`` runs."""
        if subject not in self.regs.running:
            raise Unavailable(self.regs.errors.get(subject, f"{subject} did not start"))
        pid = self.regs.running[subject].process.pid
        peak_rss_reset(pid)
        work(subject)
        return peak_rss_mib(pid)


def large_blob_cases(regs: Registries) -> list[Case]:
    subjects = SUBJECTS + (NULL,)
    calibrated = (" The 'client alone' row is the same client against a null registry (nothing stored, "
                  "nothing hashed): the case measures the servers while that row is several times theirs.")
    found = []
    for size, rounds, warmup in ((BIG, None, None), (GIB, 5, 1)):
        name = _size_name(size)
        put, patch, pulls = LargeBlobs(regs, size), LargeBlobs(regs, size), LargeBlobs(regs, size)
        chunk = PATCH_CHUNK[size]
        found += [
            Case(f"registry: push {name}, one PUT (raw socket, sendfile)", "MB/s", True,
                 {s: (lambda s=s, b=put: b.size / MIB / b.push(s)) for s in subjects}, "docker-registry",
                 setup=put.setup, teardown=put.teardown, max_rounds=rounds, max_warmup=warmup,
                 description=f"POST, then PUT ?digest= with the {name} body sent by sendfile(2)." + calibrated),
            Case(f"registry: push {name}, chunked PATCH ({chunk // MIB} MiB chunks)", "MB/s", True,
                 {s: (lambda s=s, b=patch: b.size / MIB / b.push(s, PATCH_CHUNK[b.size])) for s in subjects},
                 "docker-registry", setup=patch.setup, teardown=patch.teardown, max_rounds=rounds, max_warmup=warmup,
                 description=f"POST, PATCHes with Content-Range of {chunk // MIB} MiB each sent by sendfile(2), "
                             "then an empty PUT ?digest=." + calibrated),
            Case(f"registry: pull {name} (raw socket)", "MB/s", True,
                 {s: (lambda s=s, b=pulls: b.size / MIB / b.pull_raw(s)) for s in subjects},
                 "docker-registry", setup=lambda b=pulls: b.setup(pulls=True), teardown=pulls.teardown,
                 max_rounds=rounds, max_warmup=warmup,
                 description="GET, the body discarded by the kernel (recv with MSG_TRUNC: no copy)." + calibrated),
            Case(f"registry: pull {name} (curl)", "MB/s", True,
                 {s: (lambda s=s, b=pulls: b.size / MIB / b.pull_curl(s)) for s in subjects},
                 "docker-registry", setup=lambda b=pulls: b.setup(pulls=True), teardown=pulls.teardown,
                 max_rounds=rounds, max_warmup=warmup,
                 description="curl -o /dev/null, its own time_total." + calibrated),
        ]
    parallel = LargeBlobs(regs, BIG)
    found.append(Case(
        f"registry: {PARALLEL_PUSHES} parallel pushes of 100 MiB (raw socket)", "MB/s", True,
        {s: (lambda s=s: PARALLEL_PUSHES * BIG / MIB / parallel.push_parallel(s, PARALLEL_PUSHES)) for s in subjects},
        "docker-registry", setup=parallel.setup, teardown=parallel.teardown, max_rounds=8, max_warmup=1,
        description=f"{PARALLEL_PUSHES} POST+PUT pushes at once, each on its own connection; the total rate."
                    + calibrated))
    found += skopeo_cases(regs)
    memory_one, memory_parallel = LargeBlobs(regs, GIB), LargeBlobs(regs, GIB)

    def push_and_pull(subject: str) -> None:
        memory_one.push(subject)
        memory_one.pull_raw(subject)
    found += [
        Case("registry: peak RSS, push and pull of one 1 GiB blob", "MiB", False,
             {s: (lambda s=s: memory_one.peak_rss(s, push_and_pull)) for s in SUBJECTS}, "docker-registry",
             setup=lambda: memory_one.setup(pulls=True), teardown=memory_one.teardown, max_rounds=3, max_warmup=0,
             description="VmHWM of the registry process (reset through /proc/PID/clear_refs before each round) "
                         "while a 1 GiB blob is pushed (one PUT) and a 1 GiB blob is pulled"),
        Case(f"registry: peak RSS, {PARALLEL_PUSHES} parallel pushes of 1 GiB", "MiB", False,
             {s: (lambda s=s: memory_parallel.peak_rss(s, lambda s: memory_parallel.push_parallel(s, PARALLEL_PUSHES)))
              for s in SUBJECTS}, "docker-registry",
             setup=memory_parallel.setup, teardown=memory_parallel.teardown, max_rounds=2, max_warmup=0,
             description=f"VmHWM of the registry process while {PARALLEL_PUSHES} 1 GiB blobs are pushed at once"),
    ]
    return found


# -- whole images with skopeo --------------------------------------------------

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
IMAGE_TAG = "bench"


def _write_blob(layout: Path, data: bytes) -> dict:
    hex_ = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hex_).write_bytes(data)
    return {"digest": f"sha256:{hex_}", "size": len(data)}


def write_oci_image(layout: Path, layers: list[bytes]) -> int:
    """An OCI layout with one image tagged :data:`IMAGE_TAG`: each layer gzip
    (stored, level 0: skopeo copies gzip as it is, and random bytes do not
    compress), a config naming their diff IDs. Returns the image's bytes."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptors = [dict(mediaType=OCI_LAYER_GZIP, **_write_blob(layout, gzip.compress(d, compresslevel=0, mtime=0)))
                   for d in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(d).hexdigest() for d in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": dict(mediaType=OCI_CONFIG, **_write_blob(layout, config)),
                           "layers": descriptors}).encode()
    index = {"schemaVersion": 2, "manifests": [dict(mediaType=OCI_MANIFEST, **_write_blob(layout, manifest),
                                                    annotations={"org.opencontainers.image.ref.name": IMAGE_TAG})]}
    (layout / "index.json").write_text(json.dumps(index))
    return sum(d["size"] for d in descriptors) + len(config) + len(manifest)


def skopeo(*args: str) -> None:
    try:
        out = subprocess.run(["skopeo", "copy", "--quiet", *args], capture_output=True, text=True,
                             timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"skopeo copy took over {SUBPROCESS_TIMEOUT}s") from None
    if out.returncode != 0:
        raise Unavailable(f"skopeo copy failed ({out.returncode}): {out.stderr.strip()[:300]}")


class Images:
    """What a skopeo case owns: a temp dir of OCI layouts, both registries, a null registry."""

    def __init__(self, regs: Registries):
        self.regs = regs
        self.directory: Path | None = None
        self.null: NullRegistryProcess | None = None
        self.templates: list[bytes] = []
        self.counter = itertools.count()
        self.pulled_size = 0

    def setup(self, pulls: bool = False) -> None:
        if not shutil.which("skopeo"):
            raise Unavailable("skopeo is not installed")
        self.directory = Path(tempfile.mkdtemp(prefix="conformance-bench-images-"))
        self.templates = [random.Random(i).randbytes(size) for i, size in enumerate(IMAGE_LAYERS)]
        image = self.directory / "pull-image"
        self.pulled_size = write_oci_image(image, self.templates)
        try:
            self.null = NullRegistryProcess(layout=image)
        except TransferError as exc:
            self.teardown()
            raise Unavailable(str(exc)) from None
        self.regs.setup()
        if pulls:
            for subject in list(self.regs.running):
                try:
                    skopeo("--dest-tls-verify=false", f"oci:{image}:{IMAGE_TAG}", self.ref(subject, "bench/pull"))
                except Unavailable as exc:
                    self.regs.errors[subject] = f"skopeo push for the pulls failed: {exc}"
                    self.regs.running.pop(subject).stop()

    def teardown(self) -> None:
        self.regs.teardown()
        if self.null:
            self.null.stop()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.null = self.directory = None
        self.templates = []

    def ref(self, subject: str, repo: str) -> str:
        url = self.null.url if subject == NULL and self.null else self.regs.url(subject)
        return f"docker://{url.split('://', 1)[1]}/{repo}:{IMAGE_TAG}"

    def push(self, subject: str) -> float:
        """MB/s of one new image copied from an OCI layout into the registry."""
        n = next(self.counter)
        layout = self.directory / f"push-{n}"
        size = write_oci_image(layout, [n.to_bytes(8, "big") + t[8:] for t in self.templates])
        try:
            start = time.perf_counter()
            skopeo("--dest-tls-verify=false", f"oci:{layout}:{IMAGE_TAG}", self.ref(subject, "bench/image"))
            elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(layout, ignore_errors=True)
        return size / MIB / elapsed

    def pull(self, subject: str) -> float:
        """MB/s of the image copied from the registry into a new OCI layout."""
        layout = self.directory / f"pulled-{next(self.counter)}"
        try:
            start = time.perf_counter()
            skopeo("--src-tls-verify=false", self.ref(subject, "bench/pull"), f"oci:{layout}:{IMAGE_TAG}")
            elapsed = time.perf_counter() - start
        finally:
            shutil.rmtree(layout, ignore_errors=True)
        return self.pulled_size / MIB / elapsed


def skopeo_cases(regs: Registries) -> list[Case]:
    subjects = SUBJECTS + (NULL,)
    pushes, pulls = Images(regs), Images(regs)
    total = " + ".join(f"{s // MIB} MiB" for s in IMAGE_LAYERS)
    note = (" The 'client alone' row is skopeo against a null registry (pushes discarded; pulls served from "
            "the layout by sendfile).")
    return [
        Case(f"registry: skopeo copy oci: -> registry, one image ({total})", "MB/s", True,
             {s: (lambda s=s: pushes.push(s)) for s in subjects}, "docker-registry",
             setup=pushes.setup, teardown=pushes.teardown, max_rounds=8, max_warmup=1,
             description="skopeo copy --dest-tls-verify=false oci:DIR docker://..., a new image each round "
                         "(gzip layers, stored)." + note),
        Case(f"registry: skopeo copy registry -> oci:, one image ({total})", "MB/s", True,
             {s: (lambda s=s: pulls.pull(s)) for s in subjects}, "docker-registry",
             setup=lambda: pulls.setup(pulls=True), teardown=pulls.teardown, max_rounds=8, max_warmup=1,
             description="skopeo copy --src-tls-verify=false docker://... oci:DIR, into a new layout each round."
                         + note),
    ]


def manifest_cases(regs: Registries) -> list[Case]:
    def setup() -> None:
        regs.setup()
        for subject in regs.running:
            with _client(regs.url(subject)) as c:
                config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
                push(c, "bench/manifest", config)
                body = ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
                        '"digest":"%s","size":%d},"layers":[]}' % (OCI_MANIFEST, digest(config), len(config))).encode()
                r = c.put("/v2/bench/manifest/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
                if r.status_code != 201:
                    regs.errors[subject] = f"manifest PUT answered {r.status_code}"
                    regs.running.pop(subject).stop()

    def measure(subject: str, what: str) -> Callable[[], float]:
        def once() -> float:
            samples = asyncio.run(_manifest_load(regs.url(subject), "/v2/bench/manifest/manifests/v1"))
            wall, latencies = samples[-1], sorted(samples[:-1])
            if what == "rps":
                return len(latencies) / wall
            return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        return once

    return [
        Case(f"registry: manifest GET, {CONCURRENCY} concurrent clients", "requests/s", True,
             {s: measure(s, "rps") for s in SUBJECTS}, "docker-registry", setup=setup, teardown=regs.teardown,
             description=f"aiohttp, {REQUESTS} GETs by tag over {CONCURRENCY} keep-alive connections"),
        Case(f"registry: manifest GET p99 latency, {CONCURRENCY} concurrent clients", "ms", False,
             {s: measure(s, "p99") for s in SUBJECTS}, "docker-registry", setup=setup, teardown=regs.teardown,
             description=f"99th percentile of {REQUESTS} GETs by tag over {CONCURRENCY} keep-alive connections"),
    ]


def cases(options) -> list[Case]:
    regs = Registries()
    return blob_cases(regs) + large_blob_cases(regs) + manifest_cases(regs)
