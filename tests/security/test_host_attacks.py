# ruff: noqa: F811 - the Docker fixtures are imported from tests/adapters/conftest.py and used as parameters
"""Attacks on an environment's `hosts:` (the Docker endpoints its replicas run on: root on each).

A repository names hosts; only the operator's MAINLINE_DOCKER_HOSTS are ever contacted. A name
the operator did not allow fails the commit's `mainline/config` check naming its line (merged or
pushed to a branch), and a plan that names one anyway is refused by the Docker target before
anything changes. Hostile forms (tcp:// in the clear, TLS paths leaving MAINLINE_SECRETS_DIR,
`..`, control characters, too many, twice) are refused by `config validate`. A host that cannot
prove who it is (an ssh host key not in MAINLINE_SSH_KNOWN_HOSTS, a TLS certificate not signed by
the given CA) is counted down and nothing runs there. Key material never reaches events or
errors, and a branch's image LABELs never make its container another environment's replica.

The Docker half runs on the engines `scripts/services.sh up` starts (see
tests/adapters/test_several_hosts.py): the shared one over unix://, the `tls` one over tcp://
at 127.0.0.1:2376, the `ssh` one through sshd at 127.0.0.1:2222.
"""

from __future__ import annotations

import base64
import datetime
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from docker.errors import DockerException

from bot.domain import DeployRequest, RolloutPlan
from bot.domain.app import AppSpec, DockerHost
from bot.errors import InfrastructureFailure, SecretError, TransientError
from bot.infra.secrets import SecretResolver
from bot.infra.targets.docker.haproxy import HAProxy
from bot.infra.targets.docker.hosts import HostAccess
from bot.infra.targets.docker.target import LABEL_ENVIRONMENT, LABEL_SERVICE, LABEL_SHA, DockerTarget
from bot.retry import policy
from tests.adapters.conftest import (  # noqa: F401 - the Docker fixtures, shared
    ENVIRONMENT,
    builder,
    docker_client,
    free_port,
    listen,
    plan_for,
    releases,
    service,
    state_dir,
)
from tests.adapters.engines import SSH, STATE, TLS, UNIX, engine, services
from tests.engine.world import CLONE, CONFIG, REPO, World

FAST_RETRY = policy("host-attacks", attempts=2, base=0.05, cap=0.1)
ENGINES = (UNIX, TLS, SSH)


# -- the config: hostile entries are refused naming their line --------------------------------------

HEAD = """\
service: web
environments:
  production:
    hosts:
      - unix:///var/run/docker.sock
"""


