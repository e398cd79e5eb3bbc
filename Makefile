# Mainline: `make demo` plays the story on this machine; `make test` installs everything and runs the suite.
# Both do their own set-up on a fresh Debian machine with Python 3.11 (as root they install the
# Debian packages they need) and can be run again without breaking anything.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make install`: what running Mainline needs (git clones and reverts, HAProxy for the docker target).
APT_RUNTIME := git haproxy ca-certificates
# `make test` and `make demo` add the rest: the Docker engine and a registry, PostgreSQL, Redis,
# Prometheus, Chromium for the browser tests, debootstrap for the image test's python:3.11-slim.
# openssh-server: scripts/services.sh runs an sshd on 127.0.0.1 to reach a Docker engine over ssh:// (issue 13).
APT_TEST := docker.io docker-registry busybox-static curl chromium fonts-liberation postgresql redis-server prometheus debootstrap openssh-server socat
APT_PACKAGES := $(APT_RUNTIME) $(APT_TEST)

.PHONY: all install system-packages test-deps test-system-packages services lint test demo bench clean

all: test

define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "make: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

system-packages:
	$(call apt_install,$(APT_RUNTIME))

test-system-packages:
	$(call apt_install,$(APT_PACKAGES))

# Running Mainline: the package with PostgreSQL and Redis clients, nothing for tests.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[scale]'
	touch $@

# The tests, the linters and the demo's stand-ins on top.
$(BIN)/.test-installed: pyproject.toml $(BIN)/.installed
	$(BIN)/python -m pip install -q -e '.[scale,test,demo]'
	touch $@

install: system-packages $(BIN)/.installed

test-deps: test-system-packages $(BIN)/.test-installed

services: test-deps
	scripts/services.sh up

# ruff and mypy read their settings from pyproject.toml; .pre-commit-config.yaml runs the same two.
lint: test-deps
	$(BIN)/ruff check bot handlers checks sandbox tests bench
	$(BIN)/mypy
	$(BIN)/python scripts/check_layout.py

test: lint services
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: services
	$(BIN)/mainline demo

bench: services
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mainline mainline.db mainline-queue.db
