"""Registry throughput: refregistry vs docker-registry (CNCF distribution),
both started on loopback with the same configuration, measured with the same
client.

Cases: one 100 MiB blob pushed and pulled (MB/s), 50 small layers pushed and
pulled (MB/s, 4 parallel requests like docker's pushes), and manifest GETs at
16 concurrent keep-alive clients (requests/s and p99 latency, aiohttp).
Every pushed blob is new (its first bytes are a counter), so neither registry
can skip the work.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import aiohttp
import httpx

from ..errors import ConformanceError
from ..registry_client import OCI_MANIFEST, digest
from ..registry_profile import registry_profile_by_name
from ..registry_server import RunningRegistry, start_registry
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

    def pull_big_curl(subject: str) -> Callable[[], float]:
        def once() -> float:
            if not shutil.which("curl"):
                raise Unavailable("curl is not installed")
            url = f"{regs.url(subject)}/v2/bench/pull/blobs/{pulled[subject][0]}"
            out = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url],
                                 capture_output=True, text=True)
            size, seconds = out.stdout.split() if out.returncode == 0 else ("0", "0")
            if out.returncode != 0 or int(size) != BIG:
                raise Unavailable(f"curl GET failed ({out.returncode}): {out.stderr.strip()[:200]}")
            return BIG / MIB / float(seconds)
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
        Case("registry: pull one 100 MiB blob (curl)", "MB/s", True, each(pull_big_curl), "docker-registry",
             setup=prepare_pulls, teardown=regs.teardown,
             description="curl -o /dev/null, a client fast enough to show the server's rate"),
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
    return blob_cases(regs) + manifest_cases(regs)
