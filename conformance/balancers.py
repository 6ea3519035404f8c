"""Load-balancing subjects of suites/ingress: one interface, one class per kind.

A :class:`Subject` is a set of replicas behind entry points. Each replica is
a busybox ``httpd`` serving ``/`` with its own name, so the body of every
response says which replica answered. The checks drive a subject only
through this interface; a new kind is a new class listed in
:data:`SUBJECT_KINDS` and a profile in ``fixtures/balancers/``.

The interface (what a swarm subject implements too)::

    start(replicas)      start the subject with that many replicas; returns once every
                         replica answers through the entry points' balancer
    entrypoints()        base URLs the clients use ("http://ADDR:PORT"): one per node
                         (a standalone proxy: one)
    client_netns()       the network namespace file the load generator must run in to
                         reach the entry points (/run/netns/NAME), or None: the host's
    replicas()           {replica name: node} of the replicas that run now; the name is
                         what the replica answers; node "" when standalone
    scale(count)         add or remove replicas; returns once the new set runs and is in
                         the rotation (a removed replica left the rotation before it was
                         stopped)                                   [ingress-scale]
    kill(replica)        SIGKILL that replica's server process; the subject may replace
                         it (a swarm does) but that name never answers again [ingress-kill]
    start_update()       begin a rolling update of every replica, start-first, with a
                         health check: a new replica runs and passes its check before an
                         old one leaves the rotation, and an old one leaves the rotation
                         before it is stopped; returns at once. New replicas have new
                         names.                                     [ingress-update]
    update_done()        whether the update finished (raises when it failed)
    drain(node)          drain a node: its replicas leave the rotation (and move away);
                         returns once done                          [ingress-drain]
    stop()               remove everything the subject made (processes, containers,
                         networks, temp dirs), also after a failed start; returns what
                         could not be removed

Operations marked [capability] are only called when the profile lists that
capability; without it they raise :class:`NotSupported`.

The standalone subjects here (:class:`HaproxySubject`, :class:`NginxSubject`)
run N backend containers on dockerd (``/usr/bin/docker run -d`` of the test
image, reached at their addresses on docker's bridge) and Debian's haproxy or nginx as a
child process on a free 127.0.0.1 port, with a configuration rendered into a
temp dir, round robin over the backends:

- haproxy (``mode http``, or ``mode tcp`` with ``[settings] mode = "tcp"``:
  an L4 balancer that binds each connection to one server, like IPVS): active
  health checks (``option httpchk``, ``check inter``); a connection refused
  (in http mode also an empty response) is retried on another server
  (``retry-on``, ``option redispatch``). Changes reload gracefully: a new
  haproxy takes the listening socket from the old one (``-x``) and tells it
  to finish its connections and exit (``-sf``).
- nginx: open source nginx has passive health checks only (``max_fails``,
  ``fail_timeout``): it learns that a server is gone from a request that
  failed, which ``proxy_next_upstream`` retries on the next server, so a
  killed replica costs a retry, not a failed request; and a new replica
  is never checked by nginx itself: the subject probes it directly (its
  start-first health check) before a reload (SIGHUP: new workers take new
  requests, old ones finish theirs) puts it into the rotation.

The replicas' server is a profile setting (``backend``, :func:`backend_command`,
for swarm subjects too): busybox ``httpd`` by default, which closes every
connection after one response, or a keep-alive server (busybox ``nc -ll`` and
a shell loop) under which a per-connection balancer can be seen to stick.

Replica removal (scale down, update) takes the replica out of the rotation
with a reload, waits until the old processes finished their requests, and
only then removes its container.

>>> subject = HaproxySubject(balancer_profile_by_name("haproxy"), image)   # doctest: +SKIP
>>> subject.start(3); subject.entrypoints()                                # doctest: +SKIP
['http://127.0.0.1:40123']
"""

from __future__ import annotations

import abc
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jinja2

from .balancer_profile import BalancerProfile
from .engine import RUN_LABEL

