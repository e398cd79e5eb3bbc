"""`mainline demo --story canary`: progressive delivery on real Docker, HAProxy and Prometheus.

Under steady load through the load balancer: v1 goes live (nothing to compare yet: rolled);
v2 passes its canary at 10% then 50% and goes live; v3, whose /health is fine but whose
`GET /` fails 20% of requests, fails its canary at 10%: its weight goes to 0, the baseline
(v2) never stopped serving, and master is reverted by a pull request until it equals
production again. A Prometheus of the demo's own scrapes HAProxy's exporter every second."""

from __future__ import annotations

import requests

from sandbox.canary_kit import CanaryApp, Load, PrometheusServer
from sandbox.demo import Demo
from sandbox.demo_setup import REPO, SERVICE, TOKEN, say


class CanaryDemo(Demo):
    MORAL = ("the canary story held: v2 passed its canary; v3 failed at 10% on its 5xx ratio, its weight went to 0, "
             "master was reverted and equals production")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prometheus: PrometheusServer | None = None
        self.load: Load | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.prometheus is not None:
            env["MAINLINE_PROMETHEUS_URLS"] = self.prometheus.url
        return env

    def start_bot(self) -> None:
        self.prometheus = PrometheusServer(self.state / "prometheus", self.state / "bot" / "prometheus").start()
        say(f"Prometheus on {self.prometheus.url}, scraping HAProxy's exporter each second (file_sd)")
        super().start_bot()

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
        super().stop()
        if self.prometheus is not None:
            self.prometheus.stop()

    @property
    def app(self) -> CanaryApp:
        return CanaryApp(SERVICE, self.ports.lb, self.prometheus.url if self.prometheus else None)

    def merge_version(self, version: str, errors: int, title: str, author: str) -> str:
        branch = f"{author}/{version}"
        self.github.create_branch(REPO, branch, self.github.head(REPO, "master"))
        self.github.push_commit(REPO, branch, self.app.files(version, errors), title, author_login=author)
        number = self.github.open_pull(REPO, branch, "master", title, body=f"Ships {version}.", user=author)
        sha = self.github.merge_pull(REPO, number, merged_by="octocat")
        say(f"merged PR #{number} “{title}” by @{author} into master as {sha[:7]}")
        return sha

    def canary_events(self, sha: str) -> list[dict]:
        deploy = self.deploy_of(sha) or {}
        return [e for e in deploy.get("events", []) if e["kind"] == "canary"]

    def play(self) -> None:
        say("1. the first release, v1 (nothing serves yet, so nothing to compare a canary with)")
        v1 = self.merge_version("v1", 0, "Start with canary releases", "octocat")
        self.settled(v1, ("live",))
        self.check(self.serves() == f"{SERVICE} v1", f"v1 serves on :{self.ports.lb}")
        self.load = Load(self.ports.lb).start()
        say(f"steady load on :{self.ports.lb} from {self.load.threads} clients")

        say("2. merge v2, a good release: canary at 10%, then 50%, then everything")
        v2 = self.merge_version("v2", 0, "Add the v2 page", "octocat")
        good = self.settled(v2, ("live", "failed", "reverted"), timeout=180)
        self.check(good["state"] == "live", f"v2 passed its canary and is live ({good['state']}: {good['reason']})")
        passed = [e for e in self.canary_events(v2) if (e.get("data") or {}).get("verdict") == "pass"]
        self.check(bool(passed), f"v2's canary was judged from real traffic: {passed[-1]['message'] if passed else ''}")
        failed_before = self.load.failed

        say("3. merge v3: /health is fine, but `GET /` fails 20% of requests")
        v3 = self.merge_version("v3", 20, "Speed up the page", "hubot")
        bad = self.settled(v3, ("reverted", "failed", "live"), timeout=240)
        self.check(bad["state"] == "reverted", f"v3 was stopped by its canary and reverted ({bad['state']}: "
                   f"{bad['reason']})")
        verdicts = [e.get("data") or {} for e in self.canary_events(v3)]
        failed = [d for d in verdicts if d.get("verdict") == "fail"]
        self.check(bool(failed) and failed[0].get("weight") == 10,
                   "v3 failed at weight 10: " + "; ".join(m.get("line", "") for m in (failed or [{}])[0]
                                                          .get("metrics", []) if m.get("result") == "fail"))
        self.check(self.serves() == f"{SERVICE} v2", f"production serves v2: “{self.serves()}”")
        say(f"  requests that failed for users during v3's canary: {self.load.failed - failed_before} "
            f"(of {self.load.ok + self.load.failed} in all)")
        head, pulls = self.revert_shipped("Speed up the page", 90)
        [status] = [s for s in self._get("/api/services") or [] if s["environment"] == "production"]
        self.check(status["in_sync"] and status["head"] == head,
                   f"master ({head[:7]}) equals production (in_sync: {status['in_sync']})")
        number = next(p["number"] for p in pulls if p["title"] == "Speed up the page")
        comments = requests.get(f"{self.github.url}/repos/{REPO}/issues/{number}/comments",
                                headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
        self.check(any("canary 5xx" in c["body"] for c in comments), "the PR comment carries the canary's numbers")
        self.check(not self.github.violations, "every GitHub call and webhook matched GitHub's published contract")