@pytest.mark.parametrize(("entry", "says", "line"), [
    ("tcp://127.0.0.1:2375", "needs the mapping form with tls:", 6),  # the API in the clear
    ("{url: 'tcp://127.0.0.1:2376', tls: '../../etc/ssl'}", "no '..'", 6),
    ("{url: 'tcp://127.0.0.1:2376', tls: 'docker/../../../root'}", "no '..'", 6),
    ("{url: 'tcp://127.0.0.1:2376', tls: /etc/docker/certs}", "tls names a directory under", 6),
    ("{url: 'tcp://127.0.0.1:2376', tls: ''}", "tls names a directory under", 6),
    ("unix:///var/run/../../home/user/docker.sock", "may not hold '..'", 6),
    ("unix://var/run/docker.sock", "a Docker host is unix:///path", 6),
    ('"unix:///var/run/docker.sock\\nssh://root@169.254.169.254"', "a Docker host is", 6),
    ('"tcp://127.0.0.1:2376\\u0000"', "a Docker host is", 6),
    ('"ssh://root@127.0.0.1\\t-oProxyCommand=touch"', "a Docker host is", 6),
    ("ssh://-oProxyCommand=sh@127.0.0.1", "a Docker host is", 6),
    ("ssh://root:hunter2@127.0.0.1", "a Docker host is", 6),
    ("{url: 'tcp://127.0.0.1:0', tls: docker/b}", "is not 1-65535", 6),
    ("{url: 'tcp://127.0.0.1:99999', tls: docker/b}", "is not 1-65535", 6),
    ("ssh://root@127.0.0.1:65536", "is not 1-65535", 6),
    ("{url: 'tcp://127.0.0.1:2376/v1.43/containers', tls: docker/b}", "a Docker host is", 6),
    ("http://127.0.0.1:2375", "a Docker host is", 6),
    ("npipe:////./pipe/docker_engine", "a Docker host is", 6),
    ("{url: 'ssh://root@127.0.0.1:2222', tls: docker/b}", "tls: applies to tcp:// hosts only", 6),
    ("{url: 'unix:///var/run/docker.sock2', tls: docker/b}", "tls: applies to tcp:// hosts only", 6),
    ("{url: 'tcp://127.0.0.1:2376', tls: docker/b, ca: /etc/passwd}", "Extra inputs are not permitted", 6),
    ("{url: 'tcp://127.0.0.1:2376', tls: docker/b, insecure: true}", "Extra inputs are not permitted", 6),
    ("unix:///var/run/docker.sock", "is listed twice", 4),
    ("tcp://" + "a" * 300 + ":2376", "a Docker host is", 6),
])
def test_hostile_host_entries_are_refused_naming_their_line(tmp_path, mainline, entry, says, line):
    path = tmp_path / "deploy.yml"
    path.write_text(HEAD + f"      - {entry}\n")
    result = mainline("config", "validate", str(path))
    assert result.exit_code == 1, result.output
    assert f":{line}: " in result.output and says in result.output, result.output
    # A value's newline or NUL never starts a line of its own in what is said.
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_more_than_twenty_hosts_and_hosts_on_ecs_are_refused(tmp_path, mainline):
    path = tmp_path / "deploy.yml"
    path.write_text(HEAD + "".join(f"      - ssh://root@10.0.0.{n}\n" for n in range(1, 21)))  # 21 in all
    result = mainline("config", "validate", str(path))
    assert result.exit_code == 1 and ":4: " in result.output and "at most 20" in result.output, result.output
    path.write_text(HEAD.replace("    hosts:", "    target: ecs\n    hosts:"))
    result = mainline("config", "validate", str(path))
    assert result.exit_code == 1 and "hosts apply to the docker target" in result.output, result.output


def test_the_schema_refuses_what_validate_refuses(mainline):
    import json

    import jsonschema
    import yaml

    schema = json.loads(mainline("config", "schema").output)
    good = HEAD + "      - {url: 'tcp://127.0.0.1:2376', tls: docker/b}\n      - ssh://deploy@10.0.0.6:2222\n"
    jsonschema.validate(yaml.safe_load(good), schema)
    for entry in ("tcp://127.0.0.1:2375x", "{url: 'tcp://127.0.0.1:2376', tls: /etc/ssl}",
                  "{url: 'tcp://127.0.0.1:2376', tls: docker/b, ca: x}", "ssh://root:pw@10.0.0.6"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(HEAD + f"      - {entry}\n"), schema)


# -- the pipeline: a host the operator did not allow fails the commit's config check -----------------

ALLOWED = ("unix:///var/run/docker.sock", "ssh://root@127.0.0.1:2222")


def allowing(world: World, hosts: tuple[str, ...]) -> list:
    """The operator's MAINLINE_DOCKER_HOSTS; the hosts of every plan the target is asked to roll out."""
    world.pipeline.opts = replace(world.pipeline.opts, docker_hosts=hosts)
    seen: list = []
    world.target.hooks["roll_out"] = lambda plan: seen.append((plan.environment, plan.app.hosts))
    return seen


def staging_config() -> str:
    # The environments block ends before `health:`; staging goes there.
    head, _, tail = CONFIG.partition("health:")
    return head + '  staging:\n    target: docker\n    branches: [staging]\n    listen: "127.0.0.1:18081"\n' \
        + "health:" + tail


def test_a_merge_naming_a_host_the_operator_did_not_allow_fails_its_config_check(tmp_path):
    world = World(tmp_path)
    seen = allowing(world, ALLOWED)
    world.ship(world.root)
    hostile = CONFIG.replace("    replicas: 2\n", "    replicas: 2\n    hosts:\n      - unix:///var/run/docker.sock\n"
                                                "      - ssh://root@169.254.169.254\n")
    sha = world.merge({".github/deploy.yml": hostile}, "Deploy onto their machine")

    assert world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/master", sha)) == []
    refusal = world.chat.notices[-1]
    assert (refusal.sha, refusal.state, refusal.data["gate"]) == (sha, "failed", "config")
    reason = refusal.data["reason"]
    assert "line 10: environments.production.hosts.1" in reason, reason
    assert "Docker host ssh://root@169.254.169.254 is not in MAINLINE_DOCKER_HOSTS" in reason
    assert "unix:///var/run/docker.sock is not" not in reason  # the allowed one is not blamed
    world.drive()
    assert world.live() == world.root and [d.sha for d in world.store.deploys()] == [world.root]
    assert seen == [("production", ())]  # nothing rolled out since the first commit

    # The allowed hosts go through, so the check is the allow-list and not `hosts:` as such.
    allowed = CONFIG.replace("    replicas: 2\n", "    replicas: 2\n    hosts: [unix:///var/run/docker.sock]\n")
    good = world.merge({".github/deploy.yml": allowed}, "Name the host")
    world.ship(good)
    assert world.live() == good
    assert seen[-1] == ("production", (DockerHost("unix:///var/run/docker.sock"),))


