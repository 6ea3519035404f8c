"""``service logs``: the log lines of tasks, read where the tasks ran.

A task's output is its container's json-file log on the node that ran it, as
with docker. Every node's daemon answers ``logs.read`` for its own tasks over
its mutually authenticated server (only managers may call it); the manager the
CLI asked merges the nodes' answers (:func:`merge`), in time order for a
snapshot, as they come for ``--follow``.
"""

from __future__ import annotations

import asyncio
import os
from typing import AsyncIterator

from ..engine import logs as enginelogs
from ..engine.state import Root, parse_rfc3339
from . import taskspec

#: How often a followed log file is polled for new lines (seconds).
FOLLOW_POLL = 0.2


def _log_path(root: Root, cid: str) -> str:
    return os.path.join(root.container_dir(cid), f"{cid}-json.log")


def containers_of(root: Root, task_ids: set[str]) -> dict[str, str]:
    """Task ID -> container ID, for the tasks of ``task_ids`` this node ran."""
    return {task_id: cid for task_id, (cid, _) in taskspec.task_containers(root).items() if task_id in task_ids}


def _entry(task_id: str, record: dict) -> dict:
    return {"task_id": task_id, "stream": record.get("stream", "stdout"), "line": record.get("log", ""),
            "time": record.get("time", "")}


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return parse_rfc3339(value)


async def read(root_path: str, params: dict) -> AsyncIterator[dict]:
    """The ``logs.read`` handler: ``{task_ids, tail, since, follow}`` -> entries
    ``{task_id, stream, line, time}``; with ``follow``, new lines until the
    caller goes away (the RPC layer cancels this generator)."""
    root = Root(root_path)
    wanted = {str(t) for t in params.get("task_ids") or []}
    tail = enginelogs.parse_tail(str(params.get("tail", "all")))
    since = _since(params.get("since"))
    containers = containers_of(root, wanted)
    offsets: dict[str, int] = {}
    for task_id, cid in sorted(containers.items()):
        path = _log_path(root, cid)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        offsets[task_id] = len(data)
        records = [r for r in (enginelogs.parse(line) for line in data.splitlines()) if r]
        for record in enginelogs.select(records, since=since, tail=tail, time_of=parse_rfc3339):
            yield _entry(task_id, record)
    if not params.get("follow"):
        return
    while True:
        await asyncio.sleep(FOLLOW_POLL)
        for task_id, cid in containers_of(root, wanted).items():
            path = _log_path(root, cid)
            try:
                with open(path, "rb") as f:
                    f.seek(offsets.get(task_id, 0))
                    data = f.read()
            except OSError:
                continue
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
            offsets[task_id] = offsets.get(task_id, 0) + len(complete)
            for line in complete.splitlines():
                record = enginelogs.parse(line)
                if record:
                    yield _entry(task_id, record)


async def merge(sources: list[AsyncIterator[dict]], follow: bool) -> AsyncIterator[dict]:
    """One stream of the nodes' streams: sorted by time for a snapshot (each node's
    lines are in order, the nodes' clocks are this machine's), as they come when
    following."""
    if not follow:
        entries = []
        for source in sources:
            entries += [entry async for entry in source]
        entries.sort(key=lambda e: e.get("time", ""))
        for entry in entries:
            yield entry
        return
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    done = object()

    async def pump(source: AsyncIterator[dict]) -> None:
        try:
            async for entry in source:
                await queue.put(entry)
        finally:
            await queue.put(done)

    pumps = [asyncio.get_running_loop().create_task(pump(s)) for s in sources]
    try:
        remaining = len(pumps)
        while remaining:
            item = await queue.get()
            if item is done:
                remaining -= 1
                continue
            yield item
    finally:
        for job in pumps:
            job.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
