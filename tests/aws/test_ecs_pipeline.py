"""A merge deployed by the real pipeline through the ECS target: git on disk, the image built
with the Docker engine and pushed to the registry at 127.0.0.1:5000, ECS, ELBv2 and CloudWatch
on moto. A rollout the circuit breaker fails (botocore Stubber) and an alarm firing during the
bake (moto's set_alarm_state) each end rolled back, verified, and reverted on master."""

from __future__ import annotations

import shutil
import threading
import uuid

import docker
import pytest
from botocore.stub import ANY, Stubber
from ecs_responses import deployment, described
from ecs_responses import service as service_response

from bot.domain import DeployRequest
from bot.settings import load_settings
from tests.conftest import SECRET, LocalRepo, git

pytestmark = pytest.mark.docker

SENDER = "mainline@example.com"
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY version /version
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080"]
"""
DEPLOY_YML = """\
service: {service}
branch: master
environments:
  production:
    target: ecs
    auto_deploy: true
    ecs:
      cluster: prod
      service: web
      container: web
      region: us-east-1
      alarms: [web-target-5xx]
      target_group_arn: "{target_group}"
      repository: {service}
health: {{path: /health, interval: 0.05s, failures: 2, bake: {bake}}}
rollback: {{auto: true, revert: push}}
notify: {{email: [releases@example.com]}}
"""


class EcsApp:
    """A service's repository on disk whose production runs on the ECS service of `world`."""

    def __init__(self, root, service: str, target_group: str, bake: str = "0.3s"):
        root.mkdir()
        self.repo = LocalRepo(root, service=service)
        self.service, self.target_group, self.bake = service, target_group, bake
        shutil.copy(shutil.which("busybox") or "/bin/busybox", self.repo.work / "busybox")

    def merge(self, number: int, author: str, title: str) -> str:
        """Land pull request #number as a merge commit's message would name it."""
        self.repo.write("Dockerfile", DOCKERFILE)
        self.repo.write("version", f"{self.service} #{number}\n")
        self.repo.write(".github/deploy.yml", DEPLOY_YML.format(service=self.service, target_group=self.target_group,
                                                                bake=self.bake))
        return self.repo.commit(f"Merge pull request #{number} from {author}/change-{number}\n\n{title}")

    def request(self, sha: str) -> DeployRequest:
        return DeployRequest(repo=f"acme/{self.service}", clone_url=self.repo.clone_url, ref="refs/heads/master",
                             sha=sha)

    def head(self) -> str:
        return git("rev-parse", "refs/heads/master", cwd=self.repo.bare)


@pytest.fixture
def settings(tmp_path, aws):
    # `aws` first: the ECS target and the SES mailer read AWS_ENDPOINT_URL when they are made.
    return load_settings(
        database_url=f"sqlite:///{tmp_path}/mainline.db",
        queue_url=f"sqlite:///{tmp_path}/queue.db",
        state_dir=tmp_path / "state",
        github_webhook_secret=SECRET,
        lease_seconds=5,
        email_sender=SENDER,
    )


@pytest.fixture
def app_for(tmp_path, ecs_world):
    services: list[str] = []

    def make(bake: str = "0.3s") -> EcsApp:
        service = f"ecs{uuid.uuid4().hex[:10]}"
        services.append(service)
        return EcsApp(tmp_path / service, service, ecs_world.target_group, bake=bake)

    yield make
    client = docker.from_env()
    for image in client.images.list():
        for tag in image.tags:
            if any(tag.startswith(f"127.0.0.1:5000/{s}:") for s in services):
                client.images.remove(tag, force=True)
    client.close()


def deploy(wired, app: EcsApp, sha: str) -> dict[str, dict]:
    wired.pipeline.request(app.request(sha))
    wired.pipeline.drive(app.service, "production")
    return {d["sha"]: d for d in wired.pipeline.deploys(app.service, limit=50)}


def running_image(ecs_world) -> tuple[str, str]:
    """The ECS service's task definition and the image its `web` container runs."""
    arn = ecs_world.service()["taskDefinition"]
    containers = ecs_world.definition(arn)["containerDefinitions"]
    return arn, next(c["image"] for c in containers if c["name"] == "web")