def test_a_branch_naming_a_host_the_operator_did_not_allow_fails_its_config_check(tmp_path):
    world = World(tmp_path, staging_config())
    seen = allowing(world, ALLOWED)
    world.ship(world.root)
    hostile = staging_config().replace('"127.0.0.1:18081"\n',
                                       '"127.0.0.1:18081"\n    hosts: ["ssh://root@10.1.2.3:22"]\n')
    sha = world.git.commit(CLONE, "staging", {".github/deploy.yml": hostile}, "staging on their box",
                           parents=(world.root,))

    assert world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/staging", sha)) == []
    refusal = world.chat.notices[-1]
    assert (refusal.sha, refusal.state, refusal.data["gate"]) == (sha, "failed", "config")
    assert "line 14: environments.staging.hosts.0" in refusal.data["reason"], refusal.data
    assert "ssh://root@10.1.2.3:22 is not in MAINLINE_DOCKER_HOSTS" in refusal.data["reason"]
    world.pipeline.drive("shop", "staging")
    assert [d.sha for d in world.store.deploys()] == [world.root]
    assert seen == [("production", ())]


def test_a_branch_naming_allowed_hosts_does_not_move_where_an_environment_runs(tmp_path):
    """Hosts come from the production branch's config: a branch's own `hosts:` is only validated."""
    world = World(tmp_path, staging_config())
    seen = allowing(world, ALLOWED)
    world.ship(world.root)
    moved = staging_config().replace('"127.0.0.1:18081"\n', '"127.0.0.1:18081"\n    hosts: ["ssh://root@127.0.0.1:2222"]\n')
    sha = world.git.commit(CLONE, "staging", {".github/deploy.yml": moved}, "staging elsewhere", parents=(world.root,))
    assert len(world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/staging", sha))) == 1
    world.pipeline.drive("shop", "staging")
    assert seen == [("production", ()), ("staging", ())]


@pytest.mark.parametrize(("secret", "hosts"), [
    ("file:docker/host-b/key.pem", ""),  # another repository's host: Docker's layout gives it away
    ("file:engines/tls/cert.pem", ""),
    ("file:ca.pem", ""),
    ("file:engines/tls/extra.pem", "    hosts: [{url: 'tcp://127.0.0.1:2376', tls: engines/tls}]\n"),
])
def test_a_merge_reading_a_docker_hosts_tls_key_as_its_secret_fails_its_config_check(tmp_path, secret, hosts):
    """The TLS material of `hosts:` sits under MAINLINE_SECRETS_DIR, where `secrets: file:` reads:
    a repository naming it would have its own app hold root on that Docker host."""
    world = World(tmp_path)
    seen = allowing(world, (*ALLOWED, "tcp://127.0.0.1:2376"))
    world.ship(world.root)
    hostile = CONFIG.replace("    replicas: 2\n", f"    replicas: 2\n{hosts}    secrets: {{DOCKER_KEY: '{secret}'}}\n")
    sha = world.merge({".github/deploy.yml": hostile}, "Read their key")

    assert world.pipeline.request(DeployRequest(REPO, CLONE, "refs/heads/master", sha)) == []
    refusal = world.chat.notices[-1]
    assert (refusal.sha, refusal.state, refusal.data["gate"]) == (sha, "failed", "config")
    line = 9 if hosts else 8
    assert f"line {line}: environments.production.secrets.DOCKER_KEY" in refusal.data["reason"], refusal.data
    assert "names a Docker host's TLS material" in refusal.data["reason"]
    world.drive()
    assert world.live() == world.root and seen == [("production", ())]
    # An app's own file secret is still its own.
    fine = world.merge({".github/deploy.yml": CONFIG.replace(
        "    replicas: 2\n", "    replicas: 2\n    secrets: {DATABASE_URL: 'file:shop/database-url'}\n")})
    world.ship(fine)
    assert world.live() == fine


# -- the Docker target: refused before anything changes; unproven hosts never used --------------------


def pem_lines(path: Path) -> list[str]:
    """The base64 lines of a PEM or OpenSSH key file: what must never be said anywhere."""
    return [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]


class Sink:
    """An on_event that keeps every message with its data, as the deploy's events would."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def __call__(self, message: str, **data) -> None:
        self.said.append(f"{message} {data!r}")

    @property
    def lines(self) -> list[str]:
        return self.said


def foreign_ca(directory: Path) -> None:
    """A CA of our own, which signed nothing the tls engine presents."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the engine's CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def other_known_hosts(path: Path) -> Path:
    """A known_hosts that knows 127.0.0.1:2222 by another key than the one sshd has."""
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    path.write_text(f"[127.0.0.1]:2222 {raw}\n")
    assert base64.b64decode(raw.split()[1])  # a well-formed entry, only not sshd's
    return path


@pytest.fixture(scope="module")
def engines_up():
    services("up")


@pytest.fixture
def secrets(tmp_path, engines_up) -> Path:
    root = tmp_path / "secrets"
    shutil.copytree(STATE / "engines" / "tls" / "certs", root / "engines" / "tls")
    return root


@pytest.fixture
def cleanup(state_dir, service):
    yield
    for host in ENGINES:
        client = engine(host)
        for container in client.containers.list(all=True, filters={"label": f"{LABEL_SERVICE}={service}"}):
            container.remove(force=True)
        client.close()
    for environment in (ENVIRONMENT, "staging"):
        HAProxy(state_dir, service, environment, "").stop()


def ours(service: str, environment: str | None = None) -> dict[str, list]:
    """What runs of `service` on each engine, looked at directly (not through Mainline)."""
    labels = [f"{LABEL_SERVICE}={service}"] + ([f"{LABEL_ENVIRONMENT}={environment}"] if environment else [])
    found = {}
    for host in ENGINES:
        client = engine(host)
        found[host.url] = client.containers.list(all=True, filters={"label": labels})
        client.close()
    return found


def on(plan: RolloutPlan, *hosts: DockerHost) -> RolloutPlan:
    return replace(plan, app=AppSpec(hosts=hosts))


def test_a_plan_naming_a_host_the_operator_did_not_allow_changes_nothing(state_dir, secrets, service, plan_for,
                                                                         cleanup):
    """The config check is the first line; the target is the second, for a plan recorded before
    the operator took a host off the list."""
    access = HostAccess((UNIX.url, TLS.url), secrets, STATE / "sshd" / "id_ed25519", STATE / "sshd" / "known_hosts")
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=access, retrying=FAST_RETRY)
    plan = on(plan_for("v1", replicas=2), UNIX, TLS, SSH)
    sink = Sink()
    for call in (target.roll_out, target.verify, target.finish, target.discard, target.repair):
        with pytest.raises(InfrastructureFailure, match=r"Docker host ssh://root@127\.0\.0\.1:2222 is not in "
                                                        r"MAINLINE_DOCKER_HOSTS; nothing was changed") as caught:
            call(plan, sink)
        assert caught.value.restore is False
    with pytest.raises(InfrastructureFailure, match="is not in MAINLINE_DOCKER_HOSTS"):
        target.in_shape(plan)
    assert sink.lines == []
    assert ours(service) == {h.url: [] for h in ENGINES}
    assert not HAProxy(state_dir, service, ENVIRONMENT, "").running()