DOCKER = "/usr/bin/docker"
HAPROXY = "/usr/sbin/haproxy"
NGINX = "/usr/sbin/nginx"
#: The port busybox httpd listens on inside a backend container.
BACKEND_PORT = 8080
#: Bounded waits (seconds).
START_TIMEOUT = 30.0
RELOAD_TIMEOUT = 15.0
DOCKER_TIMEOUT = 60.0


class NotSupported(Exception):
    """An operation the subject does not offer (its profile lacks the capability)."""


class SubjectFailed(Exception):
    """The subject could not be started or driven: not a check's failure."""


class Subject(abc.ABC):
    """A load-balancing subject (see the module docstring for each method's contract)."""

    def __init__(self, profile: BalancerProfile, image: str):
        self.profile, self.image = profile, image

    @property
    def name(self) -> str:
        return self.profile.name

    @abc.abstractmethod
    def start(self, replicas: int) -> None: ...

    @abc.abstractmethod
    def entrypoints(self) -> list[str]: ...

    def client_netns(self) -> str | None:
        return None

    def resolver(self) -> str | None:
        return None

    @abc.abstractmethod
    def replicas(self) -> dict[str, str]: ...

    def scale(self, count: int) -> None:
        raise NotSupported(f"{self.name} cannot scale")

    def kill(self, replica: str) -> None:
        raise NotSupported(f"{self.name} cannot kill a replica")

    def start_update(self) -> None:
        raise NotSupported(f"{self.name} has no rolling update")

    def update_done(self) -> bool:
        raise NotSupported(f"{self.name} has no rolling update")

    def drain(self, node: str) -> None:
        raise NotSupported(f"{self.name} has no nodes to drain")

    @abc.abstractmethod
    def stop(self) -> list[str]: ...

    def __enter__(self) -> "Subject":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- helpers ----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Our requests go to addresses of this machine and of the run's namespaces: never
#: through a proxy the environment names (http_proxy).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_body(url: str, timeout: float = 2.0) -> str | None:
    """The stripped body of GET ``url``, or None when it does not answer 200 (refused,
    timed out, or an answer broken off by a replica that stops)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.read().decode(errors="replace").strip() if response.status == 200 else None
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError):
        return None


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true (bounded); SubjectFailed after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SubjectFailed(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _docker(*args: str, timeout: float = DOCKER_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "DOCKER_BUILDKIT": "0"})
    except subprocess.TimeoutExpired:
        raise SubjectFailed(f"docker {' '.join(args)} took more than {timeout:g}s") from None
    if check and done.returncode != 0:
        raise SubjectFailed(f"docker {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def render_settings(defaults: dict, profile: BalancerProfile) -> dict:
    """A template's settings: its defaults, overridden by the profile's ``[settings]``;
    a setting the template does not know is a typo.

    >>> from conformance.balancer_profile import parse_balancer_profile
    >>> p = parse_balancer_profile('name = "b"\\nkind = "haproxy"\\nkeepalive = "per-request"\\n[settings]\\nx = 1')
    >>> render_settings({"y": 2}, p)
    Traceback (most recent call last):
    ...
    conformance.balancers.SubjectFailed: balancer b: unknown setting(s) x; known: y
    """
    unknown = set(profile.settings) - set(defaults)
    if unknown:
        raise SubjectFailed(f"balancer {profile.name}: unknown setting(s) {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(defaults))}")
    return {**defaults, **profile.settings}


#: One connection of the "keepalive" backend: answers every GET on it with the
#: replica's name (Content-Length, Connection: keep-alive) until the client closes.
_KEEPALIVE_SERVE = r"""body="$(cat /www/index.html)"
cr="$(printf '\r')"
while IFS= read -r line; do
    [ -n "${line%$cr}" ] && continue
    printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: keep-alive\r\n\r\n%s\n' \
        "$(( ${#body} + 1 ))" "$body"
