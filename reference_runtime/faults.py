"""Fault injection for crash tests: ``REFENGINE_FAULT=<point>`` makes the
process that reaches ``point(<point>)`` SIGKILL itself there, so a test can
stop refengine deterministically between two steps of a write and then
check that nothing complete was lost (``refengine system check``).

Points are named ``<command>:<step>``; the ones placed in the code::

    create:after-dir           container dir made and name reserved, nothing in it
    create:after-prepare       layer dirs, hosts files, volumes made; no config.json
    create:after-config        config.json written, no state.json
    start:locked               the CLI holds the container lock, no supervisor yet
    start:after-spawn          the supervisor runs (and the container, or its error)
    supervisor:after-cgroup    (the supervisor) cgroup made, container not started
    supervisor:after-start     (the supervisor) the container runs, state "running"
    rm:after-config-unlink     config.json gone, the directory still in place
    rm:after-rename            the directory renamed to .trash-<id>, not purged
    store:staged               blobs and layers unpacked under tmp/, lock not taken
    store:installed-blobs      (under the store lock) blobs moved into place
    store:installed-layers     (under the store lock) layers moved in, index not written
    store:discarded            (rmi) index written, layer dirs moved to tmp/trash-*
    load:read                  the archive is read into tmp/, nothing staged
    commit:layer-written       the container's layer tar is written under tmp/
    build:step-committed       a build step's image is stored, the build goes on
    volume-rm:after-meta       volume.json unlinked, the data not yet removed

Not armed (the variable unset), :func:`point` is a comparison; engine code on
``refengine run``'s hot path does not even import this module (see
``state.fault``).
"""

import os

ARMED = os.environ.get("REFENGINE_FAULT", "")


def point(name: str) -> None:
    """SIGKILL this process if ``REFENGINE_FAULT`` names this point."""
    if ARMED and ARMED == name:
        os.kill(os.getpid(), 9)