@pytest.mark.parametrize("how", ["a symlinked directory", "a symlinked parent", "..", "absolute"])
def test_tls_material_outside_the_secrets_dir_is_refused(tmp_path, state_dir, secrets, service, plan_for, cleanup,
                                                         how):
    """The engine's real, working certificates, reached by leaving MAINLINE_SECRETS_DIR: refused
    before any connection (it would have succeeded)."""
    outside = STATE / "engines" / "tls" / "certs"
    if how == "a symlinked directory":
        (secrets / "evil").symlink_to(outside, target_is_directory=True)
        host = DockerHost(TLS.url, "evil")
    elif how == "a symlinked parent":
        (secrets / "evil").symlink_to(STATE / "engines", target_is_directory=True)
        host = DockerHost(TLS.url, "evil/tls/certs")
    elif how == "..":
        host = DockerHost(TLS.url, f"../{'../' * 8}{outside.relative_to('/')}")
    else:
        host = DockerHost(TLS.url, str(outside))
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=HostAccess((TLS.url,), secrets),
                          retrying=FAST_RETRY)
    sink = Sink()
    with pytest.raises(InfrastructureFailure, match="tls must name a directory under MAINLINE_SECRETS_DIR"):
        target.roll_out(on(plan_for("v1", replicas=1), host), sink)
    assert ours(service) == {h.url: [] for h in ENGINES} and sink.lines == []
    assert not HAProxy(state_dir, service, ENVIRONMENT, "").running()


