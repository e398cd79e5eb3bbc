# Mainline: `make demo` plays the story on this machine; `make test` installs everything and runs the suite.
# Both do their own set-up on a fresh Debian machine with Python 3.11 (as root they install the
# Debian packages they need) and can be run again without breaking anything.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := docker.io docker-registry haproxy busybox-static git curl ca-certificates chromium fonts-liberation postgresql redis-server prometheus

.PHONY: all install system-packages services lint test demo bench clean

all: test

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "make: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[scale,test,demo]'
	touch $@

install: system-packages $(BIN)/.installed

services: install
	scripts/services.sh up

# ruff and mypy read their settings from pyproject.toml; .pre-commit-config.yaml runs the same two.
lint: install
	$(BIN)/ruff check bot handlers checks sandbox tests bench
	$(BIN)/mypy

# The redesign's layout rules (#10): module and class sizes, no import cycle (lazy imports included).
layout: install
	$(BIN)/python scripts/check_layout.py

test: lint services
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: services
	$(BIN)/mainline demo

bench: services
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mainline mainline.db mainline-queue.db
