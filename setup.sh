#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for the conformance framework:
# Debian packages, the project's virtualenv in .venv, and a running dockerd.
#
#   ./setup.sh                 install everything and start dockerd if needed
#   ./setup.sh --install-only  install, start nothing (CI starts its own dockerd)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
    docker.io podman runc catatonit skopeo docker-registry busybox-static
    iptables uidmap python3-venv curl chromium gcc libc6-dev
    netavark aardvark-dns  # podman's network backend with name resolution (suites/network)
    docker-compose podman-compose  # suites/compose's subjects; docker-compose also ships the Compose schema
    haproxy nginx wrk  # suites/ingress's balancers (run as child processes, never as services); wrk: the ingress bench
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The ingress suite runs haproxy and nginx as its own child processes on free
# loopback ports: the system services apt may have started (port 80) stop here.
for svc in nginx haproxy; do
    if [[ -x /etc/init.d/$svc ]] && /etc/init.d/$svc status >/dev/null 2>&1; then
        /etc/init.d/$svc stop >/dev/null 2>&1 || true
    fi
done

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
# compat: a path entry instead of setuptools' import-hook finder, which costs
# every refengine start ~10 ms of imports (pathlib, fnmatch, re).
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]" --config-settings editable_mode=compat
# refengine starts a fresh interpreter per command: without bytecode on disk
# (PYTHONDONTWRITEBYTECODE is set on some machines) every start recompiles.
.venv/bin/python -m compileall -q conformance reference_runtime >/dev/null

if [[ "${1:-}" == "--install-only" ]]; then
    exit 0
fi

# dockerd: started here when no daemon answers (the machines have no systemd).
if ! /usr/bin/docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd (log: /var/log/dockerd-conformance.log)"
    nohup dockerd >/var/log/dockerd-conformance.log 2>&1 &
    for _ in $(seq 60); do
        /usr/bin/docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    /usr/bin/docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd-conformance.log" >&2; exit 1; }
fi
echo "setup: ready"