def test_hosts_that_cannot_prove_who_they_are_are_never_used_and_no_key_is_said(
        tmp_path, state_dir, secrets, service, plan_for, cleanup):
    """The tls engine presents a certificate our CA did not sign; sshd presents a host key our
    known_hosts does not hold. Both are counted down, the replicas run on the unix engine, and no
    byte of the client key or the ssh key appears in the events or an error."""
    shutil.copytree(secrets / "engines" / "tls", secrets / "right")
    foreign_ca(secrets / "engines" / "tls")
    # The right CA, but the engine's certificate names 127.0.0.1, not localhost.
    misnamed = DockerHost("tcp://localhost:2376", "right")
    known_hosts = other_known_hosts(tmp_path / "known_hosts")
    ssh_key = STATE / "sshd" / "id_ed25519"
    access = HostAccess((UNIX.url, TLS.url, SSH.url, misnamed.url), secrets, ssh_key, known_hosts)
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=access, retrying=FAST_RETRY)
    secret_lines = pem_lines(secrets / "engines" / "tls" / "key.pem") + pem_lines(ssh_key)

    sink = Sink()
    target.roll_out(on(plan_for("v1", replicas=2), UNIX, TLS, SSH, misnamed), sink)
    said = "\n".join(sink.lines)
    assert "Docker host tcp://127.0.0.1:2376 does not answer" in said, said
    assert "Docker host ssh://root@127.0.0.1:2222 does not answer" in said, said
    assert "Docker host tcp://localhost:2376 does not answer" in said, said
    assert "replaced on unix:///var/run/docker.sock" in said
    placed = ours(service)
    assert len(placed[UNIX.url]) == 2 and placed[TLS.url] == [] and placed[SSH.url] == [], placed
    assert not any(line in said for line in secret_lines)

    # With no host that proves itself, nothing starts anywhere, and the error says no key either.
    alone = Sink()
    other = replace(plan_for("v2", replicas=1), service=f"{service}x", listen=f"127.0.0.1:{free_port()}")
    with pytest.raises(TransientError) as caught:
        target.roll_out(on(other, TLS, SSH), alone)
    text = str(caught.value) + "\n".join(alone.lines)
    assert "no Docker host answers" in text, text
    assert not any(line in text for line in secret_lines)
    assert ours(f"{service}x") == {h.url: [] for h in ENGINES}
    HAProxy(state_dir, f"{service}x", ENVIRONMENT, "").stop()

    # A host sshd's key is not known for at all is refused too (never trusted on first use).
    (tmp_path / "empty").write_text("")
    with pytest.raises((DockerException, paramiko.SSHException), match="not found in known_hosts"):
        HostAccess((SSH.url,), secrets, ssh_key, tmp_path / "empty").connect(SSH)


