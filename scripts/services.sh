#!/usr/bin/env bash
# Start (idempotently) the real components the tests and the demo need on this machine:
# the Docker engine (host networking only) and an image registry on 127.0.0.1:5000.
# Usage: scripts/services.sh up | down | status
set -euo pipefail
STATE=${MAINLINE_STATE_DIR:-/tmp/mainline-services}
mkdir -p "$STATE"

docker_up() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "services: dockerd is not running and we are not root" >&2; return 1; fi
  rm -f /var/run/docker.pid
  nohup dockerd --bridge=none --iptables=false >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: dockerd did not start; see $STATE/dockerd.log" >&2; tail -20 "$STATE/dockerd.log" >&2; return 1
}

registry_up() {
  if curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<CONF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:5000
CONF
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  for _ in $(seq 1 40); do curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "services: registry did not start; see $STATE/registry.log" >&2; return 1
}

case "${1:-up}" in
  up) docker_up; registry_up; echo "services: dockerd and registry (127.0.0.1:5000) are up" ;;
  down) pkill -f "docker-registry serve" || true ;;
  status) docker info >/dev/null 2>&1 && echo "dockerd: up" || echo "dockerd: down"
          curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && echo "registry: up" || echo "registry: down" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
