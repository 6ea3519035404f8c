"""The locustfile of suites/ingress: loaded by ``locust -f``, never imported.

Importing locust monkey-patches the whole process with gevent, so this file
runs only inside the ``python -m locust`` subprocess that
:mod:`conformance.load` starts (``tests/conformance/test_load.py`` checks that
no module of the harness imports it). Everything comes from the environment:

    INGRESS_TARGETS       base URLs of the subject's entry points, comma-separated
    INGRESS_TARGET        "round-robin" (each request goes to the next entry point)
                          or an index into INGRESS_TARGETS (every request goes there)
    INGRESS_MODE          "close": a new connection per request (Connection: close);
                          "keepalive": one persistent connection per user (reopened
                          only when the server closes it)
    INGRESS_MAX_REQUESTS  the run stops after this many requests (all users together)
    INGRESS_USER_RATE     requests per second per user (0: as fast as it answers)
    INGRESS_RESOLVER      a DNS server's address, or empty: when set, every new
                          connection asks it for the target's host name and connects
                          to the answer's addresses in order until one accepts, as
                          the standard library's socket.create_connection does with
                          getaddrinfo's list (a dnsrr service: its DNS is its balancer)
    INGRESS_RECORD        the file every request is appended to, one JSON line:
                          {"t": monotonic time, "user": n, "conn": n, "replica": body,
                           "ok": bool, "error": text}

``t`` is ``time.monotonic()`` when the request ended: CLOCK_MONOTONIC is one
clock for every process of the machine, so a check compares it with the
moment it scaled or killed something. ``conn`` counts the connections a user
opened (1, 2, ...): with keep-alive, requests of one ``conn`` travelled on one
TCP connection.
"""

import http.client
import itertools
import json
import os
import time
from urllib.parse import urlsplit

import gevent
from locust import User, constant, constant_throughput, events, task

from conformance.dnsprobe import resolve

TARGETS = [u.strip() for u in os.environ.get("INGRESS_TARGETS", "").split(",") if u.strip()]
TARGET = os.environ.get("INGRESS_TARGET", "round-robin")
MODE = os.environ.get("INGRESS_MODE", "close")
MAX_REQUESTS = int(os.environ.get("INGRESS_MAX_REQUESTS", "0"))
USER_RATE = float(os.environ.get("INGRESS_USER_RATE", "0"))
RECORD = os.environ.get("INGRESS_RECORD", "")
RESOLVER = os.environ.get("INGRESS_RESOLVER", "")
#: One request may take this long before it counts as failed (seconds).
REQUEST_TIMEOUT = 5.0

_user_numbers = itertools.count(1)
_target_turn = itertools.count()
_sent = 0
_record = open(RECORD, "a", buffering=1) if RECORD else None
_environment = None


@events.init.add_listener
def remember_environment(environment, **kwargs):
    global _environment
    _environment = environment


@events.request.add_listener
def record(request_type, name, response_time, response_length, response=None, context=None, exception=None,
           **kwargs):
    """Every request, as one JSON line; and the request cap."""
    global _sent
    context = context or {}
    if _record is not None:
        _record.write(json.dumps({"t": time.monotonic(), "user": context.get("user", 0),
                                  "conn": context.get("conn", 0), "replica": context.get("replica", ""),
                                  "ok": exception is None, "error": "" if exception is None else repr(exception)[:200]})
                      + "\n")
    _sent += 1
    if MAX_REQUESTS and _sent == MAX_REQUESTS and _environment is not None and _environment.runner is not None:
        gevent.spawn(_environment.runner.quit)  # not from inside the user's own greenlet


@events.test_stop.add_listener
def close_record(environment, **kwargs):
    if _record is not None:
        _record.flush()


class IngressUser(User):
    """One client: requests ``/`` from the entry points and records who answered."""

    #: set from INGRESS_USER_RATE: each user's requests per second
    wait_time = constant_throughput(USER_RATE) if USER_RATE > 0 else constant(0)

    def on_start(self):
        self.number = next(_user_numbers)
        self.connections = 0
        self.connection = None
        # keep-alive users each stay on one entry point: spread them over all of them
        self.fixed = int(TARGET) if TARGET != "round-robin" else (self.number - 1) % len(TARGETS)

    def on_stop(self):
        if self.connection is not None:
            self.connection.close()

    def _target(self) -> str:
        if MODE == "keepalive" or TARGET != "round-robin":
            return TARGETS[self.fixed]
        return TARGETS[next(_target_turn) % len(TARGETS)]

    def _connect(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        self.connections += 1
        if not RESOLVER:
            return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=REQUEST_TIMEOUT)
        # the name's DNS answer now, each address in turn until one accepts
        error = None
        for address in resolve(parts.hostname, RESOLVER):
            connection = http.client.HTTPConnection(address, parts.port or 80, timeout=REQUEST_TIMEOUT)
            try:
                connection.connect()
                return connection
            except OSError as exc:
                connection.close()
                error = exc
        raise error

    @task
    def get(self):
        url = self._target()
        began = time.perf_counter()
        exception, length, connection = None, 0, None
        headers = {"Connection": "keep-alive" if MODE == "keepalive" else "close"}
        try:
            # connecting is part of the request: with a resolver it is where a name fails
            if MODE != "keepalive":
                connection = self._connect(url)
            elif self.connection is None:
                connection = self.connection = self._connect(url)
            else:
                connection = self.connection
            context = {"user": self.number, "conn": self.connections, "replica": ""}
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            body = response.read()
            length = len(body)
            context["replica"] = body.decode(errors="replace").strip()
            if response.status != 200:
                exception = RuntimeError(f"HTTP {response.status}")
            if MODE != "keepalive" or response.will_close:
                connection.close()
                self.connection = None
        except Exception as exc:  # any failure is a failed request, recorded
            exception = exc
            context = {"user": self.number, "conn": self.connections, "replica": ""}
            if connection is not None:
                connection.close()
            self.connection = None
        self.environment.events.request.fire(
            request_type="GET", name=url, response_time=(time.perf_counter() - began) * 1000,
            response_length=length, response=None, context=context, exception=exception)
