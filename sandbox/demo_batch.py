"""`mainline demo --story batch`: three PRs merged within seconds coalesce into one release, and
the middle one is bad. The release fails, production rolls back, Mainline bisects the three
commits on shadow replicas, reverts only the middle PR, and ships the other two.

In the end: master holds exactly one revert, of the middle PR's merge commit; production serves
the other two PRs' pages; master and production agree (`in_sync`)."""

from __future__ import annotations

import re

import requests

from sandbox.demo import Demo
from sandbox.demo_setup import REPO, SERVICE, TOKEN, app_files, say
from sandbox.slack import all_text

# Bisect on shadow replicas, and ask each candidate for its front page too.
CULPRIT = b"culprit: {mode: shadow, max_rounds: 4, budget: 10m, checks: [{path: /, status: 200}]}\n"
REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")


class BatchDemo(Demo):
    MORAL = ("the batch story held: three PRs coalesced into one release, the bad one was found by bisection "
             "and reverted alone, the other two are live; master equals production")

    def fast_merge(self, name: str, files: dict, title: str, author: str) -> tuple[int, str]:
        """Branch, commit, open and merge a PR at once, as people merging within seconds do."""
        branch = f"{author}/{name}"
        self.github.create_branch(REPO, branch, self.github.head(REPO, "master"))
        self.github.push_commit(REPO, branch, files, title, author_login=author)
        number = self.github.open_pull(REPO, branch, "master", title, body=f"{title}.", user=author)
        sha = self.github.merge_pull(REPO, number, merged_by="octocat")
        say(f"merged PR #{number} “{title}” by @{author} into master as {sha[:7]}")
        return number, sha

    def page(self, path: str) -> str:
        try:
            return requests.get(f"http://127.0.0.1:{self.ports.lb}{path}", timeout=5).text.strip()
        except requests.RequestException as exc:
            return f"(no answer: {exc})"

    def comments(self, number: int) -> str:
        found = requests.get(f"{self.github.url}/repos/{REPO}/issues/{number}/comments",
                             headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
        return "\n".join(c["body"] for c in found)

    def play(self) -> None:
        lb = self.ports.lb
        v1_files = app_files("v1", "healthy", lb)
        # A 2 s bake (the default story's is 5 s): each good trial bakes too, so the story runs shorter.
        config = v1_files[".github/deploy.yml"].replace(b"bake: 5s", b"bake: 2s") + CULPRIT
        say("1. the first release, v1 (culprit: {mode: shadow}: candidates get probes and checks, never users)")
        v1 = self.github.push_commit(REPO, "master", {".github/deploy.yml": config, "CHANGELOG.md": "v1\n"},
                                     "Start the changelog; find culprits on shadow replicas")
        self.wait(lambda: (self.deploy_of(v1) or {}).get("state") in ("gating", "building", "rolling_out",
                                                                      "verifying"),
                  120, "the first release never started")

        say("2. while v1 deploys, three PRs are merged within seconds; the middle one breaks /health")
        broken = v1_files["app.conf"].replace(b"health=ok", b"health=fail")
        one, one_sha = self.fast_merge("page-one", {"www/one.html": "page one\n"}, "Add page one", "octocat")
        two, two_sha = self.fast_merge("health", {"app.conf": broken}, "Rework the health check", "hubot")
        three, three_sha = self.fast_merge("page-three", {"www/three.html": "page three\n"}, "Add page three",
                                           "octocat")
        self.settled(v1, ("live",))
        self.check(self.page("/") == f"{SERVICE} v1", f"v1 is live: “{self.page('/')}”")

        say("3. the three coalesce into one release, which fails; Mainline rolls back, then bisects")
        bad = self.settled(three_sha, ("reverted", "failed"), timeout=300)
        self.check(bad["state"] == "reverted", f"the release was rolled back and reverted ({bad['state']}: "
                                               f"{bad['reason']})")
        rounds = [e for e in bad["events"] if e["kind"] == "bisect"]
        for e in rounds:
            say(f"  bisect {e['data'].get('round')}: {e['data'].get('sha', '')[:7]} {e['data'].get('verdict')}")
        plan: dict = next((e["data"] for e in reversed(bad["events"]) if e["kind"] == "culprit"), {})
        self.check(plan.get("culprit") == two_sha,
                   f"bisection named PR #{two}'s merge {two_sha[:7]} in {len(rounds)} round(s) "
                   f"(stopped: {plan.get('stopped')})")

        self.check(plan.get("innocent") == [one_sha, three_sha] and "the 3 commits of the release" in next(
            e["message"] for e in bad["events"] if e["kind"] == "culprit"),
            f"one release carried the three PRs; #{one} and #{three} are held back, not blamed")

        say("4. only the culprit is reverted; the rest goes live")
        head = self.github.head(REPO, "master")
        self.wait(lambda: (self.deploy_of(head) or {}).get("state") == "live", 180,
                  lambda: f"master's head {head[:7]} never went live: {self.deploy_of(head)}")
        bodies = self.github.repo(REPO).git.out("log", "--format=%B", f"{v1}..{head}")
        reverted = REVERTS.findall(bodies)
        self.check(reverted == [two_sha], f"master has exactly one revert, of PR #{two}'s merge commit ({reverted})")
        self.check(self.page("/one.html") == "page one" and self.page("/three.html") == "page three",
                   f"production serves PR #{one}'s and PR #{three}'s pages")
        self.check(self.page("/health") == "ok", "production's /health answers ok")
        [status] = [s for s in self._get("/api/services") if s["environment"] == "production"]
        self.check(status["in_sync"] and status["head"] == head,
                   f"master ({head[:7]}) and production agree (in_sync: {status['in_sync']})")
        # Both innocent PRs are told one after the other: wait for each, not only the first.
        self.wait(lambda: all("Held back by a bad release" in self.comments(n) for n in (one, three)), 30,
                  f"PR #{one} or #{three} was never told it was held back")
        self.check("This PR broke production and was reverted" in self.comments(two),
                   f"PR #{two} was told it broke production and was reverted, with the evidence")
        self.check(all("Held back by a bad release in the same batch; now live" in self.comments(n)
                       for n in (one, three)), f"PRs #{one} and #{three} were told they were held back and are live")
        cards = [all_text(m) for m in self.slack.top_level("#deploys")]
        self.check(any("culprit:" in c and "held back" in c for c in cards),
                   "the Slack card tells the story: rounds, culprit, held back")
        self.check(not self.slack.violations, "every Slack call had a valid shape")
        self.check(not self.github.violations, "every GitHub call and webhook matched GitHub's published contract"
                   + (f": {self.github.violations[:3]}" if self.github.violations else ""))
