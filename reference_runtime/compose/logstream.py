"""``logs`` and attached ``up``: the json-file logs of several containers as one
stream, each line prefixed with its container's name without the project's, padded to
the longest (``web-1  | hello``, docker compose v2's layout; stdout and stderr both to
stdout, as docker compose writes them), in time order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ..engine import logs as json_logs
from ..errors import RefError
from .backend import Container, Engine
from .labels import PROJECT


def _prefixes(containers: list[Container], enabled: bool) -> dict[str, str]:
    """docker compose v2's prefix: the container's name without the project's (``web-1``),
    padded to the longest, then ``  | ``."""
    if not enabled:
        return {c.id: "" for c in containers}
    names = {c.id: short_name(c) for c in containers}
    width = max((len(n) for n in names.values()), default=0)
    return {cid: f"{name.ljust(width)}  | " for cid, name in names.items()}


def short_name(container: Container) -> str:
    project = container.labels.get(PROJECT, "")
    return container.name[len(project) + 1:] if project and container.name.startswith(project + "-") else container.name


def _line(record: dict, prefix: str, timestamps: bool) -> str:
    text = record.get("log", "")
    if not text.endswith("\n"):
        text += "\n"
    return prefix + (f"{record.get('time', '')} " if timestamps else "") + text


def _records(path: str, offset: int) -> tuple[list[dict], int]:
    """The whole records written after ``offset``; the offset after the last whole line."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = [r for r in (json_logs.parse(line) for line in data[:end].splitlines()) if r]
    return records, offset + end


def _tail(tail: str | None) -> int | None:
    return json_logs.parse_tail(tail) if tail is not None else None


def dump(engine: Engine, containers: list[Container], *, prefix: bool, timestamps: bool,
         tail: str | None = None) -> None:
    """Every container's log so far, merged by time."""
    prefixes = _prefixes(containers, prefix)
    merged = []
    for c in containers:
        records, _ = _records(engine.log_path(c), 0)
        records = json_logs.select(records, tail=_tail(tail))
        merged += [(r.get("time", ""), i, c.id, r) for i, r in enumerate(records)]
    merged.sort(key=lambda item: (item[0], item[1]))
    sys.stdout.write("".join(_line(r, prefixes[cid], timestamps) for _, _, cid, r in merged))
    sys.stdout.flush()


def follow(engine: Engine, containers: list[Container], *, prefix: bool, timestamps: bool,
           tail: str | None = None, stop: Callable[[], bool] = lambda: False,
           stop_on_first_exit: bool = False, announce_exit: bool = False) -> None:
    """The logs so far, then new lines as they come, until every container has stopped
    (or one has, with ``stop_on_first_exit``) or ``stop()`` says so."""
    prefixes = _prefixes(containers, prefix)
    offsets = {}
    for c in containers:
        records, offsets[c.id] = _records(engine.log_path(c), 0)
        for r in json_logs.select(records, tail=_tail(tail)):
            sys.stdout.write(_line(r, prefixes[c.id], timestamps))
    sys.stdout.flush()
    live = {c.id: c for c in containers}
    while live and not stop():
        wrote = False
        for cid, c in list(live.items()):
            records, offsets[cid] = _records(engine.log_path(c), offsets[cid])
            for r in records:
                sys.stdout.write(_line(r, prefixes[cid], timestamps))
                wrote = True
            try:
                current = engine.refresh(c)
            except RefError:  # removed meanwhile (run --rm): its log went with it
                del live[cid]
                continue
            if not current.running and current.status not in ("restarting", "created"):
                time.sleep(0.05)  # the supervisor writes the last lines just before it records the exit
                records, offsets[cid] = _records(engine.log_path(c), offsets[cid])
                for r in records:
                    sys.stdout.write(_line(r, prefixes[cid], timestamps))
                del live[cid]
                if announce_exit:  # attached up, as docker compose
                    sys.stdout.write(f"{short_name(c)} exited with code {current.exit_code}\n")
                if stop_on_first_exit:
                    sys.stdout.flush()
                    return
        sys.stdout.flush()
        if not wrote:
            time.sleep(0.1)
