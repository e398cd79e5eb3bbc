"""The chaos suite's set-up: the scale rig of bench/rig.py (PostgreSQL, Redis, the GitHub stand-in
behind a fault proxy, two `mainline serve` and three `mainline worker` processes) on the chaos
Docker engine and the chaos registry that `scripts/services.sh up` starts next to the shared ones.
Faults are done to those, never to the shared dockerd or registry others use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

STATE = Path("/tmp/mainline-services")  # scripts/services.sh's default state directory
CHAOS_ENGINE = f"unix://{STATE}/engines/chaos/docker.sock"
CHAOS_REGISTRY = f"127.0.0.1:{os.environ.get('MAINLINE_CHAOS_REGISTRY_PORT', '5013')}"
# The second Docker host of the chaos services: the `ssh` engine, reached by Mainline over ssh://
# through the sshd services.sh runs (its key and known hosts made there), and by the test directly.
SSH_HOST = f"ssh://root@127.0.0.1:{os.environ.get('MAINLINE_SSHD_PORT', '2222')}"
SSH_ENGINE = f"unix://{STATE}/engines/ssh/docker.sock"
SSH_DATA = STATE / "engines" / "ssh" / "data"  # its --data-root: what it keeps while it is stopped
SSH_SETTINGS = {"MAINLINE_SSH_KEY": str(STATE / "sshd" / "id_ed25519"),
                "MAINLINE_SSH_KNOWN_HOSTS": str(STATE / "sshd" / "known_hosts")}


def services(*args: str) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "services.sh"), *args], capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, MAINLINE_STATE_DIR=str(STATE)))
    if done.returncode != 0:
        pytest.fail(f"scripts/services.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")


@pytest.fixture(scope="session")
def chaos_engine() -> str:
    """The chaos dockerd (its own data-root, exec-root, pid file and socket) and its registry, and
    the `ssh` engine (the chaos services' second host)."""
    services("up")
    for engine in (CHAOS_ENGINE, SSH_ENGINE):
        client = docker.DockerClient(base_url=engine)
        try:
            client.ping()
        finally:
            client.close()
    return CHAOS_ENGINE
