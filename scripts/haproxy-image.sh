#!/usr/bin/env bash
# Build the load balancer's image for the tests and the demo from this machine's own HAProxy:
# FROM scratch (no base image can be pulled here) with /usr/sbin/haproxy, socat (the runtime
# API's client, run with `docker exec`), busybox's sh, and every library they load, then push it.
# A real installation uses deploy/haproxy/Dockerfile instead (haproxy:2.8-alpine + socat).
# Usage: scripts/haproxy-image.sh IMAGE   (e.g. 127.0.0.1:5000/mainline-haproxy:local)
set -euo pipefail
IMAGE=${1:?usage: $0 IMAGE}
if docker image inspect "$IMAGE" >/dev/null 2>&1 && docker push "$IMAGE" >/dev/null 2>&1; then exit 0; fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/bin" "$ctx/root/usr/sbin" "$ctx/root/usr/bin" "$ctx/root/mainline" "$ctx/root/tmp"
cp /usr/sbin/haproxy "$ctx/root/usr/sbin/haproxy"
cp /usr/bin/socat "$ctx/root/usr/bin/socat"
cp /bin/busybox "$ctx/root/bin/busybox"
ln -s busybox "$ctx/root/bin/sh"
for lib in $( (ldd /usr/sbin/haproxy; ldd /usr/bin/socat) | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$ctx/root$(dirname "$lib")"
  cp -L "$lib" "$ctx/root$lib"
done
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENV PATH=/usr/sbin:/usr/bin:/bin
CMD ["haproxy", "-v"]
DOCKERFILE
docker build -q -t "$IMAGE" "$ctx" >/dev/null
docker push "$IMAGE" >/dev/null
