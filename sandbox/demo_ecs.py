"""`mainline demo --story ecs`: the story on AWS ECS, with moto for ELBv2, CloudWatch and ECR
and the stateful ECS stand-in of sandbox/ecs_model.py (deployments with their own ids, the
circuit breaker, stopped tasks' reasons) behind one AWS endpoint (sandbox/ecs_server.py).

1. v1 and v2 go live on ECS;
2. the team's Terraform raises the task's memory to 1024 MB; v3, whose 5xx alarm fires during the
   bake, is rolled back to a task definition that keeps 1024 MB, and reverted on master;
3. v4's image cannot be pulled: it ends `failed` without a revert, the stopped task's reason is
   shown, and `mainline status` says master is ahead because of an infrastructure failure;
4. the image is made pullable, `mainline deploy` tries v4 again, and it goes live: master equals
   production."""

from __future__ import annotations

import subprocess
import sys

import boto3

from sandbox.demo import Demo
from sandbox.demo_setup import REPO, ROOT, SERVICE, app_files, say
from sandbox.ecs_model import Deployment, Service
from sandbox.ecs_server import AwsWorld

REGION = "us-east-1"
ALARM = "webapp-5xx"
DEPLOY_YML = """\
service: webapp
branch: master
environments:
  production:
    target: ecs
    auto_deploy: true
    ecs:
      cluster: prod
      service: webapp
      container: web
      alarms: [{alarm}]
      target_group_arn: "{target_group}"
      timeout: 2m
health: {{path: /health, interval: 0.5s, failures: 3, bake: 3s, timeout: 20s}}
rollback: {{auto: true, revert: pull-request}}
"""


