"""Shared pieces of the ingress suite: documentation addresses, the load each
check sends, and its bounds.

The checks measure a load-balancing subject (``--balancer NAME``,
:mod:`conformance.balancers`) under locust load (:mod:`conformance.load`):
each threshold is written in the check, with its reason. Every load run is
bounded: at most :data:`USERS` users (each with one request in flight at a
time; the keep-alive check uses 10, conformance.load's MAX_USERS),
:data:`RUN_TIME` seconds, and a request cap.

What the backends do with keep-alive (verified with busybox 1.35, Debian
12's busybox-static): busybox ``httpd`` answers every request with
``Connection: close`` and closes the connection after one response (a second,
pipelined request on it is never answered). So behind an HTTP proxy
(haproxy, nginx) a client's kept-alive connection ends at the proxy, which
opens a new backend connection per request; behind an L4 balancer (IPVS) the
backend's close ends the client's connection too, and the client's next
request opens a new one, balanced anew: a per-connection balancer cannot be
seen to stick with these backends (the keep-alive check asserts that
connections were reused before it judges stickiness). A per-connection
subject therefore runs the "keepalive" backend (``[settings] backend``,
:func:`conformance.balancers.backend_command`), as haproxy-tcp.toml does.
"""

from __future__ import annotations

from pathlib import Path

from conformance.balancers import Subject
from conformance.load import LoadResult, LoadRun, LoadSpec, run_load, start_load
from conformance.suite_support import ENGINE_DOCS

INGRESS = f"{ENGINE_DOCS}/swarm/ingress/"
SERVICE_CREATE = f"{ENGINE_DOCS}/reference/commandline/service_create/"
SERVICE_UPDATE = f"{ENGINE_DOCS}/reference/commandline/service_update/"
SERVICE_SCALE = f"{ENGINE_DOCS}/reference/commandline/service_scale/"
DRAIN_TUTORIAL = f"{ENGINE_DOCS}/swarm/swarm-tutorial/drain-node/"
HAPROXY_BALANCE = "https://docs.haproxy.org/2.6/configuration.html#4.2-balance"
NGINX_UPSTREAM = "https://nginx.org/en/docs/http/ngx_http_upstream_module.html"

#: Users of every run: each has one request in flight at a time, so at most
#: USERS requests are in flight at any instant.
USERS = 6
#: The longest run (seconds).
RUN_TIME = 20.0
#: How long a check lets the load flow after a change before it stops it (seconds).
SETTLE = 6.0


def spec(subject: Subject, **kwargs) -> LoadSpec:
    """A bounded load on the subject's entry points, from where its clients must run."""
    kwargs.setdefault("users", USERS)
    kwargs.setdefault("run_time", RUN_TIME)
    return LoadSpec(subject.entrypoints(), netns=subject.client_netns(), resolver=subject.resolver(), **kwargs)


def load(subject: Subject, directory: Path, **kwargs) -> LoadResult:
    """Run a load to its end (request cap or run time)."""
    return run_load(spec(subject, **kwargs), directory)


def background(subject: Subject, directory: Path, **kwargs) -> LoadRun:
    """Start a load that goes on while the check changes the subject; flowing when returned."""
    run = start_load(spec(subject, max_requests=20000, **kwargs), directory)
    run.wait_flowing(100)
    return run
