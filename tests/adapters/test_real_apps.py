"""A real app on real Docker and HAProxy: a web and a worker role, env, a secret from Secrets
Manager (moto) and one from a file, limits, restarts and log rotation; it rolls forward and
back, is repaired when a replica dies or HAProxy is killed, and a secret that cannot be
resolved changes nothing."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import boto3
import pytest
import requests
from moto import mock_aws

from bot.domain.app import AppSpec, Role, Tls
from bot.errors import SecretError
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.target import LABEL_SERVICE, DockerTarget
from tests.adapters.conftest import free_port

ENVIRONMENT = "production"  # the adapters conftest's

DB_URL = "postgres://app:hunter2-very-secret@db/app"
DSN = "https://f00dfeed@sentry.example/42"
WORKER = Role("worker", ("/bin/busybox", "sh", "-c", "while :; do /bin/busybox sleep 1; done"), replicas=1,
              min_ready=0.5, stop_grace=1.0)
APP = AppSpec(env=(("APP_ENV", "production"),),
              secrets=(("DATABASE_URL", "aws-secretsmanager:prod/web/database-url"), ("SENTRY_DSN", "file:sentry-dsn")),
              roles=(Role("web", replicas=2, http=True), WORKER), cpus=0.5, memory=64 * 1024 ** 2)


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name="prod/web/database-url", SecretString=DB_URL)
        yield


@pytest.fixture
def app_target(state_dir, docker_client, service, tmp_path, aws):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "sentry-dsn").write_text(DSN + "\n")
    yield DockerTarget(state_dir, client=docker_client, secrets=SecretResolver(secrets))
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}):
        container.remove(force=True)
    HAProxy(state_dir, service, ENVIRONMENT, "").stop()


def _ours(docker_client, service, role):
    return [c for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"})
            if c.labels.get("mainline.role") == role]


def _body(listen: str) -> str:
    return requests.get(f"http://{listen}/", timeout=5).text.strip()


def test_web_and_worker_with_secrets_roll_forward_back_and_are_repaired(app_target, plan_for, listen, events,
                                                                       docker_client, service, releases, state_dir,
                                                                       tmp_path):
    v1, v2 = (replace(plan_for(key), app=APP, health=replace(plan_for(key).health, bake=0.5)) for key in ("v1", "v2"))
    seen = events()
    app_target.roll_out(v1, seen)
    assert _body(listen) == releases["v1"].body
    web, workers = _ours(docker_client, service, "web"), _ours(docker_client, service, "worker")
    assert len(web) == 2 and len(workers) == 1
    for container in web + workers:
        env = container.attrs["Config"]["Env"]
        assert f"DATABASE_URL={DB_URL}" in env and f"SENTRY_DSN={DSN}" in env and "APP_ENV=production" in env
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 ** 2
        assert host["RestartPolicy"]["Name"] == "unless-stopped"
        assert host["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
    assert workers[0].attrs["Config"]["Cmd"][0] == "/bin/busybox"

    # Forward to v2, then back to v1 (what the rollback does): every role follows.
    app_target.roll_out(v2, seen)
    assert {c.labels["mainline.sha"] for c in _ours(docker_client, service, "worker")} == {v2.sha}
    app_target.roll_out(v1, seen)
    app_target.finish(v1, seen)
    assert _body(listen) == releases["v1"].body
    assert {c.labels["mainline.sha"] for c in _ours(docker_client, service, "worker")} == {v1.sha}
    assert {c.labels["mainline.sha"] for c in _ours(docker_client, service, "web")} == {v1.sha}

    # Kill a web replica, remove the worker, kill HAProxy: one repair puts it all back.
    _ours(docker_client, service, "web")[0].kill()
    _ours(docker_client, service, "worker")[0].remove(force=True)
    lb = HAProxy(state_dir, service, ENVIRONMENT, listen)
    os.kill(lb.pid() or 0, signal.SIGKILL)
    time.sleep(0.2)
    repairs = app_target.repair(v1, seen)
    assert any("load balancer" in line for line in repairs) and any("worker" in line for line in repairs)
    assert _body(listen) == releases["v1"].body
    assert len([s for s in lb.servers() if s.serving]) == 2
    assert len(_ours(docker_client, service, "worker")) == 1
    assert app_target.repair(v1, seen) == []  # nothing left to repair

    # A secret rotated since the deploy is not the reconciler's to ship (`deploy --restart` is).
    ids = sorted(c.id for c in _ours(docker_client, service, "web") + _ours(docker_client, service, "worker"))
    (tmp_path / "secrets" / "sentry-dsn").write_text("https://rotated@sentry.example/43")
    assert app_target.repair(v1, seen) == []
    assert sorted(c.id for c in _ours(docker_client, service, "web") + _ours(docker_client, service, "worker")) == ids
    # A pass that finds everything in shape reads no secret: the file may even be gone.
    (tmp_path / "secrets" / "sentry-dsn").unlink()
    assert app_target.repair(v1, seen) == []

    # No secret value in any line the target said.
    said = " ".join(seen.lines) + repr(repairs)
    assert DB_URL not in said and DSN not in said

    # A secret that cannot be resolved fails before anything changes, naming only the reference.
    before = sorted(c.id for c in docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={service}"}))
    broken = replace(v2, app=replace(APP, secrets=(("DATABASE_URL", "aws-secretsmanager:prod/web/missing"),)))
    with pytest.raises(SecretError, match="aws-secretsmanager:prod/web/missing"):
        app_target.roll_out(broken, seen)
    after = sorted(c.id for c in docker_client.containers.list(filters={"label": f"{LABEL_SERVICE}={service}"}))
    assert after == before


def _certificate_for_127_0_0_1(path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def test_haproxy_terminates_tls_and_redirects_plain_http(app_target, plan_for, listen, events, releases, tmp_path):
    pem = tmp_path / "secrets" / "web.pem"
    _certificate_for_127_0_0_1(pem)
    http_port = free_port()
    tls = Tls("web.pem", redirect=True, http_listen=f"127.0.0.1:{http_port}")
    plan = replace(plan_for("v1", replicas=1), app=replace(APP, roles=(Role("web", replicas=1, http=True),), tls=tls))
    app_target.roll_out(plan, events())
    assert requests.get(f"https://{listen}/", verify=str(pem), timeout=5).text.strip() == releases["v1"].body
    moved = requests.get(f"http://127.0.0.1:{http_port}/some/page?x=1", allow_redirects=False, timeout=5)
    assert moved.status_code == 301 and moved.headers["Location"] == f"https://127.0.0.1:{listen.rpartition(':')[2]}/some/page?x=1"
    report = app_target.verify(replace(plan, health=replace(plan.health, bake=0.5)), events())
    assert report.healthy and report.probes > 0, report

    missing = replace(plan, app=replace(plan.app, tls=Tls("nope.pem")))
    with pytest.raises(SecretError, match=r"nope\.pem"):
        app_target.roll_out(missing, events())

    # TLS taken out of the config: HAProxy is restarted with its servers, serving plain HTTP.
    app_target.roll_out(replace(plan, app=replace(plan.app, tls=None)), events())
    assert requests.get(f"http://{listen}/", timeout=5).text.strip() == releases["v1"].body
