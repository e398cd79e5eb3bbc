#!/bin/sh
# The image's entry point: `serve` listens on all of the container's addresses on $PORT (a later
# --host or --port wins); anything else is a `mainline` command (worker, db upgrade, doctor, ...).
set -e
if [ "$1" = serve ]; then
  shift
  set -- serve --host "${MAINLINE_HOST:-0.0.0.0}" --port "${PORT:-8000}" "$@"
fi
exec /opt/mainline/bin/mainline "$@"