done
"""

#: The replicas' servers (a profile's ``backend`` setting), in the test image:
#: "httpd" is busybox httpd, which answers one request per connection and
#: closes it (``Connection: close``; a pipelined second request is never
#: answered); "keepalive" keeps a connection open for any number of requests
#: (busybox ``nc -ll`` forks the loop above per connection), so a
#: per-connection balancer can be seen to stick.
BACKENDS = ("httpd", "keepalive")


def backend_command(backend: str, name: str | None, port: int = BACKEND_PORT) -> list[str]:
    """The command of a replica container that answers ``GET /`` with ``name``.

    ``name`` None is a swarm task's replica: it answers with its container's
    hostname (docker's default, the container's short ID), and its server runs
    under a shell that exits 0 on SIGTERM, so that stopping a task is prompt
    (a server as PID 1 ignores SIGTERM, and would wait out the grace period).

    >>> backend_command("httpd", "r1")[-1], backend_command("httpd", "r1")[:2]
    ('r1', ['sh', '-c'])
    >>> backend_command("httpd", None)[2]
    "mkdir -p /www && hostname > /www/index.html && trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"
    """
    setup = {"httpd": "", "keepalive": 'printf "%s" "$1" > /www/serve.sh && chmod +x /www/serve.sh && '}
    server = {"httpd": f"httpd -f -p {port} -h /www", "keepalive": f"nc -ll -p {port} -e /www/serve.sh"}
    if backend not in server:
        raise SubjectFailed(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if name is None:
        script = (f"mkdir -p /www && hostname > /www/index.html && {setup[backend]}trap 'exit 0' TERM; "
                  f"{server[backend]} & wait")
    else:
        script = f'mkdir -p /www && echo "$0" > /www/index.html && {setup[backend]}exec {server[backend]}'
    return ["sh", "-c", script, name or "replica"] + (["#!/bin/sh\n" + _KEEPALIVE_SERVE]
                                                      if backend == "keepalive" else [])


class Backends:
    """The replicas of a standalone subject: busybox httpd containers on dockerd's
    default bridge, each reached at its own address and answering its own name."""

    def __init__(self, image: str, run_id: str, backend: str = "httpd"):
        self.image, self.run_id, self.backend = image, run_id, backend
        self.address: dict[str, str] = {}  # replica -> "ADDRESS:PORT" on docker's bridge
        self.containers: dict[str, str] = {}  # replica -> container name
        self.retiring: list[str] = []  # out of the rotation, their containers being removed
        self.removals: list[subprocess.Popen] = []
        self._numbers = iter(range(1, 10_000))

    def new_names(self, count: int) -> list[str]:
        return [f"r{next(self._numbers)}" for _ in range(count)]

    def run(self, names: list[str]) -> None:
        """Start these replicas (in parallel) and wait until each answers directly."""
        with ThreadPoolExecutor(max_workers=max(1, min(len(names), 4))) as pool:
            list(pool.map(self._run_one, names))
        for name in names:
            url = f"http://{self.address[name]}/"
            wait_until(lambda: http_body(url) == name, START_TIMEOUT, f"replica {name} to answer at {url}")

    def _run_one(self, name: str) -> None:
        container = f"cft-lb-{self.run_id}-{name}"
        self.containers[name] = container
        _docker("run", "-d", "--name", container, "--label", f"{RUN_LABEL}={self.run_id}",
                self.image, *backend_command(self.backend, name))
        # The container's own address on docker's bridge, not a published 127.0.0.1 port:
        # dockerd 20.10 serves those through docker-proxy, a userland copy loop that halved
        # the balancers' throughput in the bench and answers for a dead container.
        address = _docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
        if not address:
            raise SubjectFailed(f"{container} has no address on docker's bridge")
        self.address[name] = f"{address}:{BACKEND_PORT}"

    def kill(self, name: str) -> None:
        _docker("kill", "--signal", "KILL", self.containers[name])

    def remove_soon(self, names: list[str]) -> None:
        """Start removing these replicas' containers without waiting (dockerd takes a
        second or more per container on a busy machine); :meth:`remove` finishes it."""
        self.retiring += [name for name in names if name in self.containers]
        for name in names:
            self.address.pop(name, None)
        containers = [self.containers[n] for n in names if n in self.containers]
        if containers:
            self.removals.append(subprocess.Popen([DOCKER, "rm", "-f", *containers], stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))

    def remove(self, names: list[str]) -> list[str]:
        """Remove these replicas' containers (and finish the removals begun); returns
        those that could not be removed."""
        for removal in self.removals:
            try:
                removal.wait(timeout=DOCKER_TIMEOUT)
            except subprocess.TimeoutExpired:
                removal.kill()
                removal.wait()
        self.removals.clear()
        names = list(dict.fromkeys(self.retiring + list(names)))
        self.retiring.clear()
        containers = [self.containers.pop(n) for n in names if n in self.containers]
        for n in names:
            self.address.pop(n, None)
        if not containers:
            return []
        done = _docker("rm", "-f", *containers, check=False)
        return [] if done.returncode == 0 else [c for c in containers
                                                 if _docker("inspect", c, check=False).returncode == 0]


class ProxySubject(Subject):
    """A standalone proxy (haproxy, nginx) in front of :class:`Backends`.

    Subclasses render the configuration, start the proxy, reload it, and say
    when a reload has taken effect and when the old processes have gone.
    """

    TEMPLATE = ""
    #: the template's settings a profile's [settings] may override
    DEFAULTS: dict = {}

    def __init__(self, profile: BalancerProfile, image: str):
        super().__init__(profile, image)
        self.run_id = secrets.token_hex(3)
        self.dir = Path(tempfile.mkdtemp(prefix=f"cft-lb-{self.run_id}-"))
        self.port = free_port()
        self.backends = Backends(image, self.run_id, str(self.settings()["backend"]))
        #: replicas in the rotation (in the configuration)
        self.rotation: list[str] = []
        self.killed: set[str] = set()
        self.processes: list[subprocess.Popen] = []
        self._update: threading.Thread | None = None
        self._update_error: BaseException | None = None
        self._lock = threading.Lock()

    # -- what subclasses provide
    @abc.abstractmethod
    def _launch(self) -> None:
        """Start the proxy on the current configuration."""

    @abc.abstractmethod
    def _reload(self) -> object:
        """Load the current configuration; returns a token for :meth:`_wait_old_gone`."""

    @abc.abstractmethod
    def _wait_in_rotation(self, names: list[str]) -> None:
        """Return once the running configuration sends requests to ``names`` (bounded)."""

    @abc.abstractmethod
    def _wait_old_gone(self, token: object) -> None:
        """Return once the processes of the configuration before reload ``token`` are gone."""

    def settings(self) -> dict:
        return self.settings_for(self.profile)

    @classmethod
    def settings_for(cls, profile: BalancerProfile) -> dict:
        """The template's settings for ``profile``: ``backend`` (see BACKENDS) and the kind's own."""
        return render_settings({"backend": "httpd", **cls.DEFAULTS}, profile)

    def _render(self) -> None:
        servers = [(name, self.backends.address[name]) for name in self.rotation]
        text = jinja2.Template(self.TEMPLATE, undefined=jinja2.StrictUndefined).render(
            dir=str(self.dir), port=self.port, servers=servers, **self.settings())
        (self.dir / "proxy.conf").write_text(text + "\n")  # haproxy refuses a last line without LF

    # -- the interface
    def start(self, replicas: int) -> None:
        try:
            names = self.backends.new_names(replicas)
            self.backends.run(names)
            self.rotation = names
            self._render()
            self._launch()
            self._wait_in_rotation(names)
            url = self.entrypoints()[0] + "/"
            wait_until(lambda: http_body(url) in names, START_TIMEOUT, f"{self.name} to answer at {url}")
        except BaseException:
            self.stop()
            raise

    def entrypoints(self) -> list[str]:
        return [f"http://127.0.0.1:{self.port}"]

    def replicas(self) -> dict[str, str]:
        return {name: "" for name in self.rotation if name not in self.killed}

    def scale(self, count: int) -> None:
        with self._lock:
            live = [n for n in self.rotation if n not in self.killed]
            if count > len(live):
                self._add(self.backends.new_names(count - len(live)))
            elif count < len(live):
                self._retire(live[count:])

    def kill(self, replica: str) -> None:
        if replica not in self.replicas():
            raise SubjectFailed(f"{self.name} has no running replica {replica!r}: {sorted(self.replicas())}")
        self.backends.kill(replica)
        self.killed.add(replica)

    def start_update(self) -> None:
        if self._update is not None:
            raise SubjectFailed(f"{self.name}: an update is already running")
        old = [n for n in self.rotation if n not in self.killed]

        def update():
            try:
                for name in old:  # parallelism 1, start-first
                    with self._lock:
                        self._add(self.backends.new_names(1))
                        self._retire([name])
            except BaseException as exc:  # reported by update_done()
                self._update_error = exc
        self._update = threading.Thread(target=update, name=f"update-{self.name}", daemon=True)
        self._update.start()

    def update_done(self) -> bool:
        if self._update is None:
            raise SubjectFailed(f"{self.name}: no update was started")
        if self._update_error is not None:
            raise SubjectFailed(f"{self.name}: the rolling update failed: {self._update_error}")
        return not self._update.is_alive()

    def _add(self, names: list[str]) -> None:
        """Start-first: the new replicas answer directly (their health check) before they join."""
        self.backends.run(names)
        self.rotation = self.rotation + names
        self._render()
        self._reload()
        self._wait_in_rotation(names)

    def _retire(self, names: list[str]) -> None:
        """Out of the rotation first; the container goes once no old process may use it."""
        self.rotation = [n for n in self.rotation if n not in names]
        self._render()
        token = self._reload()
        self._wait_old_gone(token)
        self.backends.remove_soon(names)

    def stop(self) -> list[str]:
        if self._update is not None:
            self._update.join(timeout=RELOAD_TIMEOUT * 3)
        leftovers = []
        for process in self.processes:
            stop_process(process, 5)
        self.processes.clear()
        leftovers += self.backends.remove(list(self.backends.containers))
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            leftovers.append(str(self.dir))
        return leftovers


# -- haproxy --------------------------------------------------------------------------


class HaproxySubject(ProxySubject):
    """Debian's haproxy, ``mode http``, round robin with active health checks."""

    TEMPLATE = """\
global
    pidfile {{ dir }}/haproxy.pid
    stats socket {{ dir }}/admin.sock mode 600 level admin expose-fd listeners
    maxconn 2000

defaults
    # http: each request balanced on its own; tcp: each connection (an L4 balancer, like IPVS)
    mode {{ mode }}
    timeout connect 2s
    timeout client 30s
    timeout server 2s
    # a refused connection (and in http mode an empty answer: a replica killed
    # mid-request) is tried again on another server
    retries 3
    option redispatch 1
{%- if mode == "http" %}
    retry-on conn-failure empty-response response-timeout
{%- endif %}

frontend ingress
    bind 127.0.0.1:{{ port }}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /
    default-server check inter {{ check_interval_ms }}ms fall 2 rise 1
{%- for name, address in servers %}
    server {{ name }} {{ address }}
{%- endfor %}
"""

    DEFAULTS = {"check_interval_ms": 200, "mode": "http"}

    def _argv(self) -> list[str]:
        return [HAPROXY, "-db", "-f", str(self.dir / "proxy.conf")]

    def _spawn(self, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"haproxy-{len(self.processes)}.log", "wb")
        with log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def _check_config(self) -> None:
        done = subprocess.run([HAPROXY, "-c", "-f", str(self.dir / "proxy.conf")], capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise SubjectFailed(f"haproxy refuses its configuration: {(done.stderr or done.stdout).strip()[-500:]}")

    def _launch(self) -> None:
        self._check_config()
        self._spawn(self._argv())

    def _reload(self) -> object:
        self._check_config()
        old = [p for p in self.processes if p.poll() is None]
        self._spawn(self._argv() + ["-x", str(self.dir / "admin.sock"), "-sf", *(str(p.pid) for p in old)])
        return old

    def _show_stat(self) -> dict[str, str]:
        """{server: status} from the running haproxy's stats socket ({} when it does not answer)."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.dir / "admin.sock"))
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows if r.get("pxname") == "replicas"}

    def _wait_in_rotation(self, names: list[str]) -> None:
        newest = self.processes[-1]

        def up():
            if newest.poll() is not None:
                raise SubjectFailed(f"haproxy exited {newest.returncode}: {self._log_tail()}")
            status = self._show_stat()
            return all(status.get(n, "").startswith("UP") for n in names) and set(status) - {"BACKEND"} == set(self.rotation)
        wait_until(up, RELOAD_TIMEOUT, f"haproxy to list {', '.join(names)} UP (health check)")

    def _wait_old_gone(self, token: object) -> None:
        for process in token:
            try:
                process.wait(timeout=RELOAD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise SubjectFailed(f"the old haproxy {process.pid} did not finish within {RELOAD_TIMEOUT:g}s") from None

    def _log_tail(self) -> str:
        logs = sorted(self.dir.glob("haproxy-*.log"))
        return logs[-1].read_text(errors="replace").strip()[-500:] if logs else ""


# -- nginx ------------------------------------------------------------------------------


class NginxSubject(ProxySubject):
    """Debian's nginx, upstream round robin, passive health checks."""

    TEMPLATE = """\
daemon off;
master_process on;
worker_processes 1;
pid {{ dir }}/nginx.pid;
error_log {{ dir }}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{ dir }}/client_body;
    proxy_temp_path {{ dir }}/proxy;
    fastcgi_temp_path {{ dir }}/fastcgi;
    uwsgi_temp_path {{ dir }}/uwsgi;
    scgi_temp_path {{ dir }}/scgi;
    upstream replicas {
{%- for name, address in servers %}
        server {{ address }} max_fails=1 fail_timeout={{ fail_timeout_s }}s;  # {{ name }}
{%- endfor %}
    }
    server {
        listen 127.0.0.1:{{ port }};
        location / {
            proxy_pass http://replicas;
            # passive checks: a failed attempt is retried on the next server
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 2s;
        }
    }
}
"""

    DEFAULTS = {"fail_timeout_s": 10}

    def _base(self) -> list[str]:
        return [NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(self.dir / "proxy.conf")]

    def _check_config(self) -> None:
        done = subprocess.run(self._base() + ["-t", "-q"], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise SubjectFailed(f"nginx refuses its configuration: {(done.stderr or done.stdout).strip()[-500:]}")

    def _launch(self) -> None:
        self._check_config()
        with open(self.dir / "nginx.out", "wb") as log:
            self.processes.append(subprocess.Popen(self._base(), stdout=log, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL))

    @property
    def master(self) -> subprocess.Popen:
        return self.processes[0]

    def _workers(self) -> dict[int, bool]:
        """{pid: shutting down} of the master's worker processes."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.master.pid and "worker process" in cmdline:
                found[int(entry.name)] = "shutting down" in cmdline
        return found

    def _reload(self) -> object:
        self._check_config()
        old = set(self._workers())
        self.master.send_signal(signal.SIGHUP)
        # the new configuration is in force once a worker started after the signal runs
        wait_until(lambda: any(pid not in old and not down for pid, down in self._workers().items()),
                   RELOAD_TIMEOUT, "nginx to start workers on the new configuration")
        return old

    def _wait_in_rotation(self, names: list[str]) -> None:
        if self.master.poll() is not None:
            raise SubjectFailed(f"nginx exited {self.master.returncode}: "
                                f"{(self.dir / 'error.log').read_text(errors='replace')[-500:]}")
        # nginx checks nothing itself: the replicas answered directly (Backends.run)
        # before they were written into the configuration now in force

    def _wait_old_gone(self, token: object) -> None:
        wait_until(lambda: not set(token) & set(self._workers()), RELOAD_TIMEOUT,
                   "nginx's old workers to finish their requests")


#: Profile kind -> Subject class. A swarm's routing mesh ("swarm-mesh") and
#: dnsrr services ("swarm-dnsrr") have their own module (meshsubject.SWARM_SUBJECTS).
SUBJECT_KINDS: dict[str, type[Subject]] = {"haproxy": HaproxySubject, "nginx": NginxSubject}
