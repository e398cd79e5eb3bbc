"""`mainline doctor` on the Docker hosts of MAINLINE_DOCKER_HOSTS, through the CLI, against the real
`tls` engine (tcp:// with mutual TLS) and `ssh` engine (through a real sshd) that
`scripts/services.sh up` starts, and a host that is down: one line per host with the engine's
version, or what is wrong and its fix; then each thing an operator gets wrong, named; never key
material."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.registry_world import free_port

ROOT = Path(__file__).resolve().parents[2]
STATE = Path("/tmp/mainline-services")  # scripts/services.sh's default state directory
TLS_URL, SSH_URL = "tcp://127.0.0.1:2376", "ssh://root@127.0.0.1:2222"
DEPLOY_YML = f"""service: doctored
environments:
  production:
    auto_deploy: true
    hosts:
      - {SSH_URL}
      - url: {TLS_URL}
        tls: engines/tls
"""


def services_up() -> None:
    done = subprocess.run([str(ROOT / "scripts" / "services.sh"), "up"], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, MAINLINE_STATE_DIR=str(STATE)))
    assert done.returncode == 0, done.stdout + done.stderr


def line_of(output: str, start: str) -> str:
    found = [line for line in output.splitlines() if line.startswith(start)]
    assert len(found) == 1, (start, output)
    return found[0]


@pytest.mark.docker
def test_doctor_connects_to_each_docker_host_and_names_the_fix_of_each_that_fails(wired, mainline, tmp_path,
                                                                                 monkeypatch):
    services_up()
    secrets = tmp_path / "secrets"
    shutil.copytree(STATE / "engines" / "tls" / "certs", secrets / "engines" / "tls")
    # The tcp:// host's tls: directory comes from the deploy.yml Mainline last read.
    wired.store.upsert_service("doctored", "acme/doctored", "https://example.invalid/acme/doctored.git", "master",
                               config_text=DEPLOY_YML, config_sha="1" * 40)
    down = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MAINLINE_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("MAINLINE_DOCKER_HOSTS", f"unix:///var/run/docker.sock, {TLS_URL}, {SSH_URL}, {down}")
    monkeypatch.setenv("MAINLINE_SSH_KEY", str(STATE / "sshd" / "id_ed25519"))
    monkeypatch.setenv("MAINLINE_SSH_KNOWN_HOSTS", str(STATE / "sshd" / "known_hosts"))

    good = mainline("doctor", "--only", "docker-hosts", "--docker-tls", f"{down}=engines/tls")

    assert good.exit_code == 1, good.output  # the host that is down
    assert line_of(good.output, "ok   docker hosts: MAINLINE_SSH_KEY: ").endswith(", mode 0600")
    assert "1 host(s) known" in line_of(good.output, "ok   docker hosts: MAINLINE_SSH_KNOWN_HOSTS: ")
    assert "connected: Docker " in line_of(good.output, "ok   docker host: unix:///var/run/docker.sock: ")
    assert line_of(good.output, f"ok   docker host: {TLS_URL}: connected with mutual TLS (engines/tls): Docker ")
    assert " (API 1." in line_of(good.output, f"ok   docker host: {SSH_URL}: connected over SSH: Docker ")
    assert "-> fix: is dockerd listening on" in line_of(
        good.output, f"FAIL docker host: {down}: not answering: nothing accepts connections at")
    assert good.output.rstrip().endswith("5 ok or skipped, 1 failing")

    # Now what an operator gets wrong: a new key nobody authorised, readable by others; a host
    # name its known_hosts does not hold; a ca.pem that did not sign the engine; a key.pem missing.
    bad = tmp_path / "bad"
    bad.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(bad / "key")], check=True, timeout=30)
    (bad / "key").chmod(0o644)
    shutil.copytree(secrets / "engines" / "tls", secrets / "wrong-ca")
    shutil.copy(secrets / "wrong-ca" / "cert.pem", secrets / "wrong-ca" / "ca.pem")
    shutil.copytree(secrets / "engines" / "tls", secrets / "no-key")
    (secrets / "no-key" / "key.pem").unlink()
    unknown, other = "ssh://root@localhost:2222", "tcp://localhost:2376"
    monkeypatch.setenv("MAINLINE_DOCKER_HOSTS", f"{SSH_URL},{unknown},{TLS_URL},{other}")
    monkeypatch.setenv("MAINLINE_SSH_KEY", str(bad / "key"))

    wrong = mainline("doctor", "--only", "docker-hosts", "--docker-tls", f"{TLS_URL}=wrong-ca",
                     "--docker-tls", f"{other}=no-key")

    assert wrong.exit_code == 1
    assert line_of(wrong.output, "FAIL docker hosts: MAINLINE_SSH_KEY: ").endswith(
        f"is readable by others (mode 0644) -> fix: chmod 600 {bad / 'key'}")
    refused = line_of(wrong.output, f"FAIL docker host: {SSH_URL}: sshd on 127.0.0.1:2222 refused {bad / 'key'}")
    assert f"append {bad / 'key'}.pub to ~root/.ssh/authorized_keys" in refused
    assert 'command="docker system dial-stdio"' in refused
    assert f"-> fix: `ssh-keyscan -p 2222 localhost >> {STATE / 'sshd' / 'known_hosts'}`" in line_of(
        wrong.output, f"FAIL docker host: {unknown}: [localhost]:2222's host key is unknown")
    assert f"into {secrets / 'wrong-ca' / 'ca.pem'} the CA that signed" in line_of(
        wrong.output, f"FAIL docker host: {TLS_URL}: the engine's certificate is not signed by")
    assert line_of(wrong.output, f"FAIL docker host: {other}: TLS material missing: {secrets / 'no-key' / 'key.pem'}")
    for key in (bad / "key", STATE / "sshd" / "id_ed25519", secrets / "engines" / "tls" / "key.pem"):
        body = [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
        assert not any(part in good.output + wrong.output for part in body)
    public = (bad / "key.pub").read_text().split()[1]
    assert public not in wrong.output
