# Mainline itself. `docker run IMAGE` serves webhooks, Slack, the dashboard, the API and metrics on
# $PORT (8000); `docker run IMAGE worker` runs deploys. Settings come from the environment (README,
# docs/self-hosting.md); state lives in /var/lib/mainline (a volume) unless MAINLINE_DATABASE_URL
# points at PostgreSQL.
#
#   docker build -t mainline .
#
# Offline (no PyPI from inside the build): put wheels of every dependency in ./wheels first
# (`pip wheel -w wheels '.[scale]' setuptools`); the build then installs from them alone.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/mainline/bin:$PATH

# git: the worker clones and reverts; openssh-client: DOCKER_HOST=ssh://; haproxy: the docker
# target's load balancer when the worker runs on the Docker host; tini: signals reach gunicorn.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git openssh-client haproxy ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml /src/
# The pattern matches nothing without ./wheels; pyproject.toml keeps COPY from failing on that.
COPY pyproject.toml wheels* /src/wheels/
RUN python3 -m venv /opt/mainline \
 && if ls /src/wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /src/wheels; fi \
 && python3 -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['scale']))" > /src/requirements.txt \
 && /opt/mainline/bin/pip install --no-cache-dir "$@" -r /src/requirements.txt

COPY README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY checks /src/checks
COPY sandbox /src/sandbox
RUN if ls /src/wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /src/wheels; fi \
 && /opt/mainline/bin/pip install --no-cache-dir --no-deps "$@" /src \
 && rm -rf /src

COPY deploy/docker-entrypoint.sh /usr/local/bin/mainline-entrypoint
RUN useradd --system --create-home --home-dir /var/lib/mainline --shell /usr/sbin/nologin mainline
USER mainline
WORKDIR /var/lib/mainline
ENV MAINLINE_DATABASE_URL=sqlite:////var/lib/mainline/mainline.db \
    MAINLINE_QUEUE_URL=sqlite:////var/lib/mainline/mainline-queue.db \
    MAINLINE_STATE_DIR=/var/lib/mainline/state \
    PORT=8000
VOLUME ["/var/lib/mainline"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/mainline-entrypoint"]
CMD ["serve"]
