#!/usr/bin/env bash
# Start (idempotently) the real components the tests and the demo need on this machine:
# the Docker engine (host networking only) and an image registry on 127.0.0.1:5000.
# Usage: scripts/services.sh up | down | status (and the engines' commands, see below)
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

# -- extra Docker engines (issue 13): chaos and multi-host ----------------------------------------
# Each one its own dockerd with its own --data-root, --exec-root, --pidfile and unix socket under
# $STATE/engines/NAME, host networking only. `chaos` is restarted by tests/chaos (never the shared
# engine); `tls` also listens on tcp://127.0.0.1:$ENGINE_TLS_PORT with mutual TLS (certificates made
# here, in $STATE/engines/tls/certs); `ssh` is reached over ssh:// through a real sshd on
# 127.0.0.1:$SSHD_PORT with a key made here ($STATE/sshd/id_ed25519), whose authorized_keys entry
# may only run `docker system dial-stdio` against that engine.
ENGINE_TLS_PORT=${MAINLINE_ENGINE_TLS_PORT:-2376}
SSHD_PORT=${MAINLINE_SSHD_PORT:-2222}
CHAOS_REGISTRY_PORT=${MAINLINE_CHAOS_REGISTRY_PORT:-5013}

engine_sock() { echo "unix://$STATE/engines/$1/docker.sock"; }

engine_up() {  # NAME [extra dockerd args...]
  local name=$1; shift
  local dir="$STATE/engines/$name"
  mkdir -p "$dir"
  if docker -H "$(engine_sock "$name")" info >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "services: engine $name is not running and we are not root" >&2; return 1; fi
  if [ -f "$dir/docker.pid" ] && kill -0 "$(cat "$dir/docker.pid")" 2>/dev/null; then
    for _ in $(seq 1 60); do docker -H "$(engine_sock "$name")" info >/dev/null 2>&1 && return 0; sleep 0.5; done
  fi
  rm -f "$dir/docker.pid" "$dir/docker.sock"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" -H "$(engine_sock "$name")" "$@" >>"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker -H "$(engine_sock "$name")" info >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: engine $name did not start; see $dir/dockerd.log" >&2; tail -20 "$dir/dockerd.log" >&2; return 1
}

engine_down() {  # NAME: stop that engine only (its pid file), leaving its containers to restart with it
  local dir="$STATE/engines/$1"
  [ -f "$dir/docker.pid" ] || return 0
  local pid; pid=$(cat "$dir/docker.pid")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

tls_material() {
  local certs="$STATE/engines/tls/certs"
  [ -f "$certs/key.pem" ] && return 0
  mkdir -p "$certs"; chmod 700 "$certs"
  ( cd "$certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mainline test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile server.ext -out server-cert.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=mainline" -keyout key.pem -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile client.ext -out cert.pem 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl )
}

sshd_up() {
  local dir="$STATE/sshd"
  mkdir -p "$dir"; chmod 700 "$dir"
  if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then return 0; fi
  if ! [ -x /usr/sbin/sshd ]; then echo "services: /usr/sbin/sshd missing: apt-get install openssh-server" >&2; return 1; fi
  [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -f "$dir/host_ed25519"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C mainline-test -f "$dir/id_ed25519"
  echo "command=\"docker -H $(engine_sock ssh) system dial-stdio\",no-pty,no-agent-forwarding,no-X11-forwarding,no-port-forwarding $(cat "$dir/id_ed25519.pub")" >"$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  echo "[127.0.0.1]:$SSHD_PORT $(cat "$dir/host_ed25519.pub")" >"$dir/known_hosts"
  cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
CONF
  mkdir -p /run/sshd
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  for _ in $(seq 1 20); do [ -f "$dir/sshd.pid" ] && return 0; sleep 0.25; done
  echo "services: sshd did not start; see $dir/sshd.log" >&2; return 1
}

chaos_registry() {  # up | down: a registry of its own for tests/chaos (never the shared one)
  local dir="$STATE/chaos-registry"
  mkdir -p "$dir/data"
  if [ "$1" = down ]; then
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null; rm -f "$dir/pid"; return 0
  fi
  if curl -fsS "http://127.0.0.1:$CHAOS_REGISTRY_PORT/v2/" >/dev/null 2>&1; then return 0; fi
  cat >"$dir/registry.yml" <<CONF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$CHAOS_REGISTRY_PORT
CONF
  nohup docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 40); do curl -fsS "http://127.0.0.1:$CHAOS_REGISTRY_PORT/v2/" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "services: chaos registry did not start; see $dir/registry.log" >&2; return 1
}

engines_up() {
  engine_up chaos
  tls_material
  local certs="$STATE/engines/tls/certs"
  engine_up tls -H "tcp://127.0.0.1:$ENGINE_TLS_PORT" --tlsverify --tlscacert "$certs/ca.pem" \
    --tlscert "$certs/server-cert.pem" --tlskey "$certs/server-key.pem"
  # Its unix socket answers before its TCP listener is up: wait for the one the tests reach.
  for _ in $(seq 1 60); do
    curl -fsS --cacert "$certs/ca.pem" --cert "$certs/cert.pem" --key "$certs/key.pem" \
      "https://127.0.0.1:$ENGINE_TLS_PORT/_ping" >/dev/null 2>&1 && break
    sleep 0.25
  done
  engine_up ssh
  sshd_up
  chaos_registry up
}

case "${1:-up}" in
  up) docker_up; registry_up
      # The load balancer's image for environments whose HAProxy runs on a Docker host.
      "$(dirname "$0")/haproxy-image.sh" "${MAINLINE_HAPROXY_IMAGE:-127.0.0.1:5000/mainline-haproxy:local}" ||
        echo "services: the load balancer image was not built (needs haproxy, socat, busybox-static)" >&2
      # The extra engines need root (dockerd): without them only tests/chaos cannot run, and says so.
      engines_up || echo "services: the extra Docker engines, sshd or the chaos registry did not start (see above)" >&2
      echo "services: dockerd and registry (127.0.0.1:5000) are up; engines chaos, tls (tcp://127.0.0.1:$ENGINE_TLS_PORT), ssh (ssh://root@127.0.0.1:$SSHD_PORT); chaos registry 127.0.0.1:$CHAOS_REGISTRY_PORT" ;;
  engine-restart) engine_down "$2"; case "$2" in chaos|ssh) engine_up "$2" ;; *) engines_up ;; esac ;;
  engine-down) engine_down "$2" ;;
  engine-up) engines_up ;;
  chaos-registry) chaos_registry "$2" ;;
  down) pkill -f "docker-registry serve" || true ;;
  status) docker info >/dev/null 2>&1 && echo "dockerd: up" || echo "dockerd: down"
          curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && echo "registry: up" || echo "registry: down" ;;
  *) echo "usage: $0 up|down|status|engine-restart NAME|engine-down NAME|engine-up|chaos-registry up|down" >&2; exit 2 ;;
esac
