"""`mainline doctor` end to end: against the GitHub stand-in (an App, its installation and its
permissions, git over HTTP), the Slack stand-in (auth.test and its scopes), a private TLS registry
with a login, the real Docker engine and HAProxy, and moto (STS, IAM); first all set up right,
then each part wrong, each failing line naming its fix, and no secret printed."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from moto.iam.responses import IamResponse
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from bot.cli import main
from bot.doctor.github import NEEDED
from sandbox.slack import SlackStandIn
from tests.e2e.github_world import OWNER
from tests.registry_world import free_port, private_registry

ROOT = Path(__file__).resolve().parents[2]
SLACK_TOKEN = "xoxb-doctor-test-token-1234"


def simulate_principal_policy(self):
    """IAM's policy simulator, which moto lacks: the principal's attached and inline policies,
    Allow unless a Deny matches (conditions and resources are not evaluated)."""
    from moto.core.responses import ActionResult

    arn, actions = self._get_param("PolicySourceArn"), self._get_param("ActionNames", [])
    kind, name = arn.split(":", 5)[5].split("/", 1)
    holder = self.backend.get_user(name) if kind == "user" else self.backend.get_role(name)
    documents = [json.loads(v.document) for p in holder.managed_policies.values()
                 for v in p.versions if v.is_default_version]
    documents += [json.loads(doc) for doc in holder.policies.values()]
    results = []
    for action in actions:
        decision = "implicitDeny"
        for statement in (s for d in documents for s in d["Statement"]):
            listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(fnmatch.fnmatch(action.lower(), p.lower()) for p in listed):
                decision = "explicitDeny" if statement["Effect"] == "Deny" else (
                    "allowed" if decision != "explicitDeny" else decision)
        results.append({"EvalActionName": action, "EvalResourceName": "*", "EvalDecision": decision})
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


@pytest.fixture
def moto(monkeypatch):
    monkeypatch.setattr(IamResponse, "simulate_principal_policy", simulate_principal_policy, raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def aws_user(moto_url: str, name: str, policy: dict) -> dict[str, str]:
    import boto3

    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.mark.docker
def test_doctor_passes_when_all_is_set_up_and_names_each_fix_when_not(world, moto, tmp_path, monkeypatch):
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    app, key = world.sandbox.apps.register("mainline-doctor", permissions=dict(NEEDED))
    world.sandbox.apps.install(app, OWNER)
    slack = SlackStandIn(token=SLACK_TOKEN).start()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    (tmp_path / "registry").mkdir()
    try:
        with private_registry(tmp_path / "registry") as registry:
            env = {"MAINLINE_DATABASE_URL": world.settings.database_url, "GITHUB_API_URL": world.sandbox.url,
                   "GITHUB_APP_ID": str(app.id), "GITHUB_APP_PRIVATE_KEY": key, "SLACK_BOT_TOKEN": SLACK_TOKEN,
                   "SLACK_SIGNING_SECRET": "doctor-signing-secret", "SLACK_API_URL": slack.url,
                   "MAINLINE_REGISTRY": registry.host, "MAINLINE_REGISTRY_USERNAME": registry.username,
                   "MAINLINE_REGISTRY_PASSWORD": registry.password, "AWS_ENDPOINT_URL": moto,
                   "AWS_DEFAULT_REGION": "us-east-1", **aws_user(moto, "mainline", policy)}

            good = CliRunner().invoke(main, ["doctor", "--repo", world.repo], env=env, catch_exceptions=False)

            lines = good.output.splitlines()
            assert good.exit_code == 0, good.output
            for expected in ("ok   database: schema", "ok   github: app: the JWT authenticates as the App",
                             f"ok   github: {world.repo} permissions", f"ok   github: {world.repo} git: "
                             "authenticated ls-remote", "ok   slack: auth.test", "ok   slack: scopes",
                             f"ok   registry: login: {registry.host}: logged in as deployer",
                             "ok   registry: push", "ok   docker:", "ok   haproxy: binary: HAProxy",
                             "ok   aws: identity: arn:aws:iam::123456789012:user/mainline",
                             "ok   aws: policy"):
                assert any(line.startswith(expected) for line in lines), (expected, good.output)

            # Now every part wrong: an App short of a permission, a Slack app short of a scope, a
            # wrong registry token, an engine nobody runs, and an IAM user without ecs:UpdateService.
            short = dict(NEEDED, checks="read")
            bad_app, bad_key = world.sandbox.apps.register("mainline-short", permissions=short)
            world.sandbox.apps.install(bad_app, OWNER)
            slack.scopes.remove("commands")
            forgot = json.loads(json.dumps(policy))
            for statement in forgot["Statement"]:
                statement["Action"] = [a for a in statement["Action"] if a != "ecs:UpdateService"]
            env.update(GITHUB_APP_ID=str(bad_app.id), GITHUB_APP_PRIVATE_KEY=bad_key,
                       MAINLINE_REGISTRY_PASSWORD="not-the-token", **aws_user(moto, "partial", forgot))

            bad = CliRunner().invoke(main, ["doctor", "--repo", world.repo, "--docker-host", "tcp://127.0.0.1:9"],
                                     env=env, catch_exceptions=False)
    finally:
        slack.stop()

    assert bad.exit_code == 1, bad.output
    failing = [line for line in bad.output.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 5, bad.output
    assert f"FAIL github: {world.repo} permissions: missing checks: write (has read) -> fix: grant them" \
        in bad.output
    assert "FAIL slack: scopes: missing commands" in bad.output and "reinstall the app" in bad.output
    assert "FAIL registry" in bad.output and "docker login" in bad.output
    assert "FAIL docker: tcp://127.0.0.1:9: cannot reach the engine" in bad.output and "DOCKER_TLS_VERIFY" in bad.output
    assert "ok   docker: unix:///var/run/docker.sock: Docker" in bad.output  # the other engine still checked
    assert ("FAIL aws: policy: arn:aws:iam::123456789012:user/partial is denied 1 of "
            in bad.output) and "ecs:UpdateService -> fix: attach deploy/iam-policy.json" in bad.output
    for secret in (registry.password, SLACK_TOKEN, key.splitlines()[1]):
        assert secret not in good.output + bad.output


@pytest.mark.docker
def test_doctor_with_a_token_says_statuses_replace_check_runs_and_without_github_names_setup(world, monkeypatch):
    from tests.e2e.github_world import TOKEN

    env = {"MAINLINE_DATABASE_URL": world.settings.database_url, "GITHUB_API_URL": world.sandbox.url,
           "GITHUB_TOKEN": TOKEN}
    for name in ("GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_PATH", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    with_token = CliRunner().invoke(main, ["doctor", "--repo", world.repo, "--no-aws"], env=env,
                                    catch_exceptions=False)

    assert with_token.exit_code == 0, with_token.output
    assert "ok   github: token: authenticates as " in with_token.output
    assert "ok   github: check runs: a token cannot create check runs: Mainline posts commit statuses" \
        in with_token.output
    assert f"ok   github: {world.repo} git: authenticated ls-remote" in with_token.output
    assert "--   slack: bot token: SLACK_BOT_TOKEN is not set" in with_token.output
    assert "--   aws: identity" in with_token.output
    assert TOKEN not in with_token.output

    env.pop("GITHUB_TOKEN")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    without = CliRunner().invoke(main, ["doctor", "--repo", world.repo, "--no-aws"], env=env, catch_exceptions=False)
    assert without.exit_code == 1
    assert "FAIL github: credentials: neither GITHUB_APP_ID" in without.output
    assert "-> fix: run `mainline setup github`" in without.output