class EcsDemo(Demo):
    MORAL = ("the ECS story held: v3's alarm rolled it back to a task definition that kept its memory and reverted "
             "it; v4's unpullable image failed it without a revert; deployed again, v4 is live and master equals "
             "production")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.aws: AwsWorld | None = None
        self.target_group = ""
        self.alarm_on: str | None = None  # the image whose deployment sets the alarm off
        self.alarm_off: str | None = None  # the image whose deployment clears it

    # -- AWS -----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        if self.aws is not None:
            env.update(AWS_ENDPOINT_URL=self.aws.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                       AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=str(self.state / "aws" / "no-config"),
                       AWS_SHARED_CREDENTIALS_FILE=str(self.state / "aws" / "no-credentials"))
        return env

    def client(self, name: str, moto: bool = False):
        assert self.aws is not None
        return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION).client(
            name, endpoint_url=self.aws.moto_url if moto else self.aws.url)

    def start_bot(self) -> None:
        self.aws = AwsWorld(self.state / "aws").start()
        say(f"AWS on {self.aws.url}: ECS answered by a stateful stand-in, the rest by moto on {self.aws.moto_url}")
        self.team_world()
        super().start_bot()

    def team_world(self) -> None:
        """What the team's Terraform made: a VPC, a target group behind a listener, a 5xx alarm,
        the cluster's service with its task definition (512 MB)."""
        assert self.aws is not None
        ec2, elbv2, cloudwatch = self.client("ec2"), self.client("elbv2"), self.client("cloudwatch")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
                   ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
        lb = elbv2.create_load_balancer(Name="webapp", Subnets=subnets)["LoadBalancers"][0]
        self.target_group = elbv2.create_target_group(Name="webapp", Protocol="HTTP", Port=8080, VpcId=vpc,
                                                      TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": self.target_group}])
        elbv2.register_targets(TargetGroupArn=self.target_group,
                               Targets=[{"Id": "10.0.1.10", "Port": 8080}, {"Id": "10.0.2.10", "Port": 8080}])
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Dimensions=[{"Name": "TargetGroup", "Value": self.target_group.split(":")[-1]}], Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
        with self.aws.lock:
            ecs = self.aws.ecs
            ecs.create_service("webapp", ecs.register("webapp", "public.ecr.aws/docker/library/busybox:stable"),
                               load_balancers=[{"targetGroupArn": self.target_group, "containerName": "web",
                                                "containerPort": 8080}])
            ecs.on_completed = self.alarm_follows
        say("the team's ECS world: service webapp (512 MB tasks) behind target group webapp, alarm webapp-5xx")

    def alarm_follows(self, service: Service, deployment: Deployment) -> None:
        """CloudWatch as a bad release drives it: in ALARM once v3's tasks serve, OK once v2's
        serve again (called by the stand-in as a deployment completes)."""
        assert self.aws is not None
        image = self.aws.ecs.image_of(deployment.task_definition)
        cloudwatch = self.client("cloudwatch", moto=True)
        if image == self.alarm_on:
            cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM",
                                       StateReason="Threshold Crossed: 1 datapoint [57.0] was greater than 5.0")
        elif image == self.alarm_off:
            cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK",
                                       StateReason="Threshold Crossed: 1 datapoint [0.0] was not greater than 5.0")

    def stop(self) -> None:
        super().stop()
        if self.aws is not None:
            self.aws.stop()

    # -- the story -----------------------------------------------------------------------------

    def files(self, version: str) -> dict[str, bytes]:
        files = app_files(version, "healthy", self.ports.lb)
        files[".github/deploy.yml"] = DEPLOY_YML.format(alarm=ALARM, target_group=self.target_group).encode()
        return files

    def merge_ecs(self, version: str, title: str, author: str) -> str:
        branch = f"{author}/{version}"
        self.github.create_branch(REPO, branch, self.github.head(REPO, "master"))
        self.github.push_commit(REPO, branch, self.files(version), title, author_login=author)
        number = self.github.open_pull(REPO, branch, "master", title, body=f"Ships {version}.", user=author)
        sha = self.github.merge_pull(REPO, number, merged_by="octocat")
        say(f"merged PR #{number} “{title}” by @{author} into master as {sha[:7]}")
        return sha

    def running(self) -> tuple[str, dict]:
        """The image the ECS service runs, and its task definition."""
        assert self.aws is not None
        with self.aws.lock:
            ecs = self.aws.ecs
            arn = ecs.services["webapp"].task_definition
            return ecs.image_of(arn), dict(ecs.definitions[arn])

    def image(self, sha: str) -> str:
        return f"127.0.0.1:5000/{SERVICE}:{sha}"

    def mainline(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=self.env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    def play(self) -> None:
        assert self.aws is not None
        say("1. v1 and v2 go live on ECS")
        v1 = self.github.push_commit(REPO, "master", self.files("v1"), "Deploy to ECS")
        self.settled(v1, ("live",), timeout=240)
        v2 = self.merge_ecs("v2", "Add the v2 page", "octocat")
        self.settled(v2, ("live",), timeout=240)
        self.check(self.running()[0] == self.image(v2), f"ECS service webapp runs {self.image(v2)}")

        say("2. Terraform raises the tasks' memory to 1024 MB; v3's 5xx alarm fires during its bake")
        with self.aws.lock:
            ecs = self.aws.ecs
            current = ecs.definitions[ecs.services["webapp"].task_definition]
            bigger = ecs.register_task_definition(**{k: v for k, v in current.items() if k not in (
                "taskDefinitionArn", "revision", "status", "compatibilities", "registeredAt")} | {"memory": "1024"})
            ecs.start_deployment("webapp", bigger["taskDefinition"]["taskDefinitionArn"], "healthy")
            ecs.tick()
        v3 = self.merge_ecs("v3", "Query the orders table without an index", "hubot")
        self.alarm_on, self.alarm_off = self.image(v3), self.image(v2)
        bad = self.settled(v3, ("reverted", "failed", "live"), timeout=240)
        self.check(bad["state"] == "reverted", f"v3 was rolled back and reverted ({bad['state']}: {bad['reason']})")
        image, definition = self.running()
        self.check(image == self.image(v2) and definition["memory"] == "1024",
                   f"ECS runs v2 again on {definition['taskDefinitionArn'].rsplit('/', 1)[-1]}, "
                   f"a new revision that keeps {definition['memory']} MB")
        head = self.github.head(REPO, "master")
        self.wait(lambda: (self.deploy_of(head) or {}).get("state") == "live", 120, "the revert never went live")

        say("3. v4's image cannot be pulled by ECS (the registry refuses new images)")
        known = {self.image(v1), self.image(v2), self.image(v3)}
        with self.aws.lock:
            self.aws.ecs.pull_refused = lambda image: image.startswith("127.0.0.1:5000/") and image not in known
        v4 = self.merge_ecs("v4", "Show the order history", "octocat")
        failed = self.settled(v4, ("failed", "reverted", "live"), timeout=240)
        self.check(failed["state"] == "failed" and "CannotPullContainerError" in (failed["reason"] or ""),
                   f"v4 failed on the infrastructure, the stopped task's reason shown: {failed['reason'][:160]}")
        self.check(self.github.head(REPO, "master") == v4 and not failed["revert_sha"], "nothing was reverted")
        self.check(self.running()[0] == self.image(v2), "production is still on v2")
        status = self.mainline("status", SERVICE)
        self.check("ahead because of an infrastructure failure" in status,
                   "`mainline status`: " + next((line.strip() for line in status.splitlines() if "ahead" in line),
                                                status.strip()[:200]))
        said = [m.text or "" for m in self.slack.messages.get(self.slack.channel_id("#deploys"), [])]
        self.check(any("CannotPullContainerError" in text for text in said),
                   "the deploy's Slack thread carries the stopped task's reason")

        say("4. the image is made pullable; `mainline deploy` tries v4 again")
        with self.aws.lock:
            self.aws.ecs.pull_refused = lambda image: False
        say("  " + self.mainline("deploy", SERVICE, "--by", "octocat").strip())
        self.wait(lambda: any(d["sha"] == v4 and d["state"] == "live"
                              for d in self._get(f"/api/deploys?service={SERVICE}&limit=20") or []),
                  240, lambda: f"v4 did not go live: {self.deploy_of(v4)}")
        self.check(self.running()[0] == self.image(v4), f"ECS service webapp runs {self.image(v4)}")
        [row] = [s for s in self._get("/api/services") or [] if s["environment"] == "production"]
        self.check(row["in_sync"] and row["head"] == v4, f"master ({v4[:7]}) equals production")
        self.check(not self.github.violations, "every GitHub call and webhook matched GitHub's published contract")