def test_merge_deploys_through_ecs_end_to_end(aws, wired, app_for, ecs_world, moto_data):
    aws.client("ses").verify_email_identity(EmailAddress=SENDER)
    app = app_for()
    v1 = app.merge(41, "octocat", "Add /health endpoint")

    deploys = deploy(wired, app, v1)

    assert deploys[v1]["state"] == "live", deploys[v1]["reason"]
    image = f"127.0.0.1:5000/{app.service}:{v1}"
    arn, running = running_image(ecs_world)
    assert running == image
    assert arn != ecs_world.first_revision and arn.endswith(":2")
    sidecar = ecs_world.definition(arn)["containerDefinitions"][1]
    assert sidecar["image"] == ecs_world.definition(ecs_world.first_revision)["containerDefinitions"][1]["image"]

    v2 = app.merge(42, "hubot", "Serve the version page")
    deploys = deploy(wired, app, v2)

    assert deploys[v2]["state"] == "live", deploys[v2]["reason"]
    assert running_image(ecs_world) == (arn.rsplit(":", 1)[0] + ":3", f"127.0.0.1:5000/{app.service}:{v2}")
    [row] = wired.pipeline.status(app.service)
    assert row["live"]["sha"] == v2 and row["in_sync"] is True
    # The release of v2 was mailed with the one pull request it brought.
    mails = [m for m in moto_data()["ses"]["Message"] if app.service in m["subject"]]
    subjects = [m["subject"] for m in mails]
    assert f"[{app.service}] production is live at {v2[:7]} (1 pull request)" in subjects
    mail = next(m for m in mails if v2[:7] in m["subject"])
    assert mail["destinations"]["ToAddresses"] == ["releases@example.com"] and mail["source"] == SENDER
    assert "#42</a> Serve the version page by @hubot" in mail["body"]
    assert "Add /health endpoint" not in mail["body"], "v1's pull request went out in the release before"


class CircuitBreakerTrips:
    """The ECS target, except that ECS fails the deployment of `bad_sha`: the calls up to and
    including UpdateService reach moto; what DescribeServices answers after that is stubbed
    with the circuit breaker's FAILED deployment, since moto does not model one."""

    def __init__(self, target, bad_sha: str):
        self.target, self.bad_sha = target, bad_sha
        self.stubbed = False

    def roll_out(self, plan, on_event):
        if plan.sha != self.bad_sha:
            return self.target.roll_out(plan, on_event)
        stubber = Stubber(self.target.ecs)

        def sink(message: str, **data) -> None:
            on_event(message, **data)
            if data.get("step") == "ecs_deployment_started":
                new = int(data["task_definition"].rsplit(":", 1)[1])
                failed = service_response(new, [
                    deployment(data["deployment"], "PRIMARY", new, "FAILED", running=0, failed=3,
                               reason="ECS deployment circuit breaker: tasks failed to start."),
                    deployment("ecs-svc/3488129034526139183", "ACTIVE", new - 1, "COMPLETED", running=2),
                ], [f"(service web) deployment {data['deployment']} deployment failed: tasks failed to start."])
                stubber.add_response("describe_services", described(failed), {"cluster": "prod", "services": ["web"]})
                # Diagnosis: the stopped tasks, then the rollout's record on the service is cleared.
                task = f"arn:aws:ecs:us-east-1:123456789012:task/prod/{'5a6b7c8d' * 4}"
                stubber.add_response("list_tasks", {"taskArns": [task]}, {
                    "cluster": "prod", "serviceName": "web", "desiredStatus": "STOPPED"})
                stubber.add_response("describe_tasks", {"tasks": [{
                    "taskArn": task, "taskDefinitionArn": data["task_definition"], "lastStatus": "STOPPED",
                    "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
                    "containers": [{"name": "web", "exitCode": 1, "lastStatus": "STOPPED"}]}], "failures": []},
                    {"cluster": "prod", "tasks": [task]})
                stubber.add_response("untag_resource", {}, {"resourceArn": ANY, "tagKeys": ["mainline:rollout"]})
                stubber.activate()
                self.stubbed = True

        try:
            return self.target.roll_out(plan, sink)
        finally:
            stubber.deactivate()
            stubber.assert_no_pending_responses()

    def __getattr__(self, name):
        return getattr(self.target, name)


