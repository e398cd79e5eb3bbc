#!/usr/bin/env bash
# Make the base image Mainline's Dockerfile starts FROM, `python:3.11-slim`, on a machine that
# cannot pull it: Debian bookworm from the configured Debian mirror (debootstrap), with Python 3.11
# from Debian's packages (python3, python3-venv), imported into the local engine under that tag.
# Idempotent: does nothing when the engine already has the tag (pulled or made here before).
# Usage: scripts/python-base.sh [TAG]      (as root; needs the Debian package `debootstrap`)
set -euo pipefail
TAG=${1:-python:3.11-slim}
if docker image inspect "$TAG" >/dev/null 2>&1; then echo "python-base: $TAG is already in the engine"; exit 0; fi
if ! command -v debootstrap >/dev/null; then
  echo "python-base: debootstrap is missing: apt-get install -y debootstrap (make test installs it)" >&2; exit 1
fi
# The mirror apt itself uses here (deb822 sources or a classic sources.list).
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(mktemp -d /tmp/python-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "python-base: debootstrap bookworm from $MIRROR (about a minute and a half)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOT" "$MIRROR" \
  >"$ROOT.log" 2>&1 || { tail -20 "$ROOT.log" >&2; exit 1; }
# Where python:3.11-slim puts its interpreter; apt's caches and lists are not part of an image.
ln -sf /usr/bin/python3 "$ROOT/usr/local/bin/python"
ln -sf /usr/bin/python3 "$ROOT/usr/local/bin/python3"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/*
tar -C "$ROOT" -c . | docker import \
  -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' \
  -c 'CMD ["python3"]' -m "debootstrap bookworm + Debian's python3 (scripts/python-base.sh)" - "$TAG" >/dev/null
rm -f "$ROOT.log"
echo "python-base: $TAG made from Debian bookworm ($(docker run --rm "$TAG" python3 --version))"
