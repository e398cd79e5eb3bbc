"""`mainline doctor --only docker-hosts` on what needs no engine to tell: the settings of several
Docker hosts (MAINLINE_DOCKER_HOSTS, MAINLINE_SSH_KEY, MAINLINE_SSH_KNOWN_HOSTS, the tls:
directories) and hosts that do not answer, each failing line naming its fix. The lines of hosts
that answer, over tcp:// with TLS and ssh://, are in tests/e2e/test_doctor_hosts.py."""

from __future__ import annotations

import subprocess

from tests.registry_world import free_port


def test_without_docker_hosts_the_doctor_says_environments_use_the_workers_engine(mainline, monkeypatch):
    monkeypatch.delenv("MAINLINE_DOCKER_HOSTS", raising=False)

    result = mainline("doctor", "--only", "docker-hosts")

    assert result.exit_code == 0, result.output
    assert "--   docker hosts: MAINLINE_DOCKER_HOSTS: not set: environments run on the worker's own engine" \
        in result.output


def test_each_wrong_setting_of_docker_hosts_is_a_failing_line_with_its_fix(mainline, tmp_path, monkeypatch):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(key)], check=True,
                   timeout=30)
    port = free_port()
    monkeypatch.setenv("MAINLINE_DOCKER_HOSTS", f"tcp://10.0.0.5:2376, ssh://deploy@127.0.0.1:{port},"
                       " tcp://127.0.0.1:2376, unix:///nonexistent/docker.sock, http://10.0.0.9:2375")
    monkeypatch.setenv("MAINLINE_SSH_KEY", str(key))
    monkeypatch.setenv("MAINLINE_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    monkeypatch.delenv("MAINLINE_SECRETS_DIR", raising=False)

    result = mainline("doctor", "--only", "docker-hosts", "--docker-tls", "tcp://127.0.0.1:2376=engines/tls")

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "FAIL docker host: http://10.0.0.9:2375: a Docker host is unix:///path, tcp://HOST:PORT" in result.output
    assert any(line.startswith("FAIL docker hosts: MAINLINE_SSH_KEY: ") and "protected by a passphrase" in line
               and "ssh-keygen -t ed25519 -N ''" in line for line in lines), result.output
    assert f"FAIL docker hosts: MAINLINE_SSH_KNOWN_HOSTS: no file at {tmp_path / 'known_hosts'}" in result.output
    assert "ssh-keyscan -p PORT HOST >> FILE" in result.output
    assert ("--   docker host: tcp://10.0.0.5:2376: no deploy.yml Mainline knows names its tls: directory yet; "
            "check it with `mainline doctor --docker-tls tcp://10.0.0.5:2376=DIR`") in result.output
    assert ("FAIL docker host: tcp://127.0.0.1:2376: MAINLINE_SECRETS_DIR is not set, and the TLS material "
            "(engines/tls) lives under it") in result.output
    assert "FAIL docker host: unix:///nonexistent/docker.sock: not answering: no engine behind" in result.output
    assert "systemctl start docker" in result.output
    assert f"FAIL docker host: ssh://deploy@127.0.0.1:{port}: " in result.output
    assert result.output.rstrip().endswith("1 ok or skipped, 6 failing")


def test_a_down_ssh_host_and_a_bad_docker_tls_option(mainline, tmp_path, monkeypatch):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    (tmp_path / "known_hosts").write_text("")
    port = free_port()
    monkeypatch.setenv("MAINLINE_DOCKER_HOSTS", f"ssh://deploy@127.0.0.1:{port}")
    monkeypatch.setenv("MAINLINE_SSH_KEY", str(key))
    monkeypatch.setenv("MAINLINE_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))

    result = mainline("doctor", "--only", "docker-hosts")

    assert result.exit_code == 1
    assert f"ok   docker hosts: MAINLINE_SSH_KEY: {key}: ED25519 key SHA256:" in result.output
    assert "ok   docker hosts: MAINLINE_SSH_KNOWN_HOSTS: " in result.output
    assert (f"FAIL docker host: ssh://deploy@127.0.0.1:{port}: not answering: nothing accepts SSH at "
            f"127.0.0.1:{port}") in result.output
    assert f"is sshd running and listening on 127.0.0.1:{port}" in result.output
    assert key.read_text().splitlines()[1] not in result.output

    refused = mainline("doctor", "--only", "docker-hosts", "--docker-tls", "10.0.0.5:2376")
    assert refused.exit_code == 2 and "expected tcp://HOST:PORT=DIR" in refused.output