def test_rollout_failed_by_the_circuit_breaker_is_rolled_back_and_reverted(wired, app_for, ecs_world):
    app = app_for()
    v1 = app.merge(51, "octocat", "Add /health endpoint")
    assert deploy(wired, app, v1)[v1]["state"] == "live"
    good_arn, good_image = running_image(ecs_world)
    real_targets = wired.pipeline.w.target_for
    tripping: dict = {}

    def targets(service, environment, config):
        target = real_targets(service, environment, config)
        return tripping.setdefault(id(target), CircuitBreakerTrips(target, v2))

    wired.pipeline.w.target_for = targets
    v2 = app.merge(52, "hubot", "Start with a missing secret")

    deploys = deploy(wired, app, v2)

    bad = deploys[v2]
    assert bad["state"] == "reverted", bad["reason"]
    assert "tasks failed to start" in bad["reason"] and "3 tasks failed" in bad["reason"]
    assert "Essential container in task exited" in bad["reason"] and "web exited 1" in bad["reason"]
    assert all(t.stubbed for t in tripping.values())
    kinds = [e["kind"] for e in wired.pipeline.deploys(app.service, limit=50)
             if e["sha"] == v2 for e in e["events"]]
    assert kinds.index("rolling_back") < kinds.index("rolled_back") < kinds.index("reverting") < kinds.index("reverted")
    # ECS runs v1's revision again (re-used, not re-registered), and the rollback verified.
    assert running_image(ecs_world) == (good_arn, good_image)
    assert len(ecs_world.revisions()) == 3
    head = app.head()
    assert head == bad["revert_sha"] and f"This reverts commit {v2}" in git("log", "-1", "--format=%B", head,
                                                                           cwd=app.repo.bare)
    assert deploys[head]["state"] == "live"
    [row] = wired.pipeline.status(app.service)
    assert row["in_sync"] is True and row["live"]["sha"] == head


class AlarmWorld:
    """CloudWatch as a bad release drives it: the 5xx alarm goes into ALARM a moment into the
    bake of `bad_sha`, and back to OK a moment after the rollback starts (the 5xx stop)."""

    def __init__(self, ecs_world, bad_sha: str):
        self.world, self.bad_sha = ecs_world, bad_sha
        self.timers: list[threading.Timer] = []

    def notify(self, notice) -> None:
        if notice.sha != self.bad_sha or notice.kind != "transition":
            return
        if notice.state == "verifying":
            self._later(0.3, "ALARM", "Threshold Crossed: 1 datapoint [57.0] was greater than the threshold (5.0).")
        elif notice.state == "rolling_back":
            self._later(0.5, "OK", "Threshold Crossed: 1 datapoint [0.0] was not greater than the threshold (5.0).")

    def _later(self, seconds: float, state: str, reason: str) -> None:
        timer = threading.Timer(seconds, self.world.set_alarm, (state, reason))
        self.timers.append(timer)
        timer.start()

    def join(self) -> None:
        for timer in self.timers:
            timer.join(timeout=10)


def test_alarm_firing_during_the_bake_is_rolled_back_and_reverted(wired, app_for, ecs_world):
    app = app_for(bake="3s")
    v1 = app.merge(61, "octocat", "Add /health endpoint")
    assert deploy(wired, app, v1)[v1]["state"] == "live"
    good_arn, good_image = running_image(ecs_world)
    v2 = app.merge(62, "hubot", "Query the orders table without an index")
    alarms = AlarmWorld(ecs_world, v2)
    wired.pipeline.w.reporters.append(alarms)

    try:
        deploys = deploy(wired, app, v2)
    finally:
        alarms.join()

    bad = deploys[v2]
    assert bad["state"] == "reverted", bad["reason"]
    assert "verification failed: CloudWatch alarm web-target-5xx is in ALARM" in bad["reason"]
    # ECS went back to v1's revision, and that rollback verified with the alarm back to OK.
    assert running_image(ecs_world) == (good_arn, good_image)
    events = [e for d in wired.pipeline.deploys(app.service, limit=50) if d["sha"] == v2 for e in d["events"]]
    assert any(e["kind"] == "rolled_back" and "verified healthy" in e["message"] for e in events)
    head = app.head()
    assert head == bad["revert_sha"] and deploys[head]["state"] == "live"
    alarm = ecs_world.cloudwatch.describe_alarms(AlarmNames=["web-target-5xx"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "OK"