def test_an_image_labelled_as_production_never_becomes_a_production_replica_on_another_host(
        tmp_path, state_dir, secrets, service, plan_for, releases, builder, cleanup):
    """A branch's Dockerfile sets every mainline.* label to production's values; its staging
    container, on the ssh host, stays staging's: production neither counts nor serves it."""
    access = HostAccess((UNIX.url, SSH.url), secrets, STATE / "sshd" / "id_ed25519", STATE / "sshd" / "known_hosts")
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=access, retrying=FAST_RETRY)
    production = on(plan_for("v1", replicas=1), UNIX, SSH)
    sink = Sink()
    target.roll_out(production, sink)
    target.finish(production, sink)
    lb = HAProxy(state_dir, service, ENVIRONMENT, production.listen)
    servers = {s.name: s.address for s in lb.servers()}

    context = tmp_path / "hostile"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {releases['v2'].image}\n"
        f"LABEL mainline.service={service} mainline.environment={ENVIRONMENT} mainline.sha={production.sha} "
        f"mainline.port=1 mainline.role=web mainline.spec=forged\n")
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    image = builder.ensure_image(context, f"127.0.0.1:5000/mltest-hostile-{uuid.uuid4().hex[:8]}:{sha}",
                                 lambda *a, **k: None)
    staging = replace(production, environment="staging", sha=sha, image=image, listen=f"127.0.0.1:{free_port()}",
                      app=AppSpec(hosts=(SSH,)))
    target.roll_out(staging, sink)

    (container,) = ours(service, "staging")[SSH.url]
    assert (container.labels[LABEL_ENVIRONMENT], container.labels[LABEL_SHA]) == ("staging", sha)
    assert [len(found) for found in ours(service, ENVIRONMENT).values()] == [1, 0, 0]
    assert target.in_shape(production)
    assert target.repair(production, sink) == []
    assert {s.name: s.address for s in lb.servers()} == servers


def test_an_ssh_key_the_apps_could_read_is_never_used(tmp_path, state_dir, secrets, service, plan_for, cleanup):
    """MAINLINE_SSH_KEY inside MAINLINE_SECRETS_DIR would be any repository's `file:` secret: the
    target refuses to use it, before anything changes, and says to move it."""
    inside = secrets / "id_ed25519"
    shutil.copy(STATE / "sshd" / "id_ed25519", inside)
    access = HostAccess((SSH.url,), secrets, inside, STATE / "sshd" / "known_hosts")
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=access, retrying=FAST_RETRY)
    sink = Sink()
    with pytest.raises(InfrastructureFailure, match="MAINLINE_SSH_KEY lies under MAINLINE_SECRETS_DIR"):
        target.roll_out(on(plan_for("v1", replicas=1), SSH), sink)
    missing = HostAccess((SSH.url,), secrets, STATE / "sshd" / "id_ed25519", tmp_path / "no-known-hosts")
    with pytest.raises(InfrastructureFailure, match=r"MAINLINE_SSH_KNOWN_HOSTS .* is not a readable file"):
        DockerTarget(state_dir, hosts=missing, retrying=FAST_RETRY).roll_out(on(plan_for("v1", replicas=1), SSH),
                                                                            sink)
    assert sink.lines == [] and ours(service) == {h.url: [] for h in ENGINES}


def test_a_recorded_config_reading_a_docker_hosts_key_as_its_secret_changes_nothing(
        state_dir, secrets, service, plan_for, cleanup):
    """A production config recorded before the config check refused it is used without that
    check: the secret resolver refuses Docker's TLS material by name, before anything changes."""
    access = HostAccess((UNIX.url,), secrets)
    target = DockerTarget(state_dir, secrets=SecretResolver(secrets), hosts=access, retrying=FAST_RETRY)
    plan = replace(plan_for("v1", replicas=1),
                   app=AppSpec(hosts=(UNIX,), secrets=(("LEAK", "file:engines/tls/key.pem"),)))
    sink = Sink()
    with pytest.raises(SecretError, match="Docker host's TLS material, never an app's secret"):
        target.roll_out(plan, sink)
    assert ours(service) == {h.url: [] for h in ENGINES}
    assert not any(line in "\n".join(sink.lines) for line in pem_lines(secrets / "engines" / "tls" / "key.pem"))


def test_a_remote_load_balancer_cannot_be_pointed_at_the_workers_own_engine(tmp_path, mainline):
    """Replicas of a unix:// engine answer on the worker's loopback, which a load balancer on
    another host would take for its own: refused, naming the line."""
    path = tmp_path / "deploy.yml"
    path.write_text("service: web\nenvironments:\n  production:\n"
                    "    hosts: ['ssh://root@127.0.0.1:2222', 'unix:///var/run/docker.sock']\n"
                    "    load_balancer: {host: 'ssh://root@127.0.0.1:2222'}\n")
    result = mainline("config", "validate", str(path))
    assert result.exit_code == 1, result.output
    assert "cannot reach the replicas of unix:///var/run/docker.sock" in result.output
    assert ":5: environments.production.load_balancer" in result.output
