"""A tiny sample app repository: a FROM-scratch image of busybox httpd, with CGI health.

Why `/health` answers through a redirect: busybox 1.35 httpd runs CGI only for URLs under
`/cgi-bin/`, for files whose suffix has an interpreter (`*.ext:` in httpd.conf, so a dot is
needed in the URL), or as `cgi-bin/index.cgi` for a directory URL ending in `/`; its reverse
proxy (`P:`) is not compiled into Debian's busybox-static. So the image holds an empty
`/www/health/` directory: `GET /health` answers `302 Location: /health/`, and `GET /health/`
runs `cgi-bin/index.cgi`, which reads the image's config file and answers 200 "ok" or 500.
HTTP clients (requests, curl -L, our probes) follow the redirect and see the CGI's status.
"""

from __future__ import annotations

import shutil
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
MODES = ("healthy", "unhealthy", "erroring", "crashing-worker", "failing-release")

# A worker role: beats until stopped, says so on SIGTERM; a "crashing-worker" release exits at once.
WORKER_SH = """\
#!/bin/busybox sh
while IFS='=' read -r key value; do
  if [ "$key" = worker ] && [ "$value" = crash ]; then echo "worker: cannot start"; exit 3; fi
done < /etc/app.conf
echo "worker up in $APP_ENV"
trap 'echo "worker: stopping"; exit 0' TERM
while :; do /bin/busybox sleep 1; done
"""
# A release command that tries to leak its secret into its output (which must come back masked);
# a "failing-release" release fails it.
RELEASE_SH = """\
#!/bin/busybox sh
echo "migrating the $APP_ENV database at $DATABASE_URL"
while IFS='=' read -r key value; do
  if [ "$key" = release ] && [ "$value" = fail ]; then echo "migration failed"; exit 1; fi
done < /etc/app.conf
echo "migrated"
"""
WORKER_COMMAND = "/bin/busybox sh /worker.sh"
RELEASE_COMMAND = "/bin/busybox sh /release.sh"

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
# A second copy as /bin/sh (busybox picks the applet by its name), so that repo checks, run as
# `/bin/sh -c RUN`, have a shell. No RUN step: the engine here has no network for builds.
COPY busybox /bin/sh
COPY www /www
COPY app.conf /etc/app.conf
# The worker role and the release command of the real-app story (issue 16).
COPY worker.sh /worker.sh
COPY release.sh /release.sh
# $PORT is given by the target at run time; busybox sh expands it.
CMD ["/bin/busybox", "sh", "-c", "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"]
"""

# Shell builtins only (read, printf, case): the image has no other commands.
INDEX_CGI = """\
#!/bin/busybox sh
health=fail root=500 version=unknown
while IFS='=' read -r key value; do
  case "$key" in
    health) health=$value ;;
    root) root=$value ;;
    version) version=$value ;;
  esac
done < /etc/app.conf
answer() { printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "$1" "$2"; }
case "$REQUEST_URI" in
  /health/*|/health)
    if [ "$health" = ok ]; then answer "200 OK" ok; else answer "500 Internal Server Error" "unhealthy: $health"; fi ;;
  *)
    if [ "$root" = 200 ]; then answer "200 OK" "$version"
    else answer "500 Internal Server Error" "error from $version"; fi ;;
esac
"""

DEPLOY_YML = """\
service: webapp
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    strategy: rolling
    replicas: 2
    listen: "{listen}"
health: {{path: /health, interval: 0.5s, failures: 3, bake: 5s, timeout: 20s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: pull-request}}
"""


def write_sample_app(dest: Path, version: str, mode: str = "healthy", listen: str = "127.0.0.1:8080") -> None:
    """Write the app repository for `version` ("webapp v2") into `dest`.

    mode: "healthy"; "unhealthy" (/health answers 500); "erroring" (health ok, `GET /` 500).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    dest = Path(dest)
    www = dest / "www"
    (www / "cgi-bin").mkdir(parents=True, exist_ok=True)
    # The directory makes /health a directory URL, which is what routes it to index.cgi.
    (www / "health").mkdir(exist_ok=True)
    (www / "health" / ".keep").write_text("")
    shutil.copyfile(BUSYBOX, dest / "busybox")
    (dest / "busybox").chmod(0o755)
    cgi = www / "cgi-bin" / "index.cgi"
    cgi.write_text(INDEX_CGI)
    cgi.chmod(0o755)
    index = www / "index.html"
    if mode == "erroring":
        # Without index.html, `GET /` falls through to index.cgi, which answers 500.
        index.unlink(missing_ok=True)
    else:
        index.write_text(version + "\n")
    health = "fail" if mode == "unhealthy" else "ok"
    root = "500" if mode == "erroring" else "200"
    worker = "crash" if mode == "crashing-worker" else "ok"
    release = "fail" if mode == "failing-release" else "ok"
    (dest / "app.conf").write_text(f"version={version}\nhealth={health}\nroot={root}\nworker={worker}\n"
                                   f"release={release}\n")
    for name, script in (("worker.sh", WORKER_SH), ("release.sh", RELEASE_SH)):
        (dest / name).write_text(script)
    (dest / "Dockerfile").write_text(DOCKERFILE)
    (dest / ".github").mkdir(exist_ok=True)
    (dest / ".github" / "deploy.yml").write_text(DEPLOY_YML.format(listen=listen))
